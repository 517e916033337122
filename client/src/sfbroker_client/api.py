"""The sfbroker HTTP API (see API.md) as a small typed client."""

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.auth import AuthBase

from sfbroker_client import __version__

JsonObject = dict[str, Any]

USER_AGENT = f"sfbroker-client/{__version__}"

# Error codes for bodies that are not ours (API Gateway's own 403 "Missing Authentication
# Token", a load balancer's HTML page): the status still says what kind of failure it is.
_CODE_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
_MAX_MESSAGE = 300


class ApiError(Exception):
    """The broker answered with an error status (4xx/5xx), or with something that is not JSON."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details or []

    @classmethod
    def from_response(cls, response: requests.Response) -> "ApiError":
        """Build the error from any error response, ours (API.md) or an intermediary's."""
        status = response.status_code
        body = _json_or_none(response)
        code = message = request_id = None
        details: list[dict[str, Any]] = []
        if isinstance(body, dict):
            code = _str_or_none(body.get("error"))
            # API Gateway's own errors say "message"; some AWS front doors say "Message".
            message = _str_or_none(body.get("message")) or _str_or_none(body.get("Message"))
            request_id = _str_or_none(body.get("requestId"))
            raw_details = body.get("details")
            if isinstance(raw_details, list):
                details = [d for d in raw_details if isinstance(d, dict)]
        if body is None and 300 <= status < 400:
            message = f"unexpected redirect to {response.headers.get('Location', '?')}"
        return cls(
            status=status,
            code=code or _CODE_BY_STATUS.get(status, f"http_{status}"),
            message=_one_line(message or _text_summary(response) or f"HTTP {status}"),
            request_id=request_id or response.headers.get("x-amzn-RequestId"),
            details=details,
        )


class ConnectionFailed(Exception):
    """The broker could not be reached: DNS, refused connection, TLS, or timeout."""


