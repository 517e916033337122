"""The session-wide secret scan: what every test makes the broker produce, searched for secrets.

Registered as a pytest plugin (`tests/conftest.py`), so every test contributes, whichever
suite it belongs to. What is scanned, per test:

- every log line and print: the captured stdout, stderr and log records of setup, call
  and teardown (Powertools JSON lines, EMF metrics, library logs), plus a handler on the
  broker's logger and the root logger, so output a test consumed (`capfd.readouterr()`)
  is seen too;
- every answer of a handler run in-process (`local.lambdas.invoke`: the integration
  harness and the local API Gateway), status, headers and body; the authorizer's policy;
- every request the broker sends to DynamoDB and KMS (what is stored, audit events
  included: nothing but ciphertext may carry a secret);
- the output of every local stack subprocess (`tests/support/local_stack.py`), its
  banner excepted (it shows the local admin token by design).

What counts as a secret: anything shaped like one (an SFDX auth URL with its secret part,
a Salesforce refresh or access token, an `sfb_<id>_<secret>` API token) and every value
a fake Salesforce of the test issued (refresh and access tokens, scratch-org passwords,
client secrets), plus the secrets the allowed answers revealed (below).

The only places a secret may appear are answer fields the contract defines for it
(`ALLOWED_FIELDS`: route + JSON path). Their values are lifted out before the answer is
scanned and become known secrets for everything else the test produced.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
import pytest

from local import lambdas
from local.fake_salesforce import FakeSalesforceServer
from local.stack import READY_LINE

# Shapes of the secrets the broker handles (SALESFORCE.md; auth/api_tokens.py).
SHAPES: Final = {
    "auth URL": re.compile(r"force://[^\s\"'@/:]*:[^\s\"'@/:]*:[A-Za-z0-9._]{16,}@"),
    "refresh token": re.compile(r"5Aep861[A-Za-z0-9._]{40,}"),
    "access token": re.compile(r"\b00D[A-Za-z0-9]{12}![A-Za-z0-9._]{20,}"),
    "API token": re.compile(r"\bsfb_[a-z2-7]{12}_[A-Za-z0-9_-]{43}"),
}
# Known values shorter than this are not searched (they would match by chance).
MIN_SECRET_LENGTH: Final = 12

TOKEN_ROUTE: Final = ("POST", "/orgs/{username}/token")
# (method, resource) -> JSON paths of the answer that carry a secret by contract (API.md).
ALLOWED_FIELDS: Final[Mapping[tuple[str, str], frozenset[str]]] = {
    TOKEN_ROUTE: frozenset({"accessToken"}),
    ("POST", "/api-tokens"): frozenset({"token"}),
    ("POST", "/sandboxes/{sandboxName}/auth"): frozenset({"accessToken", "sfdxAuthUrl"}),
    ("POST", "/pools/{tag}/fetch"): frozenset({"accessToken", "sfdxAuthUrl", "password"}),
    ("GET", "/environments/{name}"): frozenset({"auth.accessToken"}),
}
BANNER: Final = re.compile(rf"{re.escape(READY_LINE)}.*?Ctrl-C stops everything\.", re.DOTALL)


@dataclass(frozen=True)
class Hit:
    where: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.kind} in {self.where}: …{self.excerpt}…"


def _redacted(text: str, start: int, end: int) -> str:
    """Context around a hit, with the secret itself masked (a failing test prints it)."""
    secret = text[start:end]
    shown = f"{secret[:6]}[{len(secret)} chars]"
    return (text[max(0, start - 60) : start] + shown + text[end : end + 40]).replace("\n", " ")


def _lift(value: Any, allowed: frozenset[str], prefix: str = "") -> tuple[Any, list[str]]:
    """The JSON value with the allowed paths' strings replaced, and those strings."""
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        lifted: list[str] = []
        for key, item in value.items():
            path = f"{prefix}{key}"
            if path in allowed and isinstance(item, str):
                kept[key] = "[allowed]"
                lifted.append(item)
            else:
                kept[key], more = _lift(item, allowed, f"{path}.")
                lifted.extend(more)
        return kept, lifted
    return value, []


