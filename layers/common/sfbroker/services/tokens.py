"""Issuing short-lived access tokens: cache first, one refresh per org however many ask."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from sfbroker.authurl import parse_auth_url
from sfbroker.budget import Budget
from sfbroker.crypto import EnvelopeCipher, EnvelopeIntegrityError
from sfbroker.errors import (
    Conflict,
    CredentialsRejected,
    DependencyUnavailable,
    InvalidRequest,
    OrgCredentialsInvalid,
    OrgNotFound,
)
from sfbroker.observability import count, logger
from sfbroker.store.orgs import (
    CachedToken,
    OrgRecord,
    OrgState,
    OrgStore,
    credential_record,
    token_record,
)
from sfbroker.store.table import ConditionFailed

if TYPE_CHECKING:
    from sfbroker.salesforce.client import SalesforceClient, TokenGrant


FORCED_REFRESH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    access_token: SecretStr
    instance_url: str
    username: str
    org_id: str
    expires_at: datetime
    source: Literal["cache", "refresh", "jit"]
    # forceRefresh was asked, and the forced-refresh limit answered it from the cache.
    force_refresh_limited: bool = False
    # Where the token was just obtained by JIT: the sandbox's login URL.
    login_url: str | None = None


# What a fresh token can still promise at most: its assumed lifetime minus this margin,
# so a token refreshed for the longest promise is reused for at least ten minutes.
MIN_VALIDITY_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class TokenPolicy:
    token_ttl: timedelta
    lock_seconds: int

    @property
    def max_min_validity_seconds(self) -> int:
        """The largest `minValiditySeconds` a caller may ask for."""
        return int((self.token_ttl - MIN_VALIDITY_MARGIN).total_seconds())


@dataclass(frozen=True)
class TokenService:
    """Serves cached tokens; refreshes under a per-org lease so concurrent callers share one."""

    orgs: OrgStore
    cipher: EnvelopeCipher
    # Asked for only when a refresh is due: a cache hit never builds (or imports) it.
    salesforce: Callable[[], SalesforceClient]
    policy: TokenPolicy
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    budget: Callable[[], Budget]
    jit_exchange: Callable[[OrgRecord, str], IssuedToken] | None = None
    """How a JIT sandbox gets a token (`JitService.exchange`): through its production org."""

    def issue(
        self, username: str, *, min_validity_seconds: int = 600, force_refresh: bool = False
    ) -> IssuedToken:
        """An access token valid for at least `min_validity_seconds` more.

        Reads the org; a cached token that will do is the answer. Otherwise takes the org's
        refresh lease and reads again (another holder may have finished between the read
        and the lease), then refreshes; or, while someone else holds the lease, waits with
        backoff and reads again, as long as the request's time budget allows (503 after).
        The lease outlives any holder's budget, so no two instances refresh at once.
        """
        if min_validity_seconds > self.policy.max_min_validity_seconds:
            # A token cannot promise more than its assumed lifetime: asking for more
            # would refresh on every call and bypass the forced-refresh limit.
            raise InvalidRequest(
                "The request is not valid",
                details=[
                    {
                        "field": "minValiditySeconds",
                        "message": f"must be at most {self.policy.max_min_validity_seconds}",
                    }
                ],
            )
        asked_at = self.clock()
        min_validity = timedelta(seconds=min_validity_seconds)
        holder = uuid.uuid4().hex
        budget = self.budget()
        pause = 0.05
        leased = False
        try:
            while True:
                state = self.orgs.load(username)
                org = _usable_org(state, username)
                if cached := self._reusable(state, asked_at, min_validity, force_refresh):
                    return cached
                if leased:
                    return self._refresh(org, holder)
                leased = self.orgs.acquire_refresh_lock(
                    username, holder, self.clock(), self.policy.lock_seconds
                )
                if leased:
                    continue
                if budget.remaining() <= pause:
                    raise DependencyUnavailable(
                        "Another refresh of this org is taking too long; try again"
                    )
                self.sleep(pause)
                pause = min(pause * 2, 1.0)
        finally:
            if leased:
                self.orgs.release_refresh_lock(username, holder)

    def _reusable(
        self, state: OrgState, asked_at: datetime, min_validity: timedelta, force_refresh: bool
    ) -> IssuedToken | None:
        token = state.token
        if token is None or token.expires_at - self.clock() < min_validity:
            return None
        # A forced refresh still reuses a token refreshed since it was asked for, or within
        # the last minute: one forced refresh per org per minute.
        if force_refresh and token.refreshed_at < min(
            asked_at, self.clock() - FORCED_REFRESH_INTERVAL
        ):
            return None
        try:
            access_token = self.cipher.decrypt(token_record(token.username), token.envelope)
        except EnvelopeIntegrityError:
            # Only a cache: a token that does not open is refreshed (and overwritten).
            logger.warning("cached token does not open", extra={"username": token.username})
            return None
        count("TokenCacheHit")
        return IssuedToken(
            access_token=SecretStr(access_token),
            instance_url=token.instance_url,
            username=token.username,
            org_id=token.org_id,
            expires_at=token.expires_at,
            source="cache",
            # Refreshed before this forced request: the limit, not a concurrent refresh.
            force_refresh_limited=force_refresh and token.refreshed_at < asked_at,
        )

    def _refresh(self, org: OrgRecord, holder: str) -> IssuedToken:
        if org.is_jit_registration and self.jit_exchange is not None:
            return self.jit_exchange(org, holder)
        if org.auth_url is None:
            raise Conflict(f"Org '{org.username}' has no stored credential to refresh")
        auth_url = parse_auth_url(
            self.cipher.decrypt(credential_record(org.username), org.auth_url)
        )
        try:
            grant = self.salesforce().refresh(auth_url)
        except CredentialsRejected:
            if not self.orgs.mark_invalid(org.username, org.version, self.clock()):
                raise Conflict(
                    f"Org '{org.username}' was registered again during the refresh; try again"
                ) from None
            count("OrgCredentialsInvalid")
            logger.warning("stored credential rejected", extra={"username": org.username})
            raise OrgCredentialsInvalid(org.username) from None
        version = org.version
        if grant.refresh_token is not None:
            version = self._persist_rotated(
                org, auth_url.with_refresh_token(grant.refresh_token.get_secret_value()).reveal()
            )
        issued = self.remember(org.username, grant, org_version=version, lease_holder=holder)
        count("TokenRefresh")
        return issued

    def remember(
        self,
        username: str,
        grant: TokenGrant,
        *,
        org_version: int,
        lease_holder: str | None = None,
        source: Literal["refresh", "jit"] = "refresh",
        login_url: str | None = None,
    ) -> IssuedToken:
        """Seal and cache a freshly granted access token (also used right after registration).

        Only the access token is kept: a refresh token in `grant` is never cached. Cached
        only over the org version it was granted for and, under a lease, while the lease is
        still held: a DELETE, a new registration or a newer holder wins, and the token is
        then only answered, not cached.
        """
        now = self.clock()
        token = CachedToken(
            envelope=self.cipher.encrypt(
                token_record(username), grant.access_token.get_secret_value()
            ),
            username=username,
            org_id=grant.org_id,
            instance_url=grant.instance_url,
            # Whole seconds, as stored: a token has one expiry, fresh or from the cache.
            expires_at=(min(grant.issued_at, now) + self.policy.token_ttl).replace(microsecond=0),
            refreshed_at=now,
        )
        try:
            self.orgs.put_token(token, org_version=org_version, lease_holder=lease_holder)
        except ConditionFailed:
            logger.warning("fresh token not cached: superseded", extra={"username": username})
        return IssuedToken(
            access_token=grant.access_token,
            instance_url=token.instance_url,
            username=token.username,
            org_id=token.org_id,
            expires_at=token.expires_at,
            source=source,
            login_url=login_url,
        )

    def _persist_rotated(self, org: OrgRecord, auth_url: str) -> int:
        """Salesforce rotated the refresh token: the old one is dead, store the new one now.

        Returns the org's version after the write (unchanged if it was superseded).
        """
        envelope = self.cipher.encrypt(credential_record(org.username), auth_url)
        try:
            self.orgs.update_auth_url(org.username, envelope, org.version, self.clock())
        except ConditionFailed:
            # Re-registered meanwhile: the new registration's credential wins.
            logger.warning("rotated refresh token superseded", extra={"username": org.username})
            return org.version
        return org.version + 1


def _usable_org(state: OrgState, username: str) -> OrgRecord:
    if state.org is None:
        raise OrgNotFound(username)
    if state.org.status == "invalid":
        raise OrgCredentialsInvalid(username)
    return state.org
