"""JIT sandboxes: only the production org's credential is stored; a sandbox's tokens are
asked of Salesforce through it, on demand (SALESFORCE.md, "JIT sandbox auth").

One code path, `exchange`, reached by `POST /sandboxes/{name}/auth` and by `POST
/orgs/{username}/token` for a JIT username (the token service calls it under the
sandbox's refresh lease, so concurrent callers share one exchange). The refresh token an
exchange returns is never stored: it leaves only in an `sfdxAuthUrl` answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from sfbroker.authurl import AuthUrl, parse_auth_url
from sfbroker.crypto import EnvelopeCipher
from sfbroker.errors import (
    Conflict,
    CredentialsRejected,
    JitAuthFailed,
    NotAProductionOrg,
    ParentOrgNotFound,
    SandboxAuthRefused,
    SandboxNotFound,
    SandboxNotReady,
    SandboxNotRegistered,
)
from sfbroker.observability import count, logger
from sfbroker.services.tokens import IssuedToken, TokenService
from sfbroker.store.orgs import OrgRecord, OrgStore, credential_record
from sfbroker.store.table import ConditionFailed

if TYPE_CHECKING:
    from sfbroker.salesforce.client import SalesforceClient, SandboxAuth, TokenGrant

# What `sf org create sandbox` registers: the code is exchanged by the broker, never
# followed in a browser, so no listener is needed at that address.
CALLBACK_URL = "http://localhost:1717/OauthRedirect"
SANDBOX_READY = "Completed"
PRODUCTION_TYPES = frozenset({"production", "devhub"})


@dataclass(frozen=True)
class JitAuth:
    """A sandbox token and where it came from; `sfdx_auth_url` only when asked for."""

    token: IssuedToken
    sandbox_name: str
    production_username: str
    login_url: str
    sfdx_auth_url: SecretStr | None = None


@dataclass(frozen=True)
class JitService:
    orgs: OrgStore
    cipher: EnvelopeCipher
    salesforce: SalesforceClient
    tokens: TokenService
    clock: Callable[[], datetime]

    def register(
        self, sandbox_name: str, production_username: str, username: str | None = None
    ) -> OrgRecord:
        """Register a sandbox of a registered production org: no credential is stored.

        Salesforce is asked whether the sandbox exists (in any state) before the write.
        """
        production = self._production(production_username)
        session = self.tokens.issue(production.username)
        if self.salesforce.sandbox_status(session, sandbox_name) is None:
            raise SandboxNotFound(sandbox_name, production.username)
        now = self.clock()
        org = OrgRecord(
            username=username or default_username(production.username, sandbox_name),
            org_id="",
            instance_url="",
            login_url="",
            org_type="sandbox",
            is_dev_hub=False,
            is_default=False,
            alias=None,
            status="active",
            created_at=now,
            updated_at=now,
            is_jit_registration=True,
            parent_production_username=production.username,
            sandbox_name=sandbox_name,
        )
        try:
            self.orgs.create(org)
        except ConditionFailed:
            raise Conflict(
                f"Org '{org.username}' is already registered: delete it first to register it again"
            ) from None
        logger.info("JIT sandbox registered", extra={"username": org.username})
        return org

    def registration(self, sandbox_name: str, production_username: str) -> OrgRecord:
        """The JIT registration of a production org's sandbox."""
        conventional = self.orgs.get(default_username(production_username, sandbox_name))
        candidates = [conventional] if conventional else list(self.orgs.list("sandbox"))
        for org in candidates:
            if _is_sandbox_of(org, sandbox_name, production_username):
                return org
        raise SandboxNotRegistered(sandbox_name, production_username)

    def authenticate(
        self,
        org: OrgRecord,
        *,
        min_validity_seconds: int = 600,
        force_refresh: bool = False,
        with_auth_url: bool = False,
    ) -> JitAuth:
        """A token for a JIT sandbox: from the cache (shared with `POST /orgs/…/token`), or
        by one exchange; with `with_auth_url`, always a fresh exchange whose refresh
        token is handed out as an SFDX auth URL (and nowhere else)."""
        parent, sandbox_name = _jit_parts(org)
        auth_url: SecretStr | None = None
        if with_auth_url:
            grant, auth, credential = self._exchange(org)
            token = self._remember(org, grant, auth, lease_holder=None)
            if grant.refresh_token is None:
                raise JitAuthFailed(sandbox_name, "Salesforce returned no refresh token")
            auth_url = SecretStr(
                AuthUrl(
                    client_id=credential.client_id,
                    client_secret=credential.client_secret,
                    refresh_token=grant.refresh_token,
                    host=urlsplit(auth.login_url).netloc,
                ).reveal()
            )
        else:
            token = self.tokens.issue(
                org.username, min_validity_seconds=min_validity_seconds, force_refresh=force_refresh
            )
        return JitAuth(
            token=token,
            sandbox_name=sandbox_name,
            production_username=parent,
            login_url=token.login_url or org.login_url,
            sfdx_auth_url=auth_url,
        )

    def exchange(self, org: OrgRecord, lease_holder: str) -> IssuedToken:
        """Obtain and cache a token for a JIT sandbox (the token service's refresh, under
        its lease: cached only while `lease_holder` still holds it)."""
        grant, auth, _ = self._exchange(org)
        return self._remember(org, grant, auth, lease_holder=lease_holder)

    def _exchange(self, org: OrgRecord) -> tuple[TokenGrant, SandboxAuth, AuthUrl]:
        """Production token, readiness, `sandboxAuth`, authorization-code grant."""
        parent, sandbox_name = _jit_parts(org)
        production = self._production(parent)
        session = self.tokens.issue(production.username)
        status = self.salesforce.sandbox_status(session, sandbox_name)
        if status is None:
            raise SandboxNotFound(sandbox_name, parent)
        if status != SANDBOX_READY:
            raise SandboxNotReady(sandbox_name, status)
        credential = self._credential(production)
        try:
            auth = self.salesforce.sandbox_auth(
                session, credential.client_id, sandbox_name, CALLBACK_URL
            )
        except SandboxAuthRefused as refused:
            code = str(refused)
            if code == "INVALID_STATUS":
                raise SandboxNotReady(sandbox_name, None) from None
            if code == "NOT_FOUND":
                raise SandboxNotFound(sandbox_name, parent) from None
            raise JitAuthFailed(sandbox_name, f"Salesforce refused sandboxAuth: {code}") from None
        try:
            grant = self.salesforce.exchange_code(
                auth,
                credential.client_id,
                credential.client_secret.get_secret_value(),
                CALLBACK_URL,
            )
        except CredentialsRejected as rejected:
            raise JitAuthFailed(
                sandbox_name, f"Salesforce refused the authorization code: {rejected}"
            ) from None
        count("JitExchange")
        return grant, auth, credential

    def _remember(
        self, org: OrgRecord, grant: TokenGrant, auth: SandboxAuth, *, lease_holder: str | None
    ) -> IssuedToken:
        if not self.orgs.update_sandbox_location(
            org.username, grant.org_id, grant.instance_url, auth.login_url, self.clock()
        ):
            logger.warning(
                "JIT registration gone during exchange", extra={"username": org.username}
            )
        return self.tokens.remember(
            org.username,
            grant,
            org_version=org.version,
            lease_holder=lease_holder,
            source="jit",
            login_url=auth.login_url,
        )

    def _production(self, username: str) -> OrgRecord:
        production = self.orgs.get(username)
        if production is None:
            raise ParentOrgNotFound(username)
        if production.org_type not in PRODUCTION_TYPES or production.auth_url is None:
            raise NotAProductionOrg(
                f"'{production.username}' is a {production.org_type} org, not a production org: "
                "JIT sandboxes are registered under the production org they were created from"
            )
        return production

    def _credential(self, production: OrgRecord) -> AuthUrl:
        if production.auth_url is None:  # checked by `_production`
            raise NotAProductionOrg(f"'{production.username}' has no stored credential")
        return parse_auth_url(
            self.cipher.decrypt(credential_record(production.username), production.auth_url)
        )


def default_username(production_username: str, sandbox_name: str) -> str:
    """Salesforce's convention: `<production username>.<sandbox name>`."""
    return f"{production_username}.{sandbox_name.lower()}"


def _is_sandbox_of(org: OrgRecord, sandbox_name: str, production_username: str) -> bool:
    return (
        org.is_jit_registration
        and (org.sandbox_name or "").lower() == sandbox_name.lower()
        and (org.parent_production_username or "").lower() == production_username.lower()
    )


def _jit_parts(org: OrgRecord) -> tuple[str, str]:
    if not org.is_jit_registration or not org.parent_production_username or not org.sandbox_name:
        raise Conflict(f"Org '{org.username}' is not a JIT sandbox registration")
    return org.parent_production_username, org.sandbox_name
