"""`PoolCleanup` with in-memory collaborators and a fake clock: each reason, the cap, the
dry run planning exactly what the real run does, and failures that are not errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sfbroker.errors import SalesforceError
from sfbroker.salesforce.pools import ASSIGNED, AVAILABLE, IN_PROGRESS
from sfbroker.services.cleanup import CleanupReport
from sfbroker.store.pools import PoolLease

from tests.support.memory import DEV_HUB, START, PoolWorld, pool_org

GRACE = timedelta(minutes=15)
IN_PROGRESS_TIMEOUT = timedelta(hours=3)
LATER = START + timedelta(days=30)


@pytest.fixture
def world() -> PoolWorld:
    return PoolWorld()


def lease(
    org_number: int,
    *,
    status: str = "claimed",
    leased_at: timedelta = timedelta(hours=1),
    dev_hub: str = DEV_HUB,
    tag: str = "ci",
) -> PoolLease:
    """A lease of org `org_number`, taken `leased_at` before START."""
    return PoolLease(
        tag=tag,
        scratch_org_info_id=pool_org(org_number).id,
        username=pool_org(org_number).username,
        dev_hub_username=dev_hub,
        status=status,  # type: ignore[arg-type]
        leased_at=START - leased_at,
        expires_at=LATER,
        fetched_by="arn:aws:iam::123456789012:role/ci" if status == "claimed" else None,
    )


def add_lease(world: PoolWorld, item: PoolLease) -> None:
    world.leases.items[(item.tag, item.scratch_org_info_id)] = item


def a_pool_with_every_reason(world: PoolWorld) -> dict[str, str]:
    """One org or lease per reason, and a healthy one of each kind beside it."""
    hour = timedelta(hours=1)
    rows = {
        "expired": pool_org(1, expires=START.date(), created=START - 7 * 24 * hour),
        "stuck_in_progress": pool_org(2, status=IN_PROGRESS, created=START - 4 * hour),
        "assigned_without_lease": pool_org(3, status=ASSIGNED, created=START - 2 * hour),
        "lease_without_assignment": pool_org(5, created=START - 3 * hour),
        # healthy: young In Progress, Assigned with its lease, Assigned just now, Available
        "young_in_progress": pool_org(6, status=IN_PROGRESS, created=START - 2 * hour),
        "assigned_with_lease": pool_org(7, status=ASSIGNED, created=START - 5 * hour),
        "assigned_just_now": pool_org(
            8, status=ASSIGNED, created=START - 5 * hour, modified=START - timedelta(minutes=5)
        ),
        "available": pool_org(9, created=START - 6 * hour),
    }
    for org in rows.values():
        world.dev_hub.add(org)
    add_lease(world, lease(4))  # its org (4) is gone from the Dev Hub
    add_lease(world, lease(5, leased_at=timedelta(minutes=20)))  # org still Available
    add_lease(world, lease(7))
    add_lease(world, lease(9, leased_at=timedelta(minutes=5)))  # a fetch patching right now
    return {reason: org.id for reason, org in rows.items()} | {"lease_without_org": pool_org(4).id}


def run(world: PoolWorld, *, dry_run: bool, max_deletions: int | None = None) -> CleanupReport:
    cleanup = world.cleanup(in_progress_timeout=IN_PROGRESS_TIMEOUT, lease_grace=GRACE)
    return cleanup.run(DEV_HUB, "ci", dry_run=dry_run, max_deletions=max_deletions)


def plan(report: CleanupReport) -> list[tuple[str, str]]:
    return [(c.reason, c.scratch_org_info_id) for c in report.candidates]


def test_each_reason_finds_its_candidate_and_nothing_healthy(world: PoolWorld) -> None:
    ids = a_pool_with_every_reason(world)

    report = run(world, dry_run=True)

    reasons = (
        "expired",
        "stuck_in_progress",
        "assigned_without_lease",
        "lease_without_org",
        "lease_without_assignment",
    )
    # Orgs first, oldest first (a cap deletes the oldest); then leases, oldest first.
    assert plan(report) == [
        ("expired", ids["expired"]),
        ("stuck_in_progress", ids["stuck_in_progress"]),
        ("assigned_without_lease", ids["assigned_without_lease"]),
        ("lease_without_org", ids["lease_without_org"]),
        ("lease_without_assignment", ids["lease_without_assignment"]),
    ]
    assert report.counts == dict.fromkeys(reasons, 1)
    assert (report.over_cap, report.errors, report.dry_run) == (0, (), True)


def test_a_dry_run_changes_nothing_and_plans_exactly_what_the_real_run_does(
    world: PoolWorld,
) -> None:
    ids = a_pool_with_every_reason(world)
    rows_before, leases_before = dict(world.dev_hub.rows), dict(world.leases.items)

    dry = run(world, dry_run=True)

    assert (world.dev_hub.rows, world.leases.items) == (rows_before, leases_before)
    assert world.dev_hub.calls["active_scratch_orgs"] == 0
    assert world.dev_hub.calls["delete_scratch_org"] == 0
    assert world.leases.calls["delete"] == 0

    real = run(world, dry_run=False)

    assert plan(real) == plan(dry)
    assert real.counts == dry.counts
    assert real.errors == ()
    deleted = [ids["expired"], ids["stuck_in_progress"], ids["assigned_without_lease"]]
    assert world.dev_hub.deleted == deleted  # through ActiveScratchOrg, once each
    assert world.dev_hub.calls["active_scratch_orgs"] == 1  # one query for all of them
    dropped = {ids["lease_without_org"], ids["lease_without_assignment"]}
    assert {key[1] for key in leases_before} - {key[1] for key in world.leases.items} == dropped
    # Nothing is left to clean: the next run plans nothing.
    assert plan(run(world, dry_run=True)) == []
    # And the org whose lease was dropped is Available for the next fetch.
    assert world.dev_hub.rows[ids["lease_without_assignment"]].allocation_status == AVAILABLE


@pytest.mark.parametrize(("cap", "deleted"), [(0, 0), (2, 2), (5, 4)])
def test_the_cap_deletes_the_oldest_orgs_and_leaves_the_rest_for_the_next_run(
    world: PoolWorld, cap: int, deleted: int
) -> None:
    expired = [
        world.dev_hub.add(pool_org(n, expires=START.date(), created=START - timedelta(hours=n)))
        for n in range(1, 5)
    ]
    add_lease(world, lease(20))  # lease candidates are not capped

    report = run(world, dry_run=False, max_deletions=cap)

    oldest_first = [org.id for org in reversed(expired)]
    assert world.dev_hub.deleted == oldest_first[:deleted]
    assert report.over_cap == 4 - deleted
    assert report.counts.get("expired", 0) == deleted
    assert report.counts["lease_without_org"] == 1


def test_without_a_cap_the_deployments_is_used(world: PoolWorld) -> None:
    for n in range(1, 4):
        world.dev_hub.add(pool_org(n, expires=START.date()))
    cleanup = world.cleanup(max_deletions=1)

    report = cleanup.run(DEV_HUB, "ci", dry_run=False)

    assert (len(world.dev_hub.deleted), report.over_cap) == (1, 2)


def test_an_org_already_deleted_is_not_an_error(world: PoolWorld) -> None:
    org = world.dev_hub.add(pool_org(1, expires=START.date()))
    del world.dev_hub.active_ids[org.id]  # deleted meanwhile: no ActiveScratchOrg row

    report = run(world, dry_run=False)

    assert (plan(report), report.errors) == ([("expired", org.id)], ())
    assert world.dev_hub.calls["delete_scratch_org"] == 0


def test_a_failed_lookup_is_reported_per_org_and_leases_are_still_dropped(
    world: PoolWorld,
) -> None:
    org = world.dev_hub.add(pool_org(1, expires=START.date()))
    add_lease(world, lease(20))
    world.dev_hub.failures["active_scratch_orgs"] = [SalesforceError("503")]

    report = run(world, dry_run=False)

    assert [(e.scratch_org_info_id, e.error) for e in report.errors] == [
        (org.id, "salesforce_error")
    ]
    assert world.dev_hub.deleted == []
    assert world.leases.items == {}


def test_a_failed_delete_is_an_error_of_that_org_only(world: PoolWorld) -> None:
    first = world.dev_hub.add(pool_org(1, expires=START.date(), created=START - timedelta(hours=2)))
    second = world.dev_hub.add(pool_org(2, expires=START.date()))
    world.dev_hub.failures["delete_scratch_org"] = [SalesforceError("500"), None]

    report = run(world, dry_run=False)

    assert [e.scratch_org_info_id for e in report.errors] == [first.id]
    assert world.dev_hub.deleted == [second.id]


def test_an_empty_pool_is_a_clean_report(world: PoolWorld) -> None:
    report = run(world, dry_run=False)

    assert (plan(report), report.counts, report.errors, report.over_cap) == ([], {}, (), 0)


def test_leases_of_another_dev_hub_are_not_this_runs(world: PoolWorld) -> None:
    add_lease(world, lease(20, dev_hub="other-hub@acme.com"))

    assert plan(run(world, dry_run=False)) == []
    assert len(world.leases.items) == 1


def test_the_scheduled_run_cleans_every_pool_of_the_default_dev_hub_as_deployed(
    world: PoolWorld, caplog: pytest.LogCaptureFixture
) -> None:
    ci = world.dev_hub.add(pool_org(1, expires=START.date()))
    nightly = world.dev_hub.add(pool_org(2, tag="nightly", expires=START.date()))
    add_lease(world, lease(20, tag="nightly"))

    report = world.cleanup(scheduled_dry_run=True).run_scheduled()

    assert (report.tag, report.dry_run, report.dev_hub_username) == (None, True, DEV_HUB)
    assert sorted(plan(report)) == sorted(
        [("expired", ci.id), ("expired", nightly.id), ("lease_without_org", pool_org(20).id)]
    )
    (line,) = [r for r in caplog.records if r.getMessage() == "pool cleanup report"]
    assert vars(line)["counts"] == {"expired": 2, "lease_without_org": 1}
    assert vars(line)["dryRun"] is True
    assert world.dev_hub.deleted == []


def test_a_lease_is_dropped_only_if_unchanged_since_it_was_read(
    world: PoolWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.dev_hub.add(pool_org(5))
    stale = lease(5, leased_at=timedelta(minutes=20))
    add_lease(world, stale)
    cleanup = world.cleanup(lease_grace=GRACE)
    # A fetch re-takes the org between the read and the delete: a new lease, kept.
    renewed = replace(stale, leased_at=START)
    original_delete = world.leases.delete

    def fetched_meanwhile(item: PoolLease) -> None:
        add_lease(world, renewed)
        original_delete(item)

    monkeypatch.setattr(world.leases, "delete", fetched_meanwhile)

    report = cleanup.run(DEV_HUB, "ci", dry_run=False)

    assert plan(report) == [("lease_without_assignment", stale.scratch_org_info_id)]
    assert world.leases.items[("ci", stale.scratch_org_info_id)] == renewed
