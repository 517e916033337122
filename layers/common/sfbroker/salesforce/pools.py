"""Scratch-org pools on a Dev Hub: the `ScratchOrgInfo` rows sfp keeps, and their deletion.

SOQL is built here and only here; every value put into it is escaped, and pool tags are
validated by their callers on top of that (SALESFORCE.md, "Scratch-org pools").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from sfbroker.errors import SalesforceError

if TYPE_CHECKING:  # the client imports requests: a pool listing brings it in when called
    from sfbroker.salesforce.client import SalesforceClient, Session

SCRATCH_ORG_INFO, ACTIVE_SCRATCH_ORG = "ScratchOrgInfo", "ActiveScratchOrg"
AVAILABLE, IN_PROGRESS, ASSIGNED = "Available", "In Progress", "Assigned"

# sfp's listing columns (SALESFORCE.md) plus what cleanup needs to date a row.
_COLUMNS = (
    "Pooltag__c, Id, CreatedDate, LastModifiedDate, ScratchOrg, ExpirationDate, "
    "SignupUsername, SignupEmail, Password__c, Allocation_status__c, LoginUrl, SfdxAuthUrl__c"
)
_FIELDS = tuple(name.strip() for name in _COLUMNS.split(","))


@dataclass(frozen=True)
class PoolOrg:
    """One pool row of the Dev Hub; the credentials are `SecretStr` (never in a repr)."""

    id: str
    tag: str | None
    username: str
    org_id: str | None
    login_url: str | None
    allocation_status: str | None
    expiration_date: date | None
    created_date: datetime | None
    last_modified_date: datetime | None
    password: SecretStr | None = field(default=None, repr=False)
    auth_url: SecretStr | None = field(default=None, repr=False)


def soql_string(value: str) -> str:
    """A SOQL string literal: quotes and backslashes escaped (SOQL's own rules)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    for char, replacement in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        escaped = escaped.replace(char, replacement)
    return f"'{escaped}'"


class DevHubPools:
    """The pool rows of one Dev Hub, read and changed with that Dev Hub's access token."""

    def __init__(self, salesforce: SalesforceClient) -> None:
        self._salesforce = salesforce

    def available(self, hub: Session, tag: str) -> list[PoolOrg]:
        """Active, unexpired `Available` orgs of `tag`, newest first (sfp's order)."""
        soql = (
            f"SELECT {_COLUMNS} FROM {SCRATCH_ORG_INFO} WHERE Pooltag__c = {soql_string(tag)} "  # noqa: S608 (escaped)
            f"AND Status = 'Active' AND Allocation_status__c = '{AVAILABLE}' "
            "AND ExpirationDate > TODAY ORDER BY CreatedDate DESC"
        )
        return [_pool_org(row) for row in self._salesforce.query(hub, soql)]

    def active(self, hub: Session, tag: str | None) -> list[PoolOrg]:
        """Every active org of `tag` (of every pool when `tag` is None), any status."""
        where = f"Pooltag__c = {soql_string(tag)}" if tag is not None else "Pooltag__c != null"
        soql = (
            f"SELECT {_COLUMNS} FROM {SCRATCH_ORG_INFO} WHERE {where} AND Status = 'Active' "  # noqa: S608
            "ORDER BY CreatedDate DESC"
        )
        return [_pool_org(row) for row in self._salesforce.query(hub, soql)]

    def get(self, hub: Session, scratch_org_info_id: str) -> PoolOrg | None:
        """One pool row by id, or None when the Dev Hub has no such row."""
        row = self._salesforce.get_record(hub, SCRATCH_ORG_INFO, scratch_org_info_id, _FIELDS)
        return _pool_org(row) if row is not None else None

    def assign(self, hub: Session, scratch_org_info_id: str) -> None:
        """Mark a pool org `Assigned` (what sfp's fetch does after its query)."""
        self._salesforce.update_record(
            hub, SCRATCH_ORG_INFO, scratch_org_info_id, {"Allocation_status__c": ASSIGNED}
        )

    def active_scratch_orgs(self, hub: Session, scratch_org_info_ids: list[str]) -> dict[str, str]:
        """The `ActiveScratchOrg` id of each row's org that still exists, by row id."""
        if not scratch_org_info_ids:
            return {}
        ids = ", ".join(soql_string(i) for i in scratch_org_info_ids)
        soql = (
            f"SELECT Id, ScratchOrgInfoId FROM {ACTIVE_SCRATCH_ORG} "  # noqa: S608 (escaped)
            f"WHERE ScratchOrgInfoId IN ({ids})"
        )
        found = {
            id15(str(row["ScratchOrgInfoId"])): str(row["Id"])
            for row in self._salesforce.query(hub, soql)
        }
        return {i: found[id15(i)] for i in scratch_org_info_ids if id15(i) in found}

    def delete_scratch_org(self, hub: Session, active_scratch_org_id: str) -> bool:
        """Delete a scratch org (its `ActiveScratchOrg` row); False when already gone."""
        return self._salesforce.delete_record(hub, ACTIVE_SCRATCH_ORG, active_scratch_org_id)


def id15(record_id: str) -> str:
    """A record id's case-sensitive 15-character form (Salesforce answers 18; either names it)."""
    return record_id[:15]


def _pool_org(row: dict[str, Any]) -> PoolOrg:
    try:
        return PoolOrg(
            id=str(row["Id"]),
            tag=row.get("Pooltag__c"),
            username=str(row["SignupUsername"]),
            org_id=row.get("ScratchOrg"),
            login_url=row.get("LoginUrl"),
            allocation_status=row.get("Allocation_status__c"),
            expiration_date=_date(row.get("ExpirationDate")),
            created_date=_datetime(row.get("CreatedDate")),
            last_modified_date=_datetime(row.get("LastModifiedDate")),
            password=SecretStr(row["Password__c"]) if row.get("Password__c") else None,
            auth_url=SecretStr(row["SfdxAuthUrl__c"]) if row.get("SfdxAuthUrl__c") else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SalesforceError("Salesforce's ScratchOrgInfo row is incomplete") from error


def _date(value: object) -> date | None:
    return date.fromisoformat(str(value)) if value else None


def _datetime(value: object) -> datetime | None:
    # Salesforce writes `2026-12-03T08:00:00.000+0000`; fromisoformat wants `+00:00`.
    if not value:
        return None
    text = str(value)
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text)
