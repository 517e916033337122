"""Collaborators of a warm container, built on first use from the settings.

Nothing here runs at import time: boto3 clients and the Salesforce session are created
when a request first needs them and then reused by every later request.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from sfbroker.crypto import DataKeyCache, EnvelopeCipher
from sfbroker.salesforce import HostPolicy, SalesforceClient, new_session
from sfbroker.services.registration import RegistrationService
from sfbroker.services.tokens import TokenPolicy, TokenService
from sfbroker.settings import get_settings
from sfbroker.store.orgs import OrgStore
from sfbroker.store.table import Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient

# Bounded AWS retries with short timeouts: a Lambda must answer within API Gateway's 29 s.
AWS_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=AWS_CONFIG)


@cache
def kms() -> KMSClient:
    return boto3.client("kms", config=AWS_CONFIG)


@cache
def org_store() -> OrgStore:
    return OrgStore(Table(dynamodb(), get_settings().table_name))


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
    settings = get_settings()
    return SalesforceClient(
        new_session(settings.salesforce_max_retries),
        HostPolicy(settings.salesforce_allowed_hosts, settings.salesforce_http_hosts),
        api_version=settings.salesforce_api_version,
        timeout=settings.salesforce_timeout_seconds,
    )


@cache
def registration_service() -> RegistrationService:
    return RegistrationService(
        org_store(), envelope_cipher(), salesforce(), token_service(), utc_now
    )


@cache
def token_service() -> TokenService:
    settings = get_settings()
    return TokenService(
        org_store(),
        envelope_cipher(),
        salesforce(),
        TokenPolicy(
            token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            lock_seconds=settings.refresh_lock_seconds,
        ),
        utc_now,
        time.sleep,
    )


def reset() -> None:
    """Forget every collaborator (and the settings), e.g. after the environment changed."""
    for factory in (
        get_settings,
        dynamodb,
        kms,
        org_store,
        envelope_cipher,
        salesforce,
        registration_service,
        token_service,
    ):
        factory.cache_clear()
