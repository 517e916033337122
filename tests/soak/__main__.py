"""`make soak`: concurrent clients on the local stack for a bounded time, faults at random.

Starts `python -m local.stack` (127.0.0.1 only; `--db moto` or `dynamodb-local`; the fake
Salesforce; `--heap-report`), then runs `--clients` threads for `--seconds` (or until
`--max-requests`), each picking routes at random: token issuance (most), org listing and
reading, re-registration with a freshly minted auth URL, API token create/list/revoke,
pool fetch (with an Idempotency-Key, now and then retried with the same key) and return
(the fake's pool `ci` is topped up after each return), the audit trail, health. Now and
then a client arms a transient Salesforce fault (5xx, 429, HTML page, truncated JSON,
reset, stall) for the next token-endpoint call, through the fake's admin API.

Checked: every answer is one API.md documents (a 5xx only as 502/503/504 with its code,
never 500 or a body outside the contract; a 401/403 never: every client holds the admin
token); every access token issued works at the fake Salesforce; every API token created
is listed exactly once, revoked iff it was deleted; every registered org is listed
exactly once; no pool org is handed to two fetches (Idempotency-Keys), a retried key
gets its first org, every org handed out and kept is `Assigned` on the Dev Hub, none
returned is available again, none is claimed without a caller having got it.

Memory: the stack's heap by owner (`local/heap.py`, tracemalloc) and RSS, after the
warm-up ("start"), at half time and at the end. moto (DynamoDB and KMS data) and the fake
Salesforce keep what is stored in the stack process: their growth is data, reported per
item stored. Everything else (sfbroker, the gateway, botocore, werkzeug, ...) must be
flat: growth from start to end ≤ `--heap-growth-limit` MiB. Exit status 1 on any
violation or when that heap is not flat.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import boto3
import requests

from local.heap import OWNERS_OF_DATA
from tests.support.local_stack import LocalStack, start_stack

DOCUMENTED_5XX: Final = {
    (502, "salesforce_error"),
    (503, "dependency_unavailable"),
    (504, "salesforce_timeout"),
}
TRANSIENT_FAULTS: Final = (
    "http_500",
    "http_503",
    "http_429",
    "html_error",
    "malformed_json",
    "connection_reset",
    "timeout",
)
ERROR_KEYS: Final = {"error", "message", "requestId"}
POOL_TAG: Final = "ci"
# A client retries a fetch that failed with a 5xx this often more, with the same key.
FETCH_RETRIES: Final = 2
MIB: Final = 1024 * 1024


def rss_kib(pids: list[int]) -> int:
    """Resident memory of these processes, in KiB (from /proc)."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


