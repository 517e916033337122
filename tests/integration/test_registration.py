"""Registering orgs end to end: real handlers, real tables, the fake Salesforce over HTTP."""

from __future__ import annotations

import json

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Broker
from tests.support.salesforce import refresh_token_of

USER = {"username": "admin@acme.com"}


def register(broker: Broker, auth_url: str, **options: object):
    return broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url, **options})


def test_registering_stores_the_org_sealed_and_shows_no_credential(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    answer = register(broker, acme, alias="prod")
    assert answer.status == 201, answer.body
    org = answer.body
    assert org["username"] == "admin@acme.com"
    assert org["orgType"] == "production"
    assert org["orgId"].startswith("00D")
    assert org["instanceUrl"] == salesforce.base_url
    assert org["loginUrl"] == salesforce.base_url
    assert (org["status"], org["alias"], org["isDevHub"], org["isJitRegistration"]) == (
        "active",
        "prod",
        False,
        False,
    )
    refresh_token = refresh_token_of(acme)
    assert refresh_token not in answer.raw
    assert "force://" not in answer.raw

    raw_items = json.dumps(broker.table_items())
    assert refresh_token not in raw_items
    assert acme not in raw_items
    assert "force://" not in raw_items
    kinds = sorted(item["SK"]["S"] for item in broker.table_items())
    assert kinds == ["META", "TOKEN"]

    assert broker.call("GET", "/orgs/{username}", path_params=USER).body == org
    assert broker.call("GET", "/orgs").body == {"orgs": [org]}


def test_registration_proves_the_credential_with_salesforce(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    register(broker, acme)
    assert salesforce.counts["oauth2/token"] == 1
    assert salesforce.counts["oauth2/userinfo"] == 1
    assert salesforce.counts["query"] == 1
    assert salesforce.counts["sobjects/describe"] == 1


def test_org_types_are_detected(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    state = salesforce.state
    state.create_dev_hub("hub@acme.com")
    state.create_production_org("admin@acme.com")
    state.create_sandbox("admin@acme.com", "uat")
    hub = register(broker, state.mint_auth_url("hub@acme.com"), isDevHub=True, isDefault=True)
    assert (hub.status, hub.body["orgType"], hub.body["isDevHub"]) == (201, "devhub", True)
    sandbox = register(broker, state.mint_auth_url("admin@acme.com.uat"))
    assert (sandbox.status, sandbox.body["orgType"]) == (201, "sandbox")
    not_hub = register(broker, state.mint_auth_url("admin@acme.com"), isDevHub=True)
    assert (not_hub.status, not_hub.error) == (422, "not_a_dev_hub")

    hubs = broker.call("GET", "/orgs", query={"isDevHub": "true"}).body["orgs"]
    assert [o["username"] for o in hubs] == ["hub@acme.com"]
    sandboxes = broker.call("GET", "/orgs", query={"orgType": "sandbox"}).body["orgs"]
    assert [o["username"] for o in sandboxes] == ["admin@acme.com.uat"]


def test_re_registering_replaces_the_credential(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    first = register(broker, acme).body
    salesforce.state.revoke_refresh_token(refresh_token_of(acme))
    second = register(broker, salesforce.state.mint_auth_url("admin@acme.com"), alias="new")
    assert second.status == 200
    assert second.body["createdAt"] == first["createdAt"]
    assert second.body["alias"] == "new"
    salesforce.reset_counts()
    token = broker.call(
        "POST", "/orgs/{username}/token", path_params=USER, json_body={"forceRefresh": True}
    )
    assert token.status == 200
    assert salesforce.counts["oauth2/token"] == 0  # the registration's token is reused


def test_a_host_outside_the_allow_list_is_never_contacted(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    for host in ("evil.example.com", "169.254.169.254", "10.0.0.1:8080"):
        answer = register(broker, f"force://PlatformCLI::5Aep861TOKEN@{host}")
        assert (answer.status, answer.error) == (400, "host_not_allowed"), answer.body
    assert sum(salesforce.counts.values()) == 0
    assert broker.table_items() == []


def test_deleting_forgets_the_org_and_its_token(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    register(broker, acme)
    deleted = broker.call("DELETE", "/orgs/{username}", path_params=USER)
    assert (deleted.status, deleted.raw) == (204, None) or deleted.status == 204
    assert broker.table_items() == []
    again = broker.call("GET", "/orgs/{username}", path_params=USER)
    assert again.error == "org_not_found"


def test_usernames_are_matched_case_insensitively(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    register(broker, acme)
    # Matched case-insensitively by the store, but a path names an org in one form only
    # (lowercase): otherwise an IAM Deny on /orgs/admin@acme.com would not cover it.
    mixed = broker.call("GET", "/orgs/{username}", path_params={"username": "Admin@ACME.com"})
    assert (mixed.status, mixed.error) == (400, "invalid_request")
    answer = broker.call("GET", "/orgs/{username}", path_params={"username": "admin@acme.com"})
    assert answer.status == 200
    assert answer.body["username"] == "admin@acme.com"
