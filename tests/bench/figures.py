"""One row of `make bench`'s table, the table itself and `bench/results.json`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results.json"


@dataclass(frozen=True)
class Figure:
    """A measured value beside its target and the reference the issue compares it with.

    `met` is None where there is nothing to hold the value against (not built yet).
    """

    measure: str
    value: str
    target: str
    reference: str
    met: bool | None
    numbers: dict[str, Any] = field(default_factory=dict)


def print_table(figures: list[Figure], out: TextIO) -> None:
    headers = ("measure", "measured", "target", "reference", "met")
    rows = [
        (f.measure, f.value, f.target, f.reference, {True: "yes", False: "NO", None: "—"}[f.met])
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    line = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    print(line.format(*headers), file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for row in rows:
        print(line.format(*row), file=out)


def write_results(figures: list[Figure], context: dict[str, Any], path: Path = RESULTS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({**context, "figures": [asdict(f) for f in figures]}, indent=2) + "\n"
    )
    return path
