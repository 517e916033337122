"""In-memory collaborators of the services, for unit tests: no DynamoDB, KMS or Salesforce.

Each keeps the contract its real counterpart promises the services (conditional writes
raise `ConditionFailed`, a lease is taken unless a live one exists, an envelope opens only
under the record name it was sealed for) and counts what it was asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sfbroker.authurl import AuthUrl
from sfbroker.budget import new_budget
from sfbroker.crypto import EnvelopeCipher, EnvelopeIntegrityError
from sfbroker.salesforce.client import (
    OrganizationInfo,
    SalesforceClient,
    SandboxAuth,
    Session,
    TokenGrant,
    UserInfo,
)
from sfbroker.salesforce.hosts import HostPolicy
from sfbroker.salesforce.pools import ASSIGNED, AVAILABLE, DevHubPools, PoolOrg
from sfbroker.services.cleanup import CleanupPolicy, PoolCleanup
from sfbroker.services.pools import PoolService
from sfbroker.services.registration import RegistrationService
from sfbroker.services.tokens import TokenPolicy, TokenService
from sfbroker.store.environments import EnvironmentStore
from sfbroker.store.orgs import CachedToken, OrgRecord, OrgState, OrgStore, OrgType
from sfbroker.store.pools import PoolLease, PoolLeaseStore
from sfbroker.store.table import ConditionFailed, epoch_seconds

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
TOKEN_TTL = timedelta(seconds=5400)
LOCK_SECONDS = 30
BUDGET_SECONDS = 25


class Clock:
    """A clock that moves only when told, or when someone sleeps on it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        """The clock as a monotonic one (a request's budget runs on it)."""
        return (self.now - START).total_seconds()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        if self.on_sleep is not None:
            self.on_sleep()


@dataclass
class Lease:
    holder: str
    ttl: int  # epoch seconds, as stored


class MemoryOrgStore(OrgStore):
    """`OrgStore` over dictionaries, with the same conditions as the DynamoDB one."""

    def __init__(self) -> None:  # no table: nothing of the parent's state is used
        self.orgs: dict[str, OrgRecord] = {}
        self.tokens: dict[str, CachedToken] = {}
        self.leases: dict[str, Lease] = {}
        self.calls: Counter[str] = Counter()

    def load(self, username: str) -> OrgState:
        self.calls["load"] += 1
        key = username.lower()
        return OrgState(org=self.orgs.get(key), token=self.tokens.get(key))

    def get(self, username: str) -> OrgRecord | None:
        self.calls["get"] += 1
        return self.orgs.get(username.lower())

    def list(self, org_type: OrgType | None = None) -> Iterator[OrgRecord]:
        for _, org in sorted(self.orgs.items()):
            if org_type is None or org.org_type == org_type:
                yield org

    def create(self, org: OrgRecord) -> None:
        self.calls["create"] += 1
        if org.username.lower() in self.orgs:
            raise ConditionFailed
        self.orgs[org.username.lower()] = org

    def replace(self, org: OrgRecord, expected_version: int) -> OrgRecord:
        self.calls["replace"] += 1
        self._expect_version(org.username, expected_version)
        stored = replace(org, version=expected_version + 1)
        self.orgs[org.username.lower()] = stored
        return stored

    def update_auth_url(
        self, username: str, envelope: dict[str, Any], expected_version: int, now: datetime
    ) -> None:
        self.calls["update_auth_url"] += 1
        org = self._expect_version(username, expected_version)
        self.orgs[username.lower()] = replace(
            org, auth_url=envelope, updated_at=now, version=expected_version + 1
        )

    def update_sandbox_location(
        self, username: str, org_id: str, instance_url: str, login_url: str, now: datetime
    ) -> bool:
        self.calls["update_sandbox_location"] += 1
        org = self.orgs.get(username.lower())
        if org is None or not org.is_jit_registration:
            return False
        self.orgs[username.lower()] = replace(
            org, org_id=org_id, instance_url=instance_url, login_url=login_url, updated_at=now
        )
        return True

    def mark_invalid(self, username: str, expected_version: int, now: datetime) -> bool:
        self.calls["mark_invalid"] += 1
        try:
            org = self._expect_version(username, expected_version)
        except ConditionFailed:
            return False
        self.orgs[username.lower()] = replace(
            org, status="invalid", updated_at=now, version=expected_version + 1
        )
        self.delete_token(username)
        return True

    def delete(self, username: str) -> None:
        self.calls["delete"] += 1
        if self.orgs.pop(username.lower(), None) is None:
            raise ConditionFailed
        self.delete_token(username)
        self.leases.pop(username.lower(), None)

    def put_token(
        self, token: CachedToken, *, org_version: int, lease_holder: str | None = None
    ) -> None:
        self.calls["put_token"] += 1
        self._expect_version(token.username, org_version)
        lease = self.leases.get(token.username.lower())
        if lease_holder is not None and (lease is None or lease.holder != lease_holder):
            raise ConditionFailed
        self.tokens[token.username.lower()] = token

    def delete_token(self, username: str) -> None:
        self.calls["delete_token"] += 1
        self.tokens.pop(username.lower(), None)

    def acquire_refresh_lock(self, username: str, holder: str, now: datetime, seconds: int) -> bool:
        self.calls["acquire_refresh_lock"] += 1
        lease = self.leases.get(username.lower())
        if lease is not None and not lease.ttl < epoch_seconds(now):
            return False
        self.leases[username.lower()] = Lease(holder, epoch_seconds(now) + seconds)
        return True

    def release_refresh_lock(self, username: str, holder: str) -> None:
        self.calls["release_refresh_lock"] += 1
        lease = self.leases.get(username.lower())
        if lease is not None and lease.holder == holder:
            del self.leases[username.lower()]

    def _expect_version(self, username: str, expected_version: int) -> OrgRecord:
        org = self.orgs.get(username.lower())
        if org is None or org.version != expected_version:
            raise ConditionFailed
        return org


