"""Token issuance: cache, single-flight refresh, rotation, invalid credentials, outages."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sfbroker import runtime

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Answer, Broker
from tests.support.salesforce import refresh_token_of

USER = {"username": "admin@acme.com"}
TOKEN_ITEM = {"PK": {"S": "ORG#admin@acme.com"}, "SK": {"S": "TOKEN"}}


@pytest.fixture
def registered(broker: Broker, salesforce: FakeSalesforceServer, acme: str) -> str:
    answer = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme})
    assert answer.status == 201, answer.body
    salesforce.reset_counts()
    broker.aws_calls.clear()
    return acme


def issue(broker: Broker, **body: object) -> Answer:
    return broker.call("POST", "/orgs/{username}/token", path_params=USER, json_body=body or None)


def drop_cached_token(broker: Broker) -> None:
    broker.dynamodb.delete_item(TableName=broker.table_name, Key=TOKEN_ITEM)


def test_ten_requests_cost_salesforce_nothing_and_dynamodb_one_read_each(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    answers = [issue(broker) for _ in range(10)]
    assert {a.status for a in answers} == {200}
    assert {a.body["source"] for a in answers} == {"cache"}
    assert len({a.body["accessToken"] for a in answers}) == 1
    assert salesforce.counts["oauth2/token"] == 0
    # One read; the audit event's write runs beside it, not after it.
    assert broker.aws_calls == {"dynamodb.Query": 10, "dynamodb.PutItem": 10}
    body = answers[0].body
    assert set(body) == {
        "accessToken", "instanceUrl", "username", "orgId", "expiresAt", "source",
        "forceRefreshLimited",
    }  # fmt: skip
    assert body["forceRefreshLimited"] is False
    assert body["instanceUrl"] == salesforce.base_url


def test_a_cold_cache_refreshes_once_then_serves_from_cache(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    drop_cached_token(broker)
    runtime.reset()  # a cold container: no data keys in memory
    broker.watch_aws()
    first = issue(broker)
    assert (first.status, first.body["source"]) == (200, "refresh")
    assert salesforce.counts["oauth2/token"] == 1
    rest = [issue(broker) for _ in range(9)]
    assert {a.body["source"] for a in rest} == {"cache"}
    assert {a.body["accessToken"] for a in rest} == {first.body["accessToken"]}
    # One token, one expiry, in API.md's format: fresh or from the cache alike.
    assert {a.body["expiresAt"] for a in rest} == {first.body["expiresAt"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.body["expiresAt"])
    assert salesforce.counts["oauth2/token"] == 1
    # One KMS Decrypt for the auth URL and one GenerateDataKey for the token; then none.
    assert broker.aws_calls["kms.Decrypt"] == 1
    assert broker.aws_calls["kms.GenerateDataKey"] == 1
    # The token works against Salesforce.
    who = requests.get(
        f"{salesforce.base_url}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {first.body['accessToken']}"},
        timeout=5,
    )
    assert who.json()["preferred_username"] == "admin@acme.com"


def test_twenty_concurrent_requests_on_a_cold_cache_share_one_refresh(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    drop_cached_token(broker)
    salesforce.faults.delay = 0.3  # keep the refresh in flight while the others arrive
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: issue(broker), range(20)))
    assert [a.status for a in answers] == [200] * 20, [a.body for a in answers if a.status != 200]
    assert salesforce.counts["oauth2/token"] == 1
    assert len({a.body["accessToken"] for a in answers}) == 1
    assert sorted(a.body["source"] for a in answers).count("refresh") == 1


def test_min_validity_and_forced_refresh(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    # The cached token has 3000 s left: asking for 4800 (the most one may ask) refreshes.
    broker.dynamodb.update_item(
        TableName=broker.table_name,
        Key=TOKEN_ITEM,
        UpdateExpression="SET expiresAt = :e",
        ExpressionAttributeValues={":e": {"N": str(int(datetime.now(UTC).timestamp()) + 3000)}},
    )
    stricter = issue(broker, minValiditySeconds=4800)
    assert stricter.body["source"] == "refresh"
    assert salesforce.counts["oauth2/token"] == 1
    drop_cached_token(broker)
    fresh = issue(broker)
    assert (fresh.body["source"], fresh.body["forceRefreshLimited"]) == ("refresh", False)
    # A forced refresh right after a refresh is served the fresh token: one per minute.
    # The answer says so, for a caller who expected a new token.
    forced = [issue(broker, forceRefresh=True) for _ in range(3)]
    assert {(a.body["source"], a.body["forceRefreshLimited"]) for a in forced} == {("cache", True)}
    assert {a.body["accessToken"] for a in forced} == {fresh.body["accessToken"]}
    assert salesforce.counts["oauth2/token"] == 2
    # Without forceRefresh, a cached token is just a cached token.
    assert issue(broker).body["forceRefreshLimited"] is False
    # Once the last refresh is more than a minute old, a forced refresh refreshes.
    five_minutes_ago = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())
    broker.dynamodb.update_item(
        TableName=broker.table_name,
        Key=TOKEN_ITEM,
        UpdateExpression="SET refreshedAt = :then",
        ExpressionAttributeValues={":then": {"N": str(five_minutes_ago)}},
    )
    again = issue(broker, forceRefresh=True)
    assert (again.body["source"], again.body["forceRefreshLimited"]) == ("refresh", False)
    assert salesforce.counts["oauth2/token"] == 3


def test_a_rotated_refresh_token_is_persisted_at_once(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    salesforce.state.set_refresh_token_rotation("admin@acme.com")
    original = refresh_token_of(registered)
    for _ in range(3):
        drop_cached_token(broker)
        answer = issue(broker)
        assert (answer.status, answer.body["source"]) == (200, "refresh"), answer.body
    assert salesforce.counts["oauth2/token"] == 3
    raw = json.dumps(broker.table_items())
    assert original not in raw
    meta = broker.call("GET", "/orgs/{username}", path_params=USER).body
    assert meta["status"] == "active"


def test_a_revoked_refresh_token_marks_the_org_invalid(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    salesforce.state.revoke_refresh_token(refresh_token_of(registered))
    drop_cached_token(broker)
    answer = issue(broker)
    assert (answer.status, answer.error) == (409, "org_credentials_invalid")
    assert "register" in answer.body["message"]
    org = broker.call("GET", "/orgs/{username}", path_params=USER).body
    assert org["status"] == "invalid"
    # Later requests do not hammer Salesforce with a dead credential.
    again = issue(broker)
    assert again.error == "org_credentials_invalid"
    assert salesforce.counts["oauth2/token"] == 1


def test_transient_failures_are_retried_and_succeed(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    drop_cached_token(broker)
    salesforce.faults.add(kind="http_503", endpoint="token", times=2)
    answer = issue(broker)
    assert (answer.status, answer.body["source"]) == (200, "refresh")
    assert salesforce.counts["oauth2/token"] == 3


def test_a_dead_lock_holder_does_not_block_refresh_forever(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    registered: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drop_cached_token(broker)
    store = runtime.org_store()
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    assert store.acquire_refresh_lock("admin@acme.com", "crashed-instance", long_ago, 20)
    answer = issue(broker)
    assert (answer.status, answer.body["source"]) == (200, "refresh")


def test_marking_invalid_never_hits_a_credential_registered_meanwhile(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    store = runtime.org_store()
    org = store.get("admin@acme.com")
    assert org is not None
    # A refresh that read version N-1 learns of a refused credential after a re-registration.
    assert store.mark_invalid("admin@acme.com", org.version - 1, datetime.now(UTC)) is False
    assert broker.call("GET", "/orgs/{username}", path_params=USER).body["status"] == "active"
    assert issue(broker).status == 200  # the cached token survived
    assert store.mark_invalid("admin@acme.com", org.version, datetime.now(UTC)) is True
    assert broker.call("GET", "/orgs/{username}", path_params=USER).body["status"] == "invalid"
    assert issue(broker).error == "org_credentials_invalid"


def test_a_refresh_whose_answer_was_lost_is_not_sent_again(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    """With rotation, a re-sent refresh would present a token the lost answer retired."""
    salesforce.state.set_refresh_token_rotation("admin@acme.com")
    drop_cached_token(broker)
    before = broker.table_items()
    # Salesforce rotates the refresh token, then the answer never arrives in time.
    salesforce.faults.add(kind="lost_answer", endpoint="token", seconds=4)
    answer = issue(broker)
    assert (answer.status, answer.error) == (504, "salesforce_timeout"), answer.body
    assert salesforce.counts["oauth2/token"] == 1
    # Not marked invalid by a retry that Salesforce would have answered invalid_grant.
    assert broker.table_items() == before
    org = broker.call("GET", "/orgs/{username}", path_params=USER).body
    assert org["status"] == "active"


def test_a_refused_connection_is_retried_because_nothing_was_sent(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    """Only the refusal to connect is certain not to have reached Salesforce."""
    drop_cached_token(broker)
    salesforce.faults.add(kind="http_503", endpoint="token", times=1)
    answer = issue(broker)
    assert (answer.status, answer.body["source"]) == (200, "refresh")
    assert salesforce.counts["oauth2/token"] == 2


@pytest.mark.parametrize(
    "corrupt",
    [
        # Another record's envelope: opens with no key of this record.
        lambda item, meta: {**item, "token": meta["authUrl"]},
        lambda item, meta: {**item, "token": {"M": {"v": {"N": "1"}, "ct": {"S": "AAAA"}}}},
        lambda item, meta: {k: v for k, v in item.items() if k != "token"},
        lambda item, meta: {**item, "expiresAt": {"S": "soon"}},
    ],
    ids=["foreign-envelope", "malformed-envelope", "no-envelope", "unreadable-expiry"],
)
def test_a_corrupt_cached_token_is_a_cache_miss(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str, corrupt: object
) -> None:
    table, key = broker.table_name, {"PK": TOKEN_ITEM["PK"], "SK": {"S": "META"}}
    item = broker.dynamodb.get_item(TableName=table, Key=TOKEN_ITEM, ConsistentRead=True)["Item"]
    meta = broker.dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    broker.dynamodb.put_item(TableName=table, Item=corrupt(item, meta))  # type: ignore[operator]
    answer = issue(broker)
    assert (answer.status, answer.body.get("source")) == (200, "refresh"), answer.body
    assert salesforce.counts["oauth2/token"] == 1
    assert issue(broker).body["source"] == "cache"  # the fresh token replaced it


def _during_the_refresh(
    broker: Broker, salesforce: FakeSalesforceServer, meanwhile: object
) -> Answer:
    """Issue a token whose refresh stalls at Salesforce; run `meanwhile` while it does."""
    import threading
    import time

    salesforce.faults.add(kind="timeout", endpoint="token", seconds=1.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(issue, broker)
        deadline = time.monotonic() + 10
        while salesforce.counts["oauth2/token"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert salesforce.counts["oauth2/token"] == 1
        assert threading.active_count() >= 2
        meanwhile()  # type: ignore[operator]
        return pending.result(timeout=30)


def _token_item(broker: Broker) -> dict[str, object] | None:
    got = broker.dynamodb.get_item(TableName=broker.table_name, Key=TOKEN_ITEM, ConsistentRead=True)
    item: dict[str, object] | None = got.get("Item")
    return item


def test_a_delete_racing_a_refresh_leaves_no_sealed_token(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    drop_cached_token(broker)

    def delete() -> None:
        # What DELETE /orgs/{username} does to the org's items, through a client of the
        # test's own (the handlers' AWS calls are checked against the tokens function).
        for sort_key in ("META", "TOKEN", "REFRESH"):
            key = {"PK": {"S": "ORG#admin@acme.com"}, "SK": {"S": sort_key}}
            broker.dynamodb.delete_item(TableName=broker.table_name, Key=key)

    _during_the_refresh(broker, salesforce, delete)
    assert _token_item(broker) is None
    assert [i for i in broker.table_items() if i["PK"]["S"] == "ORG#admin@acme.com"] == []


def test_a_holder_that_lost_its_lease_never_overwrites_a_newer_token(
    broker: Broker, salesforce: FakeSalesforceServer, registered: str
) -> None:
    newer = _token_item(broker)  # what "another instance" will have cached
    assert newer is not None
    drop_cached_token(broker)

    def lease_taken_over_and_a_newer_token_cached() -> None:
        # The stalled holder's lease expired; another instance took it, refreshed and
        # cached its token. The org itself did not change (same version).
        lease = {"PK": {"S": "ORG#admin@acme.com"}, "SK": {"S": "REFRESH"}}
        broker.dynamodb.update_item(
            TableName=broker.table_name,
            Key=lease,
            UpdateExpression="SET holder = :h",
            ExpressionAttributeValues={":h": {"S": "another-instance"}},
        )
        broker.dynamodb.put_item(TableName=broker.table_name, Item=newer)

    late = _during_the_refresh(broker, salesforce, lease_taken_over_and_a_newer_token_cached)
    assert late.status == 200  # the caller still gets the token it waited for
    assert _token_item(broker) == newer
