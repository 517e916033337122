"""A thin typed face over the DynamoDB client: plain dicts in, plain dicts out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from sfbroker.errors import DependencyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class ConditionFailed(Exception):
    """A conditional write lost: the item changed (or exists, or vanished) meanwhile."""


def epoch_seconds(moment: datetime) -> int:
    """A time as whole epoch seconds: what DynamoDB's TTL attribute holds."""
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    """Epoch seconds back to an aware UTC time."""
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values to DynamoDB attribute values; `None` attributes are left out."""
    return {k: _serializer.serialize(_plain(v)) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values to Python values (numbers become int where whole)."""
    return {k: _python(_deserializer.deserialize(v)) for k, v in item.items()}


class Table:
    """One DynamoDB table; AWS failures become `DependencyUnavailable`."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self.client = client
        self.name = name

    def get(self, key: Mapping[str, str], *, consistent: bool = True) -> dict[str, Any] | None:
        with _aws_errors():
            answer = self.client.get_item(
                TableName=self.name, Key=to_item(key), ConsistentRead=consistent
            )
        item = answer.get("Item")
        return from_item(item) if item else None

    def query(
        self,
        condition: str,
        values: Mapping[str, Any],
        *,
        index: str | None = None,
        names: Mapping[str, str] | None = None,
        filter_expression: str | None = None,
        consistent: bool = False,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every matching item, following pagination."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
        }
        if index:
            request["IndexName"] = index
        else:
            request["ConsistentRead"] = consistent
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if filter_expression:
            request["FilterExpression"] = filter_expression
        if limit:
            request["Limit"] = limit
        while True:
            with _aws_errors():
                page = self.client.query(**request)
            yield from (from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def scan_page(
        self,
        *,
        limit: int,
        start: Mapping[str, Any] | None = None,
        projection: str | None = None,
        names: Mapping[str, str] | None = None,
        filter_expression: str | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a strongly consistent scan of at most `limit` items evaluated, from
        `start` (a previous page's last key); returns the matching items and the key to
        continue from (None after the last page)."""
        request: dict[str, Any] = {"TableName": self.name, "Limit": limit, "ConsistentRead": True}
        if start:
            request["ExclusiveStartKey"] = to_item(start)
        if projection:
            request["ProjectionExpression"] = projection
            request["Select"] = "SPECIFIC_ATTRIBUTES"  # explicit, for an IAM dynamodb:Select check
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if filter_expression:
            request["FilterExpression"] = filter_expression
        with _aws_errors():
            page = self.client.scan(**request)
        last = page.get("LastEvaluatedKey")
        return [from_item(item) for item in page.get("Items", [])], from_item(
            last
        ) if last else None

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        request: dict[str, Any] = {"TableName": self.name, "Item": to_item(item)}
        _add_condition(request, condition, names, values)
        with _aws_errors():
            self.client.put_item(**request)

    def update(
        self,
        key: Mapping[str, str],
        expression: str,
        *,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
        condition: str | None = None,
        return_updated: bool = False,
    ) -> dict[str, Any]:
        """Update one item; with `return_updated`, return the attributes it changed."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": to_item(key),
            "UpdateExpression": expression,
        }
        if return_updated:
            request["ReturnValues"] = "UPDATED_NEW"
        _add_condition(request, condition, names, values)
        with _aws_errors():
            answer = self.client.update_item(**request)
        return from_item(answer.get("Attributes") or {})

    def put_if(
        self,
        item: Mapping[str, Any],
        checks: Sequence[tuple[Mapping[str, str], str, Mapping[str, Any]]],
    ) -> None:
        """Put `item` only if every (key, condition, values) check holds on its item, in
        one transaction; `ConditionFailed` if one does not."""
        request = [
            {
                "ConditionCheck": {
                    "TableName": self.name,
                    "Key": to_item(key),
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": to_item(values),
                }
            }
            for key, condition, values in checks
        ]
        request.append({"Put": {"TableName": self.name, "Item": to_item(item)}})
        with _aws_errors():
            self.client.transact_write_items(TransactItems=request)  # type: ignore[arg-type]

    def delete(
        self,
        key: Mapping[str, str],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        request: dict[str, Any] = {"TableName": self.name, "Key": to_item(key)}
        _add_condition(request, condition, names, values)
        with _aws_errors():
            self.client.delete_item(**request)


def _add_condition(
    request: dict[str, Any],
    condition: str | None,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> None:
    if condition:
        request["ConditionExpression"] = condition
    if names:
        request["ExpressionAttributeNames"] = dict(names)
    if values:
        request["ExpressionAttributeValues"] = to_item(values)


@contextmanager
def _aws_errors() -> Iterator[None]:
    """Turn a lost condition into `ConditionFailed`, any other AWS failure into a 503."""
    try:
        yield
    except ClientError as error:
        if _condition_failed(error):
            raise ConditionFailed from None
        raise DependencyUnavailable("The database is unavailable") from error
    except BotoCoreError as error:
        raise DependencyUnavailable("The database is unavailable") from error


def _condition_failed(error: ClientError) -> bool:
    """A lost condition: of a write, or of a transaction (not a conflict or a limit)."""
    code = error.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons") or []
    if reasons:
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return "ConditionalCheckFailed" in str(error.response["Error"].get("Message", ""))


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _python(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_python(v) for v in value]
    return value
