"""`sfbroker sandbox …` and `sfbroker env …` against `make run`'s stack (SigV4, over HTTP):
the seeded JIT sandbox `uat` and environment `UAT` of `acme/app`."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.support.cli import parse_env_lines, run_sfbroker
from tests.support.local_stack import LocalStack

PRODUCTION = "admin@acme.com"
SANDBOX = "admin@acme.com.uat"
REPO = ("--repo", "acme/app")


def _whoami(instance_url: str, access_token: str) -> str:
    response = requests.get(
        f"{instance_url}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["preferred_username"])


def test_sandbox_auth_gives_a_working_sandbox_token(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    result = run_sfbroker(
        local_stack,
        tmp_path,
        ["sandbox", "auth", "uat", "--production-username", PRODUCTION, "--format", "env"],
    )
    assert result.returncode == 0, result.stderr
    values = parse_env_lines(result.stdout)
    assert values["SF_USERNAME"] == SANDBOX
    assert _whoami(values["SF_INSTANCE_URL"], values["SF_ACCESS_TOKEN"]) == SANDBOX
    # The same token through POST /orgs/{username}/token: one cache for both.
    token = run_sfbroker(local_stack, tmp_path, ["token", SANDBOX])
    assert json.loads(token.stdout)["accessToken"] == values["SF_ACCESS_TOKEN"]


def test_env_list_and_get_authenticate(local_stack: LocalStack, tmp_path: Path) -> None:
    listed = run_sfbroker(local_stack, tmp_path, ["env", "list", *REPO])
    assert listed.returncode == 0, listed.stderr
    names = {e["name"]: e for e in json.loads(listed.stdout)["environments"]}
    assert names["UAT"]["username"] == SANDBOX
    # An environment of its own over the same JIT sandbox: the banner and README tours
    # leave UAT leased (`env lease acquire UAT --ttl 60`) on the shared stack.
    created = run_sfbroker(
        local_stack, tmp_path, ["env", "create", "JitTour", *REPO, "--username", SANDBOX]
    )
    assert created.returncode == 0, created.stderr
    token = run_sfbroker(local_stack, tmp_path, ["env", "get", "JitTour", *REPO, "--authenticate"])
    assert token.returncode == 0, token.stderr
    body = json.loads(token.stdout)
    assert body["username"] == SANDBOX
    assert _whoami(body["instanceUrl"], body["accessToken"]) == SANDBOX


def test_env_create_lease_and_delete(local_stack: LocalStack, tmp_path: Path) -> None:
    name = "LeaseTour"
    created = run_sfbroker(
        local_stack, tmp_path, ["env", "create", name, *REPO, "--username", PRODUCTION]
    )
    assert created.returncode == 0, created.stderr
    first = run_sfbroker(local_stack, tmp_path, ["env", "lease", "acquire", name, *REPO])
    assert first.returncode == 0, first.stderr
    lease = json.loads(first.stdout)
    assert lease["status"] == "acquired"
    second = run_sfbroker(local_stack, tmp_path, ["env", "lease", "acquire", name, *REPO])
    assert second.returncode == 5
    assert second.stderr.startswith("sfbroker: lease_held: ")
    others = run_sfbroker(local_stack, tmp_path, ["env", "get", name, *REPO, "--authenticate"])
    assert (others.returncode, others.stderr.split(":")[1].strip()) == (5, "lease_held")
    holder = run_sfbroker(
        local_stack,
        tmp_path,
        ["env", "get", name, *REPO, "--authenticate", "--format", "env"],
        SFBROKER_LEASE_ID=lease["leaseId"],
    )
    assert holder.returncode == 0, holder.stderr
    assert parse_env_lines(holder.stdout)["SF_USERNAME"] == PRODUCTION
    status = run_sfbroker(
        local_stack, tmp_path, ["env", "lease", "status", name, lease["leaseId"], *REPO]
    )
    assert json.loads(status.stdout)["status"] == "acquired"
    released = run_sfbroker(
        local_stack, tmp_path, ["env", "lease", "release", name, lease["leaseId"], *REPO]
    )
    assert json.loads(released.stdout)["status"] == "released"
    deleted = run_sfbroker(local_stack, tmp_path, ["env", "delete", name, *REPO])
    assert deleted.returncode == 0, deleted.stderr
    gone = run_sfbroker(local_stack, tmp_path, ["env", "get", name, *REPO])
    assert gone.returncode == 4
