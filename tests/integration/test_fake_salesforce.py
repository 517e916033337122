"""The fake Salesforce over real HTTP: what sfbroker's Salesforce client will rely on."""

import json
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.fake_salesforce import DefaultSeed, FakeSalesforceServer, start_fake_salesforce
from tests.support.salesforce import refresh_token_of

API = "/services/data/v62.0"
CALLBACK = "http://localhost:1717/OauthRedirect"
POOL_QUERY = (
    "SELECT Pooltag__c, Id, CreatedDate, ScratchOrg, ExpirationDate, SignupUsername, "
    "SignupEmail, Password__c, Allocation_status__c, LoginUrl, SfdxAuthUrl__c "
    "FROM ScratchOrgInfo "
    "WHERE Pooltag__c = 'ci' AND Status = 'Active' AND Allocation_status__c = 'Available' "
    "ORDER BY CreatedDate DESC"
)
AUTH_URL = re.compile(r"^force://([A-Za-z0-9._-]+):([A-Za-z0-9._-]*):([A-Za-z0-9._-]+)@([\w:.-]+)$")


@pytest.fixture
def fake() -> Iterator[FakeSalesforceServer]:
    with start_fake_salesforce() as server:
        yield server


@pytest.fixture
def seed(fake: FakeSalesforceServer) -> DefaultSeed:
    return fake.seed_default()


def token_request(fake: FakeSalesforceServer, **form: str) -> requests.Response:
    return requests.post(f"{fake.base_url}/services/oauth2/token", data=form, timeout=5)


def refresh(fake: FakeSalesforceServer, auth_url: str) -> requests.Response:
    return token_request(
        fake,
        grant_type="refresh_token",
        refresh_token=refresh_token_of(auth_url),
        client_id="PlatformCLI",
    )


def access_token(fake: FakeSalesforceServer, auth_url: str) -> str:
    response = refresh(fake, auth_url)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def rest(
    fake: FakeSalesforceServer, token: str, method: str, path: str, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, f"{fake.base_url}{path}", headers=headers, timeout=5, **kwargs)


def soql(fake: FakeSalesforceServer, token: str, query: str, *, tooling: bool = False) -> Any:
    path = f"{API}/tooling/query" if tooling else f"{API}/query"
    response = rest(fake, token, "GET", path, params={"q": query})
    assert response.status_code == 200, response.text
    return response.json()


# --- OAuth ----------------------------------------------------------------------------


def test_refresh_grant_answers_salesforce_shape(fake: FakeSalesforceServer, seed: DefaultSeed):
    response = refresh(fake, seed.production_auth_url)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"
    }  # fmt: skip
    assert re.fullmatch(r"00D\w{12}!AQ[\w.]+", body["access_token"])
    assert body["instance_url"] == fake.base_url
    assert re.fullmatch(r"https://login\.salesforce\.com/id/00D\w{15}/005\w{15}", body["id"])
    assert body["token_type"] == "Bearer"
    assert abs(int(body["issued_at"]) - time.time() * 1000) < 60_000
    assert AUTH_URL.match(seed.production_auth_url)
    assert seed.production_auth_url.endswith(f"@127.0.0.1:{fake.port}")


def test_chunked_form_body_without_content_length(fake: FakeSalesforceServer, seed: DefaultSeed):
    refresh_token = refresh_token_of(seed.dev_hub_auth_url)
    form = f"grant_type=refresh_token&client_id=PlatformCLI&refresh_token={refresh_token}"

    def chunks() -> Iterator[bytes]:
        yield form[:20].encode()
        yield form[20:].encode()

    response = requests.post(
        f"{fake.base_url}/services/oauth2/token",
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )

    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 200, response.text
    assert fake.requests_log[-1] == ("POST", "/services/oauth2/token", "refresh_token")


def test_rotation_returns_new_refresh_token_and_retires_old(
    fake: FakeSalesforceServer, seed: DefaultSeed
):
    fake.state.set_refresh_token_rotation(seed.production_username)

    first = refresh(fake, seed.production_auth_url)
    rotated = first.json()["refresh_token"]
    second = token_request(
        fake, grant_type="refresh_token", refresh_token=rotated, client_id="PlatformCLI"
    )

    assert rotated != refresh_token_of(seed.production_auth_url)
    assert second.status_code == 200
    assert refresh(fake, seed.production_auth_url).json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }


