"""Registering an org: prove the auth URL works, learn the org, seal and store it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import SecretStr

from sfbroker.auth.principal import Principal
from sfbroker.authurl import parse_auth_url
from sfbroker.crypto import EnvelopeCipher
from sfbroker.errors import (
    Conflict,
    CredentialsRejected,
    Forbidden,
    InvalidAuthUrl,
    NotADevHub,
    OrgMismatch,
    OrgNotFound,
)
from sfbroker.observability import logger
from sfbroker.services.tokens import TokenService
from sfbroker.store.environments import EnvironmentStore
from sfbroker.store.orgs import OrgRecord, OrgStore, OrgType, credential_record
from sfbroker.store.table import ConditionFailed

if TYPE_CHECKING:
    from sfbroker.salesforce.client import OrganizationInfo, SalesforceClient


@dataclass(frozen=True)
class Registration:
    """What a caller asks to register; `auth_url` is the secret (never in a repr)."""

    auth_url: SecretStr
    is_dev_hub: bool = False
    is_default: bool = False
    alias: str | None = None
    allow_org_change: bool = False


@dataclass(frozen=True)
class RegistrationService:
    orgs: OrgStore
    cipher: EnvelopeCipher
    salesforce: SalesforceClient
    tokens: TokenService
    clock: Callable[[], datetime]
    environments: EnvironmentStore

    def register(self, registration: Registration, caller: Principal) -> tuple[OrgRecord, bool]:
        """Register (or re-register) an org; returns the stored org and whether it is new.

        Only Salesforce knows whose credential an auth URL is: once it has said, the
        caller's org patterns must cover that username (else 403), and a username
        registered under another org id moves only when the caller allows it (else 409).
        Every Salesforce call and check happens before the first write, so a failure or a
        refusal stores and changes nothing.
        """
        auth_url = parse_auth_url(registration.auth_url.get_secret_value())
        login_url = self.salesforce.login_url(auth_url)
        try:
            grant = self.salesforce.refresh(auth_url)
        except CredentialsRejected:
            raise InvalidAuthUrl(
                "Salesforce rejected the auth URL's refresh token (expired, revoked or for "
                "another connected app)"
            ) from None
        if grant.refresh_token is not None:
            auth_url = auth_url.with_refresh_token(grant.refresh_token.get_secret_value())
        user = self.salesforce.userinfo(grant)
        organization = self.salesforce.organization(grant)
        is_dev_hub = self.salesforce.is_dev_hub(grant)
        if registration.is_dev_hub and not is_dev_hub:
            raise NotADevHub(f"'{user.username}' is not a Dev Hub org")
        if not caller.may_touch(user.username):
            raise Forbidden(
                f"The auth URL belongs to '{user.username}', outside this token's org patterns"
            )

        now = self.clock()
        existing = self.orgs.get(user.username)
        if (
            existing is not None
            and existing.org_id != user.org_id
            and not registration.allow_org_change
        ):
            raise OrgMismatch(
                f"'{user.username}' is registered for org {existing.org_id}, but Salesforce now "
                f"reports org {user.org_id} (a refreshed sandbox?): register again with "
                '"allowOrgChange": true to move it'
            )
        org = OrgRecord(
            username=user.username,
            org_id=user.org_id,
            instance_url=grant.instance_url,
            login_url=login_url,
            org_type=org_type(organization, is_dev_hub=is_dev_hub),
            is_dev_hub=is_dev_hub,
            is_default=registration.is_default,
            alias=registration.alias,
            status="active",
            created_at=existing.created_at if existing else now,
            updated_at=now,
            auth_url=self.cipher.encrypt(credential_record(user.username), auth_url.reveal()),
        )
        try:
            if existing is None:
                self.orgs.create(org)
                stored = org
            else:
                stored = self.orgs.replace(org, expected_version=existing.version)
        except ConditionFailed:
            raise Conflict(
                f"Org '{user.username}' was registered or changed concurrently; try again"
            ) from None
        # The access token just granted is as good as a refresh: cache it (this also
        # replaces a token the previous credential obtained).
        self.tokens.remember(user.username, grant, org_version=stored.version)
        logger.info(
            "org registered" if existing is None else "org credential replaced",
            extra={"username": org.username},
        )
        return stored, existing is None

    def get(self, username: str) -> OrgRecord:
        org = self.orgs.get(username)
        if org is None:
            raise OrgNotFound(username)
        return org

    def list(
        self, org_type: OrgType | None = None, is_dev_hub: bool | None = None
    ) -> Iterator[OrgRecord]:
        for org in self.orgs.list(org_type):
            if is_dev_hub is None or org.is_dev_hub == is_dev_hub:
                yield org

    def delete(self, username: str, *, cascade: bool = False) -> tuple[str, ...]:
        """Forget an org; returns the JIT sandboxes forgotten with it.

        An org that environments point at, or a production org that JIT sandboxes
        authenticate through, is kept (409) unless `cascade`: then they go too, after
        the org itself (with the environments of those sandboxes).
        """
        sandboxes = tuple(
            org.username
            for org in self.orgs.list("sandbox")
            if org.is_jit_registration
            and (org.parent_production_username or "").lower() == username.lower()
        )
        environments = [
            environment
            for org in (username, *sandboxes)
            for environment in self.environments.of_org(org)
        ]
        if (sandboxes or environments) and not cascade:
            dependants = [*sandboxes, *(f"environment {r}/{n}" for r, n in environments)]
            raise Conflict(
                f"Org '{username}' is used by {', '.join(dependants)}: delete them first, or "
                "delete with ?cascade=true"
            )
        try:
            self.orgs.delete(username)
        except ConditionFailed:
            raise OrgNotFound(username) from None
        for sandbox in sandboxes:
            try:
                self.orgs.delete(sandbox)
            except ConditionFailed:
                continue  # deleted meanwhile
        for repository, name in environments:
            try:
                self.environments.delete(repository, name)
            except ConditionFailed:
                continue
        logger.info("org deleted", extra={"username": username, "sandboxes": sandboxes})
        return sandboxes


def org_type(organization: OrganizationInfo, *, is_dev_hub: bool) -> OrgType:
    """Scratch orgs are sandboxes with a trial expiration; a Dev Hub is a production org."""
    if organization.is_sandbox:
        return "scratch" if organization.trial_expiration_date else "sandbox"
    return "devhub" if is_dev_hub else "production"