@dataclass
class Tally:
    """What every client saw; one lock for all."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # Cleared while the stack writes a heap report: it holds the GIL for seconds, and
    # requests in flight then would time out inside the stack.
    running: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    paused_seconds: float = 0.0
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    tokens_verified: int = 0
    created: dict[str, str] = field(default_factory=dict)  # API token id -> client
    deleted: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)  # every 401/403: route, message, id
    failed: list[str] = field(default_factory=list)  # every 5xx: route, code, message
    unsettled: set[str] = field(default_factory=set)  # revocations answered only by 5xx
    handed: dict[str, str] = field(default_factory=dict)  # pool org -> Idempotency-Key
    kept: set[str] = field(default_factory=set)  # handed out and not returned
    returned: set[str] = field(default_factory=set)
    replayed: int = 0  # fetches retried with their key that got their first org
    fetches_failed: int = 0  # fetches whose every try ended in a 5xx
    pool_empty: int = 0

    def answer(self, label: str, response: requests.Response) -> Any:
        body: Any = None
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        problem = None
        if response.status_code >= 400:
            if not isinstance(body, dict) or not body.keys() >= ERROR_KEYS:
                problem = f"{label}: {response.status_code} without the error body"
            elif response.status_code >= 500 and (
                (response.status_code, body["error"]) not in DOCUMENTED_5XX
            ):
                problem = f"{label}: undocumented {response.status_code} {body['error']}"
            elif response.status_code in (401, 403):
                problem = f"{label}: {response.status_code} for the admin token"
        with self.lock:
            self.sent += 1
            self.statuses[response.status_code] += 1
            if problem:
                self.violations.append(problem)
            if response.status_code >= 500 and isinstance(body, dict):
                self.failed.append(
                    f"{label}: {response.status_code} {body.get('error')} {body.get('message')}"
                )
            if response.status_code in (401, 403) and isinstance(body, dict):
                self.refused.append(
                    f"{label}: {response.status_code} {body.get('message')} "
                    f"(request {body.get('requestId')})"
                )
        return body

    def hand_out(self, username: str, key: str) -> None:
        """A fetch with `key` got `username`: no other key may ever get it."""
        with self.lock:
            first = self.handed.setdefault(username, key)
            if first != key:
                self.violations.append(f"pool org {username} handed to two fetches")
            else:
                self.kept.add(username)


@dataclass
class Client:
    stack: LocalStack
    tally: Tally
    name: str
    rng: random.Random
    usernames: tuple[str, ...]
    dev_hub: str
    session: requests.Session = field(default_factory=requests.Session)
    mine: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session.headers["Authorization"] = f"Bearer {self.stack.exports['SFBROKER_TOKEN']}"

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        response = self.session.request(
            method, self.stack.url + path, json=body, headers=headers, timeout=60
        )
        return response.status_code, self.tally.answer(f"{method} {path}", response)

    def step(self) -> None:
        username = self.rng.choice(self.usernames)
        quoted = username.replace("@", "%40")
        roll = self.rng.random()
        if self.rng.random() < 0.03:
            self.arm_fault()
        if roll < 0.50:
            self.issue(quoted)
        elif roll < 0.58:
            self.call("GET", "/orgs")
        elif roll < 0.64:
            self.call("GET", f"/orgs/{quoted}")
        elif roll < 0.68:
            self.reregister(username)
        elif roll < 0.74:
            self.fetch_pool_org()
        elif roll < 0.78:
            self.return_pool_org()
        elif roll < 0.85:
            status, body = self.call(
                "POST", "/api-tokens", {"name": f"soak-{self.name}", "scopes": ["orgs:read"]}
            )
            if status == 201:
                with self.tally.lock:
                    self.tally.created[body["id"]] = self.name
                self.mine.append(body["id"])
        elif roll < 0.90 and self.mine:
            self.revoke(self.mine.pop(self.rng.randrange(len(self.mine))))
        elif roll < 0.95:
            self.call("GET", "/audit")
        else:
            self.call("GET", "/health")

    def issue(self, quoted: str) -> None:
        status, body = self.call("POST", f"/orgs/{quoted}/token", {"minValiditySeconds": 600})
        if status != 200:
            return
        check = requests.get(
            f"{body['instanceUrl']}/services/oauth2/userinfo",
            headers={"Authorization": f"Bearer {body['accessToken']}"},
            timeout=30,
        )
        with self.tally.lock:
            self.tally.tokens_verified += 1
            if check.status_code != 200:
                self.tally.violations.append(f"an issued token was refused: {check.status_code}")

    def revoke(self, token_id: str) -> None:
        """DELETE is idempotent: a 5xx is retried (as a client would); if every try got a
        5xx, the token may be either (a 503 can come after the write, e.g. its audit)."""
        for _ in range(1 + FETCH_RETRIES):
            status, _ = self.call("DELETE", f"/api-tokens/{token_id}")
            if status < 500:
                break
        with self.tally.lock:
            if status == 204:
                self.tally.deleted.add(token_id)
            elif status >= 500:
                self.tally.unsettled.add(token_id)

    def fetch_pool_org(self) -> None:
        """Fetch with a fresh Idempotency-Key; retry a 5xx, and now and then a success,
        with the same key (a CI job's retry): it must get the same org."""
        key = f"soak-{self.name}-{self.rng.getrandbits(64):016x}"
        first: str | None = None
        tries = 1 + FETCH_RETRIES
        while tries:
            tries -= 1
            status, body = self.call(
                "POST",
                f"/pools/{POOL_TAG}/fetch",
                {"devHubUsername": self.dev_hub},
                headers={"Idempotency-Key": key},
            )
            if status == 200:
                username = str(body["username"])
                if first is None:
                    first = username
                    self.tally.hand_out(username, key)
                    self.fetched.append(username)
                elif username != first:
                    with self.tally.lock:
                        self.tally.violations.append(f"fetch {key} replayed as another org")
                else:
                    with self.tally.lock:
                        self.tally.replayed += 1
                if self.rng.random() >= 0.25:
                    return
            elif status == 409:
                with self.tally.lock:
                    self.tally.pool_empty += 1
                return
            elif status < 500:
                return
        if first is None:
            with self.tally.lock:
                self.tally.fetches_failed += 1

    def return_pool_org(self) -> None:
        """Return one of this client's fetched orgs and top the pool up; with none, count
        the pool."""
        if not self.fetched:
            self.call("GET", f"/pools/{POOL_TAG}")
            return
        username = self.fetched.pop(self.rng.randrange(len(self.fetched)))
        status, _ = self.call("DELETE", f"/pools/{POOL_TAG}/orgs/{username.replace('@', '%40')}")
        if status != 204:
            self.fetched.append(username)  # still ours: returned later, or kept
            return
        with self.tally.lock:
            self.tally.kept.discard(username)
            self.tally.returned.add(username)
        requests.post(
            f"{self.stack.salesforce_url}/__fake__/scratch-orgs",
            json={"dev_hub_username": self.dev_hub, "pool_tag": POOL_TAG},
            timeout=30,
        ).raise_for_status()

    def reregister(self, username: str) -> None:
        minted = requests.post(
            f"{self.stack.salesforce_url}/__fake__/auth-urls",
            json={"username": username},
            timeout=30,
        ).json()["auth_url"]
        self.call("POST", "/orgs", {"sfdxAuthUrl": minted})

    def arm_fault(self) -> None:
        kind = self.rng.choice(TRANSIENT_FAULTS)
        requests.post(
            f"{self.stack.salesforce_url}/__fake__/faults",
            json={"kind": kind, "endpoint": "token", "times": 1, "seconds": 2},
            timeout=30,
        ).raise_for_status()
        with self.tally.lock:
            self.tally.faults[kind] += 1


def registered_orgs(stack: LocalStack) -> tuple[str, ...]:
    """The orgs the stack registered at start (the seeded production org and Dev Hub)."""
    answer = requests.get(
        f"{stack.url}/orgs",
        headers={"Authorization": f"Bearer {stack.exports['SFBROKER_TOKEN']}"},
        timeout=60,
    )
    answer.raise_for_status()
    return tuple(org["username"] for org in answer.json()["orgs"])


def check_items(stack: LocalStack, tally: Tally, usernames: tuple[str, ...]) -> None:
    """Nothing lost or duplicated: API tokens and orgs as the API lists them, pool orgs
    as the Dev Hub has them."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.exports['SFBROKER_TOKEN']}"
    tokens = session.get(f"{stack.url}/api-tokens", timeout=60).json()["apiTokens"]
    seen = Counter(token["id"] for token in tokens)
    status = {token["id"]: token.get("status") for token in tokens}
    for token_id in tally.created:
        if seen[token_id] != 1:
            tally.violations.append(f"API token {token_id} listed {seen[token_id]} times")
        elif token_id in tally.unsettled:
            continue
        elif (status[token_id] == "revoked") != (token_id in tally.deleted):
            tally.violations.append(f"API token {token_id}: {status[token_id]}")
    orgs = Counter(
        org["username"] for org in session.get(f"{stack.url}/orgs", timeout=60).json()["orgs"]
    )
    for username in usernames:
        if orgs[username] != 1:
            tally.violations.append(f"org {username} listed {orgs[username]} times")
    rows = requests.get(f"{stack.salesforce_url}/__fake__/state", timeout=30).json()
    pool = {
        row["signup_username"]: row
        for row in rows["scratch_org_infos"]
        if row["pool_tag"] == POOL_TAG
    }
    unanswered = 0
    for username, row in pool.items():
        assigned = row["status"] == "Active" and row["allocation_status"] == "Assigned"
        available = row["status"] == "Active" and row["allocation_status"] == "Available"
        if username in tally.kept and not assigned:
            tally.violations.append(f"pool org {username} kept by a client but {row}")
        elif username in tally.returned and available:
            tally.violations.append(f"pool org {username} returned but available again")
        elif username not in tally.handed and assigned:
            unanswered += 1  # claimed by a fetch whose every try failed, or lost
    if unanswered > tally.fetches_failed:
        tally.violations.append(
            f"{unanswered} pool orgs claimed for nobody ({tally.fetches_failed} fetches failed)"
        )


@dataclass
class Memory:
    """Samples of the stack's memory (`local/heap.py` reports, plus its child processes)."""

    stack: LocalStack
    report_path: Path
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sample_rss(self, label: str, items: int) -> None:
        """RSS only (before the first heap report: tracing not started yet)."""
        self.samples[label] = {
            "stack RSS KiB": rss_kib([self.stack.process.pid]),
            "child processes RSS KiB": rss_kib(self.stack.descendants()),
            "DynamoDB items": items,
        }

    def sample(self, label: str, items: int) -> None:
        """Ask the stack for a heap report (SIGUSR1) and wait for it. The first starts
        tracing: later ones give the heap gained since, and still alive."""
        self.report_path.unlink(missing_ok=True)
        os.kill(self.stack.process.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 300
        while not self.report_path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the stack wrote no heap report")
            time.sleep(0.2)
        report = json.loads(self.report_path.read_text())
        owners: dict[str, int] = report["owners"]
        self.samples[label] = {
            "stack RSS KiB": report["rss_kib"],
            "child processes RSS KiB": rss_kib(self.stack.descendants()),
            "heap gained MiB": _mib(report["traced_bytes"]),
            "heap of stored data MiB (moto, fake Salesforce)": _mib(
                sum(size for owner, size in owners.items() if owner in OWNERS_OF_DATA)
            ),
            "heap of the rest MiB": _mib(
                sum(size for owner, size in owners.items() if owner not in OWNERS_OF_DATA)
            ),
            "DynamoDB items": items,
            "heap by owner MiB": {
                owner: _mib(size) for owner, size in owners.items() if size >= MIB // 10
            },
            "sites": report["sites"],
            "report seconds": report["seconds"],
        }

    def judge(self, limit_mib: float) -> tuple[dict[str, Any], str | None]:
        """The figures to print, and the reason the rest's heap is not flat (or None)."""
        start, end = self.samples["start"], self.samples["end"]
        rest = end["heap of the rest MiB"] - start["heap of the rest MiB"]
        data = (
            end["heap of stored data MiB (moto, fake Salesforce)"]
            - start["heap of stored data MiB (moto, fake Salesforce)"]
        )
        added = end["DynamoDB items"] - start["DynamoDB items"]
        growing = sorted(
            ((size - start["sites"].get(site, 0), site) for site, size in end["sites"].items()),
            reverse=True,
        )[:8]
        figures: dict[str, Any] = {
            label: {k: v for k, v in sample.items() if k != "sites"}
            for label, sample in self.samples.items()
        }
        figures["growth start → end"] = {
            "heap of the rest MiB": round(rest, 2),
            "heap of stored data MiB": round(data, 2),
            "DynamoDB items added": added,
            "stored-data heap KiB per item added": round(data * 1024 / added, 1) if added else None,
            "stack RSS KiB": end["stack RSS KiB"] - start["stack RSS KiB"],
            "largest growing sites KiB": {site: size // 1024 for size, site in growing},
        }
        figures["rule"] = (
            f"flat = the heap outside moto and the fake Salesforce grows ≤ {limit_mib} MiB "
            "from start (after the warm-up) to end (allocated since start and alive at the "
            "end, after a full garbage collection)"
        )
        problem = None
        if rest > limit_mib:
            problem = f"the heap outside stored data grew by {rest:.2f} MiB (> {limit_mib})"
        return figures, problem


def _mib(size: int) -> float:
    return round(size / MIB, 2)


def count_items(stack: LocalStack) -> int:
    """Items in every DynamoDB table of the stack (moto or DynamoDB Local)."""
    port = stack.ports.get("dynamodb", stack.ports["aws"])
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    total = 0
    for table in client.list_tables()["TableNames"]:
        for page in client.get_paginator("scan").paginate(TableName=table, Select="COUNT"):
            total += page["Count"]
    return total


def token_refusals(stack: LocalStack) -> Counter[str]:
    """Why the authorizer refused a token (its log lines: reason, never the token)."""
    reasons: Counter[str] = Counter()
    for line in stack.stdout().splitlines():
        if '"API token rejected"' in line:
            with_reason = json.loads(line)
            reasons[f"{with_reason.get('reason')} {with_reason.get('token_id')}"] += 1
    return reasons


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="sfbroker-soak-") as directory:
        report_path = Path(directory) / "heap.json"
        stack = start_stack(
            Path(directory),
            args.db,
            api_port=args.port,
            aws_port=args.aws_port,
            options=["--heap-report", str(report_path)],
        )
        try:
            memory = Memory(stack, report_path)
            memory.sample_rss("stack started", count_items(stack))
            usernames = registered_orgs(stack)
            dev_hub = requests.post(f"{stack.salesforce_url}/__fake__/seed", timeout=30).json()[
                "dev_hub_username"
            ]
            tally = Tally()
            started = time.monotonic()
            deadline = started + args.seconds
            warm_up = min(max(10.0, args.seconds / 10), args.seconds / 2)

            def work(index: int) -> None:
                client = Client(
                    stack, tally, f"c{index}", random.Random(args.seed + index), usernames, dev_hub
                )
                while time.monotonic() < deadline and tally.sent < args.max_requests:
                    tally.running.wait()
                    with tally.lock:
                        tally.in_flight += 1
                    try:
                        client.step()
                    except requests.RequestException as error:
                        with tally.lock:
                            tally.violations.append(f"{client.name}: no answer: {error!r}")
                    finally:
                        with tally.lock:
                            tally.in_flight -= 1

            threads = [threading.Thread(target=work, args=(i,)) for i in range(args.clients)]
            for thread in threads:
                thread.start()
            tally.running.set()
            for label, at in (("start", warm_up), ("middle", args.seconds / 2)):
                time.sleep(max(0.0, started + at - time.monotonic()))
                paused = time.monotonic()
                tally.running.clear()
                while tally.in_flight and time.monotonic() < paused + 120:
                    time.sleep(0.1)
                memory.sample(label, count_items(stack))
                tally.running.set()
                tally.paused_seconds += time.monotonic() - paused
                deadline += time.monotonic() - paused
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            requests.delete(f"{stack.salesforce_url}/__fake__/faults", timeout=30)
            check_items(stack, tally, usernames)
            memory.sample("end", count_items(stack))
            refusals = token_refusals(stack)
        finally:
            stack.stop()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                (args.logs / "stack.out").write_text(stack.stdout())
                (args.logs / "stack.err").write_text(stack.stderr())
    figures, not_flat = memory.judge(args.heap_growth_limit)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "database": args.db,
                "seconds": round(elapsed, 1),
                "requests": tally.sent,
                "clients paused for heap reports, seconds": round(tally.paused_seconds, 1),
                "requests per second": round(tally.sent / (elapsed - tally.paused_seconds), 1),
                "answers by status": dict(sorted(tally.statuses.items())),
                "faults injected": dict(sorted(tally.faults.items())),
                "items checked": {
                    "API tokens (listed once, revoked iff deleted)": len(tally.created),
                    "orgs (listed once)": len(usernames),
                    "issued access tokens accepted by Salesforce": tally.tokens_verified,
                    "pool orgs handed out (each to one fetch)": len(tally.handed),
                    "pool orgs returned (never available again)": len(tally.returned),
                    "pool orgs kept (Assigned on the Dev Hub)": len(tally.kept),
                    "pool fetches replayed with their key (same org)": tally.replayed,
                    "pool fetches failed after retries": tally.fetches_failed,
                    "pool empty (409)": tally.pool_empty,
                },
                "401/403 answers": tally.refused[:20],
                "5xx answers": dict(Counter(tally.failed).most_common(20)),
                "revocations answered only by 5xx (either state accepted)": len(tally.unsettled),
                "authorizer refusals (reason, token id)": dict(refusals),
                "memory": figures,
                "violations": tally.violations[:20],
                "violation count": len(tally.violations),
                "memory flat": not_flat is None,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    if not_flat:
        print(f"soak: memory not flat: {not_flat}", file=sys.stderr)
    return 1 if tally.violations or not_flat else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--db", choices=("moto", "dynamodb-local"), default="moto")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    parser.add_argument("--aws-port", type=int, default=0, help="moto port (default: a free one)")
    parser.add_argument(
        "--logs", type=Path, metavar="DIR", help="keep the stack's stdout and stderr in DIR"
    )
    parser.add_argument(
        "--heap-growth-limit",
        type=float,
        default=2.0,
        metavar="MIB",
        help="most the heap outside moto and the fake Salesforce may grow after the warm-up",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
