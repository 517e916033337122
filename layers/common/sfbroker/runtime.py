"""The composition root: settings, clients, stores and services of a warm container.

Handlers (and `local/`) wire their routers with the providers below. boto3 clients and
the Salesforce session are created when a request first needs them and then reused by
every later request. The one thing done at import is registering SnapStart's runtime
hooks (`register_snapshot_hooks`): under SnapStart the clients are created before the
snapshot and every per-environment thing is made anew after each restore.

Imported here: what every function uses (settings, table, orgs, envelope cipher, tokens,
access and audit) and the idempotency store (small; the pools function builds it on its
first request). A service only some functions use is imported by its factory: each
function's routes import their own services at init, so its first request imports nothing
new, and no function loads the others' (issue 15: cold import).
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from sfbroker.access import AccessControl
from sfbroker.auth.rules import ROUTE_ACCESS
from sfbroker.budget import Budget, current_budget
from sfbroker.crypto import DataKeyCache, EnvelopeCipher
from sfbroker.observability import trace_salesforce_calls
from sfbroker.services.api_tokens import ApiTokenService
from sfbroker.services.audit import AuditTrail
from sfbroker.services.tokens import IssuedToken, TokenPolicy, TokenService
from sfbroker.settings import Settings, SettingsError, get_settings
from sfbroker.store.api_tokens import ApiTokenStore
from sfbroker.store.audit import AuditStore
from sfbroker.store.idempotency import IdempotencyRecords
from sfbroker.store.orgs import OrgRecord, OrgStore
from sfbroker.store.table import Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient

    from sfbroker.salesforce.client import SalesforceClient
    from sfbroker.salesforce.pools import DevHubPools
    from sfbroker.services.cleanup import PoolCleanup
    from sfbroker.services.environments import EnvironmentService
    from sfbroker.services.jit import JitService
    from sfbroker.services.pools import PoolService
    from sfbroker.services.registration import RegistrationService
    from sfbroker.store.environments import EnvironmentStore

# Bounded AWS retries with short timeouts: a Lambda must answer within API Gateway's 29 s.
AWS_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def settings() -> Settings:
    """The validated settings; raises `SettingsError` naming a missing or malformed variable."""
    return get_settings()


@cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=AWS_CONFIG)


@cache
def kms() -> KMSClient:
    return boto3.client("kms", config=AWS_CONFIG)


@cache
def table() -> Table:
    return Table(dynamodb(), get_settings().table_name)


@cache
def org_store() -> OrgStore:
    return OrgStore(table())


@cache
def envelope_cipher() -> EnvelopeCipher:
    settings = get_settings()
    return EnvelopeCipher(
        kms(),
        settings.kms_key_id,
        DataKeyCache(settings.data_key_cache_entries, settings.data_key_cache_seconds),
    )


@cache
def salesforce() -> SalesforceClient:
    # Imported on first use: a cache hit never talks to Salesforce, so a cold start
    # need not load requests and urllib3 for it.
    from sfbroker.salesforce.client import SalesforceClient, new_session
    from sfbroker.salesforce.hosts import HostPolicy

    trace_salesforce_calls()
    settings = get_settings()
    return SalesforceClient(
        new_session(),
        HostPolicy(settings.salesforce_allowed_hosts, settings.salesforce_http_hosts),
        api_version=settings.salesforce_api_version,
        timeout=settings.salesforce_timeout_seconds,
        max_retries=settings.salesforce_max_retries,
        budget=request_budget,
    )


def request_budget() -> Budget:
    """The time budget of the request being handled."""
    return current_budget(get_settings().request_budget_seconds)


@cache
def registration_service() -> RegistrationService:
    from sfbroker.services.registration import RegistrationService

    return RegistrationService(
        org_store(), envelope_cipher(), salesforce(), token_service(), utc_now, environment_store()
    )


@cache
def token_service() -> TokenService:
    settings = get_settings()
    return TokenService(
        org_store(),
        envelope_cipher(),
        salesforce,
        TokenPolicy(
            token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            lock_seconds=settings.refresh_lock_seconds,
        ),
        utc_now,
        time.sleep,
        request_budget,
        jit_exchange=jit_exchange,
    )


@cache
def jit_service() -> JitService:
    from sfbroker.services.jit import JitService

    return JitService(org_store(), envelope_cipher(), salesforce(), token_service(), utc_now)


@cache
def environment_store() -> EnvironmentStore:
    from sfbroker.store.environments import EnvironmentStore

    return EnvironmentStore(table())


@cache
def environment_service() -> EnvironmentService:
    from sfbroker.services.environments import EnvironmentService

    return EnvironmentService(environment_store(), org_store(), utc_now)


def jit_exchange(org: OrgRecord, lease_holder: str) -> IssuedToken:
    """The token service's refresh of a JIT sandbox (bound late: JIT needs tokens too)."""
    return jit_service().exchange(org, lease_holder)


