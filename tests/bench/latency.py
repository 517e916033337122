"""Token issuance on the local stack at 8 concurrent clients, against `GET /health` on
the same server at the same concurrency: the p99 ratio.

The stack runs every handler in one process behind an emulated API Gateway (each
function in up to 10 execution environments, as Lambda scales out), so absolute times
say little about Lambda; the ratio says what a token costs over a request that does no
work. DynamoDB Local serves the table: a database in its own process, as in AWS (moto
would run in the stack's process and hold its interpreter lock for every call).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import botocore.credentials
import requests
from sfbroker_client.api import BrokerClient
from sfbroker_client.auth import IamAuth

from tests.bench.figures import Figure
from tests.support.local_stack import start_stack

USERNAME = "admin@acme.com"
CLIENTS = 8
P99_TARGET = 3.0


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _concurrently(per_client: int, make_call: Callable[[], Callable[[], object]]) -> list[float]:
    """`CLIENTS` threads, each with its own client (own connection), `per_client` calls."""
    samples: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        call = make_call()
        for _ in range(5):  # warm: connection, caches
            call()
        mine = []
        for _ in range(per_client):
            started = time.perf_counter()
            call()
            mine.append(time.perf_counter() - started)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def figures(requests_per_client: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="sfbroker-bench-") as tmp:
        stack = start_stack(Path(tmp), db="dynamodb-local")
        try:
            exports = stack.exports
            credentials = botocore.credentials.Credentials(
                exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"]
            )

            def token_client() -> Callable[[], object]:
                client = BrokerClient(stack.url, IamAuth(credentials, "us-east-1"), timeout=30)
                return lambda: client.issue_token(USERNAME)

            def health_client() -> Callable[[], object]:
                session = requests.Session()

                def health() -> object:
                    answer = session.get(f"{stack.url}/health", timeout=30)
                    answer.raise_for_status()
                    return answer

                return health

            # Alternate the two, twice, so a change in the machine's load hits both.
            health, token = [], []
            for _ in range(2):
                health += _concurrently(requests_per_client // 2, health_client)
                token += _concurrently(requests_per_client // 2, token_client)
        finally:
            stack.stop()
    ratio = _p99(token) / _p99(health)
    return [
        Figure(
            f"local stack, token issue (IAM, cache hit) at {CLIENTS} concurrent clients",
            f"p99 {ratio:.2f}x p99 of GET /health ({_p99(token) * 1000:.0f} ms vs "
            f"{_p99(health) * 1000:.0f} ms)",
            f"<= {P99_TARGET:.0f}x",
            "-",
            ratio <= P99_TARGET,
            {
                "ratio": round(ratio, 3),
                "token_p50_ms": round(statistics.median(token) * 1000, 1),
                "token_p99_ms": round(_p99(token) * 1000, 1),
                "health_p50_ms": round(statistics.median(health) * 1000, 1),
                "health_p99_ms": round(_p99(health) * 1000, 1),
                "samples_each": len(token),
            },
        )
    ]
