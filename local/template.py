"""The one reader of ``template.yaml`` for tests and the local stack.

Tables, keys, functions, routes and environment variables are taken from the template
itself, so the local stack and the tests cannot drift from what is deployed.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = [
    "AWS_IAM",
    "TEMPLATE_PATH",
    "ApiSpec",
    "AuthorizerSpec",
    "FunctionSpec",
    "KmsAliasSpec",
    "RouteSpec",
    "TableDefinition",
    "api_routes",
    "apis",
    "create_tables",
    "function_environment",
    "functions",
    "kms_aliases",
    "kms_key_ids",
    "layer_content_uris",
    "load_template",
    "resolve",
    "table_definitions",
]

LOGGER = logging.getLogger(__name__)

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
TEMPLATE_PATH: Final = REPO_ROOT / "template.yaml"

# What the pseudo parameters resolve to outside AWS.
PSEUDO_PARAMETERS: Final[Mapping[str, str]] = {
    "AWS::Region": "us-east-1",
    "AWS::StackName": "sfbroker-local",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/sfbroker-local/"
        "00000000-0000-0000-0000-000000000000"
    ),
}

# The implicit API SAM creates for an Api event without RestApiId.
IMPLICIT_API: Final = "ServerlessRestApi"

_SERVERLESS_FUNCTION: Final = "AWS::Serverless::Function"
_SERVERLESS_API: Final = "AWS::Serverless::Api"
_SERVERLESS_LAYER: Final = "AWS::Serverless::LayerVersion"
_DYNAMODB_TABLE: Final = "AWS::DynamoDB::Table"
_KMS_KEY: Final = "AWS::KMS::Key"
_KMS_ALIAS: Final = "AWS::KMS::Alias"

# `Auth.DefaultAuthorizer` of an API authenticated with SigV4.
AWS_IAM: Final = "AWS_IAM"
# SAM's defaults for a Lambda authorizer, and the stage of SAM's implicit API.
_DEFAULT_AUTHORIZER_TTL_SECONDS: Final = 300
_IMPLICIT_API_STAGE: Final = "Prod"

# CreateTable parameters that CloudFormation, boto3, moto and DynamoDB Local share.
# Encryption, point-in-time recovery, deletion protection, TTL, tags, contributor
# insights... are deployment concerns, not schema, and are left out (TTL is applied
# separately by create_tables).
_CREATE_TABLE_KEYS: Final = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
)
_INDEX_KEYS: Final = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")

_TABLE_READY_TIMEOUT_SECONDS: Final = 30.0
_TABLE_READY_POLL_SECONDS: Final = 0.05


# ---------------------------------------------------------------- YAML


# SafeLoader that knows CloudFormation's short-form intrinsic tags; timestamps stay
# strings (`Version: 2012-10-17` is a string to CloudFormation). Built with type() so
# mypy --strict is happy with and without the PyYAML stubs installed. libyaml's parser
# where PyYAML has it: the tests parse the template for every test, ~10x faster.
_CloudFormationLoader: type[Any] = type(
    "_CloudFormationLoader", (getattr(yaml, "CSafeLoader", yaml.SafeLoader),), {}
)
_CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(None, None, f"unexpected {node!r}", node.start_mark)


def _intrinsic(key: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _construct_plain(loader, node)}

    return construct


def _construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct_plain(loader, node)
    if isinstance(value, str):
        # `!GetAtt Resource.Attribute` (the attribute itself may contain dots).
        logical_id, _, attribute = value.partition(".")
        value = [logical_id, attribute]
    return {"Fn::GetAtt": value}


_SHORT_TAGS: Final = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub",
            "If",
            "Equals",
            "Join",
            "Select",
            "Split",
            "FindInMap",
            "Not",
            "And",
            "Or",
            "Base64",
            "ImportValue",
            "GetAZs",
            "Cidr",
            "Length",
            "ToJsonString",
        )
    },
}
for _tag, _key in _SHORT_TAGS.items():
    _CloudFormationLoader.add_constructor(f"!{_tag}", _intrinsic(_key))
_CloudFormationLoader.add_constructor("!GetAtt", _construct_get_att)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template; short tags become their long forms."""
    with path.open(encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return template


@cache
def _default_template() -> dict[str, Any]:
    # Only read, never handed out: callers get their own copy from load_template().
    return load_template()


def _resources_of_type(template: Mapping[str, Any], type_: str) -> Iterator[tuple[str, Any]]:
    for logical_id, resource in template["Resources"].items():
        if isinstance(resource, dict) and resource.get("Type") == type_:
            yield logical_id, resource


# ---------------------------------------------------------------- DynamoDB


@dataclass(frozen=True)
class TableDefinition:
    """A DynamoDB table of the template, in the shape ``create_table`` takes."""

    logical_id: str
    create_table_kwargs: dict[str, Any]
    ttl_attribute: str | None


def _ensure_literal(value: Any, where: str) -> None:
    """Reject intrinsics: a local table cannot be created from an unresolved value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" or key.startswith("Fn::"):
                raise ValueError(f"{where}: intrinsic {key} is not supported in a table schema")
            _ensure_literal(item, where)
    elif isinstance(value, list):
        for item in value:
            _ensure_literal(item, where)


def table_definitions(template: Mapping[str, Any]) -> list[TableDefinition]:
    """Every ``AWS::DynamoDB::Table`` as CreateTable arguments (without ``TableName``)."""
    definitions = []
    for logical_id, resource in _resources_of_type(template, _DYNAMODB_TABLE):
        properties = resource.get("Properties", {})
        kwargs = {key: properties[key] for key in _CREATE_TABLE_KEYS if key in properties}
        for index_key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if index_key in kwargs:
                kwargs[index_key] = [
                    {key: index[key] for key in _INDEX_KEYS if key in index}
                    for index in kwargs[index_key]
                ]
        _ensure_literal(kwargs, logical_id)
        ttl = properties.get("TimeToLiveSpecification") or {}
        ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") in (True, "true") else None
        definitions.append(TableDefinition(logical_id, kwargs, ttl_attribute))
    return definitions


def create_tables(
    dynamodb_client: DynamoDBClient,
    names: Mapping[str, str],
    *,
    template: Mapping[str, Any] | None = None,
) -> None:
    """Create the template's tables under the given physical names and wait for them.

    ``names`` maps logical ids to physical table names; only those tables are created
    (an unknown logical id is an error). A table that already exists is left as it is.
    TTL is switched on where the template has it, unless the backend cannot.
    """
    definitions = {d.logical_id: d for d in table_definitions(template or _default_template())}
    unknown = sorted(set(names) - set(definitions))
    if unknown:
        raise ValueError(f"no such table in the template: {', '.join(unknown)}")
    for logical_id, table_name in names.items():
        definition = definitions[logical_id]
        try:
            dynamodb_client.create_table(TableName=table_name, **definition.create_table_kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
        _wait_until_active(dynamodb_client, table_name)
        if definition.ttl_attribute is not None:
            _enable_ttl(dynamodb_client, table_name, definition.ttl_attribute)


def _wait_until_active(dynamodb_client: DynamoDBClient, table_name: str) -> None:
    # botocore's waiter polls every 20 s; local backends are ready in milliseconds.
    deadline = time.monotonic() + _TABLE_READY_TIMEOUT_SECONDS
    while True:
        table = dynamodb_client.describe_table(TableName=table_name)["Table"]
        statuses = [table.get("TableStatus")] + [
            index.get("IndexStatus") for index in table.get("GlobalSecondaryIndexes", [])
        ]
        if all(status == "ACTIVE" for status in statuses):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table_name} not active: {statuses}")
        time.sleep(_TABLE_READY_POLL_SECONDS)


def _enable_ttl(dynamodb_client: DynamoDBClient, table_name: str, attribute: str) -> None:
    try:
        current = dynamodb_client.describe_time_to_live(TableName=table_name)
        description = current.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return  # DynamoDB rejects enabling it twice (existing table)
        dynamodb_client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )
    except ClientError as error:
        # A backend without TTL: items carry their expiry attribute either way, and the
        # code never trusts an expired item (TTL deletes late even on AWS).
        LOGGER.warning("TTL not enabled on %s: %s", table_name, error)


# ---------------------------------------------------------------- KMS


def kms_key_ids(template: Mapping[str, Any]) -> list[str]:
    """Logical ids of the template's ``AWS::KMS::Key`` resources."""
    return [logical_id for logical_id, _ in _resources_of_type(template, _KMS_KEY)]


@dataclass(frozen=True)
class KmsAliasSpec:
    """An ``AWS::KMS::Alias``: its (unresolved) name and the logical id of its key."""

    logical_id: str
    alias_name: Any
    target_key_logical_id: str


def kms_aliases(template: Mapping[str, Any]) -> list[KmsAliasSpec]:
    """The template's KMS aliases; ``TargetKeyId`` must be a Ref/GetAtt to a key of it.

    ``alias_name`` is left unresolved: pass it to :func:`resolve` (it usually contains
    ``${AWS::StackName}``).
    """
    aliases = []
    for logical_id, resource in _resources_of_type(template, _KMS_ALIAS):
        properties = resource.get("Properties", {})
        aliases.append(
            KmsAliasSpec(
                logical_id=logical_id,
                alias_name=properties["AliasName"],
                target_key_logical_id=_referenced_logical_id(
                    properties.get("TargetKeyId"), f"{logical_id}.TargetKeyId"
                ),
            )
        )
    return aliases


def _referenced_logical_id(value: Any, where: str) -> str:
    """The logical id behind ``!Ref X``, ``!Ref X.Alias`` (SAM: a function's published
    alias), ``!GetAtt X.Arn`` or ``!Sub "${X.Arn}"``."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" and isinstance(argument, str):
            return argument.removesuffix(".Alias")
        if key == "Fn::GetAtt" and isinstance(argument, list) and argument:
            return str(argument[0])
        if key == "Fn::Sub" and isinstance(argument, str):
            match = _SUB_VARIABLE.fullmatch(argument)
            if match:
                return match.group(1).split(".", 1)[0]
    raise ValueError(f"{where} must reference a resource of the template (Ref or GetAtt)")


# ---------------------------------------------------------------- functions and routes


@dataclass(frozen=True)
class RouteSpec:
    """One API Gateway route (an ``Api`` event of a function)."""

    function_logical_id: str
    api_logical_id: str
    method: str
    path: str
    auth_none: bool


@dataclass(frozen=True)
class FunctionSpec:
    """A ``AWS::Serverless::Function`` with the template's Globals applied."""

    logical_id: str
    code_uri: str
    handler: str
    environment: dict[str, Any]
    events: list[RouteSpec]


def _routes_of(logical_id: str, properties: Mapping[str, Any]) -> list[RouteSpec]:
    routes = []
    for event in (properties.get("Events") or {}).values():
        if event.get("Type") != "Api":
            continue
        event_properties = event.get("Properties", {})
        api = event_properties.get("RestApiId", {"Ref": IMPLICIT_API})
        if not (isinstance(api, dict) and isinstance(api.get("Ref"), str)):
            raise ValueError(f"{logical_id}: RestApiId must be a Ref to an API in the template")
        auth = event_properties.get("Auth") or {}
        routes.append(
            RouteSpec(
                function_logical_id=logical_id,
                api_logical_id=api["Ref"],
                method=str(event_properties["Method"]).upper(),
                path=str(event_properties["Path"]),
                auth_none=auth.get("Authorizer") == "NONE",
            )
        )
    return routes


def functions(template: Mapping[str, Any]) -> list[FunctionSpec]:
    """Every ``AWS::Serverless::Function``, Globals merged, in template order."""
    function_globals = (template.get("Globals") or {}).get("Function") or {}
    global_variables = (function_globals.get("Environment") or {}).get("Variables") or {}
    specs = []
    for logical_id, resource in _resources_of_type(template, _SERVERLESS_FUNCTION):
        properties = resource.get("Properties", {})
        own_variables = (properties.get("Environment") or {}).get("Variables") or {}
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_uri=str(properties.get("CodeUri", function_globals.get("CodeUri"))),
                handler=str(properties.get("Handler", function_globals.get("Handler"))),
                environment={**global_variables, **own_variables},
                events=_routes_of(logical_id, properties),
            )
        )
    return specs


