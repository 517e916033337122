"""No refresh token, auth URL or access token in any log line, response body or error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sfbroker.observability import logger as broker_logger

from local.fake_salesforce import FakeSalesforceServer
from tests.support.broker import Broker
from tests.support.salesforce import refresh_token_of

USER = {"username": "admin@acme.com"}
TOKEN_ITEM = {"PK": {"S": "ORG#admin@acme.com"}, "SK": {"S": "TOKEN"}}


def drop_cached_token(broker: Broker) -> None:
    broker.dynamodb.delete_item(TableName=broker.table_name, Key=TOKEN_ITEM)


@pytest.fixture
def verbose_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Everything at DEBUG, ours and the libraries' (urllib3, botocore)."""
    previous = broker_logger.log_level
    broker_logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    yield
    broker_logger.setLevel(previous)


def test_no_secret_reaches_logs_or_answers(
    broker: Broker,
    salesforce: FakeSalesforceServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    verbose_logs: None,
) -> None:
    state = salesforce.state
    state.create_production_org("admin@acme.com")
    state.set_refresh_token_rotation("admin@acme.com")
    auth_url = state.mint_auth_url("admin@acme.com")
    secrets = {auth_url, refresh_token_of(auth_url)}
    access_tokens: set[str] = set()

    broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url})
    issued = broker.call("POST", "/orgs/{username}/token", path_params=USER)
    access_tokens.add(issued.body["accessToken"])
    drop_cached_token(broker)  # so the next call refreshes (and rotates)
    forced = broker.call(
        "POST",
        "/orgs/{username}/token",
        path_params=USER,
        json_body={"forceRefresh": True},
    )
    access_tokens.add(forced.body["accessToken"])
    # Every refresh token the fake ever issued (rotation mints new ones).
    secrets.update(state.refresh_tokens)

    # Failure paths log too: outages, refusal, malformed input that carries a secret.
    salesforce.faults.add(kind="http_503", endpoint="token", times=3)
    drop_cached_token(broker)
    broker.call(
        "POST", "/orgs/{username}/token", path_params=USER, json_body={"minValiditySeconds": 4800}
    )
    salesforce.faults.add(kind="malformed_json", endpoint="token")
    broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url})
    broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url + "/trailing"})
    broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url, "isDevHub": "maybe"})
    broker.call("POST", "/orgs", raw_body='{"sfdxAuthUrl": "' + auth_url + '"')
    for token in list(state.refresh_tokens):
        state.revoke_refresh_token(token)
    drop_cached_token(broker)
    revoked = broker.call(
        "POST", "/orgs/{username}/token", path_params=USER, json_body={"minValiditySeconds": 4800}
    )
    assert revoked.error == "org_credentials_invalid"

    captured = capfd.readouterr()
    # Only a token issuance's own answer may carry an access token.
    other_answers = [a for a in broker.answers if '"accessToken"' not in a]
    haystacks = {
        "stdout": (captured.out, secrets | access_tokens),
        "stderr": (captured.err, secrets | access_tokens),
        "log records": (
            "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records),
            secrets | access_tokens,
        ),
        "answers": ("\n".join(broker.answers), secrets),
        "non-token answers": ("\n".join(other_answers), access_tokens),
    }
    assert len(secrets) >= 4
    assert len(access_tokens) == 2
    assert len(other_answers) >= 6
    assert "TokenRefresh" in captured.out  # the logs were captured, not lost
    for where, (text, forbidden) in haystacks.items():
        for secret in forbidden:
            assert secret not in text, f"a secret leaked into {where}"
        assert "force://" not in text.replace("force://<clientId>", ""), where
