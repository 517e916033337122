"""Ctrl-C (SIGINT) or SIGTERM stops the whole local stack: no process, no open port left."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.support.cli import run_sfbroker
from tests.support.local_stack import port_is_open, start_stack


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize(
    ("db", "signum"),
    [
        pytest.param("dynamodb-local", signal.SIGINT, id="dynamodb-local-sigint"),
        pytest.param("moto", signal.SIGTERM, id="moto-sigterm"),
    ],
)
def test_signal_stops_everything(tmp_path: Path, db: str, signum: int) -> None:
    stack = start_stack(tmp_path, db=db)
    try:
        # The stack works on this backend before it is stopped.
        result = run_sfbroker(stack, tmp_path, ["orgs", "list"])
        assert result.returncode == 0, result.stderr
        registered = {org["username"] for org in json.loads(result.stdout)["orgs"]}
        assert registered == {"admin@acme.com", "hub@acme.com", "admin@acme.com.uat"}
        children = stack.descendants()
        if db == "dynamodb-local":
            comms = [Path(f"/proc/{pid}/comm").read_text().strip() for pid in children]
            assert "java" in comms, comms  # DynamoDB Local is a child: it must go too
        for name, port in stack.ports.items():
            assert port_is_open(port), name
    finally:
        returncode = stack.stop(signum)

    assert returncode == 0, stack.stderr()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if _alive(pid)] == []
    assert {name: port for name, port in stack.ports.items() if port_is_open(port)} == {}
    assert "stopped" in stack.stderr()
