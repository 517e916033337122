"""`--sf-login` against the real Salesforce CLI (`sf`, installed under local/node by `make`).

The client's `log_in` hands `sf` credentials minted by the fake Salesforce, served over
TLS on `localhost` (sf speaks only https), then `sf` itself uses the logged-in alias.
Every sf run gets a throwaway HOME (`local.salesforce_cli.isolated_env`): nothing here
reads or writes the user's own sf configuration.

What sf does with secrets (observed, @salesforce/cli 2.146): with
SF_USE_GENERIC_UNIX_KEYCHAIN=true it keeps an AES-256-GCM key in `~/.sfdx/key.json`
(mode 0600; sf refuses a key file with other permissions) and stores the access and
refresh tokens in `~/.sfdx/<username>.json` encrypted with it (`<hex>:<hex tag>`). The
key lies next to the ciphertext: that is protection against leaks of the auth file
alone, not against anyone who can read the HOME.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from sfbroker_client.salesforce_cli import SfLogin, SfLoginFailed, log_in

from local.fake_salesforce import FakeSalesforceServer, start_fake_salesforce
from local.salesforce_cli import SalesforceCliMissing, isolated_env, sf_bin
from tests.support.salesforce import refresh_token_of

TOKEN_USER = "ci-token@acme.com"
TOKEN_ORG_NAME = "Acme"
URL_USER = "ci-url@globex.com"
URL_ORG_NAME = "Globex"
SF_TIMEOUT_SECONDS = 60
_run = subprocess.run  # the real one: tests below record the client's calls
ENCRYPTED = r"^[0-9a-f]+:[0-9a-f]{32}$"  # @salesforce/core's `<iv+ciphertext>:<GCM tag>`


def installed_sf() -> Path:
    """The installed `sf`: a missing one fails (never skips) the test, saying what to run."""
    try:
        return sf_bin()
    except SalesforceCliMissing as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSalesforceServer]:
    """The fake over https on `localhost`, with one org per login style."""
    with start_fake_salesforce(tls=True, hostname="localhost") as server:
        server.state.create_production_org(TOKEN_USER, name=TOKEN_ORG_NAME)
        server.state.create_production_org(URL_USER, name=URL_ORG_NAME)
        yield server


@dataclass
class SfRun:
    """One recorded `subprocess.run` of the client: what the child got."""

    argv: list[str]
    env: dict[str, str]
    input: str | None


@dataclass
class Sandbox:
    """A throwaway HOME for sf, with the client's process spawns and the fake's logins."""

    home: Path
    env: dict[str, str]
    runs: list[SfRun]
    bearer_tokens: list[str]

    def files(self) -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in self.home.rglob("*") if p.is_file()}

    def sf_json(self, sf: Path, *args: str) -> dict[str, Any]:
        """Run `sf ARGS --json` in the sandbox; its parsed `result` (fails on an error)."""
        completed = _run(
            [str(sf), *args, "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=SF_TIMEOUT_SECONDS,
            check=False,
        )
        assert completed.returncode == 0, (
            f"sf {' '.join(args)}:\n{completed.stdout}{completed.stderr}"
        )
        result: dict[str, Any] = json.loads(completed.stdout)["result"]
        return result

    def log_in(self, sf: Path, credentials: dict[str, Any], alias: str) -> SfLogin:
        """The client's `log_in`, with the sandbox as the caller's environment."""
        with mock.patch.dict(os.environ, self.env, clear=True):
            return log_in(credentials, alias, sf_bin=str(sf))


@pytest.fixture
def sandbox(tmp_path: Path, fake: FakeSalesforceServer, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    home = tmp_path / "home"
    home.mkdir()
    assert fake.ca_cert_path is not None
    box = Sandbox(home, isolated_env(home, ca_cert=fake.ca_cert_path), [], [])
    fake.reset_counts()

    def recording_run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        box.runs.append(SfRun(list(args), dict(kwargs["env"]), kwargs.get("input")))
        return _run(args, **kwargs)

    # The client calls `subprocess.run` by its module attribute: record what it passes.
    monkeypatch.setattr(subprocess, "run", recording_run)
    real_authenticate: Callable[[str], Any] = fake.state.authenticate

    def recording_authenticate(access_token: str) -> Any:
        box.bearer_tokens.append(access_token)
        return real_authenticate(access_token)

    monkeypatch.setattr(fake.state, "authenticate", recording_authenticate)
    return box


def _assert_nowhere_in_plain_text(box: Sandbox, *secrets: str) -> None:
    for path, content in box.files().items():
        for secret in secrets:
            assert secret.encode() not in content, f"{path} holds a secret in plain text"


def _assert_encrypted_auth_file(box: Sandbox, username: str) -> dict[str, Any]:
    key_file = box.home / ".sfdx" / "key.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    auth: dict[str, Any] = json.loads((box.home / ".sfdx" / f"{username}.json").read_text())
    assert auth["username"] == username
    assert auth["accessToken"]
    for name in ("accessToken", "refreshToken"):
        if name in auth:
            assert re.fullmatch(ENCRYPTED, auth[name]), f"{name} is not encrypted"
    return auth


def test_access_token_login_then_data_query(fake: FakeSalesforceServer, sandbox: Sandbox) -> None:
    sf = installed_sf()
    user = fake.state.user(TOKEN_USER)
    token = fake.state.mint_access_token(TOKEN_USER)
    credentials = {
        "accessToken": token,
        "instanceUrl": fake.base_url,
        "username": TOKEN_USER,
        "orgId": user.org_id,
        "source": "refresh",
    }

    login = sandbox.log_in(sf, credentials, "ci-token")
    assert login == SfLogin(username=TOKEN_USER, org_id=user.org_id)

    # The token went to sf in its environment only: not in argv, not on stdin.
    (run,) = sandbox.runs
    assert run.argv[1:] == [
        "org",
        "login",
        "access-token",
        "--instance-url",
        fake.base_url,
        "--alias",
        "ci-token",
        "--no-prompt",
        "--json",
    ]
    assert not any(token in arg for arg in run.argv)
    assert run.env["SF_ACCESS_TOKEN"] == token
    assert run.input is None
    # ... and sf used exactly that token as its Bearer token.
    assert set(sandbox.bearer_tokens) == {token}
    assert ("POST", "/services/oauth2/token") not in {(r.method, r.path) for r in fake.requests_log}

    result = sandbox.sf_json(
        sf,
        "data",
        "query",
        "--query",
        "SELECT Id, Name FROM Organization",
        "--target-org",
        "ci-token",
    )
    assert result["totalSize"] == 1
    (record,) = result["records"]
    assert (record["Id"], record["Name"]) == (user.org_id, TOKEN_ORG_NAME)
    assert set(sandbox.bearer_tokens) == {token}

    auth = _assert_encrypted_auth_file(sandbox, TOKEN_USER)
    assert "refreshToken" not in auth  # an access-token login cannot refresh
    _assert_nowhere_in_plain_text(sandbox, token)
    # oclif's update hook stayed off: no detached `sf update --autoupdate` was spawned.
    assert not (sandbox.home / ".cache" / "sf" / "autoupdate.log").exists()


def test_sfdx_url_login_on_stdin_then_org_display(
    fake: FakeSalesforceServer, sandbox: Sandbox
) -> None:
    sf = installed_sf()
    user = fake.state.user(URL_USER)
    auth_url = fake.state.mint_auth_url(URL_USER)
    assert urlsplit(fake.base_url).netloc == auth_url.rpartition("@")[2] == f"localhost:{fake.port}"
    refresh_token = refresh_token_of(auth_url)

    login = sandbox.log_in(sf, {"sfdxAuthUrl": auth_url, "username": URL_USER}, "ci-url")
    assert login == SfLogin(username=URL_USER, org_id=user.org_id)

    (run,) = sandbox.runs
    assert run.argv[1:] == [
        "org",
        "login",
        "sfdx-url",
        "--sfdx-url-stdin",
        "-",
        "--alias",
        "ci-url",
        "--json",
    ]
    assert not any(refresh_token in arg for arg in run.argv)
    assert not any(refresh_token in value for value in run.env.values())
    assert run.input == auth_url + "\n"
    assert fake.counts["oauth2/token"] == 1
    assert fake.requests_log[0].grant_type == "refresh_token"

    display = sandbox.sf_json(sf, "org", "display", "--target-org", "ci-url")
    assert display["username"] == URL_USER
    assert display["id"] == user.org_id
    assert display["instanceUrl"] == fake.base_url
    assert display["alias"] == "ci-url"
    assert display["connectedStatus"] == "Connected"

    issued = [t for t, record in fake.state.access_tokens.items() if record.user_id == user.id]
    assert issued
    assert sandbox.bearer_tokens
    assert set(sandbox.bearer_tokens) <= set(issued)
    assert not any(access_token in json.dumps(display) for access_token in issued)
    _assert_encrypted_auth_file(sandbox, URL_USER)
    _assert_nowhere_in_plain_text(sandbox, refresh_token, auth_url, *issued)


def test_a_refused_auth_url_fails_without_echoing_it(
    fake: FakeSalesforceServer, sandbox: Sandbox
) -> None:
    sf = installed_sf()
    auth_url = fake.state.mint_auth_url(URL_USER)
    refresh_token = refresh_token_of(auth_url)
    fake.state.revoke_refresh_token(refresh_token)

    with pytest.raises(SfLoginFailed) as failure:
        sandbox.log_in(sf, {"sfdxAuthUrl": auth_url}, "revoked")

    message = str(failure.value)
    # sf's own error, from the fake's invalid_grant, reaches the user in one line.
    assert message == (
        "'sf org login sfdx-url' exited with status 1: RefreshTokenAuthError: Error "
        "authenticating with the refresh token due to: expired access/refresh token"
    )
    assert refresh_token not in message
    assert "force://" not in message
    _assert_nowhere_in_plain_text(sandbox, refresh_token)
