"""In-memory collaborators of the services, for unit tests: no DynamoDB, KMS or Salesforce.

Each keeps the contract its real counterpart promises the services (conditional writes
raise `ConditionFailed`, a lease is taken unless a live one exists, an envelope opens only
under the record name it was sealed for) and counts what it was asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sfbroker.authurl import AuthUrl
from sfbroker.budget import new_budget
from sfbroker.crypto import EnvelopeCipher, EnvelopeIntegrityError
from sfbroker.salesforce import (
    OrganizationInfo,
    SalesforceClient,
    SandboxAuth,
    Session,
    TokenGrant,
    UserInfo,
)
from sfbroker.services.registration import RegistrationService
from sfbroker.services.tokens import TokenPolicy, TokenService
from sfbroker.store.environments import EnvironmentStore
from sfbroker.store.orgs import CachedToken, OrgRecord, OrgState, OrgStore, OrgType
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
