"""Every sample event in events/ (the ones `sam local invoke` uses) is accepted by its handler."""

from __future__ import annotations

import json

import pytest

from local import template as sam
from local.events import EVENTS_DIR, load_event
from local.lambdas import invoke
from tests.support.broker import Broker

# API Gateway proxy events; authorizer and scheduled events are exercised by their own tests.
PROXY_EVENTS = sorted(
    p.name for p in EVENTS_DIR.glob("*.json") if "httpMethod" in load_event(p.name)
)


def test_there_are_proxy_events() -> None:
    assert len(PROXY_EVENTS) >= 7


@pytest.mark.parametrize("name", PROXY_EVENTS)
def test_the_handler_answers_its_sample_event_in_the_api_shape(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # The samples name real Salesforce hosts: allow none, so nothing leaves this machine.
    monkeypatch.setenv("SALESFORCE_ALLOWED_HOSTS", "*.invalid")
    from sfbroker import runtime

    runtime.reset()
    event = load_event(name)
    spec = next(
        s
        for s in sam.functions(broker.template)
        if any(r.method == event["httpMethod"] and r.path == event["resource"] for r in s.events)
    )
    answer = invoke(spec.code_uri, spec.handler, event, spec.logical_id)
    assert answer["statusCode"] < 500, answer
    if answer["statusCode"] == 204:
        return
    body = json.loads(answer["body"])
    if answer["statusCode"] >= 400:
        assert set(body) >= {"error", "message", "requestId"}
        assert body["requestId"] == event["requestContext"]["requestId"]
