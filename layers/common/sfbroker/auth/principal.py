"""The caller of a request, whichever API (IAM or bearer token) it came through."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal, get_args

from sfbroker.errors import Forbidden, Unauthorized

Scope = Literal[
    "orgs:read",
    "orgs:write",
    "token:issue",
    "sandboxes:auth",
    "sandboxes:auth-url",
    "pools:read",
    "pools:fetch",
    "pools:admin",
    "environments:read",
    "environments:write",
    "admin",
]
ADMIN_SCOPE: Scope = "admin"
SCOPES: frozenset[str] = frozenset(get_args(Scope))
# The actor of a refused request that presented no usable credential.
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an IAM identity or an API token, with its limits."""

    id: str
    kind: Literal["token", "iam"]
    scopes: frozenset[str]
    org_patterns: tuple[str, ...] = ()

    def require(self, scope: str, target: str | None = None) -> None:
        """Raise `Forbidden` unless this caller holds `scope` (and may touch `target`)."""
        if self.kind == "iam":
            # IAM policy already decided which routes this identity may call.
            return
        if not self.holds(scope):
            raise Forbidden(f"This token lacks the scope '{scope}'")
        if target is not None and not self.may_touch(target):
            raise Forbidden(f"This token may not act on '{target}'")

    def holds(self, scope: str) -> bool:
        """Whether this caller has `scope` (IAM callers and `admin` tokens have every scope)."""
        return self.kind == "iam" or ADMIN_SCOPE in self.scopes or scope in self.scopes

    def may_touch(self, target: str) -> bool:
        """Whether `target` (a username, or `pool:<tag>`) is inside the caller's org patterns."""
        if self.kind == "iam" or ADMIN_SCOPE in self.scopes or not self.org_patterns:
            return True
        return any(fnmatchcase(target.lower(), p.lower()) for p in self.org_patterns)


def token_principal_id(token_id: str) -> str:
    """How an API token appears as a principal (and as the actor of the audit trail)."""
    return f"apitoken:{token_id}"


def principal_from_request_context(context: Mapping[str, Any]) -> Principal:
    """Build the principal from an API Gateway REST request context.

    The token API's authorizer puts `principalId`, `kind`, `scopes` and `orgs` (JSON
    lists, since authorizer context values are strings) into `authorizer`; the IAM API
    puts the caller's ARN into `identity.userArn`.
    """
    authorizer = context.get("authorizer") or {}
    if authorizer.get("kind") == "token" and authorizer.get("principalId"):
        return Principal(
            id=str(authorizer["principalId"]),
            kind="token",
            scopes=frozenset(_json_list(authorizer.get("scopes"))),
            org_patterns=tuple(_json_list(authorizer.get("orgs"))),
        )
    identity = context.get("identity") or {}
    arn = identity.get("userArn") or identity.get("caller")
    if arn:
        return Principal(id=str(arn), kind="iam", scopes=frozenset({ADMIN_SCOPE}))
    raise Unauthorized("The request carries no credentials")


def _json_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        parsed = json.loads(value)
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
    return []
