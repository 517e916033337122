"""Shared fixtures: local AWS (moto server, DynamoDB Local) for integration and e2e tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from local.ports import free_port

# Every test's logs, answers, stored items and stack output are scanned for secrets.
pytest_plugins = ["tests.support.secret_scan", "tests.support.run_summary"]


@pytest.fixture(scope="session")
def aws_credentials() -> None:
    """Dummy credentials: nothing here may ever reach a real AWS account."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)


@pytest.fixture(scope="session")
def moto_endpoint(aws_credentials: None) -> Iterator[str]:
    """moto's server on 127.0.0.1 (DynamoDB and KMS) for the whole session."""
    from moto.server import ThreadedMotoServer

    from local.moto_writes import serialize_dynamodb_writes

    serialize_dynamodb_writes()

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def dynamodb_local_endpoint(aws_credentials: None) -> Iterator[str]:
    """DynamoDB Local (Java), started once for the session and stopped after it."""
    from local import dynamodb_local

    server = dynamodb_local.start()
    yield server.endpoint_url
    server.stop()
