from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
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
