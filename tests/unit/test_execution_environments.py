"""The local stack runs a function's concurrent events in separate environments, as Lambda."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext
from sfbroker import runtime

from local import lambdas
from local.apigw.server import InProcessFunctions
from local.events import request_event
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


def _get(path: str) -> dict[str, Any]:
    return request_event(
        "GET",
        path,
        path,
        stage="v1",
        api_id="local",
        path_params=None,
        query=[],
        headers=[],
        body=None,
        identity=None,
        authorizer=None,
        source_ip="127.0.0.1",
        request_id=path,
    )


def test_environments_running_at_once_each_resolve_their_own_event() -> None:
    """Powertools keeps the event being resolved on the class `BaseRouter`: environments
    running at once in threads must still each read their own (the soak's lone 401 was a
    route that read a concurrent `/health` event, which carries no caller)."""
    lambdas.isolate_request_state()
    first_inside, second_resolved = threading.Event(), threading.Event()
    seen: dict[str, str] = {}

    def environment(name: str) -> APIGatewayRestResolver:
        app = APIGatewayRestResolver()

        @app.get(f"/{name}")
        def route() -> dict[str, str]:
            if name == "first":
                first_inside.set()
                assert second_resolved.wait(timeout=10)
            seen[name] = app.current_event.path
            second_resolved.set()
            return {}

        return app

    first, second = environment("first"), environment("second")
    context = cast(LambdaContext, lambdas.LocalContext(function_name="f"))
    thread = threading.Thread(target=first.resolve, args=(_get("/first"), context))
    thread.start()
    assert first_inside.wait(timeout=10)
    answer = second.resolve(_get("/second"), context)  # while the first waits in its route
    thread.join(timeout=10)

    assert answer["statusCode"] == 200
    assert seen == {"first": "/first", "second": "/second"}
