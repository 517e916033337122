"""API token strings: `sfb_<id>_<secret>`, minted, parsed and verified.

The id is public (it names the stored record, appears in listings and in the audit
trail); the secret carries 256 bits of randomness and is stored only as its SHA-256.
A slow password hash buys nothing for a random 256-bit secret: there is no dictionary
to try, and the authorizer stays a single fast lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from pydantic import SecretStr

PREFIX = "sfb"
ID_LENGTH = 12
SECRET_BYTES = 32
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet (which includes `_`:
# the id, in lower-case base32, never does, so the first two underscores split the parts).
_TOKEN = re.compile(rf"^{PREFIX}_(?P<id>[a-z2-7]{{{ID_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{43}})$")
_BEARER = re.compile(r"^Bearer +(?P<token>\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PresentedToken:
    """A well-formed token as a caller presented it; the secret never prints."""

    token_id: str
    secret: SecretStr = field(repr=False)


@dataclass(frozen=True)
class MintedToken:
    """A new token: the full string is shown to its owner once, only the hash is kept."""

    token_id: str
    token: SecretStr = field(repr=False)
    secret_hash: str = field(repr=False)


def new_token_id() -> str:
    """12 random lower-case base32 characters (60 bits): unique, short, safe in URLs."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()[:ID_LENGTH]


def mint_token() -> MintedToken:
    """A fresh `sfb_<id>_<secret>` with its secret's hash."""
    token_id = new_token_id()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return MintedToken(
        token_id=token_id,
        token=SecretStr(f"{PREFIX}_{token_id}_{secret}"),
        secret_hash=secret_hash(secret),
    )


def secret_hash(secret: str) -> str:
    """SHA-256 of the secret part, hex: the only form in which a secret is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_token(text: str) -> PresentedToken | None:
    """Split `sfb_<id>_<secret>`; `None` when it is not one."""
    match = _TOKEN.match(text)
    if match is None:
        return None
    return PresentedToken(token_id=match["id"], secret=SecretStr(match["secret"]))


def parse_bearer(header: str | None) -> PresentedToken | None:
    """The token of an `Authorization: Bearer sfb_…` header; `None` when absent or malformed."""
    match = _BEARER.match(header or "")
    return parse_token(match["token"]) if match else None


def secret_matches(presented: PresentedToken, stored_hash: str) -> bool:
    """Whether the presented secret hashes to the stored hash, in constant time."""
    return hmac.compare_digest(secret_hash(presented.secret.get_secret_value()), stored_hash)