@dataclass
class SecretScanner:
    """Collects what one test made the broker produce and the secrets it may not contain."""

    known: set[str] = field(default_factory=set)
    texts: list[tuple[str, str]] = field(default_factory=list)
    answers: int = 0
    scanned_chars: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def secret(self, value: str | None) -> None:
        """Register a value that nothing but an allowed answer field may contain."""
        if value and len(value) >= MIN_SECRET_LENGTH:
            with self._lock:
                self.known.add(value)

    def output(self, where: str, text: str) -> None:
        """Register produced text (a log, a stored item, a stack's output) to scan."""
        if text:
            with self._lock:
                self.texts.append((where, text))

    def answer(self, event: Mapping[str, Any], result: Any) -> None:
        """A handler's answer to `event`: allowed secret fields lifted, the rest scanned."""
        route = (str(event.get("httpMethod")), str(event.get("resource")))
        where = f"answer of {route[0]} {route[1]}"
        with self._lock:
            self.answers += 1
        if not isinstance(result, dict) or "statusCode" not in result:
            self.output(f"authorizer policy for {where}", json.dumps(result, default=str))
            return
        body = result.get("body") or ""
        allowed = ALLOWED_FIELDS.get(route, frozenset())
        if allowed and int(result["statusCode"]) < 300:
            parsed, lifted = _lift(json.loads(body), allowed)
            for value in lifted:
                self.secret(value)
            body = json.dumps(parsed)
        headers = json.dumps([result.get("headers"), result.get("multiValueHeaders")])
        self.output(where, f"{result['statusCode']} {headers} {body}")

    def printed(self, where: str, text: str) -> None:
        """A test's captured stdout: when it is a token answer as the client CLI prints it
        (`sfbroker token`, whose purpose that is), its allowed field is lifted as in the
        route's answer; anything else is scanned whole."""
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict) and {"accessToken", "instanceUrl"} <= value.keys():
            kept, lifted = _lift(value, ALLOWED_FIELDS[TOKEN_ROUTE])
            for secret in lifted:
                self.secret(secret)
            text = json.dumps(kept)
        self.output(where, text)

    def hits(self) -> list[Hit]:
        """Every secret found in what was collected (known values and shapes)."""
        with self._lock:
            known = sorted(self.known, key=len, reverse=True)
            texts = list(self.texts)
        found: list[Hit] = []
        for where, text in texts:
            self.scanned_chars += len(text)
            for kind, shape in SHAPES.items():
                found.extend(
                    Hit(where, kind, _redacted(text, m.start(), m.end()))
                    for m in shape.finditer(text)
                )
            for secret in known:
                start = text.find(secret)
                if start >= 0:
                    found.append(
                        Hit(where, "known secret", _redacted(text, start, start + len(secret)))
                    )
        return found

    def reset(self) -> None:
        with self._lock:
            self.known.clear()
            self.texts.clear()


def fake_salesforce_secrets(fake: FakeSalesforceServer) -> Iterator[str]:
    """Every credential a fake Salesforce issued or holds."""
    state = fake.state
    with state.lock:
        yield from state.refresh_tokens
        yield from state.access_tokens
        yield from (app.client_secret or "" for app in state.connected_apps.values())
        for record in state.dev_hub_records.values():
            yield str(record.fields.get("Password__c") or "")


SCANNER: Final = SecretScanner()


def observe_stack_output(name: str, text: str) -> None:
    """A local stack subprocess's output, its banner (which shows local credentials) cut."""
    SCANNER.output(name, BANNER.sub("[banner]", text))


class _LogLines(logging.Handler):
    """Every record of a logger, formatted as that logger's own handlers format it."""

    def __init__(self, where: str, format_record: Callable[[logging.LogRecord], str]) -> None:
        super().__init__(logging.DEBUG)
        self._where = where
        self._format = format_record

    def emit(self, record: logging.LogRecord) -> None:
        try:
            SCANNER.output(self._where, self._format(record) + repr(record.__dict__))
        except Exception:  # a record that cannot be formatted is not ours to fix here
            SCANNER.output(self._where, repr(record.__dict__))


def _observe_aws_request(event_name: str, params: Mapping[str, Any], **_: Any) -> None:
    body = params.get("body")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    SCANNER.output(f"request {event_name.removeprefix('before-call.')}", text)


def pytest_configure(config: pytest.Config) -> None:
    """Watch the broker's outputs for the whole session."""
    from sfbroker.observability import logger as broker_logger

    lambdas.observers.append(SCANNER.answer)
    # Clients the broker and the tests create later copy the default session's handlers.
    session = boto3._get_default_session()
    session.events.register("before-call.dynamodb", _observe_aws_request)
    session.events.register("before-call.kms", _observe_aws_request)
    powertools = broker_logger._logger
    formatter = powertools.handlers[0].formatter if powertools.handlers else None
    powertools.addHandler(
        _LogLines("broker log", formatter.format if formatter else logging.Formatter().format)
    )
    logging.getLogger().addHandler(_LogLines("log record", logging.Formatter().format))
    config.stash[_totals] = {"tests": 0, "texts": 0, "answers": 0, "aws requests": 0, "hits": 0}


_totals = pytest.StashKey[dict[str, int]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    funcargs = getattr(item, "funcargs", None) or {}
    for value in funcargs.values():
        if isinstance(value, FakeSalesforceServer):
            for secret in fake_salesforce_secrets(value):
                SCANNER.secret(secret)
    if call.when != "teardown":
        return report
    for when, key, content in item._report_sections:
        if key == "stdout":
            SCANNER.printed(f"captured {key} ({when})", content)
        else:
            SCANNER.output(f"captured {key} ({when})", content)
    totals = item.config.stash[_totals]
    hits = SCANNER.hits()
    totals["tests"] += 1
    totals["texts"] += len(SCANNER.texts)
    totals["aws requests"] += sum(where.startswith("request ") for where, _ in SCANNER.texts)
    totals["answers"] += SCANNER.answers
    totals["hits"] += len(hits)
    SCANNER.answers = 0
    SCANNER.reset()
    if hits and report.passed:
        report.outcome = "failed"
        report.longrepr = "secret scan: a secret leaked\n" + "\n".join(map(str, hits[:20]))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    totals = config.stash.get(_totals, None)
    if totals:
        terminalreporter.write_line(
            f"secret scan: {totals['tests']} tests, {totals['answers']} answers, "
            f"{totals['aws requests']} AWS requests, {totals['texts']} outputs in all, "
            f"{SCANNER.scanned_chars} characters scanned, "
            f"{totals['hits']} hits"
        )
