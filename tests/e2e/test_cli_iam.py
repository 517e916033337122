"""The `sfbroker` CLI in IAM (SigV4) mode against the local stack, over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import requests

from tests.support.cli import cli_environment, parse_env_lines, run_sfbroker
from tests.support.local_stack import LocalStack

PRODUCTION = "admin@acme.com"
DEV_HUB = "hub@acme.com"


def _userinfo(instance_url: str, access_token: str) -> dict[str, str]:
    """Ask the fake Salesforce who the token belongs to: proves the token is a real one."""
    response = requests.get(
        f"{instance_url}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def test_the_banner_prints_working_credentials_and_commands(local_stack: LocalStack) -> None:
    exports = local_stack.exports
    assert exports["AWS_ACCESS_KEY_ID"].startswith("AKIA")
    assert len(exports["AWS_SECRET_ACCESS_KEY"]) == 40
    assert exports["AWS_DEFAULT_REGION"] == "us-east-1"
    assert exports["SFBROKER_URL"] == f"http://127.0.0.1:{local_stack.ports['api']}"
    banner = local_stack.stdout()
    assert "sfbroker --iam orgs list" in banner
    assert f"sfbroker --iam token {PRODUCTION} --format env" in banner
    assert "awscurl --service execute-api --region us-east-1 " in banner
    if "SFBROKER_TOKEN" in exports:  # the token API exists (issue 4)
        assert 'curl -H "Authorization: Bearer $SFBROKER_TOKEN"' in banner
    else:
        assert "arrives with issue 4" in banner


def test_orgs_list_shows_the_registered_seed_orgs(local_stack: LocalStack, tmp_path: Path) -> None:
    result = run_sfbroker(local_stack, tmp_path, ["orgs", "list"])
    assert result.returncode == 0, result.stderr
    orgs = {org["username"]: org for org in json.loads(result.stdout)["orgs"]}
    assert set(orgs) == {PRODUCTION, DEV_HUB, f"{PRODUCTION}.uat"}  # + the JIT sandbox
    assert orgs[PRODUCTION]["orgType"] == "production"
    assert orgs[DEV_HUB]["isDevHub"] is True
    assert "force://" not in result.stdout
    dev_hubs = run_sfbroker(local_stack, tmp_path, ["orgs", "list", "--dev-hub"])
    assert [org["username"] for org in json.loads(dev_hubs.stdout)["orgs"]] == [DEV_HUB]


def test_orgs_get_shows_one_org_without_its_credential(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    result = run_sfbroker(local_stack, tmp_path, ["orgs", "get", PRODUCTION])
    assert result.returncode == 0, result.stderr
    org = json.loads(result.stdout)
    assert (org["username"], org["alias"], org["isDefault"]) == (PRODUCTION, "prod", True)
    assert org["instanceUrl"] == local_stack.salesforce_url
    assert not {"sfdxAuthUrl", "refreshToken", "accessToken"} & set(org)


def test_token_as_json_is_a_working_salesforce_token(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    result = run_sfbroker(local_stack, tmp_path, ["token", PRODUCTION, "--format", "json"])
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)
    assert token["username"] == PRODUCTION
    assert token["instanceUrl"] == local_stack.salesforce_url
    assert token["accessToken"].startswith(token["orgId"][:15] + "!")
    assert token["source"] in {"refresh", "cache"}
    expires_at = datetime.fromisoformat(token["expiresAt"].replace("Z", "+00:00"))
    assert expires_at > datetime.now(UTC)
    assert "refreshToken" not in token
    assert _userinfo(token["instanceUrl"], token["accessToken"])["preferred_username"] == (
        PRODUCTION
    )


def test_token_as_env_lines(local_stack: LocalStack, tmp_path: Path) -> None:
    result = run_sfbroker(local_stack, tmp_path, ["token", PRODUCTION, "--format", "env"])
    assert result.returncode == 0, result.stderr
    values = parse_env_lines(result.stdout)
    assert values["SF_USERNAME"] == PRODUCTION
    assert values["SF_INSTANCE_URL"] == local_stack.salesforce_url
    assert values["SF_ORG_ID"].startswith("00D")
    assert _userinfo(values["SF_INSTANCE_URL"], values["SF_ACCESS_TOKEN"])[
        "preferred_username"
    ] == (PRODUCTION)


def test_unknown_org_exits_4_with_one_line(local_stack: LocalStack, tmp_path: Path) -> None:
    for args in (["orgs", "get", "nobody@acme.com"], ["token", "nobody@acme.com"]):
        result = run_sfbroker(local_stack, tmp_path, args)
        assert result.returncode == 4, result
        assert result.stdout == ""
        (line,) = result.stderr_lines
        assert line.startswith("sfbroker: org_not_found: ")
        assert "nobody@acme.com" in line


def test_a_wrong_secret_is_refused_with_exit_3(local_stack: LocalStack, tmp_path: Path) -> None:
    wrong = "x" * 40
    result = run_sfbroker(local_stack, tmp_path, ["orgs", "list"], AWS_SECRET_ACCESS_KEY=wrong)
    assert result.returncode == 3, result
    (line,) = result.stderr_lines
    assert line.startswith("sfbroker: unauthorized: ")
    assert "signature" in line
    assert wrong not in line
    unknown_key = run_sfbroker(
        local_stack, tmp_path, ["orgs", "list"], AWS_ACCESS_KEY_ID="AKIAUNKNOWNUNKNOWN00"
    )
    assert unknown_key.returncode == 3, unknown_key


def test_gateway_errors_have_the_api_shape(local_stack: LocalStack) -> None:
    url = local_stack.url
    cases = [
        (requests.get(f"{url}/orgs", timeout=5), 401, "unauthorized"),
        (
            requests.get(f"{url}/orgs", headers={"Authorization": "Bearer sfb_a_b"}, timeout=5),
            401,
            "unauthorized",
        ),
        (requests.get(f"{url}/no/such/route", timeout=5), 404, "not_found"),
        (requests.put(f"{url}/v1/orgs", timeout=5), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error"] == code
        assert body["requestId"] == response.headers["x-amzn-RequestId"]
    assert requests.get(f"{url}/v1/health", timeout=5).json()["status"] == "ok"


def test_awscurl_reaches_the_iam_api(local_stack: LocalStack, tmp_path: Path) -> None:
    # awscurl is in the dev dependency group, so it sits beside this interpreter.
    awscurl = str(Path(sys.executable).with_name("awscurl"))
    assert Path(awscurl).exists(), "awscurl is missing from .venv: run `make test` to install it"
    completed = subprocess.run(
        [
            awscurl,
            "--service",
            "execute-api",
            "--region",
            "us-east-1",
            f"{local_stack.url}/orgs/{PRODUCTION}",
        ],
        env=cli_environment(local_stack, tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["username"] == PRODUCTION


def test_logs_carry_no_secret(local_stack: LocalStack, tmp_path: Path) -> None:
    token = json.loads(run_sfbroker(local_stack, tmp_path, ["token", PRODUCTION]).stdout)
    run_sfbroker(local_stack, tmp_path, ["orgs", "list"])
    stdout, stderr = local_stack.stdout(), local_stack.stderr()
    printed = {
        name: value
        for name, value in local_stack.exports.items()
        if name in ("AWS_SECRET_ACCESS_KEY", "SFBROKER_TOKEN")
    }
    assert "AWS_SECRET_ACCESS_KEY" in printed
    for name, value in printed.items():
        assert stdout.count(value) == 1, name  # the banner, nowhere else
        stdout = stdout.replace(f"export {name}={value}", "")
    assert "GET /orgs 200" in stderr  # the request log is there...
    leaks = [*printed.values(), token["accessToken"], "force://", "Signature=", "AWS4-HMAC"]
    for text in (stderr, stdout):
        for leaked in leaks:
            assert leaked not in text  # ...without headers, bodies or tokens
