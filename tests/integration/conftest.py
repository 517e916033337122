"""Integration fixtures: the real handlers on moto or DynamoDB Local, and the fake Salesforce."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from sfbroker import runtime

from local import template as sam
from local.fake_salesforce import FakeSalesforceServer, start_fake_salesforce
from tests.support.broker import Broker, configure_handlers


@pytest.fixture(params=["moto", "dynamodb-local"])
def database_endpoint(request: pytest.FixtureRequest) -> str | None:
    """Every test that uses the database runs on moto and on DynamoDB Local."""
    if request.param == "moto":
        return None  # the tables live in moto's server, beside the keys
    endpoint: str = request.getfixturevalue("dynamodb_local_endpoint")
    return endpoint


@pytest.fixture
def broker(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, database_endpoint: str | None
) -> Iterator[Broker]:
    """Fresh tables and key (from template.yaml), handlers configured as deployed."""
    template = sam.load_template()
    resources = configure_handlers(
        template,
        monkeypatch.setenv,
        aws_endpoint_url=moto_endpoint,
        dynamodb_endpoint_url=database_endpoint,
    )
    dynamodb = boto3.client("dynamodb", endpoint_url=database_endpoint or moto_endpoint)
    harness = Broker(
        template=template, table_name=resources.table_names["Table"], dynamodb=dynamodb
    )
    harness.watch_aws()
    yield harness
    runtime.reset()


@pytest.fixture
def salesforce() -> Iterator[FakeSalesforceServer]:
    """A fresh fake Salesforce (empty world) on 127.0.0.1 for one test."""
    with start_fake_salesforce() as fake:
        yield fake


@pytest.fixture
def acme(salesforce: FakeSalesforceServer) -> str:
    """A production org `admin@acme.com`; returns a working auth URL for it."""
    salesforce.state.create_production_org("admin@acme.com")
    return salesforce.state.mint_auth_url("admin@acme.com")
