"""The only code that speaks to Salesforce."""

from sfbroker.salesforce.client import (
    OrganizationInfo,
    SalesforceClient,
    SandboxAuth,
    Session,
    TokenGrant,
    UserInfo,
    new_session,
)
from sfbroker.salesforce.hosts import HostPolicy

__all__ = [
    "HostPolicy",
    "OrganizationInfo",
    "SalesforceClient",
    "SandboxAuth",
    "Session",
    "TokenGrant",
    "UserInfo",
    "new_session",
]
