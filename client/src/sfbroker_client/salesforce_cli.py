"""Log the Salesforce CLI (`sf`) in with credentials from the broker (`--sf-login ALIAS`).

Secrets never go on the command line (other users can read a process's argv) nor to a
file: an access token travels in the child's environment (`SF_ACCESS_TOKEN`, which
`sf org login access-token --no-prompt` reads), an SFDX auth URL on its stdin
(`sf org login sfdx-url --sfdx-url-stdin -`).
"""

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sfbroker_client.output import redact

DEFAULT_SF_BIN = "sf"
# Secrets of ours the child does not need.
_NOT_FOR_CHILD = ("SFBROKER_TOKEN", "SF_ACCESS_TOKEN", "SFDX_ACCESS_TOKEN")
_MAX_DETAIL = 300


class SfLoginFailed(Exception):
    """The Salesforce CLI could not be run, or it refused the credentials."""


@dataclass(frozen=True)
class SfLogin:
    """What `sf` reported on success."""

    username: str | None
    org_id: str | None


def log_in(credentials: Mapping[str, Any], alias: str, sf_bin: str = DEFAULT_SF_BIN) -> SfLogin:
    """Log `sf` in under `alias` with an auth URL (preferred: it can refresh) or an access token."""
    env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_CHILD}
    auth_url = credentials.get("sfdxAuthUrl")
    if isinstance(auth_url, str) and auth_url:
        argv = ["org", "login", "sfdx-url", "--sfdx-url-stdin", "-", "--alias", alias]
        return _run_sf(sf_bin, argv, env, stdin=auth_url + "\n", secret=auth_url)
    token = credentials.get("accessToken")
    instance_url = credentials.get("instanceUrl")
    if not (isinstance(token, str) and token and isinstance(instance_url, str) and instance_url):
        raise SfLoginFailed("the response has neither an auth URL nor an access token to log in")
    env["SF_ACCESS_TOKEN"] = token
    argv = ["org", "login", "access-token", "--instance-url", instance_url, "--alias", alias]
    return _run_sf(sf_bin, [*argv, "--no-prompt"], env, stdin=None, secret=token)


# A login is a handful of HTTP calls; a hung `sf` must not hang the CI job with it.
SF_TIMEOUT_SECONDS = 180


def _run_sf(
    sf_bin: str, argv: list[str], env: dict[str, str], *, stdin: str | None, secret: str
) -> SfLogin:
    command = "sf " + " ".join(argv[:3])
    executable = shutil.which(sf_bin)
    if executable is None:
        raise SfLoginFailed(
            f"Salesforce CLI not found: {sf_bin!r} (install @salesforce/cli, "
            "or point --sf-bin / SFBROKER_SF_BIN at it)"
        )
    try:
        # The executable is the user's own choice (--sf-bin); no shell is involved.
        completed = subprocess.run(  # noqa: S603
            [executable, *argv, "--json"],
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=SF_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise SfLoginFailed(f"'{command}' did not finish within {SF_TIMEOUT_SECONDS} s") from None
    except OSError as exc:
        raise SfLoginFailed(f"cannot run {executable!r}: {exc.strerror or exc}") from exc
    result = _json_result(completed.stdout)
    if completed.returncode != 0:
        detail = _failure_detail(result, completed.stderr)
        raise SfLoginFailed(
            f"'{command}' exited with status {completed.returncode}: {redact(detail, [secret])}"
        )
    return SfLogin(username=_str(result.get("username")), org_id=_str(result.get("orgId")))


def _json_result(stdout: str) -> dict[str, Any]:
    # `--json` output: {"status": 0, "result": {...}} or {"status": 1, "message": ...}.
    try:
        parsed = json.loads(stdout)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    result = parsed.get("result")
    if parsed.get("status") == 0 and isinstance(result, dict):
        return result
    return parsed


def _failure_detail(result: Mapping[str, Any], stderr: str) -> str:
    message = _str(result.get("message"))
    if message is None:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else "no error message"
    name = _str(result.get("name"))
    detail = " ".join(f"{name}: {message}".split()) if name else " ".join(message.split())
    return detail[:_MAX_DETAIL]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
