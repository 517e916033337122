"""SigV4 verification of the local API Gateway (local/apigw/sigv4.py), without sockets."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sfbroker_client.auth import IamAuth

from local.apigw.sigv4 import IamUser, ReceivedRequest, SignatureRejected, SigV4Verifier

USER = IamUser(
    access_key_id="AKIALOCALTEST0000001",
    secret_access_key="local-secret-key-for-unit-tests-000000001",
    arn="arn:aws:iam::123456789012:user/local-admin",
    user_id="AIDALOCALTEST00000001",
)
OTHER = IamUser(
    access_key_id="AKIALOCALTEST0000002",
    secret_access_key="another-secret-key-for-unit-tests-000002",
    arn="arn:aws:iam::123456789012:user/other",
    user_id="AIDALOCALTEST00000002",
)
BASE = "http://127.0.0.1:3000"
BODY = b'{"minValiditySeconds":600,"forceRefresh":false}'


def _client_signed(
    method: str = "POST",
    url: str = f"{BASE}/orgs/admin%40acme.com/token?x=1",
    body: bytes | None = BODY,
    secret: str = USER.secret_access_key,
    region: str = "us-east-1",
) -> ReceivedRequest:
    """A request signed by the sfbroker client, as the server receives it."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    credentials = Credentials(USER.access_key_id, secret)
    prepared = requests.Request(
        method, url, data=body, headers=headers, auth=IamAuth(credentials, region)
    ).prepare()
    assert prepared.url is not None
    return _received(method, prepared.url, dict(prepared.headers), prepared.body)


def _received(method: str, url: str, headers: dict[str, str], body: object) -> ReceivedRequest:
    parts = urlsplit(url)
    raw_body = body.encode() if isinstance(body, str) else (body or b"")
    assert isinstance(raw_body, bytes)
    # urllib3 adds Host when it sends; the request line carries path and query verbatim.
    pairs = [("Host", parts.netloc), *headers.items()]
    return ReceivedRequest(method, parts.path, parts.query, pairs, raw_body)


def _botocore_signed(
    url: str, body: bytes = b"", token: str | None = None, method: str = "GET"
) -> ReceivedRequest:
    request = AWSRequest(method=method, url=url, data=body)
    credentials = Credentials(USER.access_key_id, USER.secret_access_key, token)
    SigV4Auth(credentials, "execute-api", "eu-west-1").add_auth(request)
    return _received(method, url, dict(request.headers.items()), body)


def _verifier(offset: timedelta = timedelta(0)) -> SigV4Verifier:
    return SigV4Verifier([OTHER, USER], clock=lambda: datetime.now(UTC) + offset)


