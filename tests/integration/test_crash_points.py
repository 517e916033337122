"""Crash points and conditional-check races of the multi-step write paths.

Crash points: the function dies before its k-th write to the table, for every k of the
path (registration; refresh with and without rotation; re-registration; deletion). The
death is made with botocore's event system on the function's own clients: from that
write on, every AWS call of the dying container raises `Killed` (a BaseException, which
nothing in the broker catches: `finally` blocks get no further AWS call through, as after
a real kill). The next request, from a fresh container, must converge: the org usable
with its credential, or (one documented case) consistently invalid.

Races: just before the broker's conditional write, another writer changes the same item
in the real table (`CompetingWrite`); the broker must answer as API.md says and leave the
other writer's data in place. Both run on moto and DynamoDB Local.

Also the pool fetch with an Idempotency-Key (in-progress record, lease, patch, completed
record: killed before and just after each write) and the release of an environment's
lease with a waiter (release, end of hold, promotion of the next ticket).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
from sfbroker import runtime

from local.fake_salesforce import FakeSalesforceServer
from tests.support.aws_faults import WRITES, CompetingWrite
from tests.support.broker import Answer, Broker, drop_cached_token
from tests.support.pools import (
    assert_consistent,
    assigned,
    claimed,
    idempotency_table,
    leases,
    make_pool,
    register_hub,
)
from tests.support.run_summary import report

# A dead holder's refresh lease expires quickly (it must outlive the request budget).
BUDGET_SECONDS: Final = 2
LOCK_SECONDS: Final = 3
CRASHES: Final[dict[str, int]] = {}


class Killed(BaseException):
    """The function's container died here."""


@dataclass
class KillSwitch:
    """Kill the container before its `at`-th write of org data (audit writes aside), or,
    with `after`, as soon as that write is made (before anything else happens)."""

    at: int
    after: bool = False
    writes: int = 0
    killed: bool = False

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call", self)
        client.meta.events.register("after-call", self.written)

    def __call__(
        self, event_name: str, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if self.killed:
            raise Killed
        operation = event_name.rsplit(".", 1)[-1]
        if operation not in WRITES or b"AUDIT#" in (params.get("body") or b""):
            return
        if self.writes == self.at:
            if not self.after:
                self.killed = True
                raise Killed
            context["kill_switch"] = True
        self.writes += 1

    def written(self, context: dict[str, Any], **_: Any) -> None:
        if context.get("kill_switch"):
            self.killed = True
            raise Killed


@pytest.fixture(scope="module", autouse=True)
def _crash_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if CRASHES:
        report(
            request.config,
            "crash points: "
            + ", ".join(f"{path} {n} kill points" for path, n in sorted(CRASHES.items())),
        )


@pytest.fixture
def short_lease(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> Broker:
    monkeypatch.setenv("REQUEST_BUDGET_SECONDS", str(BUDGET_SECONDS))
    monkeypatch.setenv("REFRESH_LOCK_SECONDS", str(LOCK_SECONDS))
    runtime.reset()
    broker.watch_aws()
    return broker


def fresh_container(broker: Broker) -> None:
    runtime.reset()
    broker.watch_aws()


def killed_at(
    broker: Broker, at: int, request: Callable[[], Answer], *, after: bool = False
) -> KillSwitch:
    """Run `request` in a container that dies before its `at`-th write (or after it)."""
    fresh_container(broker)
    switch = KillSwitch(at, after)
    for client in (runtime.dynamodb(), runtime.kms()):
        switch.attach(client)
    with contextlib.suppress(Killed):
        request()
    fresh_container(broker)  # the next request: another container
    return switch


def register(broker: Broker, auth_url: str) -> Answer:
    return broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url})


def issue(broker: Broker, username: str, *, refresh: bool = False) -> Answer:
    """A token request; with `refresh`, the cached token is dropped first."""
    if refresh:
        drop_cached_token(broker, username)
    return broker.call("POST", "/orgs/{username}/token", path_params={"username": username})


