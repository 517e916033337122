"""Just enough IAM evaluation to hold template.yaml's grants against real AWS calls.

Each DynamoDB or KMS call a handler makes is recorded with what IAM decides on (the
action, table or index, the partition keys it touches, the attributes it writes, the
encryption context) and evaluated against the function's role policies and the envelope
key's policy, as AWS would: allowed only if some Allow statement matches. A condition
this evaluator does not know fails loudly rather than allowing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

TABLE = "table"
# Powertools' idempotency table (`sfbroker-<stack>-idempotency`, see local/provision.py).
IDEMPOTENCY_TABLE = "IdempotencyTable"
ENVELOPE_KEY = "EnvelopeKey"
_PLACEHOLDER = re.compile(r"#\w+")
_NAME = re.compile(r"(?<![:#\w])([A-Za-z_]\w*)\b(?!\s*\()")
_KEYWORDS = frozenset({"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"})
_TRANSACT_ACTIONS = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
}


@dataclass(frozen=True)
class Call:
    """One AWS request as IAM sees it."""

    action: str  # "dynamodb:PutItem", "kms:Decrypt"
    resource: str = TABLE  # "table", "index/GSI1", or the KMS key's logical id
    leading_keys: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    return_values: str | None = None
    encryption_context: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        keys = ",".join(self.leading_keys)
        return f"{self.action} {self.resource} {keys}".strip()


def calls_of(service: str, operation: str, params: Mapping[str, Any]) -> Iterator[Call]:
    """The calls IAM authorizes for one API request (a transaction is one per item)."""
    if service == "kms":
        yield Call(
            f"kms:{operation}",
            ENVELOPE_KEY,
            encryption_context=dict(params.get("EncryptionContext") or {}),
        )
        return
    if operation == "TransactWriteItems":
        for entry in params["TransactItems"]:
            ((kind, request),) = entry.items()
            yield _dynamodb_call(_TRANSACT_ACTIONS[kind], request)
        return
    yield _dynamodb_call(operation, params)


def _dynamodb_call(operation: str, params: Mapping[str, Any]) -> Call:
    names = dict(params.get("ExpressionAttributeNames") or {})
    values = params.get("ExpressionAttributeValues") or {}
    if operation == "Query":
        condition = _resolve(params["KeyConditionExpression"], names)
        _, placeholder = (part.strip() for part in condition.split(" AND ")[0].split("="))
        leading = (values[placeholder]["S"],)
        index = params.get("IndexName")
        return Call("dynamodb:Query", f"index/{index}" if index else TABLE, leading)
    item = params.get("Item") or params["Key"]
    if str(params.get("TableName", "")).endswith("-idempotency"):
        return Call(f"dynamodb:{operation}", IDEMPOTENCY_TABLE, (item["id"]["S"],))
    attributes = set(item)
    for expression in ("UpdateExpression", "ConditionExpression"):
        if text := params.get(expression):
            attributes |= {
                name
                for name in _NAME.findall(_resolve(text, names))
                if name.upper() not in _KEYWORDS
            }
    return Call(
        f"dynamodb:{operation}",
        TABLE,
        (item["PK"]["S"],),
        tuple(sorted(attributes)),
        params.get("ReturnValues"),
    )


def _resolve(expression: str, names: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: names.get(match.group(), match.group()), expression)


def allowed(template: Mapping[str, Any], function: str, call: Call) -> bool:
    """Whether the function's role may make `call` (KMS: by the key's policy)."""
    resources = template["Resources"]
    if call.action.startswith("kms:"):
        key_policy = resources[call.resource]["Properties"]["KeyPolicy"]
        role = f"{function}Role"
        statements = [
            s for s in key_policy["Statement"] if role in _principal_roles(s.get("Principal"))
        ]
    else:
        statements = [
            statement
            for policy in resources[function]["Properties"].get("Policies", [])
            if isinstance(policy, dict)
            for statement in policy.get("Statement", [])
            if call.resource in _resources(statement.get("Resource"))
        ]
    return any(_matches(statement, call) for statement in statements)


def key_users(template: Mapping[str, Any], key: str = ENVELOPE_KEY) -> set[str]:
    """The functions whose roles the key's policy names, for any action."""
    statements = template["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
    return {
        role.removesuffix("Role")
        for statement in statements
        for role in _principal_roles(statement.get("Principal"))
    }


def _matches(statement: Mapping[str, Any], call: Call) -> bool:
    assert statement["Effect"] == "Allow", statement  # no Deny in our policies
    actions = statement["Action"]
    if call.action not in ([actions] if isinstance(actions, str) else actions):
        return False
    return all(
        _condition_holds(operator, key, expected, call)
        for operator, conditions in (statement.get("Condition") or {}).items()
        for key, expected in conditions.items()
    )


def _condition_holds(operator: str, key: str, expected: Any, call: Call) -> bool:
    patterns = [expected] if isinstance(expected, str) else list(expected)
    present = _context_values(key, call)
    match operator:
        case "ForAllValues:StringLike":
            return all(any(fnmatchcase(v, p) for p in patterns) for v in present or ())
        case "ForAllValues:StringEquals":
            return all(v in patterns for v in present or ())
        case "StringEquals":
            return present is not None and len(present) == 1 and present[0] in patterns
        case "StringEqualsIfExists":
            return present is None or (len(present) == 1 and present[0] in patterns)
    raise AssertionError(f"condition operator {operator} is not modelled")


def _context_values(key: str, call: Call) -> list[str] | None:
    match key:
        case "dynamodb:LeadingKeys":
            return list(call.leading_keys)
        case "dynamodb:Attributes":
            return list(call.attributes)
        case "dynamodb:ReturnValues":
            return None if call.return_values is None else [call.return_values]
    if key.startswith("kms:EncryptionContext:"):
        value = call.encryption_context.get(key.removeprefix("kms:EncryptionContext:"))
        return None if value is None else [value]
    raise AssertionError(f"condition key {key} is not modelled")


def _resources(value: Any) -> set[str]:
    """`table` / `index/<name>` for the template's ways of naming the data table, and
    `IdempotencyTable`."""
    found = set()
    for resource in value if isinstance(value, list) else [value]:
        if resource == {"Fn::GetAtt": ["Table", "Arn"]}:
            found.add(TABLE)
        elif resource == {"Fn::GetAtt": [IDEMPOTENCY_TABLE, "Arn"]}:
            found.add(IDEMPOTENCY_TABLE)
        elif isinstance(resource, dict) and "Fn::Sub" in resource:
            found.add(str(resource["Fn::Sub"]).removeprefix("${Table.Arn}/"))
    return found


def _principal_roles(principal: Any) -> set[str]:
    """Logical ids of the roles a principal names with `!GetAtt <Role>.Arn`."""
    aws = (principal or {}).get("AWS", []) if isinstance(principal, dict) else []
    return {
        entry["Fn::GetAtt"][0]
        for entry in (aws if isinstance(aws, list) else [aws])
        if isinstance(entry, dict) and "Fn::GetAtt" in entry
    }
