"""local/template.py: short tags, intrinsic resolution, table creation (with a fake client)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.template import (
    TEMPLATE_PATH,
    create_tables,
    function_environment,
    functions,
    load_template,
    resolve,
    table_definitions,
)

SAMPLE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
  Size:
    Type: Number
    Default: 5
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Mappings:
  Sizes:
    dev: {mem: "128"}
    prod: {mem: "1024"}
Globals:
  Function:
    Handler: handler.lambda_handler
    Environment:
      Variables:
        SHARED: shared
        OVERRIDDEN: global
Resources:
  Things:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-things"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
      SSESpecification: {SSEEnabled: true, SSEType: KMS}
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      DeletionProtectionEnabled: true
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: false}
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Version: 2012-10-17
        Statement: []
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fn/
      Environment:
        Variables:
          OVERRIDDEN: own
          TABLE: !Ref Things
          KEY: !GetAtt Key.Arn
          URL: !Sub "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
          ESCAPED: !Sub "${!NotAVariable}-${Things.Arn}"
          JOINED: !Join [",", [a, !Ref Stage, !Select [1, !Split ["/", "x/y/z"]]]]
          CHOSEN: !If [IsProd, big, small]
          NEGATED: !If [NotProd, yes-please, nope]
          MAPPED: !FindInMap [Sizes, !Ref Stage, mem]
          NUMBER: !Ref Size
          OPTIONAL: !If [IsProd, enabled, !Ref AWS::NoValue]
      Events:
        Implicit:
          Type: Api
          Properties: {Path: /x, Method: any}
        Timer:
          Type: Schedule
          Properties: {Schedule: rate(1 hour)}
  Encoded:
    Type: AWS::EC2::Instance
    Properties:
      UserData: !Base64 "echo hi"
      Cidrs: !Cidr ["10.0.0.0/16", 2, 8]
      Imported: !ImportValue other-stack-output
      AZ: !Select [0, !GetAZs ""]
      All: !And [!Condition IsProd, !Or [!Condition IsProd, !Condition NotProd]]
"""

REFS = {"Things": "things-local", "Key": "alias/local", "Api": "api123"}


