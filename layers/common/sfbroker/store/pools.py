"""Pool leases: `PK = POOL#<tag>, SK = LEASE#<scratchOrgInfoId>`, all listed through GSI1.

A lease is taken with a conditional put before the org is marked `Assigned` on the Dev
Hub, so two fetchers can never both win one org. It stays after the org is returned
(status `returned`) until its TTL, so a fetcher holding a stale listing cannot claim a
returned org again. A `invalid` lease marks an org whose auth URL is unusable: it is
skipped by every later fetch without being tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sfbroker.store.table import ConditionFailed, Table, epoch_seconds, from_epoch

LEASES_INDEX, LEASES_PARTITION = "GSI1", "POOLLEASE"
LeaseStatus = Literal["claimed", "returned", "invalid"]


def lease_key(tag: str, scratch_org_info_id: str) -> dict[str, str]:
    return {"PK": f"POOL#{tag}", "SK": f"LEASE#{scratch_org_info_id}"}


@dataclass(frozen=True)
class PoolLease:
    """Who took which pool org, when, and under which idempotency key."""

    tag: str
    scratch_org_info_id: str
    username: str
    dev_hub_username: str
    status: LeaseStatus
    leased_at: datetime
    expires_at: datetime
    fetched_by: str | None = None
    idempotency_key: str | None = None


class PoolLeaseStore:
    """Conditional writes of pool leases; an item past its TTL is treated as gone."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def claim(self, lease: PoolLease) -> bool:
        """Take the lease unless the org was ever leased (or marked invalid) before."""
        try:
            self._table.put(_lease_item(lease), condition="attribute_not_exists(PK)")
        except ConditionFailed:
            return False
        return True

    def release(self, lease: PoolLease) -> None:
        """Give back a lease whose claim failed on the Dev Hub (only our own, still claimed)."""
        try:
            self._table.delete(
                lease_key(lease.tag, lease.scratch_org_info_id),
                condition="fetchedBy = :f AND leasedAt = :l AND #s = :claimed",
                names={"#s": "status"},
                values={
                    ":f": lease.fetched_by,
                    ":l": lease.leased_at.isoformat(),
                    ":claimed": "claimed",
                },
            )
        except ConditionFailed:
            return

    def mark_returned(self, lease: PoolLease, now: datetime) -> None:
        """The org was deleted by its fetcher; keep the lease as a tombstone until its TTL."""
        self._table.update(
            lease_key(lease.tag, lease.scratch_org_info_id),
            "SET #s = :returned, returnedAt = :now",
            names={"#s": "status"},
            values={":returned": "returned", ":now": now.isoformat(), ":claimed": "claimed"},
            condition="#s = :claimed",
        )

    def delete(self, lease: PoolLease) -> None:
        """Forget a lease cleanup found stale (unless it changed since it was read)."""
        try:
            self._table.delete(
                lease_key(lease.tag, lease.scratch_org_info_id),
                condition="#s = :s AND leasedAt = :l",
                names={"#s": "status"},
                values={":s": lease.status, ":l": lease.leased_at.isoformat()},
            )
        except ConditionFailed:
            return

    def get(self, tag: str, scratch_org_info_id: str, now: datetime) -> PoolLease | None:
        item = self._table.get(lease_key(tag, scratch_org_info_id))
        return _live(item, now) if item else None

    def of_pool(self, tag: str, now: datetime) -> list[PoolLease]:
        """Every live lease of one pool, read consistently."""
        items = self._table.query("PK = :pk", {":pk": f"POOL#{tag}"}, consistent=True)
        return list(_live_leases(items, now))

    def of_every_pool(self, now: datetime) -> list[PoolLease]:
        """Every live lease of every pool (the scheduled cleanup's view)."""
        items = self._table.query("GSI1PK = :p", {":p": LEASES_PARTITION}, index=LEASES_INDEX)
        return list(_live_leases(items, now))


def _live_leases(items: Iterable[dict[str, Any]], now: datetime) -> Iterator[PoolLease]:
    for item in items:
        if (lease := _live(item, now)) is not None:
            yield lease


def _live(item: dict[str, Any], now: datetime) -> PoolLease | None:
    # DynamoDB's TTL deletes late: an expired item is already gone for us.
    if int(item["ttl"]) <= epoch_seconds(now):
        return None
    return PoolLease(
        tag=item["tag"],
        scratch_org_info_id=item["scratchOrgInfoId"],
        username=item["username"],
        dev_hub_username=item["devHubUsername"],
        status=item["status"],
        leased_at=datetime.fromisoformat(item["leasedAt"]),
        expires_at=from_epoch(item["ttl"]),
        fetched_by=item.get("fetchedBy"),
        idempotency_key=item.get("idempotencyKey"),
    )


def _lease_item(lease: PoolLease) -> dict[str, Any]:
    return {
        **lease_key(lease.tag, lease.scratch_org_info_id),
        "GSI1PK": LEASES_PARTITION,
        "GSI1SK": f"{lease.tag}#{lease.scratch_org_info_id}",
        "tag": lease.tag,
        "scratchOrgInfoId": lease.scratch_org_info_id,
        "username": lease.username,
        "devHubUsername": lease.dev_hub_username,
        "status": lease.status,
        "leasedAt": lease.leased_at.isoformat(),
        "fetchedBy": lease.fetched_by,
        "idempotencyKey": lease.idempotency_key,
        "ttl": epoch_seconds(lease.expires_at),
    }
