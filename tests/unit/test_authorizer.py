"""The authorizer function with the REQUEST events of events/authorizer/ (moto, in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.event_handler.api_gateway import Router
from moto import mock_aws
from pydantic import BaseModel
from sfbroker import runtime
from sfbroker.access import AccessControl
from sfbroker.auth.api_tokens import parse_bearer, secret_hash
from sfbroker.auth.principal import Principal, principal_from_request_context
from sfbroker.auth.rules import Access
from sfbroker.errors import DependencyUnavailable
from sfbroker.http import build_resolver
from sfbroker.store.api_tokens import ApiTokenRecord, ApiTokenStore
from sfbroker.store.table import from_item

from local.apigw.authorizers import policy_allows
from local.events import EVENTS_DIR, proxy_event
from local.lambdas import LocalContext, invoke
from local.template import create_tables

TABLE = "sfbroker-unit"
AUTHORIZER_EVENTS = EVENTS_DIR / "authorizer"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((AUTHORIZER_EVENTS / name).read_text(encoding="utf-8"))
    return event


def run(event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = invoke(
        "functions/authorizer", "handler.lambda_handler", event, "AuthorizerFunction"
    )
    return answer


EXAMPLE = load("request-bearer-token.json")
PRESENTED = parse_bearer(EXAMPLE["headers"]["Authorization"])
assert PRESENTED is not None


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("KMS_KEY_ID", "alias/unused-by-the-authorizer")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, {"Table": TABLE})
        runtime.reset()
        yield dynamodb
    runtime.reset()


def store_example_token(*, revoked: bool = False, expired: bool = False) -> ApiTokenRecord:
    """The record behind the example token of the event files (its secret is in them)."""
    now = runtime.utc_now().replace(microsecond=0)
    assert PRESENTED is not None
    record = ApiTokenRecord(
        token_id=PRESENTED.token_id,
        name="github-ci",
        scopes=("token:issue",),
        org_patterns=("*@acme.com",),
        created_by="arn:aws:iam::123456789012:role/admin",
        created_at=now - timedelta(days=10),
        expires_at=now - timedelta(days=1) if expired else now + timedelta(days=80),
        secret_hash=secret_hash(PRESENTED.secret.get_secret_value()),
        revoked_at=now if revoked else None,
        revoked_by="admin" if revoked else None,
    )
    ApiTokenStore(runtime.table()).create(record)
    return record


def audit_events(client: Any) -> list[dict[str, Any]]:
    items = client.scan(TableName=TABLE)["Items"]
    return [from_item(i) for i in items if i["PK"]["S"].startswith("AUDIT#")]


def test_a_valid_token_gets_the_whole_api_and_its_limits_as_context(table: Any) -> None:
    store_example_token()
    answer = run(EXAMPLE)
    assert answer["principalId"] == "apitoken:exampletoken"
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": ["arn:aws:execute-api:us-east-1:123456789012:t0k3n4p1id/v1/*/*"],
    }
    # API Gateway caches this per Authorization header for every route of the API.
    api = "arn:aws:execute-api:us-east-1:123456789012:t0k3n4p1id/v1"
    for route in ("GET/audit", "POST/orgs", "DELETE/api-tokens/abc"):
        assert policy_allows(answer["policyDocument"], f"{api}/{route}")
    assert not policy_allows(
        answer["policyDocument"], "arn:aws:execute-api:us-east-1:123456789012:other/v1/GET/orgs"
    )
    context = answer["context"]
    assert all(isinstance(value, str) for value in context.values())
    assert context == {
        "kind": "token",
        "scopes": '["token:issue"]',
        "orgs": '["*@acme.com"]',
        "tokenId": "exampletoken",
        "tokenName": "github-ci",
    }
    # What the handlers make of it once API Gateway passed it on.
    principal = principal_from_request_context(
        {"authorizer": {**context, "principalId": answer["principalId"]}}
    )
    assert principal == Principal(
        "apitoken:exampletoken", "token", frozenset({"token:issue"}), ("*@acme.com",)
    )
    assert audit_events(table) == []


@pytest.mark.parametrize(
    ("event", "setup", "claimed", "reason"),
    [
        ("request-no-authorization.json", {}, None, "missing"),
        ("request-not-a-bearer-token.json", {}, None, "malformed"),
        ("request-bearer-token.json", None, "exampletoken", "unknown_token"),
        ("request-bearer-token.json", {"revoked": True}, "exampletoken", "revoked"),
        ("request-bearer-token.json", {"expired": True}, "exampletoken", "expired"),
    ],
)
def test_refusals_are_401_and_audited_without_the_token(
    table: Any, event: str, setup: dict[str, bool] | None, claimed: str | None, reason: str
) -> None:
    if setup is not None:
        store_example_token(**setup)
    with pytest.raises(Exception) as refused:  # noqa: PT011 - the message is the contract
        run(load(event))
    assert str(refused.value) == "Unauthorized"  # API Gateway's cue for a 401
    (audited,) = audit_events(table)
    # A refusal is nobody's action: the id it claimed is named apart, never as the actor.
    assert (audited["actor"], audited["action"], audited["outcome"]) == (
        "anonymous",
        "request.denied",
        "denied",
    )
    assert audited.get("claimedTokenId") == claimed
    assert audited["reason"] == f"authorizer: {reason}"
    assert audited["route"] == "POST /orgs/{username}/token"
    assert audited["sourceIp"] == "203.0.113.10"
    assert audited["requestId"] == "7b3c1d2e-5f60-4a1b-8c9d-0e1f2a3b4c5d"
    assert PRESENTED is not None
    secret = PRESENTED.secret.get_secret_value()
    trail = json.dumps(audit_events(table))
    assert secret not in trail
    assert secret_hash(secret) not in trail


def test_a_wrong_secret_is_refused(table: Any) -> None:
    store_example_token()
    event = load("request-bearer-token.json")
    event["headers"]["Authorization"] = event["headers"]["Authorization"][:-1] + "1"
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        run(event)
    (audited,) = audit_events(table)
    assert audited["reason"] == "authorizer: wrong_secret"


def test_a_storage_outage_is_not_a_401(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # 401 would tell the client its token is bad; a failure is API Gateway's
    # AUTHORIZER_CONFIGURATION_ERROR, which the template answers 503 (retried).
    def unavailable(self: ApiTokenStore, token_id: str) -> None:
        raise DependencyUnavailable("The database is unavailable")

    monkeypatch.setattr(ApiTokenStore, "get", unavailable)
    with pytest.raises(DependencyUnavailable):
        run(EXAMPLE)


def test_the_event_files_are_request_authorizer_events() -> None:
    names = sorted(path.name for path in AUTHORIZER_EVENTS.glob("*.json"))
    assert names == [
        "request-bearer-token.json",
        "request-no-authorization.json",
        "request-not-a-bearer-token.json",
    ]
    for name in names:
        event = load(name)
        assert event["type"] == "REQUEST"
        assert event["methodArn"].startswith("arn:aws:execute-api:us-east-1:123456789012:")
        assert event["requestContext"]["identity"]["userArn"] is None
        authorization = event["headers"].get("Authorization", "")
        assert authorization == "" or "EXAMPLE" in authorization
        assert event["multiValueHeaders"] == {k: [v] for k, v in event["headers"].items()}


# ---------------------------------------------------------------- the handlers' side

router = Router()  # type: ignore[no-untyped-call]


class Thing(BaseModel):
    name: str


@router.post("/things/<username>")
def make_thing(username: str, body: Thing) -> dict[str, str]:
    return {"made": body.name}


@router.get("/unruled")
def unruled() -> dict[str, str]:
    return {"reached": "yes"}


RULES = {("POST", "/things/{username}"): Access("orgs:write", target="{username}")}
app = build_resolver(router, guard=AccessControl(RULES, runtime.audit_trail))


def call_app(method: str, resource: str, body: str | None, scopes: list[str]) -> tuple[int, Any]:
    event = proxy_event(
        method,
        resource,
        path_params={"username": "admin@acme.com"} if "{username}" in resource else None,
        body=body,
        iam_arn=None,
        authorizer={
            "principalId": "apitoken:abc",
            "kind": "token",
            "scopes": json.dumps(scopes),
            "orgs": '["*@acme.com"]',
        },
    )
    answer = app.resolve(event, LocalContext(function_name="test"))  # type: ignore[arg-type]
    return answer["statusCode"], json.loads(answer["body"])


def test_a_caller_without_the_scope_learns_nothing_about_the_body(table: Any) -> None:
    assert call_app("POST", "/things/{username}", '{"name": "x"}', ["orgs:write"]) == (
        200,
        {"made": "x"},
    )
    status, body = call_app("POST", "/things/{username}", "{}", ["orgs:write"])
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = call_app("POST", "/things/{username}", "{}", ["orgs:read"])
    assert (status, body["error"]) == (403, "forbidden")
    assert "details" not in body
    (denied,) = audit_events(table)
    assert (denied["action"], denied["target"]) == ("request.denied", "admin@acme.com")


def test_a_route_without_an_access_rule_is_refused(table: Any) -> None:
    status, body = call_app("GET", "/unruled", None, ["admin"])
    assert (status, body["error"]) == (403, "forbidden")
    assert "reached" not in json.dumps(body)
