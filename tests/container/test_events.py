"""Every event in events/ runs in a Lambda container against the stack, answering as declared.

`make test`: one `sam local start-lambda` with warm containers takes every event (the
same containers `sam local invoke` starts, created once per function). `make sam-local`
(SFBROKER_SAM_INVOKE=cli): each event through its own `sam local invoke`, as a person
runs it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local.fake_salesforce.seed import PRODUCTION_USERNAME
from local.ports import free_port
from local.template import REPO_ROOT, functions, load_template
from tests.container.catalog import EventCase, check_answer, event_cases
from tests.container.conftest import INVOKE_MODE, SamLocal

CASES = event_cases()
Invoke = Callable[[EventCase], Any]


@pytest.fixture(scope="module")
def invoke(sam_local_session: SamLocal) -> Iterator[Invoke]:
    session = sam_local_session
    durations: list[float] = []
    with contextlib.ExitStack() as running:
        send = running.enter_context(_invoker(session))

        def timed(case: EventCase) -> Any:
            started = time.monotonic()
            try:
                return send(case)
            finally:
                durations.append(time.monotonic() - started)

        yield timed
    session.timings["events_invoked"] = len(durations)
    if durations:
        durations.sort()
        session.timings["invoke_seconds_total"] = round(sum(durations), 1)
        session.timings["invoke_seconds_median"] = round(durations[len(durations) // 2], 2)
        session.timings["invoke_seconds_max"] = round(durations[-1], 1)


@contextlib.contextmanager
def _invoker(session: SamLocal) -> Iterator[Invoke]:
    sam = session.sam
    if INVOKE_MODE == "cli":

        def invoke_cli(case: EventCase) -> Any:
            options = sam.local_options(session.env_file)
            result = sam.run("local", "invoke", case.function, "--event", str(case.path), *options)
            return _last_json_line(result.stdout)

        yield invoke_cli
        return
    started = time.monotonic()
    log = session.workdir / "start-lambda.log"
    with sam.service("start-lambda", session.env_file, free_port(), log) as endpoint:
        session.timings["start_lambda_seconds"] = round(time.monotonic() - started, 1)
        client = boto3.client(
            "lambda",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            # A cold container may take a while on a loaded machine; never retry an invoke.
            config=Config(read_timeout=300, retries={"total_max_attempts": 1}),
        )

        cold = {case.function for case in CASES}

        def invoke_warm(case: EventCase) -> Any:
            payload = case.path.read_bytes()
            answer = client.invoke(FunctionName=case.function, Payload=payload)["Payload"].read()
            if case.function in cold and (not answer.strip() or b"timed out" in answer.lower()):
                # A function's first invoke starts its container and runtime: on a loaded
                # 2-core machine with vfs that can outlast a short Timeout (the authorizer's
                # 10 s). Retried once, in the now warm container, and counted.
                session.timings["cold_timeouts_retried"] = (
                    int(session.timings.get("cold_timeouts_retried", 0)) + 1
                )
                answer = client.invoke(FunctionName=case.function, Payload=payload)[
                    "Payload"
                ].read()
            cold.discard(case.function)
            return json.loads(answer)

        yield invoke_warm


def _last_json_line(stdout: str) -> Any:
    # `sam local invoke` prints the function's answer as the last line of stdout.
    return json.loads(stdout.strip().splitlines()[-1])


def test_the_readme_invoke_command_runs_as_printed(sam_local_session: SamLocal) -> None:
    # README, "Running functions with SAM locally": the Linux command as printed; only
    # the built template and the environment file are the tier's own. (Runs before the
    # events: orgs-delete.json removes the org it lists.)
    session = sam_local_session
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = [row for row in readme.splitlines() if row.startswith("sam local invoke ")]
    words = shlex.split(line.replace("172.17.0.1", session.sam.bridge_address))
    result = session.sam.run(
        *words[1:], "--template", str(session.sam.template), "--env-vars", str(session.env_file)
    )
    answer = _last_json_line(result.stdout)
    assert answer["statusCode"] == 200, answer
    assert [org["username"] for org in json.loads(answer["body"])["orgs"]] == [PRODUCTION_USERNAME]


def test_the_events_cover_every_function() -> None:
    assert {case.function for case in CASES} == {f.logical_id for f in functions(load_template())}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_event_answers_as_declared_from_a_lambda_container(
    invoke: Invoke, case: EventCase
) -> None:
    check_answer(case, invoke(case))