def api_routes(template: Mapping[str, Any]) -> list[RouteSpec]:
    """All routes of all functions, in template order."""
    return [route for spec in functions(template) for route in spec.events]


@dataclass(frozen=True)
class AuthorizerSpec:
    """A Lambda authorizer of an API (``Auth.Authorizers.<name>`` with a ``FunctionArn``).

    ``identity_headers`` are the identity sources (REQUEST: ``Identity.Headers``; TOKEN:
    ``Identity.Header``, default ``Authorization``); a request without them is refused
    with 401 before the function runs, and they key the cache of ``ttl_seconds``
    (``Identity.ReauthorizeEvery``, default 300, 0 = no cache).
    """

    name: str
    function_logical_id: str
    payload_type: str  # "REQUEST" or "TOKEN"
    identity_headers: tuple[str, ...]
    ttl_seconds: int


@dataclass(frozen=True)
class ApiSpec:
    """A REST API (``AWS::Serverless::Api``, or SAM's implicit one) and its auth settings.

    ``default_authorizer`` is :data:`AWS_IAM`, the name of one of ``authorizers``, or
    ``None`` (routes are open unless they say otherwise).
    """

    logical_id: str
    stage_name: str
    default_authorizer: str | None
    authorizers: dict[str, AuthorizerSpec]


