"""`make bench` runs from this checkout and reports every figure of issue 15."""

from __future__ import annotations

import json
import subprocess

from tests.support.local_stack import REPO_ROOT

RESULTS = REPO_ROOT / "bench" / "results.json"
MEASURES = (
    "cold start, TokensFunction",
    "cold start, TokensFunction, SnapStart restore",
    "cold import, TokensFunction",
    "calls: token, warm, cached",
    "calls: 20 concurrent jobs, one org, cold cache",
    "calls: 20 concurrent jobs, a JIT sandbox",
    "pool fetch",
    "local stack, token issue",
)


def test_make_bench_prints_one_table_and_writes_the_results() -> None:
    RESULTS.unlink(missing_ok=True)
    run = subprocess.run(
        ["make", "bench", "BENCH_ARGS=--runs 1 --requests 20"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table = [line for line in run.stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].split("|")[1:-1]]
    assert header == ["measure", "measured", "target", "reference", "met"]
    figures = json.loads(RESULTS.read_text())["figures"]
    assert len(table) == len(figures) + 2  # header and rule
    for measure in MEASURES:
        assert any(f["measure"].startswith(measure) for f in figures), measure
    # Call counts are exact, not noisy: each is within its budget in every run.
    assert all(f["met"] for f in figures if f["measure"].startswith("calls: "))
    for figure in figures:
        if figure["measure"].startswith(("cold ", "local stack")):
            assert figure["numbers"]["ratio"] > 0, figure
