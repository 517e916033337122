"""API tokens end to end: create (shown once), list, revoke, the authorizer's view of them,
the bootstrap command, and the issue's done-when scenario."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from sfbroker import admin_cli, runtime
from sfbroker.store.table import from_item

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Broker
from tests.support.token_api import TokenApi, bearer, create_token

TOKEN_FORMAT = re.compile(r"^sfb_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$")
ACME = {"username": "admin@acme.com"}


def create(broker: Broker, **body: object):
    return broker.call("POST", "/api-tokens", json_body=body)


def token_items(broker: Broker) -> list[dict[str, object]]:
    return [
        from_item(item) for item in broker.table_items() if item["PK"]["S"].startswith("APITOKEN#")
    ]


def test_a_token_is_shown_once_and_stored_as_a_hash(broker: Broker) -> None:
    created = create(broker, name="github-ci", scopes=["token:issue"], orgs=["*@acme.com"])
    assert created.status == 201, created.body
    body = created.body
    token = body["token"]
    assert TOKEN_FORMAT.match(token)
    assert token.split("_")[1] == body["id"]
    assert body["scopes"] == ["token:issue"]
    assert body["orgs"] == ["*@acme.com"]
    assert body["status"] == "active"
    assert body["createdBy"] == "arn:aws:iam::123456789012:role/ci"
    assert body["lastUsedAt"] is None

    secret = token.split("_", 2)[2]
    (item,) = token_items(broker)
    assert token not in json.dumps(item)
    assert secret not in json.dumps(item)
    assert len(str(item["secretHash"])) == 64

    listed = broker.call("GET", "/api-tokens")
    assert listed.status == 200
    (shown,) = listed.body["apiTokens"]
    assert shown == {k: v for k, v in body.items() if k != "token"}
    assert secret not in str(listed.raw)
    assert str(item["secretHash"]) not in str(listed.raw)


def test_expiry_defaults_to_90_days_and_is_capped(broker: Broker) -> None:
    created = create(broker, name="ci", scopes=["orgs:read"]).body
    validity = datetime.fromisoformat(created["expiresAt"]) - datetime.fromisoformat(
        created["createdAt"]
    )
    assert validity.days == 90
    too_long = create(broker, name="ci", scopes=["orgs:read"], expiresInDays=366)
    assert (too_long.status, too_long.error) == (400, "invalid_request")
    assert too_long.body["details"][0]["field"] == "expiresInDays"
    assert create(broker, name="ci", scopes=["orgs:read"], expiresInDays=365).status == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "ci", "scopes": ["root"]}, "scopes"),
        ({"name": "ci", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["admin"]}, "name"),
        ({"name": "ci", "scopes": ["admin"], "orgs": ["has space"]}, "orgs"),
        ({"name": "ci", "scopes": ["admin"], "expiresInDays": 0}, "expiresInDays"),
    ],
)
def test_invalid_token_requests_are_400(
    broker: Broker, body: dict[str, object], field: str
) -> None:
    answer = broker.call("POST", "/api-tokens", json_body=body)
    assert (answer.status, answer.error) == (400, "invalid_request")
    assert any(d["field"].startswith(field) for d in answer.body["details"]), answer.body
    assert token_items(broker) == []


def test_revocation_is_immediate_for_the_next_uncached_authorizer_call(broker: Broker) -> None:
    api = TokenApi(broker)
    token_id, token = create_token(scopes=("orgs:read",))
    assert api.call("GET", "/orgs", authorization=bearer(token)).status == 200

    assert broker.call("DELETE", "/api-tokens/{id}", path_params={"id": token_id}).status == 204
    assert api.call("GET", "/orgs", authorization=bearer(token)).status == 401
    (shown,) = broker.call("GET", "/api-tokens").body["apiTokens"]
    assert shown["status"] == "revoked"
    assert shown["revokedAt"] is not None
    # Idempotent; an unknown id is a 404.
    assert broker.call("DELETE", "/api-tokens/{id}", path_params={"id": token_id}).status == 204
    unknown = broker.call("DELETE", "/api-tokens/{id}", path_params={"id": "nosuchtoken2"})
    assert (unknown.status, unknown.error) == (404, "not_found")


def test_a_cached_answer_outlives_revocation_by_at_most_the_cache_ttl(broker: Broker) -> None:
    ttl = int(broker.template["Parameters"]["AuthorizerCacheTtlSeconds"]["Default"])
    now = [1000.0]
    api = TokenApi(broker, cache_seconds=ttl, clock=lambda: now[0])
    token_id, token = create_token(scopes=("orgs:read",))
    assert api.call("GET", "/orgs", authorization=bearer(token)).status == 200
    # One cached answer serves every route; the handlers still enforce the scopes.
    assert api.call("GET", "/audit", authorization=bearer(token)).status == 403
    assert api.authorizer_calls == 1

    runtime.api_token_service().revoke(token_id, revoked_by="test")
    now[0] += ttl - 1
    assert api.call("GET", "/orgs", authorization=bearer(token)).status == 200
    now[0] += 1
    assert api.call("GET", "/orgs", authorization=bearer(token)).status == 401
    assert api.authorizer_calls == 2


def test_last_use_is_written_at_most_once_a_minute(broker: Broker) -> None:
    api = TokenApi(broker)
    _, token = create_token(scopes=("orgs:read",))
    broker.aws_calls.clear()
    for _ in range(3):
        assert api.call("GET", "/orgs", authorization=bearer(token)).status == 200
    assert broker.aws_calls["dynamodb.GetItem"] == 3  # one consistent read per authorizer call
    assert broker.aws_calls["dynamodb.UpdateItem"] == 1
    (item,) = token_items(broker)
    assert item["lastUsedAt"]


def test_done_when(broker: Broker, salesforce: FakeSalesforceServer, acme: str) -> None:
    """A token with only `token:issue` on `*@acme.com`: issues for admin@acme.com; 403 for
    admin@other.com, POST /orgs and GET /audit; 401 once revoked (uncached call)."""
    salesforce.state.create_production_org("admin@other.com")
    for auth_url in (acme, salesforce.state.mint_auth_url("admin@other.com")):
        assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url}).status == 201
    created = create(broker, name="github-ci", scopes=["token:issue"], orgs=["*@acme.com"]).body
    api = TokenApi(broker)
    auth = bearer(created["token"])

    issued = api.call("POST", "/orgs/{username}/token", authorization=auth, path_params=ACME)
    assert issued.status == 200, issued.body
    assert issued.body["username"] == "admin@acme.com"
    assert issued.body["accessToken"]
    other = api.call(
        "POST",
        "/orgs/{username}/token",
        authorization=auth,
        path_params={"username": "admin@other.com"},
    )
    assert (other.status, other.error) == (403, "forbidden")
    register = api.call("POST", "/orgs", authorization=auth, json_body={"sfdxAuthUrl": acme})
    assert (register.status, register.error) == (403, "forbidden")
    audit = api.call("GET", "/audit", authorization=auth)
    assert (audit.status, audit.error) == (403, "forbidden")

    revoked = broker.call("DELETE", "/api-tokens/{id}", path_params={"id": created["id"]})
    assert revoked.status == 204
    after = api.call("POST", "/orgs/{username}/token", authorization=auth, path_params=ACME)
    assert (after.status, after.error) == (401, "unauthorized")


def test_the_bootstrap_command_mints_an_admin_token(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    table = ["--table", broker.table_name]
    assert admin_cli.main([*table, "create-token", "--name", "bootstrap", "--scopes", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    assert TOKEN_FORMAT.match(token)
    token_id = token.split("_")[1]

    api = TokenApi(broker)
    events = api.call("GET", "/audit", authorization=bearer(token))
    assert events.status == 200
    (minted,) = [e for e in events.body["events"] if e["action"] == "apitoken.create"]
    assert minted["target"] == f"apitoken:{token_id}"
    assert minted["actor"].startswith("arn:aws:")  # the operator's own AWS identity
    assert minted["route"] == "cli create-token"

    assert admin_cli.main([*table, "list-tokens"]) == 0
    assert f"{token_id}  active   bootstrap  admin" in capsys.readouterr().out
    assert admin_cli.main([*table, "create-token", "--name", "x", "--scopes", "root"]) == 1
    assert "invalid_request" in capsys.readouterr().err
    assert admin_cli.main([*table, "revoke-token", token_id]) == 0
    assert api.call("GET", "/audit", authorization=bearer(token)).status == 401
    assert admin_cli.main([*table, "revoke-token", "nosuchtoken2"]) == 1
