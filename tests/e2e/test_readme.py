"""Every command of README.md works as printed, from this checkout, in a new user's shell.

Each command of the README's `sh` blocks is run here, or named in `NOT_RUN_HERE` with the
reason (an AWS account, a container runtime, the suite itself). The `make run` variants
are started through make, as typed, on free ports; the tour's commands run against them
after the banner's `export` lines, and each stack is then stopped by a signal sent to
make alone (not to its process group, as Ctrl-C is): nothing may be left behind.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import time
from pathlib import Path

import pytest

from local.stack import SF_LOGIN_ALIAS
from tests.support.cli import (
    export_lines,
    installed_sf,
    plain_shell_env,
    run_as_printed,
    run_printed_sf_command,
    run_sfbroker,
)
from tests.support.local_stack import (
    REPO_ROOT,
    LocalStack,
    listening_addresses,
    port_is_open,
    start_make_run,
)

README = REPO_ROOT / "README.md"
MAKEFILE = REPO_ROOT / "Makefile"
# A fence may be indented (inside a list item).
_SH_BLOCK = re.compile(r"^[ \t]*```sh\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)
# Leading words of a command -> why no test here can run it.
NOT_RUN_HERE = {
    ("make", "test"): "the whole suite, this test included",
    ("make", "bench"): "minutes of measurement; its call scenarios run in test_call_budget.py",
    ("make", "admin-token"): "writes to a deployed stack's table with your AWS credentials",
    ("make", "reencrypt"): "re-wraps a deployed stack's envelopes with your AWS credentials; "
    "tests/integration/test_reencrypt.py runs the command on moto and DynamoDB Local",
    (".venv-sam/bin/sam",): "builds and deploys to an AWS account",
    ("sam",): "sam local needs a container engine: tests/container runs these, the "
    "`sam local invoke` line as printed",
}
# `make run` variables for containers: tests/container runs `make run BIND=<bridge>` as
# printed (the docker bridge exists only while its engine runs).
_CONTAINER_TIER_VARIABLES = ("BIND=",)
# Commands run without a stack, as printed.
_STANDALONE = (("make", "help"), (".venv/bin/python",), ("PYTHONPATH=layers/common",))
# Commands run against a started stack (`--sf-login` ones against the TLS stack).
_AGAINST_A_STACK = ("sfbroker", "awscurl", "curl")
# The ports the stack does not choose: they are appended to every `make run` as typed.
_PORT_VARIABLES = ("PORT=", "AWS_PORT=")
# One signal per `make run` variant, in README order; make is the one signalled.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)


def readme_commands() -> list[str]:
    """The commands of the README's `sh` blocks, one per line, comment lines left out."""
    return [
        line.strip()
        for block in _SH_BLOCK.findall(README.read_text(encoding="utf-8"))
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _words(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def _starts_with(command: str, prefixes: tuple[tuple[str, ...], ...]) -> bool:
    words = _words(command)
    return any(tuple(words[: len(prefix)]) == prefix for prefix in prefixes)


def _is_make_run(command: str) -> bool:
    return _words(command)[:2] == ["make", "run"]


def make_run_variants() -> list[tuple[str, ...]]:
    """The distinct `make run` variables in the README (ports aside), in README order."""
    variants: list[tuple[str, ...]] = []
    for command in readme_commands():
        if _is_make_run(command):
            words = _words(command)[2:]
            variant = tuple(w for w in words if not w.startswith(_PORT_VARIABLES))
            if any(w.startswith(_CONTAINER_TIER_VARIABLES) for w in variant):
                continue
            if variant not in variants:
                variants.append(variant)
    return variants


def _tour_commands(*, tls: bool) -> list[str]:
    commands = [c for c in readme_commands() if _words(c)[0] in _AGAINST_A_STACK]
    return [c for c in commands if ("--sf-login" in c) == tls]


def test_every_readme_command_is_run_here_or_says_why_not() -> None:
    commands = readme_commands()
    assert len(commands) >= 10
    unclassified = [
        command
        for command in commands
        if not (
            _is_make_run(command)
            or _starts_with(command, _STANDALONE)
            or _words(command)[0] in _AGAINST_A_STACK
            or _starts_with(command, tuple(NOT_RUN_HERE))
        )
    ]
    assert unclassified == [], "run these in a test, or add them to NOT_RUN_HERE with why"
    assert _tour_commands(tls=False)
    assert _tour_commands(tls=True)
    assert () in make_run_variants()


def test_make_help_lists_every_documented_target(tmp_path: Path) -> None:
    documented = re.findall(r"^([a-z0-9-]+):.*## ", MAKEFILE.read_text(), re.MULTILINE)
    assert "e2e" in documented

    completed = run_as_printed("make help", plain_shell_env(tmp_path))

    assert completed.returncode == 0, completed.stderr
    listed = re.findall(r"^  make (\S+)", completed.stdout, re.MULTILINE)
    assert listed == documented


@pytest.mark.parametrize("command", [c for c in readme_commands() if _starts_with(c, _STANDALONE)])
def test_commands_without_a_stack_work_as_printed(command: str, tmp_path: Path) -> None:
    completed = run_as_printed(command, plain_shell_env(tmp_path))

    assert completed.returncode == 0, (command, completed.stderr)
    assert completed.stdout.strip(), command


@pytest.mark.parametrize(
    ("variables", "signum"),
    [
        pytest.param(variables, _STOP_SIGNALS[index % 3], id=" ".join(variables) or "make-run")
        for index, variables in enumerate(make_run_variants())
    ],
)
def test_make_run_and_the_tour_work_as_printed(
    variables: tuple[str, ...], signum: signal.Signals, tmp_path: Path
) -> None:
    stack = start_make_run(tmp_path, variables)
    below = stack.descendants()
    try:
        _everything_listens_on_the_loopback_only(stack)
        exports = export_lines(stack.stdout())
        if "TLS=1" in variables:
            installed_sf()
            for command in _tour_commands(tls=True):
                completed = run_printed_sf_command(command, exports, stack, tmp_path)
                assert completed.returncode == 0, (command, completed.stdout, completed.stderr)
                assert f'"alias": "{SF_LOGIN_ALIAS}"' in completed.stdout
        else:
            _the_tour_works(stack, exports, tmp_path)
    finally:
        returncode = stack.stop(signum)

    # make ends by the signal it was sent, once the stack has stopped cleanly.
    assert returncode in (0, -signum), stack.stderr()
    assert "INFO local.stack: stopped" in stack.stderr()
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in below) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in below if Path(f"/proc/{pid}").exists()] == []
    assert {name: port for name, port in stack.ports.items() if port_is_open(port)} == {}


