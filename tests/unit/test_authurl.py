from __future__ import annotations

import pytest
from sfbroker.authurl import AuthUrl, parse_auth_url
from sfbroker.errors import InvalidAuthUrl

TOKEN = "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrfh.ofSAvbSLJyBPpkpjsEOTFGzU4yK9jdvzqU8QD8xDTh2yOr"


@pytest.mark.parametrize(
    ("url", "client_id", "secret", "host"),
    [
        (
            f"force://PlatformCLI::{TOKEN}@acme.my.salesforce.com",
            "PlatformCLI",
            "",
            "acme.my.salesforce.com",
        ),
        (
            f"force://3MVG9abc.def:S3cr3t==:{TOKEN}@login.salesforce.com",
            "3MVG9abc.def",
            "S3cr3t==",
            "login.salesforce.com",
        ),
        (
            f"force://{TOKEN}@acme--uat.sandbox.my.salesforce.com",
            "PlatformCLI",
            "",
            "acme--uat.sandbox.my.salesforce.com",
        ),
        (f"force://PlatformCLI::{TOKEN}@127.0.0.1:8443", "PlatformCLI", "", "127.0.0.1:8443"),
        (
            f"force://PlatformCLI::{TOKEN}@ACME.My.Salesforce.com",
            "PlatformCLI",
            "",
            "acme.my.salesforce.com",
        ),
        (
            f"  force://PlatformCLI::{TOKEN}@acme.my.salesforce.com\n",
            "PlatformCLI",
            "",
            "acme.my.salesforce.com",
        ),
    ],
)
def test_accepts_the_forms_salesforce_cli_exports(
    url: str, client_id: str, secret: str, host: str
) -> None:
    parsed = parse_auth_url(url)
    assert parsed.client_id == client_id
    assert parsed.client_secret.get_secret_value() == secret
    assert parsed.refresh_token.get_secret_value() == TOKEN
    assert parsed.host == host


@pytest.mark.parametrize(
    "url",
    [
        "force://PlatformCLI::undefined@acme.my.salesforce.com",
        "force://PlatformCLI::UNDEFINED@acme.my.salesforce.com",
        "force://:secret:token@acme.my.salesforce.com",
        "force://PlatformCLI:::@acme.my.salesforce.com",
        f"force://PlatformCLI::{TOKEN}@",
        f"force://PlatformCLI::{TOKEN}@https://acme.my.salesforce.com",
        f"force://PlatformCLI::{TOKEN}@acme.my.salesforce.com/services/oauth2",
        f"force://PlatformCLI::{TOKEN}@acme.my.salesforce.com?x=1",
        f"force://PlatformCLI::{TOKEN}@acme.my.salesforce.com extra",
        f"force://PlatformCLI::{TOKEN}@user:pw@acme.my.salesforce.com",
        f"force://PlatformCLI::{TOKEN}@acme.my.salesforce.com:99999",
        f"force://PlatformCLI::{TOKEN}@localhost-not-a-domain",
        f"https://PlatformCLI::{TOKEN}@acme.my.salesforce.com",
        f"sfdx://PlatformCLI::{TOKEN}@acme.my.salesforce.com",
        f"force://Platform CLI::{TOKEN}@acme.my.salesforce.com",
        f"force://PlatformCLI::{TOKEN}!@acme.my.salesforce.com",
        "",
        "force://",
        "force://" + "a" * 5000 + "@acme.my.salesforce.com",
    ],
)
def test_rejects_malformed_urls_without_echoing_them(url: str) -> None:
    with pytest.raises(InvalidAuthUrl) as caught:
        parse_auth_url(url)
    assert TOKEN not in caught.value.message
    assert "undefined" not in caught.value.message.replace("'undefined'", "")


def test_secret_parts_never_show_in_repr_or_str() -> None:
    parsed = parse_auth_url(f"force://PlatformCLI:S3cr3tValue:{TOKEN}@acme.my.salesforce.com")
    for text in (repr(parsed), str(parsed), f"{parsed}"):
        assert TOKEN not in text
        assert "S3cr3tValue" not in text


def test_reveal_round_trips_and_rotation_replaces_only_the_token() -> None:
    url = f"force://PlatformCLI:S3cr3t:{TOKEN}@acme.my.salesforce.com"
    parsed = parse_auth_url(url)
    assert parsed.reveal() == url
    rotated = parsed.with_refresh_token("5AepNEWTOKEN")
    assert isinstance(rotated, AuthUrl)
    assert rotated.reveal() == "force://PlatformCLI:S3cr3t:5AepNEWTOKEN@acme.my.salesforce.com"
    assert parsed.refresh_token.get_secret_value() == TOKEN
    assert rotated.host == "acme.my.salesforce.com"
    assert parse_auth_url(f"force://{TOKEN}@127.0.0.1:8443").host == "127.0.0.1:8443"
