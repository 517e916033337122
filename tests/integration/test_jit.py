"""JIT sandboxes: registration, one exchange however many ask, troubleshooting cases,
sandbox refresh, the refresh token that only `sfdxAuthUrl` reveals, cascade deletes."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Answer, Broker
from tests.support.token_api import TokenApi, bearer, create_token

PRODUCTION = "admin@acme.com"
SANDBOX = "admin@acme.com.uat"


@pytest.fixture
def production(broker: Broker, salesforce: FakeSalesforceServer, acme: str) -> str:
    """`admin@acme.com` registered (stored credential) with sandboxes uat (ready) and sit."""
    salesforce.state.create_sandbox(PRODUCTION, "uat")
    salesforce.state.create_sandbox(PRODUCTION, "sit", status="Processing")
    answer = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme})
    assert answer.status == 201, answer.body
    return acme


@pytest.fixture
def jit_uat(broker: Broker, salesforce: FakeSalesforceServer, production: str) -> None:
    answer = register(broker, "uat")
    assert answer.status == 201, answer.body
    salesforce.reset_counts()
    broker.aws_calls.clear()


def register(broker: Broker, name: str, **extra: str) -> Answer:
    body = {"sandboxName": name, "productionUsername": PRODUCTION, **extra}
    return broker.call("POST", "/sandboxes", json_body=body)


def sandbox_auth(broker: Broker, name: str = "uat", **body: object) -> Answer:
    return broker.call(
        "POST",
        "/sandboxes/{sandboxName}/auth",
        path_params={"sandboxName": name},
        json_body={"productionUsername": PRODUCTION, **body},
    )


def token(broker: Broker, username: str = SANDBOX, **body: object) -> Answer:
    return broker.call(
        "POST", "/orgs/{username}/token", path_params={"username": username}, json_body=body or None
    )


def whoami(salesforce: FakeSalesforceServer, access_token: str) -> requests.Response:
    return requests.get(
        f"{salesforce.base_url}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )


def test_registration_stores_no_credential(
    broker: Broker, salesforce: FakeSalesforceServer, production: str
) -> None:
    answer = register(broker, "uat")
    assert answer.status == 201, answer.body
    assert answer.body["username"] == SANDBOX
    assert answer.body["isJitRegistration"] is True
    assert answer.body["parentProductionUsername"] == PRODUCTION
    assert (answer.body["sandboxName"], answer.body["orgType"]) == ("uat", "sandbox")
    (item,) = [i for i in broker.table_items() if i["PK"]["S"] == f"ORG#{SANDBOX}"]
    assert "authUrl" not in item  # no credential at all
    # A sandbox still being copied exists: it can be registered, under another username.
    sit = register(broker, "sit", username="ci@acme.com.sit")
    assert (sit.status, sit.body["username"]) == (201, "ci@acme.com.sit")
    again = register(broker, "uat")
    assert (again.status, again.error) == (409, "conflict")
    listed = broker.call("GET", "/orgs", query={"orgType": "sandbox"})
    assert {o["username"] for o in listed.body["orgs"]} == {SANDBOX, "ci@acme.com.sit"}


def test_registration_troubleshooting_cases(
    broker: Broker, salesforce: FakeSalesforceServer, production: str
) -> None:
    unknown = broker.call(
        "POST",
        "/sandboxes",
        json_body={"sandboxName": "uat", "productionUsername": "nobody@acme.com"},
    )
    assert (unknown.status, unknown.error) == (404, "parent_org_not_found")
    assert "register it first" in unknown.body["message"]
    missing = register(broker, "qa")
    assert (missing.status, missing.error) == (404, "sandbox_not_found")
    assert "register the sandbox with its current name" in missing.body["message"]
    assert register(broker, "uat").status == 201
    # A JIT sandbox is not a production org: nothing can be registered under it.
    nested = broker.call(
        "POST", "/sandboxes", json_body={"sandboxName": "uat", "productionUsername": SANDBOX}
    )
    assert (nested.status, nested.error) == (422, "not_a_production_org")
    bad = broker.call(
        "POST", "/sandboxes", json_body={"sandboxName": "u'at", "productionUsername": PRODUCTION}
    )
    assert (bad.status, bad.error) == (400, "invalid_request")
    assert {i["PK"]["S"] for i in broker.table_items()} == {f"ORG#{PRODUCTION}", f"ORG#{SANDBOX}"}


@pytest.mark.usefixtures("jit_uat")
def test_both_routes_share_one_exchange_and_its_cache(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    first = sandbox_auth(broker)
    assert first.status == 200, first.body
    body = first.body
    assert set(body) == {
        "sandboxName", "username", "accessToken", "instanceUrl", "loginUrl", "orgId",
        "expiresAt", "productionUsername", "source",
    }  # fmt: skip
    assert (body["source"], body["username"], body["sandboxName"]) == ("jit", SANDBOX, "uat")
    sandbox_org = salesforce.state.sandbox(PRODUCTION, "uat").org_id
    assert body["orgId"] == sandbox_org
    assert body["loginUrl"] == salesforce.base_url
    # Production token from the cache; readiness query, sandboxAuth, code exchange.
    assert salesforce.counts == {"tooling/query": 1, "tooling/sandboxAuth": 1, "oauth2/token": 1}
    assert whoami(salesforce, body["accessToken"]).json()["preferred_username"] == SANDBOX

    via_orgs = token(broker)
    assert (via_orgs.status, via_orgs.body["source"]) == (200, "cache")
    assert via_orgs.body["accessToken"] == body["accessToken"]
    again = sandbox_auth(broker)
    assert (again.body["source"], again.body["loginUrl"]) == ("cache", salesforce.base_url)
    assert salesforce.counts["oauth2/token"] == 1
    # The registration now shows where the sandbox is.
    org = broker.call("GET", "/orgs/{username}", path_params={"username": SANDBOX}).body
    assert (org["orgId"], org["instanceUrl"]) == (sandbox_org, salesforce.base_url)


@pytest.mark.usefixtures("jit_uat")
def test_twenty_concurrent_requests_through_both_functions_cost_one_exchange(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    salesforce.faults.delay = 0.3  # keep the exchange in flight while the others arrive
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(
            pool.map(lambda i: sandbox_auth(broker) if i % 2 else token(broker), range(20))
        )
    assert [a.status for a in answers] == [200] * 20, [a.body for a in answers if a.status != 200]
    assert len({a.body["accessToken"] for a in answers}) == 1
    assert sorted(a.body["source"] for a in answers).count("jit") == 1
    assert salesforce.counts == {"tooling/query": 1, "tooling/sandboxAuth": 1, "oauth2/token": 1}


@pytest.mark.usefixtures("jit_uat")
def test_a_cold_production_token_is_refreshed_first(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    broker.dynamodb.delete_item(
        TableName=broker.table_name,
        Key={"PK": {"S": f"ORG#{PRODUCTION}"}, "SK": {"S": "TOKEN"}},
    )
    answer = token(broker)
    assert (answer.status, answer.body["source"]) == (200, "jit")
    # One refresh of the production token, one authorization-code exchange.
    assert salesforce.counts["oauth2/token"] == 2
    assert token(broker, PRODUCTION).body["source"] == "cache"


@pytest.mark.usefixtures("production")
def test_a_sandbox_not_ready_is_409_naming_its_status(
    broker: Broker, salesforce: FakeSalesforceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert register(broker, "sit").status == 201
    for status in ("Processing", "Activating"):
        salesforce.state.set_sandbox_status(PRODUCTION, "sit", status)
        answer = sandbox_auth(broker, "sit")
        assert (answer.status, answer.error) == (409, "sandbox_not_ready")
        assert f"its status is {status}" in answer.body["message"]
    assert salesforce.counts["tooling/sandboxAuth"] == 0  # the readiness check answered
    # The query says Completed, sandboxAuth says INVALID_STATUS (it changed in between).
    rows = salesforce.state.rows
    with monkeypatch.context() as patch:
        patch.setattr(
            salesforce.state,
            "rows",
            lambda entity, org: [{**row, "Status": "Completed"} for row in rows(entity, org)],
        )
        raced = sandbox_auth(broker, "sit")
    assert (raced.status, raced.error) == (409, "sandbox_not_ready")
    assert salesforce.counts["tooling/sandboxAuth"] == 1
    salesforce.state.set_sandbox_status(PRODUCTION, "sit", "Completed")
    ready = token(broker, "admin@acme.com.sit")
    assert (ready.status, ready.body["source"]) == (200, "jit")
    assert {i["SK"]["S"] for i in broker.table_items() if "sit" in i["PK"]["S"]} == {
        "META",
        "TOKEN",
    }


@pytest.mark.usefixtures("jit_uat")
def test_unable_to_generate_jit_auth_and_outages(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    salesforce.faults.add(kind="invalid_grant", endpoint="token")  # the code is refused
    refused = sandbox_auth(broker)
    assert (refused.status, refused.error) == (502, "jit_auth_failed")
    assert "verify the production org's credential is valid" in refused.body["message"]
    salesforce.faults.add(kind="http_503", endpoint="sandboxAuth", times=3)
    outage = sandbox_auth(broker)
    assert (outage.status, outage.error) == (502, "salesforce_error")
    # Nothing was cached by the failures; the next request works.
    assert {i["SK"]["S"] for i in broker.table_items() if i["PK"]["S"] == f"ORG#{SANDBOX}"} == {
        "META"
    }
    assert sandbox_auth(broker).status == 200


@pytest.mark.usefixtures("jit_uat")
def test_sandbox_deleted_or_parent_gone(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    salesforce.state.sandboxes.clear()
    gone = token(broker)
    assert (gone.status, gone.error) == (404, "sandbox_not_found")
    unregistered = sandbox_auth(broker, "sit")
    assert (unregistered.status, unregistered.error) == (404, "org_not_found")
    assert "register it with POST /sandboxes" in unregistered.body["message"]


@pytest.mark.usefixtures("jit_uat")
def test_after_a_sandbox_refresh_force_refresh_reaches_the_new_org(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    before = token(broker)
    old_org = before.body["orgId"]
    salesforce.state.refresh_sandbox(PRODUCTION, "uat")
    # Salesforce now rejects the old token; the client asks again with forceRefresh
    # (more than a minute later: one forced refresh per org per minute).
    assert whoami(salesforce, before.body["accessToken"]).status_code == 401
    minutes_ago = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())
    broker.dynamodb.update_item(
        TableName=broker.table_name,
        Key={"PK": {"S": f"ORG#{SANDBOX}"}, "SK": {"S": "TOKEN"}},
        UpdateExpression="SET refreshedAt = :t",
        ExpressionAttributeValues={":t": {"N": str(minutes_ago)}},
    )
    after = token(broker, forceRefresh=True)
    assert (after.status, after.body["source"]) == (200, "jit")
    assert after.body["orgId"] != old_org
    assert after.body["orgId"] == salesforce.state.sandbox(PRODUCTION, "uat").org_id
    assert whoami(salesforce, after.body["accessToken"]).json()["preferred_username"] == SANDBOX


@pytest.mark.usefixtures("jit_uat")
def test_the_refresh_token_leaves_only_as_an_auth_url_with_its_scope(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = TokenApi(broker)
    _, plain = create_token(scopes=("sandboxes:auth", "token:issue"), orgs=("admin@acme.com*",))
    _, entitled = create_token(scopes=("sandboxes:auth", "sandboxes:auth-url"), orgs=("*",))

    def via_token_api(secret: str, **body: object) -> Answer:
        return api.call(
            "POST",
            "/sandboxes/{sandboxName}/auth",
            authorization=bearer(secret),
            path_params={"sandboxName": "uat"},
            json_body={"productionUsername": PRODUCTION, **body},
        )

    assert via_token_api(plain).status == 200
    refused = via_token_api(plain, format="sfdxAuthUrl")
    assert (refused.status, refused.error) == (403, "forbidden")
    assert "sandboxes:auth-url" in refused.body["message"]
    answer = via_token_api(entitled, format="sfdxAuthUrl")
    assert answer.status == 200, answer.body
    auth_url = answer.body["sfdxAuthUrl"]
    assert auth_url.startswith("force://PlatformCLI::")
    assert auth_url.endswith(salesforce.state.host)
    # The auth URL works on its own: Salesforce trades its refresh token for a session.
    refresh_token = auth_url.rsplit("@", 1)[0].rsplit(":", 1)[1]
    assert refresh_token in salesforce.state.refresh_tokens
    grant = requests.post(
        f"{salesforce.base_url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "PlatformCLI",
        },
        timeout=5,
    ).json()
    assert whoami(salesforce, grant["access_token"]).json()["preferred_username"] == SANDBOX
    # Never stored, never in any other answer.
    every_refresh_token = set(salesforce.state.refresh_tokens)
    stored = repr(broker.table_items())
    assert not any(secret in stored for secret in every_refresh_token)
    others = [a for a in broker.answers if "sfdxAuthUrl" not in a]
    assert not any(secret in a for a in others for secret in every_refresh_token)
    # No refresh token, auth code, auth URL or access token in any log line.
    captured = capfd.readouterr()
    logs = "\n".join(
        [captured.out, captured.err, *(r.getMessage() + repr(r.__dict__) for r in caplog.records)]
    )
    assert "JitExchange" in logs  # the logs were captured
    secrets = every_refresh_token | set(salesforce.state.authorization_codes)
    secrets |= set(salesforce.state.access_tokens) | {auth_url}
    assert len(secrets) >= 8
    assert not [secret for secret in secrets if secret in logs]


@pytest.mark.usefixtures("jit_uat")
def test_org_patterns_cover_sandbox_and_production(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    api = TokenApi(broker)
    _, only_production = create_token(scopes=("orgs:write", "sandboxes:auth"), orgs=(PRODUCTION,))
    _, only_sandbox = create_token(scopes=("orgs:write", "sandboxes:auth"), orgs=(SANDBOX,))
    _, both = create_token(scopes=("orgs:write", "sandboxes:auth"), orgs=("admin@acme.com*",))
    for secret, expected in ((only_production, 403), (only_sandbox, 403), (both, 200)):
        answer = api.call(
            "POST",
            "/sandboxes/{sandboxName}/auth",
            authorization=bearer(secret),
            path_params={"sandboxName": "uat"},
            json_body={"productionUsername": PRODUCTION},
        )
        assert answer.status == expected, answer.body
        registered = api.call(
            "POST",
            "/sandboxes",
            authorization=bearer(secret),
            json_body={"sandboxName": "sit", "productionUsername": PRODUCTION},
        )
        assert registered.status == (201 if expected == 200 else 403), registered.body


@pytest.mark.usefixtures("jit_uat")
def test_deleting_a_production_org_with_jit_sandboxes(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    user = {"username": PRODUCTION}
    refused = broker.call("DELETE", "/orgs/{username}", path_params=user)
    assert (refused.status, refused.error) == (409, "conflict")
    assert SANDBOX in refused.body["message"]
    assert "cascade=true" in refused.body["message"]
    assert token(broker).status == 200  # nothing was deleted
    deleted = broker.call("DELETE", "/orgs/{username}", path_params=user, query={"cascade": "true"})
    assert deleted.status == 204
    assert broker.table_items() == []
