"""Request and response models: the HTTP contract of API.md, camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

OrgType = Literal["production", "sandbox", "devhub", "scratch"]
OrgStatus = Literal["active", "invalid"]
TokenSource = Literal["cache", "refresh", "jit"]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown request fields are refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class RegisterOrgRequest(ApiModel):
    sfdx_auth_url: SecretStr = Field(
        description="SFDX auth URL: force://<clientId>:<clientSecret>:<refreshToken>@<host>",
        min_length=10,
        max_length=4096,
    )
    is_dev_hub: bool = False
    is_default: bool = False
    alias: str | None = Field(default=None, min_length=1, max_length=80, pattern=r"^[\w.@-]+$")


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
    created_at: datetime
    updated_at: datetime


class OrgList(ApiModel):
    orgs: list[Org]


class IssueTokenRequest(ApiModel):
    min_validity_seconds: int = Field(
        default=600,
        ge=0,
        le=7200,
        description="A cached token with less validity left than this is not reused",
    )
    force_refresh: bool = Field(
        default=False,
        description="Skip the cache (at most one refresh per org per minute)",
    )


class AccessToken(ApiModel):
    access_token: str
    instance_url: str
    username: str
    org_id: str
    expires_at: datetime
    source: TokenSource


class Health(ApiModel):
    status: Literal["ok"]
    version: str


class ErrorDetail(ApiModel):
    field: str
    message: str


class ErrorBody(ApiModel):
    error: str
    message: str
    request_id: str | None
    details: list[ErrorDetail] | None = None
