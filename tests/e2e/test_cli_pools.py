"""`sfbroker pool …` against `make run`'s stack (SigV4, over HTTP): the seeded pool `ci` of
the Dev Hub `hub@acme.com`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import requests

from tests.e2e.test_cli_environments import _whoami
from tests.support.cli import parse_env_lines, run_sfbroker
from tests.support.local_stack import LocalStack

TAG = "ci"


def _counts(stack: LocalStack, tmp_path: Path) -> dict[str, int]:
    listed = run_sfbroker(stack, tmp_path, ["pool", "list", TAG])
    assert listed.returncode == 0, listed.stderr
    counts: dict[str, int] = json.loads(listed.stdout)
    return counts


def _read_github_file(path: Path) -> dict[str, str]:
    """`name<<delimiter` blocks, as the runner reads $GITHUB_ENV / $GITHUB_OUTPUT."""
    values, lines = {}, iter(path.read_text().splitlines())
    for line in lines:
        name, delimiter = line.split("<<", 1)
        values[name] = next(lines)
        assert next(lines) == delimiter
    return values


def test_fetch_retry_with_the_same_key_gets_the_same_org_then_return(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    before = _counts(local_stack, tmp_path)
    key = f"e2e-{uuid.uuid4().hex}"

    first = run_sfbroker(local_stack, tmp_path, ["pool", "fetch", TAG, "--idempotency-key", key])
    assert first.returncode == 0, first.stderr
    org = json.loads(first.stdout)
    assert org["tag"] == TAG
    assert org["sfdxAuthUrl"].startswith("force://")
    assert "accessToken" not in org
    # The retried step, this time asking for a token: the same org, and the token works.
    retry = run_sfbroker(
        local_stack,
        tmp_path,
        ["pool", "fetch", TAG, "--idempotency-key", key, "--access-token", "--format", "env"],
    )
    assert retry.returncode == 0, retry.stderr
    values = parse_env_lines(retry.stdout)
    assert values["SF_USERNAME"] == org["username"]
    assert "SF_SFDX_AUTH_URL" not in values
    assert _whoami(values["SF_INSTANCE_URL"], values["SF_ACCESS_TOKEN"]) == org["username"]
    during = _counts(local_stack, tmp_path)
    assert during["available"] == before["available"] - 1  # one org, not two
    assert during["assigned"] == before["assigned"] + 1

    returned = run_sfbroker(local_stack, tmp_path, ["pool", "return", TAG, org["username"]])
    assert returned.returncode == 0, returned.stderr
    assert json.loads(returned.stdout) == {"returned": org["username"], "tag": TAG}
    assert _counts(local_stack, tmp_path)["assigned"] == before["assigned"]
    # The key's org is gone: a retry now is a conflict, not another org.
    again = run_sfbroker(local_stack, tmp_path, ["pool", "fetch", TAG, "--idempotency-key", key])
    assert again.returncode == 5
    assert again.stderr_lines[-1].startswith("sfbroker: conflict: ")

    # A dry run reports the returned org's lease (its org is gone) and changes nothing.
    plans = []
    for _ in range(2):
        cleanup = run_sfbroker(local_stack, tmp_path, ["pool", "cleanup", TAG])
        assert cleanup.returncode == 0, cleanup.stderr
        report = json.loads(cleanup.stdout)
        assert report["dryRun"] is True
        plans.append(report["candidates"])
    assert plans[0] == plans[1]
    mine = [c for c in plans[0] if c["scratchOrgInfoId"] == org["scratchOrgInfoId"]]
    assert [c["reason"] for c in mine] == ["lease_without_org"]
    assert _counts(local_stack, tmp_path)["available"] == before["available"] - 1


def test_github_format_derives_the_key_from_the_run_and_masks_the_secrets(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    run_id = str(uuid.uuid4().int % 10**10)
    exported = []
    for attempt in ("first", "retried step"):
        env_file, output_file = tmp_path / f"env-{attempt}", tmp_path / f"out-{attempt}"
        env_file.touch()
        output_file.touch()
        fetched = run_sfbroker(
            local_stack,
            tmp_path,
            ["--format", "github", "pool", "fetch", TAG],
            GITHUB_ENV=str(env_file),
            GITHUB_OUTPUT=str(output_file),
            GITHUB_RUN_ID=run_id,
            GITHUB_RUN_ATTEMPT="1",
            GITHUB_JOB="validate",
            GITHUB_ACTION="__run",
        )
        assert fetched.returncode == 0, fetched.stderr
        values = _read_github_file(env_file)
        masks = [line for line in fetched.stdout.splitlines() if line.startswith("::add-mask::")]
        assert masks == [
            f"::add-mask::{values['SF_SFDX_AUTH_URL']}",
            f"::add-mask::{values['SF_PASSWORD']}",
        ]
        assert fetched.stdout.splitlines()[:2] == masks  # before anything else
        rest = "\n".join(fetched.stdout.splitlines()[2:]) + fetched.stderr
        assert values["SF_SFDX_AUTH_URL"] not in rest
        assert values["SF_PASSWORD"] not in rest
        exported.append(values)
    assert exported[0]["SF_USERNAME"] == exported[1]["SF_USERNAME"]
    # The org's auth URL is a working credential for the org it names.
    auth_url = exported[0]["SF_SFDX_AUTH_URL"]
    client_id, refresh_token = auth_url.removeprefix("force://").split("@")[0].split("::")
    token = requests.post(
        f"{exported[0]['SF_INSTANCE_URL']}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "refresh_token": refresh_token,
        },
        timeout=5,
    )
    assert token.status_code == 200, token.text
    assert (
        _whoami(exported[0]["SF_INSTANCE_URL"], token.json()["access_token"])
        == (exported[0]["SF_USERNAME"])
    )
    returned = run_sfbroker(local_stack, tmp_path, ["pool", "return", TAG, values["SF_USERNAME"]])
    assert returned.returncode == 0, returned.stderr


def test_an_unknown_pool_is_not_found_with_exit_4(local_stack: LocalStack, tmp_path: Path) -> None:
    fetched = run_sfbroker(local_stack, tmp_path, ["pool", "fetch", "nobody-prepared-this"])
    assert fetched.returncode == 4
    assert fetched.stderr_lines[-1].startswith(
        "sfbroker: pool_not_found: Dev Hub 'hub@acme.com' has no active scratch org tagged "
        "'nobody-prepared-this': check the pool tag"
    )
