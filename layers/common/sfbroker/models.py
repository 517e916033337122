"""Request and response models: the HTTP contract of API.md, camelCase on the wire."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from sfbroker.auth.principal import Scope

OrgType = Literal["production", "sandbox", "devhub", "scratch"]
OrgStatus = Literal["active", "invalid"]
TokenSource = Literal["cache", "refresh", "jit"]


def _utc_seconds(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime,
    PlainSerializer(_utc_seconds, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-12-01T08:52:21Z"]}),
]
"""API.md's one timestamp format, in every answer: UTC, whole seconds, `Z`."""


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown request fields are refused."""

    # defer_build: a model's validator is built when first used, not at import. Each
    # function imports every model here and uses a few (issue 15: cold import).
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        defer_build=True,
    )

    @classmethod
    def of(cls, result: object) -> Self:
        """The API's view of a service result: its fields of the same names (the one
        mapping of each aggregate; what the model does not name, e.g. a sealed
        credential, is left out)."""
        return cls.model_validate(result, from_attributes=True)


class RequestModel(ApiModel):
    """A request body: JSON types as they are, no coercion (`0` is not `false`)."""

    model_config = ConfigDict(strict=True)


class RegisterOrgRequest(RequestModel):
    # No length bounds here: their messages would describe the secret. The auth-URL
    # parser checks it, in words about its format.
    sfdx_auth_url: SecretStr = Field(
        description="SFDX auth URL: force://<clientId>:<clientSecret>:<refreshToken>@<host>",
    )
    is_dev_hub: bool = False
    is_default: bool = False
    alias: str | None = Field(default=None, min_length=1, max_length=80, pattern=r"^[\w.@-]+$")
    allow_org_change: bool = Field(
        default=False,
        description=(
            "Let a registered username move to the org id Salesforce now reports (after a "
            "sandbox refresh); without it such a registration answers 409 org_mismatch"
        ),
    )


class Org(ApiModel):
    """A registered org as the API shows it: never a credential."""

    username: str
    org_id: str
    instance_url: str
    login_url: str
    org_type: OrgType
    is_dev_hub: bool
    is_default: bool
    alias: str | None
    is_jit_registration: bool
    parent_production_username: str | None
    sandbox_name: str | None
    status: OrgStatus
    created_at: Timestamp
    updated_at: Timestamp


class OrgList(ApiModel):
    orgs: list[Org]


class IssueTokenRequest(RequestModel):
    min_validity_seconds: int = Field(
        default=600,
        ge=0,
        le=7200,
        description=(
            "A cached token with less validity left than this is not reused; at most the "
            "assumed token lifetime minus 600 s (4800 by default), else 400"
        ),
    )
    force_refresh: bool = Field(
        default=False,
        description="Skip the cache (at most one refresh per org per minute)",
    )


class AccessToken(ApiModel):
    access_token: str = Field(repr=False)
    instance_url: str
    username: str
    org_id: str
    expires_at: Timestamp
    source: TokenSource
    force_refresh_limited: bool = Field(
        default=False,
        description="forceRefresh was asked, but the org's token was refreshed less than a "
        "minute ago: this one comes from the cache (one forced refresh per org per minute)",
    )


SandboxName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=10,
        pattern=r"^[A-Za-z][A-Za-z0-9]*$",
        description="Salesforce sandbox name (a letter, then letters and digits)",
    ),
]
Username = Annotated[str, Field(min_length=3, max_length=240, pattern=r"^[^\s@]+@[^\s@]+$")]


class RegisterSandboxRequest(RequestModel):
    sandbox_name: SandboxName
    production_username: Username
    username: Username | None = Field(
        default=None, description="Default: `<productionUsername>.<sandboxName>`"
    )


class SandboxAuthRequest(RequestModel):
    production_username: Username
    format: Literal["accessToken", "sfdxAuthUrl"] = Field(
        default="accessToken",
        description="`sfdxAuthUrl` (scope `sandboxes:auth-url`) adds an SFDX auth URL",
    )
    min_validity_seconds: int = Field(default=600, ge=0, le=7200)
    force_refresh: bool = False


class SandboxToken(ApiModel):
    sandbox_name: str
    username: str
    access_token: str = Field(repr=False)
    instance_url: str
    login_url: str
    org_id: str
    expires_at: Timestamp
    production_username: str
    source: TokenSource
    sfdx_auth_url: str | None = Field(default=None, repr=False)


Repository = Annotated[
    str,
    Field(min_length=1, max_length=140, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"),
]
EnvironmentName = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")]
EnvironmentCategory = Literal["dev", "test", "snapshot", "release"]
Branch = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]
Description = Annotated[str, Field(max_length=500)]


class CreateEnvironmentRequest(RequestModel):
    repository: Repository
    name: EnvironmentName
    category: EnvironmentCategory
    username: Username
    branch: Branch | None = None
    description: Description | None = None


class UpdateEnvironmentRequest(RequestModel):
    category: EnvironmentCategory | None = None
    username: Username | None = None
    branch: Branch | None = None
    description: Description | None = None


class Environment(ApiModel):
    repository: str
    name: str
    category: str
    username: str
    branch: str | None
    description: str | None
    created_at: Timestamp
    updated_at: Timestamp
    auth: AccessToken | None = Field(
        default=None, description="With `authenticate=true`: a token for the environment's org"
    )


class EnvironmentList(ApiModel):
    environments: list[Environment]


class AcquireLeaseRequest(RequestModel):
    ttl_seconds: int = Field(default=1800, ge=60, le=43200)
    wait: bool = Field(
        default=False,
        description="Queue when the environment is held (else 409 `lease_held`)",
    )


class Lease(ApiModel):
    lease_id: str
    status: Literal["acquired", "queued", "released", "expired"]
    position: int = Field(description="0 unless queued; 1 = next in line")
    expires_at: Timestamp | None


OrgPattern = Annotated[str, Field(min_length=1, max_length=240, pattern=r"^[^\s]+$")]


class CreateApiTokenRequest(RequestModel):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[\w.@:/ -]+$")
    scopes: list[Scope] = Field(min_length=1, max_length=len(get_args(Scope)))
    orgs: list[OrgPattern] = Field(
        default_factory=list,
        max_length=50,
        description="fnmatch patterns over usernames / `pool:<tag>`; empty: every org",
    )
    expires_in_days: int = Field(
        default=90, ge=1, description="At most the deployment's API_TOKEN_MAX_DAYS"
    )


ApiTokenStatus = Literal["active", "expired", "revoked"]


class ApiToken(ApiModel):
    """An API token as listings show it: never the token or its hash."""

    id: str = Field(validation_alias=AliasChoices("id", "token_id"))
    name: str
    scopes: list[str]
    orgs: list[str] = Field(validation_alias=AliasChoices("orgs", "org_patterns"))
    status: ApiTokenStatus
    created_by: str
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None

    @classmethod
    def of_token(cls, token: object, now: datetime) -> Self:
        """The view of a stored token as of `now` (its status depends on it)."""
        return cls.model_validate(token, from_attributes=True, context={"now": now})

    @field_validator("status", mode="before")
    @classmethod
    def _status_as_of(cls, value: Any, info: ValidationInfo) -> Any:
        # A stored token knows its status only for a given time: `status(now)`.
        return value(info.context["now"]) if callable(value) and info.context else value


class CreatedApiToken(ApiToken):
    token: str = Field(
        repr=False, description="`sfb_<id>_<secret>`: shown once, only its hash is stored"
    )


class ApiTokenList(ApiModel):
    api_tokens: list[ApiToken]


AuditOutcome = Literal["success", "denied", "error"]


class AuditEvent(ApiModel):
    at: Timestamp
    actor: str
    action: str
    target: str | None
    outcome: AuditOutcome
    request_id: str
    source_ip: str | None
    route: str | None
    reason: str | None
    claimed_token_id: str | None = Field(
        default=None, description="A failed authentication: the token id it claimed"
    )


class AuditPage(ApiModel):
    events: list[AuditEvent]
    next_token: str | None = Field(description="Pass as `nextToken` for the next page")


DevHubUsername = Annotated[str, Field(min_length=3, max_length=240, pattern=r"^[^\s@]+@[^\s@]+$")]
PoolOrgFormat = Literal["sfdxAuthUrl", "accessToken"]


class PoolStatus(ApiModel):
    """How many active orgs of a pool are in each allocation status (no secrets)."""

    tag: str
    dev_hub_username: str
    available: int
    in_progress: int
    assigned: int
    total: int


class FetchPoolOrgRequest(RequestModel):
    dev_hub_username: DevHubUsername | None = Field(
        default=None, description="The Dev Hub of the pool; default: the default Dev Hub"
    )
    format: PoolOrgFormat = Field(
        default="sfdxAuthUrl",
        description="`accessToken`: a token for the scratch org instead of its auth URL",
    )


class PoolOrg(ApiModel):
    """A fetched scratch org: what sfp's fetch prints, with its auth URL or a token.

    `sfdxAuthUrl` (format `sfdxAuthUrl`) or `accessToken` + `expiresAt` (format
    `accessToken`): the ones the format does not give are left out, never `null`.
    """

    tag: str
    username: str
    org_id: str | None
    scratch_org_info_id: str
    login_url: str | None
    instance_url: str
    password: str | None = Field(repr=False)
    sfdx_auth_url: str | SkipJsonSchema[None] = Field(
        default=None, repr=False, description="Only with format `sfdxAuthUrl`"
    )
    access_token: str | SkipJsonSchema[None] = Field(
        default=None, repr=False, description="Only with format `accessToken`"
    )
    expires_at: Timestamp | SkipJsonSchema[None] = Field(
        default=None, description="The access token's expiry; only with format `accessToken`"
    )
    expiration_date: date | None

    def answer(self) -> dict[str, Any]:
        """The JSON answer: the credential fields of the other format are left out."""
        absent = {
            name
            for name in ("sfdx_auth_url", "access_token", "expires_at")
            if getattr(self, name) is None
        }
        return self.model_dump(mode="json", by_alias=True, exclude=absent)


class CleanupRequest(RequestModel):
    dry_run: bool = Field(default=True, description="Only report what a real run would do")
    dev_hub_username: DevHubUsername | None = None
    max_deletions: int | None = Field(
        default=None, ge=0, le=500, description="Default: the deployment's per-run cap"
    )


class CleanupCandidate(ApiModel):
    reason: str = Field(
        description="expired | stuck_in_progress | assigned_without_lease (the org is "
        "deleted) | lease_without_org | lease_without_assignment (the lease is dropped)"
    )
    tag: str
    scratch_org_info_id: str
    username: str


class CleanupError(ApiModel):
    scratch_org_info_id: str
    error: str


class CleanupReport(ApiModel):
    """One cleanup run: what it deleted or released (or would, in a dry run)."""

    dev_hub_username: str
    tag: str | None
    dry_run: bool
    candidates: list[CleanupCandidate]
    counts: dict[str, int]
    over_cap: int = Field(description="Org deletions left for the next run by the per-run cap")
    errors: list[CleanupError]


class Health(ApiModel):
    status: Literal["ok"]
    version: str


class ErrorDetail(ApiModel):
    field: str
    message: str


class ErrorBody(ApiModel):
    error: str
    message: str
    request_id: str
    details: list[ErrorDetail] | None = None
