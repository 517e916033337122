"""`local/heap.py`: the stack's heap gained, by owner (what `make soak` judges)."""

from __future__ import annotations

import json
import os
import signal
import sysconfig
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import moto
import pytest

from local import heap

REPO = heap.REPO_ROOT


@pytest.mark.parametrize(
    ("filename", "owner"),
    [
        (str(Path(moto.__file__).parent / "dynamodb" / "models" / "table.py"), "moto"),
        (str(REPO / "local" / "fake_salesforce" / "state.py"), "fake Salesforce"),
        (str(REPO / "layers" / "common" / "sfbroker" / "access.py"), "sfbroker"),
        (str(REPO / "local" / "apigw" / "app.py"), "local"),
        (str(REPO / "functions" / "tokens" / "handler.py"), "functions"),
        (str(Path(sysconfig.get_paths()["stdlib"]) / "copy.py"), None),
        ("<frozen importlib._bootstrap>", None),
    ],
)
def test_code_is_owned_by_its_package_and_the_standard_library_by_nobody(
    filename: str, owner: str | None
) -> None:
    assert heap._owner(filename) == owner


@pytest.fixture
def traced_on_signal(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "heap.json"
    previous = signal.getsignal(signal.SIGUSR1)
    heap.install(path)
    yield path
    signal.signal(signal.SIGUSR1, previous)
    tracemalloc.stop()


def kept_by_this_test(size: int) -> bytes:
    return bytes(size)


def test_the_first_signal_starts_tracing_and_later_ones_report_what_was_gained(
    traced_on_signal: Path,
) -> None:
    os.kill(os.getpid(), signal.SIGUSR1)
    first = json.loads(traced_on_signal.read_text())
    kept = kept_by_this_test(3 * 1024 * 1024)
    os.kill(os.getpid(), signal.SIGUSR1)
    second = json.loads(traced_on_signal.read_text())

    assert tracemalloc.is_tracing()
    assert first["pid"] == second["pid"] == os.getpid()
    assert first["traced_bytes"] < 1024 * 1024
    assert second["owners"]["tests"] >= len(kept)
    site = next(site for site in second["sites"] if site.startswith("tests/unit/test_heap"))
    assert second["sites"][site] >= len(kept)
    assert second["rss_kib"] > 0
