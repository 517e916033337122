"""What one request costs: DynamoDB, KMS and Salesforce calls, counted on the real path.

Each scenario has its budget, the exact calls it may make. `make bench` prints them;
`tests/integration/test_call_budget.py` runs the same scenarios on both databases and
fails on any call over (or under) budget, so a regression fails `make test`.
Handlers run in-process on moto's server and the fake Salesforce (both over HTTP on
127.0.0.1), as the integration tests do.
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer
from sfbroker import runtime
from sfbroker.observability import logger as broker_logger

from local import template as sam
from local.fake_salesforce import FakeSalesforceServer, start_fake_salesforce
from local.ports import free_port
from tests.bench.figures import Figure
from tests.support.broker import Broker, configure_handlers

USERNAME = "admin@acme.com"
USER = {"username": USERNAME}
TOKEN_ITEM = {"PK": {"S": f"ORG#{USERNAME}"}, "SK": {"S": "TOKEN"}}
CONCURRENT_JOBS = 20


@dataclass(frozen=True)
class Scenario:
    name: str
    # Exact calls: "dynamodb.Query", "kms.Decrypt", "salesforce.oauth2/token", …
    budget: dict[str, int]
    reference: str
    run: Callable[[Broker, FakeSalesforceServer], None]
    # Uncounted: the state the scenario starts from.
    prepare: Callable[[Broker, FakeSalesforceServer], None] | None = None


def register(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    auth_url = salesforce.state.mint_auth_url(USERNAME)
    answer = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url})
    assert answer.status in {200, 201}, answer.body


def issue_token(broker: Broker, _: FakeSalesforceServer) -> None:
    answer = broker.call("POST", "/orgs/{username}/token", path_params=USER)
    assert answer.status == 200, answer.body


def cold_container(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    """A new container: no clients, no data keys in memory."""
    runtime.reset()
    broker.watch_aws()
    issue_token(broker, salesforce)


def cache_miss(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    broker.dynamodb.delete_item(TableName=broker.table_name, Key=TOKEN_ITEM)
    issue_token(broker, salesforce)


def concurrent_cold_cache(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    """20 CI jobs ask for the same org at once, nothing cached; Salesforce answers slowly."""
    broker.dynamodb.delete_item(TableName=broker.table_name, Key=TOKEN_ITEM)
    salesforce.faults.delay = 0.2
    try:
        with ThreadPoolExecutor(max_workers=CONCURRENT_JOBS) as pool:
            list(pool.map(lambda _: issue_token(broker, salesforce), range(CONCURRENT_JOBS)))
    finally:
        salesforce.faults.delay = 0


SANDBOX = f"{USERNAME}.uat"


def jit_sandbox(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    """A JIT sandbox of the production org registered: no credential of its own stored."""
    salesforce.state.create_sandbox(USERNAME, "uat")
    body = {"sandboxName": "uat", "productionUsername": USERNAME}
    answer = broker.call("POST", "/sandboxes", json_body=body)
    assert answer.status == 201, answer.body


def concurrent_jit_exchange(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    """20 CI jobs ask for the JIT sandbox's token at once; nothing cached yet."""
    sandbox = {"username": SANDBOX}

    def issue(_: int) -> None:
        answer = broker.call("POST", "/orgs/{username}/token", path_params=sandbox)
        assert answer.status == 200, answer.body

    salesforce.faults.delay = 0.2
    try:
        with ThreadPoolExecutor(max_workers=CONCURRENT_JOBS) as pool:
            list(pool.map(issue, range(CONCURRENT_JOBS)))
    finally:
        salesforce.faults.delay = 0


def sandbox_auth(broker: Broker, _: FakeSalesforceServer) -> None:
    """A JIT sandbox's token by its sandbox name, cached (the sandboxes function)."""
    body = {"productionUsername": USERNAME, "format": "accessToken"}
    answer = broker.call(
        "POST", "/sandboxes/{sandboxName}/auth", path_params={"sandboxName": "uat"}, json_body=body
    )
    assert answer.status == 200, answer.body


def get_environment(broker: Broker, _: FakeSalesforceServer) -> None:
    answer = broker.call(
        "GET",
        "/environments/{name}",
        path_params={"name": "UAT"},
        query={"repository": "acme/app", "authenticate": "true"},
    )
    assert answer.status == 200, answer.body


def create_environment(broker: Broker, _: FakeSalesforceServer) -> None:
    """The environment `UAT` on the JIT sandbox (the environments function's cold start)."""
    body = {"repository": "acme/app", "name": "UAT", "category": "test", "username": SANDBOX}
    answer = broker.call("POST", "/environments", json_body=body)
    assert answer.status == 201, answer.body


