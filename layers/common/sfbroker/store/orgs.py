"""Org aggregate: the `META` record, its cached access token and its refresh lock.

All live under `PK = ORG#<username>`, so one consistent Query reads everything a token
request needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sfbroker.observability import logger
from sfbroker.store.table import ConditionFailed, Table, epoch_seconds, from_epoch

OrgType = Literal["production", "sandbox", "devhub", "scratch"]
OrgStatus = Literal["active", "invalid"]

META, TOKEN, REFRESH = "META", "TOKEN", "REFRESH"
ORGS_INDEX, ORGS_PARTITION = "GSI1", "ORG"
ORG_KEY_PREFIX = "ORG#"
# The attribute holding each org item's envelope, by sort key: every sealed value the
# table holds (the reencrypt command re-wraps exactly these, store/sealed.py).
SEALED_ATTRIBUTES = {META: "authUrl", TOKEN: "token"}


def org_key(username: str, sort_key: str = META) -> dict[str, str]:
    return {"PK": f"{ORG_KEY_PREFIX}{username.lower()}", "SK": sort_key}


def credential_record(username: str) -> str:
    """The name an org's sealed auth URL is bound to (encryption context and AAD)."""
    return record_name(org_key(username))


def token_record(username: str) -> str:
    """The name an org's sealed cached access token is bound to."""
    return record_name(org_key(username, TOKEN))


def record_name(key: dict[str, str]) -> str:
    """The name a sealed value of the item at `key` is bound to: `<PK>/<SK>`."""
    return f"{key['PK']}/{key['SK']}"


@dataclass(frozen=True)
class OrgRecord:
    """A registered org; `auth_url` is the sealed envelope (absent for JIT registrations)."""

    username: str
    org_id: str
    instance_url: str
    login_url: str
    org_type: OrgType
    is_dev_hub: bool
    is_default: bool
    alias: str | None
    status: OrgStatus
    created_at: datetime
    updated_at: datetime
    version: int = 1
    auth_url: dict[str, Any] | None = field(default=None, repr=False)
    is_jit_registration: bool = False
    parent_production_username: str | None = None
    sandbox_name: str | None = None


@dataclass(frozen=True)
class CachedToken:
    """A sealed access token with what is needed to answer without opening the org."""

    envelope: dict[str, Any] = field(repr=False)
    username: str
    org_id: str
    instance_url: str
    expires_at: datetime
    refreshed_at: datetime


@dataclass(frozen=True)
class OrgState:
    """What a token request reads: the org and its cached token."""

    org: OrgRecord | None
    token: CachedToken | None


