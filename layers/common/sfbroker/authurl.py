"""SFDX auth URLs: `force://<clientId>:<clientSecret>:<refreshToken>@<host>`.

Stricter than Salesforce CLI's parser (SALESFORCE.md): the whole string must match,
the host is a bare host[:port], no part may be empty (the client secret may), and the
literal refresh token `undefined` — what a JWT-authorised Dev Hub exports — is refused.
Error messages never echo the URL or any part of its credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pydantic import SecretStr

from sfbroker.errors import InvalidAuthUrl

DEFAULT_CLIENT_ID = "PlatformCLI"

_PART = r"[a-zA-Z0-9._-]+={0,2}"
_FULL = re.compile(
    rf"force://(?P<client_id>{_PART}):(?P<client_secret>[a-zA-Z0-9._-]*={{0,2}}):"
    rf"(?P<refresh_token>{_PART})@(?P<host>[^@]+)"
)
_BARE = re.compile(rf"force://(?P<refresh_token>{_PART})@(?P<host>[^@:/]+(?::\d+)?)")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?P<name>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>\d{{1,5}}))?")
MAX_LENGTH = 4096


@dataclass(frozen=True)
class AuthUrl:
    """A parsed auth URL; the secret parts are `SecretStr`, so reprs never show them."""

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    host: str

    def with_refresh_token(self, refresh_token: str) -> AuthUrl:
        """The same credential after Salesforce rotated its refresh token."""
        return replace(self, refresh_token=SecretStr(refresh_token))

    def reveal(self) -> str:
        """The full URL, secret included: only for encryption or a caller entitled to it."""
        return (
            f"force://{self.client_id}:{self.client_secret.get_secret_value()}:"
            f"{self.refresh_token.get_secret_value()}@{self.host}"
        )


def parse_auth_url(value: str) -> AuthUrl:
    """Parse and validate an SFDX auth URL, raising `InvalidAuthUrl` with a safe message."""
    text = value.strip()
    if len(text) > MAX_LENGTH:
        raise InvalidAuthUrl("The auth URL is too long")
    if not text.startswith("force://"):
        raise InvalidAuthUrl("The auth URL must start with force://")
    if (match := _FULL.fullmatch(text)) is not None:
        client_id = match["client_id"]
        client_secret = match["client_secret"]
    elif (match := _BARE.fullmatch(text)) is not None:
        client_id, client_secret = DEFAULT_CLIENT_ID, ""
    else:
        raise InvalidAuthUrl(
            "The auth URL is not of the form force://<clientId>:<clientSecret>:<refreshToken>@<host>"
        )
    refresh_token = match["refresh_token"]
    if refresh_token.lower() == "undefined":
        raise InvalidAuthUrl(
            "The auth URL has no refresh token (a JWT-authorised org exports 'undefined'): "
            "authorise the org with a web login and export its auth URL again"
        )
    return AuthUrl(
        client_id=client_id,
        client_secret=SecretStr(client_secret),
        refresh_token=SecretStr(refresh_token),
        host=_validate_host(match["host"]),
    )


def _validate_host(host: str) -> str:
    lowered = host.lower()
    match = _HOST.fullmatch(lowered)
    if match is None or ("." not in match["name"] and match["name"] != "localhost"):
        raise InvalidAuthUrl(
            "The auth URL's host must be a bare host name such as acme.my.salesforce.com "
            "(no scheme, path or credentials)"
        )
    if match["port"] is not None and not 0 < int(match["port"]) < 65536:
        raise InvalidAuthUrl("The auth URL's port is out of range")
    return lowered
