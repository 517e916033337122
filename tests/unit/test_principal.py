from __future__ import annotations

import pytest
from sfbroker.auth.principal import Principal, principal_from_request_context
from sfbroker.errors import Forbidden, Unauthorized


def test_iam_callers_are_identified_by_their_arn() -> None:
    principal = principal_from_request_context(
        {
            "identity": {
                "userArn": "arn:aws:sts::123456789012:assumed-role/ci/job",
                "caller": "AROA:job",
            }
        }
    )
    assert (principal.id, principal.kind) == (
        "arn:aws:sts::123456789012:assumed-role/ci/job",
        "iam",
    )
    principal.require("orgs:write", "anyone@anywhere.com")


def test_token_callers_carry_scopes_and_org_patterns() -> None:
    principal = principal_from_request_context(
        {
            "authorizer": {
                "principalId": "tok1",
                "kind": "token",
                "scopes": '["token:issue"]',
                "orgs": '["*@acme.com"]',
            }
        }
    )
    assert principal == Principal("tok1", "token", frozenset({"token:issue"}), ("*@acme.com",))
    principal.require("token:issue", "Admin@Acme.com")
    with pytest.raises(Forbidden):
        principal.require("token:issue", "admin@other.com")
    with pytest.raises(Forbidden):
        principal.require("orgs:write")


def test_admin_implies_every_scope_and_org() -> None:
    admin = Principal("t", "token", frozenset({"admin"}), ("*@acme.com",))
    admin.require("pools:admin", "x@other.com")


def test_no_identity_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        principal_from_request_context({"identity": {"sourceIp": "1.2.3.4"}})