def _everything_listens_on_the_loopback_only(stack: LocalStack) -> None:
    expected = {"api", "aws", "salesforce"}
    if "DynamoDB Local at" in stack.stdout():
        expected.add("dynamodb")
    assert set(stack.ports) == expected
    for name, port in stack.ports.items():
        addresses = listening_addresses(port)
        assert addresses, name
        assert all(address.is_loopback for address in addresses), (name, addresses)


def _the_tour_works(stack: LocalStack, exports: list[str], tmp_path: Path) -> None:
    # The README names only orgs the tour can use: the ones the stack registered.
    listed = run_sfbroker(stack, tmp_path, ["orgs", "list"])
    registered = {org["username"] for org in json.loads(listed.stdout)["orgs"]}
    tour = README.read_text().split("## A two-minute tour", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"\b[a-z]+@acme\.com\b", tour)) <= registered

    for command in _tour_commands(tls=False):
        completed = run_as_printed(command, plain_shell_env(tmp_path), exports=exports)
        assert completed.returncode == 0, (command, completed.stderr)
        assert completed.stdout.strip(), command
        assert '"error"' not in completed.stdout, (command, completed.stdout)
    faults = run_as_printed(
        'curl "$FAKE/__fake__/faults"', plain_shell_env(tmp_path), exports=exports
    )
    assert json.loads(faults.stdout)["faults"][0]["kind"] == "http_503"
