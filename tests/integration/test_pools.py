"""Scratch-org pools end to end: the real handlers, real tables (moto and DynamoDB Local),
the fake Salesforce's Dev Hub over HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local import template as sam
from local.events import load_event
from local.fake_salesforce import FakeSalesforceServer
from local.fake_salesforce.schema import SCRATCH_ORG_INFO
from local.lambdas import invoke
from tests.support.broker import Answer, Broker, drop_cached_token
from tests.support.pool_race import race_sfbroker, race_sfp
from tests.support.pools import (
    HUB,
    allocation,
    assert_consistent,
    idempotency_table,
    leases,
    make_pool,
    register_hub,
    set_row,
)
from tests.support.token_api import TokenApi, bearer, create_token

CI = {"tag": "ci"}
FETCHER = "arn:aws:sts::123456789012:assumed-role/ci/job-1"
OTHER_FETCHER = "arn:aws:sts::123456789012:assumed-role/ci/job-2"


@pytest.fixture
def hub(broker: Broker, salesforce: FakeSalesforceServer) -> str:
    """A Dev Hub registered as the default one (no pool orgs yet)."""
    return register_hub(broker, salesforce)


def fetch(broker: Broker, *, key: str | None = None, caller: str = FETCHER, **body: Any) -> Answer:
    return broker.call(
        "POST",
        "/pools/{tag}/fetch",
        path_params=CI,
        json_body=body or None,
        headers={"Idempotency-Key": key} if key else None,
        iam_arn=caller,
    )


# ---------------------------------------------------------------- the race


def test_fifty_fetchers_on_thirty_orgs_get_thirty_distinct_orgs_and_twenty_pool_empty(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str, tmp_path: Path
) -> None:
    pool = make_pool(salesforce, 30)
    spec = next(s for s in sam.functions(broker.template) if s.logical_id == "PoolsFunction")
    outcome = race_sfbroker(spec.code_uri, spec.handler, spec.logical_id, 50, tmp_path)
    print(f"sfbroker: {outcome.figures()}")
    assert outcome.other == []
    assert (outcome.distinct, outcome.duplicates, outcome.pool_empty) == (30, 0, 20)
    assert set(outcome.handed_out) == {org.user.username for org in pool}
    # One patch per org handed out: no fetcher patched an org it had not won.
    assert salesforce.counts["sobjects/patch"] == 30
    assert set(allocation(salesforce).values()) == {"Assigned"}
    assert_consistent(broker, salesforce)


def test_sfps_algorithm_hands_the_same_org_to_jobs_that_fetch_at_once(
    salesforce: FakeSalesforceServer,
) -> None:
    salesforce.state.create_dev_hub(HUB)
    make_pool(salesforce, 30)
    token = salesforce.state.mint_access_token(HUB)
    between = threading.Barrier(50)
    # Every job queries before any patches (sfp logs into the org in between).
    outcome = race_sfp(salesforce.base_url, token, 50, between=lambda: between.wait(timeout=60))
    print(f"sfp: {outcome.figures()}")
    assert (outcome.distinct, outcome.duplicates, outcome.pool_empty) == (1, 49, 0)


# ---------------------------------------------------------------- fetch


def test_a_fetch_answers_what_sfp_prints_and_the_org_works(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    (org,) = make_pool(salesforce, 1)
    answer = fetch(broker)
    assert answer.status == 200, answer.body
    body = answer.body
    assert body["username"] == org.user.username
    assert body["scratchOrgInfoId"] == org.info_id
    assert body["orgId"] == org.org.id[:15]
    assert body["sfdxAuthUrl"] == org.auth_url
    assert body["password"]
    assert body["instanceUrl"] == body["loginUrl"] == salesforce.base_url
    assert body["expirationDate"] == (salesforce.state.now() + timedelta(days=7)).date().isoformat()
    assert {"accessToken", "expiresAt"}.isdisjoint(body)  # not null: left out (API.md)
    assert allocation(salesforce) == {org.user.username: "Assigned"}
    assert_consistent(broker, salesforce)


def test_access_token_format_keeps_the_auth_url_in_aws(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    (org,) = make_pool(salesforce, 1)
    answer = fetch(broker, format="accessToken")
    assert answer.status == 200, answer.body
    assert "sfdxAuthUrl" not in answer.body  # instead of it, not beside it as null
    assert org.auth_url is not None
    assert org.auth_url not in (answer.raw or "")
    user = salesforce.state.authenticate(answer.body["accessToken"])
    assert user is not None
    assert user.username == org.user.username
    assert answer.body["expiresAt"]


def test_an_empty_pool_is_409_pool_empty(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 1)
    assert fetch(broker).status == 200
    answer = fetch(broker)
    assert (answer.status, answer.error) == (409, "pool_empty")
    assert salesforce.counts["sobjects/patch"] == 1


def test_a_tag_no_org_carries_is_404_pool_not_found(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 2, tag="other")
    answers = [
        fetch(broker),
        broker.call("GET", "/pools/{tag}", path_params=CI, query={"devHubUsername": HUB}),
    ]
    assert [(a.status, a.error) for a in answers] == [(404, "pool_not_found")] * 2
    assert "check the pool tag" in answers[0].body["message"]
    assert salesforce.counts["sobjects/patch"] == 0
    assert leases(broker) == {}


def test_a_retry_with_the_same_key_gets_the_same_org_and_takes_one_lease(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 3)
    first = fetch(broker, key="run-42-1-validate")
    again = fetch(broker, key="run-42-1-validate", format="accessToken")
    assert first.status == again.status == 200
    assert again.body["username"] == first.body["username"]
    assert again.body["password"] == first.body["password"]
    assert len(leases(broker)) == 1
    assert salesforce.counts["sobjects/patch"] == 1
    # The same key from another caller is another fetch, never the first caller's org.
    other = fetch(broker, key="run-42-1-validate", caller=OTHER_FETCHER)
    assert other.status == 200
    assert other.body["username"] != first.body["username"]
    # The idempotency record holds the org's reference, not its credentials.
    items = broker.dynamodb.scan(TableName=idempotency_table(broker))["Items"]
    assert len(items) == 2
    raw = json.dumps(items)
    for secret in (first.body["sfdxAuthUrl"], first.body["password"], again.body["accessToken"]):
        assert secret not in raw
    assert first.body["scratchOrgInfoId"] in raw


def test_a_key_whose_org_was_returned_is_a_conflict_not_a_new_org(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 2)
    first = fetch(broker, key="k-1")
    returned = broker.call(
        "DELETE",
        "/pools/{tag}/orgs/{username}",
        path_params={**CI, "username": first.body["username"]},
        iam_arn=FETCHER,
    )
    assert returned.status == 204
    again = fetch(broker, key="k-1")
    assert (again.status, again.error) == (409, "conflict")
    assert salesforce.counts["sobjects/patch"] == 1


def test_orgs_with_unusable_auth_urls_are_skipped_and_never_tried_again(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    undefined, offsite, missing, garbage, good = make_pool(salesforce, 5)
    set_row(
        salesforce,
        undefined.info_id,
        SfdxAuthUrl__c=f"force://A:B:undefined@{salesforce.state.host}",
    )
    set_row(
        salesforce, offsite.info_id, SfdxAuthUrl__c="force://PlatformCLI::5Aep1@evil.example.com"
    )
    set_row(salesforce, missing.info_id, SfdxAuthUrl__c=None)
    set_row(salesforce, garbage.info_id, SfdxAuthUrl__c="not an auth url")

    def skipped() -> list[str]:
        return [
            r.__dict__["scratchOrgInfoId"]
            for r in caplog.records
            if r.getMessage().startswith("pool org skipped")
        ]

    answer = fetch(broker)
    assert (answer.status, answer.body["username"]) == (200, good.user.username)
    again = fetch(broker)
    assert (again.status, again.error) == (409, "pool_empty")
    # Each unusable org was looked at once (fetchers try the pool in random orders).
    assert sorted(skipped()) == sorted(o.info_id for o in (undefined, offsite, missing, garbage))
    caplog.clear()
    assert fetch(broker).error == "pool_empty"
    assert skipped() == []
    assert salesforce.counts["sobjects/patch"] == 1
    assert allocation(salesforce)[undefined.user.username] == "Available"


def test_pool_tags_are_validated_before_any_soql(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    salesforce.reset_counts()
    for tag in ("ci' OR Pooltag__c != '", "a b", "-x", "x" * 81):
        answer = broker.call("POST", "/pools/{tag}/fetch", path_params={"tag": tag})
        assert (answer.status, answer.error) == (400, "invalid_request"), tag
    assert salesforce.counts["query"] == 0


def test_a_named_dev_hub_must_be_a_registered_dev_hub(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str, acme: str
) -> None:
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    answer = fetch(broker, devHubUsername="admin@acme.com")
    assert (answer.status, answer.error) == (422, "not_a_dev_hub")
    answer = fetch(broker, devHubUsername="nobody@acme.com")
    assert (answer.status, answer.error) == (404, "org_not_found")


def test_the_pool_functions_refresh_the_dev_hub_token_when_its_cache_is_gone(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 1)
    for method, path in (
        ("GET", "/pools/{tag}"),
        ("POST", "/pools/{tag}/fetch"),
        ("POST", "/pools/{tag}/cleanup"),
    ):
        drop_cached_token(broker, HUB)
        salesforce.reset_counts()
        answer = broker.call(method, path, path_params=CI, iam_arn=FETCHER)
        assert answer.status == 200, (path, answer.body)
        assert salesforce.counts["oauth2/token"] == 1, path


# ---------------------------------------------------------------- faults mid-fetch


def test_a_failed_claim_patch_releases_the_lease_and_takes_the_next_org(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 2)
    # Every attempt (the first and the client's retries) of the first patch fails.
    salesforce.faults.add(kind="http_500", endpoint="sobjects/patch", times=3)
    answer = fetch(broker)
    assert answer.status == 200, answer.body
    assert sorted(allocation(salesforce).values()) == ["Assigned", "Available"]
    assert allocation(salesforce)[answer.body["username"]] == "Assigned"
    assert set(leases(broker)) == {answer.body["username"]}
    assert salesforce.counts["sobjects/patch"] == 4
    assert_consistent(broker, salesforce)


def test_a_dev_hub_that_keeps_failing_leaves_no_lease_and_no_assignment(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 5)
    salesforce.faults.add(kind="http_503", endpoint="sobjects/patch", times=None)
    answer = fetch(broker)
    assert (answer.status, answer.error) == (502, "salesforce_error")
    assert leases(broker) == {}
    assert set(allocation(salesforce).values()) == {"Available"}
    # Bounded: two orgs tried (three attempts each), not the whole pool.
    assert salesforce.counts["sobjects/patch"] == 6


def test_cleanup_repairs_what_a_fetcher_that_died_mid_fetch_left(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    leased_only, assigned_only = make_pool(salesforce, 2)
    # Died after its lease, before its patch: a lease without an assignment.
    broker.dynamodb.put_item(
        TableName=broker.table_name,
        Item={
            "PK": {"S": "POOL#ci"},
            "SK": {"S": f"LEASE#{leased_only.info_id}"},
            "GSI1PK": {"S": "POOLLEASE"},
            "GSI1SK": {"S": f"ci#{leased_only.info_id}"},
            "tag": {"S": "ci"},
            "scratchOrgInfoId": {"S": leased_only.info_id},
            "username": {"S": leased_only.user.username},
            "devHubUsername": {"S": HUB},
            "status": {"S": "claimed"},
            "leasedAt": {"S": long_ago.isoformat()},
            "fetchedBy": {"S": FETCHER},
            "ttl": {"N": str(int((long_ago + timedelta(days=8)).timestamp()))},
        },
    )
    # Its patch landed but the answer was lost, so the lease was given back.
    set_row(salesforce, assigned_only.info_id, Allocation_status__c="Assigned")
    set_row(salesforce, assigned_only.info_id, LastModifiedDate=long_ago)
    report = clean(broker, dryRun=False)
    assert report.status == 200, report.body
    assert report.body["counts"] == {"assigned_without_lease": 1, "lease_without_assignment": 1}
    assert leases(broker) == {}
    assert allocation(salesforce) == {leased_only.user.username: "Available"}
    assert_consistent(broker, salesforce)
    # The repaired org can be fetched again.
    assert fetch(broker).body["username"] == leased_only.user.username


# ---------------------------------------------------------------- return


def test_the_fetcher_returns_its_org_and_it_is_deleted_on_the_dev_hub(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    (org,) = make_pool(salesforce, 1)
    fetched = fetch(broker)
    path = {**CI, "username": fetched.body["username"]}
    other = broker.call("DELETE", "/pools/{tag}/orgs/{username}", path_params=path, iam_arn=None)
    assert other.status == 401
    answer = broker.call(
        "DELETE", "/pools/{tag}/orgs/{username}", path_params=path, iam_arn=FETCHER
    )
    assert answer.status == 204, answer.body
    row = salesforce.state.dev_hub_records[org.info_id[:15]].fields
    assert row["Status"] == "Deleted"
    assert org.active_id is not None
    assert org.active_id[:15] not in salesforce.state.dev_hub_records
    assert leases(broker)[org.user.username]["status"]["S"] == "returned"
    again = broker.call("DELETE", "/pools/{tag}/orgs/{username}", path_params=path, iam_arn=FETCHER)
    assert (again.status, again.error) == (404, "not_found")


def test_only_the_fetcher_or_pools_admin_may_return_an_org(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 1)
    api = TokenApi(broker)
    orgs = ("pool:ci", HUB)
    _, fetcher = create_token(scopes=("pools:fetch",), orgs=orgs)
    _, colleague = create_token(scopes=("pools:fetch",), orgs=orgs)
    _, admin = create_token(scopes=("pools:fetch", "pools:admin"), orgs=orgs)
    fetched = api.call("POST", "/pools/{tag}/fetch", authorization=bearer(fetcher), path_params=CI)
    assert fetched.status == 200, fetched.body
    path = {**CI, "username": fetched.body["username"]}
    refused = api.call(
        "DELETE", "/pools/{tag}/orgs/{username}", authorization=bearer(colleague), path_params=path
    )
    assert (refused.status, refused.error) == (403, "forbidden")
    assert salesforce.counts["sobjects/delete"] == 0
    allowed = api.call(
        "DELETE", "/pools/{tag}/orgs/{username}", authorization=bearer(admin), path_params=path
    )
    assert allowed.status == 204


def test_a_token_must_cover_the_dev_hub_as_well_as_the_pool(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 1)
    api = TokenApi(broker)
    _, pool_only = create_token(scopes=("pools:fetch", "pools:read"), orgs=("pool:ci",))
    for method, path in (("POST", "/pools/{tag}/fetch"), ("GET", "/pools/{tag}")):
        answer = api.call(method, path, authorization=bearer(pool_only), path_params=CI)
        assert (answer.status, answer.error) == (403, "forbidden"), path
    assert salesforce.counts["sobjects/patch"] == 0


# ---------------------------------------------------------------- counts


def test_pool_counts_by_status_without_secrets(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    make_pool(salesforce, 3)
    make_pool(salesforce, 1, allocation_status="In Progress")
    make_pool(salesforce, 2, allocation_status="Assigned")
    make_pool(salesforce, 4, tag="other")
    answer = broker.call("GET", "/pools/{tag}", path_params=CI, query={"devHubUsername": HUB})
    assert answer.status == 200, answer.body
    assert answer.body == {
        "tag": "ci",
        "devHubUsername": HUB,
        "available": 3,
        "inProgress": 1,
        "assigned": 2,
        "total": 6,
    }


# ---------------------------------------------------------------- cleanup


def clean(broker: Broker, **body: Any) -> Answer:
    return broker.call("POST", "/pools/{tag}/cleanup", path_params=CI, json_body=body)


@pytest.fixture
def untidy_pool(broker: Broker, salesforce: FakeSalesforceServer, hub: str) -> dict[str, str]:
    """One org or lease per cleanup reason, plus healthy ones; reason → username."""
    now = salesforce.state.now()
    (expired,) = make_pool(salesforce, 1, expiration_date=(now - timedelta(days=1)).date())
    stuck, fresh_prepare = (
        salesforce.state.create_scratch_org(
            HUB, pool_tag="ci", allocation_status="In Progress", created_date=now - age
        )
        for age in (timedelta(hours=5), timedelta(minutes=5))
    )
    (orphan,) = make_pool(
        salesforce, 1, allocation_status="Assigned", created_date=now - timedelta(hours=2)
    )
    healthy = make_pool(salesforce, 2)
    fetched = fetch(broker)  # assigned, with its lease: not a candidate
    assert fetched.status == 200
    gone = fetch(broker)
    # Its org vanished on the Dev Hub (deleted by hand): the lease is stale.
    hub_org = salesforce.state.org_of(salesforce.state.user(HUB))
    gone_row = next(
        r
        for r in salesforce.state.rows(SCRATCH_ORG_INFO, hub_org)
        if r["SignupUsername"] == gone.body["username"]
    )
    assert salesforce.state.delete_row(SCRATCH_ORG_INFO, hub_org, str(gone_row["Id"]))
    del healthy, fresh_prepare
    return {
        "expired": expired.user.username,
        "stuck_in_progress": stuck.user.username,
        "assigned_without_lease": orphan.user.username,
        "lease_without_org": gone.body["username"],
    }


def test_a_dry_run_lists_exactly_what_the_real_run_then_does(
    broker: Broker, salesforce: FakeSalesforceServer, untidy_pool: dict[str, str]
) -> None:
    dry = clean(broker, dryRun=True)
    assert dry.status == 200, dry.body
    assert salesforce.counts["sobjects/delete"] == 0
    planned = {c["reason"]: c["username"] for c in dry.body["candidates"]}
    assert planned == untidy_pool
    real = clean(broker, dryRun=False)
    assert real.status == 200, real.body
    assert real.body["candidates"] == dry.body["candidates"]
    assert real.body["counts"] == dry.body["counts"]
    assert (real.body["errors"], real.body["dryRun"], dry.body["dryRun"]) == ([], False, True)
    active = allocation(salesforce)
    for reason in ("expired", "stuck_in_progress", "assigned_without_lease"):
        assert untidy_pool[reason] not in active, reason
    assert untidy_pool["lease_without_org"] not in leases(broker)
    assert_consistent(broker, salesforce)
    # Nothing is left to do.
    assert clean(broker, dryRun=True).body["candidates"] == []


def test_cleanup_deletes_at_most_the_cap_per_run_and_the_rest_next_time(
    broker: Broker, salesforce: FakeSalesforceServer, untidy_pool: dict[str, str]
) -> None:
    first = clean(broker, dryRun=False, maxDeletions=1)
    assert first.body["overCap"] == 2
    # The oldest org first: the prepare that died five hours ago.
    assert first.body["counts"] == {"stuck_in_progress": 1, "lease_without_org": 1}
    second = clean(broker, dryRun=False, maxDeletions=5)
    assert second.body["counts"] == {"expired": 1, "assigned_without_lease": 1}
    assert second.body["overCap"] == 0


def test_an_empty_pool_and_an_already_deleted_org_are_not_errors(
    broker: Broker, salesforce: FakeSalesforceServer, hub: str
) -> None:
    assert clean(broker, dryRun=False).body["candidates"] == []
    (expired,) = make_pool(
        salesforce, 1, expiration_date=(salesforce.state.now() - timedelta(days=1)).date()
    )
    hub_org = salesforce.state.org_of(salesforce.state.user(HUB))
    assert expired.active_id is not None
    # Deleted meanwhile: its ActiveScratchOrg row is gone, its info row still says Active.
    del salesforce.state.dev_hub_records[expired.active_id[:15]]
    report = clean(broker, dryRun=False)
    assert report.status == 200
    assert (report.body["counts"], report.body["errors"]) == ({"expired": 1}, [])
    assert hub_org is not None


def test_the_scheduled_event_runs_the_cleanup_through_the_handler(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    untidy_pool: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = next(s for s in sam.functions(broker.template) if s.logical_id == "PoolCleanupFunction")
    (schedule,) = [e for e in spec_events(broker, spec.logical_id) if e["Type"] == "Schedule"]
    assert schedule["Properties"]["Schedule"] == {"Ref": "PoolCleanupSchedule"}
    capsys.readouterr()
    caplog.clear()
    result = invoke(
        spec.code_uri, spec.handler, load_event("schedule/pool-cleanup.json"), spec.logical_id
    )
    assert result["dryRun"] is False  # the template's default
    assert result["tag"] is None
    assert {c["reason"]: c["username"] for c in result["candidates"]} == untidy_pool
    # One report line, and the metrics of the run.
    reports = [r.__dict__ for r in caplog.records if r.getMessage() == "pool cleanup report"]
    assert len(reports) == 1
    assert reports[0]["counts"] == result["counts"]
    assert '"PoolCleanup_expired"' in capsys.readouterr().out
    assert untidy_pool["expired"] not in allocation(salesforce)


def spec_events(broker: Broker, logical_id: str) -> list[dict[str, Any]]:
    return list(broker.template["Resources"][logical_id]["Properties"]["Events"].values())


# ---------------------------------------------------------------- secrets


def test_no_credential_reaches_logs_audit_or_errors(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    hub: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    make_pool(salesforce, 3)
    first = fetch(broker, key="secret-scan")
    token = fetch(broker, format="accessToken")
    salesforce.faults.add(kind="http_500", endpoint="sobjects/patch", times=None)
    failed = fetch(broker)
    assert (failed.status, failed.error) == (502, "salesforce_error")
    secrets = [
        first.body["sfdxAuthUrl"],
        first.body["password"],
        token.body["accessToken"],
        token.body["password"],
    ]
    captured = capfd.readouterr()
    logs = "\n".join(
        [captured.out, captured.err, *(r.getMessage() + repr(r.__dict__) for r in caplog.records)]
    )
    assert "PoolFetch" in logs  # the logs were captured
    audit = broker.call("GET", "/audit").raw or ""
    assert '"pool.fetch"' in audit
    for secret in secrets:
        assert secret not in logs
        assert secret not in audit
        assert secret not in (failed.raw or "")
        assert secret not in json.dumps(broker.table_items())
