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


class PoolNotFound(BrokerError):
    """The Dev Hub has no active scratch org with this tag: a mistyped tag, or a pool
    nobody prepared (a drained pool still has its Assigned orgs: `pool_empty`)."""

    status, code = 404, "pool_not_found"

    def __init__(self, tag: str, dev_hub_username: str) -> None:
        super().__init__(
            f"Dev Hub '{dev_hub_username}' has no active scratch org tagged '{tag}': "
            "check the pool tag"
        )


class PoolEmpty(BrokerError):
    status, code = 409, "pool_empty"

    def __init__(self, tag: str) -> None:
        super().__init__(f"Pool '{tag}' has no available scratch org")


class OrgMismatch(BrokerError):
    """The username is registered under another org id (e.g. after a sandbox refresh)."""

    status, code = 409, "org_mismatch"


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


class ParentOrgNotFound(NotFound):
    code = "parent_org_not_found"

    def __init__(self, username: str) -> None:
        super().__init__(
            f"Parent production org '{username}' is not registered: register it first "
            "(POST /orgs with its SFDX auth URL), then the sandbox"
        )


class NotAProductionOrg(BrokerError):
    status, code = 422, "not_a_production_org"


class SandboxNotFound(NotFound):
    code = "sandbox_not_found"

    def __init__(self, sandbox_name: str, production_username: str) -> None:
        super().__init__(
            f"Salesforce has no sandbox '{sandbox_name}' under '{production_username}': it may "
            "have been refreshed under another name; register the sandbox with its current name"
        )


class SandboxNotRegistered(NotFound):
    code = "org_not_found"

    def __init__(self, sandbox_name: str, production_username: str) -> None:
        super().__init__(
            f"Sandbox '{sandbox_name}' of '{production_username}' is not registered: register "
            "it with POST /sandboxes first"
        )


class SandboxNotReady(BrokerError):
    status, code = 409, "sandbox_not_ready"

    def __init__(self, sandbox_name: str, status: str | None) -> None:
        state = f"its status is {status}" if status else "Salesforce says it is not ready"
        super().__init__(
            f"Sandbox '{sandbox_name}' is not ready ({state}): try again once it is Completed"
        )


class JitAuthFailed(BrokerError):
    """Salesforce refused to authenticate into the sandbox through its production org."""

    status, code = 502, "jit_auth_failed"

    def __init__(self, sandbox_name: str, reason: str) -> None:
        super().__init__(
            f"Unable to generate JIT auth for sandbox '{sandbox_name}' ({reason}): verify the "
            "production org's credential is valid, the sandbox exists and is active, and the "
            "production user has access to the sandbox"
        )


class SandboxAuthRefused(Exception):
    """Salesforce refused `sandboxAuth`; carries its error code (`INVALID_STATUS`, …)."""


class EnvironmentNotFound(NotFound):
    code = "environment_not_found"

    def __init__(self, repository: str, name: str) -> None:
        super().__init__(f"Environment '{name}' of '{repository}' does not exist")


class LeaseNotFound(NotFound):
    code = "lease_not_found"

    def __init__(self, lease_id: str) -> None:
        super().__init__(f"Lease '{lease_id}' does not exist")


class LeaseHeld(BrokerError):
    status, code = 409, "lease_held"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Environment '{name}' is leased by another pipeline: acquire a lease (with wait) "
            "and send its id in the Lease-Id header"
        )
