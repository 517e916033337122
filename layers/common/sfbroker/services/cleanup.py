"""Pool cleanup: delete what no one will use, repair leases, report every run.

Candidates (SALESFORCE.md): expired orgs, orgs stuck `In Progress` past a threshold (a
prepare that died), `Assigned` orgs without a lease past a grace period (a fetch that
died after its patch), and on our side leases whose org no longer exists or that never
got their org assigned (a fetch that died before its patch). A dry run plans exactly
what a real run does, and does nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sfbroker.errors import BrokerError
from sfbroker.observability import count, logger
from sfbroker.salesforce.pools import ASSIGNED, AVAILABLE, IN_PROGRESS, DevHubPools, PoolOrg, id15
from sfbroker.services.pools import DevHubTokens, resolve_dev_hub
from sfbroker.store.orgs import OrgStore
from sfbroker.store.pools import PoolLease, PoolLeaseStore

if TYPE_CHECKING:  # requests is imported when Salesforce is first called (runtime)
    from sfbroker.salesforce.client import Session

Reason = Literal[
    "expired",
    "stuck_in_progress",
    "assigned_without_lease",
    "lease_without_org",
    "lease_without_assignment",
]
# Orgs are deleted on the Dev Hub for these reasons; the others only touch leases.
ORG_REASONS: frozenset[Reason] = frozenset(
    {"expired", "stuck_in_progress", "assigned_without_lease"}
)


@dataclass(frozen=True)
class CleanupPolicy:
    in_progress_timeout: timedelta
    lease_grace: timedelta
    max_deletions: int
    scheduled_dry_run: bool


@dataclass(frozen=True)
class CleanupCandidate:
    reason: Reason
    tag: str
    scratch_org_info_id: str
    username: str


@dataclass(frozen=True)
class CleanupError:
    scratch_org_info_id: str
    error: str


@dataclass(frozen=True)
class CleanupReport:
    """One run: what it acted on (or would), per reason, and what failed. No secrets."""

    dev_hub_username: str
    tag: str | None
    dry_run: bool
    candidates: tuple[CleanupCandidate, ...]
    over_cap: int
    errors: tuple[CleanupError, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolCleanup:
    """Plans and runs the cleanup of one Dev Hub's pools (one pool, or all of them)."""

    orgs: OrgStore
    tokens: DevHubTokens
    dev_hub: DevHubPools
    leases: PoolLeaseStore
    clock: Callable[[], datetime]
    policy: CleanupPolicy

    def dev_hub_username(self, requested: str | None) -> str:
        """The Dev Hub asked for, or the registered default one."""
        return resolve_dev_hub(self.orgs, requested)

    def run_scheduled(self) -> CleanupReport:
        """The scheduled run: every pool of the default Dev Hub, as the deployment says."""
        return self.run(self.dev_hub_username(None), None, dry_run=self.policy.scheduled_dry_run)

    def run(
        self,
        dev_hub_username: str,
        tag: str | None,
        *,
        dry_run: bool,
        max_deletions: int | None = None,
    ) -> CleanupReport:
        """Clean `tag` (every pool when None) on the Dev Hub; log and count the report."""
        now = self.clock()
        hub = self.tokens.issue(dev_hub_username)
        orgs = self.dev_hub.active(hub, tag)
        leases = [
            lease
            for lease in (
                self.leases.of_pool(tag, now) if tag is not None else self.leases.of_every_pool(now)
            )
            if lease.dev_hub_username.lower() == dev_hub_username.lower()
        ]
        planned = _plan(orgs, leases, now, self.policy)
        cap = self.policy.max_deletions if max_deletions is None else max_deletions
        deletions = [c for c in planned if c.reason in ORG_REASONS]
        kept = {id(c) for c in deletions[cap:]}
        chosen = tuple(c for c in planned if id(c) not in kept)
        errors = () if dry_run else self._execute(hub, chosen, leases)
        report = CleanupReport(
            dev_hub_username=dev_hub_username,
            tag=tag,
            dry_run=dry_run,
            candidates=chosen,
            over_cap=len(kept),
            errors=errors,
            counts=dict(Counter(c.reason for c in chosen)),
        )
        _emit(report)
        return report

    def _execute(
        self, hub: Session, chosen: tuple[CleanupCandidate, ...], leases: list[PoolLease]
    ) -> tuple[CleanupError, ...]:
        errors: list[CleanupError] = []
        by_id = {id15(lease.scratch_org_info_id): lease for lease in leases}
        doomed = [c.scratch_org_info_id for c in chosen if c.reason in ORG_REASONS]
        try:
            active: dict[str, str] | None = self.dev_hub.active_scratch_orgs(hub, doomed)
        except BrokerError as error:
            active, lookup_error = None, error.code
        for candidate in chosen:
            try:
                if candidate.reason in ORG_REASONS:
                    if active is None:
                        errors.append(CleanupError(candidate.scratch_org_info_id, lookup_error))
                        continue
                    # No ActiveScratchOrg row: the org is already gone, which is fine.
                    if active_id := active.get(candidate.scratch_org_info_id):
                        self.dev_hub.delete_scratch_org(hub, active_id)
                else:
                    self.leases.delete(by_id[id15(candidate.scratch_org_info_id)])
            except BrokerError as error:
                errors.append(CleanupError(candidate.scratch_org_info_id, error.code))
        return tuple(errors)


