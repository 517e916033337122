"""What the stack's Python heap gained, by owner (`python -m local.stack --heap-report FILE`).

Opt-in, for `make soak`: RSS alone cannot tell a leak from data, because moto keeps
everything stored in DynamoDB (and KMS) in this process, and so does the fake Salesforce
with its orgs and issued tokens. With the option, the first SIGUSR1 starts tracemalloc
(it slows the stack down from then on) and writes FILE; every later SIGUSR1 writes FILE
anew with what was allocated since the first and is still alive (after a full garbage
collection), by owner. The owner of an allocation is the innermost frame of its
traceback outside the standard library (a dict built by `copy.deepcopy` inside moto is
moto's): `moto`, `fake Salesforce` (local/fake_salesforce), `sfbroker` (the layer),
`functions`, `local` (the gateway, the stack), or another library by its top-level
package. The largest allocation sites (innermost such frame, file:line) come with it, so
a growing one can be found. Nothing here reads a value: only sizes and code locations.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sysconfig
import time
import tracemalloc
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Final

__all__ = ["OWNERS_OF_DATA", "install", "report"]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
FRAMES: Final = 12
TOP_SITES: Final = 25
# Owners whose memory is the stored data of the emulated services, not our code's.
OWNERS_OF_DATA: Final = frozenset({"moto", "fake Salesforce"})
_STDLIB: Final = tuple(
    str(Path(sysconfig.get_paths()[name]).resolve()) + os.sep for name in ("stdlib", "platstdlib")
)
_SITE: Final = f"{os.sep}site-packages{os.sep}"


def install(path: Path) -> None:
    """On every SIGUSR1 write the report to `path`; the first one starts tracing."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
        write(path)

    signal.signal(signal.SIGUSR1, on_signal)


def write(path: Path) -> None:
    """Write the report atomically (a reader never sees half of it)."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(report()), encoding="utf-8")
    partial.replace(path)


def report() -> dict[str, object]:
    """RSS (KiB, taken first: the snapshot itself takes memory), the traced heap (what was
    allocated since tracing started and is alive), by owner and largest sites."""
    started = time.monotonic()
    rss = _rss_kib()
    gc.collect()  # garbage in reference cycles is not growth
    traced, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    owners: dict[str, int] = {}
    sites: dict[str, int] = {}
    for statistic in snapshot.statistics("traceback"):
        owner, site = _attribute(statistic.traceback)
        owners[owner] = owners.get(owner, 0) + statistic.size
        sites[site] = sites.get(site, 0) + statistic.size
    largest = sorted(sites.items(), key=lambda item: item[1], reverse=True)[:TOP_SITES]
    return {
        "pid": os.getpid(),
        "rss_kib": rss,
        "traced_bytes": traced,
        "traced_peak_bytes": peak,
        "owners": dict(sorted(owners.items())),
        "sites": dict(largest),
        "seconds": round(time.monotonic() - started, 2),
    }


def _attribute(traceback: tracemalloc.Traceback) -> tuple[str, str]:
    """(owner, file:line) of the innermost frame outside the standard library."""
    for frame in reversed(traceback):  # a Traceback lists the oldest frame first
        owner = _owner(frame.filename)
        if owner is not None:
            return owner, f"{_short(frame.filename)}:{frame.lineno}"
    innermost = traceback[-1]
    return "standard library", f"{_short(innermost.filename)}:{innermost.lineno}"


@cache
def _owner(filename: str) -> str | None:
    """Who owns code in `filename`; None for the standard library (look further out)."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return None
    resolved = str(Path(filename).resolve())
    if _SITE in resolved:
        package = resolved.split(_SITE, 1)[1].split(os.sep, 1)[0]
        return package.removesuffix(".py")
    if resolved.startswith(str(REPO_ROOT) + os.sep):
        parts = Path(resolved).relative_to(REPO_ROOT).parts
        if parts[:2] == ("local", "fake_salesforce"):
            return "fake Salesforce"
        if "sfbroker" in parts:
            return "sfbroker"
        return parts[0]
    if resolved.startswith(_STDLIB):
        return None
    return "other"


@cache
def _short(filename: str) -> str:
    resolved = Path(filename).resolve()
    if str(resolved).startswith(str(REPO_ROOT) + os.sep):
        return str(resolved.relative_to(REPO_ROOT))
    text = str(resolved)
    return text.split(_SITE, 1)[1] if _SITE in text else resolved.name


def _rss_kib() -> int:
    for line in Path(f"/proc/{os.getpid()}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # pragma: no cover - Linux always has it
