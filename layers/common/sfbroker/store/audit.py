"""Audit events: `PK = AUDIT#<yyyy-mm-dd>, SK = <iso-ts>#<requestId>`, expired by `ttl`.

One partition per UTC day keeps a time-range read to a few Queries, and the sort key
orders a day's events by time. Reads by actor or target filter within the day
partitions instead of using the GSI: audit reads are rare admin queries, while a GSI
entry would add a second write to every audited request, token issuance included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, cast

from sfbroker.store.table import Table, epoch_seconds, from_epoch

Outcome = Literal["success", "denied", "error"]


@dataclass(frozen=True)
class AuditRecord:
    """One audited request. Never carries a secret: ids, names and outcomes only."""

    at: datetime
    request_id: str
    actor: str
    action: str
    target: str | None
    outcome: Outcome
    source_ip: str | None
    route: str | None
    reason: str | None
    expires_at: datetime
    # A failed authentication names the token id it claimed here, never as `actor`.
    claimed_token_id: str | None = None

    @property
    def sort_key(self) -> str:
        return audit_sort_key(self.at, self.request_id)


def audit_partition(day: date) -> str:
    return f"AUDIT#{day.isoformat()}"


def audit_sort_key(at: datetime, request_id: str) -> str:
    return f"{audit_time(at)}#{request_id}"


def audit_time(at: datetime) -> str:
    """The one format of audit times: UTC with microseconds, so strings sort as times."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class AuditStore:
    """Writes and day-by-day reads of audit events."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def put(self, record: AuditRecord) -> None:
        """Write (or overwrite, for the same request and time) one event."""
        self._table.put(
            {
                "PK": audit_partition(record.at.astimezone(UTC).date()),
                "SK": record.sort_key,
                "at": audit_time(record.at),
                "requestId": record.request_id,
                "actor": record.actor,
                "action": record.action,
                "target": record.target,
                "outcome": record.outcome,
                "sourceIp": record.source_ip,
                "route": record.route,
                "reason": record.reason,
                "claimedTokenId": record.claimed_token_id,
                "ttl": epoch_seconds(record.expires_at),
            }
        )

    def count_refusal(self, at: datetime, kind: str, expires_at: datetime) -> int:
        """Count one refusal of `kind` in `at`'s minute; return that minute's count so far.

        Counts live beside the trail (`AUDITCOUNT#<day>`, one item per minute and kind),
        so a flood of refusals adds to a number instead of adding events.
        """
        minute = at.astimezone(UTC).replace(second=0, microsecond=0)
        key = {
            "PK": f"AUDITCOUNT#{minute.date().isoformat()}",
            "SK": f"{audit_time(minute)}#{kind}",
        }
        counted = self._table.update(
            key,
            "ADD refusals :one SET #ttl = if_not_exists(#ttl, :ttl)",
            values={":one": 1, ":ttl": epoch_seconds(expires_at)},
            names={"#ttl": "ttl"},
            return_updated=True,
        )
        return int(counted["refusals"])

    def day(
        self,
        day: date,
        *,
        after: str,
        actor: str | None = None,
        target: str | None = None,
        page_size: int = 100,
    ) -> Iterator[AuditRecord]:
        """The day's events whose sort key is greater than `after`, in time order."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":pk": audit_partition(day), ":after": after}
        filters = []
        if actor is not None:
            filters.append("#actor = :actor")
            names["#actor"] = "actor"
            values[":actor"] = actor
        if target is not None:
            filters.append("#target = :target")
            names["#target"] = "target"
            values[":target"] = target
        for item in self._table.query(
            "PK = :pk AND SK > :after",
            values,
            names=names or None,
            filter_expression=" AND ".join(filters) or None,
            limit=page_size,
        ):
            yield _record_from(item)


def _record_from(item: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        at=datetime.fromisoformat(item["at"]),
        request_id=item["requestId"],
        actor=item["actor"],
        action=item["action"],
        target=item.get("target"),
        outcome=cast(Outcome, item["outcome"]),
        source_ip=item.get("sourceIp"),
        route=item.get("route"),
        reason=item.get("reason"),
        expires_at=from_epoch(item["ttl"]),
        claimed_token_id=item.get("claimedTokenId"),
    )