class MemoryCipher(EnvelopeCipher):
    """Seals by reversing the text and naming the record: opens only under that name."""

    def __init__(self) -> None:  # no KMS
        self.records: list[str] = []

    def encrypt(self, record: str, plaintext: str) -> dict[str, Any]:
        self.records.append(record)
        return {"record": record, "ct": plaintext[::-1]}

    def decrypt(self, record: str, envelope: dict[str, Any]) -> str:
        if envelope.get("record") != record:
            raise EnvelopeIntegrityError(record)
        return str(envelope["ct"])[::-1]


ADMIN = UserInfo("admin@acme.com", "00D000000000001AAA", "005000000000001AAA")
PRODUCTION = OrganizationInfo(
    "00D000000000001AAA",
    is_sandbox=False,
    organization_type="Enterprise Edition",
    trial_expiration_date=None,
)


@dataclass
class ScriptedSalesforce(SalesforceClient):
    """Answers refreshes from a script: a grant, or an exception to raise."""

    refreshes: list[TokenGrant | Exception] = field(default_factory=list)
    user: UserInfo = ADMIN
    organization_info: OrganizationInfo = PRODUCTION
    dev_hub: bool = False
    presented: list[str] = field(default_factory=list)
    during_refresh: Callable[[], None] | None = None

    def login_url(self, auth_url: AuthUrl) -> str:
        return f"https://{auth_url.host}"

    def refresh(self, auth_url: AuthUrl) -> TokenGrant:
        self.presented.append(auth_url.refresh_token.get_secret_value())
        if self.during_refresh is not None:
            self.during_refresh()
        answer = self.refreshes.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def userinfo(self, grant: TokenGrant) -> UserInfo:
        return self.user

    def organization(self, grant: TokenGrant) -> OrganizationInfo:
        return self.organization_info

    def is_dev_hub(self, grant: TokenGrant) -> bool:
        return self.dev_hub

    # JIT: sandbox statuses by name, what `sandboxAuth` does, and the code exchanges.
    sandbox_statuses: dict[str, str] = field(default_factory=dict)
    sandbox_refusal: Exception | None = None
    exchanges: list[TokenGrant | Exception] = field(default_factory=list)
    jit_calls: Counter[str] = field(default_factory=Counter)

    def sandbox_status(self, production: Session, sandbox_name: str) -> str | None:
        self.jit_calls["sandbox_status"] += 1
        return self.sandbox_statuses.get(sandbox_name)

    def sandbox_auth(
        self, production: Session, client_id: str, sandbox_name: str, callback_url: str
    ) -> SandboxAuth:
        self.jit_calls["sandbox_auth"] += 1
        if self.sandbox_refusal is not None:
            raise self.sandbox_refusal
        return SandboxAuth(
            auth_username=f"admin@acme.com.{sandbox_name}",
            auth_code=SecretStr("aPrxCODE"),
            instance_url="https://acme--uat.sandbox.my.salesforce.com",
            login_url="https://test.salesforce.com",
        )

    def exchange_code(
        self, auth: SandboxAuth, client_id: str, client_secret: str, callback_url: str
    ) -> TokenGrant:
        self.jit_calls["exchange_code"] += 1
        answer = self.exchanges.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def grant(
    access_token: str,
    *,
    issued_at: datetime = START,
    refresh_token: str | None = None,
) -> TokenGrant:
    return TokenGrant(
        access_token=SecretStr(access_token),
        instance_url="https://acme.my.salesforce.com",
        org_id="00D000000000001AAA",
        user_id="005000000000001AAA",
        issued_at=issued_at,
        refresh_token=SecretStr(refresh_token) if refresh_token else None,
    )


