"""`PoolService` with in-memory collaborators and a fake clock: the order candidates are
tried in, lost leases, failed patches, unusable auth URLs, idempotent retries, returns."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sfbroker.errors import (
    Conflict,
    CredentialsRejected,
    Forbidden,
    NotADevHub,
    NotFound,
    OrgCredentialsInvalid,
    OrgNotFound,
    PoolEmpty,
    PoolNotFound,
    SalesforceError,
    SalesforceTimeout,
)
from sfbroker.salesforce.pools import ASSIGNED, AVAILABLE, IN_PROGRESS
from sfbroker.services.pools import FetchedOrg, FetchRequest, OrgFormat
from sfbroker.store.pools import PoolLease

from tests.support.memory import (
    DEV_HUB,
    POOL_TOKEN_TTL,
    START,
    PoolWorld,
    dev_hub_record,
    grant,
    pool_org,
)

CALLER = "arn:aws:iam::123456789012:role/ci"
OTHER = "apitoken:other"


@pytest.fixture
def world() -> PoolWorld:
    return PoolWorld()


def fetch(
    world: PoolWorld,
    *,
    caller: str = CALLER,
    key: str | None = None,
    fmt: OrgFormat = "sfdxAuthUrl",
) -> FetchedOrg:
    request = FetchRequest("ci", DEV_HUB, caller, format=fmt, idempotency_key=key)
    return world.pools.fetch(request)


def claimed(world: PoolWorld) -> dict[str, str | None]:
    """Claimed leases: org id -> fetcher."""
    return {
        lease.scratch_org_info_id: lease.fetched_by
        for lease in world.leases.items.values()
        if lease.status == "claimed"
    }


def statuses(world: PoolWorld) -> dict[str, str | None]:
    return {org.id: org.allocation_status for org in world.dev_hub.rows.values()}


# --- claim order and conflicts --------------------------------------------------------------


def test_a_fetch_claims_the_first_candidate_leases_it_then_assigns_it(world: PoolWorld) -> None:
    oldest, middle, newest = world.pool(3)

    fetched = fetch(world, key="k1")

    # Without shuffling, the Dev Hub's order: newest first, as sfp's fetch.
    assert fetched.scratch_org_info_id == newest.id
    assert claimed(world) == {newest.id: CALLER}
    assert world.leases.items[("ci", newest.id)].idempotency_key == "k1"
    assert world.dev_hub.assigned == [newest.id]
    assert statuses(world) == {oldest.id: AVAILABLE, middle.id: AVAILABLE, newest.id: ASSIGNED}
    assert world.tokens.issued == {DEV_HUB: 1}


def test_candidates_are_tried_in_the_order_the_shuffle_leaves_them(world: PoolWorld) -> None:
    oldest, _, _ = world.pool(3)
    world.order = lambda candidates: candidates.reverse()

    assert fetch(world).scratch_org_info_id == oldest.id


def test_orgs_already_leased_are_passed_over_without_a_claim(world: PoolWorld) -> None:
    _, middle, newest = world.pool(3)
    first, second = fetch(world), fetch(world, caller=OTHER)

    assert (first.scratch_org_info_id, second.scratch_org_info_id) == (newest.id, middle.id)
    assert world.leases.calls["claim"] == 2  # the second fetch never tried the first's org
    assert claimed(world) == {newest.id: CALLER, middle.id: OTHER}


def test_a_lease_lost_to_a_concurrent_fetcher_moves_on_to_the_next_candidate(
    world: PoolWorld,
) -> None:
    _, middle, newest = world.pool(3)

    def competitor_wins(lease: PoolLease) -> None:
        # Another fetcher, with the same listing, claims the newest org just before us.
        world.leases.before_claim = None
        world.leases.claim(replace(lease, fetched_by=OTHER))

    world.leases.before_claim = competitor_wins

    fetched = fetch(world)

    assert fetched.scratch_org_info_id == middle.id
    assert claimed(world) == {newest.id: OTHER, middle.id: CALLER}
    assert world.dev_hub.assigned == [middle.id]  # the lost org was never patched by us


def test_an_empty_pool_is_pool_empty_and_nothing_is_patched(world: PoolWorld) -> None:
    world.dev_hub.add(pool_org(1, status=IN_PROGRESS))
    world.dev_hub.add(pool_org(2, status=ASSIGNED))
    world.dev_hub.add(pool_org(3, expires=START.date()))  # expires today: not offered
    world.dev_hub.add(pool_org(4, tag="other"))

    with pytest.raises(PoolEmpty):
        fetch(world)

    assert world.dev_hub.calls["assign"] == 0
    assert world.leases.items == {}


def test_a_tag_without_any_active_org_is_pool_not_found(world: PoolWorld) -> None:
    world.dev_hub.add(pool_org(1, tag="other"))

    with pytest.raises(PoolNotFound, match="no active scratch org tagged 'ci'"):
        fetch(world)
    with pytest.raises(PoolNotFound):
        world.pools.counts("ci", DEV_HUB)

    assert world.dev_hub.calls["assign"] == 0
    assert world.leases.items == {}


# --- failed patches -------------------------------------------------------------------------


def test_a_failed_patch_releases_the_lease_and_the_next_org_is_claimed(world: PoolWorld) -> None:
    oldest, middle, newest = world.pool(3)
    world.dev_hub.failures["assign"] = [SalesforceError("Salesforce answered 503"), None]

    fetched = fetch(world)

    assert fetched.scratch_org_info_id == middle.id
    assert world.leases.calls["release"] == 1
    assert claimed(world) == {middle.id: CALLER}  # no lease left on the failed org
    assert statuses(world) == {oldest.id: AVAILABLE, middle.id: ASSIGNED, newest.id: AVAILABLE}


def test_a_dev_hub_that_keeps_failing_costs_two_claims_and_leaves_no_lease(
    world: PoolWorld,
) -> None:
    world.pool(5)
    timeout = SalesforceTimeout("Salesforce did not answer in time")
    world.dev_hub.failures["assign"] = [SalesforceError("503"), timeout]

    with pytest.raises(SalesforceTimeout):
        fetch(world)

    assert world.dev_hub.calls["assign"] == 2  # not the whole pool
    assert world.leases.items == {}
    assert set(statuses(world).values()) == {AVAILABLE}


def test_a_failure_on_the_last_org_is_the_failure_not_pool_empty(world: PoolWorld) -> None:
    world.pool(1)
    world.dev_hub.failures["assign"] = [SalesforceError("Salesforce answered 500")]

    with pytest.raises(SalesforceError):
        fetch(world)

    assert world.leases.items == {}


# --- unusable auth URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth_url", "problem"),
    [
        (None, "salesforce_error"),
        ("force://PlatformCLI::undefined@scratch-9.my.salesforce.com", "invalid_auth_url"),
        ("https://scratch-9.my.salesforce.com", "invalid_auth_url"),
        ("force://PlatformCLI::5Aep861pool9@evil.example.com", "host_not_allowed"),
    ],
    ids=["missing", "undefined", "not-an-auth-url", "host-off-the-allow-list"],
)
def test_an_org_with_an_unusable_auth_url_is_skipped_marked_and_never_tried_again(
    world: PoolWorld, auth_url: str | None, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    (good,) = world.pool(1)
    bad = pool_org(9, created=START, auth_url=auth_url)  # the newest: tried first
    bad = world.dev_hub.add(replace(bad, auth_url=None) if auth_url is None else bad)

    assert fetch(world).scratch_org_info_id == good.id

    marked = world.leases.items[("ci", bad.id)]
    assert (marked.status, marked.fetched_by) == ("invalid", None)
    assert statuses(world)[bad.id] == AVAILABLE  # not assigned: left for cleanup to expire
    (skipped,) = [r for r in caplog.records if "unusable auth URL" in r.getMessage()]
    assert (vars(skipped)["problem"], vars(skipped)["scratchOrgInfoId"]) == (problem, bad.id)
    assert auth_url is None or all(auth_url not in str(r.__dict__) for r in caplog.records)
    # The next fetch passes it over without a claim: the pool is empty, not retried.
    claims = world.leases.calls["claim"]
    with pytest.raises(PoolEmpty):
        fetch(world, caller=OTHER)
    assert world.leases.calls["claim"] == claims


# --- formats --------------------------------------------------------------------------------


def test_the_auth_url_format_answers_what_sfp_prints(world: PoolWorld) -> None:
    (org,) = world.pool(1)

    fetched = fetch(world)

    assert fetched.username == org.username
    assert fetched.org_id == org.org_id
    assert fetched.instance_url == "https://scratch-1.my.salesforce.com"
    assert fetched.password == org.password
    assert fetched.sfdx_auth_url == org.auth_url
    assert org.auth_url is not None
    assert (fetched.access_token, fetched.expires_at) == (None, None)
    assert world.salesforce.presented == []  # nothing refreshed


def test_the_access_token_format_refreshes_inside_and_gives_no_auth_url(
    world: PoolWorld,
) -> None:
    world.pool(1)
    world.clock.advance(30)
    world.salesforce.refreshes = [grant("00D000000000001!AQscratch", issued_at=START)]

    fetched = fetch(world, fmt="accessToken")

    assert world.salesforce.presented == ["5Aep861pool1"]
    assert fetched.sfdx_auth_url is None
    assert fetched.access_token is not None
    assert fetched.access_token.get_secret_value() == "00D000000000001!AQscratch"
    assert fetched.expires_at == START + POOL_TOKEN_TTL  # from when Salesforce issued it


def test_a_rejected_refresh_is_org_credentials_invalid(world: PoolWorld) -> None:
    world.pool(1)
    world.salesforce.refreshes = [CredentialsRejected("invalid_grant")]

    with pytest.raises(OrgCredentialsInvalid):
        fetch(world, fmt="accessToken")


# --- idempotency ----------------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_same_org_one_lease_one_patch(
    world: PoolWorld,
) -> None:
    world.pool(3)
    world.salesforce.refreshes = [grant("00D000000000003!AQscratch")]

    first = fetch(world, key="run-7-1-validate")
    again = fetch(world, key="run-7-1-validate", fmt="accessToken")

    assert again.scratch_org_info_id == first.scratch_org_info_id
    assert len(world.leases.items) == 1
    assert world.dev_hub.calls["assign"] == 1
    assert world.dev_hub.calls["get"] == 1  # the replay read the row again, by id
    assert again.access_token is not None  # a replay may ask for the other format
    # What the key remembers is the org's id, never a credential.
    assert list(world.idempotency.results.values()) == [
        {"scratchOrgInfoId": first.scratch_org_info_id}
    ]


def test_the_same_key_from_another_caller_is_another_fetch(world: PoolWorld) -> None:
    world.pool(2)

    mine, theirs = fetch(world, key="k"), fetch(world, caller=OTHER, key="k")

    assert mine.scratch_org_info_id != theirs.scratch_org_info_id


def test_a_key_whose_org_was_returned_is_a_conflict(world: PoolWorld) -> None:
    world.pool(2)
    first = fetch(world, key="k")
    world.pools.return_org("ci", first.username, caller=CALLER, may_return_any=False)

    with pytest.raises(Conflict):
        fetch(world, key="k")
    assert world.dev_hub.calls["assign"] == 1


def test_a_first_call_that_failed_is_not_remembered(world: PoolWorld) -> None:
    world.pool(1)
    world.dev_hub.failures["assign"] = [SalesforceError("503")]
    with pytest.raises(SalesforceError):
        fetch(world, key="k")

    assert fetch(world, key="k").username == "test-1@example.com"


@pytest.mark.parametrize("patched", [False, True], ids=["before-its-patch", "after-its-patch"])
def test_a_retry_after_a_call_that_died_holding_a_lease_finishes_that_claim(
    world: PoolWorld, patched: bool
) -> None:
    """The dead call's lease (same caller, key, Dev Hub) is there, its idempotency record
    is not (it expired in progress): the retry gets that org, not another one."""
    older, newest = world.pool(2)
    lease = PoolLease(
        tag="ci",
        scratch_org_info_id=older.id,
        username=older.username,
        dev_hub_username=DEV_HUB,
        status="claimed",
        leased_at=START,
        expires_at=START + timedelta(days=7),
        fetched_by=CALLER,
        idempotency_key="k",
    )
    assert world.leases.claim(lease)
    if patched:
        world.dev_hub.rows[older.id] = replace(older, allocation_status=ASSIGNED)

    again = fetch(world, key="k")

    assert again.scratch_org_info_id == older.id
    assert world.dev_hub.calls["assign"] == (0 if patched else 1)
    assert claimed(world) == {older.id: CALLER}
    assert statuses(world) == {older.id: ASSIGNED, newest.id: AVAILABLE}
    # Another key, or another caller with that key, is another fetch.
    assert fetch(world, caller=OTHER, key="k").scratch_org_info_id == newest.id


# --- return ---------------------------------------------------------------------------------


def test_the_fetcher_returns_its_org_it_is_deleted_and_the_lease_kept_as_returned(
    world: PoolWorld,
) -> None:
    world.pool(2)
    fetched = fetch(world)

    world.pools.return_org("ci", fetched.username.upper(), caller=CALLER, may_return_any=False)

    assert world.dev_hub.deleted == [fetched.scratch_org_info_id]
    assert world.leases.items[("ci", fetched.scratch_org_info_id)].status == "returned"
    with pytest.raises(NotFound):  # returned once: nothing left to return
        world.pools.return_org("ci", fetched.username, caller=CALLER, may_return_any=False)


def test_only_the_fetcher_or_pools_admin_may_return_an_org(world: PoolWorld) -> None:
    world.pool(1)
    fetched = fetch(world)

    with pytest.raises(Forbidden):
        world.pools.return_org("ci", fetched.username, caller=OTHER, may_return_any=False)
    assert world.dev_hub.calls["delete_scratch_org"] == 0

    world.pools.return_org("ci", fetched.username, caller=OTHER, may_return_any=True)
    assert world.dev_hub.deleted == [fetched.scratch_org_info_id]


def test_an_org_already_gone_on_the_dev_hub_is_returned_without_a_delete(
    world: PoolWorld,
) -> None:
    world.pool(1)
    fetched = fetch(world)
    del world.dev_hub.active_ids[fetched.scratch_org_info_id]  # expired meanwhile

    world.pools.return_org("ci", fetched.username, caller=CALLER, may_return_any=False)

    assert world.dev_hub.calls["delete_scratch_org"] == 0
    assert world.leases.items[("ci", fetched.scratch_org_info_id)].status == "returned"


# --- Dev Hub and counts ---------------------------------------------------------------------


def test_the_dev_hub_is_the_one_named_or_the_default_one(world: PoolWorld) -> None:
    assert world.pools.dev_hub_username(None) == DEV_HUB  # the only Dev Hub registered
    world.orgs.orgs["hub2@acme.com"] = dev_hub_record("hub2@acme.com")
    with pytest.raises(NotFound):  # two, none flagged default
        world.pools.dev_hub_username(None)
    world.orgs.orgs["hub2@acme.com"] = dev_hub_record("hub2@acme.com", is_default=True)
    assert world.pools.dev_hub_username(None) == "hub2@acme.com"
    assert world.pools.dev_hub_username("HUB@acme.com") == DEV_HUB
    with pytest.raises(OrgNotFound):
        world.pools.dev_hub_username("nobody@acme.com")
    world.orgs.orgs["admin@acme.com"] = replace(dev_hub_record("admin@acme.com"), is_dev_hub=False)
    with pytest.raises(NotADevHub):
        world.pools.dev_hub_username("admin@acme.com")


def test_counts_are_by_allocation_status_of_the_tag(world: PoolWorld) -> None:
    world.pool(3)
    world.dev_hub.add(pool_org(4, status=IN_PROGRESS))
    world.dev_hub.add(pool_org(5, status=ASSIGNED))
    world.dev_hub.add(pool_org(6, tag="other"))

    counts = world.pools.counts("ci", DEV_HUB)

    assert (counts.available, counts.in_progress, counts.assigned, counts.total) == (3, 1, 1, 5)
