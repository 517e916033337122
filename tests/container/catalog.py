"""Every event in events/, the function that takes it, and the answer it must give.

Found generically, so a new event or function is covered without editing the tier:
- an API Gateway proxy event (`httpMethod` + `resource`) goes to the function whose Api
  event has that method and path in template.yaml;
- a Lambda authorizer event (`type` REQUEST/TOKEN + `methodArn`) to the authorizer
  function of the template's APIs;
- a scheduled event (`source: aws.events`) to the function with a Schedule event;
- anything else, or an ambiguous match, must name its function in events/answers.yaml.
Events that delete (`httpMethod: DELETE`) run last, so the others find the seeded data.

The answer every event must give by default: a proxy event a status below 500 and a JSON
body, in API.md's error shape (with the event's requestId) from 400 on; an authorizer event
a policy for a principal, or `Unauthorized`; any other event no error. events/answers.yaml
narrows it per event (see its header).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from local import template as sam
from local.events import EVENTS_DIR

ANSWERS_FILE: Final = EVENTS_DIR / "answers.yaml"
_DECLARABLE: Final = frozenset({"function", "status", "error", "keys", "raises", "effect"})
_SCHEDULE_TYPES: Final = frozenset({"Schedule", "ScheduleV2", "CloudWatchEvent", "EventBridgeRule"})
_AUTHORIZER_TYPES: Final = frozenset({"REQUEST", "TOKEN"})


@dataclass(frozen=True)
class EventCase:
    """One file of events/, who takes it, and what it must answer."""

    name: str  # the path below events/, e.g. "orgs-list.json", "authorizer/x.json"
    path: Path
    event: dict[str, Any]
    function: str
    expected: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        if "httpMethod" in self.event and "methodArn" not in self.event:
            return "proxy"
        if self.event.get("type") in _AUTHORIZER_TYPES:
            return "authorizer"
        return "other"


def event_cases(template: Mapping[str, Any] | None = None) -> list[EventCase]:
    """Every event file, in the order they run: deleting events last."""
    template = template if template is not None else sam.load_template()
    answers = load_answers()
    cases = []
    for path in sorted(EVENTS_DIR.rglob("*.json")):
        name = path.relative_to(EVENTS_DIR).as_posix()
        event = json.loads(path.read_text(encoding="utf-8"))
        expected = dict(answers.get(name, {}))
        function = expected.pop("function", None) or _function_for(name, event, template)
        cases.append(EventCase(name, path, event, function, expected))
    return sorted(cases, key=lambda case: case.event.get("httpMethod") == "DELETE")


def load_answers() -> dict[str, dict[str, Any]]:
    """events/answers.yaml: event file → declared answer; unknown keys are an error."""
    answers: dict[str, dict[str, Any]] = yaml.safe_load(ANSWERS_FILE.read_text()) or {}
    for name, declared in answers.items():
        if not (EVENTS_DIR / name).is_file():
            raise ValueError(f"{ANSWERS_FILE.name}: no event file {name}")
        if unknown := set(declared) - _DECLARABLE:
            raise ValueError(f"{ANSWERS_FILE.name}: {name}: unknown {sorted(unknown)}")
    return answers


def _function_for(name: str, event: Mapping[str, Any], template: Mapping[str, Any]) -> str:
    if "methodArn" in event and event.get("type") in _AUTHORIZER_TYPES:
        candidates = {
            authorizer.function_logical_id
            for api in sam.apis(template)
            for authorizer in api.authorizers.values()
        }
    elif "httpMethod" in event:
        candidates = {
            route.function_logical_id
            for route in sam.api_routes(template)
            if (route.method, route.path) == (event["httpMethod"], event.get("resource"))
        }
    elif event.get("source") == "aws.events":
        candidates = {
            logical_id
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
            and any(
                e.get("Type") in _SCHEDULE_TYPES
                for e in (resource.get("Properties", {}).get("Events") or {}).values()
            )
        }
    else:
        candidates = set()
    if len(candidates) != 1:
        raise ValueError(
            f"events/{name}: {len(candidates)} functions take it ({sorted(candidates)}): "
            f"name one with `function:` in {ANSWERS_FILE.name}"
        )
    return candidates.pop()


def check_answer(case: EventCase, answer: Any) -> None:
    """Assert `answer` (what the function returned, or its error) is what `case` expects."""
    expected = case.expected
    if "raises" in expected:
        assert isinstance(answer, dict), answer
        assert answer.get("errorMessage") == expected["raises"], answer
        return
    if case.kind == "proxy":
        _check_proxy(case, answer)
    elif case.kind == "authorizer":
        _check_authorizer(case, answer)
    else:
        assert not (isinstance(answer, dict) and "errorType" in answer), answer


def _check_proxy(case: EventCase, answer: Any) -> None:
    assert isinstance(answer, dict), answer
    assert "errorType" not in answer, answer
    status = answer["statusCode"]
    assert status == case.expected.get("status", status), answer
    assert status < 500, answer
    if status == 204:
        assert not answer.get("body"), answer
        return
    body = json.loads(answer["body"])
    assert isinstance(body, dict), answer
    if status >= 400:
        assert set(body) >= {"error", "message", "requestId"}, body
        assert body["requestId"] == case.event["requestContext"]["requestId"], body
        assert body["error"] == case.expected.get("error", body["error"]), body
    assert set(body) >= set(case.expected.get("keys", [])), body


def _check_authorizer(case: EventCase, answer: Any) -> None:
    assert isinstance(answer, dict), answer
    if "errorType" in answer:
        # API Gateway answers 401 to an error with exactly this message, 500 to any other.
        assert answer.get("errorMessage") == "Unauthorized", answer
        assert "effect" not in case.expected, answer
        return
    assert answer["principalId"], answer
    effects = {statement["Effect"] for statement in answer["policyDocument"]["Statement"]}
    assert len(effects) == 1, answer
    assert effects == {case.expected.get("effect", *effects)}, answer
