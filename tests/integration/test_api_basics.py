"""Routes that need no Salesforce: health, OpenAPI, empty listings, validation errors."""

from __future__ import annotations

from tests.support.broker import Broker


def test_health_needs_no_credentials(broker: Broker) -> None:
    answer = broker.call("GET", "/health", iam_arn=None)
    assert answer.status == 200
    assert answer.body["status"] == "ok"


def test_openapi_describes_every_route_of_the_template(broker: Broker) -> None:
    answer = broker.call("GET", "/openapi.json")
    assert answer.status == 200
    document = answer.body
    assert document["openapi"].startswith("3.")
    paths = {
        (method.upper(), path.replace("<", "{").replace(">", "}"))
        for path, operations in document["paths"].items()
        for method in operations
    }
    from local import template as sam

    for route in sam.api_routes(broker.template):
        assert (route.method, route.path) in paths
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]


def test_an_empty_registry(broker: Broker) -> None:
    listed = broker.call("GET", "/orgs")
    assert (listed.status, listed.body) == (200, {"orgs": []})
    missing = broker.call("GET", "/orgs/{username}", path_params={"username": "nobody@acme.com"})
    assert missing.status == 404
    assert missing.body["error"] == "org_not_found"
    assert missing.body["message"] == "Org 'nobody@acme.com' is not registered"
    assert missing.body["requestId"]
    gone = broker.call("DELETE", "/orgs/{username}", path_params={"username": "nobody@acme.com"})
    assert (gone.status, gone.error) == (404, "org_not_found")
    token = broker.call(
        "POST", "/orgs/{username}/token", path_params={"username": "nobody@acme.com"}
    )
    assert (token.status, token.error) == (404, "org_not_found")


def test_bad_bodies_are_400_invalid_request(broker: Broker) -> None:
    cases = [
        ("POST", "/orgs", "{", "body"),
        ("POST", "/orgs", "[]", "body"),
        ("POST", "/orgs", '{"isDevHub": true}', "sfdxAuthUrl"),
        (
            "POST",
            "/orgs",
            '{"sfdxAuthUrl": "force://PlatformCLI::5Aep1234@acme.my.salesforce.com", "extra": 1}',
            "body",  # a name the caller sent is not echoed: only the model's fields are named
        ),
        ("POST", "/orgs", '{"sfdxAuthUrl": 12}', "sfdxAuthUrl"),
        # No coercion: 0 is not false, "true" is not true.
        (
            "POST",
            "/orgs",
            '{"sfdxAuthUrl": "force://PlatformCLI::5Aep1234@a.salesforce.com", "isDevHub": 0}',
            "isDevHub",
        ),
        (
            "POST",
            "/orgs",
            '{"sfdxAuthUrl": "force://PlatformCLI::5Aep1234@a.force.com", "isDefault": "true"}',
            "isDefault",
        ),
    ]
    for method, path, body, field in cases:
        answer = broker.call(method, path, raw_body=body)
        assert answer.status == 400, (body, answer.body)
        assert answer.error == "invalid_request"
        assert any(d["field"].startswith(field) for d in answer.body["details"]), answer.body
    token = broker.call(
        "POST",
        "/orgs/{username}/token",
        path_params={"username": "a@b.com"},
        json_body={"minValiditySeconds": -1},
    )
    assert (token.status, token.error) == (400, "invalid_request")
    listing = broker.call("GET", "/orgs", query={"orgType": "mainframe"})
    assert (listing.status, listing.error) == (400, "invalid_request")


def test_an_auth_url_that_is_not_one_is_400(broker: Broker) -> None:
    answer = broker.call(
        "POST",
        "/orgs",
        json_body={"sfdxAuthUrl": "force://PlatformCLI::undefined@acme.my.salesforce.com"},
    )
    assert (answer.status, answer.error) == (400, "invalid_auth_url")
    assert broker.table_items() == []
