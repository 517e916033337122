"""`JitService` with in-memory collaborators: registration checks, the exchange and its
errors, the cache shared with token issuance, the refresh token only as an auth URL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import SecretStr
from sfbroker.auth.principal import Principal
from sfbroker.errors import (
    CredentialsRejected,
    JitAuthFailed,
    NotAProductionOrg,
    ParentOrgNotFound,
    SandboxAuthRefused,
    SandboxNotFound,
    SandboxNotReady,
)
from sfbroker.services.jit import JitService
from sfbroker.services.registration import Registration

from tests.support.memory import OrgServices, grant

PRODUCTION_USER = "admin@acme.com"
SANDBOX_USER = "admin@acme.com.uat"
AUTH_URL = "force://PlatformCLI::5AepPROD@acme.my.salesforce.com"


class JitWorld(OrgServices):
    def __init__(self) -> None:
        super().__init__()
        self.jit = JitService(self.orgs, self.cipher, self.salesforce, self.tokens, self.clock)
        # As runtime.py wires it: the token service's refresh of a JIT sandbox.
        object.__setattr__(self.tokens, "jit_exchange", self.jit.exchange)


@pytest.fixture
def world() -> JitWorld:
    world = JitWorld()
    world.salesforce.refreshes = [grant("00Dxx!PROD")]
    admin = Principal(id="arn:aws:iam::123456789012:role/admin", kind="iam", scopes=frozenset())
    world.registration.register(Registration(auth_url=SecretStr(AUTH_URL)), admin)
    world.salesforce.sandbox_statuses = {"uat": "Completed", "sit": "Processing"}
    return world


def test_registration_checks_parent_type_and_sandbox(world: JitWorld) -> None:
    with pytest.raises(ParentOrgNotFound):
        world.jit.register("uat", "nobody@acme.com")
    with pytest.raises(SandboxNotFound):
        world.jit.register("qa", PRODUCTION_USER)
    org = world.jit.register("uat", PRODUCTION_USER)
    assert (org.username, org.is_jit_registration, org.auth_url) == (SANDBOX_USER, True, None)
    assert world.jit.register("sit", PRODUCTION_USER).sandbox_name == "sit"  # not ready: fine
    with pytest.raises(NotAProductionOrg):
        world.jit.register("uat", SANDBOX_USER)


def test_one_exchange_then_the_cache_and_no_refresh_token_kept(world: JitWorld) -> None:
    world.jit.register("uat", PRODUCTION_USER)
    world.salesforce.jit_calls.clear()  # registration asked whether the sandbox exists
    world.salesforce.exchanges = [grant("00Dsb!SANDBOX", refresh_token="5AepSANDBOXREFRESH")]
    first = world.tokens.issue(SANDBOX_USER)
    assert (first.source, first.login_url) == ("jit", "https://test.salesforce.com")
    again = world.jit.authenticate(world.jit.registration("uat", PRODUCTION_USER))
    assert (again.token.source, again.login_url) == ("cache", "https://test.salesforce.com")
    assert again.sfdx_auth_url is None
    assert world.salesforce.jit_calls == {
        "sandbox_status": 1,
        "sandbox_auth": 1,
        "exchange_code": 1,
    }
    stored = repr(world.orgs.orgs) + repr(world.orgs.tokens) + repr(world.cipher.__dict__)
    assert "5AepSANDBOXREFRESH" not in stored


def test_an_auth_url_is_a_fresh_exchange_with_its_refresh_token(world: JitWorld) -> None:
    org = world.jit.register("uat", PRODUCTION_USER)
    world.salesforce.exchanges = [grant("00Dsb!A", refresh_token="5AepNEW")]
    answer = world.jit.authenticate(org, with_auth_url=True)
    assert answer.sfdx_auth_url is not None
    assert answer.sfdx_auth_url.get_secret_value() == (
        "force://PlatformCLI::5AepNEW@test.salesforce.com"
    )
    assert "5AepNEW" not in repr(answer)


@pytest.mark.parametrize(
    ("status", "refusal", "exchange", "error", "words"),
    [
        ("Processing", None, None, SandboxNotReady, "its status is Processing"),
        ("Completed", SandboxAuthRefused("INVALID_STATUS"), None, SandboxNotReady, "not ready"),
        ("Completed", SandboxAuthRefused("NOT_FOUND"), None, SandboxNotFound, "current name"),
        ("Completed", SandboxAuthRefused("INSUFFICIENT_ACCESS"), None, JitAuthFailed, "access"),
        ("Completed", None, CredentialsRejected("invalid_grant"), JitAuthFailed, "verify"),
        (None, None, None, SandboxNotFound, "refreshed under another name"),
    ],
)
def test_each_failure_has_its_code_and_caches_nothing(
    world: JitWorld,
    status: str | None,
    refusal: Exception | None,
    exchange: Exception | None,
    error: type[Exception],
    words: str,
) -> None:
    org = world.jit.register("uat", PRODUCTION_USER)
    world.salesforce.sandbox_statuses = {"uat": status} if status else {}
    world.salesforce.sandbox_refusal = refusal
    world.salesforce.exchanges = [exchange] if exchange else []
    with pytest.raises(error, match=words):
        world.tokens.issue(org.username)
    assert SANDBOX_USER not in world.orgs.tokens
    assert world.orgs.leases == {}  # the refresh lease was given back


def test_the_registration_learns_where_the_sandbox_is(world: JitWorld) -> None:
    world.jit.register("uat", PRODUCTION_USER)
    world.salesforce.exchanges = [replace(grant("00Dsb!X"), org_id="00DSANDBOX00001AAA")]
    world.tokens.issue(SANDBOX_USER)
    org = world.orgs.orgs[SANDBOX_USER]
    assert (org.org_id, org.login_url) == ("00DSANDBOX00001AAA", "https://test.salesforce.com")
