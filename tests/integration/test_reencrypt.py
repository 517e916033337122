"""`reencrypt` end to end: the command (`python -m sfbroker.admin_cli reencrypt`) on moto's
KMS and on moto or DynamoDB Local, over envelopes the real handlers wrote, with the broker
serving before, during and after."""

from __future__ import annotations

import base64
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from sfbroker import admin_cli, runtime
from sfbroker.crypto import DataKeyCache, EnvelopeCipher
from sfbroker.store.table import from_item

from local.fake_salesforce import FakeSalesforceServer
from tests.support.aws_faults import AwsFault, AwsFaultKind, CompetingWrite
from tests.support.broker import Answer, Broker, drop_cached_token

USERS = ("admin@acme.com", "ops@globex.com")
ENVELOPE_FIELDS = {"v", "kid", "wk", "n", "ct"}
ACTION = "envelopes.reencrypt"

Envelopes = dict[tuple[str, str, str], dict[str, Any]]


@pytest.fixture
def orgs(broker: Broker, salesforce: FakeSalesforceServer) -> dict[str, str]:
    """Two registered orgs (a sealed auth URL and a sealed cached token each)."""
    auth_urls = {}
    for user in USERS:
        salesforce.state.create_production_org(user)
        auth_urls[user] = salesforce.state.mint_auth_url(user)
        answer = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_urls[user]})
        assert answer.status == 201, answer.body
    return auth_urls


def envelopes(broker: Broker) -> Envelopes:
    """Every envelope-shaped value anywhere in the table, by (PK, SK, attribute): the
    command must find all of them, whatever the store module says."""
    found = {}
    for raw in broker.table_items():
        item = from_item(raw)
        for attribute, value in item.items():
            if isinstance(value, dict) and set(value) == ENVELOPE_FIELDS:
                found[(item["PK"], item["SK"], attribute)] = value
    return found


def opened(values: Envelopes, key_id: str) -> dict[tuple[str, str, str], str]:
    """What each envelope seals, opened by a cold cipher (compared, never printed)."""
    kms = boto3.client("kms")
    cipher = EnvelopeCipher(kms, key_id, DataKeyCache(0, 0))
    return {where: cipher.decrypt(f"{where[0]}/{where[1]}", env) for where, env in values.items()}