def test_revoked_refresh_token_is_invalid_grant_and_ends_its_sessions(
    fake: FakeSalesforceServer, seed: DefaultSeed
):
    token = access_token(fake, seed.production_auth_url)

    assert fake.state.revoke_refresh_token(refresh_token_of(seed.production_auth_url))
    response = refresh(fake, seed.production_auth_url)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert rest(fake, token, "GET", "/services/oauth2/userinfo").status_code == 401


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type", "grant type not supported"),
        ({"client_id": "Nope"}, "invalid_client_id", "client identifier invalid"),
        ({"refresh_token": "5Aep861unknown"}, "invalid_grant", "expired access/refresh token"),
    ],
)
def test_token_errors(
    fake: FakeSalesforceServer,
    seed: DefaultSeed,
    form: dict[str, str],
    error: str,
    description: str,
):
    base = {
        "grant_type": "refresh_token",
        "client_id": "PlatformCLI",
        "refresh_token": refresh_token_of(seed.production_auth_url),
    }
    response = token_request(fake, **(base | form))

    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def test_inactive_user(fake: FakeSalesforceServer, seed: DefaultSeed):
    fake.state.deactivate_user(seed.production_username)

    assert refresh(fake, seed.production_auth_url).json()["error_description"] == "inactive user"


def test_userinfo_and_invalid_session(fake: FakeSalesforceServer, seed: DefaultSeed):
    token = access_token(fake, seed.production_auth_url)

    info = rest(fake, token, "GET", "/services/oauth2/userinfo").json()
    denied = rest(fake, "00Dbogus!AQxyz", "GET", "/services/oauth2/userinfo")

    assert info["preferred_username"] == "admin@acme.com"
    assert info["organization_id"].startswith("00D")
    assert info["user_id"].startswith("005")
    assert denied.status_code == 401
    assert denied.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


# --- REST -----------------------------------------------------------------------------


def test_org_type_queries(fake: FakeSalesforceServer, seed: DefaultSeed):
    query = (
        "SELECT Id, Name, InstanceName, IsSandbox, OrganizationType, TrialExpirationDate, "
        "NamespacePrefix FROM Organization"
    )
    production = soql(fake, access_token(fake, seed.production_auth_url), query)
    scratch = soql(fake, access_token(fake, seed.pool_auth_urls[0]), query)

    record = production["records"][0]
    assert production["totalSize"] == 1
    assert production["done"] is True
    assert record["attributes"]["type"] == "Organization"
    assert record["attributes"]["url"] == f"{API}/sobjects/Organization/{record['Id']}"
    assert record["IsSandbox"] is False
    assert record["TrialExpirationDate"] is None
    assert record["OrganizationType"] == "Enterprise Edition"
    assert scratch["records"][0]["IsSandbox"] is True
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT00:00:00\.000\+0000", scratch["records"][0]["TrialExpirationDate"]
    )


