"""The local stack (`python -m local.stack`, or `make run`) as a subprocess: e2e tests and
`make bench`."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import requests

from local.ports import free_port
from local.stack import FAKE_SALESFORCE_VARIABLE, READY_LINE
from tests.support.secret_scan import observe_stack_output


class StackFailed(RuntimeError):
    """The stack exited, did not come up in time, or ignored a signal."""


REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60.0
_EXPORT = re.compile(r"^export ([A-Z_]+)=(\S+)$", re.MULTILINE)
_DYNAMODB_LOCAL = re.compile(r"DynamoDB Local at http://127\.0\.0\.1:(\d+)")


@dataclass
class LocalStack:
    """A running `python -m local.stack`; its stdout/stderr go to files (never a full pipe)."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    stdout_path: Path
    stderr_path: Path
    exports: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.exports["SFBROKER_URL"]

    @property
    def salesforce_url(self) -> str:
        """The fake Salesforce, as the banner exports it (https://localhost:… with TLS)."""
        return self.exports[FAKE_SALESFORCE_VARIABLE]

    @property
    def salesforce_ca_cert(self) -> Path:
        """The CA of the fake's certificate (`--salesforce-tls`), as the banner exports it."""
        return Path(self.exports["NODE_EXTRA_CA_CERTS"])

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while READY_LINE not in self.stdout():
            if self.process.poll() is not None:
                raise StackFailed(
                    f"the stack exited with {self.process.returncode}:\n{self.stderr()}"
                )
            if time.monotonic() > deadline:
                raise StackFailed(f"the stack did not come up in time:\n{self.stderr()}")
            time.sleep(0.1)
        # The banner is printed in one write; read it whole once the last line is there.
        while "Ctrl-C stops everything." not in self.stdout():
            time.sleep(0.05)
        # PATH=<venv>:$PATH is for a person's shell; tests keep their own PATH.
        self.exports = {k: v for k, v in _EXPORT.findall(self.stdout()) if k != "PATH"}
        # Ports the stack chose itself (any free one) are read from what it printed.
        self.ports.setdefault("salesforce", _port_of(self.salesforce_url))
        if dynamodb := _DYNAMODB_LOCAL.search(self.stdout()):
            self.ports.setdefault("dynamodb", int(dynamodb.group(1)))
        health = requests.get(f"{self.url}/health", timeout=5)
        assert health.status_code == 200, health.text

    def descendants(self) -> list[int]:
        """Every process below the stack (from /proc: psutil is not a dependency)."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # exited meanwhile
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found, queue = [], [self.process.pid]
        while queue:
            for child in children.get(queue.pop(), []):
                found.append(child)
                queue.append(child)
        return found

    def stop(self, signum: int = signal.SIGINT, timeout: float = 20.0) -> int:
        try:
            return self._stop(signum, timeout)
        finally:
            observe_stack_output("local stack stdout", self.stdout())
            observe_stack_output("local stack stderr", self.stderr())

    def _stop(self, signum: int, timeout: float) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
                raise StackFailed(f"the stack ignored signal {signum}:\n{self.stderr()}") from None
        return self.process.returncode


def start_stack(
    tmp_path: Path,
    db: str = "moto",
    *,
    salesforce_tls: bool = False,
    api_port: int = 0,
    aws_port: int = 0,
    options: Sequence[str] = (),
) -> LocalStack:
    """Start the stack and wait until it has printed its banner.

    API and AWS ports as given (0: a free one), the others free ones.
    `salesforce_tls`: the fake Salesforce speaks https as `localhost` (`--salesforce-tls`).
    `options`: further options of `python -m local.stack` (e.g. `--heap-report FILE`).
    """
    ports = {
        "api": api_port or free_port(),
        "aws": aws_port or free_port(),
        "salesforce": free_port(),
    }
    command = [
        sys.executable,
        "-m",
        "local.stack",
        "--port",
        str(ports["api"]),
        "--aws-port",
        str(ports["aws"]),
        "--salesforce-port",
        str(ports["salesforce"]),
        "--db",
        db,
    ]
    if db == "dynamodb-local":
        ports["dynamodb"] = free_port()
        command += ["--dynamodb-port", str(ports["dynamodb"])]
    if salesforce_tls:
        command.append("--salesforce-tls")
    return _launch([*command, *options], ports, tmp_path)


def start_make_run(tmp_path: Path, variables: Sequence[str] = ()) -> LocalStack:
    """`make run <variables>` as a user types it, on free API and AWS ports.

    The ports are appended to `variables` (the last assignment on make's command line
    wins); the stack chooses the others. Stop it by signalling make (`LocalStack.stop`).
    """
    ports = {"api": free_port(), "aws": free_port()}
    command = [
        "make",
        "--no-print-directory",
        "run",
        *variables,
        f"PORT={ports['api']}",
        f"AWS_PORT={ports['aws']}",
    ]
    return _launch(command, ports, tmp_path)


# Runs the command with the signals the tests stop a stack with at their defaults, as in
# a terminal. A test run started in the background (`cmd &` ignores SIGINT and SIGQUIT)
# or under nohup (SIGHUP) hands its children those signals ignored, and make keeps an
# ignored signal ignored: it would never stop. (Not preexec_fn: unsafe with threads.)
_WITH_DEFAULT_STOP_SIGNALS: Final = (
    "import os, signal, sys\n"
    "for name in ('SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGTERM'):\n"
    "    signal.signal(getattr(signal, name), signal.SIG_DFL)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


def _launch(command: list[str], ports: dict[str, int], tmp_path: Path) -> LocalStack:
    stdout_path, stderr_path = tmp_path / "stack.out", tmp_path / "stack.err"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", _WITH_DEFAULT_STOP_SIGNALS, *command],
            cwd=REPO_ROOT,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    stack = LocalStack(process, ports, stdout_path, stderr_path)
    try:
        stack.wait_until_ready()
    except BaseException:
        stack.stop(signal.SIGTERM)
        raise
    return stack


def _port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local addresses TCP sockets listen on at `port` (what `ss -ltn` shows).

    From /proc/net/tcp and tcp6 (hex, each 32-bit word in host order, little-endian
    here); an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is given as its IPv4 address.
    """
    listen_state = "0A"
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] != listen_state or int(port_hex, 16) != port:
                continue
            raw = b"".join(
                bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8)
            )
            ip = ipaddress.ip_address(raw)
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            found.add(mapped or ip)
    return found