def reencrypt(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command as an operator would; its exit status, stdout and stderr."""
    capsys.readouterr()
    status = admin_cli.main(["reencrypt", *args])
    out, err = capsys.readouterr()
    return status, out, err


def reencrypt_events(broker: Broker) -> list[dict[str, Any]]:
    """The audit events of the command's runs, as stored."""
    pages = broker.dynamodb.get_paginator("scan").paginate(TableName=broker.table_name)
    items = [from_item(item) for page in pages for item in page["Items"]]
    return [i for i in items if i["PK"].startswith("AUDIT#") and i.get("action") == ACTION]


def issue(broker: Broker, user: str) -> Answer:
    return broker.call("POST", "/orgs/{username}/token", path_params={"username": user})


@contextmanager
def on_new_clients(event: str, handler: Any) -> Iterator[None]:
    """`handler` on `event` of every boto3 client created meanwhile (the command's)."""
    session = boto3._get_default_session()
    session.events.register(event, handler)
    try:
        yield
    finally:
        session.events.unregister(event, handler)


class KmsCalls(Counter[str]):
    def __call__(self, event_name: str, **_: Any) -> None:
        self[event_name.rsplit(".", 1)[-1]] += 1


def test_after_a_rotation_every_envelope_is_rewrapped_and_tokens_still_issue(
    broker: Broker, orgs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = os.environ["KMS_KEY_ID"]
    before = envelopes(broker)
    assert len(before) == 4  # an auth URL and a cached token per org
    secrets = opened(before, key_id)
    boto3.client("kms").rotate_key_on_demand(KeyId=key_id)
    calls = KmsCalls()
    with on_new_clients("before-call.kms", calls):
        status, out, err = reencrypt(capsys)
    assert status == 0, err
    assert out == "complete: seen 4, re-wrapped 4, current 0, skipped 0, failed 0\n"
    assert calls == {"ReEncrypt": 4}  # no Decrypt, no GenerateDataKey: no plaintext here
    (event,) = reencrypt_events(broker)
    assert (event["outcome"], event["target"]) == ("success", f"key:{key_id}")
    assert event["reason"] == out.strip()
    assert event["actor"].startswith("arn:aws:")  # the operator's own AWS identity
    after = envelopes(broker)
    assert after.keys() == before.keys()
    for where, envelope in after.items():
        assert envelope["wk"] != before[where]["wk"], where
        assert (envelope["n"], envelope["ct"]) == (before[where]["n"], before[where]["ct"])
    assert opened(after, key_id) == secrets
    # Nothing secret reached the operator's terminal.
    assert not any(secret in out + err for secret in (*secrets.values(), *orgs.values()))
    # The broker serves from the re-wrapped envelopes, in a cold container.
    runtime.reset()
    for user in USERS:
        cached = issue(broker, user)
        assert (cached.status, cached.body["source"]) == (200, "cache"), cached.body
    drop_cached_token(broker, USERS[0])
    refreshed = issue(broker, USERS[0])  # opens the re-wrapped auth URL
    assert (refreshed.status, refreshed.body["source"]) == (200, "refresh"), refreshed.body


def test_rewrapped_under_a_new_backing_key_nothing_needs_the_old_one(
    broker: Broker,
    orgs: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto's rotation keeps one key material, so the rotation's effect is made visible
    with a new backing key: every wrapped key must then open under it, and only it."""
    old_key = os.environ["KMS_KEY_ID"]
    kms = boto3.client("kms")
    new_key = kms.create_key(Description="sfbroker new material")["KeyMetadata"]["Arn"]
    secrets = opened(envelopes(broker), old_key)
    status, out, err = reencrypt(capsys, "--key-id", new_key, "--page-size", "3")
    assert status == 0, err
    assert out.startswith("complete: seen 4, re-wrapped 4,")
    after = envelopes(broker)
    for (pk, sk, _), envelope in after.items():
        context = {"app": "sfbroker", "record": f"{pk}/{sk}"}
        wrapped = kms.decrypt(
            CiphertextBlob=base64.b64decode(envelope["wk"]), EncryptionContext=context
        )
        assert (wrapped["KeyId"], envelope["kid"]) == (new_key, new_key)
    assert opened(after, new_key) == secrets
    monkeypatch.setenv("KMS_KEY_ID", new_key)
    runtime.reset()
    drop_cached_token(broker, USERS[1])
    assert [issue(broker, user).status for user in USERS] == [200, 200]


def test_a_dry_run_counts_and_changes_nothing(
    broker: Broker, orgs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = broker.snapshot()
    calls = KmsCalls()
    with on_new_clients("before-call.kms", calls):
        status, out, err = reencrypt(capsys, "--dry-run", "--page-size", "2")
    assert status == 0, err
    assert out == "complete: seen 4, would re-wrap 4, current 0, skipped 0, failed 0\n"
    assert re.search(r"^seen \d+  would re-wrap \d+ .* cursor \S+$", err, re.M)
    assert not calls
    assert broker.snapshot() == snapshot
    assert reencrypt_events(broker) == []  # a dry run is not audited: it changes nothing


def test_an_interrupted_run_resumed_from_its_cursor_converges(
    broker: Broker, orgs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = os.environ["KMS_KEY_ID"]
    before = envelopes(broker)
    secrets = opened(before, key_id)
    # KMS goes away after two re-wraps.
    outage = AwsFault("kms", AwsFaultKind.UNAVAILABLE, operations={"ReEncrypt"}, after=2)
    with on_new_clients("before-send.kms", outage):
        status, out, err = reencrypt(capsys, "--page-size", "1")
    assert (status, outage.passed) == (1, 2)
    assert outage.fired >= 1
    assert "interrupted: The key service is unavailable" in err
    assert out.startswith("incomplete: seen 3, re-wrapped 2,")
    (cursor,) = re.findall(r"^resume with: --resume-from (\S+)$", err, re.M)
    (event,) = reencrypt_events(broker)
    assert (event["outcome"], event["reason"]) == ("error", out.strip())
    partly = envelopes(broker)
    assert sum(partly[w]["wk"] != before[w]["wk"] for w in before) == 2

    status, out, err = reencrypt(capsys, "--resume-from", cursor, "--page-size", "1")
    assert status == 0, err
    assert out == "complete: seen 2, re-wrapped 2, current 0, skipped 0, failed 0\n"
    after = envelopes(broker)
    assert all(after[w]["wk"] != before[w]["wk"] for w in before)
    assert opened(after, key_id) == secrets


def test_a_record_written_meanwhile_is_not_clobbered(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    orgs: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_id = os.environ["KMS_KEY_ID"]
    user = USERS[0]
    new_auth_url = salesforce.state.mint_auth_url(user)

    def re_register() -> None:  # live traffic, just before the command writes this org
        answer = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": new_auth_url})
        assert answer.status == 200, answer.body

    meta = {"PK": {"S": f"ORG#{user}"}, "SK": {"S": "META"}}
    race = CompetingWrite("UpdateItem", meta, re_register)
    with on_new_clients("before-call.dynamodb.UpdateItem", race):
        status, out, err = reencrypt(capsys)
    assert race.done
    assert status == 0, err
    # The org's credential and the token the re-registration cached were read before it.
    assert out == "complete: seen 4, re-wrapped 2, current 0, skipped 2, failed 0\n"
    stored = opened(envelopes(broker), key_id)
    assert stored[(f"ORG#{user}", "META", "authUrl")] == new_auth_url
    token = issue(broker, user)
    assert (token.status, token.body["source"]) == (200, "cache")
    assert stored[(f"ORG#{user}", "TOKEN", "token")] == token.body["accessToken"]
    # A second run picks up what was skipped.
    status, out, _ = reencrypt(capsys)
    assert out == "complete: seen 4, re-wrapped 4, current 0, skipped 0, failed 0\n"
