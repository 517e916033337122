"""moto's DynamoDB checks a write's condition and then applies the write, without a lock:
two threads of its server can both pass `attribute_not_exists` on one item. DynamoDB
makes a conditional write atomic, and sfbroker's pool leases rely on that, so every
moto server we start serializes DynamoDB writes (DynamoDB Local needs no such help).
"""

from __future__ import annotations

import threading
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()


def serialize_dynamodb_writes() -> None:
    """Make moto's conditional writes atomic, as DynamoDB's are (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "serialized", False):
            continue

        def serialized(self: Any, *args: Any, _write: Any = original, **kwargs: Any) -> Any:
            with _lock:
                return _write(self, *args, **kwargs)

        serialized.serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialized)
