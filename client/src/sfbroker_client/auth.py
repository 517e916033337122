"""How requests prove who is calling: a bearer API token, or AWS SigV4 for the IAM API."""

import os
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from requests import PreparedRequest
from requests.auth import AuthBase

if TYPE_CHECKING:
    from botocore.credentials import Credentials, ReadOnlyCredentials

SERVICE = "execute-api"
# The headers SigV4 covers besides `host` (always signed): the content type of the body and
# the x-amz-* headers botocore adds. Hop-by-hop headers (Connection, Accept-Encoding) are
# left unsigned so a proxy that rewrites them cannot break the signature.
_SIGNED_HEADERS = ("Content-Type",)
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class IamUnavailable(Exception):
    """SigV4 was asked for but cannot be done here (botocore missing, no region)."""


class NoAwsCredentials(Exception):
    """The standard AWS credential chain found nothing to sign with."""


class BearerAuth(AuthBase):
    """`Authorization: Bearer <API token>` for the token API."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(token='**********')"


class IamAuth(AuthBase):
    """SigV4 (service `execute-api`) over the exact bytes sent, for the IAM API.

    `credentials` is a botocore credentials object; refreshable ones (an assumed role, GitHub
    OIDC web identity) are frozen per request, so a long job keeps signing with fresh keys.
    """

    def __init__(self, credentials: "Credentials", region: str, service: str = SERVICE) -> None:
        self._credentials = credentials
        self.region = region
        self.service = service

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if request.url is None or request.method is None:
            raise ValueError("cannot sign a request without a method and URL")
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        if body is not None and not isinstance(body, bytes):
            raise TypeError("SigV4 signing needs the body as bytes, not a stream")
        headers = {
            name: request.headers[name] for name in _SIGNED_HEADERS if name in request.headers
        }
        aws_request = AWSRequest(method=request.method, url=request.url, data=body, headers=headers)
        frozen = _freeze(self._credentials)
        SigV4Auth(frozen, self.service, self.region).add_auth(aws_request)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws_request.headers:
                request.headers[name] = aws_request.headers[name]
        return request

    def __repr__(self) -> str:
        return f"IamAuth(region={self.region!r}, service={self.service!r})"


def iam_auth_from_environment(region: str | None, base_url: str) -> IamAuth:
    """SigV4 with credentials from botocore's standard chain (env, profile, web identity, ...).

    Region: `region` if given, else `AWS_REGION`, else botocore's (`AWS_DEFAULT_REGION`,
    the profile), else the region in an `execute-api` host name.
    """
    try:
        import botocore.session
    except ImportError as exc:
        raise IamUnavailable("--iam needs botocore: pip install 'sfbroker-client[iam]'") from exc
    from botocore.exceptions import BotoCoreError

    session = botocore.session.get_session()
    try:
        resolved_region = (
            region
            or os.environ.get("AWS_REGION")
            or session.get_config_variable("region")
            or _region_from_host(base_url)
        )
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise NoAwsCredentials(f"--iam cannot load the AWS configuration: {exc}") from exc
    if not resolved_region:
        raise IamUnavailable("--iam needs a region: pass --region or set AWS_REGION")
    if credentials is None:
        raise NoAwsCredentials(
            "--iam found no AWS credentials (environment, profile, web identity, instance role)"
        )
    return IamAuth(credentials, str(resolved_region))


def _freeze(credentials: "Credentials") -> "ReadOnlyCredentials":
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return credentials.get_frozen_credentials()
    except (BotoCoreError, ClientError) as exc:  # e.g. STS refused the web identity token
        raise NoAwsCredentials(f"cannot load AWS credentials: {exc}") from exc


def _region_from_host(base_url: str) -> str | None:
    match = _EXECUTE_API_HOST.search(urlsplit(base_url).hostname or "")
    return match.group(1) if match else None
