"""Scratch-org pools in tests: a Dev Hub with pool rows in the fake Salesforce, and what
its rows and our leases say (the pools, fault and crash-point suites share these)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from local.fake_salesforce import FakeSalesforceServer
from local.fake_salesforce.schema import SCRATCH_ORG_INFO
from local.fake_salesforce.state import ScratchOrg
from tests.support.broker import Broker

HUB = "hub@acme.com"


def register_hub(broker: Broker, salesforce: FakeSalesforceServer) -> str:
    """A Dev Hub registered as the default one (no pool orgs yet)."""
    salesforce.state.create_dev_hub(HUB)
    auth_url = salesforce.state.mint_auth_url(HUB)
    answer = broker.call(
        "POST", "/orgs", json_body={"sfdxAuthUrl": auth_url, "isDevHub": True, "isDefault": True}
    )
    assert answer.status == 201, answer.body
    return HUB


def make_pool(
    salesforce: FakeSalesforceServer, size: int, *, tag: str = "ci", **options: Any
) -> list[ScratchOrg]:
    now = salesforce.state.now()
    created = options.pop("created_date", None)
    return [
        salesforce.state.create_scratch_org(
            HUB, pool_tag=tag, created_date=created or now - timedelta(minutes=i), **options
        )
        for i in range(size)
    ]


def idempotency_table(broker: Broker) -> str:
    """The pools function's idempotency table (the template names it after the data table)."""
    return broker.table_name + "-idempotency"


def set_row(salesforce: FakeSalesforceServer, info_id: str, **fields: Any) -> None:
    """Change a ScratchOrgInfo row as sfp (or time) would, without the REST API."""
    state = salesforce.state
    hub_org = state.org_of(state.user(HUB))
    assert state.update_row(SCRATCH_ORG_INFO, hub_org, info_id, fields)
    record = state.dev_hub_records[info_id[:15]]
    record.fields.update({k: v for k, v in fields.items() if k == "LastModifiedDate"})


def age_rows(salesforce: FakeSalesforceServer, by: timedelta = timedelta(hours=1)) -> None:
    """Every active pool row last changed `by` ago: cleanup's grace periods are over."""
    long_ago = salesforce.state.now() - by
    for fields in active_rows(salesforce).values():
        set_row(salesforce, str(fields["Id"]), LastModifiedDate=long_ago)


def active_rows(salesforce: FakeSalesforceServer) -> dict[str, dict[str, Any]]:
    """Username → fields of every active pool row on the Dev Hub."""
    return {
        str(r.fields["SignupUsername"]): r.fields
        for r in salesforce.state.dev_hub_records.values()
        if r.entity is SCRATCH_ORG_INFO and r.fields["Status"] == "Active"
    }


def allocation(salesforce: FakeSalesforceServer) -> dict[str, str]:
    """Username → allocation status of every active pool row on the Dev Hub."""
    return {u: str(f["Allocation_status__c"]) for u, f in active_rows(salesforce).items()}


def leases(broker: Broker) -> dict[str, dict[str, Any]]:
    """Username → raw lease item, as DynamoDB holds them."""
    return {
        item["username"]["S"]: item
        for item in broker.table_items()
        if item["PK"]["S"].startswith("POOL#")
    }


def claimed(broker: Broker) -> set[str]:
    return {u for u, item in leases(broker).items() if item["status"]["S"] == "claimed"}


def assigned(salesforce: FakeSalesforceServer) -> set[str]:
    return {u for u, status in allocation(salesforce).items() if status == "Assigned"}


def assert_consistent(broker: Broker, salesforce: FakeSalesforceServer) -> None:
    """No org Assigned without a claimed lease, no claimed lease without an Assigned org."""
    assert claimed(broker) == assigned(salesforce)


def assert_consistent_but_for_deleted_orgs(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    """`assert_consistent`, except that a claimed lease of an org deleted on the Dev Hub
    may remain (nobody can fetch a deleted org; cleanup drops its lease)."""
    alive = set(active_rows(salesforce))
    assert claimed(broker) & alive == assigned(salesforce)
