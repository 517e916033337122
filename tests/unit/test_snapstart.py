"""SnapStart's runtime hooks and the tracing switch of the functions."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sfbroker import observability, runtime


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TABLE_NAME", "sfbroker")
    monkeypatch.setenv("KMS_KEY_ID", "alias/sfbroker")
    runtime.reset()
    yield
    runtime.reset()


def test_the_hooks_are_registered_with_lambdas_snapshot_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered: dict[str, list[Callable[[], None]]] = {"before": [], "after": []}
    library = types.ModuleType("snapshot_restore_py")
    library.register_before_snapshot = registered["before"].append  # type: ignore[attr-defined]
    library.register_after_restore = registered["after"].append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    runtime.register_snapshot_hooks()
    assert registered == {"before": [runtime.prime], "after": [runtime.after_restore]}


def test_without_the_library_there_is_nothing_to_register(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails
    runtime.register_snapshot_hooks()  # no error: tests, the local stack


@pytest.mark.usefixtures("configured")
def test_the_snapshot_holds_the_clients_and_each_restore_makes_its_own() -> None:
    runtime.prime()
    snapshot = (runtime.dynamodb(), runtime.kms(), runtime.envelope_cipher())
    assert runtime.table().client is snapshot[0]  # primed: the requests reuse these
    runtime.after_restore()
    restored = (runtime.dynamodb(), runtime.kms(), runtime.envelope_cipher())
    # No connection pool, credential or cached data key is shared between environments.
    assert all(a is not b for a, b in zip(snapshot, restored, strict=True))


def test_a_restore_reseeds_random(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "reset", lambda: None)
    random.seed(15)
    in_the_snapshot = [random.random() for _ in range(4)]
    random.seed(15)  # the state every restored environment would start from
    runtime.after_restore()
    assert [random.random() for _ in range(4)] != in_the_snapshot


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 200, "body": "a token"}


def test_without_the_sdk_the_handler_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert observability.traced(handler) is handler


def test_with_the_sdk_the_handler_is_traced_and_answers_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    traced = observability.traced(handler)
    assert traced is not handler
    assert traced({}, None) == {"statusCode": 200, "body": "a token"}