class BrokerClient:
    """Calls the sfbroker API. `auth` signs or authorizes each request (see `auth.py`)."""

    def __init__(
        self,
        base_url: str,
        auth: AuthBase | None,
        timeout: float,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._timeout = timeout
        self._session = session or requests.Session()

    def issue_token(
        self, username: str, *, min_validity_seconds: int | None = None, force_refresh: bool = False
    ) -> JsonObject:
        """`POST /orgs/{username}/token`: a short-lived access token for a registered org."""
        body: JsonObject = {"forceRefresh": force_refresh}
        if min_validity_seconds is not None:
            body["minValiditySeconds"] = min_validity_seconds
        return self._request("POST", f"/orgs/{_username(username)}/token", body=body)

    def list_orgs(
        self, *, org_type: str | None = None, is_dev_hub: bool | None = None
    ) -> JsonObject:
        """`GET /orgs`: `{"orgs": [Org, ...]}`, optionally filtered."""
        query: dict[str, str] = {}
        if org_type is not None:
            query["orgType"] = org_type
        if is_dev_hub is not None:
            query["isDevHub"] = "true" if is_dev_hub else "false"
        return self._request("GET", "/orgs", query=query)

    def get_org(self, username: str) -> JsonObject:
        """`GET /orgs/{username}`: one registered org (never a credential)."""
        return self._request("GET", f"/orgs/{_username(username)}")

    def register_org(
        self,
        sfdx_auth_url: str,
        *,
        alias: str | None = None,
        is_dev_hub: bool = False,
        is_default: bool = False,
    ) -> JsonObject:
        """`POST /orgs`: register (or replace the credential of) an org from its SFDX auth URL."""
        body: JsonObject = {
            "sfdxAuthUrl": sfdx_auth_url,
            "isDevHub": is_dev_hub,
            "isDefault": is_default,
        }
        if alias is not None:
            body["alias"] = alias
        return self._request("POST", "/orgs", body=body)

    def health(self) -> JsonObject:
        """`GET /health`: `{"status": "ok", "version": ...}`."""
        return self._request("GET", "/health")

    def register_sandbox(
        self, sandbox_name: str, production_username: str, *, username: str | None = None
    ) -> JsonObject:
        """`POST /sandboxes`: register a JIT sandbox of a registered production org."""
        body: JsonObject = {"sandboxName": sandbox_name, "productionUsername": production_username}
        if username is not None:
            body["username"] = username
        return self._request("POST", "/sandboxes", body=body)

    def sandbox_auth(
        self,
        sandbox_name: str,
        production_username: str,
        *,
        auth_url: bool = False,
        min_validity_seconds: int | None = None,
        force_refresh: bool = False,
    ) -> JsonObject:
        """`POST /sandboxes/{name}/auth`: a sandbox token through its production org."""
        body: JsonObject = {
            "productionUsername": production_username,
            "format": "sfdxAuthUrl" if auth_url else "accessToken",
            "forceRefresh": force_refresh,
        }
        if min_validity_seconds is not None:
            body["minValiditySeconds"] = min_validity_seconds
        return self._request("POST", f"/sandboxes/{_segment(sandbox_name)}/auth", body=body)

    def create_environment(self, environment: JsonObject) -> JsonObject:
        """`POST /environments`."""
        return self._request("POST", "/environments", body=environment)

    def list_environments(self, repository: str) -> JsonObject:
        """`GET /environments?repository=`: `{"environments": [...]}`."""
        return self._request("GET", "/environments", query={"repository": repository})

    def get_environment(
        self,
        name: str,
        repository: str,
        *,
        authenticate: bool = False,
        lease_id: str | None = None,
    ) -> JsonObject:
        """`GET /environments/{name}` (with `authenticate`: plus `auth`, a token)."""
        query = {"repository": repository}
        if authenticate:
            query["authenticate"] = "true"
        headers = {"Lease-Id": lease_id} if lease_id else None
        return self._request("GET", f"/environments/{_segment(name)}", query=query, headers=headers)

    def delete_environment(self, name: str, repository: str) -> JsonObject:
        """`DELETE /environments/{name}`."""
        return self._request(
            "DELETE", f"/environments/{_segment(name)}", query={"repository": repository}
        )

    def acquire_lease(
        self, name: str, repository: str, *, ttl_seconds: int, wait: bool
    ) -> JsonObject:
        """`POST /environments/{name}/leases`: `acquired`, or `queued` with its position."""
        return self._request(
            "POST",
            f"/environments/{_segment(name)}/leases",
            query={"repository": repository},
            body={"ttlSeconds": ttl_seconds, "wait": wait},
        )

    def lease(
        self, name: str, repository: str, lease_id: str, *, release: bool = False
    ) -> JsonObject:
        """`GET` (poll) or `DELETE` (release) `/environments/{name}/leases/{leaseId}`."""
        return self._request(
            "DELETE" if release else "GET",
            f"/environments/{_segment(name)}/leases/{_segment(lease_id)}",
            query={"repository": repository},
        )

    def pool_status(self, tag: str, *, dev_hub_username: str | None = None) -> JsonObject:
        """`GET /pools/{tag}`: the pool's counts by allocation status (no secrets)."""
        query = {"devHubUsername": dev_hub_username} if dev_hub_username else None
        return self._request("GET", f"/pools/{_segment(tag)}", query=query)

    def fetch_pool_org(
        self,
        tag: str,
        *,
        access_token: bool = False,
        dev_hub_username: str | None = None,
        idempotency_key: str | None = None,
    ) -> JsonObject:
        """`POST /pools/{tag}/fetch`: one scratch org of the pool, never another caller's.

        With an `idempotency_key`, a retry gets the org of the first call. `access_token`
        answers a token for the org instead of its auth URL (the URL stays in AWS).
        """
        body: JsonObject = {"format": "accessToken" if access_token else "sfdxAuthUrl"}
        if dev_hub_username is not None:
            body["devHubUsername"] = dev_hub_username
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._request("POST", f"/pools/{_segment(tag)}/fetch", body=body, headers=headers)

    def return_pool_org(self, tag: str, username: str) -> JsonObject:
        """`DELETE /pools/{tag}/orgs/{username}`: done with a fetched org (it is deleted)."""
        return self._request("DELETE", f"/pools/{_segment(tag)}/orgs/{_username(username)}")

    def clean_pool(
        self,
        tag: str,
        *,
        dry_run: bool = True,
        max_deletions: int | None = None,
        dev_hub_username: str | None = None,
    ) -> JsonObject:
        """`POST /pools/{tag}/cleanup`: the scheduled cleanup's report (a dry run by default)."""
        body: JsonObject = {"dryRun": dry_run}
        if max_deletions is not None:
            body["maxDeletions"] = max_deletions
        if dev_hub_username is not None:
            body["devHubUsername"] = dev_hub_username
        return self._request("POST", f"/pools/{_segment(tag)}/cleanup", body=body)

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: JsonObject | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JsonObject:
        url = self.base_url + path
        if query:
            # RFC 3986 encoding (%20, not +): what SigV4's canonical query string expects.
            url += "?" + urlencode(query, quote_via=quote)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        data = None
        if body is not None:
            # Serialized here, so the bytes signed by SigV4 are exactly the bytes sent.
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self._session.request(
                method,
                url,
                data=data,
                headers=headers,
                auth=self._auth,
                timeout=self._timeout,
                # A redirect would replay credentials elsewhere; the API never redirects.
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise ConnectionFailed(
                f"cannot reach {_origin(url)}: no answer within {self._timeout:g} s"
            ) from exc
        except requests.RequestException as exc:
            raise ConnectionFailed(f"cannot reach {_origin(url)}: {_reason(exc)}") from exc
        if not 200 <= response.status_code < 300:
            raise ApiError.from_response(response)
        if not response.content:
            return {}
        parsed = _json_or_none(response)
        if not isinstance(parsed, dict):
            raise ApiError(
                response.status_code,
                "invalid_response",
                f"expected a JSON object from {_origin(url)}, got: {_text_summary(response)}",
                response.headers.get("x-amzn-RequestId"),
            )
        return parsed


def _username(value: str) -> str:
    """A username as the server accepts it in a path: lowercase (Salesforce usernames are
    case-insensitive; the server refuses other forms so IAM policies see one spelling)."""
    return _segment(value.lower())


def _segment(value: str) -> str:
    # Usernames contain "@" (and may contain "/"): one encoded path segment each.
    return quote(value, safe="")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(exc: requests.RequestException) -> str:
    text = str(exc)
    errno_text = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno_text:
        return errno_text.group(1).strip().lower()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed (certificate not trusted?)"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return "invalid URL"
    return "connection failed"


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _text_summary(response: requests.Response) -> str:
    text = response.text
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    text = re.sub(r"<[^>]+>", " ", text)
    return _one_line(text) or (response.reason or "")


def _one_line(text: str) -> str:
    collapsed = " ".join(text.split())
    if len(collapsed) > _MAX_MESSAGE:
        return collapsed[: _MAX_MESSAGE - 1] + "…"
    return collapsed
