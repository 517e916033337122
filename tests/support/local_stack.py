"""The local stack (`python -m local.stack`) as a subprocess: e2e tests and `make bench`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from local.ports import free_port
from local.stack import READY_LINE


class StackFailed(RuntimeError):
    """The stack exited, did not come up in time, or ignored a signal."""


REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60.0
_EXPORT = re.compile(r"^export ([A-Z_]+)=(\S+)$", re.MULTILINE)


@dataclass
class LocalStack:
    """A running `python -m local.stack`; its stdout/stderr go to files (never a full pipe)."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    stdout_path: Path
    stderr_path: Path
    exports: dict[str, str] = field(default_factory=dict)
    salesforce_tls: bool = False

    @property
    def url(self) -> str:
        return self.exports["SFBROKER_URL"]

    @property
    def salesforce_url(self) -> str:
        if self.salesforce_tls:
            return f"https://localhost:{self.ports['salesforce']}"
        return f"http://127.0.0.1:{self.ports['salesforce']}"

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
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
                raise StackFailed(f"the stack ignored signal {signum}:\n{self.stderr()}") from None
        return self.process.returncode


def start_stack(tmp_path: Path, db: str = "moto", *, salesforce_tls: bool = False) -> LocalStack:
    """Start the stack on free ports and wait until it has printed its banner.

    `salesforce_tls`: the fake Salesforce speaks https as `localhost` (`--salesforce-tls`).
    """
    ports = {"api": free_port(), "aws": free_port(), "salesforce": free_port()}
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
    stdout_path, stderr_path = tmp_path / "stack.out", tmp_path / "stack.err"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    stack = LocalStack(process, ports, stdout_path, stderr_path, salesforce_tls=salesforce_tls)
    try:
        stack.wait_until_ready()
    except BaseException:
        stack.stop(signal.SIGTERM)
        raise
    return stack


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0
