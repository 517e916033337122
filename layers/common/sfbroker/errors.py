"""Domain errors, each carrying its HTTP status and the error code of API.md.

Messages are shown to API callers: they must never contain a secret.
"""

from __future__ import annotations

from typing import Any, ClassVar


class BrokerError(Exception):
    """Base of every error the API answers with its own status and code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(BrokerError):
    status, code = 400, "invalid_request"


class InvalidAuthUrl(BrokerError):
    status, code = 400, "invalid_auth_url"


class HostNotAllowed(BrokerError):
    status, code = 400, "host_not_allowed"


class UnsupportedMediaType(BrokerError):
    status, code = 415, "unsupported_media_type"


class Unauthorized(BrokerError):
    status, code = 401, "unauthorized"


class Forbidden(BrokerError):
    status, code = 403, "forbidden"


class NotFound(BrokerError):
    status, code = 404, "not_found"


class OrgNotFound(NotFound):
    code = "org_not_found"

    def __init__(self, username: str) -> None:
        super().__init__(f"Org '{username}' is not registered")


class OrgCredentialsInvalid(BrokerError):
    status, code = 409, "org_credentials_invalid"

    def __init__(self, username: str) -> None:
        super().__init__(
            f"The stored credential of '{username}' was rejected by Salesforce "
            "(expired or revoked): register the org again"
        )


class Conflict(BrokerError):
    status, code = 409, "conflict"


class NotADevHub(BrokerError):
    status, code = 422, "not_a_dev_hub"


class SalesforceError(BrokerError):
    """Salesforce answered something unexpected (or kept failing after retries)."""

    status, code = 502, "salesforce_error"


class SalesforceTimeout(BrokerError):
    status, code = 504, "salesforce_timeout"


class DependencyUnavailable(BrokerError):
    """AWS throttled or failed after retries."""

    status, code = 503, "dependency_unavailable"


class CredentialsRejected(Exception):
    """Salesforce refused a refresh token (`invalid_grant`); services decide what it means."""
