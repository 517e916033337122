"""The fake's world: orgs, users, connected apps, tokens, sandboxes and Dev Hub records.

One `FakeSalesforceState` holds everything one fake server serves. Every org's instance
URL is the server's own base URL: requests are tied to an org by their bearer token or
refresh token, never by host name. All public methods are thread-safe (one re-entrant
lock, also held by the HTTP app while it serves a request).
"""

import re
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from local.fake_salesforce import ids
from local.fake_salesforce.schema import (
    ACTIVE_SCRATCH_ORG,
    ORGANIZATION,
    SANDBOX_PROCESS,
    SCRATCH_ORG_INFO,
    USER,
    Entity,
    Row,
)

if TYPE_CHECKING:
    from local.fake_salesforce.seed import DefaultSeed

DEFAULT_CLIENT_ID = "PlatformCLI"
SESSION_SECONDS = 2 * 60 * 60
AUTHORIZATION_CODE_SECONDS = 15 * 60
SANDBOX_COMPLETED = "Completed"


@dataclass
class Org:
    """An organization. `my_domain` is the host a real org would have (informational)."""

    id: str
    name: str
    organization_type: str
    is_sandbox: bool
    instance_name: str
    my_domain: str
    created_date: datetime
    is_dev_hub: bool = False
    trial_expiration_date: datetime | None = None
    namespace_prefix: str | None = None
    rotate_refresh_tokens: bool = False
    session_seconds: int = SESSION_SECONDS
    deleted: bool = False

    @property
    def is_scratch(self) -> bool:
        """Scratch orgs are sandboxes with a trial expiration date."""
        return self.is_sandbox and self.trial_expiration_date is not None


@dataclass
class User:
    """A user of one org."""

    id: str
    username: str
    org_id: str
    email: str
    first_name: str
    last_name: str
    created_date: datetime
    is_active: bool = True

    @property
    def name(self) -> str:
        """The display name."""
        return f"{self.first_name} {self.last_name}"


@dataclass
class ConnectedApp:
    """An OAuth client; `client_secret` None means none is required."""

    client_id: str
    client_secret: str | None = None


@dataclass
class RefreshToken:
    """A refresh token the fake issued."""

    user_id: str
    client_id: str
    revoked: bool = False


@dataclass
class AccessToken:
    """An access token the fake issued, valid for the org's session time from `issued_at`."""

    user_id: str
    issued_at: datetime
    refresh_token: str | None
    revoked: bool = False


@dataclass
class AuthorizationCode:
    """A one-time code from `sandboxAuth`, bound to its client id and redirect URI."""

    user_id: str
    client_id: str
    redirect_uri: str
    issued_at: datetime
    used: bool = False


@dataclass
class Sandbox:
    """A sandbox of a production org (its SandboxProcess row) and the org it produced."""

    process_id: str
    info_id: str
    name: str
    production_org_id: str
    org_id: str
    status: str
    license_type: str
    created_date: datetime
    description: str | None = None


@dataclass
class DevHubRecord:
    """A stored `ScratchOrgInfo` or `ActiveScratchOrg` row of a Dev Hub."""

    entity: Entity
    org_id: str
    fields: Row


@dataclass(frozen=True)
class ScratchOrg:
    """What `create_scratch_org` made: the Dev Hub rows, the org, its user, its auth URL."""

    info_id: str
    active_id: str | None
    org: Org
    user: User
    auth_url: str | None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower()) or "org"


def _random_lower(length: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))


