"""Scratch-org pools: race-free fetch, return, and counts.

sfp's fetch queries the Available orgs and patches the newest to `Assigned`: two jobs
fetching at once can get the same org. Here every claim first takes a lease item with
a conditional write, so exactly one fetcher wins each org; only the winner patches the
Dev Hub, and gives the lease back if that patch fails.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import SecretStr

from sfbroker.authurl import AuthUrl, parse_auth_url
from sfbroker.errors import (
    BrokerError,
    Conflict,
    CredentialsRejected,
    Forbidden,
    InvalidRequest,
    NotADevHub,
    NotFound,
    OrgCredentialsInvalid,
    OrgNotFound,
    PoolEmpty,
    PoolNotFound,
    SalesforceError,
    SalesforceTimeout,
)
from sfbroker.observability import count, logger
from sfbroker.salesforce.pools import ASSIGNED, AVAILABLE, IN_PROGRESS, DevHubPools, PoolOrg
from sfbroker.store.orgs import OrgStore
from sfbroker.store.pools import PoolLease, PoolLeaseStore
from sfbroker.store.table import ConditionFailed

if TYPE_CHECKING:  # requests is imported when Salesforce is first called (runtime)
    from sfbroker.salesforce.client import SalesforceClient, Session

# Letters, digits, `_`, `-` and `.`: safe in SOQL, in a DynamoDB key and in `pool:<tag>`.
POOL_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
# A Dev Hub that keeps failing the claim patch is down: do not walk the whole pool.
MAX_FAILED_CLAIMS = 2
# A lease outlives its org a little, then DynamoDB's TTL removes it.
LEASE_MARGIN = timedelta(days=1)
# Pool rows without an expiration date (never seen from Salesforce) get this much.
DEFAULT_LEASE = timedelta(days=30)

OrgFormat = Literal["sfdxAuthUrl", "accessToken"]


class DevHubTokens(Protocol):
    """The token service, as far as pools use it: a Dev Hub's access token (cached)."""

    def issue(
        self, username: str, *, min_validity_seconds: int = ..., force_refresh: bool = ...
    ) -> Session: ...


