"""Run the real `sfbroker` CLI against a local stack, as a CI job would."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.salesforce_cli import SalesforceCliMissing, isolated_env, sf_bin
from tests.support.local_stack import REPO_ROOT, LocalStack

# A user's PATH without this checkout's virtualenv: what the banner's `export PATH=` fixes.
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"
SF_TIMEOUT_SECONDS = 90


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    argv: tuple[str, ...] = ()

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def _sfbroker_command() -> list[str]:
    script = shutil.which("sfbroker", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "sfbroker_client"]


def cli_environment(
    stack: LocalStack,
    tmp_path: Path,
    *,
    base: Mapping[str, str] | None = None,
    **overrides: str,
) -> dict[str, str]:
    """A clean environment: the printed exports, nothing of the user's AWS setup.

    `base` (e.g. `local.salesforce_cli.isolated_env(...)`, for `--sf-login`) replaces the
    default PATH and HOME of `tmp_path`.
    """
    environment = {
        **({"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)} if base is None else base),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        **stack.exports,
    }
    environment.update(overrides)
    return environment


def run_sfbroker(
    stack: LocalStack,
    tmp_path: Path,
    args: Sequence[str],
    *,
    iam: bool = True,
    base_env: Mapping[str, str] | None = None,
    timeout: float = 30,
    stdin: str = "",
    **overrides: str,
) -> CliResult:
    """Run the real `sfbroker` CLI against the stack: SigV4 (`--iam`) or SFBROKER_TOKEN."""
    argv = [*_sfbroker_command(), *(["--iam"] if iam else []), *args]
    completed = subprocess.run(
        argv,
        env=cli_environment(stack, tmp_path, base=base_env, **overrides),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr, tuple(argv))


def parse_env_lines(text: str) -> dict[str, str]:
    """`NAME=value` lines (shell-quoted) as printed by `--format env`."""
    values = {}
    for line in text.splitlines():
        (word,) = shlex.split(line)
        name, _, value = word.partition("=")
        values[name] = value
    return values


def plain_shell_env(tmp_path: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A new user's shell: a plain PATH and HOME, no AWS configuration of their own.

    `base` (e.g. `local.salesforce_cli.isolated_env(...)`) supplies the rest.
    """
    return {
        **(base or {}),
        "PATH": PLAIN_PATH,
        "HOME": str(tmp_path) if base is None else base["HOME"],
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def run_as_printed(
    command: str,
    env: Mapping[str, str],
    *,
    exports: Sequence[str] = (),
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `command` exactly as printed (README, banner) in bash, from the checkout's root,
    after the banner's `export` lines, as if pasted into a shell."""
    return subprocess.run(
        ["bash", "-c", "\n".join([*exports, "set -o pipefail", command])],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def export_lines(banner: str) -> list[str]:
    """The banner's `export NAME=value` lines, to paste before a command."""
    return [line for line in banner.splitlines() if line.startswith("export ")]


def installed_sf() -> Path:
    """The installed `sf`: a missing one fails (never skips) the test, saying what to run."""
    try:
        return sf_bin()
    except SalesforceCliMissing as missing:
        pytest.fail(str(missing), pytrace=False)


def sf_env(home: Path, ca_cert: Path) -> dict[str, str]:
    home.mkdir()
    return isolated_env(home, ca_cert=ca_cert)


def run_printed_sf_command(
    command: str, exports: list[str], stack: LocalStack, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """A printed command that runs `sf`, in a new user's shell with the banner's exports."""
    env = sf_env(tmp_path / "home", stack.salesforce_ca_cert)
    # Only the printed exports lead to sfbroker, sf and the CA (sf's settings stay
    # isolated: no telemetry, no update check, the HOME of this test).
    env.pop("NODE_EXTRA_CA_CERTS")
    return run_as_printed(
        command,
        plain_shell_env(tmp_path, base=env),
        exports=exports,
        timeout=2 * SF_TIMEOUT_SECONDS,
    )
