"""Environments: CRUD, `authenticate=true` (stored credential and JIT), org patterns,
and leases (one holder among concurrent acquirers, FIFO promotion on release/expiry)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Answer, Broker
from tests.support.token_api import TokenApi, bearer, create_token

PRODUCTION = "admin@acme.com"
SANDBOX = "admin@acme.com.uat"
REPO = "acme/app"
UAT = {"name": "UAT"}


@pytest.fixture
def orgs(broker: Broker, salesforce: FakeSalesforceServer, acme: str) -> None:
    """The production org (stored credential) and its JIT sandbox uat."""
    salesforce.state.create_sandbox(PRODUCTION, "uat")
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    body = {"sandboxName": "uat", "productionUsername": PRODUCTION}
    assert broker.call("POST", "/sandboxes", json_body=body).status == 201


@pytest.fixture
def uat(broker: Broker, orgs: None) -> dict[str, Any]:
    answer = create(broker, "UAT", SANDBOX)
    assert answer.status == 201, answer.body
    return dict(answer.body)


def create(broker: Broker, name: str, username: str, repository: str = REPO) -> Answer:
    body = {
        "repository": repository,
        "name": name,
        "category": "test",
        "username": username,
        "branch": "release/*",
        "description": "UAT with JIT auth",
    }
    return broker.call("POST", "/environments", json_body=body)


def get(broker: Broker, name: str = "UAT", lease_id: str | None = None, **query: str) -> Answer:
    return broker.call(
        "GET",
        "/environments/{name}",
        path_params={"name": name},
        query={"repository": REPO, **query},
        headers={"Lease-Id": lease_id} if lease_id else None,
    )


def acquire(broker: Broker, ttl: int = 600, wait: bool = True) -> Answer:
    return broker.call(
        "POST",
        "/environments/{name}/leases",
        path_params=UAT,
        query={"repository": REPO},
        json_body={"ttlSeconds": ttl, "wait": wait},
    )


def lease(broker: Broker, lease_id: str, method: str = "GET") -> Answer:
    return broker.call(
        method,
        "/environments/{name}/leases/{leaseId}",
        path_params={**UAT, "leaseId": lease_id},
        query={"repository": REPO},
    )


def test_crud_with_a_repository_name_that_has_a_slash(
    broker: Broker, uat: dict[str, Any], salesforce: FakeSalesforceServer
) -> None:
    assert (uat["repository"], uat["name"], uat["username"]) == (REPO, "UAT", SANDBOX)
    assert "auth" not in uat or uat["auth"] is None
    assert create(broker, "UAT", SANDBOX).error == "conflict"
    assert create(broker, "SIT", "nobody@acme.com").error == "org_not_found"
    assert create(broker, "Prod", PRODUCTION).status == 201
    assert create(broker, "UAT", PRODUCTION, repository="acme/other").status == 201
    listed = broker.call("GET", "/environments", query={"repository": REPO})
    assert sorted(e["name"] for e in listed.body["environments"]) == ["Prod", "UAT"]
    got = get(broker)
    assert (got.status, got.body["branch"]) == (200, "release/*")
    changed = broker.call(
        "PATCH",
        "/environments/{name}",
        path_params=UAT,
        query={"repository": REPO},
        json_body={"description": "changed", "category": "release"},
    )
    assert (changed.body["description"], changed.body["category"]) == ("changed", "release")
    assert changed.body["username"] == SANDBOX
    deleted = broker.call(
        "DELETE", "/environments/{name}", path_params=UAT, query={"repository": REPO}
    )
    assert deleted.status == 204
    assert get(broker).error == "environment_not_found"
    other = broker.call("GET", "/environments", query={"repository": "acme/other"})
    assert [e["name"] for e in other.body["environments"]] == ["UAT"]


@pytest.mark.usefixtures("uat")
def test_authenticate_returns_a_jit_token_and_a_stored_credential_token(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    salesforce.reset_counts()
    jit = get(broker, authenticate="true")
    assert jit.status == 200, jit.body
    assert (jit.body["auth"]["username"], jit.body["auth"]["source"]) == (SANDBOX, "jit")
    assert salesforce.counts["tooling/sandboxAuth"] == 1
    again = get(broker, authenticate="true")
    assert again.body["auth"]["source"] == "cache"
    assert again.body["auth"]["accessToken"] == jit.body["auth"]["accessToken"]
    assert create(broker, "Prod", PRODUCTION).status == 201
    stored = get(broker, "Prod", authenticate="true")
    assert (stored.body["auth"]["username"], stored.body["auth"]["source"]) == (
        PRODUCTION,
        "cache",
    )


@pytest.mark.usefixtures("uat")
def test_org_patterns_and_scopes_apply_to_the_environments_org(broker: Broker) -> None:
    api = TokenApi(broker)
    assert create(broker, "Prod", PRODUCTION).status == 201
    _, reader = create_token(scopes=("environments:read",), orgs=(SANDBOX,))
    _, issuer = create_token(scopes=("environments:read", "token:issue"), orgs=(SANDBOX,))

    def call(secret: str, name: str, **query: str) -> Answer:
        return api.call(
            "GET",
            "/environments/{name}",
            authorization=bearer(secret),
            path_params={"name": name},
            query={"repository": REPO, **query},
        )

    assert call(reader, "UAT").status == 200
    assert call(reader, "Prod").status == 403
    assert call(reader, "UAT", authenticate="true").status == 403  # no token:issue
    assert call(issuer, "UAT", authenticate="true").status == 200
    listed = api.call(
        "GET", "/environments", authorization=bearer(reader), query={"repository": REPO}
    )
    assert [e["name"] for e in listed.body["environments"]] == ["UAT"]


@pytest.mark.usefixtures("uat")
def test_twenty_concurrent_acquirers_one_holder_the_rest_queued_in_order(broker: Broker) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: acquire(broker), range(20)))
    assert {a.status for a in answers} == {201}, [a.body for a in answers]
    acquired = [a.body for a in answers if a.body["status"] == "acquired"]
    queued = [a.body for a in answers if a.body["status"] == "queued"]
    assert len(acquired) == 1
    assert len(queued) == 19
    assert sorted(q["position"] for q in queued) == list(range(1, 20))
    holder = acquired[0]["leaseId"]
    in_line = [q["leaseId"] for q in sorted(queued, key=lambda q: q["position"])]

    # Only the holder may authenticate.
    assert get(broker, authenticate="true").error == "lease_held"
    assert get(broker, lease_id=in_line[0], authenticate="true").error == "lease_held"
    assert get(broker, lease_id=holder, authenticate="true").status == 200

    # Release promotes the next in line; everyone else moves up one.
    released = lease(broker, holder, "DELETE")
    assert released.body["status"] == "released"
    assert lease(broker, in_line[0]).body["status"] == "acquired"
    assert [lease(broker, i).body["position"] for i in in_line[1:4]] == [1, 2, 3]
    assert get(broker, lease_id=in_line[0], authenticate="true").status == 200
    # A queued lease that gives up leaves the line without blocking it.
    assert lease(broker, in_line[1], "DELETE").body["status"] == "released"
    assert lease(broker, in_line[2]).body["position"] == 1
    assert lease(broker, in_line[0], "DELETE").body["status"] == "released"
    assert lease(broker, in_line[2]).body["status"] == "acquired"


@pytest.mark.usefixtures("uat")
def test_expiry_promotes_the_next_and_without_wait_a_held_environment_is_409(
    broker: Broker,
) -> None:
    first = acquire(broker, wait=False).body
    assert first["status"] == "acquired"
    refused = acquire(broker, wait=False)
    assert (refused.status, refused.error) == (409, "lease_held")
    second = acquire(broker).body
    assert (second["status"], second["position"]) == ("queued", 1)
    # The holder's time runs out (as if ttlSeconds had passed): the next poll promotes.
    broker.dynamodb.update_item(
        TableName=broker.table_name,
        Key={"PK": {"S": f"ENV#{REPO}"}, "SK": {"S": "HOLD#uat"}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    assert lease(broker, second["leaseId"]).body["status"] == "acquired"
    assert lease(broker, first["leaseId"]).body["status"] == "expired"
    assert get(broker, lease_id=first["leaseId"], authenticate="true").error == "lease_held"
    assert lease(broker, "0" * 32).error == "lease_not_found"


@pytest.mark.usefixtures("uat")
def test_deleting_an_org_an_environment_points_at(broker: Broker) -> None:
    refused = broker.call("DELETE", "/orgs/{username}", path_params={"username": SANDBOX})
    assert (refused.status, refused.error) == (409, "conflict")
    assert "environment acme/app/UAT" in refused.body["message"]
    production = broker.call(
        "DELETE",
        "/orgs/{username}",
        path_params={"username": PRODUCTION},
        query={"cascade": "true"},
    )
    assert production.status == 204
    assert get(broker).error == "environment_not_found"
    assert broker.table_items() == []
