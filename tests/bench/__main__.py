"""`make bench`: one table with every figure of issue 15 beside its target and reference,
also written to bench/results.json.

Cold figures are ratios to a baseline measured in the same run (alternated runs of
fresh interpreters, median); call counts are exact. Figures, not assertions: the tests
pin the call counts (tests/integration/test_call_budget.py), never times.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

from tests.bench import calls, cold, latency, pool_race
from tests.bench.figures import Figure, print_table, write_results
from tests.support.token_api import create_token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="fresh-interpreter pairs per row")
    parser.add_argument("--requests", type=int, default=200, help="requests per latency client")
    parser.add_argument("--skip-latency", action="store_true", help="no local-stack row")
    args = parser.parse_args(argv)

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="sfbroker-bench-") as tmp:
        workdir = Path(tmp)
        with calls.bench_stack() as (broker, salesforce):
            print("calls per request …", file=sys.stderr)
            figures += calls.figures(broker, salesforce)
            # The state cold starts need: the org registered with a cached token, the JIT
            # sandbox and the environment UAT (the call scenarios leave them so), and an
            # API token for the authorizer.
            with redirect_stdout(io.StringIO()):  # its EMF metric line
                calls.issue_token(broker, salesforce)
            _, token = create_token(scopes=("token:issue",), orgs=("*@acme.com",))
            events = dict(cold.typical_events(token, workdir))
            print(f"cold import, {args.runs} pairs per function …", file=sys.stderr)
            imports = cold.import_figures(args.runs)
            print(f"cold start, {args.runs} pairs per function …", file=sys.stderr)
            figures = cold.start_figures(args.runs, events, workdir, salesforce) + imports + figures
    print("pool race …", file=sys.stderr)
    figures += pool_race.figures()
    if not args.skip_latency:
        print("latency on the local stack …", file=sys.stderr)
        figures += latency.figures(args.requests)
    print_table(figures, sys.stdout)
    path = write_results(
        figures,
        {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "runs": args.runs,
            "load_average": os.getloadavg(),
        },
    )
    print(
        f"\nwritten to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
