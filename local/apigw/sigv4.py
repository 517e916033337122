"""AWS Signature Version 4 verification for the IAM side of the local API Gateway.

API Gateway checks ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
Signature=…`` on every AWS_IAM route. This module does the same for requests as they
arrived over HTTP: the canonical request (path segments URI-encoded once more, as for
every service but S3, so ``admin%40acme.com`` is signed as ``admin%2540acme.com``) is
built by botocore's own signer, so what botocore, the sfbroker client and awscurl sign
is what is checked. Only the choice of headers and the payload hash are taken from the
request instead of from botocore's defaults.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

__all__ = [
    "ALGORITHM",
    "MAX_CLOCK_SKEW",
    "IamUser",
    "ReceivedRequest",
    "SigV4Verifier",
    "SignatureRejected",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
SERVICE: Final = "execute-api"
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
_AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")
_UNSIGNED_PAYLOADS: Final = frozenset({"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})


class SignatureRejected(Exception):
    """The request is not validly signed; ``message`` reads like API Gateway's own."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class IamUser:
    """An IAM user known to the local gateway: its access key pair and who it is."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    arn: str
    user_id: str

    @property
    def account_id(self) -> str:
        """The account of the ARN (``arn:aws:iam::<account>:user/<name>``)."""
        return self.arn.split(":")[4]

    def identity(self) -> dict[str, str | None]:
        """The ``requestContext.identity`` fields API Gateway fills for this caller."""
        return {
            "accountId": self.account_id,
            "caller": self.user_id,
            "accessKey": self.access_key_id,
            "userArn": self.arn,
            "user": self.user_id,
        }


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as it arrived: nothing decoded, nothing re-encoded.

    ``path`` and ``query`` are exactly what the request line carried (``query`` without
    the ``?``); ``headers`` are (name, value) pairs; ``body`` the exact bytes received.
    """

    method: str
    path: str
    query: str
    # Kept out of repr: they carry the signature, tokens and auth URLs.
    headers: Sequence[tuple[str, str]] = field(repr=False)
    body: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        """The value of a header (the last one if repeated), by case-insensitive name."""
        wanted = name.lower()
        values = [value for key, value in self.headers if key.lower() == wanted]
        return values[-1] if values else None


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


class SigV4Verifier:
    """Checks SigV4 signatures against a fixed set of users.

    ``clock`` returns the current time (aware, UTC); requests dated more than
    ``max_skew`` away from it are refused, as API Gateway does. Any region is accepted
    (the signature covers the one the client chose); the service must be ``service``.
    """

    def __init__(
        self,
        users: Sequence[IamUser],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_skew: timedelta = MAX_CLOCK_SKEW,
        service: str = SERVICE,
    ) -> None:
        self._users: Mapping[str, IamUser] = {user.access_key_id: user for user in users}
        self._clock = clock
        self._max_skew = max_skew
        self._service = service

    def verify(self, request: ReceivedRequest) -> IamUser:
        """The user who signed ``request``; raise :class:`SignatureRejected` otherwise."""
        authorization = _parse_authorization(request.header("Authorization"))
        if authorization.service != self._service:
            raise SignatureRejected(
                f"Credential should be scoped to correct service: '{self._service}'."
            )
        user = self._users.get(authorization.access_key_id)
        if user is None:
            raise SignatureRejected("The security token included in the request is invalid.")
        amz_date = self._checked_date(request, authorization)
        for name in ("host", "x-amz-date"):
            if name not in authorization.signed_headers:
                raise SignatureRejected(f"'{name}' must be a signed header.")
        missing = [name for name in authorization.signed_headers if request.header(name) is None]
        if missing:
            raise SignatureRejected(f"Signed header(s) not in the request: {', '.join(missing)}.")
        _check_payload_hash(request)
        expected = _expected_signature(request, authorization, amz_date, user)
        if not hmac.compare_digest(expected, authorization.signature):
            raise SignatureRejected(
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. Consult "
                "the service documentation for details."
            )
        return user

    def _checked_date(self, request: ReceivedRequest, authorization: _Authorization) -> str:
        amz_date = request.header("X-Amz-Date")
        if amz_date is None:
            raise SignatureRejected(
                "Authorization header requires existence of either a 'X-Amz-Date' or a "
                "'Date' header."
            )
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise SignatureRejected(f"Invalid X-Amz-Date: {amz_date!r}.") from None
        if authorization.date != amz_date[:8]:
            raise SignatureRejected(
                f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date: "
                f"{authorization.date} != {amz_date[:8]}."
            )
        now = self._clock()
        if signed_at < now - self._max_skew:
            raise SignatureRejected(
                f"Signature expired: {amz_date} is now earlier than "
                f"{(now - self._max_skew).strftime(_AMZ_DATE_FORMAT)}."
            )
        if signed_at > now + self._max_skew:
            raise SignatureRejected(
                f"Signature not yet current: {amz_date} is still later than "
                f"{(now + self._max_skew).strftime(_AMZ_DATE_FORMAT)}."
            )
        return amz_date