class MemoryEnvironmentStore(EnvironmentStore):
    """No environment points at any org (the registration tests need no more)."""

    def __init__(self) -> None:  # no table
        pass

    def of_org(self, username: str) -> list[tuple[str, str]]:
        return []


class OrgServices:
    """Token issuance and registration over in-memory collaborators sharing one clock."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.orgs = MemoryOrgStore()
        self.cipher = MemoryCipher()
        self.salesforce = ScriptedSalesforce()
        self.tokens = TokenService(
            self.orgs,
            self.cipher,
            lambda: self.salesforce,
            TokenPolicy(token_ttl=TOKEN_TTL, lock_seconds=LOCK_SECONDS),
            self.clock,
            self.clock.sleep,
            lambda: new_budget(BUDGET_SECONDS, clock=self.clock.seconds),
        )
        self.registration = RegistrationService(
            self.orgs,
            self.cipher,
            self.salesforce,
            self.tokens,
            self.clock,
            MemoryEnvironmentStore(),
        )


# --- scratch-org pools ------------------------------------------------------------------

ALLOWED_HOSTS = HostPolicy(allowed=("*.salesforce.com",))


@dataclass
class PoolSalesforce(ScriptedSalesforce):
    """`ScriptedSalesforce` whose login URLs obey a host allow-list, as the real client's."""

    hosts: HostPolicy = ALLOWED_HOSTS

    def login_url(self, auth_url: AuthUrl) -> str:
        return self.hosts.base_url(auth_url.host)


