"""Cold figures from fresh interpreters, each a ratio to its baseline in the same run.

Runs alternate baseline and subject (B S B S …) and each subject run is divided by the
baseline run just before it; the figure is the median of those ratios, so a machine
that slows down or speeds up during the run moves both sides of each ratio alike. The
ratio is of CPU time (the process's own work: on a shared machine, wall time also holds
the waits for a core); the wall-time ratio is in bench/results.json beside it.

- cold import: a function's handler module, as a ratio to `import boto3`;
- cold start: import the handler and serve its first typical request, as a ratio to
  the floor (`floor.py`) serving the same request with the same AWS calls;
- the same after a SnapStart restore (simulated: init before the clock starts, then the
  after-restore hook and the first request), to the floor restored the same way.

Both run as deployed: the Lambda variables set (so Powertools' Tracer is on and patches
what it patches in Lambda), X-Ray segments sent over UDP to 127.0.0.1, no AWS CRT.
"""

from __future__ import annotations

import base64
import io
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfbroker import runtime

from local import template as sam
from local.fake_salesforce import FakeSalesforceServer
from local.lambdas import invoke
from local.ports import free_port
from tests.bench.figures import Figure

ROOT = Path(__file__).resolve().parents[2]
FRESH = Path(__file__).with_name("fresh.py")
LAYER = str(ROOT / "layers" / "common")
EVENTS = ROOT / "events"

IMPORT_TARGET, START_TARGET = 1.6, 1.5

# The first typical request of each function, as a sample event of events/. The token
# request's floor is written by hand (floor.py); the others replay the same AWS calls.
TYPICAL_REQUESTS: dict[str, tuple[str, str]] = {
    "TokensFunction": ("tokens-issue.json", "token, cache hit"),
    "OrgsFunction": ("orgs-get.json", "GET /orgs/{username}"),
    "AdminFunction": ("admin-tokens-list.json", "GET /api-tokens"),
    "AuthorizerFunction": ("authorizer/request-bearer-token.json", "a bearer token"),
    "SandboxesFunction": ("sandboxes-auth.json", "JIT sandbox token, cache hit"),
    "EnvironmentsFunction": ("environments-get.json", "GET /environments/{name}"),
}
# Functions whose every request calls Salesforce: the floor replays AWS calls only, so a
# ratio to it would not be honest. Their cost per request is in the call rows instead.
_CALLS_SALESFORCE = "the Dev Hub (Salesforce); the floor replays AWS calls only"
NO_FLOOR = {
    "PoolsFunction": f"its requests query {_CALLS_SALESFORCE}",
    "PoolCleanupFunction": f"it queries {_CALLS_SALESFORCE}",
}


@dataclass(frozen=True)
class Sample:
    seconds: float
    cpu: float
    modules: int
    bytes: int


@dataclass
class Pairs:
    """Alternated runs of a baseline and a subject."""

    baseline: list[Sample]
    subject: list[Sample]

    @property
    def ratio(self) -> float:
        return self._ratio("cpu")

    def _ratio(self, attribute: str) -> float:
        ratios = [
            float(getattr(s, attribute) / getattr(b, attribute))
            for b, s in zip(self.baseline, self.subject, strict=True)
        ]
        return statistics.median(ratios)

    def numbers(self) -> dict[str, Any]:
        def median(samples: list[Sample], attribute: str) -> float:
            return float(statistics.median(getattr(s, attribute) for s in samples))

        return {
            "ratio": round(self.ratio, 3),
            "wall_ratio": round(self._ratio("seconds"), 3),
            "runs": len(self.subject),
            "subject_ms": round(median(self.subject, "cpu") * 1000, 1),
            "baseline_ms": round(median(self.baseline, "cpu") * 1000, 1),
            "subject_wall_ms": round(median(self.subject, "seconds") * 1000, 1),
            "baseline_wall_ms": round(median(self.baseline, "seconds") * 1000, 1),
            "subject_modules": median(self.subject, "modules"),
            "baseline_modules": median(self.baseline, "modules"),
            "subject_bytes": median(self.subject, "bytes"),
            "baseline_bytes": median(self.baseline, "bytes"),
        }


