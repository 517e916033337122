"""Validation details in the API's words: model field names only, never a secret described."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError
from sfbroker.models import (
    CreateApiTokenRequest,
    IssueTokenRequest,
    RegisterOrgRequest,
    RequestModel,
)
from sfbroker.validation import SECRET_FIELDS, UNKNOWN_FIELD, validation_details

JARGON = ("Input should", "Value should", "after validation", "items", "Field required")


def details_of(model: type[BaseModel], body: Any) -> list[dict[str, str]]:
    """What the API answers for `body`: Powertools puts body problems under `body`."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    problems = [{**problem, "loc": ("body", *problem["loc"])} for problem in caught.value.errors()]
    return validation_details(problems)


@pytest.mark.parametrize(
    ("model", "body", "expected"),
    [
        (RegisterOrgRequest, {}, [{"field": "sfdxAuthUrl", "message": "is required"}]),
        (
            RegisterOrgRequest,
            {"sfdxAuthUrl": 5, "isDevHub": "yes"},
            [
                {"field": "sfdxAuthUrl", "message": "must be a string"},
                {"field": "isDevHub", "message": "must be true or false"},
            ],
        ),
        (
            IssueTokenRequest,
            {"minValiditySeconds": 7201},
            [{"field": "minValiditySeconds", "message": "must be at most 7200"}],
        ),
        (
            IssueTokenRequest,
            {"minValiditySeconds": -1, "forceRefresh": 1},
            [
                {"field": "minValiditySeconds", "message": "must be at least 0"},
                {"field": "forceRefresh", "message": "must be true or false"},
            ],
        ),
        (
            CreateApiTokenRequest,
            {"name": "", "scopes": []},
            [
                {"field": "name", "message": "must not be empty"},
                {"field": "scopes", "message": "must not be empty"},
            ],
        ),
        (
            CreateApiTokenRequest,
            {"name": "x" * 81, "scopes": ["nope", "orgs:read", "nope2"]},
            [
                {"field": "name", "message": "must be at most 80 characters"},
                {"field": "scopes", "message": "must be one of " + "'orgs:read', "},
            ],
        ),
        (IssueTokenRequest, [1, 2], [{"field": "body", "message": "must be a JSON object"}]),
    ],
)
def test_problems_are_said_in_the_apis_words(
    model: type[BaseModel], body: Any, expected: list[dict[str, str]]
) -> None:
    details = details_of(model, body)

    assert [d["field"] for d in details] == [e["field"] for e in expected]
    for detail, wanted in zip(details, expected, strict=True):
        assert detail["message"].startswith(wanted["message"]), detail
        assert not [word for word in JARGON if word in detail["message"]], detail
        assert "nope" not in detail["message"]


def test_an_unknown_field_is_not_named_back() -> None:
    details = details_of(IssueTokenRequest, {"forceRefresh": True, "sfb_abc_secret": 1})

    assert details == [{"field": "body", "message": UNKNOWN_FIELD}]


def test_query_and_path_problems_name_the_parameter() -> None:
    problems = [
        {"type": "less_than_equal", "loc": ("query", "limit"), "ctx": {"le": 1000}},
        {"type": "literal_error", "loc": ("query", "orgType"), "ctx": {"expected": "'a' or 'b'"}},
        {"type": "datetime_parsing", "loc": ("query", "since"), "ctx": {"error": "too short"}},
    ]

    assert validation_details(problems) == [
        {"field": "limit", "message": "must be at most 1000"},
        {"field": "orgType", "message": "must be one of 'a' or 'b'"},
        {"field": "since", "message": "must be a date and time such as 2026-12-01T08:52:21Z"},
    ]


def test_the_secret_fields_are_the_models_secret_fields() -> None:
    secret = {
        field.alias or name
        for model in RequestModel.__subclasses__()
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr
    }

    assert secret == SECRET_FIELDS == {"sfdxAuthUrl"}


def test_a_secret_field_is_never_described() -> None:
    # Whatever bound a future change puts on it, its message gives nothing away.
    problems = [
        {
            "type": kind,
            "loc": ("body", "sfdxAuthUrl"),
            "ctx": {"min_length": 10, "max_length": 4096, "pattern": "force://.*"},
        }
        for kind in ("string_too_short", "too_short", "string_too_long", "string_pattern_mismatch")
    ]

    assert validation_details(problems) == [{"field": "sfdxAuthUrl", "message": "is not valid"}]


def test_a_short_auth_url_reaches_the_parser_which_explains_the_format() -> None:
    # No length bounds on the model: the auth-URL parser answers, about the format.
    request = RegisterOrgRequest.model_validate({"sfdxAuthUrl": "force://a"})

    assert isinstance(request.sfdx_auth_url, SecretStr)