class OrgStore:
    """Reads and conditional writes of org items."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def load(self, username: str) -> OrgState:
        """Org and cached token in one consistent read (the refresh lease is written and
        read only by its conditional writes)."""
        org = token = None
        for item in self._table.query(
            "PK = :pk", {":pk": org_key(username)["PK"]}, consistent=True
        ):
            if item["SK"] == META:
                org = _org_from(item)
            elif item["SK"] == TOKEN:
                token = _token_from(item)  # None if unreadable: a cache miss
        return OrgState(org=org, token=token)

    def get(self, username: str) -> OrgRecord | None:
        item = self._table.get(org_key(username))
        return _org_from(item) if item else None

    def list(self, org_type: OrgType | None = None) -> Iterator[OrgRecord]:
        """Every registered org (optionally of one type), ordered by type and username."""
        condition, values = "GSI1PK = :p", {":p": ORGS_PARTITION}
        if org_type:
            condition += " AND begins_with(GSI1SK, :t)"
            values[":t"] = f"{org_type}#"
        for item in self._table.query(condition, values, index=ORGS_INDEX):
            yield _org_from(item)

    def create(self, org: OrgRecord) -> None:
        """Store a new org; `ConditionFailed` if the username is taken."""
        self._table.put(_org_item(org), condition="attribute_not_exists(PK)")

    def replace(self, org: OrgRecord, expected_version: int) -> OrgRecord:
        """Overwrite an org whose version is still `expected_version`; returns the stored one."""
        stored = replace(org, version=expected_version + 1)
        self._table.put(
            _org_item(stored), condition="version = :v", values={":v": expected_version}
        )
        return stored

    def update_auth_url(
        self, username: str, envelope: dict[str, Any], expected_version: int, now: datetime
    ) -> None:
        """Persist a rotated refresh token's new envelope (only over the version it came from)."""
        self._table.update(
            org_key(username),
            "SET authUrl = :a, updatedAt = :u, version = :n",
            values={
                ":a": envelope,
                ":u": now.isoformat(),
                ":n": expected_version + 1,
                ":v": expected_version,
            },
            condition="version = :v",
        )

    def update_sandbox_location(
        self, username: str, org_id: str, instance_url: str, login_url: str, now: datetime
    ) -> bool:
        """Record where a JIT sandbox was last found (a refresh gives it a new org id).

        Only on a JIT registration that still exists; returns whether it was written.
        """
        try:
            self._table.update(
                org_key(username),
                "SET orgId = :o, instanceUrl = :i, loginUrl = :l, updatedAt = :u",
                values={
                    ":o": org_id,
                    ":i": instance_url,
                    ":l": login_url,
                    ":u": now.isoformat(),
                    ":jit": True,
                },
                condition="isJitRegistration = :jit",
            )
        except ConditionFailed:
            return False
        return True

    def mark_invalid(self, username: str, expected_version: int, now: datetime) -> bool:
        """Flag an org whose credential Salesforce refused, and drop its cached token.

        Only over the version whose credential was refused: an org registered again
        meanwhile has a new credential that must not be marked. Returns whether it marked.
        """
        try:
            self._table.update(
                org_key(username),
                "SET #s = :invalid, updatedAt = :u, version = :n",
                names={"#s": "status"},
                values={
                    ":invalid": "invalid",
                    ":u": now.isoformat(),
                    ":n": expected_version + 1,
                    ":v": expected_version,
                },
                condition="version = :v",
            )
        except ConditionFailed:
            return False
        self.delete_token(username)
        return True

    def delete(self, username: str) -> None:
        """Remove the org and everything stored beside it; `ConditionFailed` if absent."""
        self._table.delete(org_key(username), condition="attribute_exists(PK)")
        self.delete_token(username)
        self._table.delete(org_key(username, REFRESH))

    def put_token(
        self, token: CachedToken, *, org_version: int, lease_holder: str | None = None
    ) -> None:
        """Cache a token, only while the org is still at `org_version` and, for a refresh,
        while `lease_holder` still holds its lease; `ConditionFailed` otherwise.

        A DELETE (or a new registration) during a refresh wins: no sealed token is left
        behind. A holder whose lease expired and was taken never overwrites the newer
        token of the instance that took it.
        """
        checks: list[tuple[dict[str, str], str, dict[str, Any]]] = [
            (org_key(token.username), "version = :v", {":v": org_version})
        ]
        if lease_holder is not None:
            checks.append((org_key(token.username, REFRESH), "holder = :h", {":h": lease_holder}))
        self._table.put_if(
            {
                **org_key(token.username, TOKEN),
                SEALED_ATTRIBUTES[TOKEN]: token.envelope,
                "username": token.username,
                "orgId": token.org_id,
                "instanceUrl": token.instance_url,
                "expiresAt": epoch_seconds(token.expires_at),
                "refreshedAt": epoch_seconds(token.refreshed_at),
                "ttl": epoch_seconds(token.expires_at),
            },
            checks,
        )

    def delete_token(self, username: str) -> None:
        self._table.delete(org_key(username, TOKEN))

    def acquire_refresh_lock(self, username: str, holder: str, now: datetime, seconds: int) -> bool:
        """Take the org's single-flight refresh lease unless a live one exists."""
        try:
            self._table.put(
                {
                    **org_key(username, REFRESH),
                    "holder": holder,
                    "ttl": epoch_seconds(now) + seconds,
                },
                condition="attribute_not_exists(PK) OR #ttl < :now",
                names={"#ttl": "ttl"},
                values={":now": epoch_seconds(now)},
            )
        except ConditionFailed:
            return False
        return True

    def release_refresh_lock(self, username: str, holder: str) -> None:
        """Give the lease back, if it is still ours."""
        try:
            self._table.delete(
                org_key(username, REFRESH), condition="holder = :h", values={":h": holder}
            )
        except ConditionFailed:
            return


def _org_item(org: OrgRecord) -> dict[str, Any]:
    return {
        **org_key(org.username),
        "GSI1PK": ORGS_PARTITION,
        "GSI1SK": f"{org.org_type}#{org.username.lower()}",
        "username": org.username,
        "orgId": org.org_id,
        "instanceUrl": org.instance_url,
        "loginUrl": org.login_url,
        "orgType": org.org_type,
        "isDevHub": org.is_dev_hub,
        "isDefault": org.is_default,
        "alias": org.alias,
        "status": org.status,
        "createdAt": org.created_at.isoformat(),
        "updatedAt": org.updated_at.isoformat(),
        "version": org.version,
        SEALED_ATTRIBUTES[META]: org.auth_url,
        "isJitRegistration": org.is_jit_registration,
        "parentProductionUsername": org.parent_production_username,
        "sandboxName": org.sandbox_name,
    }


def _org_from(item: dict[str, Any]) -> OrgRecord:
    return OrgRecord(
        username=item["username"],
        org_id=item["orgId"],
        instance_url=item["instanceUrl"],
        login_url=item["loginUrl"],
        org_type=item["orgType"],
        is_dev_hub=bool(item.get("isDevHub")),
        is_default=bool(item.get("isDefault")),
        alias=item.get("alias"),
        status=item.get("status", "active"),
        created_at=datetime.fromisoformat(item["createdAt"]),
        updated_at=datetime.fromisoformat(item["updatedAt"]),
        version=int(item.get("version", 1)),
        auth_url=item.get(SEALED_ATTRIBUTES[META]),
        is_jit_registration=bool(item.get("isJitRegistration")),
        parent_production_username=item.get("parentProductionUsername"),
        sandbox_name=item.get("sandboxName"),
    )


def _token_from(item: dict[str, Any]) -> CachedToken | None:
    """The cached token, or None when the item is not one we wrote (only a cache)."""
    try:
        return CachedToken(
            envelope=dict(item[SEALED_ATTRIBUTES[TOKEN]]),
            username=item["username"],
            org_id=item["orgId"],
            instance_url=item["instanceUrl"],
            expires_at=from_epoch(item["expiresAt"]),
            refreshed_at=from_epoch(item["refreshedAt"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        logger.warning("unreadable cached token ignored", extra={"username": item.get("username")})
        return None
