"""The authorization matrix, generated from the routes of `template.yaml` and the access
rules of `sfbroker/auth/rules.py`: a new route without a rule fails here.

Token API: every route x {no header, malformed header, unknown token, wrong secret,
expired, revoked, missing scope, org pattern mismatch, correct}, through the real
authorizer function and then the real handler, as API Gateway runs them. IAM API: every
route with an IAM principal (route access is IAM policy's job; the handlers let it pass).

"Authorized" is the route's answer to an authorized caller. Routes that would need
Salesforce for a 2xx are asked about something that does not exist — a 404
`org_not_found` (or 400 `host_not_allowed` for a registration, or 404 `not_found` for a
pool without a registered Dev Hub) is the domain answering,
so authorization passed. Routes without a sample below are asked without a body and must
answer anything but 401/403.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from sfbroker import runtime
from sfbroker.auth.api_tokens import mint_token
from sfbroker.auth.principal import ADMIN_SCOPE, SCOPES
from sfbroker.auth.rules import ROUTE_ACCESS, Access

from local import template as sam
from tests.support.broker import Answer, Broker
from tests.support.token_api import TokenApi, bearer, create_token

IAM_PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/ci/job-1"
# Values for path parameters, inside the "correct" token's org patterns.
PATH_VALUES = {"username": "admin@acme.com", "id": "unknowntoken", "tag": "ci"}
CORRECT_ORGS = ("*@acme.com", "pool:*")
OTHER_ORGS = ("*@nowhere.example",)
CASES = (
    "no header",
    "malformed header",
    "unknown token",
    "wrong secret",
    "expired",
    "revoked",
    "missing scope",
    "org pattern mismatch",
    "correct",
)
UNAUTHENTICATED = CASES[:6]


@dataclass(frozen=True)
class Authorized:
    """What the route answers an authorized caller with the sample request."""

    status: int | None = None  # None: anything but 401/403
    error: str | None = None
    json_body: Any = None
    query: Mapping[str, str] = field(default_factory=dict)
    # The route checks the caller's org patterns against usernames in the body.
    body_targets: bool = False

    def matches(self, answer: Answer) -> bool:
        if self.status is None:
            return answer.status not in (401, 403)
        return (answer.status, answer.error) == (self.status, self.error)


REPOSITORY = {"repository": "acme/app"}
SAMPLES: dict[tuple[str, str], Authorized] = {
    ("GET", "/health"): Authorized(200),
    ("GET", "/openapi.json"): Authorized(200),
    ("POST", "/orgs"): Authorized(
        400,
        "host_not_allowed",
        json_body={"sfdxAuthUrl": "force://PlatformCLI::5AepEXAMPLE@acme.example.com"},
    ),
    ("GET", "/orgs"): Authorized(200),
    ("GET", "/orgs/{username}"): Authorized(404, "org_not_found"),
    ("DELETE", "/orgs/{username}"): Authorized(404, "org_not_found"),
    ("POST", "/orgs/{username}/token"): Authorized(404, "org_not_found"),
    ("POST", "/sandboxes"): Authorized(
        404,
        "parent_org_not_found",
        json_body={
            "sandboxName": "uat",
            "productionUsername": "admin@acme.com",
            "username": "uat@acme.com",
        },
        body_targets=True,
    ),
    ("POST", "/sandboxes/{sandboxName}/auth"): Authorized(
        404, "org_not_found", json_body={"productionUsername": "admin@acme.com"}, body_targets=True
    ),
    ("POST", "/environments"): Authorized(
        404,
        "org_not_found",
        json_body={
            "repository": "acme/app",
            "name": "UAT",
            "category": "test",
            "username": "admin@acme.com",
        },
        body_targets=True,
    ),
    ("GET", "/environments"): Authorized(200, query=REPOSITORY),
    ("GET", "/environments/{name}"): Authorized(404, "environment_not_found", query=REPOSITORY),
    ("PATCH", "/environments/{name}"): Authorized(
        404, "environment_not_found", json_body={"description": "matrix"}, query=REPOSITORY
    ),
    ("DELETE", "/environments/{name}"): Authorized(404, "environment_not_found", query=REPOSITORY),
    ("POST", "/environments/{name}/leases"): Authorized(
        404, "environment_not_found", query=REPOSITORY
    ),
    ("GET", "/environments/{name}/leases/{leaseId}"): Authorized(
        404, "environment_not_found", query=REPOSITORY
    ),
    ("DELETE", "/environments/{name}/leases/{leaseId}"): Authorized(
        404, "environment_not_found", query=REPOSITORY
    ),
    ("POST", "/api-tokens"): Authorized(
        201, json_body={"name": "made-by-the-matrix", "scopes": ["orgs:read"]}
    ),
    ("GET", "/api-tokens"): Authorized(200),
    ("DELETE", "/api-tokens/{id}"): Authorized(404, "not_found"),
    ("GET", "/audit"): Authorized(200),
    # No Dev Hub is registered: the pool routes answer that, after authorization.
    ("GET", "/pools/{tag}"): Authorized(404, "not_found"),
    ("POST", "/pools/{tag}/fetch"): Authorized(404, "not_found"),
    ("DELETE", "/pools/{tag}/orgs/{username}"): Authorized(404, "not_found"),
    ("POST", "/pools/{tag}/cleanup"): Authorized(404, "not_found", json_body={"dryRun": True}),
}

TEMPLATE = sam.load_template()
TOKEN_ROUTES = [r for r in sam.api_routes(TEMPLATE) if r.api_logical_id == "TokenApi"]
IAM_ROUTES = [r for r in sam.api_routes(TEMPLATE) if r.api_logical_id == "IamApi"]


def _id(route: sam.RouteSpec) -> str:
    return f"{route.method} {route.path}"


def rule_of(route: sam.RouteSpec) -> Access:
    rule = ROUTE_ACCESS.get((route.method, route.path))
    assert rule is not None, f"{_id(route)} has no access rule in sfbroker/auth/rules.py"
    return rule


def expected(route: sam.RouteSpec, rule: Access, sample: Authorized, case: str) -> str:
    """`"401"`, `"403"` or `"authorized"` for one cell of the matrix."""
    if route.auth_none:
        return "authorized"
    if case in UNAUTHENTICATED:
        return "401"
    if case == "missing scope" and rule.scope is not None:
        return "403"
    targeted = rule.target is not None or sample.body_targets
    if case == "org pattern mismatch" and targeted and rule.scope != ADMIN_SCOPE:
        return "403"
    return "authorized"


def authorization_headers(rule: Access) -> dict[str, str | None]:
    """One `Authorization` header per case, with tokens made for this route's rule."""
    needed = rule.scope or "orgs:read"
    unrelated = sorted(SCOPES - {needed, ADMIN_SCOPE})[0]
    # An admin token carries no org patterns (refused at creation): it reaches every org.
    correct_orgs, other_orgs = ((), ()) if needed == ADMIN_SCOPE else (CORRECT_ORGS, OTHER_ORGS)
    _, correct = create_token(scopes=(needed,), orgs=correct_orgs)
    _, lacking = create_token(scopes=(unrelated,), orgs=CORRECT_ORGS)
    _, elsewhere = create_token(scopes=(needed,), orgs=other_orgs)
    _, expired = create_token(scopes=(needed,), orgs=correct_orgs, days_ago=2, expires_in_days=1)
    revoked_id, revoked = create_token(scopes=(needed,), orgs=correct_orgs)
    runtime.api_token_service().revoke(revoked_id, revoked_by="matrix")
    prefix, token_id, _ = correct.split("_", 2)
    return {
        "no header": None,
        "malformed header": "Bearer sfb_not-a-token",
        "unknown token": bearer(mint_token().token.get_secret_value()),
        "wrong secret": bearer(f"{prefix}_{token_id}_{'x' * 43}"),
        "expired": bearer(expired),
        "revoked": bearer(revoked),
        "missing scope": bearer(lacking),
        "org pattern mismatch": bearer(elsewhere),
        "correct": bearer(correct),
    }


