"""Integration fixtures: the real handlers on moto or DynamoDB Local, and the fake Salesforce."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from sfbroker import runtime

from local import template as sam
from local.fake_salesforce import FakeSalesforceServer, start_fake_salesforce
from tests.support.broker import Broker

LOCAL_SALESFORCE_HOSTS = "127.0.0.1:*,localhost:*"


@pytest.fixture(params=["moto", "dynamodb-local"])
def database_endpoint(request: pytest.FixtureRequest, moto_endpoint: str) -> str:
    """Every test that uses the database runs on moto and on DynamoDB Local."""
    if request.param == "moto":
        return moto_endpoint
    endpoint: str = request.getfixturevalue("dynamodb_local_endpoint")
    return endpoint


@pytest.fixture
def broker(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, database_endpoint: str
) -> Iterator[Broker]:
    """Fresh tables (from template.yaml) and a fresh KMS key, handlers configured as deployed."""
    template = sam.load_template()
    suffix = uuid.uuid4().hex[:8]
    names = {"Table": f"sfbroker-{suffix}", "IdempotencyTable": f"sfbroker-idem-{suffix}"}
    dynamodb = boto3.client("dynamodb", endpoint_url=database_endpoint)
    sam.create_tables(dynamodb, names, template=template)
    kms = boto3.client("kms", endpoint_url=moto_endpoint)
    key_arn = kms.create_key(Description="sfbroker test")["KeyMetadata"]["Arn"]

    refs = {**names, "EnvelopeKey": key_arn, "EnvelopeKey.Arn": key_arn}
    for spec in sam.functions(template):
        for name, value in sam.function_environment(spec, refs, template=template).items():
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", database_endpoint)
    monkeypatch.setenv("SALESFORCE_HTTP_HOSTS", LOCAL_SALESFORCE_HOSTS)
    monkeypatch.setenv("SALESFORCE_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("SALESFORCE_MAX_RETRIES", "2")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "sfbroker")
    runtime.reset()
    harness = Broker(template=template, table_name=names["Table"], dynamodb=dynamodb)
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
