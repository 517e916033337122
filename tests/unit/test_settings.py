from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest
from sfbroker import runtime
from sfbroker.settings import DEFAULT_ALLOWED_HOSTS, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_host_lists() -> None:
    settings = load_settings(
        {
            "TABLE_NAME": "sfbroker",
            "KMS_KEY_ID": "alias/x",
            "SALESFORCE_HTTP_HOSTS": " 127.0.0.1:* ,LOCALHOST:*",
            "UNRELATED": "1",
        }
    )
    assert settings.salesforce_allowed_hosts == tuple(DEFAULT_ALLOWED_HOSTS.split(","))
    assert settings.salesforce_http_hosts == ("127.0.0.1:*", "localhost:*")
    assert settings.salesforce_api_version == "62.0"
    assert settings.access_token_ttl_seconds == 5400
    assert (
        load_settings(
            {"TABLE_NAME": "abc", "KMS_KEY_ID": "k", "SALESFORCE_HTTP_HOSTS": ""}
        ).salesforce_http_hosts
        == ()
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"KMS_KEY_ID": "k"}, "TABLE_NAME"),
        ({"TABLE_NAME": "sfbroker"}, "KMS_KEY_ID"),
        (
            {"TABLE_NAME": "sfbroker", "KMS_KEY_ID": "k", "ACCESS_TOKEN_TTL_SECONDS": "ten"},
            "ACCESS_TOKEN_TTL_SECONDS",
        ),
        (
            {"TABLE_NAME": "sfbroker", "KMS_KEY_ID": "k", "SALESFORCE_API_VERSION": "latest"},
            "SALESFORCE_API_VERSION",
        ),
        (
            {"TABLE_NAME": "sfbroker", "KMS_KEY_ID": "k", "REQUEST_BUDGET_SECONDS": "29"},
            "REQUEST_BUDGET_SECONDS",
        ),
        (
            {"TABLE_NAME": "sfbroker", "KMS_KEY_ID": "k", "REFRESH_LOCK_SECONDS": "20"},
            "REFRESH_LOCK_SECONDS",
        ),
    ],
)
def test_a_bad_environment_fails_loudly_naming_the_variable(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ)


def test_the_layer_ships_the_runtime_dependency_group() -> None:
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    lines = (ROOT / "layers/common/requirements.txt").read_text().splitlines()
    shipped = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert shipped == set(groups["runtime"])


def _import_handler(function: str) -> None:
    path = ROOT / "functions" / function / "handler.py"
    spec = importlib.util.spec_from_file_location(f"cold_{function}_handler", path)
    assert spec is not None
    assert spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


@pytest.mark.parametrize("function", ["orgs", "tokens", "admin", "authorizer"])
@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"KMS_KEY_ID": "alias/x"}, "TABLE_NAME"),
        (
            {"TABLE_NAME": "sfbroker", "KMS_KEY_ID": "k", "REFRESH_LOCK_SECONDS": "0"},
            "REFRESH_LOCK_SECONDS",
        ),
    ],
)
def test_a_function_fails_its_init_naming_a_missing_or_malformed_variable(
    monkeypatch: pytest.MonkeyPatch, function: str, environ: dict[str, str], named: str
) -> None:
    for name in ("TABLE_NAME", "KMS_KEY_ID", "REFRESH_LOCK_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    try:
        with pytest.raises(SettingsError, match=named):
            _import_handler(function)
    finally:
        runtime.reset()


def test_a_configured_function_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "sfbroker")
    monkeypatch.setenv("KMS_KEY_ID", "alias/x")
    runtime.reset()
    try:
        for function in ("orgs", "tokens", "admin", "authorizer"):
            _import_handler(function)
    finally:
        runtime.reset()


def test_the_refresh_lease_outlives_the_request_budget_under_api_gateways_limit() -> None:
    settings = load_settings({"TABLE_NAME": "sfbroker", "KMS_KEY_ID": "k"})
    assert settings.request_budget_seconds < 29
    assert settings.refresh_lock_seconds > settings.request_budget_seconds


def test_a_token_lifetime_too_short_for_the_default_min_validity_is_refused() -> None:
    with pytest.raises(SettingsError, match="ACCESS_TOKEN_TTL_SECONDS"):
        load_settings(
            {"TABLE_NAME": "sfbroker", "KMS_KEY_ID": "k", "ACCESS_TOKEN_TTL_SECONDS": "900"}
        )
