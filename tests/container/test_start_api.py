"""`sam local start-api`: the routes over HTTP, each function in its Lambda container.

SAM's emulator mounts each path once (the token API's, with its Lambda authorizer, which
it runs); it does not emulate AWS_IAM, so SigV4 is not checked here (the local stack's
gateway does that: tests/e2e).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from local.fake_salesforce.seed import DEV_HUB_USERNAME
from local.ports import free_port
from tests.container.conftest import SamLocal

# A first request starts the function's container: generous, for a loaded machine.
TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def api(sam_local_session: SamLocal) -> Iterator[str]:
    session = sam_local_session
    log = session.workdir / "start-api.log"
    with session.sam.service("start-api", session.env_file, free_port(), log) as url:
        # The authorizer's first call starts its container and runtime, which on a loaded
        # 2-core machine with vfs can outlast its 10 s Timeout (SAM then answers 502): one
        # refused call warms it, whatever it answers; the tests then assert every answer.
        requests.get(f"{url}/orgs", headers={"Authorization": "Bearer x"}, timeout=300)
        yield url


@pytest.fixture(scope="module")
def bearer(sam_local_session: SamLocal) -> dict[str, str]:
    return {"Authorization": f"Bearer {sam_local_session.stack.exports['SFBROKER_TOKEN']}"}


def test_health_answers_without_credentials(api: str) -> None:
    answer = requests.get(f"{api}/health", timeout=TIMEOUT_SECONDS)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ok"


def test_the_authorizer_refuses_a_request_without_a_token(api: str) -> None:
    answer = requests.get(f"{api}/orgs", timeout=TIMEOUT_SECONDS)
    assert answer.status_code == 401, answer.text


def test_an_admin_token_lists_the_orgs(api: str, bearer: dict[str, str]) -> None:
    answer = requests.get(f"{api}/orgs", headers=bearer, timeout=TIMEOUT_SECONDS)
    assert answer.status_code == 200, answer.text
    assert DEV_HUB_USERNAME in {org["username"] for org in answer.json()["orgs"]}


def test_a_token_comes_from_the_fake_salesforce_reached_from_the_container(
    api: str, bearer: dict[str, str], sam_local_session: SamLocal
) -> None:
    answer = requests.post(
        f"{api}/orgs/{DEV_HUB_USERNAME}/token", headers=bearer, json={}, timeout=TIMEOUT_SECONDS
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["instanceUrl"] == sam_local_session.stack.salesforce_url