class MemoryDevHub(DevHubPools):
    """A Dev Hub's `ScratchOrgInfo` rows and `ActiveScratchOrg`s, as the SOQL of
    `DevHubPools` selects them; `failures` scripts what a call raises, by call name."""

    def __init__(self, clock: Callable[[], datetime]) -> None:  # no Salesforce
        self.clock = clock
        self.rows: dict[str, PoolOrg] = {}
        self.active_ids: dict[str, str] = {}  # ScratchOrgInfo id -> ActiveScratchOrg id
        self.failures: dict[str, list[Exception | None]] = {}
        self.calls: Counter[str] = Counter()
        self.assigned: list[str] = []
        self.deleted: list[str] = []

    def add(self, org: PoolOrg) -> PoolOrg:
        self.rows[org.id] = org
        self.active_ids[org.id] = "0AS" + org.id[3:]
        return org

    def available(self, hub: Session, tag: str) -> list[PoolOrg]:
        self._call("available")
        today = self.clock().date()
        return [
            org
            for org in self.active(hub, tag)
            if org.allocation_status == AVAILABLE
            and (org.expiration_date is None or org.expiration_date > today)
        ]

    def active(self, hub: Session, tag: str | None) -> list[PoolOrg]:
        self._call("active")
        rows = [org for org in self.rows.values() if org.tag is not None]
        return sorted(
            (org for org in rows if tag is None or org.tag == tag),
            key=lambda org: org.created_date or START,
            reverse=True,
        )

    def get(self, hub: Session, scratch_org_info_id: str) -> PoolOrg | None:
        self._call("get")
        return self.rows.get(scratch_org_info_id)

    def assign(self, hub: Session, scratch_org_info_id: str) -> None:
        self._call("assign")
        self.rows[scratch_org_info_id] = replace(
            self.rows[scratch_org_info_id],
            allocation_status=ASSIGNED,
            last_modified_date=self.clock(),
        )
        self.assigned.append(scratch_org_info_id)

    def active_scratch_orgs(self, hub: Session, scratch_org_info_ids: list[str]) -> dict[str, str]:
        self._call("active_scratch_orgs")
        return {i: self.active_ids[i] for i in scratch_org_info_ids if i in self.active_ids}

    def delete_scratch_org(self, hub: Session, active_scratch_org_id: str) -> bool:
        self._call("delete_scratch_org")
        for info_id, active_id in list(self.active_ids.items()):
            if active_id == active_scratch_org_id:
                del self.active_ids[info_id]
                del self.rows[info_id]  # the row is no longer `Active`: out of every query
                self.deleted.append(info_id)
                return True
        return False

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        scripted = self.failures.get(name)
        if scripted:
            failure = scripted.pop(0)
            if failure is not None:
                raise failure


class MemoryLeaseStore(PoolLeaseStore):
    """`PoolLeaseStore` over a dictionary, with the DynamoDB one's conditions: an item past
    its TTL is invisible to reads but still blocks a claim until it is deleted."""

    def __init__(self) -> None:  # no table
        self.items: dict[tuple[str, str], PoolLease] = {}
        self.calls: Counter[str] = Counter()
        self.before_claim: Callable[[PoolLease], None] | None = None

    def claim(self, lease: PoolLease) -> bool:
        self.calls["claim"] += 1
        if self.before_claim is not None:
            self.before_claim(lease)
        key = (lease.tag, lease.scratch_org_info_id)
        if key in self.items:
            return False
        self.items[key] = lease
        return True

    def release(self, lease: PoolLease) -> None:
        self.calls["release"] += 1
        stored = self.items.get((lease.tag, lease.scratch_org_info_id))
        if (
            stored is not None
            and stored.status == "claimed"
            and (stored.fetched_by, stored.leased_at) == (lease.fetched_by, lease.leased_at)
        ):
            del self.items[(lease.tag, lease.scratch_org_info_id)]

    def mark_returned(self, lease: PoolLease, now: datetime) -> None:
        self.calls["mark_returned"] += 1
        key = (lease.tag, lease.scratch_org_info_id)
        stored = self.items.get(key)
        if stored is None or stored.status != "claimed":
            raise ConditionFailed
        self.items[key] = replace(stored, status="returned")

    def delete(self, lease: PoolLease) -> None:
        self.calls["delete"] += 1
        key = (lease.tag, lease.scratch_org_info_id)
        stored = self.items.get(key)
        if stored is not None and (stored.status, stored.leased_at) == (
            lease.status,
            lease.leased_at,
        ):
            del self.items[key]

    def get(self, tag: str, scratch_org_info_id: str, now: datetime) -> PoolLease | None:
        lease = self.items.get((tag, scratch_org_info_id))
        return lease if lease is not None and lease.expires_at > now else None

    def of_pool(self, tag: str, now: datetime) -> list[PoolLease]:
        self.calls["of_pool"] += 1
        return [lease for lease in self.of_every_pool(now) if lease.tag == tag]

    def of_every_pool(self, now: datetime) -> list[PoolLease]:
        return [lease for lease in self.items.values() if lease.expires_at > now]


