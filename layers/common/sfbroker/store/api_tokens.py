"""API token records: `PK = APITOKEN#<id>, SK = META`, listed through GSI1.

Only the SHA-256 of a token's secret is stored; the token itself never reaches the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sfbroker.store.table import ConditionFailed, Table

META = "META"
TOKENS_INDEX, TOKENS_PARTITION = "GSI1", "APITOKEN"


def api_token_key(token_id: str) -> dict[str, str]:
    return {"PK": f"APITOKEN#{token_id}", "SK": META}


@dataclass(frozen=True)
class ApiTokenRecord:
    """A stored API token: who may use it for what, until when."""

    token_id: str
    name: str
    scopes: tuple[str, ...]
    org_patterns: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime
    secret_hash: str = field(repr=False)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now

    def status(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        return "revoked" if self.revoked else "expired" if self.expired(now) else "active"


class ApiTokenStore:
    """Reads and conditional writes of API token records."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, token_id: str) -> ApiTokenRecord | None:
        """The token, read consistently: a revocation is seen by the very next read."""
        item = self._table.get(api_token_key(token_id))
        return _record_from(item) if item else None

    def create(self, record: ApiTokenRecord) -> None:
        """Store a new token; `ConditionFailed` if the id is taken."""
        self._table.put(_item(record), condition="attribute_not_exists(PK)")

    def list(self) -> Iterator[ApiTokenRecord]:
        """Every token, oldest first."""
        for item in self._table.query("GSI1PK = :p", {":p": TOKENS_PARTITION}, index=TOKENS_INDEX):
            yield _record_from(item)

    def revoke(self, token_id: str, at: datetime, by: str) -> None:
        """Mark the token revoked (the first revocation's time and actor stay);
        `ConditionFailed` if there is no such token."""
        self._table.update(
            api_token_key(token_id),
            "SET revokedAt = if_not_exists(revokedAt, :at), "
            "revokedBy = if_not_exists(revokedBy, :by)",
            values={":at": _iso(at), ":by": by},
            condition="attribute_exists(PK)",
        )

    def touch(self, token_id: str, at: datetime, unless_used_since: datetime) -> None:
        """Record a use at `at`, unless one was recorded since `unless_used_since`.

        The condition makes concurrent authorizer instances write at most once per interval.
        """
        try:
            self._table.update(
                api_token_key(token_id),
                "SET lastUsedAt = :at",
                values={":at": _iso(at), ":since": _iso(unless_used_since)},
                condition="attribute_exists(PK) AND "
                "(attribute_not_exists(lastUsedAt) OR lastUsedAt < :since)",
            )
        except ConditionFailed:
            return  # someone recorded a use meanwhile (or the token is gone)


def _item(record: ApiTokenRecord) -> dict[str, Any]:
    return {
        **api_token_key(record.token_id),
        "GSI1PK": TOKENS_PARTITION,
        "GSI1SK": f"{_iso(record.created_at)}#{record.token_id}",
        "id": record.token_id,
        "name": record.name,
        "scopes": list(record.scopes),
        "orgs": list(record.org_patterns),
        "secretHash": record.secret_hash,
        "createdBy": record.created_by,
        "createdAt": _iso(record.created_at),
        "expiresAt": _iso(record.expires_at),
        "lastUsedAt": _iso(record.last_used_at) if record.last_used_at else None,
        "revokedAt": _iso(record.revoked_at) if record.revoked_at else None,
        "revokedBy": record.revoked_by,
    }


def _record_from(item: dict[str, Any]) -> ApiTokenRecord:
    return ApiTokenRecord(
        token_id=item["id"],
        name=item["name"],
        scopes=tuple(item.get("scopes", ())),
        org_patterns=tuple(item.get("orgs", ())),
        secret_hash=item["secretHash"],
        created_by=item["createdBy"],
        created_at=datetime.fromisoformat(item["createdAt"]),
        expires_at=datetime.fromisoformat(item["expiresAt"]),
        last_used_at=_time(item.get("lastUsedAt")),
        revoked_at=_time(item.get("revokedAt")),
        revoked_by=item.get("revokedBy"),
    )


def _iso(moment: datetime) -> str:
    # One fixed format, so stored times also compare correctly as strings (lastUsedAt < :since).
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
