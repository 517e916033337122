"""`TokenService` with in-memory collaborators and a fake clock: cache, lease, rotation,
invalidation — the rules, without the stack."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sfbroker.authurl import parse_auth_url
from sfbroker.errors import (
    Conflict,
    CredentialsRejected,
    DependencyUnavailable,
    OrgCredentialsInvalid,
    OrgNotFound,
)
from sfbroker.store.orgs import CachedToken, OrgRecord, credential_record, token_record
from sfbroker.store.table import epoch_seconds

from tests.support.memory import (
    BUDGET_SECONDS,
    LOCK_SECONDS,
    START,
    TOKEN_TTL,
    Lease,
    OrgServices,
    ScriptedSalesforce,
    grant,
)

USER = "admin@acme.com"
AUTH_URL = "force://PlatformCLI::5AepOLDTOKEN@acme.my.salesforce.com"


class World(OrgServices):
    def __init__(self) -> None:
        super().__init__()
        self.orgs.orgs[USER] = OrgRecord(
            username=USER,
            org_id="00D000000000001AAA",
            instance_url="https://acme.my.salesforce.com",
            login_url="https://acme.my.salesforce.com",
            org_type="production",
            is_dev_hub=False,
            is_default=False,
            alias=None,
            status="active",
            created_at=START,
            updated_at=START,
            version=4,
            auth_url=self.cipher.encrypt(credential_record(USER), AUTH_URL),
        )

    def cache(self, access_token: str, *, valid_for: timedelta, refreshed_ago: float = 600) -> None:
        now = self.clock()
        self.orgs.tokens[USER] = CachedToken(
            envelope=self.cipher.encrypt(token_record(USER), access_token),
            username=USER,
            org_id="00D000000000001AAA",
            instance_url="https://acme.my.salesforce.com",
            expires_at=now + valid_for,
            refreshed_at=now - timedelta(seconds=refreshed_ago),
        )

    def stored_auth_url(self) -> str:
        org = self.orgs.orgs[USER]
        assert org.auth_url is not None
        return self.cipher.decrypt(credential_record(USER), org.auth_url)


@pytest.fixture
def world() -> World:
    return World()


def test_a_cache_hit_reads_once_and_never_leases_or_refreshes(world: World) -> None:
    world.cache("00Dxx!CACHED", valid_for=timedelta(hours=1))
    issued = world.tokens.issue(USER)
    assert (issued.source, issued.access_token.get_secret_value()) == ("cache", "00Dxx!CACHED")
    assert world.orgs.calls == {"load": 1}
    assert world.salesforce.presented == []


def test_a_cache_hit_never_asks_for_the_salesforce_client(world: World) -> None:
    """So a cold container serving a cached token neither builds nor imports it."""
    asked: list[str] = []

    def client() -> ScriptedSalesforce:
        asked.append("client")
        return world.salesforce

    service = replace(world.tokens, salesforce=client)
    world.cache("00Dxx!CACHED", valid_for=timedelta(hours=1))
    assert service.issue(USER).source == "cache"
    assert asked == []
    world.orgs.tokens.clear()
    world.salesforce.refreshes = [grant("00Dxx!FRESH", issued_at=START)]
    assert service.issue(USER).source == "refresh"
    assert asked == ["client"]


def test_a_cache_miss_refreshes_once_under_the_lease_and_caches_the_token(world: World) -> None:
    world.salesforce.refreshes = [grant("00Dxx!FRESH", issued_at=START - timedelta(seconds=3))]
    issued = world.tokens.issue(USER)
    assert (issued.source, issued.access_token.get_secret_value()) == ("refresh", "00Dxx!FRESH")
    assert issued.expires_at == START - timedelta(seconds=3) + TOKEN_TTL
    assert world.salesforce.presented == ["5AepOLDTOKEN"]
    # Read, lease, read again under the lease, refresh, cache, give the lease back.
    assert world.orgs.calls == {
        "load": 2,
        "acquire_refresh_lock": 1,
        "put_token": 1,
        "release_refresh_lock": 1,
    }
    assert world.orgs.leases == {}
    cached = world.orgs.tokens[USER]
    assert world.cipher.decrypt(token_record(USER), cached.envelope) == "00Dxx!FRESH"
    assert cached.envelope["record"] == f"ORG#{USER}/TOKEN"


@pytest.mark.parametrize(("valid_for", "source"), [(600, "cache"), (599, "refresh")])
def test_min_validity_is_inclusive(world: World, valid_for: int, source: str) -> None:
    world.cache("00Dxx!CACHED", valid_for=timedelta(seconds=valid_for))
    world.salesforce.refreshes = [grant("00Dxx!FRESH")]
    assert world.tokens.issue(USER, min_validity_seconds=600).source == source


def test_a_forced_refresh_reuses_a_token_refreshed_within_the_minute(world: World) -> None:
    world.cache("00Dxx!RECENT", valid_for=timedelta(hours=1), refreshed_ago=30)
    limited = world.tokens.issue(USER, force_refresh=True)
    assert (limited.source, limited.force_refresh_limited) == ("cache", True)
    assert world.tokens.issue(USER).force_refresh_limited is False  # not forced: not limited
    world.cache("00Dxx!OLDER", valid_for=timedelta(hours=1), refreshed_ago=61)
    world.salesforce.refreshes = [grant("00Dxx!FORCED")]
    forced = world.tokens.issue(USER, force_refresh=True)
    assert (forced.source, forced.force_refresh_limited) == ("refresh", False)


def test_a_forced_refresh_served_a_concurrent_refresh_is_not_limited(world: World) -> None:
    # Another caller holds the lease and refreshes after this one asked: a fresh token.
    world.orgs.leases[USER] = Lease("other", epoch_seconds(START) + LOCK_SECONDS)

    def other_holder_finishes() -> None:
        world.cache("00Dxx!THEIRS", valid_for=timedelta(hours=1), refreshed_ago=0)
        world.orgs.leases.pop(USER)

    world.clock.on_sleep = other_holder_finishes
    issued = world.tokens.issue(USER, force_refresh=True)
    assert (issued.source, issued.access_token.get_secret_value()) == ("cache", "00Dxx!THEIRS")
    assert issued.force_refresh_limited is False
    assert world.salesforce.presented == []  # no refresh of its own


def test_a_held_lease_is_waited_for_and_its_holder_s_token_served(world: World) -> None:
    world.orgs.leases[USER] = Lease("other", epoch_seconds(START) + LOCK_SECONDS)

    def other_holder_finishes() -> None:
        world.cache("00Dxx!THEIRS", valid_for=timedelta(hours=1))
        world.orgs.leases.pop(USER)

    world.clock.on_sleep = other_holder_finishes
    issued = world.tokens.issue(USER)
    assert (issued.source, issued.access_token.get_secret_value()) == ("cache", "00Dxx!THEIRS")
    assert world.clock.sleeps == [0.05]
    assert world.salesforce.presented == []
    assert world.orgs.calls["acquire_refresh_lock"] == 1
    assert world.orgs.calls["release_refresh_lock"] == 0


def test_an_expired_lease_is_taken_over_at_once(world: World) -> None:
    world.orgs.leases[USER] = Lease("gone", epoch_seconds(START) - 1)
    world.salesforce.refreshes = [grant("00Dxx!FRESH")]
    assert world.tokens.issue(USER).source == "refresh"
    assert world.clock.sleeps == []


def test_a_crashed_holder_s_lease_is_taken_once_it_expires(world: World) -> None:
    # The holder died without releasing, 10 s into its lease: 20 s later it is taken
    # (within this request's budget of 25 s).
    lease_left = LOCK_SECONDS - 10
    world.orgs.leases[USER] = Lease("crashed", epoch_seconds(START) + lease_left)
    world.salesforce.refreshes = [grant("00Dxx!FRESH")]
    issued = world.tokens.issue(USER)
    assert issued.source == "refresh"
    assert world.salesforce.presented == ["5AepOLDTOKEN"]
    assert world.clock.sleeps[:6] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert set(world.clock.sleeps[5:]) == {1.0}  # backoff is capped at a second
    waited = world.clock() - START
    assert timedelta(seconds=lease_left) < waited <= timedelta(seconds=lease_left + 2)
    assert world.orgs.leases == {}


def test_a_lease_that_outlives_the_budget_answers_503_within_it_without_refreshing(
    world: World,
) -> None:
    world.orgs.leases[USER] = Lease("stuck", epoch_seconds(START) + 3600)
    with pytest.raises(DependencyUnavailable):
        world.tokens.issue(USER)
    # The wait ends inside the request's budget (API Gateway gives up at 29 s).
    waited = world.clock() - START
    assert timedelta(seconds=BUDGET_SECONDS - 1) < waited <= timedelta(seconds=BUDGET_SECONDS)
    assert world.salesforce.presented == []
    assert world.orgs.leases[USER].holder == "stuck"


def test_a_rotated_refresh_token_is_persisted_over_the_version_it_came_from(world: World) -> None:
    world.salesforce.refreshes = [grant("00Dxx!FRESH", refresh_token="5AepNEWTOKEN")]
    assert world.tokens.issue(USER).source == "refresh"
    org = world.orgs.orgs[USER]
    assert org.version == 5
    assert parse_auth_url(world.stored_auth_url()).refresh_token.get_secret_value() == (
        "5AepNEWTOKEN"
    )
    assert org.auth_url is not None
    assert org.auth_url["record"] == f"ORG#{USER}/META"


def test_a_rotation_superseded_by_a_new_registration_keeps_the_new_credential(
    world: World,
) -> None:
    def registered_again() -> None:
        org = world.orgs.orgs[USER]
        world.orgs.orgs[USER] = replace(
            org,
            version=org.version + 1,
            auth_url=world.cipher.encrypt(
                credential_record(USER),
                "force://PlatformCLI::5AepREGISTERED@acme.my.salesforce.com",
            ),
        )

    world.salesforce.during_refresh = registered_again
    world.salesforce.refreshes = [grant("00Dxx!FRESH", refresh_token="5AepROTATED")]
    assert world.tokens.issue(USER).source == "refresh"
    assert "5AepREGISTERED" in world.stored_auth_url()


def test_invalid_grant_marks_the_org_invalid_and_drops_its_token(world: World) -> None:
    world.cache("00Dxx!STALE", valid_for=timedelta(seconds=60))
    world.salesforce.refreshes = [CredentialsRejected("invalid_grant")]
    with pytest.raises(OrgCredentialsInvalid):
        world.tokens.issue(USER)
    org = world.orgs.orgs[USER]
    assert (org.status, org.version) == ("invalid", 5)
    assert USER not in world.orgs.tokens
    assert world.orgs.leases == {}
    # From now on the org answers 409 without asking Salesforce.
    with pytest.raises(OrgCredentialsInvalid):
        world.tokens.issue(USER)
    assert world.salesforce.presented == ["5AepOLDTOKEN"]


def test_invalid_grant_does_not_mark_an_org_registered_again_meanwhile(world: World) -> None:
    def registered_again() -> None:
        org = world.orgs.orgs[USER]
        world.orgs.orgs[USER] = replace(org, version=org.version + 1)

    world.salesforce.during_refresh = registered_again
    world.salesforce.refreshes = [CredentialsRejected("invalid_grant")]
    with pytest.raises(Conflict):
        world.tokens.issue(USER)
    org = world.orgs.orgs[USER]
    assert (org.status, org.version) == ("active", 5)
    assert world.orgs.calls["mark_invalid"] == 1


def test_an_unknown_org_is_404_before_any_lease(world: World) -> None:
    with pytest.raises(OrgNotFound):
        world.tokens.issue("nobody@acme.com")
    assert world.orgs.calls == {"load": 1}