class MemoryIdempotency:
    """Runs an action once per name and scope; an action that raises is not remembered
    (as Powertools Idempotency deletes its in-progress record)."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}

    def once(
        self, name: str, scope: Mapping[str, str], action: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        key = (name, tuple(sorted(scope.items())))
        if key not in self.results:
            self.results[key] = action()
        return self.results[key]


class DevHubTokenFake:
    """The token service as pools use it: a token for any Dev Hub, counted by username."""

    def __init__(self) -> None:
        self.issued: Counter[str] = Counter()

    def issue(
        self, username: str, *, min_validity_seconds: int = 600, force_refresh: bool = False
    ) -> Session:
        self.issued[username] += 1
        return grant("00D000000000002!AQhubtoken")


def pool_org(
    number: int,
    *,
    tag: str = "ci",
    status: str = AVAILABLE,
    created: datetime = START,
    modified: datetime | None = None,
    expires: date | None = None,
    auth_url: str | None = None,
) -> PoolOrg:
    """A pool row as `sfp pool prepare` leaves it: org `number` of the Dev Hub."""
    return PoolOrg(
        id=f"2SR{number:012d}AAA",  # 18 characters: unique in its first 15, as real ids
        tag=tag,
        username=f"test-{number}@example.com",
        org_id=f"00D{number:012d}",
        login_url=f"https://scratch-{number}.my.salesforce.com",
        allocation_status=status,
        expiration_date=expires or (START + timedelta(days=7)).date(),
        created_date=created,
        last_modified_date=modified or created,
        password=SecretStr(f"Pw{number}!scratch"),
        auth_url=SecretStr(
            auth_url
            or f"force://PlatformCLI::5Aep861pool{number}@scratch-{number}.my.salesforce.com"
        ),
    )


DEV_HUB = "hub@acme.com"
POOL_TOKEN_TTL = timedelta(hours=1)


def dev_hub_record(username: str = DEV_HUB, *, is_default: bool = False) -> OrgRecord:
    return OrgRecord(
        username=username,
        org_id="00D000000000002AAA",
        instance_url="https://hub.my.salesforce.com",
        login_url="https://login.salesforce.com",
        org_type="devhub",
        is_dev_hub=True,
        is_default=is_default,
        alias=None,
        status="active",
        created_at=START,
        updated_at=START,
    )


class PoolWorld:
    """A Dev Hub with pools, our leases, and the pool services over them, on one clock.

    `order` stands for the fetch's shuffle: it reorders the candidates in place (by
    default it keeps the Dev Hub's order, newest first, so tests are deterministic).
    """

    def __init__(self) -> None:
        self.clock = Clock()
        self.orgs = MemoryOrgStore()
        self.orgs.orgs[DEV_HUB] = dev_hub_record()
        self.tokens = DevHubTokenFake()
        self.dev_hub = MemoryDevHub(self.clock)
        self.salesforce = PoolSalesforce()
        self.leases = MemoryLeaseStore()
        self.idempotency = MemoryIdempotency()
        self.order: Callable[[list[PoolOrg]], None] = lambda candidates: None
        self.pools = PoolService(
            orgs=self.orgs,
            tokens=self.tokens,
            dev_hub=self.dev_hub,
            salesforce=self.salesforce,
            leases=self.leases,
            idempotency=self.idempotency,
            clock=self.clock,
            token_ttl=POOL_TOKEN_TTL,
            shuffle=self._shuffle,
        )

    def _shuffle(self, candidates: list[PoolOrg]) -> None:
        self.order(candidates)  # late bound: a test may set `order` after construction

    def cleanup(
        self,
        *,
        in_progress_timeout: timedelta = timedelta(hours=3),
        lease_grace: timedelta = timedelta(minutes=15),
        max_deletions: int = 10,
        scheduled_dry_run: bool = False,
    ) -> PoolCleanup:
        return PoolCleanup(
            orgs=self.orgs,
            tokens=self.tokens,
            dev_hub=self.dev_hub,
            leases=self.leases,
            clock=self.clock,
            policy=CleanupPolicy(
                in_progress_timeout=in_progress_timeout,
                lease_grace=lease_grace,
                max_deletions=max_deletions,
                scheduled_dry_run=scheduled_dry_run,
            ),
        )

    def pool(self, size: int, *, tag: str = "ci", first: int = 1) -> list[PoolOrg]:
        """`size` Available orgs, one minute apart, the last one the newest."""
        return [
            self.dev_hub.add(
                pool_org(n, tag=tag, created=START - timedelta(minutes=first + size - n))
            )
            for n in range(first, first + size)
        ]
