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
from tests.support import iam

EXPECTED_ROUTES = {
    ("OrgsFunction", "POST", "/orgs"),
    ("OrgsFunction", "GET", "/orgs"),
    ("OrgsFunction", "GET", "/orgs/{username}"),
    ("OrgsFunction", "DELETE", "/orgs/{username}"),
    ("OrgsFunction", "GET", "/health"),
    ("OrgsFunction", "GET", "/openapi.json"),
    ("TokensFunction", "POST", "/orgs/{username}/token"),
    ("SandboxesFunction", "POST", "/sandboxes"),
    ("SandboxesFunction", "POST", "/sandboxes/{sandboxName}/auth"),
    ("EnvironmentsFunction", "POST", "/environments"),
    ("EnvironmentsFunction", "GET", "/environments"),
    ("EnvironmentsFunction", "GET", "/environments/{name}"),
    ("EnvironmentsFunction", "PATCH", "/environments/{name}"),
    ("EnvironmentsFunction", "DELETE", "/environments/{name}"),
    ("EnvironmentsFunction", "POST", "/environments/{name}/leases"),
    ("EnvironmentsFunction", "GET", "/environments/{name}/leases/{leaseId}"),
    ("EnvironmentsFunction", "DELETE", "/environments/{name}/leases/{leaseId}"),
    ("AdminFunction", "POST", "/api-tokens"),
    ("AdminFunction", "GET", "/api-tokens"),
    ("AdminFunction", "DELETE", "/api-tokens/{id}"),
    ("AdminFunction", "GET", "/audit"),
    ("PoolsFunction", "GET", "/pools/{tag}"),
    ("PoolsFunction", "POST", "/pools/{tag}/fetch"),
    ("PoolsFunction", "DELETE", "/pools/{tag}/orgs/{username}"),
    ("PoolCleanupFunction", "POST", "/pools/{tag}/cleanup"),
}
APIS = ("IamApi", "TokenApi")
# Unauthenticated on both APIs: a liveness probe, and the API's description (no secret).
OPEN_PATHS = ("/health", "/openapi.json")
REFS = {
    "Table": "sfbroker-local",
    "IdempotencyTable": "sfbroker-local-idempotency",
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
        "SandboxesFunction",
        "EnvironmentsFunction",
        "AuthorizerFunction",
        "AdminFunction",
        "PoolsFunction",
        "PoolCleanupFunction",
    ]


def test_every_function_has_its_handler_module(specs: list[FunctionSpec]) -> None:
    for spec in specs:
        code_dir = REPO_ROOT / spec.code_uri
        assert spec.code_uri.startswith("functions/"), spec
        assert spec.handler == "handler.lambda_handler", spec
        assert (code_dir / "handler.py").is_file(), f"{spec.logical_id}: {code_dir}/handler.py"


def test_python_313_on_one_architecture_parameter_defaulting_to_arm64(
    template: dict[str, Any],
) -> None:
    # One parameter sets it everywhere: arm64 in AWS, x86_64 for `sam local` on x86_64.
    architecture = {"Ref": "Architecture"}
    parameter = template["Parameters"]["Architecture"]
    assert parameter["Default"] == "arm64"
    assert parameter["AllowedValues"] == ["arm64", "x86_64"]
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == [architecture]
    assert function_globals["Layers"] == [{"Ref": "CommonLayer"}]
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            assert properties.get("Runtime", "python3.13") == "python3.13", logical_id
            assert "Architectures" not in properties, logical_id
            assert "Layers" not in properties, f"{logical_id} replaces the common layer"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            assert properties["CompatibleRuntimes"] == ["python3.13"], logical_id
            assert properties["CompatibleArchitectures"] == [architecture], logical_id
            assert resource["Metadata"] == {
                "BuildMethod": "python3.13",
                "BuildArchitecture": architecture,
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
    # The alias: what SnapStart restores, and what every route invokes too.
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
    assert api_globals["TracingEnabled"] == {"Fn::If": ["TracingOff", False, True]}
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
            {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "ConditionCheckItem"},
            [{"Fn::GetAtt": ["Table", "Arn"]}],
        ),
        (
            "TokensFunction",
            {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "ConditionCheckItem"},
            [{"Fn::GetAtt": ["Table", "Arn"]}],
        ),
        (
            "SandboxesFunction",
            {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "ConditionCheckItem"},
            [{"Fn::GetAtt": ["Table", "Arn"]}],
        ),
    ],
)
def test_dynamodb_grants(
    template: dict[str, Any], logical_id: str, actions: set[str], resources: list[Any]
) -> None:
    statement, *_ = _grants(template, logical_id, "dynamodb")
    assert {action.removeprefix("dynamodb:") for action in statement["Action"]} == actions
    assert _as_list(statement["Resource"]) == resources
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ORG#*"]}
    }


