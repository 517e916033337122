"""The `sfbroker` CLI with the bearer API token the local stack mints (the token API)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.support.cli import parse_env_lines, run_sfbroker
from tests.support.local_stack import LocalStack

PRODUCTION = "admin@acme.com"


@pytest.fixture
def admin_token(local_stack: LocalStack) -> str:
    token = local_stack.exports.get("SFBROKER_TOKEN")
    if token is None:
        pytest.skip("no bearer-token API in template.yaml: the stack mints no token")
    return token


def test_the_admin_token_issues_a_salesforce_token(
    local_stack: LocalStack, tmp_path: Path, admin_token: str
) -> None:
    assert admin_token.startswith("sfb_")
    result = run_sfbroker(
        local_stack, tmp_path, ["token", PRODUCTION, "--format", "env"], iam=False
    )
    assert result.returncode == 0, result.stderr
    values = parse_env_lines(result.stdout)
    assert values["SF_USERNAME"] == PRODUCTION
    assert values["SF_ACCESS_TOKEN"].startswith(values["SF_ORG_ID"][:15] + "!")


def test_the_admin_token_lists_orgs_and_curl_reaches_the_token_api(
    local_stack: LocalStack, tmp_path: Path, admin_token: str
) -> None:
    result = run_sfbroker(local_stack, tmp_path, ["orgs", "list"], iam=False)
    assert result.returncode == 0, result.stderr
    cli_usernames = {org["username"] for org in json.loads(result.stdout)["orgs"]}
    assert PRODUCTION in cli_usernames
    # What the banner's curl line does.
    response = requests.get(
        f"{local_stack.url}/orgs", headers={"Authorization": f"Bearer {admin_token}"}, timeout=5
    )
    assert response.status_code == 200, response.text
    assert {org["username"] for org in response.json()["orgs"]} == cli_usernames


def test_a_wrong_token_exits_3_with_one_line(
    local_stack: LocalStack, tmp_path: Path, admin_token: str
) -> None:
    token_id = admin_token.split("_")[1]
    wrong = f"sfb_{token_id}_{'x' * 32}"
    for token in (wrong, "sfb_unknown_secret"):
        result = run_sfbroker(
            local_stack, tmp_path, ["orgs", "list"], iam=False, SFBROKER_TOKEN=token
        )
        assert result.returncode == 3, result
        (line,) = result.stderr_lines
        assert line.startswith("sfbroker: unauthorized: ")
        assert token not in line
