"""The one exception-to-response mapping, seen through a resolver like the handlers'."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.api_gateway import Router
from botocore.exceptions import ClientError
from pydantic import BaseModel
from sfbroker import errors
from sfbroker.http import build_resolver, path_value

from tests.support.lambda_context import context

router = Router()  # type: ignore[no-untyped-call]


class Item(BaseModel):
    name: str
    count: int = 1


@router.post("/items")
def create(body: Item) -> Item:
    return body


@router.get("/boom/<kind>")
def boom(kind: str) -> dict[str, Any]:
    raisers: dict[str, Exception] = {
        "broker": errors.OrgNotFound("a@b.com"),
        "timeout": errors.SalesforceTimeout("slow"),
        "aws": ClientError({"Error": {"Code": "ThrottlingException", "Message": "x"}}, "Query"),
        "bug": RuntimeError("refresh_token=5AepSECRET"),
    }
    raise raisers[kind]


app = build_resolver(router)


def call(method: str, path: str, body: str | None = None) -> tuple[int, dict[str, Any]]:
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"requestId": "req-1", "stage": "v1", "identity": {}},
        "body": body,
        "isBase64Encoded": False,
    }
    answer = app.resolve(event, context("test"))  # type: ignore[arg-type]
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("broker", 404, "org_not_found"),
        ("timeout", 504, "salesforce_timeout"),
        ("aws", 503, "dependency_unavailable"),
        ("bug", 500, "internal_error"),
    ],
)
def test_errors_map_to_the_documented_body(kind: str, status: int, code: str) -> None:
    got_status, body = call("GET", f"/boom/{kind}")
    assert got_status == status
    assert body["error"] == code
    assert body["requestId"] == "req-1"
    assert set(body) == {"error", "message", "requestId"}
    assert "5AepSECRET" not in json.dumps(body)
    assert "Traceback" not in body["message"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"count": 2}', "name"),
        ('{"name": "x", "count": "many"}', "count"),
        ("{not json", "body"),
        (None, "body"),
    ],
)
def test_validation_failures_are_400_invalid_request_with_details(
    raw: str | None, field: str
) -> None:
    status, body = call("POST", "/items", raw)
    assert status == 400
    assert body["error"] == "invalid_request"
    assert any(d["field"].startswith(field) for d in body["details"]), body


def test_unknown_route_is_a_404_in_the_error_body() -> None:
    status, body = call("GET", "/nowhere")
    assert (status, body["error"]) == (404, "not_found")


def test_every_domain_error_has_a_documented_status() -> None:
    documented = {400, 401, 403, 404, 409, 415, 422, 502, 503, 504}
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.BrokerError)
    ]
    assert len(classes) > 10
    for cls in classes:
        if cls is not errors.BrokerError:
            assert cls.status in documented, cls


@pytest.mark.parametrize("raw", ["a%00b", "a%0D%0Ab", "%1B%5B31m", "%E2%80%AEadmin", "a%E2%80%8Bb"])
def test_path_values_with_control_or_format_characters_are_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        path_value(raw)


def test_path_values_are_decoded_once() -> None:
    assert path_value("admin%40acme.com") == "admin@acme.com"
    assert path_value("a%2540b") == "a%40b"
