"""Hostile input: a clear 4xx in API.md's error body, no outbound request, nothing stored.

Oversized bodies and fields, usernames with control characters, bidi overrides, SOQL
metacharacters or path traversal, and auth URLs naming private, loopback, link-local or
look-alike hosts. "No outbound request" is observed with a Python audit hook on
`socket.connect` (every connection any thread of this process opens): during a hostile
request the only connections allowed are to local AWS (moto); the fake Salesforce,
which would accept anything, must see none either.
"""

from __future__ import annotations

import json
import sys
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlsplit

import pytest

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Answer, Broker

_CONNECTS: list[tuple[Any, ...]] = []
_WATCHING = threading.Event()


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _WATCHING.is_set():
        _CONNECTS.append(args[1])


sys.addaudithook(_on_audit)  # for the process's life; it records only while watching


@contextmanager
def outbound() -> Iterator[list[tuple[Any, ...]]]:
    """The addresses connected to meanwhile."""
    _CONNECTS.clear()
    _WATCHING.set()
    try:
        yield _CONNECTS
    finally:
        _WATCHING.clear()


@pytest.fixture
def database_endpoint() -> None:
    """moto only: what is refused before any write does not depend on the database."""
    return


@pytest.fixture
def registered(broker: Broker, salesforce: FakeSalesforceServer, acme: str) -> str:
    assert broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": acme}).status == 201
    return acme


def refused(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    moto_endpoint: str,
    method: str,
    path: str,
    **kwargs: Any,
) -> Answer:
    """Send a hostile request; assert 4xx + error body, no connection but to AWS, no write."""
    before = broker.snapshot()
    salesforce.reset_counts()
    with outbound() as connects:
        answer = broker.call(method, path, **kwargs)
    assert 400 <= answer.status < 500, (answer.status, answer.raw and answer.raw[:300])
    assert isinstance(answer.body, dict), answer.raw
    assert {"error", "message", "requestId"} <= answer.body.keys()
    aws_port = urlsplit(moto_endpoint).port
    assert {address[1] for address in connects} <= {aws_port}, connects
    assert sum(salesforce.counts.values()) == 0
    assert broker.snapshot() == before
    return answer


