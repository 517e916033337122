"""No secret reaches an X-Ray trace, with tracing on as deployed (`Tracing: Active`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from local.fake_salesforce import FakeSalesforceServer
from local.lambdas import REPO_ROOT
from tests.support.salesforce import refresh_token_of


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 standing in for the X-Ray daemon."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(0.5)
        yield daemon


def received(daemon: socket.socket) -> list[str]:
    documents = []
    while True:
        try:
            documents.append(daemon.recv(256 * 1024).decode())
        except TimeoutError:
            return documents


@pytest.mark.parametrize(
    "settings",
    [[], ["capture"]],
    ids=["as-deployed", "template-capture-settings-turned-on"],
)
def test_no_secret_reaches_a_trace(
    settings: list[str],
    moto_endpoint: str,
    salesforce: FakeSalesforceServer,
    acme: str,
    xray_daemon: socket.socket,
) -> None:
    salesforce.state.set_refresh_token_rotation("admin@acme.com")
    port = xray_daemon.getsockname()[1]
    trace_id = f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
    environment = {
        **os.environ,
        "LAMBDA_TASK_ROOT": str(REPO_ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "sfbroker-traced",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        "_X_AMZN_TRACE_ID": f"Root={trace_id};Parent=53995c3f42cd8ad8;Sampled=1",
        "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'layers' / 'common'}",
    }
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.traced_lambda", moto_endpoint, acme, *settings],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answers = json.loads(run.stdout.strip().splitlines()[-1])
    documents = received(xray_daemon)
    traces = "\n".join(documents)

    bodies = [json.loads(a) for a in answers if a]
    issued = [body for body in bodies if "accessToken" in body]
    minted = [body for body in bodies if "token" in body]
    secrets = {
        "auth URL": {acme},
        "refresh token": {refresh_token_of(acme), *salesforce.state.refresh_tokens},
        # Every access token Salesforce granted, the registrations' included.
        "access token": {answer["accessToken"] for answer in issued}
        | set(salesforce.state.access_tokens),
        "API token": {answer["token"] for answer in minted},
        "API token secret": {answer["token"].rsplit("_", 1)[1] for answer in minted},
    }
    # The scenario ran: registrations, refreshes, a minted token used through the authorizer.
    assert len(issued) >= 2
    assert len(secrets["access token"]) >= 1
    assert len(secrets["API token"]) == 1
    assert len(secrets["refresh token"]) >= 2  # rotated once
    # Tracing was on: handler, AWS and Salesforce calls were recorded.
    assert trace_id in traces
    for traced in ("## lambda_handler", '"namespace": "aws"', '"namespace": "remote"'):
        assert traced in traces, traced
    found = {
        kind: sum(traces.count(secret) for secret in values) for kind, values in secrets.items()
    }
    assert found == dict.fromkeys(secrets, 0), found
    assert "force://" not in traces
