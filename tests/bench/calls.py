"""What one request costs: DynamoDB, KMS and Salesforce calls, counted on the real path.

Handlers run in-process on moto's server and the fake Salesforce (both over HTTP on
127.0.0.1), as the integration tests do.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout

import boto3
from moto.server import ThreadedMotoServer
from sfbroker import runtime
from sfbroker.observability import logger as broker_logger

from local import template as sam
from local.fake_salesforce import FakeSalesforceServer, start_fake_salesforce
from local.ports import free_port
from tests.support.broker import Broker, configure_handlers

USER = {"username": "admin@acme.com"}


@contextmanager
def bench_stack() -> Iterator[tuple[Broker, FakeSalesforceServer]]:
    """moto + fake Salesforce + provisioned tables, the handlers' environment set."""
    port = free_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        template = sam.load_template()
        resources = configure_handlers(template, os.environ.__setitem__, aws_endpoint_url=endpoint)
        # Figures only: no request log, no info logs between them.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        broker_logger.setLevel("WARNING")
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        broker = Broker(template, resources.table_names["Table"], dynamodb)
        with start_fake_salesforce() as salesforce:
            yield broker, salesforce
    finally:
        runtime.reset()
        moto.stop()


def _measure(
    broker: Broker, salesforce: FakeSalesforceServer, requests: int, call: Callable[[], object]
) -> str:
    broker.aws_calls.clear()
    salesforce.reset_counts()
    for _ in range(requests):
        call()
    dynamodb = broker.aws_calls.of("dynamodb") / requests
    kms = broker.aws_calls.of("kms") / requests
    sf = sum(salesforce.counts.values()) / requests
    return f"{dynamodb:6.2f} {kms:6.2f} {sf:6.2f}"


def report() -> None:
    out = sys.stdout
    print("\n== calls per request (DynamoDB, KMS, Salesforce)", file=out)
    print(f"  {'scenario':<52} {'ddb':>6} {'kms':>6} {'sf':>6}", file=out)
    # The handlers print EMF metric lines to stdout: keep them out of the figures.
    with redirect_stdout(io.StringIO()), bench_stack() as (broker, salesforce):
        salesforce.state.create_production_org("admin@acme.com")
        auth_url = salesforce.state.mint_auth_url("admin@acme.com")
        broker.watch_aws()

        def row(name: str, figures: str) -> None:
            print(f"  {name:<52} {figures}", file=out)

        row(
            "POST /orgs (register)",
            _measure(
                broker,
                salesforce,
                1,
                lambda: broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url}),
            ),
        )

        def token() -> None:
            answer = broker.call("POST", "/orgs/{username}/token", path_params=USER)
            assert answer.status == 200, answer.body

        row("token, warm container, cached (mean of 100)", _measure(broker, salesforce, 100, token))
        runtime.reset()
        broker.watch_aws()
        row("token, cold container, cached", _measure(broker, salesforce, 1, token))

        def drop_cached_token() -> None:
            broker.dynamodb.delete_item(
                TableName=broker.table_name,
                Key={"PK": {"S": "ORG#admin@acme.com"}, "SK": {"S": "TOKEN"}},
            )

        drop_cached_token()
        row("token, cache miss (refresh)", _measure(broker, salesforce, 1, token))
        drop_cached_token()
        salesforce.faults.delay = 0.2
        salesforce.reset_counts()
        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(lambda _: token(), range(20)))
        salesforce.faults.delay = 0
        refreshes = salesforce.counts["oauth2/token"]
        print(
            f"  20 concurrent requests on a cold cache: {refreshes} Salesforce refresh(es)",
            file=out,
        )