def _parse_authorization(header: str | None) -> _Authorization:
    if not header:
        raise SignatureRejected("Missing Authentication Token")
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureRejected(f"Unsupported authorization type: {algorithm or '(none)'}.")
    parts: dict[str, str] = {}
    for component in rest.split(","):
        name, separator, value = component.strip().partition("=")
        if separator:
            parts[name.strip()] = value.strip()
    required = ("Credential", "SignedHeaders", "Signature")
    missing = [name for name in required if not parts.get(name)]
    if missing:
        raise SignatureRejected(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise SignatureRejected(
            "Credential should be of the form "
            "'<access key>/<YYYYMMDD>/<region>/<service>/aws4_request'."
        )
    if not _SIGNATURE.fullmatch(parts["Signature"]):
        raise SignatureRejected("The signature is not 64 lowercase hex characters.")
    signed_headers = tuple(parts["SignedHeaders"].split(";"))
    if signed_headers != tuple(sorted(name.lower() for name in signed_headers)):
        raise SignatureRejected("SignedHeaders must be lowercase and sorted.")
    access_key_id, date, region, service, _ = scope
    return _Authorization(access_key_id, date, region, service, signed_headers, parts["Signature"])


def _check_payload_hash(request: ReceivedRequest) -> None:
    # A client may state the payload hash in a header (awscurl does). The canonical
    # request below always hashes the bytes received, but a stated hash that differs,
    # or an unsigned payload, is refused outright rather than left to chance.
    stated = request.header("X-Amz-Content-SHA256")
    if stated is None:
        return
    if stated in _UNSIGNED_PAYLOADS:
        raise SignatureRejected("Unsigned payloads are not accepted by this API.")
    if not hmac.compare_digest(stated, hashlib.sha256(request.body).hexdigest()):
        raise SignatureRejected("The provided 'x-amz-content-sha256' header does not match.")


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's SigV4 over a received request: its signed headers, its exact body."""

    def __init__(
        self,
        credentials: Credentials,
        region: str,
        service: str,
        headers: HTTPHeaders,
        body: bytes,
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = headers
        self._body = body

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        # botocore would pick the request's headers minus a blocklist (user-agent…) and
        # add host; a verifier must use exactly the ones the client says it signed.
        return self._signed

    def payload(self, request: AWSRequest) -> str:
        return hashlib.sha256(self._body).hexdigest()


def _expected_signature(
    request: ReceivedRequest, authorization: _Authorization, amz_date: str, user: IamUser
) -> str:
    signed = set(authorization.signed_headers)
    headers = HTTPHeaders.from_pairs(
        [(name.lower(), value) for name, value in request.headers if name.lower() in signed]
    )
    query = f"?{request.query}" if request.query else ""
    # Only the path and query of this URL are read; the host comes from the headers.
    aws_request = AWSRequest(
        method=request.method.upper(), url=f"http://signed.invalid{request.path}{query}"
    )
    aws_request.context["timestamp"] = amz_date
    signer = _ReceivedRequestSigner(
        Credentials(user.access_key_id, user.secret_access_key),
        authorization.region,
        authorization.service,
        headers,
        request.body,
    )
    canonical_request = signer.canonical_request(aws_request)
    return signer.signature(signer.string_to_sign(aws_request, canonical_request), aws_request)
