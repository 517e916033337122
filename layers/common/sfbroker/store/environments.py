"""Environments of a repository and their leases.

Everything of one repository lives under `PK = ENV#<repository>`: an environment's
record (`SK = ENV#<name>`), its leases in arrival order (`LEASE#<name>#<ticket>`) and its
hold (`HOLD#<name>`: which ticket holds the environment, until when). An environment
also appears in the org index under its org's username (`GSI1PK = ENVORG#<username>`),
so deleting an org finds the environments that point at it.

A lease's state is derived from its item and the hold: tickets are granted the hold in
order, so a ticket below the holder's held it before (expired, unless released).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sfbroker.store.orgs import ORGS_INDEX
from sfbroker.store.table import ConditionFailed, Table, epoch_seconds, from_epoch

ENV = "ENV#"


@dataclass(frozen=True)
class EnvironmentRecord:
    repository: str
    name: str
    category: str
    username: str
    branch: str | None
    description: str | None
    created_at: datetime
    updated_at: datetime
    version: int = 1


@dataclass(frozen=True)
class LeaseRecord:
    lease_id: str
    ticket: int
    ttl_seconds: int
    created_at: datetime
    released_at: datetime | None = None


@dataclass(frozen=True)
class Hold:
    """Which ticket holds an environment, until when (`expires_at` in the past: free)."""

    lease_id: str
    ticket: int
    expires_at: datetime


def _pk(repository: str) -> str:
    return f"{ENV}{repository.lower()}"


def _env_key(repository: str, name: str) -> dict[str, str]:
    return {"PK": _pk(repository), "SK": f"{ENV}{name.lower()}"}


def _hold_key(repository: str, name: str) -> dict[str, str]:
    return {"PK": _pk(repository), "SK": f"HOLD#{name.lower()}"}


def _lease_prefix(name: str) -> str:
    return f"LEASE#{name.lower()}#"


def _lease_key(repository: str, name: str, ticket: int) -> dict[str, str]:
    return {"PK": _pk(repository), "SK": f"{_lease_prefix(name)}{ticket:012d}"}


def _org_partition(username: str) -> str:
    return f"ENVORG#{username.lower()}"


class EnvironmentStore:
    """Reads and conditional writes of environments, leases and holds."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, repository: str, name: str) -> EnvironmentRecord | None:
        item = self._table.get(_env_key(repository, name))
        return _environment_from(item) if item else None

    def in_repository(self, repository: str) -> list[EnvironmentRecord]:
        items = self._table.query(
            "PK = :pk AND begins_with(SK, :env)", {":pk": _pk(repository), ":env": ENV}
        )
        return [_environment_from(item) for item in items]

    def of_org(self, username: str) -> list[tuple[str, str]]:
        """(repository, name) of every environment whose org is `username`."""
        items = self._table.query("GSI1PK = :p", {":p": _org_partition(username)}, index=ORGS_INDEX)
        return [(item["repository"], item["name"]) for item in items]

    def create(self, environment: EnvironmentRecord) -> None:
        """Store a new environment; `ConditionFailed` if the name is taken."""
        self._table.put(_environment_item(environment), condition="attribute_not_exists(PK)")

    def replace(self, environment: EnvironmentRecord, expected_version: int) -> EnvironmentRecord:
        stored = replace(environment, version=expected_version + 1)
        self._table.put(
            _environment_item(stored), condition="version = :v", values={":v": expected_version}
        )
        return stored

    def delete(self, repository: str, name: str) -> None:
        """Remove an environment, its hold and its leases; `ConditionFailed` if absent."""
        self._table.delete(_env_key(repository, name), condition="attribute_exists(PK)")
        self._table.delete(_hold_key(repository, name))
        for lease in self.leases(repository, name):
            self._table.delete(_lease_key(repository, name, lease.ticket))

    # --- leases --------------------------------------------------------------------------

    def leases(self, repository: str, name: str) -> list[LeaseRecord]:
        """Every lease of the environment, oldest ticket first (a consistent read)."""
        items = self._table.query(
            "PK = :pk AND begins_with(SK, :lease)",
            {":pk": _pk(repository), ":lease": _lease_prefix(name)},
            consistent=True,
        )
        return [_lease_from(item) for item in items]

    def hold(self, repository: str, name: str) -> Hold | None:
        item = self._table.get(_hold_key(repository, name))
        if item is None:
            return None
        return Hold(item["leaseId"], int(item["ticket"]), from_epoch(item["expiresAt"]))

    def add_lease(self, repository: str, name: str, lease: LeaseRecord) -> bool:
        """Queue a lease under its ticket; False when that ticket was taken meanwhile."""
        try:
            self._table.put(
                {
                    **_lease_key(repository, name, lease.ticket),
                    "leaseId": lease.lease_id,
                    "ticket": lease.ticket,
                    "ttlSeconds": lease.ttl_seconds,
                    "createdAt": epoch_seconds(lease.created_at),
                },
                condition="attribute_not_exists(PK)",
            )
        except ConditionFailed:
            return False
        return True

    def take_hold(
        self, repository: str, name: str, lease: LeaseRecord, now: datetime, expires_at: datetime
    ) -> bool:
        """Give the environment to `lease` if nobody holds it now (and tickets only go up)."""
        try:
            self._table.put(
                {
                    **_hold_key(repository, name),
                    "leaseId": lease.lease_id,
                    "ticket": lease.ticket,
                    "expiresAt": epoch_seconds(expires_at),
                },
                condition="attribute_not_exists(PK) OR (expiresAt <= :now AND ticket < :t)",
                values={":now": epoch_seconds(now), ":t": lease.ticket},
            )
        except ConditionFailed:
            return False
        return True

    def end_hold(self, repository: str, name: str, lease_id: str, now: datetime) -> bool:
        """Free the environment if `lease_id` holds it (the hold keeps its ticket)."""
        try:
            self._table.update(
                _hold_key(repository, name),
                "SET expiresAt = :now",
                values={":now": epoch_seconds(now), ":id": lease_id},
                condition="leaseId = :id AND expiresAt > :now",
            )
        except ConditionFailed:
            return False
        return True

    def release_lease(self, repository: str, name: str, ticket: int, now: datetime) -> bool:
        """Mark a lease released (once); False if it was already released."""
        try:
            self._table.update(
                _lease_key(repository, name, ticket),
                "SET releasedAt = :now",
                values={":now": epoch_seconds(now)},
                condition="attribute_exists(PK) AND attribute_not_exists(releasedAt)",
            )
        except ConditionFailed:
            return False
        return True


