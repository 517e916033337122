"""Scoped tokens do not overreach: org patterns bind registration, admin tokens carry
none, a username does not silently move to another org, minValiditySeconds cannot
defeat the cache."""

from __future__ import annotations

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Broker

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