def converged(request: Callable[[], Answer]) -> Answer:
    """The answer once a dead holder's lease has run out: while it lives, a request
    waits for it and answers 503 (or 504, its budget spent) without refreshing."""
    for _ in range(LOCK_SECONDS + 2):
        answer = request()
        if answer.status not in (503, 504):
            return answer
        time.sleep(1)
    raise AssertionError(f"no convergence: {answer.body}")


def every_kill_point(path: str, run: Callable[[int, str], KillSwitch]) -> list[int]:
    """Run `run(k, username)` for k = 0, 1, … until the path completes without dying;
    returns the kill points taken."""
    points: list[int] = []
    for at in range(20):
        switch = run(at, f"user{at}@{path.replace(' ', '-')}.example.com")
        if not switch.killed:
            CRASHES[path] = len(points)
            return points
        points.append(at)
    raise AssertionError(f"{path}: more than 20 writes")


def test_registration_converges_after_a_crash_at_each_write(
    short_lease: Broker, salesforce: FakeSalesforceServer
) -> None:
    broker = short_lease

    def run(at: int, username: str) -> KillSwitch:
        salesforce.state.create_production_org(username)
        auth_url = salesforce.state.mint_auth_url(username)
        switch = killed_at(broker, at, lambda: register(broker, auth_url))
        token = issue(broker, username)
        if at == 0:  # nothing was stored: the caller registers again
            assert token.error == "org_not_found"
            assert register(broker, auth_url).status == 201
            token = issue(broker, username)
        assert token.status == 200, (at, token.body)
        return switch

    assert every_kill_point("registration", run) == [0, 1]


@pytest.mark.parametrize("rotation", [False, True], ids=["no-rotation", "rotation"])
def test_a_refresh_converges_after_a_crash_at_each_write(
    short_lease: Broker, salesforce: FakeSalesforceServer, rotation: bool
) -> None:
    broker = short_lease
    lost: list[int] = []

    def run(at: int, username: str) -> KillSwitch:
        salesforce.state.create_production_org(username)
        salesforce.state.set_refresh_token_rotation(username, rotation)
        assert register(broker, salesforce.state.mint_auth_url(username)).status == 201
        switch = killed_at(broker, at, lambda: issue(broker, username, refresh=True))
        # The dead holder's lease expires; then a refresh uses the stored credential.
        answer = converged(lambda: issue(broker, username, refresh=True))
        if answer.status == 409:
            assert answer.error == "org_credentials_invalid"
            org = broker.call("GET", "/orgs/{username}", path_params={"username": username})
            assert org.body["status"] == "invalid"  # consistently: re-register
            lost.append(at)
        else:
            assert (answer.status, answer.body["source"]) == (200, "refresh"), (at, answer.body)
        return switch

    path = f"refresh{' + rotation' if rotation else ''}"
    # Writes: take the lease, [persist the rotated credential], cache the token, free the lease.
    assert every_kill_point(path, run) == ([0, 1, 2, 3] if rotation else [0, 1, 2])
    # With rotation, Salesforce revokes the old refresh token when it answers: a death
    # between that answer and the write persisting the new one loses the credential
    # (docs/security.md, residual risks). At every other point nothing is lost.
    assert lost == ([1] if rotation else [])


def test_a_deletion_converges_after_a_crash_at_each_write(
    short_lease: Broker, salesforce: FakeSalesforceServer
) -> None:
    broker = short_lease

    def run(at: int, username: str) -> KillSwitch:
        salesforce.state.create_production_org(username)
        assert register(broker, salesforce.state.mint_auth_url(username)).status == 201
        params = {"username": username}
        switch = killed_at(
            broker, at, lambda: broker.call("DELETE", "/orgs/{username}", path_params=params)
        )
        if at == 0:  # nothing happened: the caller deletes again
            assert broker.call("DELETE", "/orgs/{username}", path_params=params).status == 204
        # Deleted, and its cached token (if the crash left it) is never served.
        assert issue(broker, username).error == "org_not_found"
        assert broker.call("GET", "/orgs/{username}", path_params=params).status == 404
        return switch

    # Writes: the org, its cached token, its refresh lease.
    assert every_kill_point("deletion", run) == [0, 1, 2]


# --- Pools: claim + patch ------------------------------------------------------------------


