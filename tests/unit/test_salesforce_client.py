"""The Salesforce client against canned answers from a transport adapter (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from sfbroker.authurl import parse_auth_url
from sfbroker.budget import new_budget
from sfbroker.errors import CredentialsRejected, HostNotAllowed, SalesforceError, SalesforceTimeout
from sfbroker.salesforce.client import SalesforceClient
from sfbroker.salesforce.hosts import HostPolicy
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

AUTH = parse_auth_url("force://PlatformCLI::5AepREFRESH@acme.my.salesforce.com")
GRANT_BODY = {
    "access_token": "00Dxx!AQ.ACCESS",
    "instance_url": "https://acme.my.salesforce.com",
    "id": "https://login.salesforce.com/id/00Dxx0000001gPL/005xx000001Sv6e",
    "token_type": "Bearer",
    "issued_at": "1732540000000",
    "signature": "sig",
}

Answer = Callable[[requests.PreparedRequest], requests.Response | Exception]


class FakeClock:
    """A monotonic clock that moves only when the client sleeps or a request stalls."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class CannedTransport(BaseAdapter):
    """Answers from `answer`; a timeout it raises first costs the whole timeout given."""

    def __init__(self, answer: Answer, clock: FakeClock | None = None) -> None:
        super().__init__()
        self.answer = answer
        self.clock = clock or FakeClock()
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[float] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        self.timeouts.append(kwargs["timeout"])
        result = self.answer(request)
        if isinstance(result, requests.Timeout):
            self.clock.now += kwargs["timeout"]
        if isinstance(result, Exception):
            raise result
        return result

    def close(self) -> None:
        return None


def respond(status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response


def client(
    answer: Answer,
    policy: HostPolicy | None = None,
    *,
    timeout: float = 1,
    max_retries: int = 2,
    budget_seconds: float = 25,
) -> tuple[SalesforceClient, CannedTransport]:
    clock = FakeClock()
    transport = CannedTransport(answer, clock)
    session = requests.Session()
    session.mount("https://", transport)
    session.mount("http://", transport)
    hosts = policy or HostPolicy(("*.salesforce.com",))
    budget = new_budget(budget_seconds, clock=clock)
    sf = SalesforceClient(
        session,
        hosts,
        api_version="62.0",
        timeout=timeout,
        max_retries=max_retries,
        budget=lambda: budget,
        sleep=clock.sleep,
    )
    return sf, transport


def test_refresh_sends_the_grant_and_reads_the_identity() -> None:
    sf, transport = client(lambda _: respond(200, GRANT_BODY))
    grant = sf.refresh(AUTH)
    assert grant.org_id == "00Dxx0000001gPL"
    assert grant.user_id == "005xx000001Sv6e"
    assert grant.refresh_token is None
    assert grant.access_token.get_secret_value() == "00Dxx!AQ.ACCESS"
    sent = transport.sent[0]
    assert sent.url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert "grant_type=refresh_token" in str(sent.body)
    assert "client_secret" not in str(sent.body)


def test_a_rotated_refresh_token_is_returned() -> None:
    sf, _ = client(lambda _: respond(200, {**GRANT_BODY, "refresh_token": "5AepNEW"}))
    rotated = sf.refresh(AUTH).refresh_token
    assert rotated is not None
    assert rotated.get_secret_value() == "5AepNEW"


@pytest.mark.parametrize("code", ["invalid_grant", "invalid_client_id", "invalid_client"])
def test_rejected_credentials(code: str) -> None:
    sf, _ = client(lambda _: respond(400, {"error": code, "error_description": "x"}))
    with pytest.raises(CredentialsRejected):
        sf.refresh(AUTH)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (respond(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}]), SalesforceError),
        (respond(200, b"<html>not json</html>"), SalesforceError),
        (respond(200, {"access_token": "x"}), SalesforceError),
        (respond(400, {"error": "unsupported_grant_type"}), SalesforceError),
        (requests.ConnectionError("refused"), SalesforceError),
        (requests.ReadTimeout("slow"), SalesforceTimeout),
        (
            requests.ConnectionError(MaxRetryError(None, "/", ReadTimeoutError(None, "/", "slow"))),  # type: ignore[arg-type]
            SalesforceTimeout,
        ),
    ],
)
def test_failures_become_domain_errors_without_secrets(answer: Any, error: type[Exception]) -> None:
    sf, _ = client(lambda _: answer)
    with pytest.raises(error) as caught:
        sf.refresh(AUTH)
    assert "5AepREFRESH" not in str(caught.value)


