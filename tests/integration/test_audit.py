"""The audit trail: an event for every audited action and refusal, never a secret, read
back through `GET /audit`; its write adds no sequential latency to a token issuance."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sfbroker import runtime
from sfbroker.errors import DependencyUnavailable
from sfbroker.store.audit import AuditRecord, AuditStore
from sfbroker.store.table import from_item

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Broker
from tests.support.salesforce import refresh_token_of
from tests.support.token_api import TokenApi, bearer, create_token

IAM_ADMIN = "arn:aws:iam::123456789012:role/ci"
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
ACME = {"username": "admin@acme.com"}


def scan(broker: Broker, prefix: str) -> list[dict[str, Any]]:
    """Every item whose partition key starts with `prefix`, as stored, in key order."""
    pages = broker.dynamodb.get_paginator("scan").paginate(TableName=broker.table_name)
    items = [from_item(i) for page in pages for i in page["Items"]]
    return sorted(
        (i for i in items if str(i["PK"]).startswith(prefix)), key=lambda i: (i["PK"], i["SK"])
    )


def audit_items(broker: Broker) -> list[dict[str, Any]]:
    return scan(broker, "AUDIT#")


def actions(broker: Broker) -> list[tuple[str, str | None, str]]:
    return [(i["action"], i.get("target"), i["outcome"]) for i in audit_items(broker)]


@pytest.fixture
def registered(broker: Broker, salesforce: FakeSalesforceServer, acme: str) -> str:
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    return acme


def test_every_audited_action_and_refusal_is_recorded_without_secrets(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    api = TokenApi(broker)
    re_registered = broker.call(
        "POST", "/orgs", json_body={"sfdxAuthUrl": salesforce.state.mint_auth_url("admin@acme.com")}
    )
    assert re_registered.status == 200
    created = broker.call(
        "POST",
        "/api-tokens",
        json_body={"name": "ci", "scopes": ["token:issue"], "orgs": ["*@acme.com"]},
    ).body
    token, token_id = created["token"], created["id"]
    issued = api.call(
        "POST", "/orgs/{username}/token", authorization=bearer(token), path_params=ACME
    )
    assert issued.status == 200
    denied = api.call("DELETE", "/orgs/{username}", authorization=bearer(token), path_params=ACME)
    assert denied.status == 403
    wrong = api.call("GET", "/orgs", authorization=bearer(token[:-4] + "AAAA"))
    assert wrong.status == 401
    missing = broker.call(
        "POST", "/orgs/{username}/token", path_params={"username": "nobody@acme.com"}
    )
    assert missing.status == 404
    assert broker.call("DELETE", "/api-tokens/{id}", path_params={"id": token_id}).status == 204
    assert broker.call("DELETE", "/orgs/{username}", path_params=ACME).status == 204

    token_target = f"apitoken:{token_id}"
    assert actions(broker) == [
        ("org.register", "admin@acme.com", "success"),
        ("org.replace", "admin@acme.com", "success"),
        ("apitoken.create", token_target, "success"),
        ("token.issue", "admin@acme.com", "success"),
        ("request.denied", "admin@acme.com", "denied"),
        ("request.denied", None, "denied"),
        ("token.issue", "nobody@acme.com", "error"),
        ("apitoken.revoke", token_target, "success"),
        ("org.delete", "admin@acme.com", "success"),
    ]
    events = audit_items(broker)
    by_token = {e["actor"] for e in events[3:5]}
    assert by_token == {token_target}
    # The wrong secret was nobody's action: the token it claimed is named apart.
    assert (events[5]["actor"], events[5]["claimedTokenId"]) == ("anonymous", token_id)
    assert {events[i]["actor"] for i in (0, 1, 2, 6, 7, 8)} == {IAM_ADMIN}
    assert events[4]["route"] == "DELETE /orgs/{username}"
    assert events[5]["reason"] == "authorizer: wrong_secret"
    assert events[6]["reason"] == "org_not_found"
    for event in events:
        assert event["requestId"]
        assert event["sourceIp"]
        assert event["PK"] == f"AUDIT#{event['at'][:10]}"
        assert event["SK"] == f"{event['at']}#{event['requestId']}"
        retention = datetime.fromtimestamp(event["ttl"], UTC) - datetime.fromisoformat(event["at"])
        assert retention.days == 89  # AUDIT_RETENTION_DAYS (90), minus the fraction of a second

    # A scan of the trail finds no secret of any kind.
    (token_item,) = scan(broker, f"APITOKEN#{token_id}")
    stored_hash = token_item["secretHash"]
    secrets = {
        token,
        token.split("_", 2)[2],
        stored_hash,
        registered,
        refresh_token_of(registered),
        issued.body["accessToken"],
        *salesforce.state.refresh_tokens,
    }
    trail = json.dumps(events)
    for secret in secrets:
        assert secret not in trail
    assert "force://" not in trail
    assert "Bearer" not in trail


def test_a_cache_hit_costs_one_query_and_one_overlapping_audit_write(
    broker: Broker, registered: str
) -> None:
    broker.call("POST", "/orgs/{username}/token", path_params=ACME)  # warm: data key cached
    started = {"Query": threading.Event(), "PutItem": threading.Event()}
    overlapped: list[bool] = []

    def on_start(event_name: str, **_: Any) -> None:
        # A rendezvous: the read and the audit write each wait, before going out, until
        # the other has started. Made one after the other (in either order), the first
        # would wait in vain and the wait give up: the bound only ends a broken run.
        operation = event_name.rsplit(".", 1)[-1]
        other = "PutItem" if operation == "Query" else "Query"
        started[operation].set()
        overlapped.append(started[other].wait(timeout=10))

    runtime.dynamodb().meta.events.register("before-call.dynamodb", on_start)
    for _ in range(5):
        broker.aws_calls.clear()
        for event in started.values():
            event.clear()
        answer = broker.call("POST", "/orgs/{username}/token", path_params=ACME)
        assert (answer.status, answer.body["source"]) == (200, "cache")
        assert broker.aws_calls == {"dynamodb.Query": 1, "dynamodb.PutItem": 1}
    # Each time the read and the audit write were in flight together.
    assert overlapped == [True] * 10


def test_no_credential_leaves_when_its_audit_event_cannot_be_written(
    broker: Broker, registered: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(self: AuditStore, record: AuditRecord) -> None:
        raise DependencyUnavailable("The database is unavailable")

    monkeypatch.setattr(AuditStore, "put", unavailable)
    answer = broker.call("POST", "/orgs/{username}/token", path_params=ACME)
    assert (answer.status, answer.error) == (503, "dependency_unavailable")
    assert "accessToken" not in str(answer.raw)
    # A failed action keeps its own answer when its event cannot be written either.
    missing = broker.call(
        "POST", "/orgs/{username}/token", path_params={"username": "nobody@acme.com"}
    )
    assert (missing.status, missing.error) == (404, "org_not_found")
    # A refusal is still a refusal when its event cannot be written.
    api = TokenApi(broker)
    _, token = create_token(scopes=("orgs:read",))
    denied = api.call(
        "POST", "/orgs/{username}/token", authorization=bearer(token), path_params=ACME
    )
    assert (denied.status, denied.error) == (403, "forbidden")
    assert api.call("GET", "/orgs", authorization=bearer(token + "x")).status == 401


def test_reading_the_trail_filters_and_pages(broker: Broker) -> None:
    api = TokenApi(broker)
    _, reader = create_token(scopes=("orgs:read",))
    for username in ("a@acme.com", "b@acme.com", "c@acme.com"):
        answer = broker.call("DELETE", "/orgs/{username}", path_params={"username": username})
        assert answer.status == 404
        api.call(
            "DELETE",
            "/orgs/{username}",
            authorization=bearer(reader),
            path_params={"username": username},
        )

    def read(**query: str) -> dict[str, Any]:
        answer = broker.call("GET", "/audit", query=query)
        assert answer.status == 200, answer.body
        body: dict[str, Any] = answer.body
        return body

    everything = read()["events"]
    assert len(everything) == 6
    assert [e["at"] for e in everything] == sorted(e["at"] for e in everything)
    assert set(everything[0]) == {
        "at",
        "actor",
        "action",
        "target",
        "outcome",
        "requestId",
        "sourceIp",
        "route",
        "reason",
        "claimedTokenId",
    }
    by_target = read(target="b@acme.com")["events"]
    assert [(e["action"], e["outcome"]) for e in by_target] == [
        ("org.delete", "error"),
        ("request.denied", "denied"),
    ]
    by_actor = read(actor=IAM_ADMIN)["events"]
    assert {e["action"] for e in by_actor} == {"org.delete"}
    assert len(by_actor) == 3
    assert read(since=(datetime.now(UTC) + timedelta(minutes=1)).isoformat())["events"] == []

    pages, token = [], None
    while True:
        page = read(limit="4", **({"nextToken": token} if token else {}))
        pages.append(page["events"])
        token = page["nextToken"]
        if token is None:
            break
    assert [len(p) for p in pages] == [4, 2]
    assert [e for p in pages for e in p] == everything

    bad = broker.call("GET", "/audit", query={"nextToken": "not-a-token"})
    assert (bad.status, bad.error) == (400, "invalid_request")


def test_a_failed_authentication_names_the_token_it_claimed_never_as_actor(
    broker: Broker,
) -> None:
    token_id, token = create_token(scopes=("orgs:read",))
    api = TokenApi(broker)
    assert api.call("GET", "/orgs", authorization=bearer(token[:-4] + "AAAA")).status == 401
    (event,) = audit_items(broker)
    assert event["actor"] == "anonymous"
    assert event["claimedTokenId"] == token_id
    assert event["reason"] == "authorizer: wrong_secret"
    # The token's own actions are its own: no refusal is attributed to it.
    assert not any(e["actor"] == f"apitoken:{token_id}" for e in audit_items(broker))
    read = broker.call("GET", "/audit", query={"actor": "anonymous"}).body["events"]
    assert [(e["actor"], e["claimedTokenId"]) for e in read] == [("anonymous", token_id)]


def test_a_flood_of_junk_bearer_headers_cannot_fill_the_audit_table(broker: Broker) -> None:
    api = TokenApi(broker)
    ids = ["".join(BASE32[(n >> (5 * i)) & 31] for i in range(12)) for n in range(40)]
    junk = [f"Bearer sfb_{token_id}_{'x' * 43}" for token_id in ids]
    junk += ["Bearer nonsense", "Basic Zm9vOmJhcg=="] * 5
    for header in junk:
        assert api.call("GET", "/orgs", authorization=header).status == 401
    events = audit_items(broker)
    # Sampled: the first few refusals of each kind each minute are recorded in full...
    kinds = {str(e["reason"]) for e in events}
    assert kinds == {"authorizer: unknown_token", "authorizer: malformed"}
    assert len(events) <= 2 * 2 * 3  # 2 kinds, a minute boundary at most, 3 each
    # ...and every one is counted.
    counted = scan(broker, "AUDITCOUNT#")
    assert sum(int(c["refusals"]) for c in counted) == len(junk)
    assert len(counted) <= 2 * 2
