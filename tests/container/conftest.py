"""The container tier: the functions in real Lambda containers (`sam local`) against the stack.

Runs where a container engine answers or can be set up (root: local/sam_local.py installs
and starts dockerd); elsewhere it is skipped, saying why. Once for the tier: the engine, the
base image (built once and cached), `sam build`, the local stack listening on the docker
bridge (`make run BIND=…` as the README prints it), and an --env-vars file derived from
local/env.json; everything it started is stopped, and the containers and images SAM made
are removed. Timings land in
build/container-tier.json and the terminal summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from local import sam_local
from local.template import REPO_ROOT
from tests.support.local_stack import LocalStack, start_make_run

SAM_EXECUTABLE = REPO_ROOT / ".venv-sam" / "bin" / "sam"
TIMINGS_PATH = REPO_ROOT / "build" / "container-tier.json"
# `make sam-local` sets it to `cli`: every event through its own `sam local invoke`,
# rather than through one `sam local start-lambda` with warm containers (make test).
INVOKE_MODE = os.environ.get("SFBROKER_SAM_INVOKE", "warm")


@dataclass
class SamLocal:
    """What the tier set up: the SAM commands, the stack and the functions' environment."""

    sam: sam_local.Sam
    stack: LocalStack
    env_file: Path
    workdir: Path
    timings: dict[str, float | int | str] = field(default_factory=dict)


# Package scope: the engine, the stack and the containers go as soon as the tier is done.
@pytest.fixture(scope="package")
def sam_local_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamLocal]:
    if not SAM_EXECUTABLE.exists():
        pytest.skip(f"no {SAM_EXECUTABLE.relative_to(REPO_ROOT)}: make .venv-sam/.installed")
    workdir = tmp_path_factory.mktemp("sam-local")
    with contextlib.ExitStack() as running:
        running.enter_context(sam_local.one_at_a_time())
        try:
            engine = running.enter_context(sam_local.container_engine(workdir))
        except sam_local.ContainerEngineUnavailable as reason:
            if os.geteuid() == 0:
                raise  # root can always set one up: a failure here is a real one
            pytest.skip(f"no container engine: {reason}")
        running.enter_context(sam_local.removing_what_sam_leaves())
        architecture = sam_local.lambda_architecture()
        image = sam_local.base_image(architecture)
        sam = sam_local.Sam(
            executable=SAM_EXECUTABLE,
            architecture=architecture,
            bridge_address=engine.bridge_address,
            skip_pull_image=image.local,
            build_dir=REPO_ROOT / ".aws-sam" / f"local-{architecture}" / "build",
        )
        started = time.monotonic()
        sam.build()
        build_seconds = time.monotonic() - started
        stack = start_make_run(workdir, _readme_make_run_variables(engine.bridge_address))
        running.callback(stack.stop)
        env = sam_local.container_env(
            f"http://{sam_local.HOST_NAME}:{stack.ports['aws']}",
            [f"{engine.bridge_address}:*", f"{sam_local.HOST_NAME}:*"],
        )
        session = SamLocal(
            sam=sam,
            stack=stack,
            env_file=sam_local.write_env_file(workdir / "env.json", env),
            workdir=workdir,
            timings={
                "engine": "started here" if engine.started else "already running",
                "base_image_build_seconds": round(image.build_seconds, 1),
                "sam_build_seconds": round(build_seconds, 1),
                "invoke_mode": INVOKE_MODE,
            },
        )
        yield session
        TIMINGS_PATH.parent.mkdir(exist_ok=True)
        TIMINGS_PATH.write_text(json.dumps(session.timings, indent=2) + "\n")


def _readme_make_run_variables(bridge_address: str) -> list[str]:
    """README, "Running functions with SAM locally": `make run BIND=…`, as printed."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = [row for row in readme.splitlines() if row.startswith("make run BIND=")]
    return shlex.split(line.replace("172.17.0.1", bridge_address), comments=True)[2:]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS_PATH.is_file() and TIMINGS_PATH.stat().st_mtime > _SESSION_START:
        terminalreporter.write_line(f"container tier: {TIMINGS_PATH.read_text().strip()}")


_SESSION_START = time.time()
