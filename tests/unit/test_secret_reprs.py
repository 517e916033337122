"""No object of ours prints a secret in its repr (a stray log line or traceback shows it)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sfbroker
from pydantic import BaseModel, SecretStr
from sfbroker.models import AccessToken, CreatedApiToken
from sfbroker.services.registration import Registration

# Field names that hold a secret wherever they appear.
SECRET_FIELDS = frozenset(
    {
        "auth_url",
        "sfdx_auth_url",
        "access_token",
        "refresh_token",
        "client_secret",
        "token",
        "secret",
        "secret_hash",
        "password",
        "envelope",
    }
)
AUTH_URL = "force://PlatformCLI::5AepSECRETREFRESH@acme.my.salesforce.com"


def _our_classes() -> Iterator[type]:
    for module_info in pkgutil.walk_packages(sfbroker.__path__, "sfbroker."):
        if module_info.name.endswith("admin_cli"):
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                yield cls


def _secret_fields(cls: type) -> Iterator[tuple[str, bool, str]]:
    """(name, shown in repr, annotation) of each secret-named field of a class."""
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.name in SECRET_FIELDS:
                yield f.name, f.repr, str(f.type)
    elif issubclass(cls, BaseModel):
        for name, info in cls.model_fields.items():
            if name in SECRET_FIELDS:
                yield name, info.repr, str(info.annotation)


def test_every_secret_field_is_hidden_from_repr() -> None:
    shown = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in _our_classes()
        for name, in_repr, annotation in _secret_fields(cls)
        # Text or a sealed envelope (a dict of text), not an object with its own repr.
        if in_repr and "str" in annotation and "SecretStr" not in annotation
    ]
    assert shown == []


@pytest.mark.parametrize(
    "value",
    [
        Registration(auth_url=SecretStr(AUTH_URL)),
        AccessToken(
            access_token="00Dxx!AQ.SECRETACCESS",
            instance_url="https://acme.my.salesforce.com",
            username="admin@acme.com",
            org_id="00Dxx",
            expires_at=datetime(2026, 12, 3, tzinfo=UTC),
            source="cache",
        ),
    ],
    ids=["registration", "access-token"],
)
def test_reprs_show_no_secret(value: object) -> None:
    assert "SECRET" not in repr(value)
    assert "SECRET" not in str(value)


def test_a_created_api_token_repr_hides_the_token() -> None:
    assert "token" in CreatedApiToken.model_fields
    assert CreatedApiToken.model_fields["token"].repr is False
