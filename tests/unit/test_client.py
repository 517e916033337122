"""The `sfbroker` client: HTTP calls, auth, output formats, errors and `--sf-login`.

No sockets: every HTTP call goes through `FakeTransport`, a requests transport adapter that
records the prepared requests and answers with canned responses (a guard fails any test
that tries to connect). `--sf-login` runs a fake `sf` executable written to tmp_path.
"""

import argparse
import hashlib
import hmac
import io
import json
import re
import shlex
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from sfbroker_client import __version__, salesforce_cli
from sfbroker_client.api import ApiError, BrokerClient, ConnectionFailed
from sfbroker_client.auth import BearerAuth, IamAuth, IamUnavailable, iam_auth_from_environment
from sfbroker_client.cli import ExitCode, main
from sfbroker_client.output import redact
from sfbroker_client.salesforce_cli import SfLoginFailed, log_in

BASE_URL = "https://broker.example.com/v1"
API_TOKEN = "sfb_abc123_s3cr3tS3cr3tS3cr3t"
ACCESS_TOKEN = "00D000000000001!AQ4AQDsession.secret-value"
AUTH_URL = "force://PlatformCLI::5Aep861refresh.token@acme.my.salesforce.com"
TOKEN_BODY = {
    "accessToken": ACCESS_TOKEN,
    "instanceUrl": "https://acme.my.salesforce.com",
    "username": "admin@acme.com",
    "orgId": "00D000000000001EAA",
    "expiresAt": "2026-11-25T13:30:00Z",
    "source": "refresh",
}
ORG_BODY = {
    "username": "admin@acme.com",
    "orgId": "00D000000000001EAA",
    "instanceUrl": "https://acme.my.salesforce.com",
    "loginUrl": "https://acme.my.salesforce.com",
    "orgType": "production",
    "isDevHub": False,
    "isDefault": False,
    "alias": "prod",
    "status": "active",
}


# --- fakes -------------------------------------------------------------------------------