class Idempotency(Protocol):
    """Runs an action once per scope (Powertools Idempotency in production)."""

    def once(
        self, name: str, scope: Mapping[str, str], action: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FetchRequest:
    tag: str
    dev_hub_username: str
    caller: str
    format: OrgFormat = "sfdxAuthUrl"
    idempotency_key: str | None = None


@dataclass(frozen=True)
class FetchedOrg:
    """What sfp's fetch prints, plus either the auth URL or an access token."""

    tag: str
    username: str
    org_id: str | None
    scratch_org_info_id: str
    login_url: str | None
    instance_url: str
    expiration_date: date | None
    password: SecretStr | None = field(default=None, repr=False)
    sfdx_auth_url: SecretStr | None = field(default=None, repr=False)
    access_token: SecretStr | None = field(default=None, repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PoolCounts:
    tag: str
    dev_hub_username: str
    available: int
    in_progress: int
    assigned: int
    total: int


@dataclass(frozen=True)
class _Claimed:
    org: PoolOrg
    auth_url: AuthUrl = field(repr=False)


def validate_tag(tag: str) -> str:
    """A pool tag as SOQL, the table and org patterns may carry it (400 otherwise)."""
    if not POOL_TAG.fullmatch(tag):
        raise InvalidRequest(
            "The pool tag must be 1-80 letters, digits, '_', '-' or '.'",
            details=[{"field": "tag", "message": "not a valid pool tag"}],
        )
    return tag


def resolve_dev_hub(orgs: OrgStore, requested: str | None) -> str:
    """The Dev Hub asked for (registered, and a Dev Hub), or the registered default one:
    the Dev Hub flagged `isDefault`, or the only Dev Hub registered."""
    if requested is not None:
        org = orgs.get(requested)
        if org is None:
            raise OrgNotFound(requested)
        if not org.is_dev_hub:
            raise NotADevHub(f"Org '{org.username}' is not a Dev Hub")
        return org.username
    hubs = sorted((org for org in orgs.list() if org.is_dev_hub), key=lambda o: o.username)
    defaults = [org for org in hubs if org.is_default] or (hubs if len(hubs) == 1 else [])
    if not defaults:
        raise NotFound(
            "No default Dev Hub is registered: register one with isDefault, "
            "or name it with devHubUsername"
        )
    return defaults[0].username


@dataclass(frozen=True)
class PoolService:
    """Fetch, return and count the scratch orgs of a Dev Hub's pools."""

    orgs: OrgStore
    tokens: DevHubTokens
    dev_hub: DevHubPools
    salesforce: SalesforceClient
    leases: PoolLeaseStore
    idempotency: Idempotency
    clock: Callable[[], datetime]
    token_ttl: timedelta
    shuffle: Callable[[list[PoolOrg]], None]
    """Orders the candidates of one fetch: concurrent fetchers that try the pool in
    different orders collide on far fewer leases (production: `random.shuffle`)."""

    def dev_hub_username(self, requested: str | None) -> str:
        """The Dev Hub to use: the one asked for, or the registered default Dev Hub."""
        return resolve_dev_hub(self.orgs, requested)

    def counts(self, tag: str, dev_hub_username: str) -> PoolCounts:
        """How many active orgs of the pool are in each allocation status (no secrets)."""
        hub = self.tokens.issue(dev_hub_username)
        statuses = Counter(org.allocation_status for org in self.dev_hub.active(hub, tag))
        if not statuses:
            raise PoolNotFound(tag, dev_hub_username)
        return PoolCounts(
            tag=tag,
            dev_hub_username=dev_hub_username,
            available=statuses[AVAILABLE],
            in_progress=statuses[IN_PROGRESS],
            assigned=statuses[ASSIGNED],
            total=sum(statuses.values()),
        )

    def fetch(self, request: FetchRequest) -> FetchedOrg:
        """Claim one Available org of the pool for the caller (409 `pool_empty` if none;
        404 `pool_not_found` if the Dev Hub has no active org of the tag at all).

        With an idempotency key, a retry by the same caller gets the org of the first
        call; what is remembered is only the org's reference, never its credentials.
        """
        hub = self.tokens.issue(request.dev_hub_username)
        if request.idempotency_key is None:
            return self._answer(request, self._claim(hub, request))
        claimed: list[_Claimed] = []

        def claim_once() -> dict[str, Any]:
            claimed.append(self._claim(hub, request))
            return {"scratchOrgInfoId": claimed[0].org.id}

        scope = {
            "caller": request.caller,
            "tag": request.tag,
            "devHubUsername": request.dev_hub_username.lower(),
            "idempotencyKey": request.idempotency_key,
        }
        reference = self.idempotency.once("pool-fetch", scope, claim_once)
        if claimed:
            return self._answer(request, claimed[0])
        count("PoolFetchReplayed")
        return self._answer(request, self._reclaim(hub, request, reference["scratchOrgInfoId"]))

    def return_org(self, tag: str, username: str, *, caller: str, may_return_any: bool) -> None:
        """Delete a fetched org on its Dev Hub: only its fetcher (or `pools:admin`) may."""
        now = self.clock()
        lease = next(
            (
                lease
                for lease in self.leases.of_pool(tag, now)
                if lease.status == "claimed" and lease.username.lower() == username.lower()
            ),
            None,
        )
        if lease is None:
            raise NotFound(f"No org '{username}' is fetched from pool '{tag}'")
        if lease.fetched_by != caller and not may_return_any:
            raise Forbidden("Only the caller who fetched this org (or pools:admin) may return it")
        hub = self.tokens.issue(lease.dev_hub_username)
        active = self.dev_hub.active_scratch_orgs(hub, [lease.scratch_org_info_id])
        for active_id in active.values():
            self.dev_hub.delete_scratch_org(hub, active_id)
        try:
            self.leases.mark_returned(lease, now)
        except ConditionFailed:
            logger.info(
                "pool org returned twice", extra={"scratchOrgInfoId": lease.scratch_org_info_id}
            )
        count("PoolReturn")

    def _claim(self, hub: Session, request: FetchRequest) -> _Claimed:
        now = self.clock()
        leases = self.leases.of_pool(request.tag, now)
        resumed = self._resume(hub, request, leases)
        if resumed is not None:
            return resumed
        taken = {lease.scratch_org_info_id for lease in leases}
        failed: list[SalesforceError | SalesforceTimeout] = []
        candidates = self.dev_hub.available(hub, request.tag)
        self.shuffle(candidates)
        for candidate in candidates:
            if candidate.id in taken:
                continue
            auth_url = self._usable_auth_url(request, candidate, now)
            if auth_url is None:
                continue
            lease = PoolLease(
                tag=request.tag,
                scratch_org_info_id=candidate.id,
                username=candidate.username,
                dev_hub_username=request.dev_hub_username,
                status="claimed",
                leased_at=now,
                expires_at=_lease_expiry(candidate, now),
                fetched_by=request.caller,
                idempotency_key=request.idempotency_key,
            )
            if not self.leases.claim(lease):
                count("PoolClaimLost")
                continue
            try:
                self.dev_hub.assign(hub, candidate.id)
            except (SalesforceError, SalesforceTimeout) as error:
                # The patch may or may not have landed: give the lease back; an org that
                # did get Assigned without a lease is repaired by cleanup after a grace.
                self.leases.release(lease)
                count("PoolClaimFailed")
                logger.warning(
                    "pool claim failed on the Dev Hub",
                    extra={"scratchOrgInfoId": candidate.id, "error": error.code},
                )
                failed.append(error)
                if len(failed) >= MAX_FAILED_CLAIMS:
                    raise
                continue
            count("PoolFetch")
            logger.info(
                "pool org fetched",
                extra={"tag": request.tag, "scratchOrgInfoId": candidate.id},
            )
            return _Claimed(candidate, auth_url)
        if failed:
            # Not empty: the Dev Hub refused what was left; say so, not `pool_empty`.
            raise failed[-1]
        if not candidates and not self.dev_hub.active(hub, request.tag):
            # Not even Assigned or In Progress orgs: no such pool, not a drained one.
            raise PoolNotFound(request.tag, request.dev_hub_username)
        count("PoolEmpty")
        raise PoolEmpty(request.tag)

    def _resume(
        self, hub: Session, request: FetchRequest, leases: list[PoolLease]
    ) -> _Claimed | None:
        """The claim of an earlier call with this caller and Idempotency-Key that never
        answered (its function died after taking the lease; the key's record expired in
        progress): finished on the same org, so that org is neither lost nor held twice."""
        if request.idempotency_key is None:
            return None
        lease = next(
            (
                lease
                for lease in leases
                if lease.status == "claimed"
                and lease.fetched_by == request.caller
                and lease.idempotency_key == request.idempotency_key
                and lease.dev_hub_username.lower() == request.dev_hub_username.lower()
            ),
            None,
        )
        if lease is None:
            return None
        org = self.dev_hub.get(hub, lease.scratch_org_info_id)
        if (
            org is None
            or org.auth_url is None
            or org.allocation_status not in (AVAILABLE, ASSIGNED)
        ):
            return None  # gone meanwhile: cleanup drops the lease; claim another org
        if org.allocation_status == AVAILABLE:  # it died before its patch
            self.dev_hub.assign(hub, org.id)
        count("PoolClaimResumed")
        logger.info("pool claim resumed", extra={"tag": request.tag, "scratchOrgInfoId": org.id})
        return _Claimed(org, parse_auth_url(org.auth_url.get_secret_value()))

    def _usable_auth_url(
        self, request: FetchRequest, org: PoolOrg, now: datetime
    ) -> AuthUrl | None:
        """The org's auth URL if it can be used; otherwise mark the org so no fetch tries it."""
        try:
            if org.auth_url is None:
                raise SalesforceError("The pool org has no auth URL")
            auth_url = parse_auth_url(org.auth_url.get_secret_value())
            self.salesforce.login_url(auth_url)
        except BrokerError as problem:
            count("PoolOrgUnusable")
            logger.warning(
                "pool org skipped: unusable auth URL",
                extra={"scratchOrgInfoId": org.id, "problem": problem.code},
            )
            self.leases.claim(
                PoolLease(
                    tag=request.tag,
                    scratch_org_info_id=org.id,
                    username=org.username,
                    dev_hub_username=request.dev_hub_username,
                    status="invalid",
                    leased_at=now,
                    expires_at=_lease_expiry(org, now),
                )
            )
            return None
        return auth_url

    def _reclaim(self, hub: Session, request: FetchRequest, scratch_org_info_id: str) -> _Claimed:
        """The org a first call with this key claimed, if the caller still holds it."""
        lease = self.leases.get(request.tag, scratch_org_info_id, self.clock())
        if lease is None or lease.status != "claimed" or lease.fetched_by != request.caller:
            raise Conflict("The org fetched with this Idempotency-Key was returned or is gone")
        org = self.dev_hub.get(hub, scratch_org_info_id)
        if org is None or org.auth_url is None:
            raise Conflict("The org fetched with this Idempotency-Key no longer exists")
        return _Claimed(org, parse_auth_url(org.auth_url.get_secret_value()))

    def _answer(self, request: FetchRequest, claimed: _Claimed) -> FetchedOrg:
        org, auth_url = claimed.org, claimed.auth_url
        answer = FetchedOrg(
            tag=request.tag,
            username=org.username,
            org_id=org.org_id,
            scratch_org_info_id=org.id,
            login_url=org.login_url,
            instance_url=self.salesforce.login_url(auth_url),
            expiration_date=org.expiration_date,
            password=org.password,
        )
        if request.format == "sfdxAuthUrl":
            return replace(answer, sfdx_auth_url=SecretStr(auth_url.reveal()))
        try:
            grant = self.salesforce.refresh(auth_url)
        except CredentialsRejected:
            raise OrgCredentialsInvalid(org.username) from None
        return replace(
            answer,
            instance_url=grant.instance_url,
            access_token=grant.access_token,
            expires_at=min(grant.issued_at, self.clock()) + self.token_ttl,
        )


def _lease_expiry(org: PoolOrg, now: datetime) -> datetime:
    if org.expiration_date is None:
        return now + DEFAULT_LEASE
    return datetime.combine(org.expiration_date, time(), UTC) + LEASE_MARGIN