class FakeSalesforceState:
    """Everything a fake Salesforce serves, with helpers to build and inspect it."""

    def __init__(
        self, base_url: str | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.lock = threading.RLock()
        self._base_url = base_url
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.orgs: dict[str, Org] = {}
        self.users: dict[str, User] = {}
        self.connected_apps: dict[str, ConnectedApp] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.authorization_codes: dict[str, AuthorizationCode] = {}
        self.sandboxes: list[Sandbox] = []
        self.dev_hub_records: dict[str, DevHubRecord] = {}  # by 15-character id
        self.signing_key = secrets.token_bytes(32)
        self.default_seed: DefaultSeed | None = None
        self.add_connected_app(DEFAULT_CLIENT_ID)

    # --- base URL -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The server's own URL: instance URL of every org and login URL of sandboxes."""
        if self._base_url is None:
            raise RuntimeError("the fake Salesforce has no base URL yet: start the server")
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self._base_url = value.rstrip("/")

    @property
    def host(self) -> str:
        """`host:port` of the base URL, as it appears after `@` in an SFDX auth URL."""
        return urlsplit(self.base_url).netloc

    def now(self) -> datetime:
        """The fake's clock (UTC)."""
        return self.clock()

    # --- lookups ------------------------------------------------------------------------

    def find_user(self, username: str) -> User | None:
        """The user called `username` (case-insensitive, like Salesforce), or None."""
        wanted = username.lower()
        with self.lock:
            return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def user(self, username: str) -> User:
        """The user called `username`; KeyError when there is none."""
        found = self.find_user(username)
        if found is None:
            raise KeyError(f"no user {username!r}")
        return found

    def org_of(self, user: User) -> Org:
        """The org `user` belongs to."""
        return self.orgs[user.org_id]

    def org_users(self, org: Org) -> list[User]:
        """The users of `org`, oldest first."""
        with self.lock:
            return [u for u in self.users.values() if u.org_id == org.id]

    def find_sandbox(self, production_org: Org, name: str) -> Sandbox | None:
        """The sandbox `name` (case-insensitive) of `production_org`, or None."""
        with self.lock:
            return next(
                (
                    s
                    for s in self.sandboxes
                    if s.production_org_id == production_org.id and s.name.lower() == name.lower()
                ),
                None,
            )

    def sandbox(self, production_username: str, name: str) -> Sandbox:
        """The sandbox `name` of the production org of `production_username`; KeyError if none."""
        found = self.find_sandbox(self.org_of(self.user(production_username)), name)
        if found is None:
            raise KeyError(f"no sandbox {name!r} under {production_username!r}")
        return found

    # --- building the world -------------------------------------------------------------

    def add_connected_app(self, client_id: str, client_secret: str | None = None) -> ConnectedApp:
        """Accept `client_id` at the token endpoint (with `client_secret`, if given)."""
        with self.lock:
            app = ConnectedApp(client_id, client_secret)
            self.connected_apps[client_id] = app
            return app

    def create_org(
        self,
        name: str,
        *,
        organization_type: str = "Enterprise Edition",
        is_sandbox: bool = False,
        is_dev_hub: bool = False,
        trial_expiration_date: datetime | None = None,
        my_domain: str | None = None,
        instance_name: str | None = None,
    ) -> Org:
        """Create an org (no users yet)."""
        with self.lock:
            org = Org(
                id=ids.new_record_id("00D"),
                name=name,
                organization_type=organization_type,
                is_sandbox=is_sandbox,
                instance_name=instance_name
                or ("CS" if is_sandbox else "NA") + str(secrets.randbelow(200) + 10),
                my_domain=my_domain or f"{_slug(name)}.my.salesforce.com",
                created_date=self.now(),
                is_dev_hub=is_dev_hub,
                trial_expiration_date=trial_expiration_date,
            )
            self.orgs[org.id] = org
            return org

    def create_user(
        self,
        org: Org,
        username: str,
        *,
        email: str | None = None,
        first_name: str = "Test",
        last_name: str = "User",
    ) -> User:
        """Create a user of `org`; usernames are unique across all orgs, as in Salesforce."""
        with self.lock:
            if self.find_user(username) is not None:
                raise ValueError(f"username {username!r} is taken")
            user = User(
                id=ids.new_record_id("005"),
                username=username,
                org_id=org.id,
                email=email or username,
                first_name=first_name,
                last_name=last_name,
                created_date=self.now(),
            )
            self.users[user.id] = user
            return user

    def create_production_org(
        self,
        username: str,
        *,
        name: str = "Acme",
        organization_type: str = "Enterprise Edition",
        is_dev_hub: bool = False,
        my_domain: str | None = None,
    ) -> User:
        """Create a production org with its admin user `username`; return the user."""
        with self.lock:
            org = self.create_org(
                name,
                organization_type=organization_type,
                is_dev_hub=is_dev_hub,
                my_domain=my_domain,
            )
            return self.create_user(org, username, first_name="Admin", last_name=name)

    def create_dev_hub(self, username: str, *, name: str = "Acme Dev Hub") -> User:
        """Create a Dev Hub (a production org that answers ScratchOrgInfo); return its user."""
        return self.create_production_org(username, name=name, is_dev_hub=True)

    def create_sandbox(
        self,
        production_username: str,
        name: str,
        *,
        status: str = SANDBOX_COMPLETED,
        license_type: str = "DEVELOPER",
    ) -> Sandbox:
        """Create sandbox `name` of the production org of `production_username`.

        The sandbox gets its own org (`<prod my domain>--<name>.sandbox…`) and user
        `<production username>.<name>`. Status `Completed` means usable; anything else
        (`Processing`, `Activating`, …) makes `sandboxAuth` answer `INVALID_STATUS`.
        """
        with self.lock:
            production = self.org_of(self.user(production_username))
            if self.find_sandbox(production, name) is not None:
                raise ValueError(f"sandbox {name!r} exists")
            return self._copy_production(production_username, name, status, license_type)

    def refresh_sandbox(
        self, production_username: str, name: str, *, status: str = SANDBOX_COMPLETED
    ) -> Sandbox:
        """Refresh sandbox `name`: a new org (new id) with the same name and username.

        The old org is gone (its sessions die; its users keep their records, renamed
        `<username>.<old org id>` and inactive), as after a real refresh; the new copy
        starts in `status`.
        """
        with self.lock:
            old = self.sandbox(production_username, name)
            self.sandboxes.remove(old)
            self.orgs[old.org_id].deleted = True
            for user in self.org_users(self.orgs[old.org_id]):
                user.username = f"{user.username}.{old.org_id.lower()}"
                user.is_active = False
            return self._copy_production(production_username, name, status, old.license_type)

    def _copy_production(
        self, production_username: str, name: str, status: str, license_type: str
    ) -> Sandbox:
        production_user = self.user(production_username)
        production = self.org_of(production_user)
        prefix = production.my_domain.split(".", 1)[0]
        org = self.create_org(
            production.name,
            organization_type=production.organization_type,
            is_sandbox=True,
            my_domain=f"{prefix}--{name.lower()}.sandbox.my.salesforce.com",
        )
        self.create_user(
            org,
            f"{production_user.username}.{name.lower()}",
            email=f"{production_user.email}.invalid",
            first_name=production_user.first_name,
            last_name=production_user.last_name,
        )
        sandbox = Sandbox(
            process_id=ids.new_record_id("0GR"),
            info_id=ids.new_record_id("0GQ"),
            name=name,
            production_org_id=production.id,
            org_id=org.id,
            status=status,
            license_type=license_type,
            created_date=self.now(),
        )
        self.sandboxes.append(sandbox)
        return sandbox

    def set_sandbox_status(self, production_username: str, name: str, status: str) -> None:
        """Move a sandbox to `status` (e.g. `Processing` → `Completed`)."""
        with self.lock:
            self.sandbox(production_username, name).status = status

    def create_scratch_org(
        self,
        dev_hub_username: str,
        *,
        pool_tag: str | None = None,
        allocation_status: str | None = None,
        status: str = "Active",
        username: str | None = None,
        created_date: datetime | None = None,
        expiration_date: date | None = None,
        with_auth_url: bool = True,
    ) -> ScratchOrg:
        """Create a scratch org under a Dev Hub: the org, its user, its ScratchOrgInfo row
        (pool fields filled when `pool_tag` is given; `Allocation_status__c` defaults to
        `Available`) and, when `status` is `Active`, its ActiveScratchOrg row.
        """
        with self.lock:
            hub = self.org_of(self.user(dev_hub_username))
            if not hub.is_dev_hub:
                raise ValueError(f"{dev_hub_username!r} is not a Dev Hub user")
            now = self.now()
            created = created_date or now
            expires = expiration_date or (now + timedelta(days=7)).date()
            site = _random_lower(12)
            org = self.create_org(
                f"{hub.name} scratch",
                organization_type="Developer Edition",
                is_sandbox=True,
                trial_expiration_date=datetime.combine(expires, time(), UTC),
                my_domain=f"{site}-dev-ed.scratch.my.salesforce.com",
            )
            user = self.create_user(org, username or f"test-{_random_lower(12)}@example.com")
            auth_url = self.mint_auth_url(user.username) if with_auth_url else None
            info_id = ids.new_record_id(SCRATCH_ORG_INFO.key_prefix)
            info: Row = {
                "Id": info_id,
                "OrgName": org.name,
                "Edition": "Developer",
                "Status": status,
                "ExpirationDate": expires,
                "CreatedDate": created,
                "LastModifiedDate": created,
                "SignupUsername": user.username,
                "SignupEmail": user.email,
                "LoginUrl": self.base_url,
                "ScratchOrg": ids.id15(org.id),
                "DurationDays": 7,
                "Pooltag__c": pool_tag,
                "Allocation_status__c": allocation_status or ("Available" if pool_tag else None),
                "Password__c": ids.new_password() if pool_tag else None,
                "SfdxAuthUrl__c": auth_url if pool_tag else None,
            }
            self.dev_hub_records[ids.id15(info_id)] = DevHubRecord(SCRATCH_ORG_INFO, hub.id, info)
            active_id = None
            if status == "Active":
                active_id = ids.new_record_id(ACTIVE_SCRATCH_ORG.key_prefix)
                active: Row = {
                    "Id": active_id,
                    "ScratchOrg": ids.id15(org.id),
                    "ScratchOrgInfoId": info_id,
                    "SignupUsername": user.username,
                    "OrgName": org.name,
                    "Edition": "Developer",
                    "ExpirationDate": expires,
                    "CreatedDate": created,
                }
                self.dev_hub_records[ids.id15(active_id)] = DevHubRecord(
                    ACTIVE_SCRATCH_ORG, hub.id, active
                )
            else:
                org.deleted = status in {"Deleted", "Expired"}
            return ScratchOrg(info_id, active_id, org, user, auth_url)

    # --- credentials --------------------------------------------------------------------

    def mint_refresh_token(self, username: str, client_id: str = DEFAULT_CLIENT_ID) -> str:
        """Issue a refresh token for `username`, bound to `client_id`."""
        with self.lock:
            user = self.user(username)
            if client_id not in self.connected_apps:
                raise KeyError(f"unknown client id {client_id!r}")
            token = ids.new_refresh_token()
            self.refresh_tokens[token] = RefreshToken(user.id, client_id)
            return token

    def mint_access_token(self, username: str, refresh_token: str | None = None) -> str:
        """Issue an access token for `username`, valid for the org's session time."""
        with self.lock:
            return self.issue_access_token(self.user(username), refresh_token)[0]

    def issue_access_token(
        self, user: User, refresh_token: str | None = None
    ) -> tuple[str, AccessToken]:
        """Issue an access token for `user`; return it and its record."""
        with self.lock:
            token = ids.new_access_token(user.org_id)
            record = AccessToken(user.id, self.now(), refresh_token)
            self.access_tokens[token] = record
            return token, record

    def issue_authorization_code(self, user: User, client_id: str, redirect_uri: str) -> str:
        """Issue a one-time authorization code for `user`."""
        with self.lock:
            code = ids.new_authorization_code()
            self.authorization_codes[code] = AuthorizationCode(
                user.id, client_id, redirect_uri, self.now()
            )
            return code

    def format_auth_url(
        self,
        refresh_token: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = "",
        host: str | None = None,
    ) -> str:
        """`force://<client id>:<secret>:<refresh token>@<host>`, host defaulting to the fake's."""
        return f"force://{client_id}:{client_secret}:{refresh_token}@{host or self.host}"

    def mint_auth_url(
        self, username: str, *, client_id: str = DEFAULT_CLIENT_ID, host: str | None = None
    ) -> str:
        """Mint a refresh token for `username` and return its SFDX auth URL."""
        token = self.mint_refresh_token(username, client_id)
        return self.format_auth_url(token, client_id=client_id, host=host)

    def authenticate(self, access_token: str) -> User | None:
        """The user an access token stands for, or None when it is unknown/revoked/expired."""
        with self.lock:
            record = self.access_tokens.get(access_token)
            if record is None or record.revoked:
                return None
            user = self.users[record.user_id]
            org = self.org_of(user)
            expired = self.now() >= record.issued_at + timedelta(seconds=org.session_seconds)
            if expired or org.deleted or not user.is_active:
                return None
            return user

    def revoke_refresh_token(self, token: str) -> bool:
        """Revoke a refresh token and the access tokens obtained with it."""
        with self.lock:
            record = self.refresh_tokens.get(token)
            if record is None or record.revoked:
                return False
            record.revoked = True
            for access in self.access_tokens.values():
                if access.refresh_token == token:
                    access.revoked = True
            return True

    def revoke_access_token(self, token: str) -> bool:
        """Revoke one access token."""
        with self.lock:
            record = self.access_tokens.get(token)
            if record is None or record.revoked:
                return False
            record.revoked = True
            return True

    def revoke_user_tokens(self, username: str) -> int:
        """Revoke every refresh and access token of `username`; return how many."""
        with self.lock:
            user = self.user(username)
            count = 0
            for token, refresh in self.refresh_tokens.items():
                if refresh.user_id == user.id and self.revoke_refresh_token(token):
                    count += 1
            return count + self.expire_access_tokens(username)

    def expire_access_tokens(self, username: str | None = None) -> int:
        """End every live access session (of `username`, or everyone); return how many."""
        with self.lock:
            user_id = self.user(username).id if username else None
            live = [
                a
                for a in self.access_tokens.values()
                if not a.revoked and user_id in (None, a.user_id)
            ]
            for access in live:
                access.revoked = True
            return len(live)

    def set_refresh_token_rotation(self, username: str, enabled: bool = True) -> None:
        """Turn refresh-token rotation on/off for the org of `username`."""
        with self.lock:
            self.org_of(self.user(username)).rotate_refresh_tokens = enabled

    def deactivate_user(self, username: str) -> None:
        """Deactivate a user: refresh grants answer `inactive user`, sessions end."""
        with self.lock:
            self.user(username).is_active = False

    # --- sObject rows -------------------------------------------------------------------

    def rows(self, entity: Entity, org: Org) -> list[Row]:
        """Every row of `entity` visible in `org`, with every field of the entity."""
        with self.lock:
            if entity is ORGANIZATION:
                return [_organization_row(org)]
            if entity is USER:
                return [_user_row(u) for u in self.org_users(org)]
            if entity is SANDBOX_PROCESS:
                return [
                    _sandbox_process_row(s) for s in self.sandboxes if s.production_org_id == org.id
                ]
            return [
                dict(r.fields)
                for r in self.dev_hub_records.values()
                if r.entity is entity and r.org_id == org.id
            ]

    def find_row(self, entity: Entity, org: Org, record_id: str) -> Row | None:
        """The row of `entity` with id `record_id` (15 or 18 characters) in `org`, or None."""
        wanted = ids.id15(record_id)
        with self.lock:
            return next(
                (r for r in self.rows(entity, org) if ids.id15(str(r["Id"])) == wanted), None
            )

    def update_row(self, entity: Entity, org: Org, record_id: str, changes: Row) -> bool:
        """Apply `changes` (canonical field names) to a row; False when there is no such row."""
        with self.lock:
            if self.find_row(entity, org, record_id) is None:
                return False
            if entity is USER:
                _apply_user_changes(self.users[_full_id(self.users, record_id)], changes)
                return True
            record = self.dev_hub_records[ids.id15(record_id)]
            record.fields.update(changes)
            if entity is SCRATCH_ORG_INFO:
                record.fields["LastModifiedDate"] = self.now()
            return True

    def delete_row(self, entity: Entity, org: Org, record_id: str) -> bool:
        """Delete a Dev Hub row; deleting a scratch org's rows deletes the scratch org."""
        with self.lock:
            if self.find_row(entity, org, record_id) is None:
                return False
            record = self.dev_hub_records.pop(ids.id15(record_id))
            info_id = record.fields["Id"]
            if entity is ACTIVE_SCRATCH_ORG:
                info_id = record.fields["ScratchOrgInfoId"]
                info = self.dev_hub_records.get(ids.id15(str(info_id)))
                if info is not None:
                    info.fields["Status"] = "Deleted"
                    info.fields["LastModifiedDate"] = self.now()
            else:
                for key, other in list(self.dev_hub_records.items()):
                    if other.fields.get("ScratchOrgInfoId") == info_id:
                        del self.dev_hub_records[key]
            self._delete_scratch_org(str(record.fields["ScratchOrg"]))
            return True

    def _delete_scratch_org(self, org_id15: str) -> None:
        for org in self.orgs.values():
            if ids.id15(org.id) == org_id15:
                org.deleted = True

    # --- seeding ------------------------------------------------------------------------

    def seed_default(self) -> "DefaultSeed":
        """Seed the default world once (see `seed.seed_default`); later calls return it."""
        from local.fake_salesforce.seed import seed_default

        return seed_default(self)


def _full_id(users: dict[str, User], record_id: str) -> str:
    return next(key for key in users if ids.id15(key) == ids.id15(record_id))


def _apply_user_changes(user: User, changes: Row) -> None:
    attributes = {
        "Email": "email",
        "FirstName": "first_name",
        "LastName": "last_name",
        "IsActive": "is_active",
    }
    for name, value in changes.items():
        if name in attributes:
            setattr(user, attributes[name], value)


def _organization_row(org: Org) -> Row:
    return {
        "Id": org.id,
        "Name": org.name,
        "InstanceName": org.instance_name,
        "IsSandbox": org.is_sandbox,
        "OrganizationType": org.organization_type,
        "TrialExpirationDate": org.trial_expiration_date,
        "NamespacePrefix": org.namespace_prefix,
        "CreatedDate": org.created_date,
    }


def _user_row(user: User) -> Row:
    return {
        "Id": user.id,
        "Username": user.username,
        "Email": user.email,
        "FirstName": user.first_name,
        "LastName": user.last_name,
        "Name": user.name,
        "IsActive": user.is_active,
        "UserType": "Standard",
        "TimeZoneSidKey": "America/Los_Angeles",
        "LanguageLocaleKey": "en_US",
        "CreatedDate": user.created_date,
    }


def _sandbox_process_row(sandbox: Sandbox) -> Row:
    completed = sandbox.status == SANDBOX_COMPLETED
    return {
        "Id": sandbox.process_id,
        "SandboxName": sandbox.name,
        "Status": sandbox.status,
        "SandboxInfoId": sandbox.info_id,
        "LicenseType": sandbox.license_type,
        "CopyProgress": 100 if completed else 50,
        "SandboxOrganization": ids.id15(sandbox.org_id),
        "SourceId": None,
        "Description": sandbox.description,
        "CreatedDate": sandbox.created_date,
        "StartDate": sandbox.created_date,
        "EndDate": sandbox.created_date if completed else None,
        "ActivatedDate": sandbox.created_date if completed else None,
        "Features": None,
        "LastModifiedDate": sandbox.created_date,
    }
