"""Validation problems in the API's words: `details` of a 400 `invalid_request` (API.md).

A detail's `field` is always a name of the request model (`sfdxAuthUrl`, `orgType`), never
a part of what was sent; its message says what the field must be (`must be at most 7200`),
not how pydantic or Powertools put it (`Input should be less than or equal to 7200`), and
never describes a secret: a problem with a secret field says only that it is not valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

# Where Powertools puts a problem; not part of a field's name.
_SOURCES: Final = frozenset({"body", "query", "path", "header"})
UNKNOWN_FIELD: Final = "has a field this request does not take (see GET /openapi.json)"
NOT_JSON: Final = "The body is not valid JSON"
DATE_TIME_EXAMPLE: Final = "2026-12-01T08:52:21Z"

_FIXED: Final[Mapping[str, str]] = {
    "missing": "is required",
    "extra_forbidden": UNKNOWN_FIELD,
    "json_invalid": NOT_JSON,
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "string_pattern_mismatch": "has characters that are not allowed here",
    "datetime_type": f"must be a date and time such as {DATE_TIME_EXAMPLE}",
    "datetime_parsing": f"must be a date and time such as {DATE_TIME_EXAMPLE}",
    "datetime_from_date_parsing": f"must be a date and time such as {DATE_TIME_EXAMPLE}",
}


# Problems whose message says nothing of the value sent, even for a secret field.
_SAY_NOTHING_OF_THE_VALUE: Final = frozenset({"missing", "string_type"})


# The wire names of the request fields that hold a secret (`SecretStr` in sfbroker.models,
# which this base module may not import: a unit test keeps the two in step).
SECRET_FIELDS: Final = frozenset({"sfdxAuthUrl"})


def validation_details(problems: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """`{"field", "message"}` for each problem (pydantic's error dicts), once each."""
    details: list[dict[str, str]] = []
    for problem in problems:
        detail = {"field": _field(problem), "message": _message(problem)}
        if detail not in details:
            details.append(detail)
    return details


def _field(problem: Mapping[str, Any]) -> str:
    names = [part for part in problem.get("loc", ()) if isinstance(part, str)]
    if names and names[0] in _SOURCES:
        names = names[1:]
    if problem.get("type") == "extra_forbidden":
        names = names[:-1]  # the unknown name is the caller's, not the model's
    return ".".join(names) or "body"


def _message(problem: Mapping[str, Any]) -> str:
    kind = str(problem.get("type", ""))
    if _field(problem) in SECRET_FIELDS and kind not in _SAY_NOTHING_OF_THE_VALUE:
        return "is not valid"
    if kind in _FIXED:
        return _FIXED[kind]
    context: Mapping[str, Any] = problem.get("ctx") or {}
    bounded = _bound(kind, context)
    if bounded is not None:
        return bounded
    if kind in ("literal_error", "enum"):
        return f"must be one of {context.get('expected', 'the documented values')}"
    if kind == "value_error" and "error" in context:
        return str(context["error"])
    if kind == "body_unreadable":
        return str(problem.get("msg", NOT_JSON))
    return "is not valid"


def _bound(kind: str, context: Mapping[str, Any]) -> str | None:
    """The message of a range or size problem, or None."""
    numbers = {
        "greater_than_equal": ("must be at least", "ge"),
        "greater_than": ("must be more than", "gt"),
        "less_than_equal": ("must be at most", "le"),
        "less_than": ("must be less than", "lt"),
    }
    if kind in numbers:
        words, key = numbers[kind]
        return f"{words} {context.get(key)}"
    sizes = {
        "string_too_short": ("must be at least", "min_length", "characters"),
        "string_too_long": ("must be at most", "max_length", "characters"),
        "too_short": ("must have at least", "min_length", "entries"),
        "too_long": ("must have at most", "max_length", "entries"),
    }
    if kind in sizes:
        words, key, unit = sizes[kind]
        if key == "min_length" and context.get(key) == 1:
            return "must not be empty"
        return f"{words} {context.get(key)} {unit}"
    return None
