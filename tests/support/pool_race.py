"""Many CI jobs fetching from one pool at once: sfbroker's fetch, and sfp's algorithm.

`race_sfbroker` forks one process per fetcher — separate containers, each with its own
clients and caches — that wait at one barrier and then call the real pools handler.
`race_sfp` replays what `sfp pool fetch` does against the Dev Hub (query the newest
Available org, then patch it `Assigned`), with no broker in between.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from local.events import proxy_event
from local.lambdas import invoke, load_handler

FETCH_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class RaceOutcome:
    """How the orgs of one race went out."""

    fetchers: int
    handed_out: list[str]
    pool_empty: int
    other: list[str]

    @property
    def distinct(self) -> int:
        return len(set(self.handed_out))

    @property
    def duplicates(self) -> int:
        """Hand-outs of an org someone else also got."""
        return len(self.handed_out) - self.distinct

    def figures(self) -> str:
        return (
            f"{self.fetchers} fetchers: {self.distinct} distinct orgs, "
            f"{self.duplicates} duplicate hand-outs, {self.pool_empty} pool_empty"
            + (f", {len(self.other)} other answers" if self.other else "")
        )


def race_sfbroker(
    code_uri: str, handler: str, function_name: str, fetchers: int, results_dir: Path
) -> RaceOutcome:
    """`fetchers` processes POST /pools/ci/fetch at once (IAM callers, one role each).

    The processes come from a fork server (a clean process without the test's server
    threads) and get the handlers' environment of this moment; each writes its answer
    to `results_dir`.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["boto3", "requests", "aws_lambda_powertools", "sfbroker"])
    barrier = context.Barrier(fetchers)
    # 50 processes on a small machine: Salesforce answers slowly, never wrongly.
    environment = {**os.environ, "SALESFORCE_TIMEOUT_SECONDS": "20"}
    processes = [
        context.Process(
            target=_fetch_in_own_process,
            args=(i, environment, (code_uri, handler, function_name), barrier, results_dir),
        )
        for i in range(fetchers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=FETCH_TIMEOUT_SECONDS)
        if process.is_alive():
            process.kill()
    results = []
    for index in range(fetchers):
        path = results_dir / f"{index}.json"
        status, body = json.loads(path.read_text()) if path.exists() else (0, "{}")
        results.append((status, json.loads(body) if body else {}))
    return outcome(fetchers, results)


def _fetch_in_own_process(
    index: int,
    environment: dict[str, str],
    function: tuple[str, str, str],
    barrier: threading.Barrier,
    results_dir: Path,
) -> None:
    answer: tuple[int, str] = (0, json.dumps({"error": "did not answer"}))
    # Its logs and metrics are not the figures: keep them off the terminal.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        os.environ.clear()
        os.environ.update(environment)
        from sfbroker import runtime

        runtime.reset()  # a container of its own: its own clients, no warm caches
        event = proxy_event(
            "POST",
            "/pools/{tag}/fetch",
            path_params={"tag": "ci"},
            body="{}",
            iam_arn=f"arn:aws:sts::123456789012:assumed-role/ci/job-{index}",
        )
        load_handler(function[0], function[1])  # the cold start, before the race
        barrier.wait(timeout=FETCH_TIMEOUT_SECONDS)
        result = invoke(function[0], function[1], event, function[2])
        answer = (result["statusCode"], result.get("body") or "")
    except Exception as error:  # reported by the parent, never silently lost
        answer = (0, json.dumps({"error": repr(error)}))
    (results_dir / f"{index}.json").write_text(json.dumps(answer))


def race_sfp(
    instance_url: str,
    access_token: str,
    fetchers: int,
    *,
    api_version: str = "62.0",
    between: Callable[[], object] = lambda: None,
) -> RaceOutcome:
    """`fetchers` threads run sfp's fetch on the Dev Hub at once.

    `between` runs after a job's query and before its patch (sfp authenticates to the
    org in between); a barrier there is the schedule where every job queries first.
    """
    base = f"{instance_url}/services/data/v{api_version}"
    headers = {"Authorization": f"Bearer {access_token}"}
    soql = (
        "SELECT Id, SignupUsername FROM ScratchOrgInfo WHERE Pooltag__c = 'ci' "
        "AND Status = 'Active' AND Allocation_status__c = 'Available' ORDER BY CreatedDate DESC"
    )
    start = threading.Barrier(fetchers)
    results: list[tuple[int, dict[str, Any]]] = []

    def fetch() -> None:
        with requests.Session() as session:
            start.wait(timeout=FETCH_TIMEOUT_SECONDS)
            records = session.get(
                f"{base}/query?q={quote(soql)}", headers=headers, timeout=30
            ).json()["records"]
            between()
            if not records:
                results.append((409, {"error": "pool_empty"}))
                return
            newest = records[0]
            patched = session.patch(
                f"{base}/sobjects/ScratchOrgInfo/{newest['Id']}",
                json={"Allocation_status__c": "Assigned"},
                headers=headers,
                timeout=30,
            )
            results.append((200 if patched.ok else 502, {"username": newest["SignupUsername"]}))

    threads = [threading.Thread(target=fetch) for _ in range(fetchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=FETCH_TIMEOUT_SECONDS)
    return outcome(fetchers, results)


def outcome(fetchers: int, results: list[tuple[int, Any]]) -> RaceOutcome:
    """Tally (status, body) answers of fetch requests."""
    statuses: Counter[str] = Counter()
    handed_out, other = [], []
    for status, body in results:
        error = body.get("error") if isinstance(body, dict) else None
        if status == 200:
            handed_out.append(str(body["username"]))
        elif (status, error) == (409, "pool_empty"):
            statuses["pool_empty"] += 1
        else:
            other.append(f"{status} {error}")
    return RaceOutcome(fetchers, handed_out, statuses["pool_empty"], other)
