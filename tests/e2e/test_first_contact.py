"""What a new user met first (issue 11), against the local stack: the answers the API and
the `sfbroker` client give must be in the domain's words, consistent and unsurprising.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.support.cli import run_sfbroker
from tests.support.local_stack import LocalStack

PRODUCTION = "admin@acme.com"
# API.md's timestamps: UTC, whole seconds, `Z`.
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# How pydantic and Powertools talk; never how the API talks to its users.
JARGON = ("Input should", "Value should", "after validation", "items", "Field required", "[")
AUTH_URL_FORMAT = "force://<clientId>:<clientSecret>:<refreshToken>@<host>"


def _json(result_stdout: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(result_stdout)
    return body


@pytest.fixture
def bearer(local_stack: LocalStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {local_stack.exports['SFBROKER_TOKEN']}"}


# --- item 2: the client masks secrets, not the documentation of their format ------------


@pytest.mark.parametrize(
    ("stdin", "shown"),
    [
        ("force://not-an-auth-url\n", AUTH_URL_FORMAT),
        ("", "pipe the force://... URL in"),
    ],
)
def test_a_malformed_or_missing_auth_url_is_explained_not_masked(
    local_stack: LocalStack, tmp_path: Path, stdin: str, shown: str
) -> None:
    result = run_sfbroker(
        local_stack, tmp_path, ["orgs", "register", "--sfdx-auth-url-stdin"], stdin=stdin
    )

    assert result.returncode == 2, result
    (line,) = result.stderr_lines
    assert shown in line
    assert "*****" not in line


# --- item 4: validation in the domain's words, never describing a secret ----------------


@pytest.mark.parametrize("auth_url", ["force://a", "f", "force://PlatformCLI::5Aep@"])
def test_a_bad_auth_url_is_answered_in_the_domains_words(
    local_stack: LocalStack, tmp_path: Path, auth_url: str
) -> None:
    result = run_sfbroker(
        local_stack, tmp_path, ["orgs", "register", "--sfdx-auth-url-stdin"], stdin=auth_url
    )

    assert result.returncode == 2, result
    (line,) = result.stderr_lines
    assert line.startswith("sfbroker: invalid_auth_url: The auth URL "), line
    assert not re.search(r"\d+ (characters|items)|length|long|short", line), line
    assert not [word for word in JARGON if word in line], line


@pytest.mark.parametrize(
    ("method", "path", "body", "fields"),
    [
        ("POST", "/orgs", {}, {"sfdxAuthUrl"}),
        ("POST", "/orgs", {"sfdxAuthUrl": 5, "isDevHub": "yes"}, {"sfdxAuthUrl", "isDevHub"}),
        ("POST", "/orgs", {"sfdxAuthUrl": "force://x", "nope": 1}, {"body"}),
        ("POST", f"/orgs/{PRODUCTION}/token", {"minValiditySeconds": -1}, {"minValiditySeconds"}),
        ("POST", f"/orgs/{PRODUCTION}/token", {"minValiditySeconds": 9999}, {"minValiditySeconds"}),
        ("POST", f"/orgs/{PRODUCTION}/token", {"forceRefresh": "true"}, {"forceRefresh"}),
        ("POST", "/api-tokens", {"name": "", "scopes": []}, {"name", "scopes"}),
        ("POST", "/api-tokens", {"name": "x", "scopes": ["nope"]}, {"scopes"}),
        ("GET", "/orgs?orgType=bad&isDevHub=maybe", None, {"orgType", "isDevHub"}),
        ("GET", "/audit?limit=0&since=yesterday", None, {"limit", "since"}),
    ],
)
def test_validation_errors_name_model_fields_in_plain_words(
    local_stack: LocalStack,
    bearer: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    fields: set[str],
) -> None:
    response = requests.request(
        method, f"{local_stack.url}{path}", json=body, headers=bearer, timeout=10
    )

    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["error"] == "invalid_request"
    assert {detail["field"] for detail in answer["details"]} == fields
    for detail in answer["details"]:
        assert not [word for word in JARGON if word in detail["message"]], detail
        assert "nope" not in detail["message"]  # no part of the request is echoed


def test_a_body_that_is_not_json_names_no_field_of_its_content(
    local_stack: LocalStack, bearer: dict[str, str]
) -> None:
    # What `curl -d '{...}'` sends: the JSON as a form field name.
    response = requests.post(
        f"{local_stack.url}/orgs/{PRODUCTION}/token",
        data='{"minValiditySeconds": "x"}',
        headers={**bearer, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )

    assert response.status_code in (400, 415), response.text
    assert "minValiditySeconds" not in response.text
    for detail in response.json().get("details", []):
        assert detail["field"] == "body"


# --- item 5: a forced refresh answered from the cache says so ---------------------------


def test_a_forced_refresh_within_the_limit_says_it_came_from_the_cache(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    first = run_sfbroker(local_stack, tmp_path, ["token", PRODUCTION, "--force-refresh"])
    assert first.returncode == 0, first.stderr
    # Right after a refresh (the first one's, or an earlier one's that limited it).
    second = run_sfbroker(local_stack, tmp_path, ["token", PRODUCTION, "--force-refresh"])
    plain = run_sfbroker(local_stack, tmp_path, ["token", PRODUCTION])

    assert second.returncode == 0, second.stderr
    answer = _json(second.stdout)
    assert (answer["source"], answer["forceRefreshLimited"]) == ("cache", True)
    (note,) = second.stderr_lines
    assert "--force-refresh answered from the cache" in note
    assert _json(plain.stdout)["forceRefreshLimited"] is False
    assert plain.stderr == ""


# --- item 9: one timestamp format everywhere ---------------------------------------------


def _forget_cached_token(local_stack: LocalStack, username: str) -> None:
    """Delete the org's cached access token from the stack's table (local AWS)."""
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{local_stack.ports['aws']}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    # The broker's own table, not the pools' idempotency table beside it.
    (table,) = [name for name in dynamodb.list_tables()["TableNames"] if "idempotency" not in name]
    key = {"PK": {"S": f"ORG#{username}"}, "SK": {"S": "TOKEN"}}
    dynamodb.delete_item(TableName=table, Key=key)


def test_expires_at_has_one_format_from_a_refresh_and_from_the_cache(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    # No cached token: the broker must refresh. (minValiditySeconds cannot force a
    # refresh any more: it is at most the token lifetime minus 600 s.)
    _forget_cached_token(local_stack, PRODUCTION)
    refreshed = _json(run_sfbroker(local_stack, tmp_path, ["token", PRODUCTION]).stdout)
    cached = _json(run_sfbroker(local_stack, tmp_path, ["token", PRODUCTION]).stdout)

    assert (refreshed["source"], cached["source"]) == ("refresh", "cache")
    assert refreshed["accessToken"] == cached["accessToken"]
    assert TIMESTAMP.match(refreshed["expiresAt"]), refreshed["expiresAt"]
    assert cached["expiresAt"] == refreshed["expiresAt"]


def test_every_timestamp_of_the_api_has_the_same_format(
    local_stack: LocalStack, bearer: dict[str, str]
) -> None:
    url = local_stack.url
    org = requests.get(f"{url}/orgs/{PRODUCTION}", headers=bearer, timeout=10).json()
    (api_token, *_) = requests.get(f"{url}/api-tokens", headers=bearer, timeout=10).json()[
        "apiTokens"
    ]
    (event, *_) = requests.get(f"{url}/audit", headers=bearer, timeout=10).json()["events"]
    stamps = [
        org["createdAt"],
        org["updatedAt"],
        api_token["createdAt"],
        api_token["expiresAt"],
        api_token["lastUsedAt"],
        event["at"],
    ]
    assert [stamp for stamp in stamps if not TIMESTAMP.match(stamp)] == []


# --- item 11: the OpenAPI document is public, like /health ------------------------------


@pytest.mark.parametrize("prefix", ["", "/v1"])
def test_the_openapi_document_needs_no_credentials(local_stack: LocalStack, prefix: str) -> None:
    response = requests.get(f"{local_stack.url}{prefix}/openapi.json", timeout=10)

    assert response.status_code == 200, response.text
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/orgs/{username}/token" in document["paths"]