def test_dev_hub_detection(fake: FakeSalesforceServer, seed: DefaultSeed):
    hub = access_token(fake, seed.dev_hub_auth_url)
    production = access_token(fake, seed.production_auth_url)

    rejected = rest(
        fake,
        production,
        "GET",
        f"{API}/query",
        params={"q": "SELECT Id FROM ScratchOrgInfo limit 1"},
    )

    assert soql(fake, hub, "SELECT Id FROM ScratchOrgInfo limit 1")["totalSize"] == 1
    assert rejected.status_code == 400
    assert rejected.json()[0]["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'ScratchOrgInfo' is not supported." in rejected.json()[0]["message"]
    assert rest(fake, hub, "GET", f"{API}/sobjects/ScratchOrgInfo/describe").status_code == 200
    describe = rest(fake, production, "GET", f"{API}/sobjects/ScratchOrgInfo/describe")
    assert describe.status_code == 404
    assert describe.json()[0]["errorCode"] == "NOT_FOUND"


def test_pool_listing_newest_first_with_working_auth_urls(
    fake: FakeSalesforceServer, seed: DefaultSeed
):
    hub = access_token(fake, seed.dev_hub_auth_url)

    records = soql(fake, hub, POOL_QUERY)["records"]

    assert len(records) == 5
    assert [r["CreatedDate"] for r in records] == sorted(
        (r["CreatedDate"] for r in records), reverse=True
    )
    assert {r["SfdxAuthUrl__c"] for r in records} == set(seed.pool_auth_urls)
    assert list(records[0])[1:] == [
        f.strip() for f in POOL_QUERY[7 : POOL_QUERY.index(" FROM")].split(",")
    ]
    for record in records:
        assert refresh(fake, record["SfdxAuthUrl__c"]).status_code == 200


def test_soql_errors_and_escaping(fake: FakeSalesforceServer, seed: DefaultSeed):
    hub = access_token(fake, seed.dev_hub_auth_url)
    path = f"{API}/query"

    malformed = rest(fake, hub, "GET", path, params={"q": "SELEKT Id FROM Organization"})
    escaped = soql(fake, hub, r"SELECT Id FROM ScratchOrgInfo WHERE Pooltag__c = 'c\'i\\'")
    unknown = rest(fake, hub, "GET", path, params={"q": "SELECT Nope FROM Organization"})

    assert malformed.status_code == 400
    assert malformed.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert escaped["totalSize"] == 0
    assert unknown.json()[0]["errorCode"] == "INVALID_FIELD"


def test_columns_metadata(fake: FakeSalesforceServer, seed: DefaultSeed):
    hub = access_token(fake, seed.dev_hub_auth_url)

    response = rest(
        fake,
        hub,
        "GET",
        f"{API}/query",
        params={"q": "SELECT Id, Pooltag__c FROM ScratchOrgInfo", "columns": "true"},
    )

    body = response.json()
    assert body["entityName"] == "ScratchOrgInfo"
    assert body["idSelected"] is True
    assert body["groupBy"] is False
    assert body["keyPrefix"] is None
    assert [c["columnName"] for c in body["columnMetadata"]] == ["Id", "Pooltag__c"]
    assert body["columnMetadata"][1]["joinColumns"] == []
    assert body["columnMetadata"][1]["aggregate"] is False


def test_claim_and_delete_scratch_org(fake: FakeSalesforceServer, seed: DefaultSeed):
    hub = access_token(fake, seed.dev_hub_auth_url)
    info = soql(fake, hub, POOL_QUERY)["records"][0]
    scratch_token = access_token(fake, info["SfdxAuthUrl__c"])

    claimed = rest(
        fake,
        hub,
        "PATCH",
        f"{API}/sobjects/ScratchOrgInfo/{info['Id']}",
        json={"Allocation_status__c": "Assigned"},
    )
    active = soql(
        fake,
        hub,
        f"SELECT Id FROM ActiveScratchOrg WHERE ScratchOrgInfoId IN ('{info['Id'][:15]}')",  # noqa: S608
    )
    active_id = active["records"][0]["Id"]
    deleted = rest(fake, hub, "DELETE", f"{API}/sobjects/ActiveScratchOrg/{active_id}")
    again = rest(fake, hub, "DELETE", f"{API}/sobjects/ActiveScratchOrg/{active_id}")
    status = soql(
        fake,
        hub,
        f"SELECT Status, Allocation_status__c FROM ScratchOrgInfo WHERE Id = '{info['Id']}'",  # noqa: S608
    )

    assert claimed.status_code == 204
    assert soql(fake, hub, POOL_QUERY)["totalSize"] == 4
    assert active["totalSize"] == 1
    assert deleted.status_code == 204
    assert again.status_code == 404
    assert again.json()[0]["errorCode"] == "NOT_FOUND"
    assert status["records"][0]["Status"] == "Deleted"
    assert status["records"][0]["Allocation_status__c"] == "Assigned"
    assert rest(fake, scratch_token, "GET", "/services/oauth2/userinfo").status_code == 401
    assert refresh(fake, info["SfdxAuthUrl__c"]).json()["error"] == "invalid_grant"


def test_patch_rejects_unknown_and_read_only_fields(fake: FakeSalesforceServer, seed: DefaultSeed):
    hub = access_token(fake, seed.dev_hub_auth_url)
    record_id = soql(fake, hub, "SELECT Id FROM ScratchOrgInfo LIMIT 1")["records"][0]["Id"]
    path = f"{API}/sobjects/ScratchOrgInfo/{record_id}"

    unknown = rest(fake, hub, "PATCH", path, json={"Nope__c": "x"})
    read_only = rest(fake, hub, "PATCH", path, json={"Status": "Deleted"})
    missing = rest(fake, hub, "PATCH", f"{API}/sobjects/ScratchOrgInfo/2SR000000000000AAA", json={})

    assert unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    assert read_only.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert missing.status_code == 404


def test_sf_cli_login_sequence(fake: FakeSalesforceServer, seed: DefaultSeed):
    token = access_token(fake, seed.production_auth_url)
    user_id = rest(fake, token, "GET", "/services/oauth2/userinfo").json()["user_id"]

    user = rest(fake, token, "GET", f"{API}/sobjects/User/{user_id}").json()
    versions = requests.get(f"{fake.base_url}/services/data", timeout=5).json()
    processes = soql(
        fake,
        token,
        "SELECT Id, SandboxName, Status FROM SandboxProcess WHERE SandboxName = 'uat' "
        "ORDER BY CreatedDate DESC LIMIT 1",
        tooling=True,
    )

    assert user["Username"] == "admin@acme.com"
    assert user["attributes"]["type"] == "User"
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in versions
    assert processes["records"][0]["Status"] == "Completed"
    assert processes["records"][0]["attributes"]["url"].startswith(
        f"{API}/tooling/sobjects/SandboxProcess/"
    )


# --- JIT sandbox auth -----------------------------------------------------------------


def sandbox_auth(fake: FakeSalesforceServer, token: str, name: str) -> requests.Response:
    body = {"clientId": "PlatformCLI", "sandboxName": name, "callbackUrl": CALLBACK}
    return rest(fake, token, "POST", f"{API}/tooling/sandboxAuth", json=body)


def test_sandbox_auth_then_authorization_code(fake: FakeSalesforceServer, seed: DefaultSeed):
    production = access_token(fake, seed.production_auth_url)

    auth = sandbox_auth(fake, production, "uat").json()
    tokens = token_request(
        fake,
        grant_type="authorization_code",
        code=auth["authCode"],
        client_id="PlatformCLI",
        redirect_uri=CALLBACK,
    )
    replay = token_request(
        fake,
        grant_type="authorization_code",
        code=auth["authCode"],
        client_id="PlatformCLI",
        redirect_uri=CALLBACK,
    )

    assert auth["authUserName"] == "admin@acme.com.uat"
    assert auth["instanceUrl"] == auth["loginUrl"] == fake.base_url
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["refresh_token"]
    info = rest(fake, tokens.json()["access_token"], "GET", "/services/oauth2/userinfo").json()
    assert info["preferred_username"] == "admin@acme.com.uat"
    assert replay.json()["error"] == "invalid_grant"


def test_authorization_code_needs_same_redirect_uri(fake: FakeSalesforceServer, seed: DefaultSeed):
    production = access_token(fake, seed.production_auth_url)
    code = sandbox_auth(fake, production, "sit").json()["authCode"]

    response = token_request(
        fake,
        grant_type="authorization_code",
        code=code,
        client_id="PlatformCLI",
        redirect_uri="http://x/cb",
    )

    assert response.status_code == 400
    assert response.json()["error"] == "redirect_uri_mismatch"


def test_sandbox_not_ready_or_unknown(fake: FakeSalesforceServer, seed: DefaultSeed):
    fake.state.set_sandbox_status(seed.production_username, "uat", "Processing")
    production = access_token(fake, seed.production_auth_url)

    not_ready = sandbox_auth(fake, production, "uat")
    unknown = sandbox_auth(fake, production, "nope")

    assert not_ready.status_code == 400
    assert not_ready.json()[0]["errorCode"] == "INVALID_STATUS"
    assert unknown.status_code == 404
    assert unknown.json()[0]["errorCode"] == "NOT_FOUND"


# --- faults and counts ----------------------------------------------------------------


def test_http_503_twice_then_success(fake: FakeSalesforceServer, seed: DefaultSeed):
    fake.faults.add(endpoint="token", kind="http_503", times=2)

    statuses = [refresh(fake, seed.production_auth_url).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert fake.counts["oauth2/token"] == 3
    assert fake.faults.pending() == []


def test_http_500_body(fake: FakeSalesforceServer, seed: DefaultSeed):
    fake.faults.add(endpoint="query", kind="http_500")
    token = access_token(fake, seed.production_auth_url)

    response = rest(fake, token, "GET", f"{API}/query", params={"q": "SELECT Id FROM Organization"})

    assert response.status_code == 500
    assert response.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"


def test_timeout_fault_outlasts_client_read_timeout(fake: FakeSalesforceServer, seed: DefaultSeed):
    fake.faults.add(endpoint="token", kind="timeout", seconds=1.0)
    form = {
        "grant_type": "refresh_token",
        "client_id": "PlatformCLI",
        "refresh_token": refresh_token_of(seed.production_auth_url),
    }

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{fake.base_url}/services/oauth2/token", data=form, timeout=(1, 0.2))
    assert refresh(fake, seed.production_auth_url).status_code == 200


def test_malformed_json_and_invalid_grant_faults(fake: FakeSalesforceServer, seed: DefaultSeed):
    token = access_token(fake, seed.production_auth_url)
    fake.faults.add(endpoint="token", kind="malformed_json")
    fake.faults.add(endpoint="token", kind="invalid_grant")
    fake.faults.add(endpoint="userinfo", kind="invalid_grant")

    malformed = refresh(fake, seed.production_auth_url)
    rejected = refresh(fake, seed.production_auth_url)
    session = rest(fake, token, "GET", "/services/oauth2/userinfo")

    assert malformed.status_code == 200
    with pytest.raises(requests.exceptions.JSONDecodeError):
        malformed.json()
    assert rejected.json()["error"] == "invalid_grant"
    assert session.status_code == 401


def test_connection_reset(fake: FakeSalesforceServer, seed: DefaultSeed):
    fake.faults.add(endpoint="token", kind="connection_reset")

    with pytest.raises(requests.exceptions.ConnectionError):
        refresh(fake, seed.production_auth_url)
    assert refresh(fake, seed.production_auth_url).status_code == 200


def test_global_delay(fake: FakeSalesforceServer):
    fake.faults.delay = 0.2

    started = time.monotonic()
    requests.get(f"{fake.base_url}/services/data", timeout=5)

    assert time.monotonic() - started >= 0.2


def test_unknown_fault_endpoint_is_refused(fake: FakeSalesforceServer):
    with pytest.raises(ValueError, match="unknown endpoint"):
        fake.faults.add(endpoint="tokn", kind="http_500")


# --- TLS and admin API ----------------------------------------------------------------


def test_tls_with_generated_ca_bundle():
    with start_fake_salesforce(tls=True, seed=True) as fake:
        assert fake.base_url.startswith("https://127.0.0.1:")
        assert fake.ca_cert_path is not None

        trusted = requests.get(
            f"{fake.base_url}/services/data", verify=str(fake.ca_cert_path), timeout=5
        )
        localhost = requests.get(
            f"https://localhost:{fake.port}/services/data", verify=str(fake.ca_cert_path), timeout=5
        )
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{fake.base_url}/services/data", timeout=5)

        assert trusted.status_code == localhost.status_code == 200
        ca_cert_path = fake.ca_cert_path
    assert not ca_cert_path.exists()


def test_admin_api_drives_the_fake(fake: FakeSalesforceServer):
    admin = f"{fake.base_url}/__fake__"

    seeded = requests.post(f"{admin}/seed", timeout=5).json()
    again = requests.post(f"{admin}/seed", timeout=5).json()
    added = requests.post(
        f"{admin}/faults", json={"endpoint": "token", "kind": "http_500"}, timeout=5
    )
    failed = refresh(fake, seeded["production_auth_url"])
    revoked = requests.post(
        f"{admin}/revoke", json={"auth_url": seeded["production_auth_url"]}, timeout=5
    ).json()
    after = refresh(fake, seeded["production_auth_url"])
    counts = requests.get(f"{admin}/counts", timeout=5).json()
    reset = requests.post(f"{admin}/counts/reset", timeout=5)
    summary = requests.get(f"{admin}/state", timeout=5).json()
    status = requests.put(
        f"{admin}/sandboxes/uat",
        json={"production_username": "admin@acme.com", "status": "Processing"},
        timeout=5,
    )
    scratch = requests.post(
        f"{admin}/scratch-orgs",
        json={"dev_hub_username": seeded["dev_hub_username"], "pool_tag": "ci"},
        timeout=5,
    ).json()
    pool = requests.get(f"{admin}/state", timeout=5).json()["scratch_org_infos"]

    assert seeded == again
    assert len(seeded["pool_auth_urls"]) == 5
    assert added.status_code == 200
    assert failed.status_code == 500
    assert revoked == {"revoked": 1}
    assert after.json()["error"] == "invalid_grant"
    assert counts["counts"] == {"oauth2/token": 2}
    assert counts["requests"][0] == {
        "method": "POST",
        "path": "/services/oauth2/token",
        "grant_type": "refresh_token",
    }
    assert reset.status_code == 204
    assert fake.counts == {}
    assert "5Aep861" not in str(summary)
    assert {s["name"] for s in summary["sandboxes"]} == {"uat", "sit"}
    assert status.status_code == 204
    assert fake.state.sandbox("admin@acme.com", "uat").status == "Processing"
    assert len(pool) == 6
    assert {
        "status": "Active",
        "pool_tag": "ci",
        "allocation_status": "Available",
        "signup_username": scratch["username"],
    }.items() <= next(r for r in pool if r["signup_username"] == scratch["username"]).items()


def test_standalone_process(tmp_path: Path):
    seed_file = tmp_path / "seed.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "local.fake_salesforce", "--seed-file", str(seed_file)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready, "the fake did not report its URL"
        base_url = process.stdout.readline().split()[-1]
        health = requests.get(f"{base_url}/__fake__/health", timeout=5).json()
        seed = json.loads(seed_file.read_text())

        assert health == {"ok": True, "base_url": base_url}
        assert seed_file.stat().st_mode & 0o777 == 0o600
        assert len(seed["pool_auth_urls"]) == 5
        assert seed["production_auth_url"].endswith("@" + base_url.removeprefix("http://"))
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_admin_api_session_and_fault_controls(fake: FakeSalesforceServer, seed: DefaultSeed):
    admin = f"{fake.base_url}/__fake__"
    token = access_token(fake, seed.production_auth_url)

    minted = requests.post(f"{admin}/auth-urls", json={"username": "hub@acme.com"}, timeout=5)
    expired = requests.post(f"{admin}/access-tokens/expire", json={}, timeout=5).json()
    rotation = requests.put(f"{admin}/rotation", json={"username": "admin@acme.com"}, timeout=5)
    requests.put(f"{admin}/delay", json={"seconds": 0.01}, timeout=5)
    requests.post(f"{admin}/faults", json={"kind": "timeout", "times": None}, timeout=5)
    listed = requests.get(f"{admin}/faults", timeout=5).json()["faults"]
    cleared = requests.delete(f"{admin}/faults", timeout=5)
    unknown_user = requests.post(f"{admin}/users/deactivate", json={"username": "x@y"}, timeout=5)
    bad_kind = requests.post(f"{admin}/faults", json={"kind": "meteor"}, timeout=5)

    assert refresh(fake, minted.json()["auth_url"]).status_code == 200
    assert expired["expired"] >= 1
    assert rest(fake, token, "GET", "/services/oauth2/userinfo").status_code == 401
    assert rotation.status_code == 204
    assert "refresh_token" in refresh(fake, seed.production_auth_url).json()
    assert [(f["kind"], f["endpoint"], f["remaining"]) for f in listed] == [("timeout", "*", None)]
    assert cleared.status_code == 204
    assert fake.faults.pending() == []
    assert fake.faults.delay == 0
    assert unknown_user.status_code == 404
    assert bad_kind.status_code == 400


def test_record_retrieval_and_delete_rules(fake: FakeSalesforceServer, seed: DefaultSeed):
    token = access_token(fake, seed.production_auth_url)
    user_id = rest(fake, token, "GET", "/services/oauth2/userinfo").json()["user_id"]
    path = f"{API}/sobjects/User/{user_id}"

    narrowed = rest(fake, token, "GET", path, params={"fields": "Username,IsActive"}).json()
    undeletable = rest(fake, token, "DELETE", path)
    elsewhere = rest(fake, access_token(fake, seed.dev_hub_auth_url), "GET", path)

    assert set(narrowed) == {"attributes", "Username", "IsActive"}
    assert undeletable.status_code == 405
    assert elsewhere.status_code == 404  # a record of another org is invisible
