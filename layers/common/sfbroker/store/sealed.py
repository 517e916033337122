"""Every envelope the table holds, walked page by page for maintenance (re-wrapping).

The walk is a strongly consistent scan whose position is an opaque cursor (the last key
of a page, base64url JSON): printed by the reencrypt command, accepted back to resume.
A write back replaces an envelope only while the stored one is still the envelope that
was read (same wrapped key and nonce): anything live traffic wrote meanwhile wins.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from sfbroker.store.orgs import ORG_KEY_PREFIX, SEALED_ATTRIBUTES, record_name
from sfbroker.store.table import Table


class InvalidCursor(ValueError):
    """A resume cursor that is not one this store printed."""


@dataclass(frozen=True)
class SealedValue:
    """One envelope as stored: where it lives and the record name it is bound to."""

    key: dict[str, str]
    attribute: str
    envelope: dict[str, Any] = field(repr=False)

    @property
    def record(self) -> str:
        return record_name(self.key)


@dataclass(frozen=True)
class SealedPage:
    """The envelopes of one page of the walk and the cursor after it (None: the end)."""

    values: list[SealedValue]
    next_cursor: str | None


class SealedValueStore:
    """Pages of every sealed value of the table, and their conditional replacement."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def page(self, cursor: str | None, limit: int) -> SealedPage:
        """The sealed values among the next `limit` items after `cursor` (None: the start)."""
        names = {f"#a{i}": attribute for i, attribute in enumerate(_ATTRIBUTES)}
        items, last = self._table.scan_page(
            limit=limit,
            start=_decode(cursor) if cursor else None,
            projection=", ".join(["PK", "SK", *names]),
            names=names,
            filter_expression=" OR ".join(f"attribute_exists({name})" for name in names),
        )
        values = [
            SealedValue({"PK": item["PK"], "SK": item["SK"]}, attribute, dict(item[attribute]))
            for item in items
            if item["PK"].startswith(ORG_KEY_PREFIX)
            and (attribute := SEALED_ATTRIBUTES.get(item["SK"], "")) in item
        ]
        return SealedPage(values, _encode(last) if last else None)

    def replace(self, sealed: SealedValue, envelope: dict[str, Any]) -> None:
        """Store `envelope` in place of `sealed`, only if the item still holds exactly that
        envelope; `ConditionFailed` if it changed or is gone (nothing is written then)."""
        self._table.update(
            sealed.key,
            "SET #a = :new",
            names={"#a": sealed.attribute, "#wk": "wk", "#n": "n"},
            values={
                ":new": envelope,
                ":wk": sealed.envelope.get("wk"),
                ":n": sealed.envelope.get("n"),
            },
            condition="#a.#wk = :wk AND #a.#n = :n",
        )


_ATTRIBUTES = sorted(set(SEALED_ATTRIBUTES.values()))


def _encode(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode(cursor: str) -> dict[str, str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeError) as error:
        raise InvalidCursor(cursor) from error
    if not (
        isinstance(key, dict)
        and set(key) == {"PK", "SK"}
        and all(isinstance(v, str) for v in key.values())
    ):
        raise InvalidCursor(cursor)
    return key