# In order: each starts from the state the previous one left.
SCENARIOS = [
    Scenario(
        "POST /orgs (register)",
        {
            "dynamodb.GetItem": 1,
            # The token is cached in a transaction over the org's version (issue 10).
            "dynamodb.PutItem": 3,
            "dynamodb.TransactWriteItems": 1,
            "kms.GenerateDataKey": 2,
            "salesforce.oauth2/token": 1,
            "salesforce.oauth2/userinfo": 1,
            "salesforce.query": 1,
            "salesforce.sobjects/describe": 1,
        },
        "-",
        register,
    ),
    Scenario(
        "token, warm, cached",
        {"dynamodb.Query": 1, "dynamodb.PutItem": 1},
        "sfp-server: a Salesforce refresh per call",
        issue_token,
    ),
    Scenario(
        "token, cold container, cached",
        {"dynamodb.Query": 1, "dynamodb.PutItem": 1, "kms.Decrypt": 1},
        "-",
        cold_container,
    ),
    Scenario(
        "token, cache miss (refresh)",
        {
            "dynamodb.Query": 2,
            "dynamodb.PutItem": 2,
            "dynamodb.TransactWriteItems": 1,
            "dynamodb.DeleteItem": 1,
            "kms.Decrypt": 1,
            "kms.GenerateDataKey": 1,
            "salesforce.oauth2/token": 1,
        },
        "-",
        cache_miss,
    ),
    Scenario(
        f"{CONCURRENT_JOBS} concurrent jobs, one org, cold cache: Salesforce refreshes",
        {"salesforce.oauth2/token": 1},
        f"sfp-server: {CONCURRENT_JOBS}",
        concurrent_cold_cache,
    ),
    Scenario(
        f"{CONCURRENT_JOBS} concurrent jobs, a JIT sandbox, cold cache: Salesforce calls",
        # One readiness query, one JIT exchange (sandboxAuth), one token from it.
        {
            "salesforce.tooling/query": 1,
            "salesforce.tooling/sandboxAuth": 1,
            "salesforce.oauth2/token": 1,
        },
        f"sfp-server: {CONCURRENT_JOBS} JIT exchanges",
        concurrent_jit_exchange,
        prepare=jit_sandbox,
    ),
    Scenario(
        "sandbox auth (JIT), warm, cached",
        # The audit event is written twice (same key): `settle` rewrites it because the
        # final event differs from the optimistic one.
        {"dynamodb.GetItem": 1, "dynamodb.Query": 1, "dynamodb.PutItem": 2},
        "-",
        sandbox_auth,
    ),
    Scenario(
        "GET /environments/{name}?authenticate=true (its org's token cached)",
        # The audit event is written twice here too (same key).
        {"dynamodb.GetItem": 2, "dynamodb.Query": 2, "dynamodb.PutItem": 2},
        "-",
        get_environment,
        prepare=create_environment,
    ),
]


def measure(scenario: Scenario, broker: Broker, salesforce: FakeSalesforceServer) -> Counter[str]:
    """The calls one scenario made: AWS operations and Salesforce endpoints."""
    if scenario.prepare is not None:
        scenario.prepare(broker, salesforce)
    broker.aws_calls.clear()
    salesforce.reset_counts()
    scenario.run(broker, salesforce)
    calls = Counter(broker.aws_calls)
    calls.update({f"salesforce.{name}": n for name, n in salesforce.counts.items()})
    return +calls


def only_salesforce(calls: Counter[str], budget: dict[str, int]) -> Counter[str]:
    """Where a budget names only Salesforce calls, only those are held against it."""
    if all(name.startswith("salesforce.") for name in budget):
        return Counter({k: n for k, n in calls.items() if k.startswith("salesforce.")})
    return calls


@contextmanager
def bench_stack() -> Iterator[tuple[Broker, FakeSalesforceServer]]:
    """moto + fake Salesforce + provisioned tables, the handlers' environment set."""
    port = free_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    # Figures only: no request log, no info logs between them.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    broker_logger.setLevel("WARNING")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        template = sam.load_template()
        resources = configure_handlers(template, os.environ.__setitem__, aws_endpoint_url=endpoint)
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        broker = Broker(template, resources.table_names["Table"], dynamodb)
        with start_fake_salesforce() as salesforce:
            salesforce.state.create_production_org(USERNAME)
            broker.watch_aws()
            yield broker, salesforce
    finally:
        runtime.reset()
        moto.stop()


def figures(broker: Broker, salesforce: FakeSalesforceServer) -> list[Figure]:
    rows = []
    # The handlers print EMF metric lines to stdout: keep them out of the table.
    for scenario in SCENARIOS:
        with redirect_stdout(io.StringIO()):
            calls = only_salesforce(measure(scenario, broker, salesforce), scenario.budget)
        rows.append(
            Figure(
                f"calls: {scenario.name}",
                _spelled(calls),
                _spelled(Counter(scenario.budget)),
                scenario.reference,
                calls == Counter(scenario.budget),
                {"calls": dict(calls), "budget": scenario.budget},
            )
        )
    return rows


def _spelled(calls: Counter[str]) -> str:
    """`ddb 2, kms 0, sf 0`; a Salesforce-only count by endpoint (`oauth2/token 1`)."""
    services: tuple[tuple[str, str], ...] = (
        ("dynamodb", "ddb"),
        ("kms", "kms"),
        ("salesforce", "sf"),
    )
    if all(name.startswith("salesforce.") for name in calls):
        services = services[2:]
    totals = {
        short: sum(n for k, n in calls.items() if k.startswith(f"{service}."))
        for service, short in services
    }
    return ", ".join(f"{short} {total}" for short, total in totals.items())
