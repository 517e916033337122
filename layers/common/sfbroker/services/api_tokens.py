"""API tokens: minting, listing, revoking, and authenticating a presented bearer token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr

from sfbroker.auth.api_tokens import mint_token, parse_bearer, secret_matches
from sfbroker.auth.principal import ADMIN_SCOPE, SCOPES
from sfbroker.errors import Conflict, InvalidRequest, NotFound
from sfbroker.store.api_tokens import ApiTokenRecord, ApiTokenStore
from sfbroker.store.table import ConditionFailed

DEFAULT_EXPIRY_DAYS = 90
# A token's last use is written at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


# Refusal reasons that mean the presented id is one of ours.
NAMES_A_REAL_TOKEN = frozenset({"wrong_secret", "revoked", "expired"})


class TokenRejected(Exception):
    """A presented token does not authenticate. `reason` is for the audit trail only: the
    caller is told nothing but 401."""

    def __init__(self, reason: str, token_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token_id = token_id

    @property
    def kind(self) -> str:
        """What refusals are counted together: per real token it named, else per reason
        (junk headers name random ids, which must not make a count each)."""
        if self.reason in NAMES_A_REAL_TOKEN and self.token_id:
            return f"{self.reason}#{self.token_id}"
        return self.reason


@dataclass(frozen=True)
class NewApiToken:
    """What a caller asks a new token to be."""

    name: str
    scopes: tuple[str, ...]
    org_patterns: tuple[str, ...] = ()
    expires_in_days: int = DEFAULT_EXPIRY_DAYS


@dataclass(frozen=True)
class ApiTokenService:
    tokens: ApiTokenStore
    clock: Callable[[], datetime]
    max_days: int

    def create(self, new: NewApiToken, created_by: str) -> tuple[ApiTokenRecord, SecretStr]:
        """Mint and store a token; returns its record and the token, which is shown once."""
        unknown = sorted(set(new.scopes) - SCOPES)
        if unknown or not new.scopes:
            raise InvalidRequest(
                "The request is not valid",
                details=[{"field": "scopes", "message": f"unknown or no scopes: {unknown}"}],
            )
        if ADMIN_SCOPE in new.scopes and new.org_patterns:
            # `admin` implies every scope on every org, minting tokens included: patterns
            # on it would be ignored, so they are refused rather than trusted.
            raise InvalidRequest(
                "The request is not valid",
                details=[
                    {
                        "field": "orgs",
                        "message": "must be empty for an admin token (admin reaches every org)",
                    }
                ],
            )
        if not 1 <= new.expires_in_days <= self.max_days:
            raise InvalidRequest(
                "The request is not valid",
                details=[
                    {
                        "field": "expiresInDays",
                        "message": f"must be between 1 and {self.max_days}",
                    }
                ],
            )
        minted = mint_token()
        now = self.clock().replace(microsecond=0)  # as stored: whole seconds
        record = ApiTokenRecord(
            token_id=minted.token_id,
            name=new.name,
            scopes=tuple(sorted(set(new.scopes))),
            org_patterns=tuple(dict.fromkeys(new.org_patterns)),
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(days=new.expires_in_days),
            secret_hash=minted.secret_hash,
        )
        try:
            self.tokens.create(record)
        except ConditionFailed:
            raise Conflict("A token id collided; try again") from None
        return record, minted.token

    def list(self) -> Iterator[ApiTokenRecord]:
        """Every token (revoked and expired ones included), oldest first."""
        return self.tokens.list()

    def revoke(self, token_id: str, revoked_by: str) -> None:
        """Revoke a token at once (the authorizer reads it consistently); idempotent."""
        try:
            self.tokens.revoke(token_id, self.clock(), revoked_by)
        except ConditionFailed:
            raise NotFound(f"No API token '{token_id}'") from None

    def authenticate(self, authorization: str | None) -> ApiTokenRecord:
        """The token an `Authorization: Bearer …` header presents, if it is valid now.

        Raises `TokenRejected` (missing, malformed, unknown, wrong secret, revoked,
        expired). Records the use at most once per `LAST_USED_RESOLUTION`.
        """
        if not authorization:
            raise TokenRejected("missing")
        presented = parse_bearer(authorization)
        if presented is None:
            raise TokenRejected("malformed")
        record = self.tokens.get(presented.token_id)
        if record is None:
            raise TokenRejected("unknown_token", presented.token_id)
        if not secret_matches(presented, record.secret_hash):
            raise TokenRejected("wrong_secret", presented.token_id)
        now = self.clock()
        if record.revoked:
            raise TokenRejected("revoked", presented.token_id)
        if record.expired(now):
            raise TokenRejected("expired", presented.token_id)
        recent = now - LAST_USED_RESOLUTION
        if record.last_used_at is None or record.last_used_at < recent:
            self.tokens.touch(record.token_id, now, unless_used_since=recent)
        return record