MEGABYTE: Final = 1024 * 1024
OVERSIZED: Final = [
    pytest.param(
        "POST", "/orgs", {"sfdxAuthUrl": "force://a::" + "x" * MEGABYTE + "@x"}, id="auth-url-1MB"
    ),
    pytest.param(
        "POST",
        "/orgs",
        {
            "sfdxAuthUrl": "force://PlatformCLI::5Aep@acme.my.salesforce.com",
            "alias": "a" * MEGABYTE,
        },
        id="alias-1MB",
    ),
    pytest.param(
        "POST", "/api-tokens", {"name": "n" * MEGABYTE, "scopes": ["admin"]}, id="token-name-1MB"
    ),
    pytest.param(
        "POST",
        "/api-tokens",
        {"name": "n", "scopes": ["orgs:read"], "orgs": ["*"] * 100_000},
        id="100k-org-patterns",
    ),
    pytest.param(
        "POST", "/orgs/{username}/token", {"minValiditySeconds": 10**4000}, id="huge-integer"
    ),
    pytest.param(
        "POST", "/orgs", {"sfdxAuthUrl": "x", "extra": ["y" * 1000] * 5000}, id="5MB-unknown-field"
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), OVERSIZED)
def test_oversized_bodies_are_refused(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    moto_endpoint: str,
    registered: str,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    params = {"username": "admin@acme.com"} if "{username}" in path else None
    raw = (
        json.dumps(body)
        if not isinstance(body.get("minValiditySeconds"), int)
        else ('{"minValiditySeconds": ' + "9" * 5000 + "}")
    )
    answer = refused(
        broker, salesforce, moto_endpoint, method, path, path_params=params, raw_body=raw
    )
    assert answer.status in (400, 413, 415), answer.body
    assert len(answer.raw or "") < 2000  # nothing of the body is echoed


HOSTILE_USERNAMES: Final = [
    pytest.param("admin@acme.com\x00", id="nul"),
    pytest.param("admin@acme.com\r\nX-Injected: 1", id="crlf"),
    pytest.param("admin@acme.com\x1b[31m", id="ansi-escape"),
    pytest.param("\u202eadmin@acme.com", id="bidi-override"),
    pytest.param("admin@acme.com\u200b", id="zero-width-space"),
    pytest.param("\u0430dmin@acme.com", id="cyrillic-lookalike"),
    pytest.param("admin' OR Username LIKE '%", id="soql-quote"),
    pytest.param("admin@acme.com' AND IsActive = true --", id="soql-comment"),
    pytest.param("%' OR '1'='1", id="soql-wildcard"),
    pytest.param("../api-tokens", id="traversal"),
    pytest.param("..%2Fapi-tokens", id="encoded-traversal"),
    pytest.param("admin@acme.com/../../api-tokens", id="nested-traversal"),
    pytest.param("*", id="glob-star"),
    pytest.param("a" * 10_000, id="10k-chars"),
]
USERNAME_ROUTES: Final = [
    ("GET", "/orgs/{username}"),
    ("DELETE", "/orgs/{username}"),
    ("POST", "/orgs/{username}/token"),
]


def unprintable(text: str) -> bool:
    """Control or format characters (NUL, CR/LF, ESC, bidi overrides, zero-width)."""
    return any(unicodedata.category(char) in {"Cc", "Cf"} for char in text)


@pytest.mark.parametrize(("method", "path"), USERNAME_ROUTES, ids=[m for m, _ in USERNAME_ROUTES])
@pytest.mark.parametrize("username", HOSTILE_USERNAMES)
def test_hostile_usernames_are_refused_or_not_found(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    moto_endpoint: str,
    registered: str,
    method: str,
    path: str,
    username: str,
) -> None:
    answer = refused(
        broker, salesforce, moto_endpoint, method, path, path_params={"username": username}
    )
    if unprintable(username) or len(username) > 240:
        # Refused as malformed, and never echoed (a log or terminal would render it).
        assert (answer.status, answer.error) == (400, "invalid_request"), answer.body
        assert username not in (answer.raw or "")
    else:
        # A well-formed name of no registered org: its 404 names it, as API.md shows.
        assert (answer.status, answer.error) in {
            (400, "invalid_request"),
            (404, "org_not_found"),
        }, answer.body


HOSTILE_HOSTS: Final = [
    "169.254.169.254",  # instance metadata
    "169.254.170.2",  # ECS task metadata
    "[fd00:ec2::254]",  # IPv6 metadata
    "[::1]",
    "[fe80::1]",
    "10.0.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "127.0.0.1",  # over https: the fake's http host is allowed only on its own port
    "0.0.0.0",  # noqa: S104 (a host to refuse, not one to bind)
    "2130706433",  # 127.0.0.1 as a number
    "0x7f.1",
    "localhost",
    "metadata.google.internal",
    "acme.my.salesforce.com.evil.example",
    "evil.example#.salesforce.com",
    "evil.example?.salesforce.com",
    "evil.example\\.salesforce.com",
    "acme.my.salesforce.com:22",
    "acme.my.salesforce.com@evil.example",
    "xn--salesfrce-z7a.com",
]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_auth_urls_at_private_or_look_alike_hosts_contact_nothing(
    broker: Broker, salesforce: FakeSalesforceServer, moto_endpoint: str, host: str
) -> None:
    auth_url = f"force://PlatformCLI::5Aep861{'T' * 80}@{host}"
    answer = refused(
        broker, salesforce, moto_endpoint, "POST", "/orgs", json_body={"sfdxAuthUrl": auth_url}
    )
    assert (answer.status, answer.error) in {
        (400, "host_not_allowed"),
        (400, "invalid_auth_url"),
        (400, "invalid_request"),
    }, answer.body