def test_every_table_grant_is_bound_to_partitions(template: dict[str, Any]) -> None:
    """Only index queries (whose partition is the index's) go without dynamodb:LeadingKeys."""
    for spec in functions(template):
        for statement in _grants(template, spec.logical_id, "dynamodb"):
            if statement["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}:
                leading = statement["Condition"]["ForAllValues:StringLike"]
                assert leading["dynamodb:LeadingKeys"], statement
            elif statement["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}:
                # Powertools' own table (pools only): its items carry no credential.
                assert spec.logical_id == "PoolsFunction", statement
            else:
                assert statement["Action"] == ["dynamodb:Query"], statement
                assert statement["Resource"] == {"Fn::Sub": "${Table.Arn}/index/GSI1"}


# Partitions of the data table (ARCHITECTURE.md's storage table), one item of each.
PARTITIONS = ("ORG#", "APITOKEN#", "AUDIT#", "AUDITCOUNT#", "POOL#", "ENV#")
WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
READS = ("dynamodb:GetItem", "dynamodb:Query")
ORG_RECORDS = {"ORG#": {*WRITES, *READS}, "AUDIT#": {"dynamodb:PutItem"}}
# What each role may do, by partition: everything else it must be refused. A new
# function gets its row here (the test below fails until it has one).
MAY = {
    "OrgsFunction": {**ORG_RECORDS, "ENV#": {"dynamodb:Query", "dynamodb:DeleteItem"}},
    "TokensFunction": ORG_RECORDS,
    "SandboxesFunction": ORG_RECORDS,
    "EnvironmentsFunction": {**ORG_RECORDS, "ENV#": {*WRITES, *READS}},
    "AuthorizerFunction": {
        "APITOKEN#": {"dynamodb:GetItem", "dynamodb:UpdateItem"},  # lastUsedAt only
        "AUDIT#": {"dynamodb:PutItem"},
        "AUDITCOUNT#": {"dynamodb:UpdateItem"},  # refusals and ttl only
    },
    "AdminFunction": {
        "APITOKEN#": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "AUDIT#": {"dynamodb:PutItem", "dynamodb:Query"},
    },
    # The Dev Hub's token (token service) and the pool leases.
    "PoolsFunction": {**ORG_RECORDS, "POOL#": {*WRITES, *READS}},
    "PoolCleanupFunction": {**ORG_RECORDS, "POOL#": {*WRITES, *READS}},
}
# Functions that seal or open secrets: the only principals that may use the key.
MAY_USE_THE_KEY = {
    "OrgsFunction",
    "TokensFunction",
    "SandboxesFunction",
    "EnvironmentsFunction",
    "PoolsFunction",
    "PoolCleanupFunction",
}


def test_each_role_is_refused_what_it_does_not_need(template: dict[str, Any]) -> None:
    assert {spec.logical_id for spec in functions(template)} == set(MAY)
    for function, grants in MAY.items():
        for partition in PARTITIONS:
            for action in (*WRITES, *READS):
                call = iam.Call(action, iam.TABLE, (f"{partition}x",), ("PK", "SK"))
                expected = action in grants.get(partition, set())
                assert iam.allowed(template, function, call) == expected, (function, str(call))


def test_the_authorizer_may_stamp_a_tokens_last_use_and_nothing_else(
    template: dict[str, Any],
) -> None:
    def update(*attributes: str, returns: str | None = None) -> bool:
        call = iam.Call(
            "dynamodb:UpdateItem", iam.TABLE, ("APITOKEN#t1",), ("PK", "SK", *attributes), returns
        )
        return iam.allowed(template, "AuthorizerFunction", call)

    assert update("lastUsedAt")
    assert not update("lastUsedAt", returns="ALL_OLD")  # would read the whole token
    for attribute in ("revokedAt", "scopes", "orgPatterns", "secretHash", "expiresAt"):
        assert not update(attribute), attribute


def test_only_the_functions_that_seal_secrets_may_use_the_key(template: dict[str, Any]) -> None:
    assert iam.key_users(template) == MAY_USE_THE_KEY
    ours = {"app": "sfbroker", "record": "ORG#admin@acme.com/META"}
    for function in MAY:
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            call = iam.Call(action, iam.ENVELOPE_KEY, encryption_context=ours)
            assert iam.allowed(template, function, call) == (function in MAY_USE_THE_KEY)
            # Never for a ciphertext of anything but sfbroker's records.
            other = iam.Call(action, iam.ENVELOPE_KEY, encryption_context={"app": "other"})
            assert not iam.allowed(template, function, other)
            assert not iam.allowed(template, function, iam.Call(action, iam.ENVELOPE_KEY))
        for action in ("kms:Encrypt", "kms:ReEncryptFrom", "kms:CreateGrant"):
            call = iam.Call(action, iam.ENVELOPE_KEY, encryption_context=ours)
            assert not iam.allowed(template, function, call)


def test_the_account_administers_the_key_but_cannot_use_it(template: dict[str, Any]) -> None:
    statements = _resource(template, "EnvelopeKey")["Properties"]["KeyPolicy"]["Statement"]
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    (administration,) = [s for s in statements if s.get("Principal") == root]
    actions = _as_list(administration["Action"])
    assert "kms:PutKeyPolicy" in actions
    assert "kms:ScheduleKeyDeletion" in actions
    assert all("*" not in action for action in actions), actions
    for use in ("Decrypt", "Encrypt", "GenerateDataKey", "ReEncrypt", "CreateGrant"):
        assert not any(action.startswith(f"kms:{use}") for action in actions), use
    # The roles' own policies grant no KMS action: the key's policy is the one place.
    for function in MAY:
        assert not _grants(template, function, "kms"), function


def test_the_reencrypt_role_may_only_rewrap_onto_the_same_key_and_only_when_named(
    template: dict[str, Any],
) -> None:
    statements = _resource(template, "EnvelopeKey")["Properties"]["KeyPolicy"]["Statement"]
    (optional,) = [s for s in statements if "Fn::If" in s]
    condition, statement, otherwise = optional["Fn::If"]
    assert otherwise == {"Ref": "AWS::NoValue"}
    switch = {"Fn::If": [condition, "named", "none"]}
    assert resolve(switch, REFS) == "none"  # by default the key policy names no operator
    role = "arn:aws:iam::123456789012:role/sfbroker-maintenance"
    assert resolve(switch, REFS, {"ReencryptRoleArn": role}) == "named"
    assert statement["Principal"] == {"AWS": {"Ref": "ReencryptRoleArn"}}
    # ReEncrypt returns no plaintext; no Decrypt, no GenerateDataKey, no grant.
    assert sorted(_as_list(statement["Action"])) == ["kms:ReEncryptFrom", "kms:ReEncryptTo"]
    assert statement["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:app": "sfbroker"},
        "Bool": {"kms:ReEncryptOnSameKey": "true"},
    }
    pattern = re.compile(template["Parameters"]["ReencryptRoleArn"]["AllowedPattern"])
    assert pattern.fullmatch(role)
    assert pattern.fullmatch("")
    assert not pattern.fullmatch("*")
    assert not pattern.fullmatch("arn:aws:iam::123456789012:root")


# ---------------------------------------------------------------- data and keys


def test_idempotency_table_matches_powertools(template: dict[str, Any]) -> None:
    idempotency = {d.logical_id: d for d in table_definitions(template)}["IdempotencyTable"]
    assert idempotency.ttl_attribute == "expiration"
    assert idempotency.create_table_kwargs["KeySchema"] == [
        {"AttributeName": "id", "KeyType": "HASH"}
    ]


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
    statement, *_ = key["Properties"]["KeyPolicy"]["Statement"]
    assert statement["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    }
    alias = _resource(template, "EnvelopeKeyAlias")["Properties"]
    assert alias["TargetKeyId"] == {"Ref": "EnvelopeKey"}
    assert resolve(alias["AliasName"], REFS) == "alias/sfbroker-sfbroker-local"


# ---------------------------------------------------------------- environment


# What a function needs beyond the globals, and only it.
OWN_ENVIRONMENT = {
    "PoolsFunction": {"IDEMPOTENCY_TABLE_NAME": "sfbroker-local-idempotency"},
    "PoolCleanupFunction": {"POOL_CLEANUP_DRY_RUN": "false", "POOL_CLEANUP_MAX_DELETIONS": "10"},
}


def test_function_environment(specs: list[FunctionSpec]) -> None:
    for spec in specs:
        environment = function_environment(spec, REFS)
        assert environment == OWN_ENVIRONMENT.get(spec.logical_id, {}) | {
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
            "POWERTOOLS_TRACE_DISABLED": "false",
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


@pytest.mark.parametrize(
    ("tracing", "sdk_disabled"), [("sdk", "false"), ("lambda", "true"), ("off", "true")]
)
def test_the_tracing_parameter_loads_the_xray_sdk_only_when_asked(
    specs: list[FunctionSpec], tracing: str, sdk_disabled: str
) -> None:
    for spec in specs:
        environment = function_environment(spec, REFS, {"Tracing": tracing})
        assert environment["POWERTOOLS_TRACE_DISABLED"] == sdk_disabled, spec.logical_id
        assert environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


def test_tracing_is_a_parameter_of_the_functions_and_the_apis(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["Tracing"]
    assert (parameter["AllowedValues"], parameter["Default"]) == (["sdk", "lambda", "off"], "sdk")
    assert template["Conditions"]["TracingOff"] == {"Fn::Equals": [{"Ref": "Tracing"}, "off"]}
    assert template["Conditions"]["TracingSdk"] == {"Fn::Equals": [{"Ref": "Tracing"}, "sdk"]}
    functions_tracing = template["Globals"]["Function"]["Tracing"]
    assert functions_tracing == {"Fn::If": ["TracingOff", "PassThrough", "Active"]}


def test_snapstart_is_a_parameter_and_every_function_publishes_its_alias(
    template: dict[str, Any], specs: list[FunctionSpec]
) -> None:
    parameter = template["Parameters"]["SnapStart"]
    assert (parameter["AllowedValues"], parameter["Default"]) == (["true", "false"], "false")
    assert template["Conditions"]["SnapStartEnabled"] == {
        "Fn::Equals": [{"Ref": "SnapStart"}, "true"]
    }
    function_globals = template["Globals"]["Function"]
    assert function_globals["SnapStart"] == {
        "Fn::If": ["SnapStartEnabled", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]
    }
    assert function_globals["AutoPublishAlias"] == "live"
    # SnapStart wants at most 512 MB of /tmp, no EFS, no provisioned concurrency.
    assert "EphemeralStorage" not in function_globals
    for spec in specs:
        properties = _resource(template, spec.logical_id)["Properties"]
        # A new layer (all our code) or setting publishes a new version, not only new code.
        assert properties.get("AutoPublishAliasAllProperties") is True, spec.logical_id
        assert not {"EphemeralStorage", "FileSystemConfigs", "ProvisionedConcurrencyConfig"} & set(
            properties
        ), spec.logical_id


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


# ---------------------------------------------------------------- posture


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _alarm_metrics(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
    if "MetricName" in alarm:
        stats.append(alarm)
    return {(stat["Namespace"], stat["MetricName"]) for stat in stats}


def test_alarms_cover_5xx_throttles_denials_and_invalid_credentials(
    template: dict[str, Any],
) -> None:
    alarms = _alarms(template)
    watched = set().union(*(_alarm_metrics(alarm) for alarm in alarms.values()))
    assert watched == {
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("AWS/DynamoDB", "WriteThrottleEvents"),
        ("sfbroker", "AuthorizerDenied"),
        ("sfbroker", "OrgCredentialsInvalid"),
        ("AWS/Lambda", "Errors"),
        ("sfbroker", "PoolCleanupErrors"),
    }
    # One 5xx alarm per API, named as the APIs are.
    api_names = {
        alarm["Dimensions"][0]["Value"]["Fn::Sub"]
        for alarm in alarms.values()
        if alarm.get("MetricName") == "5XXError"
    }
    assert api_names == {_resource(template, api)["Properties"]["Name"]["Fn::Sub"] for api in APIS}
    # Every function's throttles count.
    throttled = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in alarms.values()
        for m in alarm.get("Metrics", [])
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "Throttles"
    }
    assert throttled == {spec.logical_id for spec in functions(template)}


def test_cleanup_errors_alarm_on_a_failed_run_or_a_failed_candidate(
    template: dict[str, Any],
) -> None:
    alarm = _alarms(template)["PoolCleanupErrorsAlarm"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    failed = metrics["failed"]["MetricStat"]["Metric"]
    assert (failed["MetricName"], failed["Dimensions"]) == (
        "Errors",
        [{"Name": "FunctionName", "Value": {"Ref": "PoolCleanupFunction"}}],
    )
    candidates = metrics["candidates"]["MetricStat"]["Metric"]
    assert candidates["Dimensions"] == [{"Name": "service", "Value": "sfbroker"}]
    (returned,) = [m for m in alarm["Metrics"] if m["ReturnData"]]
    assert returned["Expression"] == "FILL(failed, 0) + FILL(candidates, 0)"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    # One hour: the default schedule runs the cleanup hourly.
    assert {m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m} == {3600}


def test_the_business_metrics_alarmed_on_are_emitted_by_the_code(
    template: dict[str, Any],
) -> None:
    source = "\n".join(
        path.read_text() for path in (REPO_ROOT / "layers/common/sfbroker").rglob("*.py")
    )
    for alarm in _alarms(template).values():
        metrics = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        for metric in [alarm, *metrics]:
            if metric.get("Namespace") == "sfbroker":
                assert f'count("{metric["MetricName"]}"' in source
                assert metric["Dimensions"] == [{"Name": "service", "Value": "sfbroker"}]


def test_alarms_notify_the_topic_only_when_one_is_given(template: dict[str, Any]) -> None:
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    for alarm in _alarms(template).values():
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == {
            "Fn::If": ["AlarmTopicGiven", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }


def test_a_web_acl_guards_both_api_stages_when_given(template: dict[str, Any]) -> None:
    assert template["Parameters"]["WebAclArn"]["Default"] == ""
    associations = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::WAFv2::WebACLAssociation"
    }
    assert {a["Condition"] for a in associations.values()} == {"WebAclGiven"}
    stages = {
        resolve(a["Properties"]["ResourceArn"], REFS, template=template)
        for a in associations.values()
    }
    assert stages == {
        f"arn:aws:apigateway:us-east-1::/restapis/{REFS[api]}/stages/v1" for api in APIS
    }
    assert {a["DependsOn"] for a in associations.values()} == {f"{api}v1Stage" for api in APIS}


def test_every_checkov_skip_says_why_next_to_its_resource(template: dict[str, Any]) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips, "make validate-template runs checkov; its skips live in the template"
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), logical_id
        assert len(skip.get("comment", "")) >= 40, f"{logical_id}: say why {skip['id']} is skipped"


def test_api_access_logging_is_on_by_default(template: dict[str, Any]) -> None:
    assert template["Parameters"]["ApiAccessLogging"]["Default"] == "true"
    setting = template["Globals"]["Api"]["AccessLogSetting"]
    assert setting["Fn::If"][0] == "ApiAccessLoggingEnabled"


def _resource_policy(template: dict[str, Any], api: str) -> dict[str, dict[str, Any]]:
    statements = template["Resources"][api]["Properties"]["Auth"]["ResourcePolicy"]
    return {statement["Sid"]: statement for statement in statements["CustomStatements"]}


@pytest.mark.parametrize("api", ["IamApi", "TokenApi"])
def test_only_the_allowed_sources_reach_either_api(template: dict[str, Any], api: str) -> None:
    assert template["Parameters"]["AllowedSourceCidrs"]["Default"] == "0.0.0.0/0,::/0"
    deny = _resource_policy(template, api)["OnlyAllowedSources"]
    assert (deny["Effect"], deny["Principal"], deny["Resource"]) == ("Deny", "*", "execute-api:/*")
    assert deny["Condition"] == {
        "NotIpAddress": {"aws:SourceIp": {"Fn::Split": [",", {"Ref": "AllowedSourceCidrs"}]}}
    }
    pattern = re.compile(template["Parameters"]["AllowedSourceCidrs"]["AllowedPattern"])
    assert pattern.fullmatch("203.0.113.0/24,2001:db8::/32")
    assert not pattern.fullmatch("203.0.113.0/24, 10.0.0.0/8")  # a space would not parse
    assert not pattern.fullmatch("")


def test_the_iam_api_allows_anyone_only_its_routes_without_auth(template: dict[str, Any]) -> None:
    """With a resource policy, a route without auth needs an Allow; an Allow `*` on the
    rest would let other accounts' principals in whose own policies allow the call."""
    allows = [s for s in _resource_policy(template, "IamApi").values() if s["Effect"] == "Allow"]
    assert [(s["Principal"], s["Action"]) for s in allows] == [("*", "execute-api:Invoke")]
    public = {
        f"execute-api:/*/{route.method.upper()}{route.path}"
        for route in api_routes(template)
        if route.api_logical_id == "IamApi" and route.auth_none
    }
    assert (
        set(allows[0]["Resource"])
        == public
        == {
            "execute-api:/*/GET/health",
            "execute-api:/*/GET/openapi.json",
        }
    )


def test_the_token_api_allows_every_caller_to_its_authorizer(template: dict[str, Any]) -> None:
    allow = _resource_policy(template, "TokenApi")["BearerTokenCallers"]
    assert (allow["Effect"], allow["Principal"], allow["Resource"]) == (
        "Allow",
        "*",
        "execute-api:/*",
    )
    assert template["Resources"]["TokenApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == (
        "ApiTokenAuthorizer"
    )


def test_an_authorizer_that_fails_answers_the_documented_503(template: dict[str, Any]) -> None:
    """The token authorizer fails (raises anything but `Unauthorized`) only when it cannot
    read the token: API.md's 503 `dependency_unavailable`, as the local gateway answers."""
    responses = template["Globals"]["Api"]["GatewayResponses"]
    for kind in ("AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE"):
        assert responses[kind]["StatusCode"] == "503"
        body = responses[kind]["ResponseTemplates"]["application/json"]
        assert body.startswith('{"error":"dependency_unavailable"'), kind