def outcome(answer: Answer, sample: Authorized) -> str:
    if answer.status in (401, 403):
        assert answer.error == ("unauthorized" if answer.status == 401 else "forbidden")
        return str(answer.status)
    assert sample.matches(answer), answer.body
    return "authorized"


@pytest.mark.parametrize("route", TOKEN_ROUTES, ids=_id)
def test_token_api_matrix(broker: Broker, route: sam.RouteSpec) -> None:
    rule = rule_of(route)
    sample = SAMPLES.get((route.method, route.path), Authorized())
    api = TokenApi(broker)
    headers = authorization_headers(rule)
    path_params = path_values(route)

    got, want = {}, {}
    for case in CASES:
        broker.aws_calls.clear()
        answer = api.call(
            route.method,
            route.path,
            authorization=headers[case],
            path_params=path_params,
            query=sample.query,
            json_body=sample.json_body,
        )
        got[case] = outcome(answer, sample)
        want[case] = expected(route, rule, sample, case)
        if got[case] in ("401", "403"):
            # Refused before any data is read or decrypted.
            assert broker.aws_calls.of("kms") == 0, case
            assert broker.aws_calls["dynamodb.Query"] == 0, case
    assert got == want


@pytest.mark.parametrize("route", IAM_ROUTES, ids=_id)
def test_iam_api_lets_iam_principals_through(broker: Broker, route: sam.RouteSpec) -> None:
    rule_of(route)
    sample = SAMPLES.get((route.method, route.path), Authorized())
    answer = broker.call(
        route.method,
        route.path,
        path_params=path_values(route),
        query=sample.query or None,
        json_body=sample.json_body,
        iam_arn=None if route.auth_none else IAM_PRINCIPAL,
    )
    assert outcome(answer, sample) == "authorized"


def test_a_request_without_any_principal_is_refused_by_the_handler_too(broker: Broker) -> None:
    # Defence in depth: if the gateway ever let one through, the handler still says 401.
    answer = broker.call("GET", "/orgs", iam_arn=None)
    assert (answer.status, answer.error) == (401, "unauthorized")


def test_the_matrix_covers_every_route() -> None:
    routes = {(r.method, r.path) for r in sam.api_routes(TEMPLATE)}
    assert {(r.method, r.path) for r in TOKEN_ROUTES} == routes
    assert {(r.method, r.path) for r in IAM_ROUTES} == routes
    assert set(ROUTE_ACCESS) == routes


def path_values(route: sam.RouteSpec) -> dict[str, str]:
    names = re.findall(r"\{([^}+]+)\+?\}", route.path)
    return {name: PATH_VALUES.get(name, "ci") for name in names}
