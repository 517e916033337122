"""The whole `--sf-login` chain: local stack -> broker -> fake Salesforce -> the real `sf`.

A stack of its own runs with `--salesforce-tls` (the Salesforce CLI speaks only https):
the fake serves `https://localhost:<port>` with a throwaway CA, the in-process handlers
trust it through `REQUESTS_CA_BUNDLE`, and `sf` through `NODE_EXTRA_CA_CERTS`, which the
banner exports. The real `sfbroker` CLI fetches a token over SigV4 and logs `sf` in with
it; `sf data query` then uses the logged-in alias on its own. Every sf run gets a
throwaway HOME (`local.salesforce_cli.isolated_env`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack import SF_LOGIN_ALIAS, SF_QUERY
from tests.support.cli import (
    SF_TIMEOUT_SECONDS,
    export_lines,
    installed_sf,
    run_printed_sf_command,
    run_sfbroker,
    sf_env,
)
from tests.support.local_stack import LocalStack, port_is_open, start_stack

PRODUCTION = "admin@acme.com"
PRODUCTION_ORG_NAME = "Acme"


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose fake Salesforce speaks https; stopped, with nothing left, at the end."""
    installed_sf()  # before spending a stack start on it
    stack = start_stack(tmp_path_factory.mktemp("tls-stack"), salesforce_tls=True)
    ca_cert = stack.salesforce_ca_cert
    try:
        yield stack
    finally:
        below = stack.descendants()
        assert stack.stop() == 0, stack.stderr()
        assert not [pid for pid in below if Path(f"/proc/{pid}").exists()]
        assert not [name for name, port in stack.ports.items() if port_is_open(port)]
        assert not ca_cert.exists()  # the throwaway CA went with the fake


