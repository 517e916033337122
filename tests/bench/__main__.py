"""`make bench`: what one request costs (AWS, KMS and Salesforce calls), cold-import time
as a ratio to `import boto3`, and latency percentiles on the local stack.

Figures, not assertions: tests assert behaviour and call counts; this prints numbers.
"""

from __future__ import annotations

import argparse
import sys

from tests.bench import calls, cold_import, latency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="cold-import runs per side")
    parser.add_argument("--requests", type=int, default=300, help="requests per latency row")
    args = parser.parse_args(argv)
    cold_import.report(args.runs)
    calls.report()
    latency.report(args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