def apis(template: Mapping[str, Any], parameters: Mapping[str, str] | None = None) -> list[ApiSpec]:
    """Every REST API of the template with its stage and authorizers, in template order.

    ``Globals.Api.Auth`` is merged under each API's own ``Auth``. SAM's implicit API is
    included when a route uses it. Authorizers other than Lambda ones (Cognito) are an
    error: nothing local could evaluate them.
    """
    api_globals = (template.get("Globals") or {}).get("Api") or {}
    specs = []
    for logical_id, resource in _resources_of_type(template, _SERVERLESS_API):
        properties = resource.get("Properties", {})
        auth = {**(api_globals.get("Auth") or {}), **(properties.get("Auth") or {})}
        stage = resolve(properties.get("StageName", ""), {}, parameters, template=template)
        authorizers = {
            name: _authorizer_spec(logical_id, name, definition, parameters, template)
            for name, definition in (auth.get("Authorizers") or {}).items()
        }
        default = auth.get("DefaultAuthorizer")
        if default is not None and default != AWS_IAM and default not in authorizers:
            raise ValueError(f"{logical_id}: DefaultAuthorizer {default} is not defined")
        specs.append(ApiSpec(logical_id, stage, default, authorizers))
    if IMPLICIT_API not in {s.logical_id for s in specs} and any(
        route.api_logical_id == IMPLICIT_API for route in api_routes(template)
    ):
        specs.append(ApiSpec(IMPLICIT_API, _IMPLICIT_API_STAGE, None, {}))
    return specs