def expire_in_progress_records(broker: Broker) -> None:
    """The dead invocation's time is up: its in-progress idempotency records expire (what
    Powertools reads as `in_progress_expiration`, the Lambda context's deadline)."""
    table = idempotency_table(broker)
    for item in broker.dynamodb.scan(TableName=table)["Items"]:
        if item["status"]["S"] == "INPROGRESS":
            broker.dynamodb.update_item(
                TableName=table,
                Key={"id": item["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": {"N": "0"}},
            )


def test_a_pool_fetch_with_a_key_converges_after_a_crash_at_each_write(
    short_lease: Broker, salesforce: FakeSalesforceServer
) -> None:
    """Writes of a fetch with an Idempotency-Key: its in-progress record, the lease,
    (the patch on the Dev Hub), its completed record. The function dies before or just
    after each; the caller's retry with the same key gets the org the dead call leased,
    or one nobody holds, and in the end every claimed lease is an org some caller got."""
    broker = short_lease
    register_hub(broker, salesforce)
    make_pool(salesforce, 12)
    handed_out: list[str] = []
    points: list[tuple[int, bool]] = []

    def fetch(key: str) -> Answer:
        return broker.call(
            "POST",
            "/pools/{tag}/fetch",
            path_params={"tag": "ci"},
            headers={"Idempotency-Key": key},
        )

    for at in range(10):
        for after in (False, True):
            key = f"run-{at}-{after}"
            switch = killed_at(broker, at, lambda: fetch(key), after=after)  # noqa: B023
            if not switch.killed:
                break
            points.append((at, after))
            dead = {
                u for u, item in leases(broker).items() if item["idempotencyKey"].get("S") == key
            }
            # No lease without its org Assigned but the dead call's own (it may have died
            # before its patch), and nothing Assigned without a lease.
            assert claimed(broker) - dead <= assigned(salesforce) <= claimed(broker)
            expire_in_progress_records(broker)
            answer = fetch(key)
            assert answer.status == 200, ((at, after), answer.body)
            assert dead <= {answer.body["username"]}, (at, after)  # the same org, if any
            handed_out.append(answer.body["username"])
            assert_consistent(broker, salesforce)
            assert claimed(broker) == set(handed_out), (at, after)  # none lost
        else:
            continue
        break
    CRASHES["pool fetch with a key"] = len(points)
    assert len(handed_out) == len(set(handed_out))  # no org handed out twice
    # In-progress record, lease, completed record: before and just after each.
    assert points == [(0, False), (0, True), (1, False), (1, True), (2, False), (2, True)]


# --- Environments: lease promotion -----------------------------------------------------------

REPO: Final = {"repository": "acme/app"}
UAT: Final = {"name": "UAT"}


def test_a_lease_release_converges_after_a_crash_at_each_write(
    short_lease: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    """Releasing the held lease with one waiting: the release is written, the hold ended,
    the hold given to the next ticket. Killed before each write, the holder's retry and
    the waiter's poll converge: the waiter holds the environment, alone."""
    broker = short_lease
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    environment = {**REPO, "name": "UAT", "category": "test", "username": USER}
    assert broker.call("POST", "/environments", json_body=environment).status == 201

    def lease_call(method: str, lease_id: str) -> Answer:
        return broker.call(
            method,
            "/environments/{name}/leases/{leaseId}",
            path_params={**UAT, "leaseId": lease_id},
            query=REPO,
        )

    def take() -> str:
        answer = broker.call(
            "POST",
            "/environments/{name}/leases",
            path_params=UAT,
            query=REPO,
            json_body={"ttlSeconds": 600, "wait": True},
        )
        assert answer.status == 201, answer.body
        return str(answer.body["leaseId"])

    points: list[int] = []
    holder = take()
    for at in range(10):
        waiter = take()
        assert lease_call("GET", waiter).body["status"] == "queued"
        switch = killed_at(broker, at, lambda: lease_call("DELETE", holder))  # noqa: B023
        if not switch.killed:
            assert lease_call("GET", waiter).body["status"] == "acquired"
            break
        points.append(at)
        released = lease_call("DELETE", holder)  # the holder's retry
        assert (released.status, released.body["status"]) == (200, "released"), released.body
        polled = lease_call("GET", waiter)
        assert (polled.status, polled.body["status"]) == (200, "acquired"), (at, polled.body)
        holder = waiter
    CRASHES["lease release"] = len(points)
    # The release, the end of the hold, the hold given to the next ticket.
    assert points == [0, 1, 2]


# --- Races --------------------------------------------------------------------------------

USER: Final = "admin@acme.com"
META: Final = {"PK": {"S": f"ORG#{USER}"}, "SK": {"S": "META"}}


def bump_version(broker: Broker, marker: str) -> Callable[[], None]:
    """Another writer's re-registration: a new version (and alias) of the org."""

    def compete() -> None:
        broker.dynamodb.update_item(
            TableName=broker.table_name,
            Key=META,
            UpdateExpression="SET version = version + :one, alias = :m",
            ExpressionAttributeValues={":one": {"N": "1"}, ":m": {"S": marker}},
        )

    return compete


def race(broker: Broker, operation: str, key: dict[str, Any], compete: Callable[[], None]) -> None:
    CompetingWrite(operation, key, compete).attach(runtime.dynamodb())


def test_two_first_registrations_race_one_wins_the_other_gets_409(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    winner: dict[tuple[str, str], dict[str, Any]] = {}

    def compete() -> None:
        # The other registration's item lands first (its copy of ours, alias "winner").
        assert broker.table_items() == []
        broker.dynamodb.put_item(
            TableName=broker.table_name,
            Item={**META, "alias": {"S": "winner"}, "version": {"N": "1"}},
        )
        winner.update(broker.snapshot())

    race(broker, "PutItem", META, compete)
    answer = broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme})
    assert (answer.status, answer.error) == (409, "conflict")
    assert broker.snapshot() == winner  # ours wrote nothing, not even the token


def test_a_rotation_persisted_over_a_reregistration_keeps_the_new_registration(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    salesforce.state.set_refresh_token_rotation(USER)
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    stored = broker.snapshot()[(f"ORG#{USER}", "META")]
    race(broker, "UpdateItem", META, bump_version(broker, "re-registered"))
    answer = issue(broker, USER, refresh=True)
    assert answer.status == 200  # the token is good; the rotated credential is superseded
    after = broker.snapshot()[(f"ORG#{USER}", "META")]
    assert after["alias"] == {"S": "re-registered"}
    assert after["authUrl"] == stored["authUrl"]  # the other writer's, untouched


def test_marking_invalid_over_a_reregistration_leaves_the_org_active(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    salesforce.faults.add(kind="invalid_grant", endpoint="token")
    race(broker, "UpdateItem", META, bump_version(broker, "re-registered"))
    answer = issue(broker, USER, refresh=True)
    assert (answer.status, answer.error) == (409, "conflict")
    meta = broker.snapshot()[(f"ORG#{USER}", "META")]
    assert (meta["status"], meta["alias"]) == ({"S": "active"}, {"S": "re-registered"})


def test_a_lease_taken_by_another_refresher_is_waited_for(
    short_lease: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    broker = short_lease
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    lease = {"PK": {"S": f"ORG#{USER}"}, "SK": {"S": "REFRESH"}}

    def compete() -> None:  # a refresher that then dies holding the lease
        broker.dynamodb.put_item(
            TableName=broker.table_name,
            Item={**lease, "holder": {"S": "other"}, "ttl": {"N": "9999999999"}},
        )

    race(broker, "PutItem", lease, compete)
    salesforce.reset_counts()
    answer = issue(broker, USER, refresh=True)
    # The live lease is another's: no refresh of ours, 503 once its time is up.
    assert (answer.status, answer.error) == (503, "dependency_unavailable")
    assert salesforce.counts["oauth2/token"] == 0


def test_a_deletion_racing_another_deletion_answers_404(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str
) -> None:
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201

    def compete() -> None:
        broker.dynamodb.delete_item(TableName=broker.table_name, Key=META)

    race(broker, "DeleteItem", META, compete)
    answer = broker.call("DELETE", "/orgs/{username}", path_params={"username": USER})
    assert (answer.status, answer.error) == (404, "org_not_found")
