"""`Reencryption` over in-memory collaborators: counts, dry run, live writes win, failures,
interruption and resumption; and the command's arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sfbroker import admin_cli
from sfbroker.crypto import EnvelopeCipher, EnvelopeIntegrityError, Rewrapped
from sfbroker.errors import DependencyUnavailable
from sfbroker.services.reencrypt import Reencryption, ReencryptProgress
from sfbroker.store.sealed import SealedPage, SealedValue, SealedValueStore
from sfbroker.store.table import ConditionFailed


class MemorySealedStore(SealedValueStore):
    """Sealed values in key order; a cursor is the index of the next value."""

    def __init__(self, count: int) -> None:  # no table
        self.values = {
            f"ORG#user{i:02}@acme.com/META": {"wk": f"old-{i}", "n": f"n{i}", "ct": f"ct{i}"}
            for i in range(count)
        }
        self.replaced: list[str] = []
        self.before_replace: dict[str, dict[str, Any]] = {}  # record -> a live write

    def page(self, cursor: str | None, limit: int) -> SealedPage:
        start = int(cursor or 0)
        names = sorted(self.values)[start : start + limit]
        values = [SealedValue(_key(name), "authUrl", dict(self.values[name])) for name in names]
        more = start + limit < len(self.values)
        return SealedPage(values, str(start + limit) if more else None)

    def replace(self, sealed: SealedValue, envelope: dict[str, Any]) -> None:
        if sealed.record in self.before_replace:
            self.values[sealed.record] = self.before_replace.pop(sealed.record)
        if self.values.get(sealed.record) != sealed.envelope:
            raise ConditionFailed
        self.values[sealed.record] = envelope
        self.replaced.append(sealed.record)


def _key(record: str) -> dict[str, str]:
    pk, sk = record.split("/")
    return {"PK": pk, "SK": sk}


@dataclass
class ScriptedCipher(EnvelopeCipher):
    """Re-wraps `old-i` into `new-i`; refuses, reports current, or fails as scripted."""

    refused: set[str] = field(default_factory=set)
    current: set[str] = field(default_factory=set)
    unavailable_after: int | None = None
    calls: list[str] = field(default_factory=list)

    def rewrap(self, record: str, envelope: dict[str, Any]) -> Rewrapped:
        if self.unavailable_after is not None and len(self.calls) >= self.unavailable_after:
            raise DependencyUnavailable("The key service is unavailable")
        self.calls.append(record)
        if record in self.refused:
            raise EnvelopeIntegrityError(record)
        wrapped = str(envelope["wk"]).replace("old-", "new-")
        return Rewrapped({**envelope, "wk": wrapped}, already_current=record in self.current)


def walk(
    store: MemorySealedStore, cipher: ScriptedCipher, *, dry_run: bool = False, page_size: int = 3
) -> tuple[ReencryptProgress, list[tuple[int, str | None]]]:
    reports: list[tuple[int, str | None]] = []
    progress = Reencryption(store, cipher, page_size).run(
        dry_run=dry_run, cursor=None, report=lambda p: reports.append((p.seen, p.cursor))
    )
    return progress, reports


def test_every_value_is_rewrapped_once_and_progress_is_reported_per_page() -> None:
    store, cipher = MemorySealedStore(7), ScriptedCipher()
    progress, reports = walk(store, cipher)
    assert (progress.seen, progress.rewrapped, progress.skipped, progress.failed) == (7, 7, 0, 0)
    assert progress.complete
    assert progress.cursor is None
    assert progress.interrupted_by is None
    assert reports == [(3, "3"), (6, "6"), (7, None)]
    assert len(cipher.calls) == 7
    assert sorted(store.replaced) == sorted(store.values)
    assert all(v["wk"].startswith("new-") for v in store.values.values())
    # Nonce and ciphertext are never touched.
    assert [(v["n"], v["ct"]) for v in store.values.values()] == [
        (f"n{i}", f"ct{i}") for i in range(7)
    ]


def test_a_dry_run_counts_and_calls_and_writes_nothing() -> None:
    store, cipher = MemorySealedStore(5), ScriptedCipher()
    before = {k: dict(v) for k, v in store.values.items()}
    progress, _ = walk(store, cipher, dry_run=True)
    assert (progress.seen, progress.rewrapped, progress.complete) == (5, 5, True)
    assert cipher.calls == []
    assert store.replaced == []
    assert store.values == before


def test_a_value_live_traffic_rewrote_meanwhile_is_skipped_not_overwritten() -> None:
    store, cipher = MemorySealedStore(4), ScriptedCipher()
    live = {"wk": "fresh", "n": "fresh-n", "ct": "fresh-ct"}
    store.before_replace["ORG#user02@acme.com/META"] = live
    progress, _ = walk(store, cipher)
    assert (progress.rewrapped, progress.skipped) == (3, 1)
    assert store.values["ORG#user02@acme.com/META"] == live


def test_a_refused_value_is_counted_failed_and_the_walk_goes_on() -> None:
    store = MemorySealedStore(4)
    cipher = ScriptedCipher(refused={"ORG#user01@acme.com/META"})
    progress, _ = walk(store, cipher)
    assert (progress.seen, progress.rewrapped, progress.failed, progress.complete) == (
        4,
        3,
        1,
        True,
    )
    assert store.values["ORG#user01@acme.com/META"]["wk"] == "old-1"


def test_values_already_under_the_current_material_are_not_written() -> None:
    store = MemorySealedStore(3)
    cipher = ScriptedCipher(current={"ORG#user00@acme.com/META"})
    progress, _ = walk(store, cipher)
    assert (progress.rewrapped, progress.current) == (2, 1)
    assert "ORG#user00@acme.com/META" not in store.replaced


def test_an_interrupted_walk_resumes_from_its_cursor_and_converges() -> None:
    store = MemorySealedStore(8)
    cipher = ScriptedCipher(unavailable_after=4)
    progress, reports = walk(store, cipher)
    # The second page failed after one value: the cursor is that page's start.
    assert progress.interrupted_by == "The key service is unavailable"
    assert not progress.complete
    assert progress.cursor == "3"
    assert reports == [(3, "3")]
    cipher.unavailable_after = None
    resumed = Reencryption(store, cipher, 3).run(
        dry_run=False, cursor=progress.cursor, report=lambda _: None
    )
    assert resumed.complete
    assert resumed.seen == 5
    assert resumed.failed == 0
    assert all(v["wk"].startswith("new-") for v in store.values.values())
    # The value re-wrapped just before the failure is re-wrapped again on resume: harmless.
    assert store.replaced.count("ORG#user03@acme.com/META") == 2


def test_the_command_refuses_a_real_run_without_a_key_and_a_foreign_cursor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KMS_KEY_ID", raising=False)
    assert admin_cli.main(["--table", "t", "reencrypt"]) == 2
    assert "--key-id" in capsys.readouterr().err
    assert admin_cli.main(["--table", "t", "reencrypt", "--dry-run", "--page-size", "0"]) == 2
    assert "--page-size" in capsys.readouterr().err


def test_a_foreign_cursor_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for junk in ("not base64!", "e30=", "WzFd", "eyJQSyI6IDF9"):  # garbage, {}, [1], {"PK": 1}
        assert (
            admin_cli.main(["--table", "t", "reencrypt", "--dry-run", "--resume-from", junk]) == 2
        )
        assert "not a cursor" in capsys.readouterr().err