@dataclass
class Canned:
    """One canned answer: a dict/list body is sent as JSON, a str as it is."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeTransport(BaseAdapter):
    """A requests transport that records what would be sent and answers from a script."""

    def __init__(self, *answers: Canned | Exception) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(timeout)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code = answer.status
        response.reason = "Canned"
        response.url = request.url or ""
        response.request = request
        headers = dict(answer.headers)
        if isinstance(answer.body, dict | list):
            response._content = json.dumps(answer.body).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            response._content = (answer.body or "").encode()
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass

    @property
    def last(self) -> requests.PreparedRequest:
        return self.sent[-1]

    def last_json(self) -> Any:
        body = self.last.body
        assert isinstance(body, bytes)
        return json.loads(body)


def session_with(transport: FakeTransport) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or ~/.netrc from the machine running the tests
    session.mount("https://", transport)
    session.mount("http://", transport)
    return session


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "SFBROKER_URL",
        "SFBROKER_TOKEN",
        "SFBROKER_SF_BIN",
        "SFBROKER_LEASE_ID",
        "SFBROKER_IDEMPOTENCY_KEY",
        "GITHUB_REPOSITORY",
        "GITHUB_RUN_ID",
        "GITHUB_RUN_ATTEMPT",
        "GITHUB_JOB",
        "GITHUB_ACTION",
        "CI_JOB_ID",
        "GITHUB_ENV",
        "GITHUB_OUTPUT",
        "SF_ACCESS_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    # botocore must find no profile of the developer's and never ask instance metadata.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def broker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFBROKER_URL", BASE_URL + "/")
    monkeypatch.setenv("SFBROKER_TOKEN", API_TOKEN)


def run_cli(transport: FakeTransport, *argv: str) -> int:
    return main(list(argv), session=session_with(transport))


# --- BrokerClient ------------------------------------------------------------------------


def client_with(transport: FakeTransport, auth: Any = None) -> BrokerClient:
    return BrokerClient(
        BASE_URL + "/", auth or BearerAuth(API_TOKEN), 12.5, session=session_with(transport)
    )


def test_issue_token_encodes_the_username_as_one_path_segment() -> None:
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    body = client_with(transport).issue_token("admin@acme.com", min_validity_seconds=600)

    assert body == TOKEN_BODY
    sent = transport.last
    assert sent.method == "POST"
    assert sent.path_url == "/v1/orgs/admin%40acme.com/token"
    assert sent.headers["Content-Type"] == "application/json"
    assert transport.last_json() == {"forceRefresh": False, "minValiditySeconds": 600}
    assert transport.timeouts == [12.5]


def test_a_slash_in_a_username_stays_inside_its_segment() -> None:
    transport = FakeTransport(Canned(body=ORG_BODY))

    client_with(transport).get_org("odd/user@acme.com")

    assert transport.last.path_url == "/v1/orgs/odd%2Fuser%40acme.com"


def test_bearer_token_goes_in_the_authorization_header_and_not_in_repr() -> None:
    transport = FakeTransport(Canned(body={"orgs": []}))
    auth = BearerAuth(API_TOKEN)

    client_with(transport, auth).list_orgs()

    assert transport.last.headers["Authorization"] == f"Bearer {API_TOKEN}"
    assert API_TOKEN not in repr(auth)


def test_list_orgs_sends_filters_as_query_parameters() -> None:
    transport = FakeTransport(Canned(body={"orgs": [ORG_BODY]}))

    body = client_with(transport).list_orgs(org_type="sandbox", is_dev_hub=True)

    assert body == {"orgs": [ORG_BODY]}
    assert transport.last.method == "GET"
    assert transport.last.path_url == "/v1/orgs?orgType=sandbox&isDevHub=true"
    assert transport.last.body is None


def test_register_org_sends_the_auth_url_in_the_body() -> None:
    transport = FakeTransport(Canned(201, ORG_BODY))

    client_with(transport).register_org(AUTH_URL, alias="prod", is_dev_hub=True)

    assert transport.last.path_url == "/v1/orgs"
    assert transport.last_json() == {
        "sfdxAuthUrl": AUTH_URL,
        "isDevHub": True,
        "isDefault": False,
        "alias": "prod",
    }


def test_api_error_carries_code_message_request_id_and_details() -> None:
    error_body = {
        "error": "invalid_auth_url",
        "message": "Not an SFDX auth URL",
        "requestId": "req-7",
        "details": [{"field": "sfdxAuthUrl", "message": "must start with force://"}],
    }
    transport = FakeTransport(Canned(400, error_body))

    with pytest.raises(ApiError) as caught:
        client_with(transport).register_org("nope")

    error = caught.value
    assert (error.status, error.code, error.message, error.request_id) == (
        400,
        "invalid_auth_url",
        "Not an SFDX auth URL",
        "req-7",
    )
    assert error.details == [{"field": "sfdxAuthUrl", "message": "must start with force://"}]


def test_api_gateway_error_without_our_body_still_has_a_code_and_request_id() -> None:
    transport = FakeTransport(
        Canned(403, {"message": "Missing Authentication Token"}, {"x-amzn-RequestId": "gw-1"})
    )

    with pytest.raises(ApiError) as caught:
        client_with(transport).health()

    assert (caught.value.code, caught.value.message, caught.value.request_id) == (
        "forbidden",
        "Missing Authentication Token",
        "gw-1",
    )


def test_html_error_page_becomes_one_short_line() -> None:
    page = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<h1>oops</h1></body>"
    transport = FakeTransport(Canned(502, page, {"Content-Type": "text/html"}))

    with pytest.raises(ApiError) as caught:
        client_with(transport).health()

    assert (caught.value.code, caught.value.message) == ("bad_gateway", "502 Bad Gateway")


def test_a_success_that_is_not_a_json_object_is_an_error() -> None:
    transport = FakeTransport(Canned(200, "<html>login page</html>"))

    with pytest.raises(ApiError) as caught:
        client_with(transport).health()

    assert caught.value.code == "invalid_response"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (requests.ConnectTimeout("connect timed out"), "no answer within 12.5 s"),
        (requests.ReadTimeout("read timed out"), "no answer within 12.5 s"),
        (
            requests.ConnectionError(
                "HTTPSConnectionPool(host='broker.example.com', port=443): Max retries exceeded"
                " (Caused by NewConnectionError('<...>: Failed to establish a new connection:"
                " [Errno 111] Connection refused'))"
            ),
            "connection refused",
        ),
        (requests.exceptions.SSLError("certificate verify failed"), "TLS handshake failed"),
    ],
)
def test_unreachable_server_is_connection_failed(failure: Exception, reason: str) -> None:
    transport = FakeTransport(failure)

    with pytest.raises(ConnectionFailed) as caught:
        client_with(transport).health()

    assert str(caught.value).startswith("cannot reach https://broker.example.com: ")
    assert reason in str(caught.value)


# --- SigV4 -------------------------------------------------------------------------------

AWS_KEY_ID = "AKIDEXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AWS_SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessiontoken"
FROZEN_DATE = "20261125T120000Z"


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime

    import botocore.auth

    frozen = datetime.datetime(2026, 11, 25, 12, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: frozen)


def iam_auth() -> IamAuth:
    from botocore.credentials import Credentials

    return IamAuth(Credentials(AWS_KEY_ID, AWS_SECRET, AWS_SESSION_TOKEN), "eu-west-1")


def independent_sigv4(request: requests.PreparedRequest, signed_headers: list[str]) -> str:
    """SigV4 (execute-api) computed from the request as sent, written from the AWS spec."""
    assert request.url is not None
    assert request.method is not None
    url = urlsplit(request.url)
    # Every service but S3 URI-encodes the (already encoded) path once more.
    canonical_uri = quote(url.path, safe="/~")
    canonical_query = "&".join(sorted(url.query.split("&"))) if url.query else ""
    values = {"host": url.netloc} | {k.lower(): v for k, v in request.headers.items()}
    canonical_headers = "".join(f"{name}:{values[name].strip()}\n" for name in signed_headers)
    body = request.body or b""
    assert isinstance(body, bytes)
    canonical_request = "\n".join(
        [
            request.method,
            canonical_uri,
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/eu-west-1/execute-api/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{AWS_SECRET}".encode()
    for part in (amz_date[:8], "eu-west-1", "execute-api", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def parse_authorization(header: str) -> dict[str, str]:
    algorithm, _, rest = header.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    return dict(part.strip().split("=", 1) for part in rest.split(","))


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize(
    ("call", "signed"),
    [
        (
            lambda c: c.issue_token("admin@acme.com", force_refresh=True),
            "content-type;host;x-amz-date;x-amz-security-token",
        ),
        (
            lambda c: c.list_orgs(org_type="sandbox", is_dev_hub=False),
            "host;x-amz-date;x-amz-security-token",
        ),
        (lambda c: c.get_org("admin@acme.com.uat"), "host;x-amz-date;x-amz-security-token"),
    ],
)
def test_sigv4_signature_verifies_over_the_bytes_sent(call: Any, signed: str) -> None:
    transport = FakeTransport(Canned(body={}))

    call(client_with(transport, iam_auth()))

    sent = transport.last
    assert sent.headers["X-Amz-Date"] == FROZEN_DATE
    assert sent.headers["X-Amz-Security-Token"] == AWS_SESSION_TOKEN
    parts = parse_authorization(sent.headers["Authorization"])
    assert parts["Credential"] == f"{AWS_KEY_ID}/20261125/eu-west-1/execute-api/aws4_request"
    assert parts["SignedHeaders"] == signed
    assert parts["Signature"] == independent_sigv4(sent, signed.split(";"))


@pytest.mark.usefixtures("frozen_clock")
def test_sigv4_signature_covers_the_body_and_the_path() -> None:
    transport = FakeTransport(Canned(body={}))
    client_with(transport, iam_auth()).issue_token("admin@acme.com")
    sent = transport.last
    signed = parse_authorization(sent.headers["Authorization"])["SignedHeaders"].split(";")
    signature = parse_authorization(sent.headers["Authorization"])["Signature"]

    tampered_body = sent.copy()
    tampered_body.body = b'{"forceRefresh":true}'
    tampered_path = sent.copy()
    tampered_path.url = (sent.url or "").replace("admin%40acme.com", "other%40acme.com")

    assert independent_sigv4(sent, signed) == signature
    assert independent_sigv4(tampered_body, signed) != signature
    assert independent_sigv4(tampered_path, signed) != signature


def test_iam_auth_takes_credentials_and_region_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")

    assert iam_auth_from_environment(None, BASE_URL).region == "us-east-2"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert iam_auth_from_environment(None, BASE_URL).region == "eu-central-1"
    assert iam_auth_from_environment("ap-south-1", BASE_URL).region == "ap-south-1"


def test_iam_region_falls_back_to_the_execute_api_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    url = "https://abc123.execute-api.sa-east-1.amazonaws.com/v1"

    assert iam_auth_from_environment(None, url).region == "sa-east-1"
    with pytest.raises(IamUnavailable, match="region"):
        iam_auth_from_environment(None, BASE_URL)


def test_iam_without_botocore_is_a_clear_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "botocore.session", None)  # import now fails
    transport = FakeTransport()

    code = run_cli(transport, "--url", BASE_URL, "--iam", "token", "admin@acme.com")

    assert code == ExitCode.USAGE
    assert "pip install 'sfbroker-client[iam]'" in capsys.readouterr().err
    assert transport.sent == []


def test_iam_without_aws_credentials_is_an_auth_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    transport = FakeTransport()

    code = run_cli(transport, "--url", BASE_URL, "--iam", "--region", "eu-west-1", "health")

    assert code == ExitCode.AUTH
    err = capsys.readouterr().err
    assert err.startswith("sfbroker: no_aws_credentials: ")
    assert transport.sent == []


@pytest.mark.usefixtures("frozen_clock")
def test_cli_iam_signs_instead_of_sending_the_bearer_token(
    monkeypatch: pytest.MonkeyPatch, broker_env: None
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    assert run_cli(transport, "--iam", "token", "admin@acme.com") == ExitCode.OK

    authorization = transport.last.headers["Authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/20261125/")
    signed = parse_authorization(authorization)["SignedHeaders"].split(";")
    assert parse_authorization(authorization)["Signature"] == independent_sigv4(
        transport.last, signed
    )


# --- CLI: commands and formats -----------------------------------------------------------


@pytest.mark.usefixtures("broker_env")
def test_token_prints_the_response_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    code = run_cli(transport, "token", "admin@acme.com", "--min-validity", "900", "--force-refresh")

    assert code == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == TOKEN_BODY
    assert transport.last.url == f"{BASE_URL}/orgs/admin%40acme.com/token"
    assert transport.last_json() == {"forceRefresh": True, "minValiditySeconds": 900}
    assert transport.last.headers["Authorization"] == f"Bearer {API_TOKEN}"


@pytest.mark.usefixtures("broker_env")
def test_global_options_work_after_the_command_words(capsys: pytest.CaptureFixture[str]) -> None:
    transport = FakeTransport(Canned(body=ORG_BODY))

    code = run_cli(
        transport, "orgs", "get", "admin@acme.com", "--url", "http://127.0.0.1:3000/", "--token",
        "sfb_other_token", "--timeout", "5", "--format", "env",
    )  # fmt: skip

    assert code == ExitCode.OK
    assert transport.last.url == "http://127.0.0.1:3000/orgs/admin%40acme.com"
    assert transport.last.headers["Authorization"] == "Bearer sfb_other_token"
    assert transport.timeouts == [5.0]
    assert "SF_USERNAME=admin@acme.com" in capsys.readouterr().out


@pytest.mark.usefixtures("broker_env")
def test_env_format_prints_shell_quoted_assignments(capsys: pytest.CaptureFixture[str]) -> None:
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    assert run_cli(transport, "--format", "env", "token", "admin@acme.com") == ExitCode.OK

    out = capsys.readouterr().out
    assert f"SF_ACCESS_TOKEN={shlex.quote(ACCESS_TOKEN)}\n" in out
    assigned = dict(word.split("=", 1) for word in shlex.split(out))
    assert assigned == {
        "SF_ACCESS_TOKEN": ACCESS_TOKEN,
        "SF_INSTANCE_URL": "https://acme.my.salesforce.com",
        "SF_USERNAME": "admin@acme.com",
        "SF_ORG_ID": "00D000000000001EAA",
        "SF_EXPIRES_AT": "2026-11-25T13:30:00Z",
    }


@pytest.mark.usefixtures("broker_env")
@pytest.mark.parametrize("fmt", ["env", "github"])
def test_env_and_github_formats_refuse_a_listing_before_any_request(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = FakeTransport()

    code = run_cli(transport, "--format", fmt, "orgs", "list")

    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"sfbroker: usage_error: --format {fmt} is not meaningful")
    assert transport.sent == []


def read_github_file(path: Path) -> dict[str, str]:
    """Parse a $GITHUB_ENV / $GITHUB_OUTPUT file the way the runner does."""
    values: dict[str, str] = {}
    lines = iter(path.read_text().split("\n"))
    for line in lines:
        if not line:
            continue
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            body = []
            for body_line in lines:
                if body_line == delimiter:
                    break
                body.append(body_line)
            else:
                raise AssertionError(f"unterminated heredoc for {name}")
            values[name] = "\n".join(body)
        else:
            name, value = line.split("=", 1)
            values[name] = value
    return values


@pytest.fixture
def github_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    env_file, output_file = tmp_path / "github_env", tmp_path / "github_output"
    env_file.write_text("EARLIER=kept\n")
    output_file.write_text("")
    monkeypatch.setenv("GITHUB_ENV", str(env_file))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output_file))
    return env_file, output_file


@pytest.mark.usefixtures("broker_env")
def test_github_format_masks_first_then_writes_env_and_outputs(
    github_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    assert run_cli(transport, "--format", "github", "token", "admin@acme.com") == ExitCode.OK

    out_lines = capsys.readouterr().out.splitlines()
    assert out_lines[0] == f"::add-mask::{ACCESS_TOKEN}"
    assert all(ACCESS_TOKEN not in line for line in out_lines[1:])
    assert any("SF_ORG_ID / org_id = 00D000000000001EAA" in line for line in out_lines)
    env_file, output_file = github_files
    assert read_github_file(env_file) == {
        "EARLIER": "kept",
        "SF_ACCESS_TOKEN": ACCESS_TOKEN,
        "SF_INSTANCE_URL": "https://acme.my.salesforce.com",
        "SF_USERNAME": "admin@acme.com",
        "SF_ORG_ID": "00D000000000001EAA",
        "SF_EXPIRES_AT": "2026-11-25T13:30:00Z",
    }
    assert read_github_file(output_file) == {
        "access_token": ACCESS_TOKEN,
        "instance_url": "https://acme.my.salesforce.com",
        "username": "admin@acme.com",
        "org_id": "00D000000000001EAA",
        "expires_at": "2026-11-25T13:30:00Z",
    }


def test_github_format_masks_every_secret_and_survives_multiline_values(
    tmp_path: Path,
) -> None:
    from sfbroker_client.output import write_github

    record = {"username": "test-xyz@example.com", "sfdxAuthUrl": AUTH_URL, "password": "p%w\nx"}
    stdout = io.StringIO()
    env_file, output_file = tmp_path / "env", tmp_path / "out"

    write_github(record, stdout, env_file, output_file)

    lines = stdout.getvalue().splitlines()
    assert lines[:2] == [f"::add-mask::{AUTH_URL}", "::add-mask::p%25w%0Ax"]
    assert AUTH_URL not in "\n".join(lines[2:])
    assert read_github_file(env_file)["SF_PASSWORD"] == "p%w\nx"
    assert read_github_file(output_file)["sfdx_auth_url"] == AUTH_URL


@pytest.mark.usefixtures("broker_env")
def test_github_format_without_runner_files_fails_before_the_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    transport = FakeTransport()

    code = run_cli(transport, "--format", "github", "token", "admin@acme.com")

    assert code == ExitCode.USAGE
    assert "GITHUB_ENV and GITHUB_OUTPUT" in capsys.readouterr().err
    assert transport.sent == []


@pytest.mark.usefixtures("broker_env")
def test_orgs_list_passes_filters(capsys: pytest.CaptureFixture[str]) -> None:
    transport = FakeTransport(Canned(body={"orgs": [ORG_BODY]}))

    assert run_cli(transport, "orgs", "list", "--org-type", "devhub", "--dev-hub") == ExitCode.OK

    assert transport.last.path_url == "/v1/orgs?orgType=devhub&isDevHub=true"
    assert json.loads(capsys.readouterr().out) == {"orgs": [ORG_BODY]}


@pytest.mark.usefixtures("broker_env")
def test_orgs_register_reads_the_auth_url_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(AUTH_URL + "\n"))
    transport = FakeTransport(Canned(201, ORG_BODY))

    code = run_cli(
        transport, "orgs", "register", "--sfdx-auth-url-stdin", "--alias", "prod", "--default"
    )

    assert code == ExitCode.OK
    assert transport.last_json() == {
        "sfdxAuthUrl": AUTH_URL,
        "isDevHub": False,
        "isDefault": True,
        "alias": "prod",
    }
    assert AUTH_URL not in capsys.readouterr().out


@pytest.mark.usefixtures("broker_env")
@pytest.mark.parametrize("stdin", ["", "  \n", f"{AUTH_URL}\n{AUTH_URL}\n"])
def test_orgs_register_rejects_empty_or_ambiguous_stdin(
    stdin: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    transport = FakeTransport()

    assert run_cli(transport, "orgs", "register", "--sfdx-auth-url-stdin") == ExitCode.USAGE

    err = capsys.readouterr().err
    assert err.startswith("sfbroker: usage_error: --sfdx-auth-url-stdin")
    assert AUTH_URL not in err
    assert transport.sent == []


@pytest.mark.usefixtures("broker_env")
def test_orgs_register_has_no_way_to_take_the_url_from_argv() -> None:
    with pytest.raises(SystemExit) as caught:
        run_cli(FakeTransport(), "orgs", "register", AUTH_URL)
    assert caught.value.code == ExitCode.USAGE


def test_health_needs_no_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SFBROKER_URL", BASE_URL)
    transport = FakeTransport(Canned(body={"status": "ok", "version": "0.1.0"}))

    assert run_cli(transport, "health") == ExitCode.OK

    assert "Authorization" not in transport.last.headers
    assert json.loads(capsys.readouterr().out)["status"] == "ok"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"sfbroker {__version__}"


# --- CLI: usage errors -------------------------------------------------------------------


def test_missing_url_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SFBROKER_TOKEN", API_TOKEN)

    assert run_cli(FakeTransport(), "token", "admin@acme.com") == ExitCode.USAGE

    assert capsys.readouterr().err == (
        "sfbroker: usage_error: no broker URL: pass --url or set SFBROKER_URL "
        "(see sfbroker --help)\n"
    )


def test_missing_token_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SFBROKER_URL", BASE_URL)

    assert run_cli(FakeTransport(), "orgs", "list") == ExitCode.USAGE

    assert "no credentials: set SFBROKER_TOKEN" in capsys.readouterr().err


@pytest.mark.usefixtures("broker_env")
def test_token_and_iam_exclude_each_other_wherever_they_are_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    transport = FakeTransport()

    assert run_cli(transport, "--token", "x", "token", "u", "--iam") == ExitCode.USAGE

    assert "--token and --iam exclude each other" in capsys.readouterr().err
    assert transport.sent == []


@pytest.mark.usefixtures("broker_env")
@pytest.mark.parametrize(
    "argv",
    [
        ["token"],
        ["orgs"],
        ["token", "u", "--min-validity", "-5"],
        ["--timeout", "0", "health"],
        ["--format", "yaml", "health"],
        ["sandbox", "auth", "uat"],  # not shipped until its route exists
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run_cli(FakeTransport(), *argv)
    assert caught.value.code == ExitCode.USAGE


# --- CLI: API errors ---------------------------------------------------------------------


@pytest.mark.usefixtures("broker_env")
@pytest.mark.parametrize(
    ("status", "error", "exit_code"),
    [
        (400, "invalid_request", ExitCode.USAGE),
        (401, "unauthorized", ExitCode.AUTH),
        (403, "forbidden", ExitCode.AUTH),
        (404, "org_not_found", ExitCode.NOT_FOUND),
        (409, "org_credentials_invalid", ExitCode.CONFLICT),
        (422, "not_a_dev_hub", ExitCode.CONFLICT),
        (500, "internal_error", ExitCode.ERROR),
        (502, "salesforce_error", ExitCode.ERROR),
        (503, "dependency_unavailable", ExitCode.ERROR),
        (504, "salesforce_timeout", ExitCode.ERROR),
    ],
)
def test_api_error_is_one_line_on_stderr_with_its_exit_code(
    status: int, error: str, exit_code: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"error": error, "message": "Org 'x' is not registered", "requestId": "1234"}
    transport = FakeTransport(Canned(status, body))

    assert run_cli(transport, "token", "x") == exit_code

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"sfbroker: {error}: Org 'x' is not registered (request 1234)\n"


@pytest.mark.usefixtures("broker_env")
def test_validation_details_are_on_the_same_line(capsys: pytest.CaptureFixture[str]) -> None:
    body = {
        "error": "invalid_request",
        "message": "Invalid request",
        "requestId": "r-1",
        "details": [{"field": "minValiditySeconds", "message": "must be at most 7200"}],
    }
    transport = FakeTransport(Canned(400, body))

    assert run_cli(transport, "token", "x", "--min-validity", "9999") == ExitCode.USAGE

    assert capsys.readouterr().err == (
        "sfbroker: invalid_request: Invalid request "
        "(minValiditySeconds: must be at most 7200) (request r-1)\n"
    )


@pytest.mark.usefixtures("broker_env")
@pytest.mark.parametrize(
    ("answer", "line", "exit_code"),
    [
        (
            Canned(403, {"message": "Missing Authentication Token"}, {"x-amzn-RequestId": "a-1"}),
            "sfbroker: forbidden: Missing Authentication Token (request a-1)\n",
            ExitCode.AUTH,
        ),
        (
            Canned(502, "<html><title>502 Bad Gateway</title>\n<body>x</body></html>"),
            "sfbroker: bad_gateway: 502 Bad Gateway\n",
            ExitCode.ERROR,
        ),
        (Canned(500, ""), "sfbroker: http_500: Canned\n", ExitCode.ERROR),
    ],
)
def test_foreign_error_bodies_still_give_one_clear_line(
    answer: Canned, line: str, exit_code: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(FakeTransport(answer), "token", "x") == exit_code
    assert capsys.readouterr().err == line


@pytest.mark.usefixtures("broker_env")
def test_unreachable_server_exits_6(capsys: pytest.CaptureFixture[str]) -> None:
    transport = FakeTransport(requests.ConnectTimeout("timed out"))

    assert run_cli(transport, "--timeout", "3", "token", "x") == ExitCode.NETWORK

    assert capsys.readouterr().err == (
        "sfbroker: connection_failed: cannot reach https://broker.example.com: "
        "no answer within 3 s\n"
    )


@pytest.mark.usefixtures("broker_env")
def test_a_token_never_appears_in_an_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    # A misbehaving server (or proxy) that echoes credentials must not make us print them.
    body = {
        "error": "forbidden",
        "message": f"token {API_TOKEN} cannot read {ACCESS_TOKEN} nor sfb_x_y or {AUTH_URL}",
    }
    transport = FakeTransport(Canned(403, body))

    assert run_cli(transport, "token", "x") == ExitCode.AUTH

    err = capsys.readouterr().err
    for secret in (API_TOKEN, ACCESS_TOKEN, "sfb_x_y", AUTH_URL, "5Aep861"):
        assert secret not in err
    assert err.count("\n") == 1


def test_redact_masks_known_values_and_secret_shapes() -> None:
    assert redact("a hunter2 b", ["hunter2"]) == "a ********** b"
    assert redact("exclude", ["x"]) == "exclude"  # too short to be a secret
    assert redact(f"x {ACCESS_TOKEN} y") == "x ********** y"
    assert redact(f"bad: {AUTH_URL}.") == "bad: **********"


@pytest.mark.parametrize(
    "documentation",
    [
        "The auth URL is not of the form force://<clientId>:<clientSecret>:<refreshToken>@<host>",
        "--sfdx-auth-url-stdin: nothing on stdin; pipe the force://... URL in",
    ],
)
def test_redact_leaves_the_documentation_of_a_format_readable(documentation: str) -> None:
    assert redact(documentation) == documentation


@pytest.mark.usefixtures("broker_env")
def test_empty_stdin_error_shows_the_expected_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    assert run_cli(FakeTransport(), "orgs", "register", "--sfdx-auth-url-stdin") == ExitCode.USAGE

    err = capsys.readouterr().err
    assert "pipe the force://... URL in" in err
    assert "*" not in err


@pytest.mark.usefixtures("broker_env")
@pytest.mark.parametrize("limited", [True, False])
def test_a_forced_refresh_answered_from_the_cache_says_so(
    limited: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {**TOKEN_BODY, "source": "cache", "forceRefreshLimited": limited}
    transport = FakeTransport(Canned(body=body))

    assert run_cli(transport, "token", "admin@acme.com", "--force-refresh") == ExitCode.OK

    captured = capsys.readouterr()
    assert json.loads(captured.out) == body
    notes = [line for line in captured.err.splitlines() if "--force-refresh" in line]
    assert len(notes) == (1 if limited else 0)
    if limited:
        assert "from the cache" in notes[0]
        assert "less than a minute ago" in notes[0]


# --- --sf-login ----------------------------------------------------------------------------

FAKE_SF = """\
#!{python}
# A stand-in for the Salesforce CLI: records what it was given, answers like `sf --json`.
import json, os, sys, time

