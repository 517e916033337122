"""The fake Salesforce's state model, without HTTP."""

from datetime import UTC, datetime, timedelta

import pytest

from local.fake_salesforce import FakeSalesforceState


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_access_tokens_expire_after_the_session_timeout():
    clock = Clock()
    state = FakeSalesforceState("http://127.0.0.1:1", clock=clock)
    state.create_production_org("admin@acme.com")
    token = state.mint_access_token("admin@acme.com")

    assert state.authenticate(token) is not None
    clock.now += timedelta(hours=2)
    assert state.authenticate(token) is None


def test_sandbox_users_and_auth_urls():
    state = FakeSalesforceState("http://localhost:8443")
    state.create_production_org("admin@acme.com")
    sandbox = state.create_sandbox("admin@acme.com", "UAT", status="Processing")

    user = state.user("ADMIN@acme.com.uat")
    assert user.org_id == sandbox.org_id
    assert state.orgs[sandbox.org_id].my_domain == "acme--uat.sandbox.my.salesforce.com"
    assert state.mint_auth_url("admin@acme.com").endswith("@localhost:8443")
    with pytest.raises(ValueError, match="exists"):
        state.create_sandbox("admin@acme.com", "uat")


def test_helpers_need_a_started_server():
    state = FakeSalesforceState()
    state.create_production_org("admin@acme.com")
    with pytest.raises(RuntimeError, match="start the server"):
        state.mint_auth_url("admin@acme.com")


def test_a_sandbox_refresh_is_a_new_org_with_the_same_name_and_username():
    state = FakeSalesforceState("http://localhost:8443")
    state.create_production_org("admin@acme.com")
    before = state.create_sandbox("admin@acme.com", "uat")
    old_token = state.mint_access_token("admin@acme.com.uat")

    after = state.refresh_sandbox("admin@acme.com", "uat", status="Activating")

    assert after.org_id != before.org_id
    assert (after.name, after.status) == ("uat", "Activating")
    assert state.sandbox("admin@acme.com", "uat") is after
    assert state.user("admin@acme.com.uat").org_id == after.org_id
    assert state.orgs[before.org_id].deleted
    assert state.authenticate(old_token) is None
