"""The container tier's catalog: every event finds its function and its expected answer.

Checked here without containers, so a new event that the tier could not place (or a typo
in events/answers.yaml) fails on every machine, not only where the tier runs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from local import template as sam
from local.events import EVENTS_DIR, load_event
from tests.container.catalog import EventCase, check_answer, event_cases, load_answers


def test_every_event_file_is_a_case_with_its_function() -> None:
    cases = event_cases()
    assert sorted(case.name for case in cases) == sorted(
        path.relative_to(EVENTS_DIR).as_posix() for path in EVENTS_DIR.rglob("*.json")
    )
    functions = {spec.logical_id for spec in sam.functions(sam.load_template())}
    assert {case.function for case in cases} == functions
    by_name = {case.name: case.function for case in cases}
    assert by_name["tokens-issue.json"] == "TokensFunction"
    assert by_name["authorizer/request-bearer-token.json"] == "AuthorizerFunction"


def test_deleting_events_run_last() -> None:
    methods = [case.event.get("httpMethod") for case in event_cases()]
    first_delete = methods.index("DELETE")
    assert set(methods[first_delete:]) == {"DELETE"}


def test_every_declared_answer_names_an_event() -> None:
    assert set(load_answers()) <= {
        p.relative_to(EVENTS_DIR).as_posix() for p in EVENTS_DIR.rglob("*.json")
    }


def test_a_scheduled_event_goes_to_the_function_with_a_schedule() -> None:
    template = copy.deepcopy(sam.load_template())
    # The template's own schedule (pool cleanup) steps aside for this one.
    del template["Resources"]["PoolCleanupFunction"]["Properties"]["Events"]["CleanupSchedule"]
    template["Resources"]["CleanupFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "functions/cleanup/",
            "Events": {"Nightly": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 day)"}}},
        },
    }
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    path = EVENTS_DIR / "scheduled.json"
    try:
        path.write_text(json.dumps(scheduled))
        (case,) = [c for c in event_cases(template) if c.name == "scheduled.json"]
    finally:
        path.unlink()
    assert case.function == "CleanupFunction"
    assert case.kind == "other"
    check_answer(case, None)
    with pytest.raises(AssertionError):
        check_answer(case, {"errorType": "RuntimeError", "errorMessage": "boom"})


def _case(name: str) -> EventCase:
    (case,) = [c for c in event_cases() if c.name == name]
    return case


def _proxy_answer(status: int, body: Any) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps(body)}


def test_a_proxy_answer_is_checked_against_its_declaration() -> None:
    case = _case("orgs-list.json")
    check_answer(case, _proxy_answer(200, {"orgs": []}))
    for wrong in (
        _proxy_answer(200, {"items": []}),  # a declared key missing
        _proxy_answer(403, {"error": "forbidden", "message": "no", "requestId": "x"}),
        {"errorType": "Runtime.ImportModuleError", "errorMessage": "no module"},
    ):
        with pytest.raises(AssertionError):
            check_answer(case, wrong)


def test_an_undeclared_proxy_event_must_answer_below_500_in_the_api_shape() -> None:
    event = load_event("health.json")
    case = EventCase("new.json", EVENTS_DIR / "new.json", event, "OrgsFunction")
    request_id = event["requestContext"]["requestId"]
    check_answer(case, _proxy_answer(404, {"error": "x", "message": "y", "requestId": request_id}))
    for wrong in (
        _proxy_answer(500, {"error": "internal", "message": "y", "requestId": request_id}),
        _proxy_answer(400, {"message": "no error code"}),
        _proxy_answer(400, {"error": "x", "message": "y", "requestId": "another request"}),
    ):
        with pytest.raises(AssertionError):
            check_answer(case, wrong)


def test_an_authorizer_answers_a_policy_or_unauthorized() -> None:
    case = EventCase(
        "a.json", EVENTS_DIR / "a.json", {"type": "REQUEST", "methodArn": "arn"}, "Authorizer"
    )
    check_answer(case, {"errorType": "AuthorizerRefusal", "errorMessage": "Unauthorized"})
    allow = {"principalId": "p", "policyDocument": {"Statement": [{"Effect": "Allow"}]}}
    check_answer(case, allow)
    with pytest.raises(AssertionError):
        check_answer(case, {"errorType": "KeyError", "errorMessage": "Authorization"})
    denied = EventCase(case.name, case.path, case.event, case.function, {"effect": "Deny"})
    with pytest.raises(AssertionError):
        check_answer(denied, allow)