time.sleep(float(os.environ.get("FAKE_SF_SLEEP", "0")))
record = {{
    "argv": sys.argv[1:],
    "stdin": sys.stdin.read(),
    "env": {{k: v for k, v in os.environ.items() if k.startswith(("SF", "FAKE_"))}},
}}
with open(os.environ["FAKE_SF_RECORD"], "w") as fh:
    json.dump(record, fh)
status = int(os.environ.get("FAKE_SF_EXIT", "0"))
if status:
    print(json.dumps({{"status": status, "name": "BadToken",
                      "message": "Bad token " + os.environ.get("SF_ACCESS_TOKEN", "")}}))
    print("Error (1): something broke", file=sys.stderr)
else:
    print(json.dumps({{"status": 0, "result": {{"username": "admin@acme.com",
                                               "orgId": "00D000000000001EAA"}}}}))
sys.exit(status)
"""


@dataclass
class FakeSf:
    path: Path
    record_file: Path

    def record(self) -> dict[str, Any]:
        recorded: dict[str, Any] = json.loads(self.record_file.read_text())
        return recorded


@pytest.fixture
def fake_sf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSf:
    path = tmp_path / "bin" / "sf"
    path.parent.mkdir()
    path.write_text(FAKE_SF.format(python=sys.executable))
    path.chmod(0o755)
    record_file = tmp_path / "sf-record.json"
    monkeypatch.setenv("FAKE_SF_RECORD", str(record_file))
    return FakeSf(path, record_file)


@pytest.mark.usefixtures("broker_env")
def test_sf_login_passes_the_access_token_in_the_environment_not_argv(
    fake_sf: FakeSf, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    code = run_cli(
        transport, "token", "admin@acme.com", "--sf-login", "ci-org", "--sf-bin", str(fake_sf.path)
    )

    assert code == ExitCode.OK
    record = fake_sf.record()
    assert record["argv"] == [
        "org", "login", "access-token", "--instance-url", "https://acme.my.salesforce.com",
        "--alias", "ci-org", "--no-prompt", "--json",
    ]  # fmt: skip
    assert all(ACCESS_TOKEN not in arg for arg in record["argv"])
    assert record["env"]["SF_ACCESS_TOKEN"] == ACCESS_TOKEN
    assert "SFBROKER_TOKEN" not in record["env"]  # the broker token stays with us
    assert record["stdin"] == ""
    captured = capsys.readouterr()
    # Only what a CI log may show: no token (and sf's own output does not mix in).
    assert json.loads(captured.out) == {
        "username": "admin@acme.com",
        "instanceUrl": "https://acme.my.salesforce.com",
        "alias": "ci-org",
    }
    assert ACCESS_TOKEN not in captured.out + captured.err
    assert "Salesforce CLI logged in to admin@acme.com as 'ci-org'" in captured.err


@pytest.mark.usefixtures("broker_env")
def test_sf_login_with_format_env_still_exports_the_credential(
    fake_sf: FakeSf, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    code = run_cli(
        transport, "token", "admin@acme.com", "--sf-login", "ci", "--sf-bin", str(fake_sf.path),
        "--format", "env",
    )  # fmt: skip

    assert code == ExitCode.OK
    assert f"SF_ACCESS_TOKEN='{ACCESS_TOKEN}'" in capsys.readouterr().out.splitlines()


def test_sf_login_sends_an_auth_url_on_stdin_not_argv(fake_sf: FakeSf) -> None:
    credentials = {"sfdxAuthUrl": AUTH_URL, "accessToken": ACCESS_TOKEN, "username": "u"}

    login = log_in(credentials, "pool-org", str(fake_sf.path))

    record = fake_sf.record()
    assert record["argv"] == [
        "org", "login", "sfdx-url", "--sfdx-url-stdin", "-", "--alias", "pool-org", "--json",
    ]  # fmt: skip
    assert record["stdin"] == AUTH_URL + "\n"
    assert "SF_ACCESS_TOKEN" not in record["env"]
    assert login.username == "admin@acme.com"


@pytest.mark.usefixtures("broker_env")
def test_sf_bin_comes_from_the_environment(
    fake_sf: FakeSf, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFBROKER_SF_BIN", str(fake_sf.path))
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    assert run_cli(transport, "token", "admin@acme.com", "--sf-login", "x") == ExitCode.OK
    assert fake_sf.record()["argv"][:3] == ["org", "login", "access-token"]


@pytest.mark.usefixtures("broker_env")
def test_sf_login_failure_is_one_line_exit_7_and_leaks_nothing(
    fake_sf: FakeSf,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    github_files: tuple[Path, Path],
) -> None:
    monkeypatch.setenv("FAKE_SF_EXIT", "1")
    transport = FakeTransport(Canned(body=TOKEN_BODY))

    code = run_cli(
        transport, "--format", "github", "token", "admin@acme.com",
        "--sf-login", "x", "--sf-bin", str(fake_sf.path),
    )  # fmt: skip

    assert code == ExitCode.SF_LOGIN
    captured = capsys.readouterr()
    assert captured.err == (
        "sfbroker: sf_login_failed: 'sf org login access-token' exited with status 1: "
        "BadToken: Bad token **********\n"
    )
    assert ACCESS_TOKEN not in captured.out
    assert ACCESS_TOKEN not in github_files[0].read_text()  # nothing exported on failure


def test_sf_login_failure_never_echoes_the_auth_url(
    fake_sf: FakeSf, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SF_EXIT", "1")

    with pytest.raises(SfLoginFailed) as caught:
        log_in({"sfdxAuthUrl": AUTH_URL}, "x", str(fake_sf.path))

    assert "exited with status 1" in str(caught.value)
    assert AUTH_URL not in str(caught.value)


@pytest.mark.usefixtures("broker_env")
def test_missing_sf_executable_exits_7(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transport = FakeTransport(Canned(body=TOKEN_BODY))
    missing = str(tmp_path / "nowhere" / "sf")

    code = run_cli(transport, "token", "admin@acme.com", "--sf-login", "x", "--sf-bin", missing)

    assert code == ExitCode.SF_LOGIN
    assert capsys.readouterr().err.startswith("sfbroker: sf_login_failed: Salesforce CLI not found")


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out
    assert "\n  7  the Salesforce CLI login (--sf-login) failed\n" in out


def test_a_hung_sf_is_given_up_on(fake_sf: FakeSf, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(salesforce_cli, "SF_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setenv("FAKE_SF_SLEEP", "5")
    credentials = {"accessToken": "00Dx!AQtoken", "instanceUrl": "https://acme.my.salesforce.com"}
    with pytest.raises(SfLoginFailed, match="did not finish"):
        log_in(credentials, "ci-org", str(fake_sf.path))


# --- sandboxes, environments, leases -------------------------------------------------------

LEASE_ID = "0f9c7f0e4d6a4b1e9a512b7e3c1d0a07"


def test_sandbox_auth_posts_to_the_sandbox_and_exports_its_token(
    broker_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox_token = {**TOKEN_BODY, "username": "admin@acme.com.uat", "source": "jit"}
    transport = FakeTransport(Canned(200, sandbox_token))
    code = run_cli(
        transport, "--format", "env", "sandbox", "auth", "uat",
        "--production-username", "admin@acme.com", "--auth-url",
    )  # fmt: skip
    assert code == ExitCode.OK
    assert urlsplit(transport.last.url).path == "/v1/sandboxes/uat/auth"
    assert transport.last_json() == {
        "productionUsername": "admin@acme.com",
        "format": "sfdxAuthUrl",
        "forceRefresh": False,
    }
    assert "SF_USERNAME=admin@acme.com.uat" in capsys.readouterr().out


def test_sandbox_register_sends_the_names(broker_env: None) -> None:
    transport = FakeTransport(Canned(201, ORG_BODY))
    assert (
        run_cli(transport, "sandbox", "register", "uat", "--production-username", "admin@acme.com")
        == ExitCode.OK
    )
    assert transport.last_json() == {"sandboxName": "uat", "productionUsername": "admin@acme.com"}


def test_env_get_authenticate_sends_the_repository_and_lease_and_prints_the_token(
    broker_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/app")
    monkeypatch.setenv("SFBROKER_LEASE_ID", LEASE_ID)
    transport = FakeTransport(Canned(200, {"name": "UAT", "auth": TOKEN_BODY}))
    assert run_cli(transport, "env", "get", "UAT", "--authenticate") == ExitCode.OK
    url = urlsplit(transport.last.url)
    assert (url.path, url.query) == (
        "/v1/environments/UAT",
        "repository=acme%2Fapp&authenticate=true",
    )
    assert transport.last.headers["Lease-Id"] == LEASE_ID
    assert json.loads(capsys.readouterr().out) == TOKEN_BODY


def test_env_commands_need_a_repository(
    broker_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(FakeTransport(), "env", "list") == ExitCode.USAGE
    assert "--repo" in capsys.readouterr().err


def test_lease_acquire_waits_politely_until_acquired(
    broker_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("sfbroker_client.cli.time.sleep", slept.append)
    queued = {"leaseId": LEASE_ID, "status": "queued", "position": 2, "expiresAt": None}
    transport = FakeTransport(
        Canned(201, queued),
        Canned(200, {**queued, "position": 1}),
        Canned(200, {**queued, "status": "acquired", "position": 0}),
    )
    code = run_cli(
        transport, "env", "lease", "acquire", "UAT", "--repo", "acme/app",
        "--wait", "600", "--poll-interval", "15", "--ttl", "900",
    )  # fmt: skip
    assert code == ExitCode.OK
    assert transport.sent[0].method == "POST"
    assert json.loads(transport.sent[0].body or b"") == {"ttlSeconds": 900, "wait": True}
    assert [r.method for r in transport.sent[1:]] == ["GET", "GET"]
    assert slept == [15.0, 15.0]
    assert json.loads(capsys.readouterr().out)["status"] == "acquired"


def test_lease_acquire_gives_its_place_up_when_the_wait_runs_out(
    broker_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sfbroker_client.cli.time.sleep", lambda seconds: None)
    queued = {"leaseId": LEASE_ID, "status": "queued", "position": 1, "expiresAt": None}
    transport = FakeTransport(Canned(201, queued), Canned(200, {**queued, "status": "released"}))
    code = run_cli(
        transport, "env", "lease", "acquire", "UAT", "--repo", "acme/app", "--wait", "5",
    )  # fmt: skip
    assert code == ExitCode.CONFLICT
    assert transport.last.method == "DELETE"
    assert urlsplit(transport.last.url).path == f"/v1/environments/UAT/leases/{LEASE_ID}"
    assert "lease_wait_timeout" in capsys.readouterr().err


def test_lease_without_wait_is_not_queued(broker_env: None) -> None:
    held = {"error": "lease_held", "message": "held", "requestId": "r1"}
    transport = FakeTransport(Canned(409, held))
    assert run_cli(transport, "env", "lease", "acquire", "UAT", "--repo", "a/b") == (
        ExitCode.CONFLICT
    )
    assert transport.last_json() == {"ttlSeconds": 1800, "wait": False}


def test_usernames_are_sent_lowercase_as_the_server_accepts_them() -> None:
    transport = FakeTransport(Canned(body=TOKEN_BODY))
    client_with(transport).issue_token("Admin@Acme.com", min_validity_seconds=600)
    assert transport.last.path_url == "/v1/orgs/admin%40acme.com/token"


# --- scratch-org pools ---------------------------------------------------------------------

PASSWORD = "pW9#scratch-password"
SCRATCH_AUTH_URL = "force://PlatformCLI::5Aep861pool@scratch-1.my.salesforce.com"
POOL_ORG = {
    "tag": "ci",
    "username": "test-xyz@example.com",
    "orgId": "00D000000000009EAA",
    "scratchOrgInfoId": "2SR000000000001AAA",
    "loginUrl": "https://scratch-1.my.salesforce.com",
    "instanceUrl": "https://scratch-1.my.salesforce.com",
    "password": PASSWORD,
    "sfdxAuthUrl": SCRATCH_AUTH_URL,
    "expirationDate": "2026-12-10",
}
GITHUB_RUN = {
    "GITHUB_RUN_ID": "7001",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_JOB": "validate",
    "GITHUB_ACTION": "__run_2",
}


def test_pool_list_asks_for_the_counts_of_the_tag(
    broker_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = {"tag": "ci", "devHubUsername": "hub@acme.com", "available": 3, "total": 4}
    transport = FakeTransport(Canned(200, counts))

    assert run_cli(transport, "pool", "list", "ci", "--dev-hub", "hub@acme.com") == ExitCode.OK

    assert transport.last.method == "GET"
    assert transport.last.path_url == "/v1/pools/ci?devHubUsername=hub%40acme.com"
    assert json.loads(capsys.readouterr().out) == counts


@pytest.mark.usefixtures("broker_env")
@pytest.mark.parametrize("words", [("pool", "list", "ci"), ("pool", "cleanup", "ci")])
def test_pool_listings_refuse_the_export_formats_before_any_request(
    words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    transport = FakeTransport()

    assert run_cli(transport, "--format", "env", *words) == ExitCode.USAGE

    assert transport.sent == []
    assert "is not meaningful" in capsys.readouterr().err


def test_pool_fetch_derives_its_idempotency_key_from_the_github_run(
    broker_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in GITHUB_RUN.items():
        monkeypatch.setenv(name, value)
    transport = FakeTransport(Canned(200, POOL_ORG), Canned(200, POOL_ORG))

    # The step retried: the same run, attempt, job and step send the same key.
    assert run_cli(transport, "pool", "fetch", "ci") == ExitCode.OK
    assert run_cli(transport, "pool", "fetch", "ci") == ExitCode.OK

    keys = [request.headers["Idempotency-Key"] for request in transport.sent]
    assert keys == ["github:7001:1:validate:__run_2"] * 2
    assert transport.last.method == "POST"
    assert transport.last.path_url == "/v1/pools/ci/fetch"
    assert transport.last_json() == {"format": "sfdxAuthUrl"}
    captured = capsys.readouterr()
    assert "sfbroker: Idempotency-Key: github:7001:1:validate:__run_2\n" in captured.err
    assert json.loads(captured.out.split("\n}\n")[0] + "}") == POOL_ORG


@pytest.mark.parametrize(
    ("changed", "value"),
    [("GITHUB_RUN_ATTEMPT", "2"), ("GITHUB_JOB", "deploy"), ("GITHUB_ACTION", "__run_3")],
)
def test_another_attempt_job_or_step_derives_another_key(
    broker_env: None, monkeypatch: pytest.MonkeyPatch, changed: str, value: str
) -> None:
    for name, run_value in GITHUB_RUN.items():
        monkeypatch.setenv(name, run_value)
    transport = FakeTransport(Canned(200, POOL_ORG), Canned(200, POOL_ORG))
    run_cli(transport, "pool", "fetch", "ci")
    monkeypatch.setenv(changed, value)
    run_cli(transport, "pool", "fetch", "ci")

    first, second = (request.headers["Idempotency-Key"] for request in transport.sent)
    assert first != second


def test_gitlab_jobs_derive_a_key_and_an_unusable_one_is_hashed(
    broker_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_JOB_ID", "123456")
    transport = FakeTransport(Canned(200, POOL_ORG), Canned(200, POOL_ORG))
    run_cli(transport, "pool", "fetch", "ci")
    assert transport.last.headers["Idempotency-Key"] == "gitlab:123456"

    monkeypatch.setenv("CI_JOB_ID", "x" * 300)  # over the server's 200 characters
    run_cli(transport, "pool", "fetch", "ci")
    key = transport.last.headers["Idempotency-Key"]
    digest = hashlib.sha256(("gitlab:" + "x" * 300).encode()).hexdigest()
    assert key == f"gitlab:sha256:{digest}"


@pytest.mark.parametrize(
    ("argv", "environment", "expected"),
    [
        (["--idempotency-key", "build-42"], GITHUB_RUN, "build-42"),
        ([], {**GITHUB_RUN, "SFBROKER_IDEMPOTENCY_KEY": "from-env"}, "from-env"),
        (["--no-idempotency-key"], {**GITHUB_RUN, "SFBROKER_IDEMPOTENCY_KEY": "x"}, None),
        ([], {}, None),
    ],
    ids=["option", "environment", "none-asked", "not-a-ci"],
)
def test_an_explicit_key_wins_and_none_is_sent_when_there_is_none(
    broker_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    environment: dict[str, str],
    expected: str | None,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    transport = FakeTransport(Canned(200, POOL_ORG))

    assert run_cli(transport, "pool", "fetch", "ci", *argv) == ExitCode.OK

    assert transport.last.headers.get("Idempotency-Key") == expected
    err = capsys.readouterr().err
    assert ("a retry takes another org; pass --idempotency-key" in err) == (environment == {})


def test_pool_fetch_access_token_from_a_named_dev_hub(broker_env: None) -> None:
    transport = FakeTransport(Canned(200, {**POOL_ORG, "sfdxAuthUrl": None}))

    code = run_cli(
        transport, "pool", "fetch", "ci", "--access-token", "--dev-hub", "hub@acme.com",
        "--idempotency-key", "k1",
    )  # fmt: skip

    assert code == ExitCode.OK
    assert transport.last_json() == {"format": "accessToken", "devHubUsername": "hub@acme.com"}


@pytest.mark.usefixtures("broker_env")
@pytest.mark.parametrize("access_token", [False, True], ids=["auth-url", "access-token"])
def test_pool_fetch_github_format_masks_password_auth_url_and_token_first(
    github_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], access_token: bool
) -> None:
    answer = dict(POOL_ORG)
    if access_token:
        del answer["sfdxAuthUrl"]
        answer.update(accessToken=ACCESS_TOKEN, expiresAt="2026-12-03T14:00:00Z")
    secrets = [v for k, v in answer.items() if k in ("password", "sfdxAuthUrl", "accessToken")]
    transport = FakeTransport(Canned(200, answer))

    code = run_cli(transport, "--format", "github", "pool", "fetch", "ci", "--idempotency-key", "k")

    assert code == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert sorted(out[: len(secrets)]) == sorted(f"::add-mask::{s}" for s in secrets)
    assert not any(s in line for line in out[len(secrets) :] for s in secrets)
    exported = read_github_file(github_files[0])
    assert exported["SF_USERNAME"] == "test-xyz@example.com"
    assert exported["SF_PASSWORD"] == PASSWORD
    assert exported["SF_LOGIN_URL"] == "https://scratch-1.my.salesforce.com"
    assert exported["SF_EXPIRATION_DATE"] == "2026-12-10"
    if access_token:
        assert exported["SF_ACCESS_TOKEN"] == ACCESS_TOKEN
        assert "SF_SFDX_AUTH_URL" not in exported
    else:
        assert read_github_file(github_files[1])["sfdx_auth_url"] == SCRATCH_AUTH_URL


@pytest.mark.usefixtures("broker_env")
def test_pool_fetch_sf_login_sends_the_auth_url_on_stdin_and_prints_no_secret(
    fake_sf: FakeSf, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = FakeTransport(Canned(200, POOL_ORG))

    code = run_cli(
        transport, "pool", "fetch", "ci", "--idempotency-key", "k", "--sf-login", "scratch",
        "--sf-bin", str(fake_sf.path),
    )  # fmt: skip

    assert code == ExitCode.OK
    record = fake_sf.record()
    assert record["argv"][:4] == ["org", "login", "sfdx-url", "--sfdx-url-stdin"]
    assert record["stdin"] == SCRATCH_AUTH_URL + "\n"
    assert all(SCRATCH_AUTH_URL not in arg and PASSWORD not in arg for arg in record["argv"])
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "username": "admin@acme.com",  # as the (fake) sf reported it
        "instanceUrl": "https://scratch-1.my.salesforce.com",
        "alias": "scratch",
    }
    assert SCRATCH_AUTH_URL not in captured.out + captured.err
    assert PASSWORD not in captured.out + captured.err


def test_an_empty_pool_is_exit_5_with_the_servers_message(
    broker_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = {
        "error": "pool_empty",
        "message": "Pool 'ci' has no available scratch org",
        "requestId": "r-9",
    }
    transport = FakeTransport(Canned(409, empty))

    assert run_cli(transport, "pool", "fetch", "ci", "--idempotency-key", "k") == 5

    assert capsys.readouterr() == (
        "",
        "sfbroker: Idempotency-Key: k\n"
        "sfbroker: pool_empty: Pool 'ci' has no available scratch org (request r-9)\n",
    )


def test_pool_return_deletes_the_org_and_says_which(
    broker_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = FakeTransport(Canned(204))

    assert run_cli(transport, "pool", "return", "ci", "Test-XYZ@example.com") == ExitCode.OK

    assert transport.last.method == "DELETE"
    assert transport.last.path_url == "/v1/pools/ci/orgs/test-xyz%40example.com"
    assert json.loads(capsys.readouterr().out) == {"returned": "Test-XYZ@example.com", "tag": "ci"}


@pytest.mark.parametrize(
    ("argv", "body"),
    [
        ([], {"dryRun": True}),
        (["--dry-run"], {"dryRun": True}),
        (
            ["--no-dry-run", "--max-deletions", "3", "--dev-hub", "hub@acme.com"],
            {"dryRun": False, "maxDeletions": 3, "devHubUsername": "hub@acme.com"},
        ),
    ],
    ids=["default", "dry-run", "real"],
)
def test_pool_cleanup_is_a_dry_run_unless_asked(
    broker_env: None, argv: list[str], body: dict[str, Any]
) -> None:
    report = {"dryRun": body["dryRun"], "candidates": [], "counts": {}, "overCap": 0}
    transport = FakeTransport(Canned(200, report))

    assert run_cli(transport, "pool", "cleanup", "ci", *argv) == ExitCode.OK

    assert (transport.last.method, transport.last.path_url) == ("POST", "/v1/pools/ci/cleanup")
    assert transport.last_json() == body


def test_pool_fetch_help_explains_the_key_and_the_empty_pool(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["pool", "fetch", "--help"])
    out = capsys.readouterr().out
    for expected in ("GITHUB_RUN_ID", "CI_JOB_ID", "--no-idempotency-key", "pool_empty"):
        assert expected in out


def _readme_command_rows() -> dict[tuple[str, ...], str]:
    """client/README.md's command table: the command words of each row (`a\\|b` is two)."""
    readme = (Path(__file__).parents[2] / "client" / "README.md").read_text(encoding="utf-8")
    rows: dict[tuple[str, ...], str] = {}
    for row in readme.splitlines():
        if not row.startswith("| `sfbroker "):
            continue
        words: list[str] = []
        for word in row.split("`")[1].split()[1:]:
            if not word.replace("\\|", "").isalpha() or not word.islower():
                break
            words.append(word)
        *group, last = words
        for name in last.split("\\|"):
            rows[(*group, name)] = row
    return rows


def test_the_client_readme_lists_every_command_with_the_options_of_its_help() -> None:
    from sfbroker_client.cli import COMMANDS

    rows = _readme_command_rows()
    assert set(rows) == {command.words for command in COMMANDS}
    for command in COMMANDS:
        parser = argparse.ArgumentParser()
        command.arguments(parser)
        options = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
        if command.sf_login:
            options.add("--sf-login")
        documented = set(re.findall(r"--[a-z][a-z-]*", rows[command.words]))
        assert options - {"--help"} <= documented, command.words
