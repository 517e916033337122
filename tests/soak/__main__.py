"""`make soak`: concurrent clients on the local stack for a bounded time, faults at random.

Starts `python -m local.stack` (127.0.0.1 only, moto, the fake Salesforce), then runs
`--clients` threads for `--seconds` (or until `--max-requests`), each picking routes at
random: token issuance (most), org listing and reading, re-registration with a freshly
minted auth URL, API token create/list/revoke, the audit trail, health. Now and then a
client arms a transient Salesforce fault (5xx, 429, HTML page, truncated JSON, reset,
stall) for the next token-endpoint call, through the fake's admin API.

Checked: every answer is one API.md documents (a 5xx only as 502/503/504 with its code,
never 500 or a body outside the contract); every access token issued works at the fake
Salesforce; every API token created is listed exactly once, revoked iff it was deleted;
every registered org is listed exactly once. Printed: requests, answers by status,
faults injected, items checked, and the stack's memory (RSS of the stack and its child
processes) at start and end. Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import requests

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
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    tokens_verified: int = 0
    created: dict[str, str] = field(default_factory=dict)  # API token id -> client
    deleted: set[str] = field(default_factory=set)

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
        with self.lock:
            self.sent += 1
            self.statuses[response.status_code] += 1
            if problem:
                self.violations.append(problem)
        return body


@dataclass
class Client:
    stack: LocalStack
    tally: Tally
    name: str
    rng: random.Random
    usernames: tuple[str, ...]
    session: requests.Session = field(default_factory=requests.Session)
    mine: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session.headers["Authorization"] = f"Bearer {self.stack.exports['SFBROKER_TOKEN']}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.session.request(method, self.stack.url + path, json=body, timeout=60)
        return response.status_code, self.tally.answer(f"{method} {path}", response)

    def step(self) -> None:
        username = self.rng.choice(self.usernames)
        quoted = username.replace("@", "%40")
        roll = self.rng.random()
        if self.rng.random() < 0.03:
            self.arm_fault()
        if roll < 0.55:
            self.issue(quoted)
        elif roll < 0.65:
            self.call("GET", "/orgs")
        elif roll < 0.72:
            self.call("GET", f"/orgs/{quoted}")
        elif roll < 0.77:
            self.reregister(username)
        elif roll < 0.85:
            status, body = self.call(
                "POST", "/api-tokens", {"name": f"soak-{self.name}", "scopes": ["orgs:read"]}
            )
            if status == 201:
                with self.tally.lock:
                    self.tally.created[body["id"]] = self.name
                self.mine.append(body["id"])
        elif roll < 0.90 and self.mine:
            token_id = self.mine.pop(self.rng.randrange(len(self.mine)))
            status, _ = self.call("DELETE", f"/api-tokens/{token_id}")
            if status == 204:
                with self.tally.lock:
                    self.tally.deleted.add(token_id)
            else:
                self.mine.append(token_id)
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
    """Nothing lost or duplicated: API tokens and orgs as the API lists them."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.exports['SFBROKER_TOKEN']}"
    tokens = session.get(f"{stack.url}/api-tokens", timeout=60).json()["apiTokens"]
    seen = Counter(token["id"] for token in tokens)
    status = {token["id"]: token.get("status") for token in tokens}
    for token_id in tally.created:
        if seen[token_id] != 1:
            tally.violations.append(f"API token {token_id} listed {seen[token_id]} times")
        elif (status[token_id] == "revoked") != (token_id in tally.deleted):
            tally.violations.append(f"API token {token_id}: {status[token_id]}")
    orgs = Counter(
        org["username"] for org in session.get(f"{stack.url}/orgs", timeout=60).json()["orgs"]
    )
    for username in usernames:
        if orgs[username] != 1:
            tally.violations.append(f"org {username} listed {orgs[username]} times")


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="sfbroker-soak-") as directory:
        stack = start_stack(Path(directory))
        try:
            pids = [stack.process.pid, *stack.descendants()]
            memory_start = rss_kib(pids)
            usernames = registered_orgs(stack)
            tally = Tally()
            deadline = time.monotonic() + args.seconds
            started = time.monotonic()

            def work(index: int) -> None:
                client = Client(
                    stack, tally, f"c{index}", random.Random(args.seed + index), usernames
                )
                while time.monotonic() < deadline and tally.sent < args.max_requests:
                    try:
                        client.step()
                    except requests.RequestException as error:
                        with tally.lock:
                            tally.violations.append(f"{client.name}: no answer: {error!r}")

            threads = [threading.Thread(target=work, args=(i,)) for i in range(args.clients)]
            for thread in threads:
                thread.start()
            peak = memory_start
            while any(thread.is_alive() for thread in threads):
                time.sleep(1)
                peak = max(peak, rss_kib([stack.process.pid, *stack.descendants()]))
            elapsed = time.monotonic() - started
            requests.delete(f"{stack.salesforce_url}/__fake__/faults", timeout=30)
            check_items(stack, tally, usernames)
            memory_end = rss_kib([stack.process.pid, *stack.descendants()])
        finally:
            stack.stop()
    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": round(elapsed, 1),
                "requests": tally.sent,
                "requests per second": round(tally.sent / elapsed, 1),
                "answers by status": dict(sorted(tally.statuses.items())),
                "faults injected": dict(sorted(tally.faults.items())),
                "items checked": {
                    "API tokens (listed once, revoked iff deleted)": len(tally.created),
                    "orgs (listed once)": len(usernames),
                    "issued access tokens accepted by Salesforce": tally.tokens_verified,
                },
                "stack memory KiB": {"start": memory_start, "peak": peak, "end": memory_end},
                "violations": tally.violations[:20],
                "violation count": len(tally.violations),
            },
            indent=2,
        )
    )
    return 1 if tally.violations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=16)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
