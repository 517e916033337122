"""Environments (a stable name for an org, per repository) and their leases.

A lease makes one pipeline the environment's only user for `ttlSeconds`. Callers queue
in arrival order (each lease takes the next ticket with a conditional write); the hold
is given to the oldest waiting ticket by a conditional write that succeeds only while
nobody holds the environment, so two pipelines never both hold it. Promotion happens on
the next request that looks (acquire, poll, release, authenticate): a release or an
expiry hands the environment to the next ticket then.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sfbroker.errors import (
    Conflict,
    DependencyUnavailable,
    EnvironmentNotFound,
    LeaseHeld,
    LeaseNotFound,
    OrgNotFound,
)
from sfbroker.observability import logger
from sfbroker.store.environments import EnvironmentRecord, EnvironmentStore, Hold, LeaseRecord
from sfbroker.store.orgs import OrgStore
from sfbroker.store.table import ConditionFailed

LeaseStatus = Literal["acquired", "queued", "released", "expired"]
# Each failed ticket write means another caller got that ticket: bounded by concurrency.
MAX_TICKET_ATTEMPTS = 100
MAX_SETTLE_ROUNDS = 5


@dataclass(frozen=True)
class EnvironmentChanges:
    category: str | None = None
    username: str | None = None
    branch: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Lease:
    lease_id: str
    status: LeaseStatus
    position: int
    """0 when not queued; 1 for the next in line."""
    expires_at: datetime | None


@dataclass(frozen=True)
class EnvironmentService:
    environments: EnvironmentStore
    orgs: OrgStore
    clock: Callable[[], datetime]

    def create(
        self,
        repository: str,
        name: str,
        category: str,
        username: str,
        *,
        branch: str | None = None,
        description: str | None = None,
    ) -> EnvironmentRecord:
        """Store a new environment of a registered org (stored credential or JIT)."""
        self._require_org(username)
        now = self.clock()
        environment = EnvironmentRecord(
            repository=repository,
            name=name,
            category=category,
            username=username,
            branch=branch,
            description=description,
            created_at=now,
            updated_at=now,
        )
        try:
            self.environments.create(environment)
        except ConditionFailed:
            raise Conflict(f"Environment '{name}' of '{repository}' exists") from None
        logger.info("environment created", extra={"environment": name, "repository": repository})
        return environment

    def get(self, repository: str, name: str) -> EnvironmentRecord:
        environment = self.environments.get(repository, name)
        if environment is None:
            raise EnvironmentNotFound(repository, name)
        return environment

    def in_repository(self, repository: str) -> list[EnvironmentRecord]:
        return self.environments.in_repository(repository)

    def update(self, repository: str, name: str, changes: EnvironmentChanges) -> EnvironmentRecord:
        current = self.get(repository, name)
        if changes.username is not None:
            self._require_org(changes.username)
        updated = replace(
            current,
            category=changes.category or current.category,
            username=changes.username or current.username,
            branch=current.branch if changes.branch is None else changes.branch,
            description=current.description if changes.description is None else changes.description,
            updated_at=self.clock(),
        )
        try:
            return self.environments.replace(updated, expected_version=current.version)
        except ConditionFailed:
            raise Conflict(f"Environment '{name}' was changed concurrently; try again") from None

    def delete(self, repository: str, name: str) -> None:
        try:
            self.environments.delete(repository, name)
        except ConditionFailed:
            raise EnvironmentNotFound(repository, name) from None

    # --- leases --------------------------------------------------------------------------

    def acquire(self, repository: str, name: str, ttl_seconds: int, *, wait: bool) -> Lease:
        """Take the environment, or (with `wait`) queue for it; without `wait`, a held
        environment answers `LeaseHeld` and leaves no lease behind."""
        self.get(repository, name)
        lease_id = uuid.uuid4().hex
        for _ in range(MAX_TICKET_ATTEMPTS):
            hold, leases = self._settle(repository, name)
            ticket = max([lease.ticket for lease in leases] + [hold.ticket if hold else 0]) + 1
            record = LeaseRecord(lease_id, ticket, ttl_seconds, self.clock())
            if self.environments.add_lease(repository, name, record):
                break
        else:
            raise DependencyUnavailable("Too many concurrent lease requests; try again")
        lease = self.lease(repository, name, lease_id)
        if lease.status == "queued" and not wait:
            self.environments.release_lease(repository, name, ticket, self.clock())
            raise LeaseHeld(name)
        return lease

    def lease(self, repository: str, name: str, lease_id: str) -> Lease:
        """The lease as of now (promoting the next in line if the holder is done)."""
        hold, leases = self._settle(repository, name)
        record = next((lease for lease in leases if lease.lease_id == lease_id), None)
        if record is None:
            raise LeaseNotFound(lease_id)
        return self._status(record, hold, leases)

    def release(self, repository: str, name: str, lease_id: str) -> Lease:
        """Give the environment (or a place in the queue) up; the next in line gets it."""
        hold, leases = self._settle(repository, name)
        record = next((lease for lease in leases if lease.lease_id == lease_id), None)
        if record is None:
            raise LeaseNotFound(lease_id)
        now = self.clock()
        self.environments.release_lease(repository, name, record.ticket, now)
        if hold is not None and hold.lease_id == lease_id:
            self.environments.end_hold(repository, name, lease_id, now)
        return self.lease(repository, name, lease_id)

    def require_holder(self, repository: str, name: str, lease_id: str | None) -> None:
        """While a lease is held, only its holder may use the environment."""
        hold, _ = self._settle(repository, name)
        if hold is not None and hold.expires_at > self.clock() and hold.lease_id != lease_id:
            raise LeaseHeld(name)

    def _settle(self, repository: str, name: str) -> tuple[Hold | None, list[LeaseRecord]]:
        """Read hold and queue; if nobody holds the environment, give it to the oldest
        waiting ticket (a conditional write: concurrent settlers agree on one)."""
        for _ in range(MAX_SETTLE_ROUNDS):
            now = self.clock()
            hold = self.environments.hold(repository, name)
            leases = self.environments.leases(repository, name)
            if hold is not None and hold.expires_at > now:
                holder = next((lease for lease in leases if lease.lease_id == hold.lease_id), None)
                if holder is None or holder.released_at is None:
                    return hold, leases
                # Given to a lease released meanwhile: free it again.
                self.environments.end_hold(repository, name, hold.lease_id, now)
                continue
            held = hold.ticket if hold else 0
            head = next(
                (lease for lease in leases if lease.ticket > held and lease.released_at is None),
                None,
            )
            if head is None:
                return hold, leases
            expires_at = now + timedelta(seconds=head.ttl_seconds)
            self.environments.take_hold(repository, name, head, now, expires_at)
        return self.environments.hold(repository, name), self.environments.leases(repository, name)

    def _status(self, lease: LeaseRecord, hold: Hold | None, leases: list[LeaseRecord]) -> Lease:
        if lease.released_at is not None:
            return Lease(lease.lease_id, "released", 0, None)
        held = hold.ticket if hold else 0
        if hold is not None and lease.ticket == held:
            status: LeaseStatus = "acquired" if hold.expires_at > self.clock() else "expired"
            return Lease(lease.lease_id, status, 0, hold.expires_at)
        if lease.ticket < held:
            return Lease(lease.lease_id, "expired", 0, None)
        ahead = sum(
            1
            for other in leases
            if held < other.ticket < lease.ticket and other.released_at is None
        )
        return Lease(lease.lease_id, "queued", ahead + 1, None)

    def _require_org(self, username: str) -> None:
        if self.orgs.get(username) is None:
            raise OrgNotFound(username)
