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

from tests.support.local_stack import LocalStack


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
    **overrides: str,
) -> CliResult:
    """Run the real `sfbroker` CLI against the stack: SigV4 (`--iam`) or SFBROKER_TOKEN."""
    argv = [*_sfbroker_command(), *(["--iam"] if iam else []), *args]
    completed = subprocess.run(
        argv,
        env=cli_environment(stack, tmp_path, base=base_env, **overrides),
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
