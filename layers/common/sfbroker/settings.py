"""Environment variables as one typed model, read once per container."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sfbroker.budget import API_GATEWAY_TIMEOUT_SECONDS

DEFAULT_ALLOWED_HOSTS = (
    "*.salesforce.com,*.force.com,*.salesforce.mil,*.cloudforce.com,*.sfcrmproducts.cn"
)


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed (fails at cold start)."""


class Settings(BaseModel):
    """The broker's configuration; field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    # Only the pools function has (and needs) it: see `runtime.idempotency_table_name`.
    idempotency_table_name: str | None = Field(
        default=None, alias="IDEMPOTENCY_TABLE_NAME", min_length=3
    )
    kms_key_id: str = Field(alias="KMS_KEY_ID", min_length=1)
    salesforce_allowed_hosts: tuple[str, ...] = Field(
        default=tuple(DEFAULT_ALLOWED_HOSTS.split(",")), alias="SALESFORCE_ALLOWED_HOSTS"
    )
    salesforce_http_hosts: tuple[str, ...] = Field(default=(), alias="SALESFORCE_HTTP_HOSTS")
    salesforce_api_version: str = Field(
        default="62.0", alias="SALESFORCE_API_VERSION", pattern=r"^\d{2,3}\.0$"
    )
    salesforce_timeout_seconds: float = Field(
        default=10.0, alias="SALESFORCE_TIMEOUT_SECONDS", gt=0, le=60
    )
    salesforce_max_retries: int = Field(default=2, alias="SALESFORCE_MAX_RETRIES", ge=0, le=5)
    access_token_ttl_seconds: int = Field(
        default=5400, alias="ACCESS_TOKEN_TTL_SECONDS", ge=1200, le=86400
    )
    # Every Salesforce attempt, backoff and wait of one request fits in this (API
    # Gateway gives up at 29 s); a refresh lease outlives it, so no second instance
    # refreshes while the first may still be inside its call.
    request_budget_seconds: float = Field(
        default=25.0, alias="REQUEST_BUDGET_SECONDS", gt=0, lt=API_GATEWAY_TIMEOUT_SECONDS
    )
    refresh_lock_seconds: int = Field(default=30, alias="REFRESH_LOCK_SECONDS", ge=1, le=120)
    data_key_cache_entries: int = Field(default=256, alias="DATA_KEY_CACHE_ENTRIES", ge=0)
    data_key_cache_seconds: int = Field(default=300, alias="DATA_KEY_CACHE_SECONDS", ge=0)
    api_token_max_days: int = Field(default=365, alias="API_TOKEN_MAX_DAYS", ge=1, le=3650)
    audit_retention_days: int = Field(default=90, alias="AUDIT_RETENTION_DAYS", ge=1, le=3650)
    pool_idempotency_seconds: int = Field(
        default=3600, alias="POOL_IDEMPOTENCY_SECONDS", ge=60, le=7 * 86400
    )
    pool_lease_grace_minutes: int = Field(
        default=15, alias="POOL_LEASE_GRACE_MINUTES", ge=1, le=1440
    )
    pool_in_progress_timeout_minutes: int = Field(
        default=180, alias="POOL_IN_PROGRESS_TIMEOUT_MINUTES", ge=10, le=10080
    )
    pool_cleanup_dry_run: bool = Field(default=False, alias="POOL_CLEANUP_DRY_RUN")
    pool_cleanup_max_deletions: int = Field(
        default=10, alias="POOL_CLEANUP_MAX_DELETIONS", ge=0, le=500
    )

    @model_validator(mode="after")
    def _lease_outlives_the_budget(self) -> Settings:
        if self.refresh_lock_seconds <= self.request_budget_seconds:
            raise ValueError(
                "REFRESH_LOCK_SECONDS must be longer than REQUEST_BUDGET_SECONDS "
                f"({self.refresh_lock_seconds} <= {self.request_budget_seconds})"
            )
        return self

    @field_validator("salesforce_allowed_hosts", "salesforce_http_hosts", mode="before")
    @classmethod
    def _split_host_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(host.strip().lower() for host in value.split(",") if host.strip())
        return value


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Parse settings from an environment mapping; raise `SettingsError` naming what is wrong."""
    known = {field.alias for field in Settings.model_fields.values() if field.alias}
    try:
        return Settings.model_validate({k: v for k, v in environ.items() if k in known})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise SettingsError(f"invalid sfbroker configuration: {problems}") from None


@cache
def get_settings() -> Settings:
    """The settings of this container, read from `os.environ` once."""
    return load_settings(os.environ)
