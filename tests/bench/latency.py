"""Latency percentiles of token issuance on the local stack, over HTTP, both auth modes.

The stack runs every handler in one process on 2 cores, behind an emulated API Gateway:
absolute figures say little about Lambda, the spread and the relative costs say more.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import botocore.credentials
import requests
from sfbroker_client.api import BrokerClient
from sfbroker_client.auth import BearerAuth, IamAuth

from tests.support.local_stack import start_stack

USERNAME = "admin@acme.com"


def _percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return (
        f"p50 {cuts[49] * 1000:6.1f} ms   p95 {cuts[94] * 1000:6.1f} ms   "
        f"p99 {cuts[98] * 1000:6.1f} ms   max {max(samples) * 1000:6.1f} ms"
    )


def _timed(requests_count: int, call: Callable[[], object]) -> list[float]:
    for _ in range(10):  # warm: connections, data-key caches, imports
        call()
    samples = []
    for _ in range(requests_count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def report(requests_count: int) -> None:
    print(f"\n== latency on the local stack ({requests_count} sequential requests each, warm)")
    with tempfile.TemporaryDirectory(prefix="sfbroker-bench-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            exports = stack.exports
            credentials = botocore.credentials.Credentials(
                exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]
            )
            iam = BrokerClient(stack.url, IamAuth(credentials, "us-east-1"), timeout=10)
            bearer = BrokerClient(stack.url, BearerAuth(exports["SFBROKER_TOKEN"]), timeout=10)
            health = requests.Session()
            rows = [
                (
                    "GET /health (no auth, no handler work)",
                    lambda: health.get(f"{stack.url}/health", timeout=10),
                ),
                ("POST token, IAM (SigV4), cache hit", lambda: iam.issue_token(USERNAME)),
                (
                    "POST token, bearer (authorizer cached), cache hit",
                    lambda: bearer.issue_token(USERNAME),
                ),
            ]
            for name, call in rows:
                print(f"  {name:<52} {_percentiles(_timed(requests_count, call))}")
        finally:
            stack.stop()
