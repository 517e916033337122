"""Cold-import time of each function's handler, as a ratio to `import boto3` alone."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from local import template as sam

ROOT = Path(__file__).resolve().parents[2]
ENV = {"TABLE_NAME": "bench", "KMS_KEY_ID": "alias/bench", "AWS_DEFAULT_REGION": "us-east-1"}


def _seconds(code: str, runs: int) -> float:
    """Median wall time of a fresh interpreter running `code` (interpreter start subtracted)."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=ENV)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def report(runs: int) -> None:
    bare = _seconds("pass", runs)
    boto3 = _seconds("import boto3", runs) - bare
    print(f"\n== cold import (median of {runs} fresh interpreters, interpreter start removed)")
    print(f"  import boto3                     {boto3 * 1000:7.1f} ms   1.00x")
    for spec in sam.functions(sam.load_template()):
        # As on Lambda: the layer under /opt/python, the function's code as the task root.
        code = (
            "import sys; sys.path[:0] = ['layers/common', '"
            + spec.code_uri.rstrip("/")
            + "']; import "
            + spec.handler.rsplit(".", 1)[0]
        )
        took = _seconds(code, runs) - bare
        print(f"  {spec.logical_id:<32} {took * 1000:7.1f} ms   {took / boto3:4.2f}x")