def _authorizer_spec(
    api: str,
    name: str,
    definition: Mapping[str, Any],
    parameters: Mapping[str, str] | None,
    template: Mapping[str, Any],
) -> AuthorizerSpec:
    if "FunctionArn" not in definition:
        raise ValueError(f"{api}: authorizer {name} is not a Lambda authorizer")
    payload_type = str(definition.get("FunctionPayloadType", "TOKEN")).upper()
    identity = definition.get("Identity") or {}
    if payload_type == "REQUEST":
        headers = tuple(str(h) for h in identity.get("Headers") or ())
    else:
        headers = (str(identity.get("Header", "Authorization")),)
    return AuthorizerSpec(
        name=name,
        function_logical_id=_referenced_logical_id(
            definition["FunctionArn"], f"{api}.Auth.Authorizers.{name}.FunctionArn"
        ),
        payload_type=payload_type,
        identity_headers=headers,
        ttl_seconds=int(
            resolve(
                identity.get("ReauthorizeEvery", _DEFAULT_AUTHORIZER_TTL_SECONDS),
                {},
                parameters,
                template=template,
            )
        ),
    )


def layer_content_uris(template: Mapping[str, Any]) -> list[str]:
    """``ContentUri`` of every ``AWS::Serverless::LayerVersion`` (local folders).

    A python layer built by ``sam build`` lands in ``/opt/python``, which the Lambda
    runtime puts on ``sys.path``: running handlers in-process, put these folders there.
    """
    return [
        str(resource.get("Properties", {})["ContentUri"])
        for _, resource in _resources_of_type(template, _SERVERLESS_LAYER)
    ]


# ---------------------------------------------------------------- intrinsics


class _NoValue:
    """``AWS::NoValue``: the property (here: the variable) is left out."""


_NO_VALUE: Final = _NoValue()
# Declared empty in the template only so `sam local --env-vars` may override it.
_UNSET_WHEN_EMPTY: Final = frozenset({"AWS_ENDPOINT_URL"})
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class _Context:
    refs: Mapping[str, str]
    parameters: Mapping[str, str]
    template: Mapping[str, Any]


def _parameter_values(
    template: Mapping[str, Any], overrides: Mapping[str, str] | None
) -> dict[str, str]:
    values = {
        name: _scalar(definition["Default"])
        for name, definition in (template.get("Parameters") or {}).items()
        if "Default" in definition
    }
    values.update(overrides or {})
    return values


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"not a scalar: {value!r}")


def _ref(name: str, context: _Context) -> str | _NoValue:
    if name == "AWS::NoValue":
        return _NO_VALUE
    if name in context.parameters:
        return context.parameters[name]
    if name in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[name]
    if name in context.refs:
        return context.refs[name]
    raise KeyError(f"no value for Ref {name}: pass it in refs or parameters")


def _get_att(logical_id: str, attribute: str, context: _Context) -> str:
    # A caller that knows the attribute passes "Logical.Attribute"; otherwise the
    # physical name/id stands in (KMS and boto3 accept a key id, alias or ARN alike).
    for key in (f"{logical_id}.{attribute}", logical_id):
        if key in context.refs:
            return context.refs[key]
    raise KeyError(f"no value for GetAtt {logical_id}.{attribute}: pass it in refs")