def _plan(
    orgs: list[PoolOrg], leases: list[PoolLease], now: datetime, policy: CleanupPolicy
) -> list[CleanupCandidate]:
    """Every candidate, orgs first (oldest first, so a cap deletes the oldest), then leases."""
    claimed = {id15(lease.scratch_org_info_id) for lease in leases if lease.status == "claimed"}
    by_id = {id15(org.id): org for org in orgs}
    today = now.date()
    candidates: list[CleanupCandidate] = []
    for org in sorted(orgs, key=lambda o: (o.created_date or now, o.id)):
        reason: Reason | None = None
        if org.expiration_date is not None and org.expiration_date <= today:
            reason = "expired"
        elif org.allocation_status == IN_PROGRESS and _older(
            org.created_date, now, policy.in_progress_timeout
        ):
            reason = "stuck_in_progress"
        elif (
            org.allocation_status == ASSIGNED
            and id15(org.id) not in claimed
            and _older(org.last_modified_date, now, policy.lease_grace)
        ):
            reason = "assigned_without_lease"
        if reason is not None:
            candidates.append(CleanupCandidate(reason, org.tag or "", org.id, org.username))
    for lease in sorted(leases, key=lambda item: (item.leased_at, item.scratch_org_info_id)):
        leased = by_id.get(id15(lease.scratch_org_info_id))
        lease_reason: Reason | None = None
        if leased is None:
            lease_reason = "lease_without_org"
        elif (
            lease.status == "claimed"
            and leased.allocation_status == AVAILABLE
            and now - lease.leased_at > policy.lease_grace
        ):
            lease_reason = "lease_without_assignment"
        if lease_reason is not None:
            candidates.append(
                CleanupCandidate(lease_reason, lease.tag, lease.scratch_org_info_id, lease.username)
            )
    return candidates


def _older(moment: datetime | None, now: datetime, age: timedelta) -> bool:
    return moment is not None and now - moment > age


def _emit(report: CleanupReport) -> None:
    """One log line and one metric per reason for the run (ids and usernames, no secrets)."""
    logger.info(
        "pool cleanup report",
        extra={
            "devHubUsername": report.dev_hub_username,
            "tag": report.tag,
            "dryRun": report.dry_run,
            "counts": report.counts,
            "overCap": report.over_cap,
            "errors": [
                {"scratchOrgInfoId": e.scratch_org_info_id, "error": e.error} for e in report.errors
            ],
            "candidates": [
                {
                    "reason": c.reason,
                    "scratchOrgInfoId": c.scratch_org_info_id,
                    "username": c.username,
                }
                for c in report.candidates
            ],
        },
    )
    prefix = "PoolCleanupPlanned" if report.dry_run else "PoolCleanup"
    for reason, n in report.counts.items():
        count(f"{prefix}_{reason}", n)
    if report.errors:
        count("PoolCleanupErrors", len(report.errors))
