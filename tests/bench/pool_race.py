"""The pool race: 50 CI jobs fetch from a pool of 30 at once, through sfbroker and through
a simulation of sfp's own fetch (query the newest Available org, then patch it).

Figures, not assertions: tests/integration/test_pools.py asserts them, with one process
per fetcher; here the fetchers are threads of the bench's process (quicker to start).
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from datetime import timedelta
from typing import Any

from local.fake_salesforce import FakeSalesforceServer
from local.moto_writes import serialize_dynamodb_writes
from tests.bench.calls import bench_stack
from tests.bench.figures import Figure
from tests.support.pool_race import RaceOutcome, outcome, race_sfp

FETCHERS, POOL = 50, 30
HUB = "hub@acme.com"


def _fill_pool(salesforce: FakeSalesforceServer) -> None:
    for key, record in list(salesforce.state.dev_hub_records.items()):
        if record.fields.get("Pooltag__c") == "ci":
            del salesforce.state.dev_hub_records[key]
    now = salesforce.state.now()
    for i in range(POOL):
        salesforce.state.create_scratch_org(
            HUB, pool_tag="ci", created_date=now - timedelta(minutes=i)
        )


def _value(outcome: RaceOutcome, seconds: float) -> str:
    return (
        f"{outcome.distinct} orgs, {outcome.duplicates} duplicates, {outcome.pool_empty} "
        f"pool_empty, {len(outcome.other)} other; {FETCHERS / seconds:.1f} fetches/s"
    )


def _numbers(outcome: RaceOutcome, seconds: float) -> dict[str, float]:
    return {
        "distinct": outcome.distinct,
        "duplicates": outcome.duplicates,
        "pool_empty": outcome.pool_empty,
        "other": len(outcome.other),
        "seconds": round(seconds, 2),
    }


def figures() -> list[Figure]:
    """sfbroker's race and sfp's, on the same pool (moto's writes made atomic first)."""
    serialize_dynamodb_writes()
    with redirect_stdout(io.StringIO()), bench_stack() as (broker, salesforce):
        salesforce.state.create_dev_hub(HUB)
        registered = broker.call(
            "POST",
            "/orgs",
            json_body={"sfdxAuthUrl": salesforce.state.mint_auth_url(HUB), "isDevHub": True},
        )
        assert registered.status == 201, registered.body
        _fill_pool(salesforce)
        start = threading.Barrier(FETCHERS)

        def fetch(job: int) -> tuple[int, Any]:
            start.wait(timeout=60)
            answer = broker.call(
                "POST",
                "/pools/{tag}/fetch",
                path_params={"tag": "ci"},
                iam_arn=f"arn:aws:sts::123456789012:assumed-role/ci/job-{job}",
            )
            return answer.status, answer.body

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=FETCHERS) as jobs:
            ours = outcome(FETCHERS, list(jobs.map(fetch, range(FETCHERS))))
        ours_seconds = time.monotonic() - started
        _fill_pool(salesforce)
        barrier = threading.Barrier(FETCHERS)
        token = salesforce.state.mint_access_token(HUB)
        started = time.monotonic()
        theirs = race_sfp(
            salesforce.base_url, token, FETCHERS, between=lambda: barrier.wait(timeout=60)
        )
        theirs_seconds = time.monotonic() - started
    return [
        Figure(
            f"pool fetch, {FETCHERS} concurrent on {POOL} orgs (sfbroker, threads of one process)",
            _value(ours, ours_seconds),
            f"0 duplicates, {POOL} orgs, {FETCHERS - POOL} pool_empty",
            f"sfp: {theirs.duplicates} duplicates",
            ours.duplicates == 0 and ours.distinct == POOL,
            _numbers(ours, ours_seconds),
        ),
        Figure(
            f"pool fetch, {FETCHERS} concurrent on {POOL} orgs (sfp's algorithm, simulated)",
            _value(theirs, theirs_seconds),
            "—",
            "query newest Available, then patch; all query first",
            None,
            _numbers(theirs, theirs_seconds),
        ),
    ]
