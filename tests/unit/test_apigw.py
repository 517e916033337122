"""The local API Gateway (local/apigw) as a WSGI app: routing, auth, events, responses.

No sockets: werkzeug's test client calls the app, and the "functions" are recorders.
Besides template.yaml's IAM API, a template with a bearer-token API and a Lambda
REQUEST authorizer (as issue 4 will add) checks that the emulator serves it as is.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from botocore.credentials import Credentials
from sfbroker_client.auth import IamAuth
from werkzeug.test import Client, TestResponse

from local.apigw import GatewayApp, IamUser, SigV4Verifier, api_id
from local.apigw.authorizers import LambdaAuthorizer, method_arn, policy_allows
from local.apigw.routing import RouteTable
from local.events import load_event, request_event
from local.template import AWS_IAM, ApiSpec, AuthorizerSpec, RouteSpec, api_routes, apis
from local.template import load_template as load_repo_template

USER = IamUser(
    access_key_id="AKIALOCALTEST0000001",
    secret_access_key="local-secret-key-for-unit-tests-000000001",
    arn="arn:aws:iam::123456789012:user/local-admin",
    user_id="AIDALOCALTEST00000001",
)
HOST = "127.0.0.1:3000"
TOKEN = "sfb_abc_secret"
INVOKE_ANY: dict[str, Any] = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}
ALLOW_ALL: dict[str, Any] = {"Version": "2012-10-17", "Statement": [INVOKE_ANY]}


def _api_event(path: str, method: str, auth: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "RestApiId": {"Ref": "IamApi"},
        "Path": path,
        "Method": method,
    }
    if auth is not None:
        properties["Auth"] = auth
    return {"Type": "Api", "Properties": properties}


def _template(with_token_api: bool) -> dict[str, Any]:
    orgs_events = {
        "List": _api_event("/orgs", "get"),
        "Register": _api_event("/orgs", "post"),
        "Get": _api_event("/orgs/{username}", "get"),
        "Health": _api_event("/health", "get", {"Authorizer": "NONE"}),
    }
    resources: dict[str, Any] = {
        "IamApi": {
            "Type": "AWS::Serverless::Api",
            "Properties": {"StageName": "v1", "Auth": {"DefaultAuthorizer": "AWS_IAM"}},
        },
        "OrgsFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": "functions/orgs/", "Events": orgs_events},
        },
        "TokensFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "functions/tokens/",
                "Events": {"Issue": _api_event("/orgs/{username}/token", "post")},
            },
        },
    }
    if with_token_api:
        resources["TokenApi"] = {
            "Type": "AWS::Serverless::Api",
            "Properties": {
                "StageName": "v1",
                "Auth": {
                    "DefaultAuthorizer": "TokenAuthorizer",
                    "Authorizers": {
                        "TokenAuthorizer": {
                            "FunctionArn": {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]},
                            "FunctionPayloadType": "REQUEST",
                            "Identity": {"Headers": ["Authorization"], "ReauthorizeEvery": 300},
                        }
                    },
                },
            },
        }
        resources["AuthorizerFunction"] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": "functions/authorizer/"},
        }
        for name, event in list(orgs_events.items()):
            token_event = json.loads(json.dumps(event))
            token_event["Properties"]["RestApiId"] = {"Ref": "TokenApi"}
            orgs_events[f"{name}Token"] = token_event
    return {
        "Globals": {"Function": {"Handler": "handler.lambda_handler"}},
        "Resources": resources,
    }


class Functions:
    """Stands in for the Lambda functions: records events, answers as told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "OrgsFunction": lambda event: {"statusCode": 200, "body": '{"ok": true}'},
            "TokensFunction": lambda event: {"statusCode": 200, "body": "{}"},
            "AuthorizerFunction": lambda event: {
                "principalId": "tok_abc",
                "policyDocument": ALLOW_ALL,
                "context": {"kind": "token", "scopes": '["admin"]', "n": 3, "flag": True},
            },
        }

    def __call__(self, function_logical_id: str, event: dict[str, Any]) -> Any:
        self.events.append((function_logical_id, event))
        return self.answers[function_logical_id](event)

    def called(self, function_logical_id: str) -> list[dict[str, Any]]:
        return [event for name, event in self.events if name == function_logical_id]


