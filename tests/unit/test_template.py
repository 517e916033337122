"""template.yaml holds the conventions the code, the local stack and the deployment share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sfbroker.auth.rules import ROUTE_ACCESS

from local.template import (
    REPO_ROOT,
    FunctionSpec,
    RouteSpec,
    api_routes,
    function_environment,
    functions,
    kms_key_ids,
    load_template,
    resolve,
    table_definitions,
)

EXPECTED_ROUTES = {
    ("OrgsFunction", "POST", "/orgs"),
    ("OrgsFunction", "GET", "/orgs"),
    ("OrgsFunction", "GET", "/orgs/{username}"),
    ("OrgsFunction", "DELETE", "/orgs/{username}"),
    ("OrgsFunction", "GET", "/health"),
    ("OrgsFunction", "GET", "/openapi.json"),
    ("TokensFunction", "POST", "/orgs/{username}/token"),
    ("AdminFunction", "POST", "/api-tokens"),
    ("AdminFunction", "GET", "/api-tokens"),
    ("AdminFunction", "DELETE", "/api-tokens/{id}"),
    ("AdminFunction", "GET", "/audit"),
}
APIS = ("IamApi", "TokenApi")
# Unauthenticated on both APIs: a liveness probe, and the API's description (no secret).
OPEN_PATHS = ("/health", "/openapi.json")
REFS = {
    "Table": "sfbroker-local",
    "EnvelopeKey": "alias/sfbroker-local",
    "IamApi": "a1b2c3d4e5",
    "TokenApi": "t0k3n4p1id",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def specs(template: dict[str, Any]) -> list[FunctionSpec]:
    return functions(template)


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][logical_id]
    return resource


def _statements(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    policies = _resource(template, logical_id)["Properties"]["Policies"]
    return [statement for policy in policies for statement in policy["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# ---------------------------------------------------------------- functions


def test_functions_are_the_expected_ones(specs: list[FunctionSpec]) -> None:
    assert [spec.logical_id for spec in specs] == [
        "OrgsFunction",
        "TokensFunction",
        "AuthorizerFunction",
        "AdminFunction",
    ]


def test_every_function_has_its_handler_module(specs: list[FunctionSpec]) -> None:
    for spec in specs:
        code_dir = REPO_ROOT / spec.code_uri
        assert spec.code_uri.startswith("functions/"), spec
        assert spec.handler == "handler.lambda_handler", spec
        assert (code_dir / "handler.py").is_file(), f"{spec.logical_id}: {code_dir}/handler.py"


def test_python_313_on_arm64_everywhere(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Layers"] == [{"Ref": "CommonLayer"}]
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            assert properties.get("Runtime", "python3.13") == "python3.13", logical_id
            assert properties.get("Architectures", ["arm64"]) == ["arm64"], logical_id
            assert "Layers" not in properties, f"{logical_id} replaces the common layer"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            assert properties["CompatibleRuntimes"] == ["python3.13"], logical_id
            assert properties["CompatibleArchitectures"] == ["arm64"], logical_id
            assert resource["Metadata"] == {
                "BuildMethod": "python3.13",
                "BuildArchitecture": "arm64",
            }


def test_common_layer_ships_the_package(template: dict[str, Any]) -> None:
    content_uri = _resource(template, "CommonLayer")["Properties"]["ContentUri"]
    assert content_uri == "layers/common/"
    # `sam build` copies the directory into python/: the package must sit at its top.
    assert (REPO_ROOT / content_uri / "sfbroker").is_dir()


# ---------------------------------------------------------------- API


def test_routes_are_exactly_the_documented_ones_on_both_apis(template: dict[str, Any]) -> None:
    routes = api_routes(template)
    assert {(r.function_logical_id, r.api_logical_id, r.method, r.path) for r in routes} == {
        (function, api, method, path) for function, method, path in EXPECTED_ROUTES for api in APIS
    }
    assert len(routes) == len(EXPECTED_ROUTES) * len(APIS), "a route is declared twice"


def test_the_iam_api(template: dict[str, Any]) -> None:
    api = _resource(template, "IamApi")
    assert api["Type"] == "AWS::Serverless::Api"
    assert api["Properties"]["StageName"] == "v1"
    assert api["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"


def test_the_token_api_authorizes_with_the_request_authorizer(template: dict[str, Any]) -> None:
    api = _resource(template, "TokenApi")
    assert api["Type"] == "AWS::Serverless::Api"
    assert api["Properties"]["StageName"] == "v1"
    auth = api["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "ApiTokenAuthorizer"
    authorizer = auth["Authorizers"]["ApiTokenAuthorizer"]
    assert authorizer["FunctionPayloadType"] == "REQUEST"
    assert authorizer["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert authorizer["Identity"] == {
        "Headers": ["Authorization"],
        "ReauthorizeEvery": {"Ref": "AuthorizerCacheTtlSeconds"},
    }
    ttl = template["Parameters"]["AuthorizerCacheTtlSeconds"]
    assert (ttl["Default"], ttl["MinValue"], ttl["MaxValue"]) == (60, 0, 3600)
    assert _resource(template, "AuthorizerFunction")["Properties"].get("Events") is None


def test_every_route_has_an_access_rule_and_every_rule_a_route(template: dict[str, Any]) -> None:
    routes = {(route.method, route.path): route for route in api_routes(template)}
    assert set(routes) == set(ROUTE_ACCESS), "template.yaml and sfbroker/auth/rules.py differ"
    for (method, path), rule in ROUTE_ACCESS.items():
        assert rule.public == routes[(method, path)].auth_none, path
        if rule.target is not None:
            # The target is built from the route's path parameters only.
            parameters = dict.fromkeys(re.findall(r"\{([^}+]+)\+?\}", path), "x")
            assert rule.target_of(parameters), (method, path)


def test_only_health_and_the_openapi_document_are_unauthenticated(
    template: dict[str, Any],
) -> None:
    open_routes = [route for route in api_routes(template) if route.auth_none]
    assert set(open_routes) == {
        RouteSpec("OrgsFunction", api, "GET", path, True) for api in APIS for path in OPEN_PATHS
    }
    for spec in functions(template):
        resource = _resource(template, spec.logical_id)
        for event in (resource["Properties"].get("Events") or {}).values():
            auth = event["Properties"].get("Auth", {})
            # Only ever NONE on the open paths: no route opts into another authorizer either.
            assert set(auth) <= {"Authorizer"}, event
            if auth:
                assert auth == {"Authorizer": "NONE"}, event
                assert event["Properties"]["Path"] in OPEN_PATHS, event


def test_apis_are_traced_and_throttled(template: dict[str, Any]) -> None:
    api_globals = template["Globals"]["Api"]
    assert api_globals["TracingEnabled"] is True
    (settings,) = api_globals["MethodSettings"]
    assert settings["ResourcePath"] == "/*"
    assert settings["HttpMethod"] == "*"
    assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(settings)


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert resolve(outputs["IamApiUrl"]["Value"], REFS) == (
        "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1"
    )
    assert resolve(outputs["TokenApiUrl"]["Value"], REFS) == (
        "https://t0k3n4p1id.execute-api.us-east-1.amazonaws.com/v1"
    )
    assert resolve(outputs["RevokedTokenGraceSeconds"]["Value"], REFS) == "60"
    assert outputs["TableName"]["Value"] == {"Ref": "Table"}
    assert outputs["EnvelopeKeyArn"]["Value"] == {"Fn::GetAtt": ["EnvelopeKey", "Arn"]}


@pytest.mark.parametrize(
    ("output", "resource"),
    [
        ("CiRolePolicyExample", "a1b2c3d4e5/v1/POST/orgs/*/token"),
        ("AdminRolePolicyExample", "a1b2c3d4e5/v1/*/*"),
    ],
)
def test_example_role_policies_are_policy_documents(
    template: dict[str, Any], output: str, resource: str
) -> None:
    import json

    policy = json.loads(resolve(template["Outputs"][output]["Value"], REFS))
    (statement,) = policy["Statement"]
    assert policy["Version"] == "2012-10-17"
    assert (statement["Effect"], statement["Action"]) == ("Allow", "execute-api:Invoke")
    assert statement["Resource"] == f"arn:aws:execute-api:us-east-1:123456789012:{resource}"


# ---------------------------------------------------------------- IAM


def test_every_function_has_its_own_inline_policies(template: dict[str, Any]) -> None:
    for spec in functions(template):
        properties = _resource(template, spec.logical_id)["Properties"]
        assert "Role" not in properties, f"{spec.logical_id} must get its own generated role"
        policies = properties["Policies"]
        assert policies, spec.logical_id
        for policy in policies:
            # Explicit statements only: no SAM policy templates or managed policy names.
            assert isinstance(policy, dict), f"{spec.logical_id}: {policy!r}"
            assert set(policy) == {"Version", "Statement"}, spec.logical_id


def test_no_wildcards_on_data_or_key_actions(template: dict[str, Any]) -> None:
    for spec in functions(template):
        for statement in _statements(template, spec.logical_id):
            assert statement["Effect"] == "Allow"
            actions = _as_list(statement["Action"])
            assert all("*" not in action for action in actions), statement
            if any(action.startswith(("dynamodb:", "kms:")) for action in actions):
                resources = _as_list(statement["Resource"])
                assert "*" not in resources, statement
                assert all(not s.endswith("*") for s in _strings(resources)), statement


def _grants(template: dict[str, Any], logical_id: str, service: str) -> list[dict[str, Any]]:
    return [
        statement
        for statement in _statements(template, logical_id)
        if any(action.startswith(f"{service}:") for action in _as_list(statement["Action"]))
    ]


@pytest.mark.parametrize(
    ("logical_id", "actions", "resources"),
    [
        (
            "OrgsFunction",
            {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"},
            [{"Fn::GetAtt": ["Table", "Arn"]}, {"Fn::Sub": "${Table.Arn}/index/GSI1"}],
        ),
        (
            "TokensFunction",
            {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"},
            [{"Fn::GetAtt": ["Table", "Arn"]}],
        ),
    ],
)
def test_dynamodb_grants(
    template: dict[str, Any], logical_id: str, actions: set[str], resources: list[Any]
) -> None:
    (statement,) = _grants(template, logical_id, "dynamodb")
    assert {action.removeprefix("dynamodb:") for action in statement["Action"]} == actions
    assert _as_list(statement["Resource"]) == resources


@pytest.mark.parametrize(
    ("logical_id", "actions"),
    [
        ("AuthorizerFunction", {"GetItem", "UpdateItem", "PutItem"}),
        ("AdminFunction", {"GetItem", "PutItem", "UpdateItem", "Query"}),
    ],
)
def test_token_and_audit_grants_are_bound_to_their_partitions(
    template: dict[str, Any], logical_id: str, actions: set[str]
) -> None:
    table_statement, *index_statements = _grants(template, logical_id, "dynamodb")
    assert {a.removeprefix("dynamodb:") for a in table_statement["Action"]} == actions
    assert table_statement["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert table_statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APITOKEN#*", "AUDIT#*"]}
    }
    # Listing tokens reads GSI1 (its partition key is not the table's); nothing else.
    for statement in index_statements:
        assert statement["Action"] == ["dynamodb:Query"]
        assert statement["Resource"] == {"Fn::Sub": "${Table.Arn}/index/GSI1"}
    assert not _grants(template, logical_id, "kms")


@pytest.mark.parametrize("logical_id", ["OrgsFunction", "TokensFunction"])
def test_kms_grants_are_bound_to_the_app_encryption_context(
    template: dict[str, Any], logical_id: str
) -> None:
    (statement,) = _grants(template, logical_id, "kms")
    assert set(statement["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert statement["Resource"] == {"Fn::GetAtt": ["EnvelopeKey", "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"kms:EncryptionContext:app": "sfbroker"}}


# ---------------------------------------------------------------- data and keys


def test_table_schema(template: dict[str, Any]) -> None:
    definitions = {d.logical_id: d for d in table_definitions(template)}
    table = definitions["Table"]
    assert table.ttl_attribute == "ttl"
    assert table.create_table_kwargs == {
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("PK", "SK", "GSI1PK", "GSI1SK")
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def test_table_protection(template: dict[str, Any]) -> None:
    table = _resource(template, "Table")
    properties = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["SSESpecification"]["SSEType"] == "KMS"
    assert template["Parameters"]["DeletionProtection"]["Default"] == "true"
    protection = properties["DeletionProtectionEnabled"]
    assert resolve(protection, REFS) == "true"
    assert resolve(protection, REFS, {"DeletionProtection": "false"}) == "false"


def test_envelope_key(template: dict[str, Any]) -> None:
    assert kms_key_ids(template) == ["EnvelopeKey"]
    key = _resource(template, "EnvelopeKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    (statement,) = key["Properties"]["KeyPolicy"]["Statement"]
    assert statement["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    }
    alias = _resource(template, "EnvelopeKeyAlias")["Properties"]
    assert alias["TargetKeyId"] == {"Ref": "EnvelopeKey"}
    assert resolve(alias["AliasName"], REFS) == "alias/sfbroker-sfbroker-local"


# ---------------------------------------------------------------- environment


def test_function_environment(specs: list[FunctionSpec]) -> None:
    for spec in specs:
        environment = function_environment(spec, REFS)
        assert environment == {
            "TABLE_NAME": "sfbroker-local",
            "KMS_KEY_ID": "alias/sfbroker-local",
            "SALESFORCE_ALLOWED_HOSTS": (
                "*.salesforce.com,*.force.com,*.salesforce.mil,*.cloudforce.com,*.sfcrmproducts.cn"
            ),
            "SALESFORCE_HTTP_HOSTS": "",
            "SALESFORCE_API_VERSION": "62.0",
            "ACCESS_TOKEN_TTL_SECONDS": "5400",
            "API_TOKEN_MAX_DAYS": "365",
            "AUDIT_RETENTION_DAYS": "90",
            "POWERTOOLS_SERVICE_NAME": "sfbroker",
            "POWERTOOLS_METRICS_NAMESPACE": "sfbroker",
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
            "LOG_LEVEL": "INFO",
        }, spec.logical_id
        # Declared (so `sam local --env-vars` may set it) but empty in the template.
        assert spec.environment["AWS_ENDPOINT_URL"] == ""


def test_function_environment_takes_parameters_and_attribute_refs(
    specs: list[FunctionSpec],
) -> None:
    refs = {**REFS, "EnvelopeKey.Arn": "arn:aws:kms:us-east-1:123456789012:key/k"}
    environment = function_environment(specs[0], refs, {"AccessTokenTtlSeconds": "600"})
    assert environment["ACCESS_TOKEN_TTL_SECONDS"] == "600"
    assert environment["KMS_KEY_ID"] == "arn:aws:kms:us-east-1:123456789012:key/k"


def test_env_json_covers_every_function(specs: list[FunctionSpec]) -> None:
    import json

    env_json = json.loads((REPO_ROOT / "local" / "env.json").read_text(encoding="utf-8"))
    for spec in specs:
        overrides = env_json[spec.logical_id]
        # SAM applies only overrides of declared variables (AWS_* come from the shell).
        declared = {name for name in overrides if not name.startswith("AWS_")}
        assert declared <= set(spec.environment), spec.logical_id
        assert overrides["AWS_ENDPOINT_URL"] == "http://host.docker.internal:5000"
        assert "AWS_ENDPOINT_URL" in spec.environment
        hosts = overrides["SALESFORCE_ALLOWED_HOSTS"].split(",")
        assert set(overrides["SALESFORCE_HTTP_HOSTS"].split(",")) <= set(hosts)


def test_template_path_is_the_repo_template() -> None:
    assert load_template(Path(REPO_ROOT / "template.yaml")) == load_template()
