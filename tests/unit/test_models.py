"""API models built from service results: one mapping per aggregate (`from_attributes`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

from sfbroker import models
from sfbroker.models import ApiToken, AuditEvent, CreatedApiToken, Org
from sfbroker.store import orgs
from sfbroker.store.api_tokens import ApiTokenRecord
from sfbroker.store.audit import AuditRecord
from sfbroker.store.orgs import OrgRecord

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def test_the_api_and_the_store_know_the_same_closed_sets_of_org_values() -> None:
    # Each representation declares its own Literal (models may not import the store).
    assert get_args(models.OrgType) == get_args(orgs.OrgType)
    assert get_args(models.OrgStatus) == get_args(orgs.OrgStatus)


def test_an_org_shows_every_field_but_its_sealed_credential() -> None:
    record = OrgRecord(
        username="admin@acme.com",
        org_id="00D000000000001AAA",
        instance_url="https://acme.my.salesforce.com",
        login_url="https://login.salesforce.com",
        org_type="devhub",
        is_dev_hub=True,
        is_default=False,
        alias="hub",
        status="active",
        created_at=NOW,
        updated_at=NOW,
        version=3,
        auth_url={"ct": "sealed"},
    )
    view = Org.of(record).model_dump(mode="json", by_alias=True)
    assert view == {
        "username": "admin@acme.com",
        "orgId": "00D000000000001AAA",
        "instanceUrl": "https://acme.my.salesforce.com",
        "loginUrl": "https://login.salesforce.com",
        "orgType": "devhub",
        "isDevHub": True,
        "isDefault": False,
        "alias": "hub",
        "isJitRegistration": False,
        "parentProductionUsername": None,
        "sandboxName": None,
        "status": "active",
        "createdAt": "2026-12-03T08:00:00Z",
        "updatedAt": "2026-12-03T08:00:00Z",
    }


def test_an_api_token_shows_its_status_as_of_now_and_never_its_hash() -> None:
    record = ApiTokenRecord(
        token_id="abcdefghijkl",
        name="ci",
        scopes=("token:issue",),
        org_patterns=("*@acme.com",),
        created_by="admin",
        created_at=NOW - timedelta(days=2),
        expires_at=NOW + timedelta(days=1),
        secret_hash="f" * 64,
    )
    active = ApiToken.of_token(record, NOW)
    assert (active.id, active.orgs, active.status) == ("abcdefghijkl", ["*@acme.com"], "active")
    assert ApiToken.of_token(record, NOW + timedelta(days=2)).status == "expired"
    created = CreatedApiToken(**active.model_dump(), token="sfb_abcdefghijkl_x")
    dumped = created.model_dump_json(by_alias=True)
    assert "f" * 64 not in dumped
    assert '"token":"sfb_abcdefghijkl_x"' in dumped


def test_an_audit_event_is_its_record_without_storage_fields() -> None:
    record = AuditRecord(
        at=NOW,
        request_id="req-1",
        actor="admin",
        action="org.delete",
        target="a@b.com",
        outcome="success",
        source_ip=None,
        route="DELETE /orgs/{username}",
        reason=None,
        expires_at=NOW + timedelta(days=90),
    )
    assert AuditEvent.of(record).model_dump(by_alias=True) == {
        "at": NOW,
        "actor": "admin",
        "action": "org.delete",
        "target": "a@b.com",
        "outcome": "success",
        "requestId": "req-1",
        "sourceIp": None,
        "route": "DELETE /orgs/{username}",
        "reason": None,
        "claimedTokenId": None,
    }


def _pool_org(**credentials: object) -> models.PoolOrg:
    return models.PoolOrg(
        tag="ci",
        username="test-xyz@example.com",
        org_id=None,  # a row Salesforce has not filled in yet: null, not left out
        scratch_org_info_id="2SR000000000001AAA",
        login_url="https://scratch.my.salesforce.com",
        instance_url="https://scratch.my.salesforce.com",
        password=None,
        expiration_date=NOW.date() + timedelta(days=7),
        **credentials,  # type: ignore[arg-type]
    )


def test_a_pool_org_answer_leaves_out_what_its_format_does_not_give() -> None:
    # API.md: `accessToken` + `expiresAt` *instead of* `sfdxAuthUrl`, never both, no nulls.
    by_url = _pool_org(sfdx_auth_url="force://PlatformCLI::5Aep861x@scratch.my.salesforce.com")
    by_token = _pool_org(access_token="00Dx!AQtoken", expires_at=NOW)

    assert "sfdxAuthUrl" in by_url.answer()
    assert {"accessToken", "expiresAt"}.isdisjoint(by_url.answer())
    assert by_token.answer()["expiresAt"] == "2026-12-03T08:00:00Z"
    assert "sfdxAuthUrl" not in by_token.answer()
    for answer in (by_url.answer(), by_token.answer()):
        assert answer["orgId"] is None
        assert answer["password"] is None


def test_the_openapi_document_says_the_credential_fields_are_optional_and_never_null() -> None:
    from sfbroker.openapi import openapi_document

    schema = openapi_document()["components"]["schemas"]["PoolOrg"]
    for field in ("sfdxAuthUrl", "accessToken", "expiresAt"):
        assert field not in schema["required"]
        assert schema["properties"][field]["type"] == "string"
        assert "anyOf" not in schema["properties"][field]
    fetch = openapi_document()["paths"]["/pools/{tag}/fetch"]["post"]["responses"]["200"]
    assert fetch["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PoolOrg"
    }