def test_an_instance_url_outside_the_allow_list_is_never_called() -> None:
    sf, transport = client(
        lambda _: respond(200, {**GRANT_BODY, "instance_url": "https://169.254.169.254"})
    )
    with pytest.raises(SalesforceError):
        sf.refresh(AUTH)
    assert len(transport.sent) == 1


def test_a_host_outside_the_allow_list_is_refused_before_any_request() -> None:
    sf, transport = client(lambda _: respond(200, GRANT_BODY))
    with pytest.raises(HostNotAllowed):
        sf.refresh(parse_auth_url("force://PlatformCLI::5AepREFRESH@evil.example.com"))
    assert transport.sent == []


def test_rest_calls_carry_the_bearer_token_and_escape_queries() -> None:
    def answer(request: requests.PreparedRequest) -> requests.Response:
        if request.url and "oauth2/token" in request.url:
            return respond(200, GRANT_BODY)
        if request.url and "userinfo" in request.url:
            return respond(
                200,
                {
                    "preferred_username": "admin@acme.com",
                    "organization_id": "00D",
                    "user_id": "005",
                },
            )
        if request.url and "describe" in request.url:
            return respond(404, [{"errorCode": "NOT_FOUND", "message": "x"}])
        return respond(
            200,
            {
                "totalSize": 1,
                "done": True,
                "records": [
                    {
                        "Id": "00D",
                        "IsSandbox": True,
                        "OrganizationType": "Developer Edition",
                        "TrialExpirationDate": "2027-01-01",
                    }
                ],
            },
        )

    sf, transport = client(answer)
    grant = sf.refresh(AUTH)
    assert sf.userinfo(grant).username == "admin@acme.com"
    info = sf.organization(grant)
    assert (info.is_sandbox, info.trial_expiration_date) == (True, "2027-01-01")
    assert sf.is_dev_hub(grant) is False
    for request in transport.sent[1:]:
        assert request.headers["Authorization"] == "Bearer 00Dxx!AQ.ACCESS"
    assert "SELECT%20Id" in str(transport.sent[2].url)


def test_host_policy_schemes_and_globs() -> None:
    policy = HostPolicy(("*.salesforce.com", "*.force.com"), ("127.0.0.1:*", "localhost:*"))
    assert policy.base_url("acme.my.salesforce.com") == "https://acme.my.salesforce.com"
    assert policy.base_url("127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert (
        policy.check_url("https://acme.lightning.force.com/") == "https://acme.lightning.force.com"
    )
    for bad in (
        "http://acme.my.salesforce.com",
        "ftp://acme.my.salesforce.com",
        "https://user@acme.my.salesforce.com",
        "https://salesforce.com.evil.io",
        "https://127.0.0.1:8080",
    ):
        with pytest.raises(SalesforceError):
            policy.check_url(bad)
    with pytest.raises(HostNotAllowed):
        policy.base_url("127.0.0.2:80")
    with pytest.raises(HostNotAllowed):
        HostPolicy(("*.salesforce.com",)).base_url("127.0.0.1:8080")


@pytest.mark.parametrize("port", ["22", "80", "8443", "0443"])
def test_an_auth_url_host_on_another_port_than_443_is_refused_before_any_request(
    port: str,
) -> None:
    sf, transport = client(lambda _: respond(200, GRANT_BODY))
    with pytest.raises(HostNotAllowed) as refused:
        sf.refresh(
            parse_auth_url(f"force://PlatformCLI::5AepREFRESH@acme.my.salesforce.com:{port}")
        )
    assert transport.sent == []
    assert "443" in refused.value.message


def test_an_auth_url_host_on_port_443_is_used() -> None:
    sf, transport = client(lambda _: respond(200, GRANT_BODY))
    sf.refresh(parse_auth_url("force://PlatformCLI::5AepREFRESH@acme.my.salesforce.com:443"))
    assert str(transport.sent[0].url).startswith("https://acme.my.salesforce.com")


@pytest.mark.parametrize("port", ["22", "8080"])
def test_an_instance_url_on_another_port_than_443_is_refused_before_it_is_called(
    port: str,
) -> None:
    sf, transport = client(
        lambda _: respond(
            200, {**GRANT_BODY, "instance_url": f"https://acme.my.salesforce.com:{port}"}
        )
    )
    with pytest.raises(HostNotAllowed):
        sf.refresh(AUTH)
    assert len(transport.sent) == 1  # the token request; the instance is never dialled


def test_only_a_glob_naming_a_port_allows_other_ports() -> None:
    policy = HostPolicy(("*.salesforce.com", "sf.test:8443"), ("127.0.0.1:*",))
    assert policy.base_url("sf.test:8443") == "https://sf.test:8443"
    assert policy.base_url("127.0.0.1:4000") == "http://127.0.0.1:4000"
    with pytest.raises(HostNotAllowed):
        policy.base_url("sf.test:8444")


