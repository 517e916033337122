"""`RegistrationService` with in-memory collaborators and a fake clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sfbroker.auth.principal import Principal
from sfbroker.errors import Conflict, CredentialsRejected, InvalidAuthUrl, NotADevHub
from sfbroker.services.registration import Registration
from sfbroker.store.orgs import OrgRecord, credential_record, token_record

from tests.support.memory import (
    PRODUCTION,
    START,
    OrgServices,
    grant,
)

USER = "admin@acme.com"
AUTH_URL = "force://PlatformCLI::5AepFIRST@acme.my.salesforce.com"

CALLER = Principal(id="arn:aws:iam::123456789012:role/admin", kind="iam", scopes=frozenset())


@pytest.fixture
def world() -> OrgServices:
    return OrgServices()


def test_a_new_org_is_sealed_under_its_record_and_its_token_cached(world: OrgServices) -> None:
    world.salesforce.refreshes = [grant("00Dxx!FIRST")]
    org, created = world.registration.register(
        Registration(auth_url=SecretStr(AUTH_URL), alias="acme"), CALLER
    )
    assert created
    assert (org.username, org.org_type, org.status, org.version) == (
        USER,
        "production",
        "active",
        1,
    )
    assert (org.alias, org.login_url) == ("acme", "https://acme.my.salesforce.com")
    assert org.auth_url is not None
    assert world.cipher.decrypt(credential_record(USER), org.auth_url) == AUTH_URL
    token = world.orgs.tokens[USER]
    assert world.cipher.decrypt(token_record(USER), token.envelope) == "00Dxx!FIRST"
    assert world.orgs.calls["create"] == 1


def test_registering_again_replaces_over_the_version_and_keeps_the_creation_time(
    world: OrgServices,
) -> None:
    world.salesforce.refreshes = [grant("00Dxx!FIRST"), grant("00Dxx!SECOND")]
    world.registration.register(Registration(auth_url=SecretStr(AUTH_URL)), CALLER)
    world.clock.advance(3600)
    second = "force://PlatformCLI::5AepSECOND@acme.my.salesforce.com"
    org, created = world.registration.register(
        Registration(auth_url=SecretStr(second), is_default=True), CALLER
    )
    assert not created
    assert (org.version, org.created_at, org.updated_at) == (
        2,
        START,
        START + timedelta(hours=1),
    )
    assert org.auth_url is not None
    assert world.cipher.decrypt(credential_record(USER), org.auth_url) == second


def test_a_rotated_refresh_token_is_what_gets_stored(world: OrgServices) -> None:
    world.salesforce.refreshes = [grant("00Dxx!FIRST", refresh_token="5AepROTATED")]
    org, _ = world.registration.register(Registration(auth_url=SecretStr(AUTH_URL)), CALLER)
    assert org.auth_url is not None
    assert world.cipher.decrypt(credential_record(USER), org.auth_url) == (
        "force://PlatformCLI::5AepROTATED@acme.my.salesforce.com"
    )


def test_a_rejected_auth_url_stores_nothing(world: OrgServices) -> None:
    world.salesforce.refreshes = [CredentialsRejected("invalid_grant")]
    with pytest.raises(InvalidAuthUrl):
        world.registration.register(Registration(auth_url=SecretStr(AUTH_URL)), CALLER)
    assert (world.orgs.orgs, world.orgs.tokens) == ({}, {})


def test_asking_for_a_dev_hub_that_is_not_one_stores_nothing(world: OrgServices) -> None:
    world.salesforce.refreshes = [grant("00Dxx!FIRST")]
    with pytest.raises(NotADevHub):
        world.registration.register(
            Registration(auth_url=SecretStr(AUTH_URL), is_dev_hub=True), CALLER
        )
    assert (world.orgs.orgs, world.orgs.tokens) == ({}, {})


def test_a_dev_hub_and_a_scratch_org_are_typed_by_what_salesforce_says(world: OrgServices) -> None:
    world.salesforce.refreshes = [grant("00Dxx!HUB")]
    world.salesforce.dev_hub = True
    hub, _ = world.registration.register(
        Registration(auth_url=SecretStr(AUTH_URL), is_dev_hub=True), CALLER
    )
    assert (hub.org_type, hub.is_dev_hub) == ("devhub", True)
    world.salesforce.dev_hub = False
    world.salesforce.organization_info = replace(
        PRODUCTION, is_sandbox=True, trial_expiration_date="2026-12-10"
    )
    world.salesforce.refreshes = [grant("00Dxx!SCRATCH")]
    scratch, _ = world.registration.register(Registration(auth_url=SecretStr(AUTH_URL)), CALLER)
    assert scratch.org_type == "scratch"


def test_a_concurrent_registration_answers_conflict_and_caches_nothing(
    world: OrgServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.salesforce.refreshes = [grant("00Dxx!FIRST")]
    create = world.orgs.create

    def raced(org: OrgRecord) -> None:
        create(replace(org, alias="theirs"))  # another registration's write lands first
        create(org)

    monkeypatch.setattr(world.orgs, "create", raced)
    with pytest.raises(Conflict):
        world.registration.register(Registration(auth_url=SecretStr(AUTH_URL)), CALLER)
    assert world.orgs.orgs[USER].alias == "theirs"
    assert world.orgs.tokens == {}