def _gateway(functions: Functions, *, with_token_api: bool = False) -> Client:
    template = _template(with_token_api)
    app = GatewayApp(apis(template), api_routes(template), functions, SigV4Verifier([USER]))
    return Client(app)


def _request(
    client: Client,
    method: str,
    raw_path: str,
    *,
    body: bytes | None = None,
    sign_with: str | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """Send a request with `raw_path` on the request line, as werkzeug's server reports it."""
    all_headers = {"Host": HOST, **(headers or {})}
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json")
    if sign_with is not None:
        auth = IamAuth(Credentials(USER.access_key_id, sign_with), "us-east-1")
        prepared = requests.Request(
            method, f"http://{HOST}{raw_path}", data=body, headers=all_headers, auth=auth
        ).prepare()
        all_headers.update(prepared.headers)
    parts = urlsplit(raw_path)
    return client.open(
        parts.path,
        method=method,
        query_string=parts.query,
        data=body,
        headers=all_headers,
        environ_overrides={"RAW_URI": raw_path},
    )


def _error(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message", "requestId"}
    assert body["error"] == code
    assert body["requestId"] == response.headers["x-amzn-RequestId"]
    return dict(body)


# ---------------------------------------------------------------- routing and events


def test_open_route_without_credentials_gets_a_proxy_event() -> None:
    functions = Functions()
    response = _request(_gateway(functions), "GET", "/health")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}
    (event,) = functions.called("OrgsFunction")
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/health", "/health", "GET")
    context = event["requestContext"]
    assert (context["stage"], context["path"]) == ("v1", "/v1/health")
    assert context["identity"]["userArn"] is None
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    assert context["apiId"] == api_id("IamApi")


def test_stage_prefix_is_optional() -> None:
    functions = Functions()
    assert _request(_gateway(functions), "GET", "/v1/health").status_code == 200
    (event,) = functions.called("OrgsFunction")
    assert event["path"] == "/health"
    assert event["requestContext"]["path"] == "/v1/health"


def test_signed_request_reaches_its_function_with_the_caller_identity() -> None:
    functions = Functions()
    secret = USER.secret_access_key
    raw = "/v1/orgs/admin%40acme.com/token?a=1&a=2&b=x%20y"
    response = _request(_gateway(functions), "POST", raw, body=b'{"x": 1}', sign_with=secret)
    assert response.status_code == 200, response.get_data(as_text=True)
    (event,) = functions.called("TokensFunction")
    assert event["resource"] == "/orgs/{username}/token"
    assert event["path"] == "/orgs/admin%40acme.com/token"  # encoding kept
    assert event["pathParameters"] == {"username": "admin@acme.com"}  # decoded
    assert event["queryStringParameters"] == {"a": "2", "b": "x y"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"]}
    assert (event["body"], event["isBase64Encoded"]) == ('{"x": 1}', False)
    assert event["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert event["multiValueHeaders"]["Host"] == [HOST]
    identity = event["requestContext"]["identity"]
    assert identity["userArn"] == USER.arn
    assert identity["accessKey"] == USER.access_key_id
    assert identity["caller"] == USER.user_id
    assert identity["sourceIp"]
    assert "authorizer" not in event["requestContext"]


def test_event_has_the_shape_of_the_sample_events() -> None:
    sample = load_event("orgs-get")
    event = request_event(
        "GET",
        "/orgs/{username}",
        "/orgs/a%40b.c",
        stage="v1",
        api_id="abc",
        path_params={"username": "a@b.c"},
        query=[],
        headers=[("Host", HOST)],
        body=b"",
        identity=None,
        authorizer=None,
        source_ip="127.0.0.1",
        request_id="rid",
    )
    assert set(event) == set(sample)
    assert set(event["requestContext"]) == set(sample["requestContext"])
    assert set(event["requestContext"]["identity"]) == set(sample["requestContext"]["identity"])
    assert event["body"] is None
    assert event["queryStringParameters"] is None


def test_unknown_route_is_404_and_wrong_method_405() -> None:
    functions = Functions()
    gateway = _gateway(functions)
    _error(_request(gateway, "GET", "/nope", sign_with=USER.secret_access_key), 404, "not_found")
    _error(_request(gateway, "GET", "/orgs/a/b/c"), 404, "not_found")
    response = _request(gateway, "PUT", "/orgs", sign_with=USER.secret_access_key)
    _error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    assert functions.events == []


def test_function_response_is_passed_through() -> None:
    functions = Functions()
    functions.answers["OrgsFunction"] = lambda event: {
        "statusCode": 201,
        "headers": {"Content-Type": "application/octet-stream", "X-One": "1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b"\xff\x00").decode(),
        "isBase64Encoded": True,
    }
    response = _request(_gateway(functions), "GET", "/health")
    assert response.status_code == 201
    assert response.get_data() == b"\xff\x00"
    assert response.headers["X-One"] == "1"
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda event: {"body": "no status"}, id="malformed"),
        pytest.param(lambda event: 1 / 0, id="raises"),
    ],
)
def test_function_failure_is_a_502_in_the_api_shape(answer: Callable[[Any], Any]) -> None:
    functions = Functions()
    functions.answers["OrgsFunction"] = answer
    body = _error(_request(_gateway(functions), "GET", "/health"), 502, "dependency_unavailable")
    assert body["message"] == "Internal server error"


# ---------------------------------------------------------------- SigV4


def test_unsigned_request_to_an_iam_route_is_401() -> None:
    functions = Functions()
    body = _error(_request(_gateway(functions), "GET", "/orgs"), 401, "unauthorized")
    assert body["message"] == "Missing Authentication Token"
    assert functions.events == []


def test_bad_signature_is_401_and_never_reaches_the_function() -> None:
    functions = Functions()
    gateway = _gateway(functions)
    response = _request(gateway, "GET", "/orgs", sign_with="the-wrong-secret")
    assert "signature" in _error(response, 401, "unauthorized")["message"]
    response = _request(
        gateway,
        "GET",
        "/orgs",
        sign_with=USER.secret_access_key,
        headers={"X-Amz-Date": "20000101T000000Z"},  # replaced by the signer: still fresh
    )
    assert response.status_code == 200
    assert len(functions.events) == 1


def test_tampered_body_is_rejected_over_http() -> None:
    functions = Functions()
    gateway = _gateway(functions)
    secret = USER.secret_access_key
    auth = IamAuth(Credentials(USER.access_key_id, secret), "us-east-1")
    prepared = requests.Request(
        "POST",
        f"http://{HOST}/orgs",
        data=b'{"alias":"a"}',
        headers={"Content-Type": "application/json", "Host": HOST},
        auth=auth,
    ).prepare()
    response = gateway.open(
        "/orgs",
        method="POST",
        data=b'{"alias":"b"}',
        headers=dict(prepared.headers),
        environ_overrides={"RAW_URI": "/orgs"},
    )
    _error(response, 401, "unauthorized")
    assert functions.events == []


def test_bearer_token_without_a_token_api_is_401() -> None:
    functions = Functions()
    response = _request(
        _gateway(functions), "GET", "/orgs", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert "token API" in _error(response, 401, "unauthorized")["message"]
    assert functions.events == []


# ---------------------------------------------------------------- Lambda authorizer


def _bearer(client: Client, method: str, path: str, token: str = TOKEN) -> TestResponse:
    return _request(client, method, path, headers={"Authorization": f"Bearer {token}"})


def test_bearer_request_runs_the_authorizer_and_passes_its_context() -> None:
    functions = Functions()
    gateway = _gateway(functions, with_token_api=True)
    response = _bearer(gateway, "GET", "/v1/orgs/admin%40acme.com")
    assert response.status_code == 200, response.get_data(as_text=True)
    (authorizer_event,) = functions.called("AuthorizerFunction")
    assert authorizer_event["type"] == "REQUEST"
    assert authorizer_event["methodArn"] == (
        f"arn:aws:execute-api:us-east-1:123456789012:{api_id('TokenApi')}/v1/GET/"
        "orgs/admin%40acme.com"
    )
    assert authorizer_event["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert authorizer_event["pathParameters"] == {"username": "admin@acme.com"}
    assert "body" not in authorizer_event
    (event,) = functions.called("OrgsFunction")
    assert event["requestContext"]["apiId"] == api_id("TokenApi")
    assert event["requestContext"]["authorizer"] == {
        "principalId": "tok_abc",
        "kind": "token",
        "scopes": '["admin"]',
        "n": "3",
        "flag": "true",
    }
    assert event["requestContext"]["identity"]["userArn"] is None


def test_sigv4_still_goes_to_the_iam_api_when_a_token_api_exists() -> None:
    functions = Functions()
    gateway = _gateway(functions, with_token_api=True)
    response = _request(gateway, "GET", "/orgs", sign_with=USER.secret_access_key)
    assert response.status_code == 200
    assert functions.called("AuthorizerFunction") == []
    (event,) = functions.called("OrgsFunction")
    assert event["requestContext"]["apiId"] == api_id("IamApi")


def test_authorizer_unauthorized_is_401_and_deny_is_403() -> None:
    functions = Functions()
    gateway = _gateway(functions, with_token_api=True)

    def unauthorized(event: dict[str, Any]) -> Any:
        raise Exception("Unauthorized")  # the API Gateway convention

    functions.answers["AuthorizerFunction"] = unauthorized
    _error(_bearer(gateway, "GET", "/orgs", token="sfb_a_1"), 401, "unauthorized")
    functions.answers["AuthorizerFunction"] = lambda event: {
        "principalId": "tok_a",
        "policyDocument": {"Statement": [{**INVOKE_ANY, "Effect": "Deny"}]},
    }
    _error(_bearer(gateway, "GET", "/orgs", token="sfb_a_2"), 403, "forbidden")
    functions.answers["AuthorizerFunction"] = lambda event: {"principalId": "x"}
    _error(_bearer(gateway, "GET", "/orgs", token="sfb_a_3"), 503, "dependency_unavailable")
    assert functions.called("OrgsFunction") == []


def test_authorizer_answer_is_cached_per_token_and_checked_per_route() -> None:
    functions = Functions()
    gateway = _gateway(functions, with_token_api=True)
    only_list = f"arn:aws:execute-api:us-east-1:123456789012:{api_id('TokenApi')}/v1/GET/orgs"
    functions.answers["AuthorizerFunction"] = lambda event: {
        "principalId": "tok_list",
        "policyDocument": {
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": only_list}
            ]
        },
    }
    assert _bearer(gateway, "GET", "/orgs").status_code == 200
    assert _bearer(gateway, "GET", "/v1/orgs").status_code == 200
    # The cached policy is evaluated against another route: API Gateway's trap, kept.
    _error(_bearer(gateway, "GET", "/orgs/someone"), 403, "forbidden")
    assert len(functions.called("AuthorizerFunction")) == 1
    assert _bearer(gateway, "GET", "/orgs", token="sfb_other_1").status_code == 200
    assert len(functions.called("AuthorizerFunction")) == 2


def test_authorizer_cache_expires_after_its_ttl() -> None:
    now = [1000.0]
    calls: list[dict[str, Any]] = []

    def invoke(function_logical_id: str, event: dict[str, Any]) -> Any:
        calls.append(event)
        return {"principalId": "p", "policyDocument": ALLOW_ALL}

    spec = AuthorizerSpec("A", "AuthorizerFunction", "TOKEN", ("Authorization",), 300)
    authorizer = LambdaAuthorizer(spec, invoke, clock=lambda: now[0])
    event = {"headers": {"authorization": "Bearer t"}}
    arn = method_arn("abc", "v1", "GET", "/orgs")
    assert authorizer.authorize(event, arn) == {"principalId": "p"}
    now[0] += 299
    authorizer.authorize(event, arn)
    assert len(calls) == 1
    assert calls[0] == {"type": "TOKEN", "authorizationToken": "Bearer t", "methodArn": arn}
    now[0] += 2
    authorizer.authorize(event, arn)
    assert len(calls) == 2


def test_missing_identity_source_is_401_without_calling_the_authorizer() -> None:
    spec = AuthorizerSpec("A", "Fn", "REQUEST", ("Authorization",), 0)
    authorizer = LambdaAuthorizer(spec, lambda name, event: pytest.fail("called"))
    with pytest.raises(Exception, match="Unauthorized") as caught:
        authorizer.authorize({"headers": {}}, method_arn("abc", "v1", "GET", "/orgs"))
    assert getattr(caught.value, "status", None) == 401


def test_policy_evaluation() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc/v1/GET/orgs/x"

    def statement(effect: str, resource: Any, action: Any = "execute-api:Invoke") -> Any:
        return {"Effect": effect, "Action": action, "Resource": resource}

    assert policy_allows({"Statement": [statement("Allow", "*")]}, arn)
    assert policy_allows({"Statement": statement("Allow", ["x", "arn:*:abc/v1/GET/*"])}, arn)
    assert policy_allows({"Statement": [statement("Allow", arn, ["execute-api:*"])]}, arn)
    assert not policy_allows({"Statement": [statement("Allow", "arn:*:abc/v1/POST/*")]}, arn)
    assert not policy_allows({"Statement": [statement("Allow", "*", "s3:GetObject")]}, arn)
    assert not policy_allows(
        {"Statement": [statement("Allow", "*"), statement("Deny", "arn:*/GET/orgs/*")]}, arn
    )
    assert not policy_allows({"Statement": []}, arn)


# ---------------------------------------------------------------- template and routes


def test_apis_of_the_repository_template() -> None:
    specs = {spec.logical_id: spec for spec in apis(load_repo_template())}
    assert specs.pop("IamApi") == ApiSpec("IamApi", "v1", AWS_IAM, {})
    for spec in specs.values():  # the bearer-token API (issue 4)
        assert spec.default_authorizer is not None
        authorizer = spec.authorizers[spec.default_authorizer]
        assert authorizer.identity_headers == ("Authorization",)
        assert authorizer.payload_type == "REQUEST"


def test_apis_read_lambda_authorizers() -> None:
    specs = {spec.logical_id: spec for spec in apis(_template(with_token_api=True))}
    assert specs["TokenApi"] == ApiSpec(
        "TokenApi",
        "v1",
        "TokenAuthorizer",
        {
            "TokenAuthorizer": AuthorizerSpec(
                "TokenAuthorizer", "AuthorizerFunction", "REQUEST", ("Authorization",), 300
            )
        },
    )


def test_apis_refuse_what_cannot_run_locally() -> None:
    template = _template(with_token_api=True)
    auth = template["Resources"]["TokenApi"]["Properties"]["Auth"]
    auth["Authorizers"]["TokenAuthorizer"] = {"UserPoolArn": "arn:aws:cognito-idp:..."}
    with pytest.raises(ValueError, match="not a Lambda authorizer"):
        apis(template)
    auth["Authorizers"] = {}
    with pytest.raises(ValueError, match="not defined"):
        apis(template)


def test_route_table_prefers_literal_segments_and_handles_greedy_parameters() -> None:
    api = ApiSpec("Api", "v1", None, {})
    routes = [
        RouteSpec("F", "Api", "GET", "/files/{proxy+}", False),
        RouteSpec("F", "Api", "GET", "/orgs/{username}", False),
        RouteSpec("F", "Api", "GET", "/orgs/me", False),
    ]
    table = RouteTable([api], routes)
    assert [m.route.spec.path for m in table.match("/orgs/me")] == ["/orgs/me", "/orgs/{username}"]
    (greedy,) = table.match("/v1/files/a%20b/c")
    assert greedy.path_parameters == {"proxy": "a b/c"}
    assert greedy.path == "/files/a%20b/c"
    assert table.match("/v1") == []
    with pytest.raises(ValueError, match="not in the template"):
        RouteTable([], routes)