def _with_header(request: ReceivedRequest, name: str, value: str | None) -> ReceivedRequest:
    headers = [(k, v) for k, v in request.headers if k.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return replace(request, headers=headers)


# ---------------------------------------------------------------- accepted


def test_accepts_the_sfbroker_client_signature_and_names_the_caller() -> None:
    request = _client_signed()
    assert request.path == "/orgs/admin%40acme.com/token"  # sent once-encoded
    user = _verifier().verify(request)
    assert user == USER
    assert user.identity() == {
        "accountId": "123456789012",
        "caller": USER.user_id,
        "accessKey": USER.access_key_id,
        "userArn": "arn:aws:iam::123456789012:user/local-admin",
        "user": USER.user_id,
    }


def test_accepts_a_get_without_body_under_the_stage_path() -> None:
    request = _client_signed("GET", f"{BASE}/v1/orgs?orgType=sandbox&isDevHub=false", None)
    assert _verifier().verify(request) == USER


def test_accepts_botocore_signatures_any_region_and_a_session_token() -> None:
    request = _botocore_signed(f"{BASE}/orgs/admin%40acme.com", token="session-token-value")
    assert request.header("X-Amz-Security-Token") == "session-token-value"
    assert _verifier().verify(request) == USER


def test_accepts_an_unencoded_at_sign_as_awscurl_sends_it() -> None:
    # awscurl sends the path as typed (`@` is legal in a path) and signs it encoded once.
    request = _botocore_signed(f"{BASE}/orgs/admin@acme.com")
    assert request.path == "/orgs/admin@acme.com"
    assert _verifier().verify(request) == USER


def test_accepts_an_unsigned_but_matching_payload_hash_header() -> None:
    # awscurl adds x-amz-content-sha256 without signing it.
    request = _botocore_signed(f"{BASE}/orgs", body=BODY, method="POST")
    stated = _with_header(request, "X-Amz-Content-SHA256", hashlib.sha256(BODY).hexdigest())
    assert _verifier().verify(stated) == USER


def test_accepts_dates_within_five_minutes() -> None:
    request = _client_signed()
    assert _verifier(timedelta(minutes=4, seconds=50)).verify(request) == USER
    assert _verifier(-timedelta(minutes=4, seconds=50)).verify(request) == USER


def test_matches_the_aws_test_suite_vector_get_vanilla() -> None:
    # From the AWS SigV4 test suite: an independent check of the canonicalisation.
    verifier = SigV4Verifier(
        [
            IamUser(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "arn:aws:iam::123456789012:user/example",
                "AIDAEXAMPLE",
            )
        ],
        clock=lambda: datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
        service="service",
    )
    request = ReceivedRequest(
        "GET",
        "/",
        "",
        [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ],
        b"",
    )
    assert verifier.verify(request).access_key_id == "AKIDEXAMPLE"


# ---------------------------------------------------------------- rejected


def _rejected(request: ReceivedRequest, verifier: SigV4Verifier | None = None) -> str:
    with pytest.raises(SignatureRejected) as caught:
        (verifier or _verifier()).verify(request)
    return caught.value.message


def test_rejects_a_wrong_secret() -> None:
    message = _rejected(_client_signed(secret="not-the-secret"))
    assert "signature we calculated does not match" in message


def test_rejects_a_modified_body() -> None:
    request = _client_signed()
    assert "does not match" in _rejected(replace(request, body=BODY.replace(b"600", b"60")))
    assert "does not match" in _rejected(replace(request, body=b""))


def test_rejects_a_modified_path() -> None:
    request = _client_signed()
    for path in ("/orgs/admin%40evil.com/token", "/v1/orgs/admin%40acme.com/token"):
        assert "does not match" in _rejected(replace(request, path=path))


def test_rejects_a_modified_or_extended_query() -> None:
    request = _client_signed()
    for query in ("x=2", "x=1&y=2", ""):
        assert "does not match" in _rejected(replace(request, query=query))


def test_rejects_a_modified_method() -> None:
    assert "does not match" in _rejected(replace(_client_signed(), method="PUT"))


def test_rejects_a_modified_signed_header() -> None:
    request = _with_header(_client_signed(), "Content-Type", "text/plain")
    assert "does not match" in _rejected(request)


def test_rejects_a_stale_or_future_date() -> None:
    request = _client_signed()
    assert "Signature expired" in _rejected(request, _verifier(timedelta(minutes=5, seconds=5)))
    assert "not yet current" in _rejected(request, _verifier(-timedelta(minutes=5, seconds=5)))


def test_rejects_missing_headers() -> None:
    request = _client_signed()
    assert _rejected(_with_header(request, "Authorization", None)) == (
        "Missing Authentication Token"
    )
    assert "X-Amz-Date" in _rejected(_with_header(request, "X-Amz-Date", None))
    assert "not in the request: host" in _rejected(_with_header(request, "Host", None))


def test_rejects_incomplete_authorization_headers() -> None:
    request = _client_signed()
    authorization = request.header("Authorization")
    assert authorization is not None
    credential, signed_headers, signature = authorization.split(", ")
    for broken, expected in (
        (f"{credential}, {signed_headers}", "requires 'Signature'"),
        (f"{credential}, {signature}", "requires 'SignedHeaders'"),
        (authorization.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"), "Unsupported"),
        (authorization.replace("/aws4_request", "/aws4"), "Credential should be"),
        (authorization.replace("host;", ""), "'host' must be a signed header"),
        (authorization[:-1], "64 lowercase hex"),
    ):
        assert expected in _rejected(_with_header(request, "Authorization", broken))


def test_rejects_an_unknown_access_key() -> None:
    request = _client_signed()
    authorization = request.header("Authorization")
    assert authorization is not None
    unknown = authorization.replace(USER.access_key_id, "AKIAUNKNOWN000000000")
    assert "security token" in _rejected(_with_header(request, "Authorization", unknown))


def test_rejects_another_service_or_a_credential_date_off_the_request_date() -> None:
    request = _client_signed()
    authorization = request.header("Authorization")
    assert authorization is not None
    other_service = authorization.replace("/execute-api/", "/s3/")
    assert "service" in _rejected(_with_header(request, "Authorization", other_service))
    date = authorization.split("/")[1]
    other_date = authorization.replace(f"/{date}/", "/20000101/")
    assert "Date in Credential scope" in _rejected(
        _with_header(request, "Authorization", other_date)
    )


def test_rejects_an_unsigned_payload_or_a_wrong_stated_payload_hash() -> None:
    request = _client_signed()
    assert "Unsigned" in _rejected(
        _with_header(request, "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")
    )
    wrong = hashlib.sha256(b"something else").hexdigest()
    assert "x-amz-content-sha256" in _rejected(_with_header(request, "X-Amz-Content-SHA256", wrong))


def test_secrets_never_appear_in_a_repr() -> None:
    assert USER.secret_access_key not in repr(USER)
    request = _client_signed()
    assert "Signature=" not in repr(request)
    assert b"minValiditySeconds" not in repr(request).encode()