def _sub(template_string: str, variables: Mapping[str, Any], context: _Context) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} is an escaped "${Literal}"
            return "${" + name[1:] + "}"
        if name in variables:
            return _string(_evaluate(variables[name], context))
        if "." in name and not name.startswith("AWS::"):
            logical_id, _, attribute = name.partition(".")
            return _get_att(logical_id, attribute, context)
        return _string(_ref(name, context))

    return _SUB_VARIABLE.sub(replace, template_string)


def _string(value: Any) -> str:
    if isinstance(value, _NoValue):
        raise ValueError("AWS::NoValue cannot be part of a string")
    return _scalar(value)


def _condition(name: str, context: _Context) -> bool:
    conditions = context.template.get("Conditions") or {}
    if name not in conditions:
        raise KeyError(f"no such condition: {name}")
    return _truth(conditions[name], context)


def _truth(value: Any, context: _Context) -> bool:
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Fn::Equals":
            left, right = (_string(_evaluate(item, context)) for item in argument)
            return left == right
        if key == "Fn::Not":
            return not _truth(argument[0], context)
        if key == "Fn::And":
            return all(_truth(item, context) for item in argument)
        if key == "Fn::Or":
            return any(_truth(item, context) for item in argument)
        if key == "Condition":
            return _condition(argument, context)
    raise ValueError(f"unsupported condition: {value!r}")


def _evaluate(value: Any, context: _Context) -> Any:
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError(f"not an intrinsic function: {value!r}")
    ((key, argument),) = value.items()
    if key == "Ref":
        return _ref(argument, context)
    if key == "Fn::GetAtt":
        logical_id, attribute = argument
        return _get_att(logical_id, _string(_evaluate(attribute, context)), context)
    if key == "Fn::Sub":
        if isinstance(argument, str):
            return _sub(argument, {}, context)
        template_string, variables = argument
        return _sub(template_string, variables, context)
    if key == "Fn::Join":
        delimiter, items = argument
        items = _evaluate(items, context)
        return delimiter.join(_string(_evaluate(item, context)) for item in items)
    if key == "Fn::Split":
        delimiter, source = argument
        return _string(_evaluate(source, context)).split(delimiter)
    if key == "Fn::Select":
        index, items = argument
        items = _evaluate(items, context)
        return _evaluate(items[int(_string(_evaluate(index, context)))], context)
    if key == "Fn::If":
        name, when_true, when_false = argument
        return _evaluate(when_true if _condition(name, context) else when_false, context)
    if key == "Fn::FindInMap":
        map_name, top, second = (_string(_evaluate(item, context)) for item in argument)
        return _evaluate(context.template["Mappings"][map_name][top][second], context)
    raise ValueError(f"intrinsic {key} is not supported here")


def _context(
    refs: Mapping[str, str],
    parameters: Mapping[str, str] | None,
    template: Mapping[str, Any] | None,
) -> _Context:
    template = template if template is not None else _default_template()
    return _Context(refs, _parameter_values(template, parameters), template)


def resolve(
    value: Any,
    refs: Mapping[str, str],
    parameters: Mapping[str, str] | None = None,
    *,
    template: Mapping[str, Any] | None = None,
) -> str:
    """Resolve a template value (literal, Ref, GetAtt, Sub, Join, If, ...) to a string.

    ``refs`` maps logical ids to physical names/ids (``"Table": "sfbroker-local"``); for
    ``GetAtt X.Attr`` a ``"X.Attr"`` entry wins over ``"X"``. ``parameters`` override the
    template's Parameter defaults; pseudo parameters use :data:`PSEUDO_PARAMETERS`.
    ``template`` defaults to ``template.yaml`` (for Parameters, Conditions, Mappings).
    """
    return _string(_evaluate(value, _context(refs, parameters, template)))


def function_environment(
    spec: FunctionSpec,
    refs: Mapping[str, str],
    parameters: Mapping[str, str] | None = None,
    *,
    template: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The function's environment variables as the deployed function would see them.

    Variables that resolve to ``AWS::NoValue`` are left out, as CloudFormation does, and
    so is an empty ``AWS_ENDPOINT_URL`` (botocore treats empty as unset; copied into a
    process it would only clobber the endpoint the local stack sets).
    """
    context = _context(refs, parameters, template)
    environment = {}
    for name, value in spec.environment.items():
        resolved = _evaluate(value, context)
        if isinstance(resolved, _NoValue):
            continue
        if name in _UNSET_WHEN_EMPTY and resolved == "":
            continue
        environment[name] = _string(resolved)
    return environment
