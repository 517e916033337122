"""Fault injection: every route that touches Salesforce, KMS or DynamoDB, under each way
they fail, answers API.md's status and code, and a failed write path leaves the table as
it was (`Broker.snapshot()` before and after; the audit trail is not org data).

Salesforce faults come from the fake (it speaks the real error wire format: 5xx, 429,
stalls, `invalid_grant`, truncated JSON, an HTML maintenance page, dropped connections);
AWS faults from botocore's event system on the broker's own clients
(`tests/support/aws_faults.py`). Runs on moto: the faults are injected in front of the
database, so which database serves the rest changes nothing here (the race suite,
`test_crash_points.py`, runs on both).

`ROUTES` has one valid request per route of template.yaml; a test fails when a route
has none, so a new route joins the AWS fault matrix by adding its request here.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import pytest
from sfbroker import runtime
from sfbroker.services.pools import MAX_FAILED_CLAIMS

from local import template as sam
from local.fake_salesforce import FakeSalesforceServer
from local.fake_salesforce.endpoints import canonical_endpoint
from local.fake_salesforce.schema import SCRATCH_ORG_INFO
from tests.support.aws_faults import (
    AWS_ATTEMPTS,
    WRITES,
    AwsFault,
    AwsFaultKind,
    retry_without_pauses,
)
from tests.support.broker import Answer, Broker, drop_cached_token
from tests.support.pools import (
    HUB,
    active_rows,
    age_rows,
    assert_consistent,
    assert_consistent_but_for_deleted_orgs,
    assigned,
    claimed,
    idempotency_table,
    make_pool,
    register_hub,
)
from tests.support.run_summary import report

USERNAME: Final = "admin@acme.com"
USER: Final = {"username": USERNAME}
# Short Salesforce timeout so a stall costs little; the fake stalls longer than it.
TIMEOUT_SECONDS: Final = 0.5
STALL_SECONDS: Final = 1.5
MAX_RETRIES: Final = 2

FAULTS_INJECTED: Final = Counter[str]()


@pytest.fixture
def database_endpoint() -> None:
    """moto only (see the module's docstring)."""
    return


@pytest.fixture(scope="module", autouse=True)
def _fault_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if FAULTS_INJECTED:
        report(
            request.config,
            f"faults: {FAULTS_INJECTED.total()} cases, "
            + ", ".join(f"{k} {n}" for k, n in sorted(FAULTS_INJECTED.items())),
        )


@pytest.fixture
def fast_salesforce(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> Broker:
    monkeypatch.setenv("SALESFORCE_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))
    monkeypatch.setenv("SALESFORCE_MAX_RETRIES", str(MAX_RETRIES))
    runtime.reset()
    broker.watch_aws()
    return broker


def register(broker: Broker, auth_url: str) -> Answer:
    return broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url})


def issue(broker: Broker) -> Answer:
    """A token request that refreshes: the cached token is dropped first."""
    drop_cached_token(broker, USERNAME)
    return broker.call("POST", "/orgs/{username}/token", path_params=USER)


# --- Salesforce -------------------------------------------------------------------------

# What each fault becomes, wherever it hits (API.md): Salesforce failing or answering
# garbage is 502, Salesforce not answering in time is 504.
SALESFORCE_FAULTS: Final = {
    "http_500": (502, "salesforce_error"),
    "http_503": (502, "salesforce_error"),
    "http_429": (502, "salesforce_error"),
    "html_error": (502, "salesforce_error"),
    "malformed_json": (502, "salesforce_error"),
    "connection_reset": (502, "salesforce_error"),
    "timeout": (504, "salesforce_timeout"),
    "invalid_grant": (502, "salesforce_error"),  # on REST calls: a 401 INVALID_SESSION_ID
}
# The registration's Salesforce calls, in order (SALESFORCE.md).
REGISTRATION_CALLS: Final = ("token", "userinfo", "query", "describe")
REGISTRATION_CASES: Final = [
    pytest.param(endpoint, kind, again, id=f"{endpoint}-{kind}{'-again' if again else ''}")
    for endpoint in REGISTRATION_CALLS
    for kind in SALESFORCE_FAULTS
    if endpoint == "token" or kind in {"http_503", "html_error", "malformed_json", "timeout"}
    for again in (False, True)
    if not again or endpoint == "describe"  # the last call before the first write
]


def arm(salesforce: FakeSalesforceServer, endpoint: str, kind: str) -> None:
    """Until cleared: every retry meets the fault too."""
    FAULTS_INJECTED[f"salesforce {kind}"] += 1
    salesforce.faults.add(kind=kind, endpoint=endpoint, times=None, seconds=STALL_SECONDS)


@pytest.mark.parametrize(("endpoint", "kind", "again"), REGISTRATION_CASES)
def test_a_registration_salesforce_fails_stores_nothing(
    fast_salesforce: Broker,
    salesforce: FakeSalesforceServer,
    acme: str,
    endpoint: str,
    kind: str,
    again: bool,
) -> None:
    broker = fast_salesforce
    if again:
        assert register(broker, acme).status == 201
    before = broker.snapshot()
    salesforce.reset_counts()
    arm(salesforce, endpoint, kind)
    answer = register(broker, salesforce.state.mint_auth_url(USERNAME))
    salesforce.faults.clear()
    expected = (
        (400, "invalid_auth_url")
        if (endpoint, kind) == ("token", "invalid_grant")
        else SALESFORCE_FAULTS[kind]
    )
    assert (answer.status, answer.error) == expected, answer.body
    assert broker.snapshot() == before
    # Retries are bounded: one try plus SALESFORCE_MAX_RETRIES, per call.
    assert max(salesforce.counts.values()) <= 1 + MAX_RETRIES


@pytest.mark.parametrize("kind", list(SALESFORCE_FAULTS))
def test_a_refresh_salesforce_fails_changes_nothing_but_what_api_md_says(
    fast_salesforce: Broker, salesforce: FakeSalesforceServer, acme: str, kind: str
) -> None:
    broker = fast_salesforce
    assert register(broker, acme).status == 201
    drop_cached_token(broker, USERNAME)
    before = broker.snapshot()
    salesforce.reset_counts()
    arm(salesforce, "token", kind)
    answer = issue(broker)
    salesforce.faults.clear()
    assert salesforce.counts["oauth2/token"] <= 1 + MAX_RETRIES
    if kind == "invalid_grant":
        # The one failure that is a fact about the credential: the org is marked invalid
        # and its cached token dropped; nothing else changes.
        assert (answer.status, answer.error) == (409, "org_credentials_invalid")
        after = broker.snapshot()
        meta = ("ORG#admin@acme.com", "META")
        assert after[meta]["status"] == {"S": "invalid"}
        assert set(after) == set(before)
        return
    assert (answer.status, answer.error) == SALESFORCE_FAULTS[kind], answer.body
    assert broker.snapshot() == before
    recovered = issue(broker)  # the credential survived the outage
    assert (recovered.status, recovered.body["source"]) == (200, "refresh")


# --- AWS --------------------------------------------------------------------------------


SANDBOX: Final = f"{USERNAME}.uat"
REPO: Final = {"repository": "acme/app"}
UAT: Final = {"name": "UAT"}
DISPOSABLE: Final = "ops@globex.com"  # an org nothing points at: DELETE may remove it
CI: Final = {"tag": "ci"}


@dataclass
class World:
    """Something for every route to act on: a production org with its JIT sandbox `uat`
    (and `qa`, not yet registered), an environment `UAT` with a lease (`lease_id`), an
    API token (`token_id`), an org nothing points at, and the default Dev Hub's pool `ci`
    with Available orgs, one org fetched (`fetched`) and one whose org vanished (work for
    the cleanup)."""

    broker: Broker
    salesforce: FakeSalesforceServer
    token_id: str = ""
    lease_id: str = ""
    fetched: str = ""


DYNAMODB: Final = frozenset({"dynamodb"})
BOTH: Final = frozenset({"dynamodb", "kms"})


@dataclass(frozen=True)
class RouteCall:
    """A valid request of one route and the status it answers when nothing fails.

    `reports_errors`: the route acts on several items and lists each one that failed in
    its 200 report (`errors`: id and error code) rather than failing the request.
    """

    ok: int
    call: Callable[[World], Answer]
    reports_errors: bool = False
    uses: frozenset[str] = DYNAMODB
    """The AWS services the route calls (a cold container: KMS opens the data key)."""


def fetch(world: World, key: str | None = None) -> Answer:
    return world.broker.call(
        "POST",
        "/pools/{tag}/fetch",
        path_params=CI,
        json_body={},
        headers={"Idempotency-Key": key} if key else None,
    )


ROUTES: Final[dict[tuple[str, str], RouteCall]] = {
    ("GET", "/health"): RouteCall(200, lambda w: w.broker.call("GET", "/health"), uses=frozenset()),
    ("GET", "/openapi.json"): RouteCall(
        200, lambda w: w.broker.call("GET", "/openapi.json"), uses=frozenset()
    ),
    ("POST", "/orgs"): RouteCall(
        200,
        lambda w: register(w.broker, w.salesforce.state.mint_auth_url(USERNAME)),
        uses=BOTH,
    ),
    ("GET", "/orgs"): RouteCall(200, lambda w: w.broker.call("GET", "/orgs")),
    ("GET", "/orgs/{username}"): RouteCall(
        200, lambda w: w.broker.call("GET", "/orgs/{username}", path_params=USER)
    ),
    ("DELETE", "/orgs/{username}"): RouteCall(
        204,
        lambda w: w.broker.call("DELETE", "/orgs/{username}", path_params={"username": DISPOSABLE}),
    ),
    ("POST", "/orgs/{username}/token"): RouteCall(
        200,
        lambda w: w.broker.call("POST", "/orgs/{username}/token", path_params=USER),
        uses=BOTH,
    ),
    ("POST", "/api-tokens"): RouteCall(
        201,
        lambda w: w.broker.call(
            "POST", "/api-tokens", json_body={"name": "ci", "scopes": ["token:issue"]}
        ),
    ),
    ("GET", "/api-tokens"): RouteCall(200, lambda w: w.broker.call("GET", "/api-tokens")),
    ("DELETE", "/api-tokens/{id}"): RouteCall(
        204,
        lambda w: w.broker.call("DELETE", "/api-tokens/{id}", path_params={"id": w.token_id}),
    ),
    ("GET", "/audit"): RouteCall(200, lambda w: w.broker.call("GET", "/audit")),
    ("POST", "/sandboxes"): RouteCall(
        201,
        lambda w: w.broker.call(
            "POST", "/sandboxes", json_body={"sandboxName": "qa", "productionUsername": USERNAME}
        ),
        uses=BOTH,
    ),
    ("POST", "/sandboxes/{sandboxName}/auth"): RouteCall(
        200,
        lambda w: w.broker.call(
            "POST",
            "/sandboxes/{sandboxName}/auth",
            path_params={"sandboxName": "uat"},
            json_body={"productionUsername": USERNAME},
        ),
        uses=BOTH,
    ),
    ("POST", "/environments"): RouteCall(
        201,
        lambda w: w.broker.call(
            "POST",
            "/environments",
            json_body={**REPO, "name": "QA", "category": "test", "username": SANDBOX},
        ),
    ),
    ("GET", "/environments"): RouteCall(
        200, lambda w: w.broker.call("GET", "/environments", query=REPO)
    ),
    ("GET", "/environments/{name}"): RouteCall(
        200,
        lambda w: w.broker.call(
            "GET",
            "/environments/{name}",
            path_params=UAT,
            query={**REPO, "authenticate": "true"},
            headers={"Lease-Id": w.lease_id},
        ),
        uses=BOTH,
    ),
    ("PATCH", "/environments/{name}"): RouteCall(
        200,
        lambda w: w.broker.call(
            "PATCH",
            "/environments/{name}",
            path_params=UAT,
            query=REPO,
            json_body={"description": "changed"},
        ),
    ),
    ("DELETE", "/environments/{name}"): RouteCall(
        204,
        lambda w: w.broker.call("DELETE", "/environments/{name}", path_params=UAT, query=REPO),
    ),
    ("POST", "/environments/{name}/leases"): RouteCall(
        201,
        lambda w: w.broker.call(
            "POST",
            "/environments/{name}/leases",
            path_params=UAT,
            query=REPO,
            json_body={"ttlSeconds": 600, "wait": True},
        ),
    ),
    ("GET", "/environments/{name}/leases/{leaseId}"): RouteCall(
        200,
        lambda w: w.broker.call(
            "GET",
            "/environments/{name}/leases/{leaseId}",
            path_params={**UAT, "leaseId": w.lease_id},
            query=REPO,
        ),
    ),
    ("DELETE", "/environments/{name}/leases/{leaseId}"): RouteCall(
        200,
        lambda w: w.broker.call(
            "DELETE",
            "/environments/{name}/leases/{leaseId}",
            path_params={**UAT, "leaseId": w.lease_id},
            query=REPO,
        ),
    ),
    ("GET", "/pools/{tag}"): RouteCall(
        200, lambda w: w.broker.call("GET", "/pools/{tag}", path_params=CI), uses=BOTH
    ),
    ("POST", "/pools/{tag}/fetch"): RouteCall(200, lambda w: fetch(w, key="matrix"), uses=BOTH),
    ("DELETE", "/pools/{tag}/orgs/{username}"): RouteCall(
        204,
        lambda w: w.broker.call(
            "DELETE", "/pools/{tag}/orgs/{username}", path_params={**CI, "username": w.fetched}
        ),
        uses=BOTH,
    ),
    ("POST", "/pools/{tag}/cleanup"): RouteCall(
        200,
        lambda w: w.broker.call(
            "POST", "/pools/{tag}/cleanup", path_params=CI, json_body={"dryRun": False}
        ),
        reports_errors=True,
        uses=BOTH,
    ),
}
# An error answer (ClientError after retries) for every call, a lost connection
# (BotoCoreError after retries) for writes only (DynamoDB: a write path that reads fine
# and then cannot write) or for every call (KMS): both error paths of each service.
AWS_FAULTS: Final[dict[str, tuple[tuple[AwsFaultKind, frozenset[str]], ...]]] = {
    "dynamodb": ((AwsFaultKind.THROTTLED, frozenset()), (AwsFaultKind.UNAVAILABLE, WRITES)),
    "kms": ((AwsFaultKind.THROTTLED, frozenset()), (AwsFaultKind.UNAVAILABLE, frozenset())),
}
# Every fault of each service a route uses. For a service it does not use, the first
# fault only (it fails every call): it shows the route does not call that service, and
# the others would show nothing more.
AWS_CASES: Final = [
    pytest.param(
        route,
        service,
        kind,
        operations,
        id=f"{' '.join(route)}-{service}-{'writes-' if operations else ''}{kind}",
    )
    for route, spec in ROUTES.items()
    for service, faults in AWS_FAULTS.items()
    for kind, operations in (faults if service in spec.uses else faults[:1])
]


def test_every_route_of_the_template_is_in_the_fault_matrix() -> None:
    routes = {
        (route.method, route.path)
        for spec in sam.functions(sam.load_template())
        for route in spec.events
    }
    assert routes - set(ROUTES) == set(), "add a request for these routes to ROUTES"
    assert set(ROUTES) - routes == set()


@pytest.fixture(autouse=True)
def _aws_retries_without_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    retry_without_pauses(monkeypatch)


def stored(broker: Broker) -> tuple[dict[tuple[str, str], dict[str, Any]], list[str]]:
    """What the broker keeps: its table's org data, and the pools' idempotency records."""
    records = broker.dynamodb.scan(TableName=idempotency_table(broker))["Items"]
    return broker.snapshot(), sorted(json.dumps(r, sort_keys=True) for r in records)


def pool_with_work(world: World) -> World:
    """The default Dev Hub `hub@acme.com`, its pool `ci` (3 Available orgs), one fetched
    (`world.fetched`), and one fetched whose org was then deleted by hand on the Dev Hub
    (a lease for the cleanup to drop)."""
    broker, salesforce = world.broker, world.salesforce
    register_hub(broker, salesforce)
    make_pool(salesforce, 4)
    fetched, vanished = (fetch(world), fetch(world))
    assert fetched.status == vanished.status == 200, (fetched.body, vanished.body)
    state = salesforce.state
    hub_org = state.org_of(state.user(HUB))
    row = next(
        r
        for r in state.rows(SCRATCH_ORG_INFO, hub_org)
        if r["SignupUsername"] == vanished.body["username"]
    )
    assert state.delete_row(SCRATCH_ORG_INFO, hub_org, str(row["Id"]))
    world.fetched = fetched.body["username"]
    return world


@pytest.fixture
def world(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str, route: tuple[str, str]
) -> World:
    """The world a route acts on: the orgs and an API token always; the sandboxes and the
    environment for their routes, the pool for its routes (each costs a dozen requests,
    and the other routes never look at them)."""
    state = salesforce.state
    state.create_sandbox(USERNAME, "uat")
    state.create_sandbox(USERNAME, "qa")
    state.create_production_org(DISPOSABLE)
    assert register(broker, acme).status == 201
    assert register(broker, state.mint_auth_url(DISPOSABLE)).status == 201
    created = broker.call("POST", "/api-tokens", json_body={"name": "old", "scopes": ["admin"]})
    assert created.status == 201, created.body
    world = World(broker, salesforce, token_id=created.body["id"])
    path = route[1]
    if path.startswith(("/sandboxes", "/environments")):
        jit = {"sandboxName": "uat", "productionUsername": USERNAME}
        assert broker.call("POST", "/sandboxes", json_body=jit).status == 201
        environment = {**REPO, "name": "UAT", "category": "test", "username": SANDBOX}
        assert broker.call("POST", "/environments", json_body=environment).status == 201
        held = ROUTES["POST", "/environments/{name}/leases"].call(world)
        assert held.status == 201, held.body
        world.lease_id = held.body["leaseId"]
    if path.startswith("/pools"):
        pool_with_work(world)
    runtime.reset()  # a cold container: no data key cached, every path reaches KMS
    broker.watch_aws()
    return world


@pytest.mark.parametrize(("route", "service", "kind", "operations"), AWS_CASES)
def test_an_aws_failure_answers_503_and_leaves_the_table_unchanged(
    world: World,
    route: tuple[str, str],
    service: str,
    kind: AwsFaultKind,
    operations: frozenset[str],
) -> None:
    broker = world.broker
    before = stored(broker)
    fault = AwsFault(service, kind, operations)
    client = runtime.dynamodb() if service == "dynamodb" else runtime.kms()
    fault.attach(client)
    try:
        answer = ROUTES[route].call(world)
    finally:
        fault.detach(client)
    if not operations:  # every call failed: it fired if, and only if, the route uses it
        assert bool(fault.fired) == (service in ROUTES[route].uses), "correct RouteCall.uses"
    # Pool orgs: none leased without being Assigned, none Assigned without a lease.
    assert_consistent_but_for_deleted_orgs(broker, world.salesforce)
    if not fault.fired:  # a read-only route under failing writes, or a service it does not use
        assert answer.status == ROUTES[route].ok, answer.body
        return
    FAULTS_INJECTED[f"{service} {kind}"] += 1
    # Retries are bounded and made: each failing call was tried exactly AWS_ATTEMPTS times.
    assert {n % AWS_ATTEMPTS for n in Counter(fault.seen).values()} == {0}, fault.seen
    if ROUTES[route].reports_errors and answer.status == 200:
        # It failed item by item: each listed with the code a request would have had.
        assert answer.body["errors"], answer.body
        assert {e["error"] for e in answer.body["errors"]} == {"dependency_unavailable"}
    else:
        assert (answer.status, answer.error) == (503, "dependency_unavailable"), (
            fault.seen,
            answer.body,
        )
    assert stored(broker) == before, fault.seen


# --- Salesforce: the Dev Hub of the pools -----------------------------------------------

# The Dev Hub calls of each pool route, and the faults tried on each: every class (an
# error answer, garbage, no answer in time, a refused session) on every call. The Dev
# Hub's token refresh is the token service's (`TokenService.issue`) for all four routes:
# its faults are tried through the fetch, and on every kind by the refresh test above.
PATCH, DELETE = "sobjects/patch", "sobjects/delete"
DEV_HUB_FAULTS: Final[dict[tuple[str, str], dict[str, tuple[str, ...]]]] = {
    ("GET", "/pools/{tag}"): {"query": ("http_503", "malformed_json", "timeout", "invalid_grant")},
    ("POST", "/pools/{tag}/fetch"): {
        "token": ("http_500", "timeout", "invalid_grant"),
        "query": ("http_429", "html_error", "malformed_json", "timeout", "invalid_grant"),
        PATCH: ("http_500", "http_429", "html_error", "malformed_json", "timeout", "invalid_grant"),
    },
    ("DELETE", "/pools/{tag}/orgs/{username}"): {
        "query": ("http_503", "timeout"),
        DELETE: (
            "http_500",
            "http_429",
            "html_error",
            "malformed_json",
            "timeout",
            "invalid_grant",
        ),
    },
    ("POST", "/pools/{tag}/cleanup"): {
        "query": ("http_503", "html_error", "timeout", "invalid_grant"),
        DELETE: ("http_500", "malformed_json", "timeout", "invalid_grant"),
    },
}
DEV_HUB_CASES: Final = [
    pytest.param(route, endpoint, kind, id=f"{' '.join(route)}-{endpoint}-{kind}")
    for route, calls in DEV_HUB_FAULTS.items()
    for endpoint, kinds in calls.items()
    for kind in kinds
]


@pytest.fixture
def pool_world(fast_salesforce: Broker, salesforce: FakeSalesforceServer) -> World:
    """`pool_with_work` with more Available orgs, and an expired one for the cleanup."""
    world = pool_with_work(World(fast_salesforce, salesforce))
    make_pool(salesforce, 4)
    expired = salesforce.state.now() - timedelta(days=1)
    make_pool(salesforce, 1, expiration_date=expired.date())
    return world


def wait_until(condition: Callable[[], bool]) -> None:
    """The fake finishes a stalled request after the caller gave up on it."""
    deadline = time.monotonic() + 10 * STALL_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the stalled request never finished"
        time.sleep(0.1)


@pytest.mark.parametrize(("route", "endpoint", "kind"), DEV_HUB_CASES)
def test_a_dev_hub_failure_answers_api_md_and_the_pool_converges(
    pool_world: World, route: tuple[str, str], endpoint: str, kind: str
) -> None:
    broker, salesforce = pool_world.broker, pool_world.salesforce
    if endpoint == "token":
        drop_cached_token(broker, HUB)
    before = stored(broker)
    rows, assigned_before = len(active_rows(salesforce)), len(assigned(salesforce))
    salesforce.reset_counts()
    arm(salesforce, endpoint, kind)
    answer = ROUTES[route].call(pool_world)
    salesforce.faults.clear()
    # Bounded: one try and the retries per call; a fetch gives up after two failed claims.
    calls = salesforce.counts[canonical_endpoint(endpoint)]
    assert calls <= (MAX_FAILED_CLAIMS if endpoint == PATCH else 1) * (1 + MAX_RETRIES)
    if (endpoint, kind) == ("token", "invalid_grant"):
        # The Dev Hub's credential is dead: marked invalid (re-register it), nothing else.
        assert (answer.status, answer.error) == (409, "org_credentials_invalid")
        after = broker.snapshot()
        assert after.pop((f"ORG#{HUB}", "META"))["status"] == {"S": "invalid"}
        before[0].pop((f"ORG#{HUB}", "META"))
        assert (after, stored(broker)[1]) == before
        return
    status, code = SALESFORCE_FAULTS[kind]
    if route == ("POST", "/pools/{tag}/cleanup") and endpoint == DELETE:
        # Each org the Dev Hub would not delete is listed; the cleanup goes on.
        assert answer.status == 200, answer.body
        assert {e["error"] for e in answer.body["errors"]} == {code}, answer.body
    else:
        assert (answer.status, answer.error) == (status, code), answer.body
        assert stored(broker) == before
    lost = kind == "timeout" and endpoint in (PATCH, DELETE)
    if lost:  # the write happened after we stopped waiting: Salesforce's answer was lost
        if endpoint == PATCH:  # each claim gave its lease back; the patches landed later
            wait_until(lambda: len(assigned(salesforce)) == assigned_before + calls)
        else:
            wait_until(lambda: len(active_rows(salesforce)) == rows - calls)
    # No org leased without being Assigned; Assigned without a lease only after a lost
    # answer, which the cleanup repairs once its grace is over.
    alive = set(active_rows(salesforce))
    assert claimed(broker) & alive <= assigned(salesforce)
    assert lost or claimed(broker) & alive == assigned(salesforce)
    age_rows(salesforce)
    repaired = broker.call(
        "POST", "/pools/{tag}/cleanup", path_params=CI, json_body={"dryRun": False}
    )
    assert (repaired.status, repaired.body["errors"]) == (200, []), repaired.body
    assert_consistent(broker, salesforce)
    # The pool works again, and never hands out an org twice.
    again = fetch(pool_world)
    assert again.status == 200, again.body
    assert again.body["username"] != pool_world.fetched
    assert_consistent(broker, salesforce)
