"""events/*.json and local/events.py: realistic REST proxy events for every route."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from local.events import BASE_EVENT, EVENTS_DIR, load_event, proxy_event
from local.template import RouteSpec, api_routes, load_template

EVENT_FILES = sorted(EVENTS_DIR.glob("*.json"))
EXPECTED_FILES = {
    "orgs-register.json": ("POST", "/orgs"),
    "orgs-list.json": ("GET", "/orgs"),
    "orgs-get.json": ("GET", "/orgs/{username}"),
    "orgs-delete.json": ("DELETE", "/orgs/{username}"),
    "health.json": ("GET", "/health"),
    "openapi.json": ("GET", "/openapi.json"),
    "tokens-issue.json": ("POST", "/orgs/{username}/token"),
    "sandboxes-register.json": ("POST", "/sandboxes"),
    "sandboxes-auth.json": ("POST", "/sandboxes/{sandboxName}/auth"),
    "environments-create.json": ("POST", "/environments"),
    "environments-list.json": ("GET", "/environments"),
    "environments-get.json": ("GET", "/environments/{name}"),
    "environments-update.json": ("PATCH", "/environments/{name}"),
    "environments-delete.json": ("DELETE", "/environments/{name}"),
    "leases-acquire.json": ("POST", "/environments/{name}/leases"),
    "leases-get.json": ("GET", "/environments/{name}/leases/{leaseId}"),
    "leases-release.json": ("DELETE", "/environments/{name}/leases/{leaseId}"),
    "admin-tokens-create.json": ("POST", "/api-tokens"),
    "admin-tokens-list.json": ("GET", "/api-tokens"),
    "admin-tokens-revoke.json": ("DELETE", "/api-tokens/{id}"),
    "admin-audit.json": ("GET", "/audit"),
    "pools-status.json": ("GET", "/pools/{tag}"),
    "pools-fetch.json": ("POST", "/pools/{tag}/fetch"),
    "pools-return.json": ("DELETE", "/pools/{tag}/orgs/{username}"),
    "pools-cleanup.json": ("POST", "/pools/{tag}/cleanup"),
}
_PARAMETER = re.compile(r"\{([^}/]+)\}")


@pytest.fixture(scope="module")
def routes() -> list[RouteSpec]:
    # The files are IAM API events; the token API has the same routes (test_template.py),
    # and its authorizer's REQUEST events live in events/authorizer/.
    return [route for route in api_routes(load_template()) if route.api_logical_id == "IamApi"]


def _load(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return event


def _route_of(event: dict[str, Any], routes: list[RouteSpec]) -> RouteSpec:
    matches = [r for r in routes if (r.method, r.path) == (event["httpMethod"], event["resource"])]
    assert len(matches) == 1, f"{event['httpMethod']} {event['resource']} is not a route"
    return matches[0]


def test_the_documented_event_files_exist() -> None:
    for name, (method, resource) in EXPECTED_FILES.items():
        event = load_event(name)
        assert (event["httpMethod"], event["resource"]) == (method, resource), name


def test_every_route_has_an_event_file(routes: list[RouteSpec]) -> None:
    covered = {(e["httpMethod"], e["resource"]) for e in map(_load, EVENT_FILES)}
    missing = [f"{r.method} {r.path}" for r in routes if (r.method, r.path) not in covered]
    assert not missing, f"no event in events/ for {missing}"


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.name)
def test_event_file_is_a_rest_proxy_event_for_a_route(path: Path, routes: list[RouteSpec]) -> None:
    event = _load(path)
    route = _route_of(event, routes)
    context = event["requestContext"]

    params = event["pathParameters"] or {}
    assert set(params) == set(_PARAMETER.findall(event["resource"]))
    expected_path = _PARAMETER.sub(lambda m: quote(params[m.group(1)], safe=""), route.path)
    assert event["path"] == expected_path  # percent-encoded as the client sent it
    assert context["path"] == f"/v1{expected_path}"
    assert context["stage"] == "v1"
    assert context["resourcePath"] == event["resource"]
    assert context["httpMethod"] == event["httpMethod"]
    assert context["requestId"]

    assert event["isBase64Encoded"] is False
    if event["body"] is not None:
        json.loads(event["body"])
    assert event["multiValueHeaders"] == {k: [v] for k, v in event["headers"].items()}
    query = event["queryStringParameters"]
    assert event["multiValueQueryStringParameters"] == (
        {k: [v] for k, v in query.items()} if query else None
    )

    identity = context["identity"]
    if route.auth_none:
        assert identity["userArn"] is None
        assert "Authorization" not in event["headers"]
    else:
        assert identity["userArn"].startswith("arn:aws:")
        assert identity["caller"]
        assert identity["accessKey"]
        assert event["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ")


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.name)
def test_event_file_carries_no_real_looking_secret(path: Path) -> None:
    event = _load(path)
    for auth_url in re.findall(r"force://[^\"\s]+", event["body"] or ""):
        assert "EXAMPLE" in auth_url, auth_url
        assert auth_url.endswith(".salesforce.com"), auth_url
    authorization = event["headers"].get("Authorization", "")
    if authorization:
        assert "EXAMPLE" in authorization


def test_event_files_share_one_shape() -> None:
    base = load_event(BASE_EVENT)
    for path in EVENT_FILES:
        event = _load(path)
        assert set(event) == set(base), path.name
        assert set(event["requestContext"]) == set(base["requestContext"]), path.name
        assert set(event["requestContext"]["identity"]) == set(
            base["requestContext"]["identity"]
        ), path.name


# ---------------------------------------------------------------- proxy_event


def test_proxy_event_has_the_shape_of_the_files() -> None:
    sample = load_event("orgs-get")
    event = proxy_event("get", "/orgs/{username}", path_params={"username": "admin@acme.com"})
    assert set(event) == set(sample)
    assert set(event["requestContext"]) == set(sample["requestContext"])
    assert set(event["requestContext"]["identity"]) == set(sample["requestContext"]["identity"])


def test_proxy_event_encodes_the_path_and_decodes_parameters() -> None:
    event = proxy_event(
        "POST", "/orgs/{username}/token", path_params={"username": "admin@acme.com.uat"}
    )
    assert event["path"] == "/orgs/admin%40acme.com.uat/token"
    assert event["pathParameters"] == {"username": "admin@acme.com.uat"}
    assert event["resource"] == "/orgs/{username}/token"
    assert event["httpMethod"] == "POST"
    context = event["requestContext"]
    assert context["path"] == "/v1/orgs/admin%40acme.com.uat/token"
    assert context["resourcePath"] == "/orgs/{username}/token"
    assert context["httpMethod"] == "POST"


def test_proxy_event_matches_the_sample_file() -> None:
    sample = load_event("orgs-get")
    event = proxy_event(
        "GET",
        "/orgs/{username}",
        path_params={"username": "admin@acme.com"},
        headers=sample["headers"],
        source_ip="203.0.113.10",
        request_id=sample["requestContext"]["requestId"],
    )
    volatile = {"requestTime", "requestTimeEpoch", "extendedRequestId", "resourceId"}
    for key in volatile:
        event["requestContext"].pop(key)
        sample["requestContext"].pop(key)
    assert event == sample


def test_proxy_event_greedy_parameters_keep_slashes() -> None:
    event = proxy_event("GET", "/files/{proxy+}", path_params={"proxy": "a b/c@d"})
    assert event["path"] == "/files/a%20b/c%40d"


def test_proxy_event_without_parameters_or_query() -> None:
    event = proxy_event("GET", "/orgs")
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_proxy_event_query() -> None:
    event = proxy_event("GET", "/orgs", query={"orgType": "sandbox", "isDevHub": "false"})
    assert event["queryStringParameters"] == {"orgType": "sandbox", "isDevHub": "false"}
    assert event["multiValueQueryStringParameters"] == {
        "orgType": ["sandbox"],
        "isDevHub": ["false"],
    }


def test_proxy_event_missing_path_parameter_fails() -> None:
    with pytest.raises(KeyError, match="username"):
        proxy_event("GET", "/orgs/{username}")


def test_proxy_event_bodies() -> None:
    text = proxy_event("POST", "/orgs", body='{"alias": "prod"}')
    assert (text["body"], text["isBase64Encoded"]) == ('{"alias": "prod"}', False)
    assert text["headers"]["Content-Type"] == "application/json"
    utf8 = proxy_event("POST", "/orgs", body='{"alias": "pröd"}'.encode())
    assert (utf8["body"], utf8["isBase64Encoded"]) == ('{"alias": "pröd"}', False)
    binary = proxy_event("POST", "/orgs", body=b"\xff\x00")
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff\x00"


def test_proxy_event_headers() -> None:
    event = proxy_event("GET", "/orgs", headers={"host": "127.0.0.1:3000", "user-agent": "t/1"})
    assert event["headers"] == {"host": "127.0.0.1:3000", "user-agent": "t/1"}
    assert event["multiValueHeaders"] == {"host": ["127.0.0.1:3000"], "user-agent": ["t/1"]}
    assert event["requestContext"]["domainName"] == "127.0.0.1:3000"
    assert event["requestContext"]["identity"]["userAgent"] == "t/1"


def test_proxy_event_request_ids() -> None:
    first, second = proxy_event("GET", "/health"), proxy_event("GET", "/health")
    assert first["requestContext"]["requestId"] != second["requestContext"]["requestId"]
    given = proxy_event("GET", "/health", request_id="req-1")
    assert given["requestContext"]["requestId"] == "req-1"


def test_proxy_event_iam_user_identity() -> None:
    identity = proxy_event("GET", "/orgs", source_ip="10.1.2.3")["requestContext"]["identity"]
    assert identity["userArn"] == "arn:aws:iam::123456789012:user/ci"
    assert identity["accountId"] == "123456789012"
    assert identity["caller"] == identity["user"]
    assert identity["accessKey"].startswith("AKIA")
    assert identity["sourceIp"] == "10.1.2.3"


def test_proxy_event_assumed_role_identity() -> None:
    arn = "arn:aws:sts::210987654321:assumed-role/github-ci/run-42"
    identity = proxy_event("GET", "/orgs", iam_arn=arn)["requestContext"]["identity"]
    assert identity["userArn"] == arn
    assert identity["accountId"] == "210987654321"
    assert identity["caller"].endswith(":run-42")
    assert identity["accessKey"].startswith("ASIA")


def test_proxy_event_without_iam_and_with_authorizer() -> None:
    context = {"principalId": "tok_1", "scopes": "orgs:read", "integrationLatency": 3}
    event = proxy_event("GET", "/orgs", iam_arn=None, authorizer=context)
    identity = event["requestContext"]["identity"]
    assert identity["userArn"] is None
    assert identity["caller"] is None
    assert identity["accessKey"] is None
    assert event["requestContext"]["authorizer"] == context
    assert "authorizer" not in proxy_event("GET", "/orgs")["requestContext"]


def test_proxy_event_is_a_fresh_copy() -> None:
    event = proxy_event("GET", "/health")
    event["requestContext"]["identity"]["sourceIp"] = "mutated"
    assert proxy_event("GET", "/health")["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