def _sf_json(sf: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [str(sf), *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=SF_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, f"sf {' '.join(args)}:\n{completed.stdout}{completed.stderr}"
    result: dict[str, Any] = json.loads(completed.stdout)["result"]
    return result


def test_sf_login_then_data_query(tls_stack: LocalStack, tmp_path: Path) -> None:
    sf = installed_sf()
    home = tmp_path / "home"
    env = sf_env(home, tls_stack.salesforce_ca_cert)
    # The same (cached) token as the login below gets: to look for it afterwards.
    issued = run_sfbroker(tls_stack, tmp_path, ["token", PRODUCTION])
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["accessToken"]
    org_id = json.loads(issued.stdout)["orgId"]

    result = run_sfbroker(
        tls_stack,
        tmp_path,
        ["token", PRODUCTION, "--sf-login", SF_LOGIN_ALIAS],
        base_env=env,
        timeout=SF_TIMEOUT_SECONDS,
        SFBROKER_SF_BIN=str(sf),
    )

    assert result.returncode == 0, result.stderr
    # What a CI log may show, and only that: the token went to sf, not to the log.
    assert json.loads(result.stdout) == {
        "username": PRODUCTION,
        "instanceUrl": tls_stack.salesforce_url,  # https://localhost:<port>
        "alias": SF_LOGIN_ALIAS,
    }
    assert result.stderr_lines == [
        f"sfbroker: Salesforce CLI logged in to {PRODUCTION} as '{SF_LOGIN_ALIAS}'"
    ]
    # The token is nowhere on a command line, nor in what sfbroker or sf printed.
    assert not any(token in arg for arg in result.argv)
    assert token not in result.stderr
    assert token not in result.stdout

    query = _sf_json(sf, env, "data", "query", "--query", SF_QUERY, "--target-org", SF_LOGIN_ALIAS)
    assert query["totalSize"] == 1
    (record,) = query["records"]
    assert (record["Id"], record["Name"]) == (org_id, PRODUCTION_ORG_NAME)

    for path in home.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"{path} holds the token in plain text"


def test_sf_login_into_the_jit_sandbox_of_an_environment(
    tls_stack: LocalStack, tmp_path: Path
) -> None:
    sf = installed_sf()
    env = sf_env(tmp_path / "home", tls_stack.salesforce_ca_cert)
    issued = run_sfbroker(
        tls_stack, tmp_path, ["env", "get", "UAT", "--repo", "acme/app", "--authenticate"]
    )
    assert issued.returncode == 0, issued.stderr
    sandbox_org_id = json.loads(issued.stdout)["orgId"]

    result = run_sfbroker(
        tls_stack,
        tmp_path,
        ["env", "get", "UAT", "--repo", "acme/app", "--authenticate", "--sf-login", "uat"],
        base_env=env,
        timeout=SF_TIMEOUT_SECONDS,
        SFBROKER_SF_BIN=str(sf),
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["username"] == f"{PRODUCTION}.uat"
    query = _sf_json(sf, env, "data", "query", "--query", SF_QUERY, "--target-org", "uat")
    (record,) = query["records"]
    assert record["Id"] == sandbox_org_id  # the sandbox's own org, not production's
    assert (
        sandbox_org_id
        != json.loads(run_sfbroker(tls_stack, tmp_path, ["token", PRODUCTION]).stdout)["orgId"]
    )


def test_the_printed_sf_login_command_works_as_printed(
    tls_stack: LocalStack, tmp_path: Path
) -> None:
    banner = tls_stack.stdout()
    exports = export_lines(banner)
    assert f"export NODE_EXTRA_CA_CERTS={tls_stack.salesforce_ca_cert}" in exports
    assert str(tls_stack.salesforce_ca_cert) in banner.split("Local credentials", 1)[0]
    (command,) = [line.strip() for line in banner.splitlines() if "--sf-login" in line]

    completed = run_printed_sf_command(command, exports, tls_stack, tmp_path)

    assert completed.returncode == 0, (command, completed.stdout, completed.stderr)
    assert PRODUCTION_ORG_NAME in completed.stdout.split(f'"alias": "{SF_LOGIN_ALIAS}"', 1)[1]
    assert "Total number of records retrieved: 1" in completed.stdout


def test_the_default_stack_has_no_tls(local_stack: LocalStack) -> None:
    banner = local_stack.stdout()
    assert local_stack.salesforce_url.startswith("http://127.0.0.1:")
    assert f"fake at {local_stack.salesforce_url} " in banner
    assert "NODE_EXTRA_CA_CERTS" not in banner
    assert "--sf-login" not in banner


def test_sf_login_into_a_scratch_org_fetched_from_the_pool(
    tls_stack: LocalStack, tmp_path: Path
) -> None:
    sf = installed_sf()
    env = sf_env(tmp_path / "home", tls_stack.salesforce_ca_cert)
    key = ("--idempotency-key", "sf-login-chain")
    fetched = run_sfbroker(tls_stack, tmp_path, ["pool", "fetch", "ci", *key])
    assert fetched.returncode == 0, fetched.stderr
    org = json.loads(fetched.stdout)

    # The retried step logs sf in: the same org, its auth URL through sf's stdin.
    result = run_sfbroker(
        tls_stack,
        tmp_path,
        ["pool", "fetch", "ci", *key, "--sf-login", "scratch"],
        base_env=env,
        timeout=SF_TIMEOUT_SECONDS,
        SFBROKER_SF_BIN=str(sf),
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "username": org["username"],
        "instanceUrl": org["instanceUrl"],
        "alias": "scratch",
    }
    assert not any(org["sfdxAuthUrl"] in arg for arg in result.argv)
    assert org["sfdxAuthUrl"] not in result.stdout + result.stderr
    query = _sf_json(sf, env, "data", "query", "--query", SF_QUERY, "--target-org", "scratch")
    (record,) = query["records"]
    assert record["Id"][:15] == org["orgId"][:15]  # the scratch org itself
    returned = run_sfbroker(tls_stack, tmp_path, ["pool", "return", "ci", org["username"]])
    assert returned.returncode == 0, returned.stderr