@cache
def dev_hub_pools() -> DevHubPools:
    from sfbroker.salesforce.pools import DevHubPools

    return DevHubPools(salesforce())


def idempotency_table_name() -> str:
    """The Powertools idempotency table (pools); `SettingsError` naming it when unset."""
    name = get_settings().idempotency_table_name
    if name is None:
        raise SettingsError("invalid sfbroker configuration: IDEMPOTENCY_TABLE_NAME: required")
    return name


@cache
def idempotency_records() -> IdempotencyRecords:
    return IdempotencyRecords(
        dynamodb(),
        idempotency_table_name(),
        expires_after_seconds=get_settings().pool_idempotency_seconds,
    )


@cache
def pool_service() -> PoolService:
    from sfbroker.services.pools import PoolService
    from sfbroker.store.pools import PoolLeaseStore

    return PoolService(
        orgs=org_store(),
        tokens=token_service(),
        dev_hub=dev_hub_pools(),
        salesforce=salesforce(),
        leases=PoolLeaseStore(table()),
        idempotency=idempotency_records(),
        clock=utc_now,
        token_ttl=timedelta(seconds=get_settings().access_token_ttl_seconds),
        shuffle=random.shuffle,
    )


@cache
def pool_cleanup() -> PoolCleanup:
    from sfbroker.services.cleanup import CleanupPolicy, PoolCleanup
    from sfbroker.store.pools import PoolLeaseStore

    settings = get_settings()
    return PoolCleanup(
        orgs=org_store(),
        tokens=token_service(),
        dev_hub=dev_hub_pools(),
        leases=PoolLeaseStore(table()),
        clock=utc_now,
        policy=CleanupPolicy(
            in_progress_timeout=timedelta(minutes=settings.pool_in_progress_timeout_minutes),
            lease_grace=timedelta(minutes=settings.pool_lease_grace_minutes),
            max_deletions=settings.pool_cleanup_max_deletions,
            scheduled_dry_run=settings.pool_cleanup_dry_run,
        ),
    )


@cache
def api_token_service() -> ApiTokenService:
    return ApiTokenService(ApiTokenStore(table()), utc_now, get_settings().api_token_max_days)


@cache
def audit_writer() -> ThreadPoolExecutor:
    """Background threads for audit writes, so they overlap the request's own work."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="audit")


@cache
def audit_trail() -> AuditTrail:
    return AuditTrail(
        AuditStore(table()),
        utc_now,
        timedelta(days=get_settings().audit_retention_days),
        audit_writer(),
    )


def access_control() -> AccessControl:
    """Authorization and audit of every route, writing to this container's audit trail."""
    return AccessControl(ROUTE_ACCESS, audit_trail)


def reset() -> None:
    """Forget every collaborator (and the settings), e.g. after the environment changed."""
    for factory in (
        get_settings,
        dynamodb,
        kms,
        table,
        org_store,
        envelope_cipher,
        salesforce,
        registration_service,
        token_service,
        jit_service,
        environment_store,
        environment_service,
        api_token_service,
        audit_trail,
        dev_hub_pools,
        idempotency_records,
        pool_service,
        pool_cleanup,
    ):
        factory.cache_clear()


def prime() -> None:
    """Before a SnapStart snapshot: load what every request needs (the AWS clients, their
    service models) so each restored environment starts with it."""
    table()
    kms()


def after_restore() -> None:
    """After a SnapStart restore: what must be unique per environment is made anew.

    The clients go (their connections, credentials and pools would be shared by every
    environment restored from one snapshot; a new client reuses the service models the
    snapshot holds), and with them the data-key cache and the Salesforce session;
    `random` is reseeded (botocore's retry jitter draws from it). Nonces, ids and API
    tokens come from `os.urandom`, never from a seeded generator.
    """
    reset()
    random.seed()


def register_snapshot_hooks() -> None:
    """Register `prime` and `after_restore` with Lambda's SnapStart runtime hooks.

    `snapshot_restore_py` ships with Lambda's Python runtimes; elsewhere (tests, the local
    stack) there is nothing to register. Without SnapStart the hooks never run.
    """
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return
    register_before_snapshot(prime)
    register_after_restore(after_restore)


register_snapshot_hooks()