@pytest.fixture
def sample(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(SAMPLE, encoding="utf-8")
    return load_template(path)


def _variables(sample: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = sample["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]
    return variables


def test_short_tags_become_long_forms(sample: dict[str, Any]) -> None:
    variables = _variables(sample)
    assert variables["TABLE"] == {"Ref": "Things"}
    assert variables["KEY"] == {"Fn::GetAtt": ["Key", "Arn"]}
    assert variables["CHOSEN"] == {"Fn::If": ["IsProd", "big", "small"]}
    assert sample["Conditions"]["NotProd"] == {"Fn::Not": [{"Condition": "IsProd"}]}
    encoded = sample["Resources"]["Encoded"]["Properties"]
    assert encoded["UserData"] == {"Fn::Base64": "echo hi"}
    assert encoded["Cidrs"] == {"Fn::Cidr": ["10.0.0.0/16", 2, 8]}
    assert encoded["Imported"] == {"Fn::ImportValue": "other-stack-output"}
    assert encoded["AZ"] == {"Fn::Select": [0, {"Fn::GetAZs": ""}]}
    assert encoded["All"] == {
        "Fn::And": [
            {"Condition": "IsProd"},
            {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "NotProd"}]},
        ]
    }


def test_dates_stay_strings(sample: dict[str, Any]) -> None:
    assert sample["Resources"]["Key"]["Properties"]["KeyPolicy"]["Version"] == "2012-10-17"


def test_not_a_template_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("just: text\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no Resources"):
        load_template(path)


def test_template_path_points_at_the_repo_root() -> None:
    assert TEMPLATE_PATH.name == "template.yaml"
    assert (TEMPLATE_PATH.parent / "pyproject.toml").is_file()


def test_functions_merge_globals(sample: dict[str, Any]) -> None:
    (spec,) = functions(sample)
    assert spec.code_uri == "functions/fn/"
    assert spec.handler == "handler.lambda_handler"
    assert spec.environment["SHARED"] == "shared"
    assert spec.environment["OVERRIDDEN"] == "own"
    (route,) = spec.events  # the Schedule event is not a route
    assert (route.api_logical_id, route.method, route.path, route.auth_none) == (
        "ServerlessRestApi",
        "ANY",
        "/x",
        False,
    )


@pytest.mark.parametrize(
    ("name", "parameters", "expected"),
    [
        ("TABLE", None, "things-local"),
        ("KEY", None, "alias/local"),
        ("URL", None, "https://api123.execute-api.us-east-1.amazonaws.com/dev"),
        ("URL", {"Stage": "prod"}, "https://api123.execute-api.us-east-1.amazonaws.com/prod"),
        ("ESCAPED", None, "${NotAVariable}-things-local"),
        ("JOINED", None, "a,dev,y"),
        ("CHOSEN", None, "small"),
        ("CHOSEN", {"Stage": "prod"}, "big"),
        ("NEGATED", None, "yes-please"),
        ("MAPPED", None, "128"),
        ("NUMBER", None, "5"),
    ],
)
def test_resolve(
    sample: dict[str, Any], name: str, parameters: dict[str, str] | None, expected: str
) -> None:
    assert resolve(_variables(sample)[name], REFS, parameters, template=sample) == expected


def test_resolve_prefers_attribute_refs(sample: dict[str, Any]) -> None:
    refs = {**REFS, "Key.Arn": "arn:aws:kms:us-east-1:123456789012:key/1"}
    assert resolve({"Fn::GetAtt": ["Key", "Arn"]}, refs, template=sample).endswith("key/1")


def test_resolve_pseudo_parameters(sample: dict[str, Any]) -> None:
    value = {"Fn::Sub": "${AWS::AccountId}/${AWS::StackName}/${AWS::Region}"}
    assert resolve(value, {}, template=sample) == "123456789012/sfbroker-local/us-east-1"


def test_resolve_literals(sample: dict[str, Any]) -> None:
    assert resolve("plain", {}, template=sample) == "plain"
    assert resolve(7, {}, template=sample) == "7"
    assert resolve(True, {}, template=sample) == "true"


def test_resolve_unknown_ref_fails(sample: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="Missing"):
        resolve({"Ref": "Missing"}, {}, template=sample)


def test_resolve_unsupported_intrinsic_fails(sample: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Fn::ImportValue"):
        resolve({"Fn::ImportValue": "x"}, {}, template=sample)


def test_function_environment_drops_no_value(sample: dict[str, Any]) -> None:
    (spec,) = functions(sample)
    environment = function_environment(spec, REFS, template=sample)
    assert "OPTIONAL" not in environment
    assert environment["OVERRIDDEN"] == "own"
    prod = function_environment(spec, REFS, {"Stage": "prod"}, template=sample)
    assert prod["OPTIONAL"] == "enabled"


def test_table_definitions_keep_only_create_table_arguments(sample: dict[str, Any]) -> None:
    (definition,) = table_definitions(sample)
    assert definition.logical_id == "Things"
    assert definition.ttl_attribute is None  # Enabled: false
    assert definition.create_table_kwargs == {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def test_table_definitions_reject_intrinsics_in_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        textwrap.dedent("""\
            Resources:
              T:
                Type: AWS::DynamoDB::Table
                Properties:
                  BillingMode: !Ref Mode
                  KeySchema: []
            """),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="Ref"):
        table_definitions(load_template(path))


# ---------------------------------------------------------------- create_tables


class FakeDynamoDB:
    """The few DynamoDB client calls create_tables makes, in memory."""

    def __init__(self, *, ttl_supported: bool = True, creating_polls: int = 0) -> None:
        self.tables: dict[str, dict[str, Any]] = {}
        self.ttl: dict[str, str] = {}
        self.ttl_supported = ttl_supported
        self.creating_polls = creating_polls

    @staticmethod
    def _error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": code}}, "op")

    def create_table(self, *, TableName: str, **kwargs: Any) -> dict[str, Any]:
        if TableName in self.tables:
            raise self._error("ResourceInUseException")
        self.tables[TableName] = kwargs
        return {}

    def describe_table(self, *, TableName: str) -> dict[str, Any]:
        status = "CREATING" if self.creating_polls > 0 else "ACTIVE"
        self.creating_polls -= 1
        indexes = self.tables[TableName].get("GlobalSecondaryIndexes", [])
        return {
            "Table": {
                "TableStatus": status,
                "GlobalSecondaryIndexes": [
                    {"IndexName": index["IndexName"], "IndexStatus": status} for index in indexes
                ],
            }
        }

    def describe_time_to_live(self, *, TableName: str) -> dict[str, Any]:
        if not self.ttl_supported:
            raise self._error("UnknownOperationException")
        if TableName in self.ttl:
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED"}}
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}

    def update_time_to_live(
        self,
        *,
        TableName: str,
        TimeToLiveSpecification: dict[str, Any],
    ) -> dict[str, Any]:
        if TableName in self.ttl:
            raise self._error("ValidationException")
        self.ttl[TableName] = TimeToLiveSpecification["AttributeName"]
        return {}


NAMES = {"Table": "sfbroker-test-abc"}


def test_create_tables_from_the_repo_template() -> None:
    fake = FakeDynamoDB(creating_polls=2)
    create_tables(fake, NAMES)  # type: ignore[arg-type]
    assert set(fake.tables) == set(NAMES.values())
    assert fake.tables["sfbroker-test-abc"]["GlobalSecondaryIndexes"][0]["IndexName"] == "GSI1"
    assert fake.ttl == {"sfbroker-test-abc": "ttl"}


def test_create_tables_is_repeatable() -> None:
    fake = FakeDynamoDB()
    create_tables(fake, NAMES)  # type: ignore[arg-type]
    create_tables(fake, NAMES)  # type: ignore[arg-type]
    assert set(fake.tables) == set(NAMES.values())


def test_create_tables_only_the_named_ones() -> None:
    fake = FakeDynamoDB()
    create_tables(fake, {"Table": "only"})  # type: ignore[arg-type]
    assert set(fake.tables) == {"only"}


def test_create_tables_without_ttl_support() -> None:
    fake = FakeDynamoDB(ttl_supported=False)
    create_tables(fake, NAMES)  # type: ignore[arg-type]
    assert set(fake.tables) == set(NAMES.values())


def test_create_tables_rejects_unknown_logical_ids() -> None:
    with pytest.raises(ValueError, match="Nope"):
        create_tables(FakeDynamoDB(), {"Nope": "x"})  # type: ignore[arg-type]
