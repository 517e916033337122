"""`sam local` on a machine without Docker Desktop: engine, Lambda base image, SAM commands.

Used by the container tier (tests/container, `make sam-local`), which runs every event in
events/ in a Lambda container against the local stack. What it does, and undoes:

- a container engine: an existing one (`docker info` answers) is used as it is; else, as
  root, `docker.io` is installed with apt if missing and `dockerd` started in the
  background (vfs storage, no iptables: enough for SAM) and stopped again afterwards;
- the python3.13 Lambda base image under the name SAM uses, built locally from
  local/lambda_image/build.sh when no container registry is reachable, and kept: a label
  carries a hash of the recipe and its inputs, so a changed recipe rebuilds it;
- `sam build` for the machine's architecture (template parameter `Architecture`), and
  the options every `sam local` command needs here (`--add-host`, `--skip-pull-image`);
- afterwards, the containers SAM started and the images it built on top of the base
  image are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from local.template import REPO_ROOT

__all__ = [
    "ENV_FILE",
    "ContainerEngineUnavailable",
    "Engine",
    "Sam",
    "base_image",
    "container_engine",
    "container_env",
    "lambda_architecture",
    "one_at_a_time",
    "removing_what_sam_leaves",
    "write_env_file",
]

ENV_FILE: Final = REPO_ROOT / "local" / "env.json"
RECIPE: Final = REPO_ROOT / "local" / "lambda_image" / "build.sh"
RECIPE_LABEL: Final = "sfbroker.recipe"
RUNTIME_VERSION: Final = "3.13"
# The name under which SAM looks for the python3.13 runtime image.
IMAGE_REPOSITORY: Final = "public.ecr.aws/lambda/python"
# What SAM builds on top (the emulator and the layers) and how it labels its containers.
SAM_IMAGE_PREFIX: Final = "samcli/lambda-"
SAM_CONTAINER_LABEL: Final = "sam.cli.container.type"
# The name functions use for the machine running the stack (local/env.json).
HOST_NAME: Final = "host.docker.internal"
# dockerd as TOOLING.md found it working here: vfs (no overlay in this VM), and no
# iptables rules on a shared machine (ports are published by docker-proxy instead).
DOCKERD_FLAGS: Final = ("--storage-driver=vfs", "--iptables=false")
DEBIAN_SUITE: Final = "bookworm"
DEFAULT_MIRROR: Final = "http://deb.debian.org/debian"
ENGINE_START_TIMEOUT_SECONDS: Final = 60.0
ENGINE_STOP_TIMEOUT_SECONDS: Final = 30.0
SAM_START_TIMEOUT_SECONDS: Final = 300.0
_SAM_READY: Final = re.compile(r"Running on (http://\S+)")
# One engine and one base image per machine: runs from several clones take turns.
LOCK_PATH: Final = Path(tempfile.gettempdir()) / "sfbroker-sam-local.lock"


class ContainerEngineUnavailable(Exception):
    """No container engine answers here, and none can be installed (not root)."""


@dataclass(frozen=True)
class Engine:
    """A container engine that answers, and whether this process started it."""

    started: bool
    # The host's address on the engine's default bridge: containers reach the host there.
    bridge_address: str


def docker(*args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    """Run the docker client; output captured, never raises on a failure."""
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return docker("info", "--format", "{{.ServerVersion}}", timeout=30).returncode == 0


def _is_root() -> bool:
    return os.geteuid() == 0


def apt_install(*packages: str) -> None:
    """Install Debian packages (root): `apt-get update` first, a fresh machine has no lists."""
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        subprocess.run(command, check=True, env=environment, capture_output=True, timeout=900)


@contextlib.contextmanager
def one_at_a_time() -> Iterator[None]:
    """Hold the machine-wide lock (another clone's run may stop the dockerd it started)."""
    with LOCK_PATH.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def container_engine(workdir: Path) -> Iterator[Engine]:
    """An engine for the block: the running one, or (root) dockerd started and stopped here."""
    if _engine_answers():
        yield Engine(started=False, bridge_address=_bridge_address())
        return
    if not _is_root():
        raise ContainerEngineUnavailable(
            "no container engine answers `docker info`, and installing one needs root "
            "(start Docker, or run as root: docker.io and dockerd are then set up here)"
        )
    if shutil.which("dockerd") is None:
        apt_install("docker.io")
    log_path = workdir / "dockerd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["dockerd", *DOCKERD_FLAGS, "--pidfile", str(workdir / "dockerd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ENGINE_START_TIMEOUT_SECONDS
        while not _engine_answers():
            if process.poll() is not None or time.monotonic() > deadline:
                raise ContainerEngineUnavailable(
                    f"dockerd did not start: {log_path.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.5)
        yield Engine(started=True, bridge_address=_bridge_address())
    finally:
        _stop(process, ENGINE_STOP_TIMEOUT_SECONDS)


def _stop(process: subprocess.Popen[bytes], timeout: float, signum: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _bridge_address() -> str:
    """The host's address on the engine's default bridge network (docker0: 172.17.0.1).

    The bridge's gateway; dockerd leaves it out of the default network's IPAM config
    when it gave the bridge the subnet's first address, which is then the answer.
    """
    answer = docker("network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}")
    if answer.returncode != 0:
        raise ContainerEngineUnavailable(f"no default bridge network: {answer.stderr.strip()}")
    for config in json.loads(answer.stdout) or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
        network = ipaddress.ip_network(config.get("Subnet", ""), strict=False)
        if network.version == 4:
            return str(network[1])
    raise ContainerEngineUnavailable(f"no IPv4 bridge network: {answer.stdout.strip()}")


def lambda_architecture() -> str:
    """This machine's architecture as Lambda names it (the template's `Architecture`)."""
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[machine]


# ---------------------------------------------------------------- the base image


@dataclass(frozen=True)
class BaseImage:
    """The runtime image SAM builds its function images on."""

    tag: str
    # Built locally (so SAM must not try to pull it); False: SAM pulls AWS's image.
    local: bool
    # Seconds spent building it in this run (0.0 when the cached image was reused).
    build_seconds: float


def base_image(architecture: str) -> BaseImage:
    """Reuse the locally built base image if its recipe is unchanged, else build it (root).

    Without root and without a cached image, SAM pulls AWS's own image (Docker Desktop).
    """
    tag = f"{IMAGE_REPOSITORY}:{RUNTIME_VERSION}-{architecture}"
    python_prefix = Path(sys.base_prefix)
    mirror = debian_mirror()
    recipe = recipe_hash(python_prefix, mirror, architecture)
    inspected = docker("image", "inspect", tag, "--format", "{{.Id}} {{json .Config.Labels}}")
    old_id = None
    if inspected.returncode == 0:
        old_id, _, labels = inspected.stdout.strip().partition(" ")
        if (json.loads(labels) or {}).get(RECIPE_LABEL) == recipe:
            return BaseImage(tag, local=True, build_seconds=0.0)
    if not _is_root():
        return BaseImage(tag, local=False, build_seconds=0.0)
    if architecture != lambda_architecture():
        raise ContainerEngineUnavailable(f"cannot build a {architecture} image on this machine")
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    started = time.monotonic()
    subprocess.run(
        ["bash", str(RECIPE), tag, f"{RECIPE_LABEL}={recipe}", str(python_prefix), mirror],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    if old_id:
        # The previous build, now untagged: nothing needs it any more.
        docker("image", "rm", old_id)
    return BaseImage(tag, local=True, build_seconds=seconds)


def recipe_hash(python_prefix: Path, mirror: str, architecture: str) -> str:
    """What the base image is made of: the recipe, the Python copied in, the Debian source."""
    digest = hashlib.sha256(RECIPE.read_bytes())
    for part in (sys.version, str(python_prefix), mirror, DEBIAN_SUITE, architecture):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian archive apt already uses here (debootstrap fetches from nowhere else)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if re.match(r"^\w+:", line)
            )
            if DEBIAN_SUITE in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    listing = Path("/etc/apt/sources.list")
    if listing.is_file():
        for line in listing.read_text().splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == DEBIAN_SUITE:
                return words[1]
    return DEFAULT_MIRROR


# ---------------------------------------------------------------- SAM


def container_env(aws_endpoint: str, salesforce_hosts: Sequence[str]) -> dict[str, Any]:
    """local/env.json for a stack at `aws_endpoint`, contacting only `salesforce_hosts`.

    local/env.json stays the one place that points functions at the stack; the tier only
    moves the endpoint to its own port and allows its fake Salesforce, and nothing else.
    """
    env: dict[str, Any] = json.loads(ENV_FILE.read_text(encoding="utf-8"))
    hosts = ",".join(salesforce_hosts)
    for function, variables in env.items():
        if function == "//":
            continue
        variables["AWS_ENDPOINT_URL"] = aws_endpoint
        variables["SALESFORCE_ALLOWED_HOSTS"] = hosts
        variables["SALESFORCE_HTTP_HOSTS"] = hosts
    return env


@dataclass(frozen=True)
class Sam:
    """The `sam` CLI with what every local command needs on this machine."""

    executable: Path
    architecture: str
    bridge_address: str
    skip_pull_image: bool
    build_dir: Path

    @property
    def template(self) -> Path:
        return self.build_dir / "template.yaml"

    def environment(self) -> dict[str, str]:
        # SAM hands the functions these credentials; the stack's moto takes any.
        return {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "SAM_CLI_TELEMETRY": "0",
            # sam build for python3.13 needs python3.13 on PATH.
            "PATH": f"{Path(sys.base_prefix) / 'bin'}:{os.environ.get('PATH', '')}",
        }

    def local_options(self, env_file: Path) -> list[str]:
        """Options of `sam local invoke|start-lambda|start-api` here."""
        options = [
            "--template",
            str(self.template),
            "--env-vars",
            str(env_file),
            "--parameter-overrides",
            f"Architecture={self.architecture}",
            "--add-host",
            f"{HOST_NAME}:{self.bridge_address}",
        ]
        return [*options, "--skip-pull-image"] if self.skip_pull_image else options

    def build(self) -> None:
        """`sam build` for this architecture into `build_dir` (the deployable build untouched)."""
        self.run(
            "build",
            "--parameter-overrides",
            f"Architecture={self.architecture}",
            "--build-dir",
            str(self.build_dir),
            "--cache-dir",
            str(self.build_dir.parent / "cache"),
        )

    def run(self, *args: str, timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
        """Run `sam` from the repository; raise with its output if it fails."""
        result = subprocess.run(
            [str(self.executable), *args],
            cwd=REPO_ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"sam {args[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result

    @contextlib.contextmanager
    def service(self, command: str, env_file: Path, port: int, log_path: Path) -> Iterator[str]:
        """`sam local start-lambda|start-api` on 127.0.0.1:`port` with warm containers.

        Yields its URL once it listens; stops it with SIGINT (SAM then removes its warm
        containers).
        """
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(self.executable),
                    "local",
                    command,
                    *self.local_options(env_file),
                    "--warm-containers",
                    "LAZY",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=REPO_ROOT,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + SAM_START_TIMEOUT_SECONDS
            while (ready := _SAM_READY.search(log_path.read_text(errors="replace"))) is None:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"sam local {command} did not start:\n{log_path.read_text()}"
                    )
                time.sleep(0.2)
            yield ready.group(1)
        finally:
            _stop(process, 60.0, signal.SIGINT)


@contextlib.contextmanager
def removing_what_sam_leaves() -> Iterator[None]:
    """Remove, afterwards, the containers SAM started and the images it built meanwhile."""
    containers_before = set(_ids("ps", "-aq", "--filter", f"label={SAM_CONTAINER_LABEL}"))
    images_before = set(_sam_images())
    try:
        yield
    finally:
        containers = set(_ids("ps", "-aq", "--filter", f"label={SAM_CONTAINER_LABEL}"))
        if leftovers := sorted(containers - containers_before):
            docker("rm", "--force", "--volumes", *leftovers)
        if images := sorted(set(_sam_images()) - images_before):
            docker("image", "rm", "--force", *images)


def _ids(*args: str) -> list[str]:
    return docker(*args).stdout.split()


def _sam_images() -> list[str]:
    listing = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    return [image for image in listing if image.startswith(SAM_IMAGE_PREFIX)]


def write_env_file(path: Path, env: Mapping[str, Any]) -> Path:
    """Write an --env-vars file."""
    path.write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    return path
