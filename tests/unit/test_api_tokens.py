"""API tokens: the token format, hashing, and the service over a table (moto, in-process)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sfbroker.auth.api_tokens import mint_token, parse_bearer, parse_token, secret_matches
from sfbroker.errors import InvalidRequest, NotFound
from sfbroker.services.api_tokens import ApiTokenService, NewApiToken, TokenRejected
from sfbroker.store.api_tokens import ApiTokenStore
from sfbroker.store.table import Table

from local.template import create_tables

TABLE = "sfbroker-unit"
START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, {"Table": TABLE})
        yield dynamodb


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(client: Any, clock: Clock) -> ApiTokenService:
    return ApiTokenService(ApiTokenStore(Table(client, TABLE)), clock, max_days=365)


def calls_of(client: Any) -> list[str]:
    calls: list[str] = []
    client.meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.append(event_name.split(".")[-1])
    )
    return calls


# ---------------------------------------------------------------- format


def test_minted_tokens_carry_256_random_bits_and_only_their_hash_is_kept() -> None:
    minted = [mint_token() for _ in range(50)]
    assert len({m.token_id for m in minted}) == 50
    for token in minted:
        text = token.token.get_secret_value()
        assert re.fullmatch(r"sfb_[a-z2-7]{12}_[A-Za-z0-9_-]{43}", text)
        secret = text.split("_", 2)[2]
        assert len(base64.urlsafe_b64decode(secret + "=")) == 32
        assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in repr(token)
        presented = parse_token(text)
        assert presented is not None
        assert presented.token_id == token.token_id
        assert presented.secret.get_secret_value() == secret


def test_a_presented_token_never_prints_its_secret() -> None:
    text = mint_token().token.get_secret_value()
    presented = parse_token(text)
    assert presented is not None
    assert text.split("_", 2)[2] not in repr(presented)


@pytest.mark.parametrize(
    ("header", "valid"),
    [
        ("Bearer {token}", True),
        ("bearer {token}", True),
        ("Bearer   {token} ", True),
        ("{token}", False),
        ("Basic {token}", False),
        ("Bearer", False),
        ("Bearer {token} extra", False),
        ("Bearer {token}x", False),
        ("Bearer sfx_{rest}", False),
        ("Bearer sfb_ABCDEFGHIJKL_{secret}", False),
        ("Bearer sfb_abc_{secret}", False),
        ("", False),
    ],
)
def test_bearer_headers(header: str, valid: bool) -> None:
    text = mint_token().token.get_secret_value()
    value = header.format(token=text, rest=text[4:], secret=text.split("_", 2)[2])
    assert (parse_bearer(value) is not None) is valid


def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []

    def compare_digest(a: str, b: str) -> bool:
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    minted = mint_token()
    presented = parse_token(minted.token.get_secret_value())
    assert presented is not None
    assert secret_matches(presented, minted.secret_hash)
    assert compared == [(minted.secret_hash, minted.secret_hash)]


# ---------------------------------------------------------------- service


def test_create_stores_the_hash_and_the_limits(service: ApiTokenService, client: Any) -> None:
    record, token = service.create(
        NewApiToken(
            name="github-ci",
            scopes=("token:issue", "orgs:read", "token:issue"),
            org_patterns=("*@acme.com", "*@acme.com", "pool:ci-*"),
        ),
        created_by="arn:aws:iam::123456789012:role/admin",
    )
    assert record.scopes == ("orgs:read", "token:issue")
    assert record.org_patterns == ("*@acme.com", "pool:ci-*")
    assert record.expires_at - record.created_at == timedelta(days=90)
    (item,) = client.scan(TableName=TABLE)["Items"]
    raw = json.dumps(item)
    secret = token.get_secret_value().split("_", 2)[2]
    assert secret not in raw
    assert token.get_secret_value() not in raw
    assert item["PK"] == {"S": f"APITOKEN#{record.token_id}"}
    assert item["SK"] == {"S": "META"}
    assert item["GSI1PK"] == {"S": "APITOKEN"}
    assert item["secretHash"] == {"S": hashlib.sha256(secret.encode()).hexdigest()}
    assert item["createdBy"] == {"S": "arn:aws:iam::123456789012:role/admin"}
    assert service.tokens.get(record.token_id) == record


@pytest.mark.parametrize(
    ("new", "field"),
    [
        (NewApiToken(name="x", scopes=("root",)), "scopes"),
        (NewApiToken(name="x", scopes=()), "scopes"),
        (NewApiToken(name="x", scopes=("admin",), expires_in_days=366), "expiresInDays"),
        (NewApiToken(name="x", scopes=("admin",), expires_in_days=0), "expiresInDays"),
    ],
)
def test_create_refuses_unknown_scopes_and_too_long_lives(
    service: ApiTokenService, new: NewApiToken, field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        service.create(new, created_by="me")
    assert refused.value.details is not None
    assert refused.value.details[0]["field"] == field
    assert list(service.list()) == []


def test_tokens_are_listed_oldest_first(service: ApiTokenService, clock: Clock) -> None:
    ids = []
    for minutes in (0, 5, 10):
        clock.now = START + timedelta(minutes=minutes)
        ids.append(service.create(NewApiToken("t", ("orgs:read",)), "me")[0].token_id)
    assert [record.token_id for record in service.list()] == ids


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda token: None, "missing"),
        (lambda token: token, "malformed"),  # no "Bearer "
        (lambda token: f"Bearer {mint_token().token.get_secret_value()}", "unknown_token"),
        (lambda token: f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}", "wrong_secret"),
    ],
)
def test_authentication_refusals(service: ApiTokenService, spoil: Any, reason: str) -> None:
    _, token = service.create(NewApiToken("t", ("orgs:read",)), "me")
    with pytest.raises(TokenRejected) as rejected:
        service.authenticate(spoil(token.get_secret_value()))
    assert rejected.value.reason == reason
    if reason in ("unknown_token", "wrong_secret"):
        assert rejected.value.token_id is not None


def test_revoked_and_expired_tokens_fail(service: ApiTokenService, clock: Clock) -> None:
    record, token = service.create(NewApiToken("t", ("orgs:read",), expires_in_days=1), "me")
    header = f"Bearer {token.get_secret_value()}"
    assert service.authenticate(header).token_id == record.token_id
    clock.now = START + timedelta(days=1)
    with pytest.raises(TokenRejected, match="expired"):
        service.authenticate(header)

    clock.now = START
    other, other_token = service.create(NewApiToken("t", ("orgs:read",)), "me")
    service.revoke(other.token_id, "admin")
    with pytest.raises(TokenRejected, match="revoked"):
        service.authenticate(f"Bearer {other_token.get_secret_value()}")


def test_revocation_keeps_its_first_time_and_actor(service: ApiTokenService, clock: Clock) -> None:
    record, _ = service.create(NewApiToken("t", ("orgs:read",)), "me")
    service.revoke(record.token_id, "first")
    clock.now = START + timedelta(hours=1)
    service.revoke(record.token_id, "second")
    stored = service.tokens.get(record.token_id)
    assert stored is not None
    assert (stored.revoked_at, stored.revoked_by) == (START, "first")
    assert stored.status(clock.now) == "revoked"
    with pytest.raises(NotFound):
        service.revoke("nosuchtoken2", "admin")


def test_last_use_is_written_at_most_once_a_minute(
    service: ApiTokenService, clock: Clock, client: Any
) -> None:
    record, token = service.create(NewApiToken("t", ("orgs:read",)), "me")
    header = f"Bearer {token.get_secret_value()}"
    calls = calls_of(client)
    service.authenticate(header)
    clock.now = START + timedelta(seconds=59)
    service.authenticate(header)
    assert calls == ["GetItem", "UpdateItem", "GetItem"]
    clock.now = START + timedelta(seconds=61)
    service.authenticate(header)
    assert calls[3:] == ["GetItem", "UpdateItem"]
    stored = service.tokens.get(record.token_id)
    assert stored is not None
    assert stored.last_used_at == START + timedelta(seconds=61)


def test_a_concurrent_last_use_is_not_written_twice(service: ApiTokenService, clock: Clock) -> None:
    record, _ = service.create(NewApiToken("t", ("orgs:read",)), "me")
    service.tokens.touch(record.token_id, START, unless_used_since=START - timedelta(minutes=1))
    # Another authorizer instance read the token before that write and tries again.
    service.tokens.touch(
        record.token_id,
        START + timedelta(seconds=5),
        unless_used_since=START - timedelta(seconds=55),
    )
    stored = service.tokens.get(record.token_id)
    assert stored is not None
    assert stored.last_used_at == START
