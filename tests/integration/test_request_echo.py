"""No part of a request's content comes back in an error; bodies are JSON or 415."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Broker
from tests.support.salesforce import refresh_token_of

FORM = "application/x-www-form-urlencoded"
# Field names of POST /orgs' request model, and the body itself.
ORG_FIELDS = {"body", "sfdxAuthUrl", "isDevHub", "isDefault", "alias", "allowOrgChange"}


def assert_not_echoed(raw: str | None, auth_url: str) -> None:
    assert raw is not None
    assert auth_url not in raw
    assert refresh_token_of(auth_url) not in raw
    assert "force://" not in raw.replace("force://<clientId>", "")


@pytest.mark.parametrize(
    "body",
    [
        lambda url: json.dumps({"sfdxAuthUrl": url}),  # JSON sent as a form
        lambda url: urlencode({"sfdxAuthUrl": url}),  # a form that would validate
    ],
    ids=["json-as-form", "form"],
)
def test_a_form_encoded_body_is_415_without_details(
    broker: Broker, salesforce: FakeSalesforceServer, acme: str, body: object
) -> None:
    raw = body(acme)  # type: ignore[operator]
    answer = broker.call("POST", "/orgs", raw_body=raw, headers={"Content-Type": FORM})
    assert (answer.status, answer.error) == (415, "unsupported_media_type"), answer.body
    assert "details" not in answer.body
    assert_not_echoed(answer.raw, acme)
    assert salesforce.counts["oauth2/token"] == 0
    assert broker.table_items() == []


@pytest.mark.parametrize("media_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_other_media_types_are_415(broker: Broker, acme: str, media_type: str) -> None:
    answer = broker.call(
        "POST",
        "/orgs",
        raw_body=json.dumps({"sfdxAuthUrl": acme}),
        headers={"Content-Type": media_type},
    )
    assert (answer.status, answer.error) == (415, "unsupported_media_type"), answer.body
    assert_not_echoed(answer.raw, acme)


def test_an_unknown_field_is_refused_without_naming_it(broker: Broker, acme: str) -> None:
    """The name of a field we do not define is the client's content: never echoed."""
    answer = broker.call(
        "POST", "/orgs", json_body={acme: True, "sfdxAuthUrl": acme, "isDevHub": "maybe"}
    )
    assert (answer.status, answer.error) == (400, "invalid_request")
    assert {detail["field"] for detail in answer.body["details"]} <= ORG_FIELDS
    assert_not_echoed(answer.raw, acme)


def test_json_with_a_charset_is_json(broker: Broker, acme: str) -> None:
    answer = broker.call(
        "POST",
        "/orgs",
        raw_body=json.dumps({"sfdxAuthUrl": acme}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert answer.status == 201, answer.body
