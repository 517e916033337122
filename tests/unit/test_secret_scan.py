"""The secret scan finds what it must, and lets through only the contract's secret fields."""

from __future__ import annotations

import json

from tests.support.secret_scan import SecretScanner

REFRESH_TOKEN = "5Aep861" + "x" * 80
ACCESS_TOKEN = "00D000000000001!AQ" + "y" * 60
API_TOKEN = "sfb_abcdefghijkl_" + "S" * 43


def answer(
    method: str, resource: str, status: int, body: object
) -> tuple[dict[str, object], dict[str, object]]:
    event: dict[str, object] = {"httpMethod": method, "resource": resource}
    return event, {"statusCode": status, "headers": {}, "body": json.dumps(body)}


def test_each_shape_of_secret_is_found_in_any_output() -> None:
    scanner = SecretScanner()
    scanner.output("log", f"refreshing with {REFRESH_TOKEN}")
    scanner.output("log", f"got {ACCESS_TOKEN}")
    scanner.output("log", f"token {API_TOKEN}")
    scanner.output("log", "url force://PlatformCLI::5AepABCDEFGHIJKLMNOP@acme.my.salesforce.com")
    kinds = sorted(hit.kind for hit in scanner.hits())
    assert kinds == ["API token", "access token", "auth URL", "refresh token"]
    assert all("x" * 20 not in str(hit) for hit in scanner.hits())  # reports mask it


def test_a_known_secret_is_found_whatever_its_shape() -> None:
    scanner = SecretScanner()
    scanner.secret("hunter2-but-longer")
    scanner.secret("short")  # too short to search: it would match by chance
    scanner.output("stored item", '{"password": "hunter2-but-longer", "x": "short"}')
    assert [hit.kind for hit in scanner.hits()] == ["known secret"]


def test_the_token_answer_may_carry_its_access_token_and_nothing_else_may() -> None:
    scanner = SecretScanner()
    scanner.answer(*answer("POST", "/orgs/{username}/token", 200, {"accessToken": ACCESS_TOKEN}))
    assert scanner.hits() == []
    # ... but the token it revealed is a known secret for every other output.
    scanner.output("log", f"issued {ACCESS_TOKEN[:30]} {ACCESS_TOKEN}")
    assert {hit.kind for hit in scanner.hits()} == {"access token", "known secret"}


def test_an_allowed_field_is_allowed_only_on_its_route_and_in_success() -> None:
    scanner = SecretScanner()
    scanner.answer(*answer("GET", "/orgs/{username}", 200, {"accessToken": ACCESS_TOKEN}))
    scanner.answer(*answer("POST", "/orgs/{username}/token", 502, {"message": ACCESS_TOKEN}))
    scanner.answer(*answer("POST", "/api-tokens", 201, {"token": API_TOKEN, "name": API_TOKEN}))
    assert [hit.kind for hit in scanner.hits()].count("access token") == 2
    assert [hit.kind for hit in scanner.hits()].count("API token") == 1


def test_nested_allowed_fields_and_headers() -> None:
    scanner = SecretScanner()
    event, result = answer(
        "GET", "/environments/{name}", 200, {"auth": {"accessToken": ACCESS_TOKEN}}
    )
    scanner.answer(event, result)
    assert scanner.hits() == []
    result["headers"] = {"X-Debug": ACCESS_TOKEN}
    scanner.answer(event, result)
    assert len(scanner.hits()) == 2  # the shape and the now known value


def test_the_client_cli_may_print_the_token_answer_and_only_that() -> None:
    scanner = SecretScanner()
    printed = json.dumps({"accessToken": ACCESS_TOKEN, "instanceUrl": "https://x"}, indent=2)
    scanner.printed("stdout", printed)
    assert scanner.hits() == []
    scanner.printed("stdout", f"export TOKEN={ACCESS_TOKEN}")
    assert {hit.kind for hit in scanner.hits()} == {"access token", "known secret"}