def refused() -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))  # type: ignore[arg-type]


def unknown_host() -> requests.ConnectionError:
    reason = NameResolutionError("acme.my.salesforce.com", None, OSError("no such host"))  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def answers(*results: requests.Response | Exception) -> Answer:
    """Each request gets the next result; the last one repeats."""
    queue = list(results)
    return lambda _: queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.mark.parametrize(
    "lost",
    [
        requests.ReadTimeout("slow"),
        requests.ConnectionError(MaxRetryError(None, "/", ReadTimeoutError(None, "/", "slow"))),  # type: ignore[arg-type]
        requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError())),
    ],
    ids=["read-timeout", "read-timeout-wrapped", "connection-reset"],
)
def test_a_refresh_whose_answer_may_be_lost_is_sent_once(lost: Exception) -> None:
    sf, transport = client(answers(lost, respond(200, GRANT_BODY)))
    with pytest.raises((SalesforceTimeout, SalesforceError)):
        sf.refresh(AUTH)
    assert len(transport.sent) == 1


@pytest.mark.parametrize(
    "not_sent",
    [
        refused(),
        unknown_host(),
        requests.ConnectTimeout(MaxRetryError(None, "/", ConnectTimeoutError("slow connect"))),  # type: ignore[arg-type]
        respond(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}]),
        respond(429, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "later"}]),
    ],
    ids=["refused", "dns", "connect-timeout", "503", "429"],
)
def test_a_request_that_did_not_reach_salesforce_is_retried(
    not_sent: requests.Response | Exception,
) -> None:
    sf, transport = client(answers(not_sent, not_sent, respond(200, GRANT_BODY)))
    assert sf.refresh(AUTH).org_id == "00Dxx0000001gPL"
    assert len(transport.sent) == 3
    assert transport.clock.sleeps == [0.2, 0.4]  # backoff


def test_retries_are_bounded_by_max_retries() -> None:
    sf, transport = client(answers(refused()), max_retries=2)
    with pytest.raises(SalesforceError):
        sf.refresh(AUTH)
    assert len(transport.sent) == 3


def test_a_hanging_salesforce_answers_504_within_the_budget() -> None:
    """Connect timeouts (never sent) are retried, each attempt only gets what is left."""
    hang = requests.ConnectTimeout(MaxRetryError(None, "/", ConnectTimeoutError("hang")))  # type: ignore[arg-type]
    sf, transport = client(answers(hang), timeout=10, max_retries=5, budget_seconds=25)
    with pytest.raises(SalesforceTimeout):
        sf.refresh(AUTH)
    assert transport.clock.now <= 25
    assert transport.timeouts == [10, 10, pytest.approx(4.4)]


def test_every_call_of_a_request_shares_one_budget() -> None:
    """A registration's four calls cannot take four timeouts each."""
    hang = requests.ReadTimeout("hang")
    sf, transport = client(answers(respond(200, GRANT_BODY), hang), timeout=10)
    grant = sf.refresh(AUTH)
    for _ in range(3):
        with pytest.raises(SalesforceTimeout):
            sf.userinfo(grant)
    assert transport.clock.now == 25
    assert transport.timeouts == [10, 10, 10, 5]
    with pytest.raises(SalesforceTimeout):
        sf.userinfo(grant)
    assert len(transport.sent) == 4  # no time left: not even sent


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
@pytest.mark.parametrize(
    ("status", "body", "done"),
    [(204, b"", True), (200, b'{"records": [', False), (200, b"{}", False), (201, b"", False)],
)
def test_a_record_write_is_done_only_when_salesforce_answers_204(
    method: str, status: int, body: bytes, done: bool
) -> None:
    """SALESFORCE.md: PATCH and DELETE of a record answer 204; any other answer (a 200
    with a body mangled on the way) is a `SalesforceError`, never taken as done."""

    def answer(request: requests.PreparedRequest) -> requests.Response:
        if request.url and "oauth2/token" in request.url:
            return respond(200, GRANT_BODY)
        return respond(status, body)

    sf, transport = client(answer)
    grant = sf.refresh(AUTH)

    def write() -> None:
        if method == "PATCH":
            sf.update_record(grant, "ScratchOrgInfo", "2SR000000000001", {"A": "B"})
        else:
            assert sf.delete_record(grant, "ActiveScratchOrg", "1AS000000000001")

    if done:
        write()
    else:
        with pytest.raises(SalesforceError, match="not 204"):
            write()
    assert [r.method for r in transport.sent] == ["POST", method]