def _environment_item(environment: EnvironmentRecord) -> dict[str, Any]:
    return {
        **_env_key(environment.repository, environment.name),
        "GSI1PK": _org_partition(environment.username),
        "GSI1SK": f"{environment.repository.lower()}#{environment.name.lower()}",
        "repository": environment.repository,
        "name": environment.name,
        "category": environment.category,
        "username": environment.username,
        "branch": environment.branch,
        "description": environment.description,
        "createdAt": environment.created_at.isoformat(),
        "updatedAt": environment.updated_at.isoformat(),
        "version": environment.version,
    }


def _environment_from(item: dict[str, Any]) -> EnvironmentRecord:
    return EnvironmentRecord(
        repository=item["repository"],
        name=item["name"],
        category=item["category"],
        username=item["username"],
        branch=item.get("branch"),
        description=item.get("description"),
        created_at=datetime.fromisoformat(item["createdAt"]),
        updated_at=datetime.fromisoformat(item["updatedAt"]),
        version=int(item.get("version", 1)),
    )


def _lease_from(item: dict[str, Any]) -> LeaseRecord:
    released = item.get("releasedAt")
    return LeaseRecord(
        lease_id=item["leaseId"],
        ticket=int(item["ticket"]),
        ttl_seconds=int(item["ttlSeconds"]),
        created_at=from_epoch(item["createdAt"]),
        released_at=from_epoch(released) if released is not None else None,
    )