@dataclass(frozen=True)
class Subject:
    name: str
    baseline: list[str]
    subject: list[str]
    environment: Mapping[str, str]


# Beside the default (Tracing=sdk), the token function once more with the stack's other
# tracing values (lambda, off): the X-Ray SDK not loaded. The figures behind the choice.
WITHOUT_SDK = "TokensFunction"


def deployed_environment(spec: sam.FunctionSpec, *, sdk: bool = True) -> dict[str, str]:
    """This process's environment (the handlers' variables) plus what Lambda sets.

    Without PYTHONDONTWRITEBYTECODE: the unmeasured first run writes the bytecode of our
    modules, as pip wrote that of boto3 and every other dependency; with it set (some
    shells and CI images do) only our modules would be compiled again in every run.
    """
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **inherited,
        "POWERTOOLS_TRACE_DISABLED": "false" if sdk else "true",
        "LAMBDA_TASK_ROOT": str(ROOT / spec.code_uri),
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "_X_AMZN_TRACE_ID": f"Root=1-67891233-{'0' * 24};Parent={'5' * 16};Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }


def fresh(args: list[str], environment: Mapping[str, str]) -> Sample:
    run = subprocess.run(
        [sys.executable, str(FRESH), *args],
        env=dict(environment),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("BENCH ")]
    if run.returncode or not lines:
        raise RuntimeError(f"{' '.join(args)} failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return Sample(**json.loads(lines[-1].removeprefix("BENCH ")))


def alternate(subjects: list[Subject], runs: int) -> dict[str, Pairs]:
    for s in subjects:  # once unmeasured: bytecode caches written, files in the page cache
        fresh(s.baseline, s.environment)
        fresh(s.subject, s.environment)
    pairs = {s.name: Pairs([], []) for s in subjects}
    for _ in range(runs):
        for s in subjects:
            pairs[s.name].baseline.append(fresh(s.baseline, s.environment))
            pairs[s.name].subject.append(fresh(s.subject, s.environment))
    return pairs


def handler_args(spec: sam.FunctionSpec) -> list[str]:
    return [LAYER, str(ROOT / spec.code_uri), spec.handler.rsplit(".", 1)[0]]


def import_figures(runs: int) -> list[Figure]:
    specs = sam.functions(sam.load_template())
    subjects = [
        Subject(s.logical_id, ["boto3"], ["import", *handler_args(s)], deployed_environment(s))
        for s in specs
    ]
    subjects += [
        Subject(f"{s.logical_id}, Tracing=lambda|off", ["boto3"], ["import", *handler_args(s)],
                deployed_environment(s, sdk=False))
        for s in specs
        if s.logical_id == WITHOUT_SDK
    ]  # fmt: skip
    figures = []
    for name, pairs in alternate(subjects, runs).items():
        numbers = pairs.numbers()
        figures.append(
            Figure(
                f"cold import, {name}" + ("" if "Tracing=" in name else " (Tracing=sdk)"),
                f"{pairs.ratio:.2f}x import boto3 ({numbers['subject_ms']:.0f} ms CPU, "
                f"{numbers['subject_modules']:.0f} modules)",
                f"<= {IMPORT_TARGET}x",
                f"2.2-3.2x; boto3 {numbers['baseline_ms']:.0f} ms, "
                f"{numbers['baseline_modules']:.0f} modules",
                pairs.ratio <= IMPORT_TARGET,
                numbers,
            )
        )
    return figures


def start_figures(
    runs: int, prepared: Mapping[str, Path], workdir: Path, salesforce: FakeSalesforceServer
) -> list[Figure]:
    """Cold start of each function with a typical request; `prepared` maps a function
    to its event (registered org, cached token, real API token already in the table)."""
    subjects, figures = [], []
    for spec in sam.functions(sam.load_template()):
        event = prepared.get(spec.logical_id)
        if event is None:
            figures.append(_no_typical_request(spec.logical_id))
            continue
        if spec.logical_id == "TokensFunction":
            floor = ["floor", str(event)]
        else:
            calls = workdir / f"{spec.logical_id}.calls.json"
            recorded = record_calls(spec, json.loads(event.read_text()), salesforce)
            calls.write_text(json.dumps(recorded))
            floor = ["replay", str(calls)]
        serve = ["serve", *handler_args(spec), str(event)]
        subjects.append(Subject(spec.logical_id, floor, serve, deployed_environment(spec)))
        if spec.logical_id == WITHOUT_SDK:
            environment = deployed_environment(spec, sdk=False)
            subjects.append(
                Subject(f"{spec.logical_id}, Tracing=lambda|off", floor, serve, environment)
            )
            subjects.append(
                Subject(
                    f"{spec.logical_id}, SnapStart restore",
                    ["floor-restore", str(event)],
                    ["restore", *handler_args(spec), str(event)],
                    deployed_environment(spec),
                )
            )
    for name, pairs in alternate(subjects, runs).items():
        numbers = pairs.numbers()
        request = TYPICAL_REQUESTS[name.split(",")[0]][1]
        tracing = "" if "Tracing=" in name else ", Tracing=sdk"
        baseline = "restored floor" if "restore" in name else "floor"
        figures.append(
            Figure(
                f"cold start, {name} ({request}{tracing})",
                f"{pairs.ratio:.2f}x {baseline} ({numbers['subject_ms']:.0f} ms vs "
                f"{numbers['baseline_ms']:.0f} ms CPU)",
                f"<= {START_TARGET}x",
                "about 3x (issue 15)",
                pairs.ratio <= START_TARGET,
                numbers,
            )
        )
    return figures


def _no_typical_request(function: str) -> Figure:
    return Figure(
        f"cold start, {function}",
        f"n/a ({NO_FLOOR.get(function, 'no typical request in tests/bench/cold.py')})",
        f"<= {START_TARGET}x",
        "-",
        None,
    )


def record_calls(
    spec: sam.FunctionSpec, event: dict[str, Any], salesforce: FakeSalesforceServer
) -> list[dict[str, Any]]:
    """The AWS calls a cold container makes for `event`, in order, with their parameters.
    A typical request that calls Salesforce has no honest replay: refused."""
    runtime.reset()
    salesforce.reset_counts()
    calls: list[dict[str, Any]] = []
    for client in (runtime.dynamodb(), runtime.kms()):
        methods = {api: method for method, api in client.meta.method_to_api_mapping.items()}

        def record(params: dict[str, Any], model: Any, _methods: Any = methods, **_: Any) -> None:
            service = model.service_model.service_name
            calls.append(
                {"service": service, "method": _methods[model.name], "params": _plain(params)}
            )

        client.meta.events.register("provide-client-params", record)
    with redirect_stdout(io.StringIO()):  # EMF metric lines
        invoke(spec.code_uri, spec.handler, event, spec.logical_id)
    runtime.reset()
    if salesforce.counts:
        raise RuntimeError(f"{spec.logical_id}'s typical request called Salesforce")
    return calls


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def typical_events(token: str, workdir: Path) -> Iterator[tuple[str, Path]]:
    """Each function's typical event; the authorizer's carries a real API token."""
    for function, (name, _) in TYPICAL_REQUESTS.items():
        event = json.loads((EVENTS / name).read_text())
        if function == "AuthorizerFunction":
            event["headers"]["Authorization"] = f"Bearer {token}"
            if "multiValueHeaders" in event:
                event["multiValueHeaders"]["Authorization"] = [f"Bearer {token}"]
        path = workdir / f"{function}.event.json"
        path.write_text(json.dumps(event))
        yield function, path
