"""The local stack runs a function's concurrent events in separate environments, as Lambda."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sfbroker import runtime

from local import lambdas
from local.apigw.server import InProcessFunctions
from local.template import FunctionSpec

SPEC = FunctionSpec("TokensFunction", "functions/tokens/", "handler.lambda_handler", {}, [])


def test_concurrent_events_start_environments_up_to_the_limit_then_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[int] = []
    inside: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def load(code_uri: str, handler: str, environment: int = 0) -> lambdas.Handler:
        started.append(environment)

        def handle(event: dict[str, Any], context: Any) -> int:
            with lock:
                inside.append(environment)
            assert release.wait(timeout=10)
            return environment

        return handle

    monkeypatch.setattr(lambdas, "load_handler", load)
    functions = InProcessFunctions([SPEC], limit=2)
    answers: list[int] = []
    callers = [
        threading.Thread(target=lambda: answers.append(functions("TokensFunction", {})))
        for _ in range(3)
    ]
    for caller in callers:
        caller.start()
    # Two events run at once, each in its own environment; the third waits for one.
    for _ in range(1000):
        with lock:
            if len(inside) == 2:
                break
        threading.Event().wait(0.01)
    with lock:
        assert sorted(inside) == [0, 1]
    assert sorted(started) == [0, 1]
    release.set()
    for caller in callers:
        caller.join(timeout=10)
    assert sorted(inside) in ([0, 0, 1], [0, 1, 1])  # the third reused a warm one
    assert sorted(started) == [0, 1]
    assert sorted(answers) == sorted(inside)


def test_each_environment_is_its_own_copy_of_the_handler_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TABLE_NAME", "sfbroker")
    monkeypatch.setenv("KMS_KEY_ID", "alias/sfbroker")
    runtime.reset()
    first = lambdas.load_handler("functions/orgs/", "handler.lambda_handler", 0)
    assert lambdas.load_handler("functions/orgs/", "handler.lambda_handler", 0) is first
    second = lambdas.load_handler("functions/orgs/", "handler.lambda_handler", 1)
    assert second is not first
    assert second.__module__ != first.__module__
    runtime.reset()
