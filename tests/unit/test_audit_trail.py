"""The audit trail service: background writes settled at the end, and day-by-day reads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sfbroker.errors import DependencyUnavailable, InvalidRequest
from sfbroker.services.audit import AuditTrail, RequestFacts
from sfbroker.store.audit import AuditRecord, AuditStore
from sfbroker.store.table import Table

from local.template import create_tables

TABLE = "sfbroker-unit"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REQUEST = RequestFacts(request_id="req-1", source_ip="203.0.113.10", route="POST /x")


class RecordingStore(AuditStore):
    """Keeps writes in memory; a write can be held until the test lets it go."""

    def __init__(self) -> None:
        self.written: list[AuditRecord] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.failures = 0

    def put(self, record: AuditRecord) -> None:
        self.started.set()
        assert self.release.wait(timeout=5)
        if self.failures:
            self.failures -= 1
            raise DependencyUnavailable("The database is unavailable")
        self.written.append(record)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def trail(store: RecordingStore, executor: ThreadPoolExecutor) -> AuditTrail:
    return AuditTrail(store, lambda: NOW, timedelta(days=90), executor)


def fixed(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def begin(trail: AuditTrail, target: str | None = "admin@acme.com") -> Any:
    return trail.begin(REQUEST, actor="apitoken:abc", action="token.issue", target=target)


def test_the_write_runs_while_the_action_does(trail: AuditTrail, store: RecordingStore) -> None:
    store.release.clear()
    pending = begin(trail)  # returns at once although the write is held
    assert store.started.wait(timeout=5), "the write did not start in the background"
    assert store.written == []
    store.release.set()
    pending.settle("success")
    (event,) = store.written
    assert (event.action, event.target, event.outcome) == (
        "token.issue",
        "admin@acme.com",
        "success",
    )
    assert event.expires_at == NOW + timedelta(days=90)
    pending.settle("error")  # settling twice does nothing
    assert len(store.written) == 1


def test_a_different_ending_rewrites_the_same_event(
    trail: AuditTrail, store: RecordingStore
) -> None:
    pending = begin(trail, target=None)
    pending.settle("error", action="org.replace", target="admin@acme.com", reason="conflict")
    first, final = store.written
    assert first.sort_key == final.sort_key  # same item: overwritten, not added
    assert (final.action, final.target, final.outcome, final.reason) == (
        "org.replace",
        "admin@acme.com",
        "error",
        "conflict",
    )


def test_a_success_whose_event_was_not_written_fails(
    trail: AuditTrail, store: RecordingStore
) -> None:
    store.failures = 1
    with pytest.raises(DependencyUnavailable):
        begin(trail).settle("success")
    assert store.written == []


def test_a_failure_is_recorded_even_if_the_first_write_failed(
    trail: AuditTrail, store: RecordingStore
) -> None:
    store.failures = 1
    begin(trail).settle("error", reason="org_not_found")
    (event,) = store.written
    assert (event.outcome, event.reason) == ("error", "org_not_found")


def test_a_denial_is_never_turned_into_a_failure(trail: AuditTrail, store: RecordingStore) -> None:
    store.failures = 1
    trail.record_denial(REQUEST, actor="anonymous", target=None, reason="missing")
    assert store.written == []


# ---------------------------------------------------------------- reads (moto)


@pytest.fixture
def table_store() -> Iterator[AuditStore]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, {"Table": TABLE})
        yield AuditStore(Table(dynamodb, TABLE))


def test_reads_span_days_in_time_order_and_page(
    table_store: AuditStore, executor: ThreadPoolExecutor
) -> None:
    moments = [
        NOW - timedelta(days=2, hours=1),
        NOW - timedelta(days=1, hours=1),
        NOW - timedelta(hours=1),
    ]
    for n, at in enumerate(moments):
        for actor in ("alice", "bob"):
            clock = fixed(at + timedelta(minutes=n))
            AuditTrail(table_store, clock, timedelta(days=90), executor).record(
                RequestFacts(f"req-{n}-{actor}", None, None),
                actor=actor,
                action="org.delete",
                target=f"user{n}@acme.com",
                outcome="success",
            )
    trail = AuditTrail(table_store, lambda: NOW, timedelta(days=90), executor)

    assert len(trail.read().events) == 2  # default: the last day
    since = NOW - timedelta(days=3)
    everything = trail.read(since=since).events
    assert [e.request_id for e in everything] == [
        "req-0-alice",
        "req-0-bob",
        "req-1-alice",
        "req-1-bob",
        "req-2-alice",
        "req-2-bob",
    ]
    assert [e.request_id for e in trail.read(since=since, actor="bob").events] == [
        "req-0-bob",
        "req-1-bob",
        "req-2-bob",
    ]
    assert [e.actor for e in trail.read(since=since, target="user1@acme.com").events] == [
        "alice",
        "bob",
    ]

    pages, token = [], None
    while True:
        page = trail.read(since=since, actor="alice", limit=2, next_token=token)
        pages.append([e.request_id for e in page.events])
        if (token := page.next_token) is None:
            break
    assert pages == [["req-0-alice", "req-1-alice"], ["req-2-alice"]]

    # A time without a zone is UTC; nothing older than the retention is looked for.
    naive = (NOW - timedelta(hours=2)).replace(tzinfo=None)
    assert len(trail.read(since=naive).events) == 2
    short = AuditTrail(table_store, lambda: NOW, timedelta(days=1), executor)
    assert len(short.read(since=since).events) == 2
    with pytest.raises(InvalidRequest):
        trail.read(next_token="bm90IGpzb24")


class CountingStore(RecordingStore):
    def __init__(self) -> None:
        super().__init__()
        self.days_read: list[Any] = []

    def day(self, day: Any, **_: Any) -> Iterator[AuditRecord]:
        self.days_read.append(day)
        return iter(())


def _position(day: str, key: str) -> str:
    import base64
    import json

    raw = json.dumps({"d": day, "k": key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("day", "key"),
    [
        ("0001-01-01", ""),  # 740k days of queries before the fix
        ((NOW - timedelta(days=91)).date().isoformat(), "x"),  # past the retention
        ((NOW + timedelta(days=2)).date().isoformat(), "x"),  # in the future
        (NOW.date().isoformat(), "2020-01-01T00:00:00#req"),  # a key of another day
    ],
)
def test_a_forged_next_token_is_400_before_any_query(
    executor: ThreadPoolExecutor, day: str, key: str
) -> None:
    store = CountingStore()
    trail = AuditTrail(store, lambda: NOW, timedelta(days=90), executor)
    with pytest.raises(InvalidRequest) as refused:
        trail.read(next_token=_position(day, key))
    assert refused.value.details == [{"field": "nextToken", "message": "not a valid page token"}]
    assert store.days_read == []


def test_a_next_token_at_the_edge_of_the_retention_is_read(executor: ThreadPoolExecutor) -> None:
    store = CountingStore()
    trail = AuditTrail(store, lambda: NOW, timedelta(days=90), executor)
    oldest = (NOW - timedelta(days=90)).date()
    trail.read(next_token=_position(oldest.isoformat(), f"{oldest.isoformat()}T12:00:00#r"))
    assert len(store.days_read) == 91
