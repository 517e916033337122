"""Scoped tokens do not overreach: org patterns bind registration, admin tokens carry
none, a username does not silently move to another org, minValiditySeconds cannot
defeat the cache."""

from __future__ import annotations

import pytest

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Broker
from tests.support.token_api import TokenApi, bearer, create_token

ACME = {"username": "admin@acme.com"}


def org_items(broker: Broker) -> list[dict[str, object]]:
    return [i for i in broker.table_items() if i["PK"]["S"].startswith("ORG#")]


def audit_events(broker: Broker) -> list[dict[str, object]]:
    pages = broker.dynamodb.get_paginator("scan").paginate(TableName=broker.table_name)
    items = [i for page in pages for i in page["Items"] if i["PK"]["S"].startswith("AUDIT#")]
    return sorted(
        ({k: next(iter(v.values())) for k, v in item.items()} for item in items),
        key=lambda event: str(event["SK"]),
    )


# ---------------------------------------------------------------- 4: admin tokens


def test_an_admin_token_with_org_patterns_is_refused_at_creation(broker: Broker) -> None:
    answer = broker.call(
        "POST",
        "/api-tokens",
        json_body={"name": "boss", "scopes": ["admin"], "orgs": ["*@acme.com"]},
    )
    assert (answer.status, answer.error) == (400, "invalid_request"), answer.body
    assert [d["field"] for d in answer.body["details"]] == ["orgs"]
    assert "admin" in answer.body["details"][0]["message"]
    assert not [i for i in broker.table_items() if i["PK"]["S"].startswith("APITOKEN#")]
    # Without patterns, or patterns without admin: fine.
    plain = {"name": "boss", "scopes": ["admin"]}
    assert broker.call("POST", "/api-tokens", json_body=plain).status == 201
    scoped = {"name": "ci", "scopes": ["token:issue"], "orgs": ["*@acme.com"]}
    assert broker.call("POST", "/api-tokens", json_body=scoped).status == 201


# ---------------------------------------------------------------- 5: minValiditySeconds


def test_min_validity_above_the_token_lifetime_is_400_naming_the_maximum(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    salesforce.reset_counts()
    # ACCESS_TOKEN_TTL_SECONDS is 5400: a token can promise at most 5400 - 600 = 4800 more.
    answers = [
        broker.call(
            "POST",
            "/orgs/{username}/token",
            path_params=ACME,
            json_body={"minValiditySeconds": 7200},
        )
        for _ in range(5)
    ]
    assert {(a.status, a.error) for a in answers} == {(400, "invalid_request")}
    detail = answers[0].body["details"][0]
    assert detail["field"] == "minValiditySeconds"
    assert "4800" in detail["message"]
    assert salesforce.counts["oauth2/token"] == 0
    at_most = [
        broker.call(
            "POST",
            "/orgs/{username}/token",
            path_params=ACME,
            json_body={"minValiditySeconds": 4800},
        )
        for _ in range(5)
    ]
    assert {a.status for a in at_most} == {200}
    # The registration's token was cached moments ago: it still has more than 4800 s.
    assert salesforce.counts["oauth2/token"] == 0
    assert {a.body["source"] for a in at_most} == {"cache"}


# ---------------------------------------------------------------- 2: org patterns


@pytest.fixture
def uat_writer(broker: Broker) -> str:
    """A token that may write orgs, but only `*@acme.com.uat` ones."""
    _, token = create_token(scopes=("orgs:write", "orgs:read"), orgs=("*@acme.com.uat",))
    return token


def test_org_patterns_bind_registration(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str, uat_writer: str
) -> None:
    api = TokenApi(broker)
    # A new org outside the patterns: Salesforce says admin@acme.com, the token may not.
    outside = api.call(
        "POST", "/orgs", authorization=bearer(uat_writer), json_body={"sfdxAuthUrl": acme}
    )
    assert (outside.status, outside.error) == (403, "forbidden"), outside.body
    assert "admin@acme.com" in outside.body["message"]
    assert org_items(broker) == []
    # Nor may it replace the credential of an org registered by someone else.
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    before = org_items(broker)
    fresh = salesforce.state.mint_auth_url("admin@acme.com")
    replace = api.call(
        "POST", "/orgs", authorization=bearer(uat_writer), json_body={"sfdxAuthUrl": fresh}
    )
    assert (replace.status, replace.error) == (403, "forbidden"), replace.body
    assert org_items(broker) == before
    # Both refusals are in the audit trail as denied, naming the username in the reason.
    denied = [e for e in audit_events(broker) if e["outcome"] == "denied"]
    assert [(e["action"], e["route"]) for e in denied] == [("request.denied", "POST /orgs")] * 2
    assert all("admin@acme.com" in str(e["reason"]) for e in denied)
    # Inside its patterns it registers as before.
    salesforce.state.create_production_org("qa@acme.com.uat", name="Acme UAT")
    inside = api.call(
        "POST",
        "/orgs",
        authorization=bearer(uat_writer),
        json_body={"sfdxAuthUrl": salesforce.state.mint_auth_url("qa@acme.com.uat")},
    )
    assert (inside.status, inside.body["username"]) == (201, "qa@acme.com.uat")


# ---------------------------------------------------------------- 3: org_mismatch


def _move_username_to_a_new_org(salesforce: FakeSalesforceServer, username: str) -> str:
    """What a sandbox refresh does: the same username, now in an org with a new id."""
    state = salesforce.state
    user = state.find_user(username)
    assert user is not None
    del state.users[user.id]
    state.create_production_org(username, name="Acme Again")
    return state.mint_auth_url(username)


def test_a_username_now_in_another_org_is_409_unless_allowed(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    first = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme})
    assert first.status == 201
    before = org_items(broker)
    moved = _move_username_to_a_new_org(salesforce, "admin@acme.com")
    refused = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": moved})
    assert (refused.status, refused.error) == (409, "org_mismatch"), refused.body
    assert "allowOrgChange" in refused.body["message"]
    assert org_items(broker) == before  # the credential and cached token are untouched
    allowed = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": moved, "allowOrgChange": True})
    assert allowed.status == 200, allowed.body
    assert allowed.body["orgId"] != first.body["orgId"]
    token = broker.call("POST", "/orgs/{username}/token", path_params=ACME)
    assert token.body["orgId"] == allowed.body["orgId"]
    # The same org re-registered: no change of org, no flag needed.
    again = broker.call(
        "POST", "/orgs", json_body={"sfdxAuthUrl": salesforce.state.mint_auth_url("admin@acme.com")}
    )
    assert again.status == 200


# ---------------------------------------------------------------- 12: one username form


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/orgs/{username}"),
        ("DELETE", "/orgs/{username}"),
        ("POST", "/orgs/{username}/token"),
    ],
)
def test_a_username_in_a_path_has_one_form_the_iam_path_and_the_api_agree_on(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str, method: str, path: str
) -> None:
    """An IAM Deny on `/orgs/admin@acme.com/*` must not be passed by `/orgs/ADMIN@acme.com`:
    the API accepts only the normalised (lowercase) form the IAM resource path shows."""
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    salesforce.reset_counts()
    for variant in ("ADMIN@acme.com", "Admin@Acme.com"):
        answer = broker.call(method, path, path_params={"username": variant})
        assert (answer.status, answer.error) == (400, "invalid_request"), answer.body
        assert answer.body["details"][0]["field"] == "username"
    assert salesforce.counts["oauth2/token"] == 0
    assert len(org_items(broker)) == 2  # META and TOKEN: nothing deleted
    assert broker.call(method, path, path_params=ACME).status in (200, 204)
