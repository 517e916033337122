"""Salesforce OAuth and REST calls: timeouts, bounded retries, errors made domain errors."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from sfbroker.authurl import AuthUrl
from sfbroker.budget import Budget
from sfbroker.errors import (
    CredentialsRejected,
    SalesforceError,
    SalesforceTimeout,
    SandboxAuthRefused,
)
from sfbroker.salesforce.hosts import HostPolicy

# Salesforce's sandbox names: a letter, then letters and digits, at most 10 characters.
_SANDBOX_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,9}")
# Answers that say Salesforce did not act on the request: worth another attempt.
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF_SECONDS, _BACKOFF_MAX_SECONDS = 0.2, 2.0


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint answered; `refresh_token` is set only when it rotated."""

    access_token: SecretStr
    instance_url: str
    org_id: str
    user_id: str
    issued_at: datetime
    refresh_token: SecretStr | None = None


class Session(Protocol):
    """What REST calls need of a token: a grant, or a token the broker issued."""

    @property
    def access_token(self) -> SecretStr: ...

    @property
    def instance_url(self) -> str: ...


@dataclass(frozen=True)
class SandboxAuth:
    """`sandboxAuth`'s answer: a one-time authorization code for the sandbox's user."""

    auth_username: str
    auth_code: SecretStr
    instance_url: str
    login_url: str


@dataclass(frozen=True)
class UserInfo:
    username: str
    org_id: str
    user_id: str


@dataclass(frozen=True)
class OrganizationInfo:
    org_id: str
    is_sandbox: bool
    organization_type: str
    trial_expiration_date: str | None


def new_session() -> requests.Session:
    """A pooled session; it never retries by itself (`SalesforceClient` decides)."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=0, pool_maxsize=16)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "sfbroker"
    return session


class _NotSent(Exception):
    """The request certainly did not reach Salesforce (refused connection, DNS, connect timeout).

    Carries the error to raise should no attempt be left.
    """

    def __init__(self, error: SalesforceError | SalesforceTimeout) -> None:
        super().__init__(error.message)
        self.error = error


class SalesforceClient:
    """Speaks SALESFORCE.md: every URL is checked against the host policy before use.

    A request is sent again only when it certainly did not reach Salesforce (refused
    connection, unknown host, connect timeout) or Salesforce answered 5xx/429, at most
    `max_retries` times and only within the request's time budget. Never after a read
    timeout or a dropped connection: a refresh whose answer was lost may already have
    rotated the refresh token, and sending it again would burn the new one.
    """

    def __init__(
        self,
        session: requests.Session,
        hosts: HostPolicy,
        *,
        api_version: str,
        timeout: float,
        max_retries: int,
        budget: Callable[[], Budget],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._session = session
        self._hosts = hosts
        self._api_version = api_version
        self._timeout = timeout
        self._max_retries = max_retries
        self._budget = budget
        self._sleep = sleep

    def login_url(self, auth_url: AuthUrl) -> str:
        """The login URL of an auth URL's host (raises `HostNotAllowed`)."""
        return self._hosts.base_url(auth_url.host)

    def refresh(self, auth_url: AuthUrl) -> TokenGrant:
        """Trade the auth URL's refresh token for an access token.

        Raises `CredentialsRejected` on `invalid_grant` / `invalid_client*`.
        """
        form = {
            "grant_type": "refresh_token",
            "refresh_token": auth_url.refresh_token.get_secret_value(),
            "client_id": auth_url.client_id,
        }
        if secret := auth_url.client_secret.get_secret_value():
            form["client_secret"] = secret
        return self._token_request(f"{self.login_url(auth_url)}/services/oauth2/token", form)

    def _token_request(self, url: str, form: dict[str, str]) -> TokenGrant:
        response = self._send("POST", url, data=form)
        if response.status_code == 400:
            error = _json_or_none(response)
            code = error.get("error") if isinstance(error, dict) else None
            if code in {"invalid_grant", "invalid_client_id", "invalid_client"}:
                raise CredentialsRejected(str(code))
        body = self._expect_json(response, "token")
        return _grant_from(body, self._hosts)

    def userinfo(self, grant: TokenGrant) -> UserInfo:
        """The user and org the access token belongs to."""
        body = self._get(grant, f"{grant.instance_url}/services/oauth2/userinfo")
        try:
            return UserInfo(
                username=str(body["preferred_username"]),
                org_id=str(body["organization_id"]),
                user_id=str(body["user_id"]),
            )
        except (KeyError, TypeError) as error:
            raise SalesforceError("Salesforce's userinfo answer lacks the user") from error

    def organization(self, grant: TokenGrant) -> OrganizationInfo:
        """The org's type facts (scratch orgs are sandboxes with a trial expiration)."""
        records = self.query(
            grant, "SELECT Id, IsSandbox, OrganizationType, TrialExpirationDate FROM Organization"
        )
        if not records:
            raise SalesforceError("Salesforce returned no Organization record")
        record = records[0]
        return OrganizationInfo(
            org_id=str(record.get("Id")),
            is_sandbox=bool(record.get("IsSandbox")),
            organization_type=str(record.get("OrganizationType") or ""),
            trial_expiration_date=record.get("TrialExpirationDate"),
        )

    def is_dev_hub(self, grant: TokenGrant) -> bool:
        """A Dev Hub can describe ScratchOrgInfo; any other org answers 404."""
        url = f"{self._data_url(grant)}/sobjects/ScratchOrgInfo/describe"
        response = self._send("GET", url, headers=_bearer(grant))
        if response.status_code == 404:
            return False
        self._expect_json(response, "describe")
        return True

    def query(self, grant: Session, soql: str, *, tooling: bool = False) -> list[dict[str, Any]]:
        """Run a SOQL query and return its records (first page: callers query small sets)."""
        api = "/tooling" if tooling else ""
        body = self._get(grant, f"{self._data_url(grant)}{api}/query?q={quote(soql)}")
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise SalesforceError("Salesforce's query answer has no records")
        return records

    def sandbox_status(self, production: Session, sandbox_name: str) -> str | None:
        """The status of the newest `SandboxProcess` of that name (None: no such sandbox)."""
        if not _SANDBOX_NAME.fullmatch(sandbox_name):
            return None  # never interpolated into SOQL: a name Salesforce cannot have
        records = self.query(
            production,
            "SELECT Id, SandboxName, Status FROM SandboxProcess "  # noqa: S608 (name checked)
            f"WHERE SandboxName = '{sandbox_name}' ORDER BY CreatedDate DESC LIMIT 1",
            tooling=True,
        )
        return str(records[0].get("Status")) if records else None

    def sandbox_auth(
        self, production: Session, client_id: str, sandbox_name: str, callback_url: str
    ) -> SandboxAuth:
        """`POST tooling/sandboxAuth`: an authorization code for the sandbox.

        Raises `SandboxAuthRefused` with Salesforce's error code (`INVALID_STATUS`: the
        sandbox is not ready).
        """
        url = f"{self._data_url(production)}/tooling/sandboxAuth"
        document = {"clientId": client_id, "sandboxName": sandbox_name, "callbackUrl": callback_url}
        response = self._send("POST", url, headers=_bearer(production), json=document)
        if 400 <= response.status_code < 500 and response.status_code not in (401, 429):
            raise SandboxAuthRefused(_error_code(response) or f"HTTP {response.status_code}")
        body = self._expect_json(response, "sandboxAuth")
        try:
            return SandboxAuth(
                auth_username=str(body["authUserName"]),
                auth_code=SecretStr(str(body["authCode"])),
                instance_url=self._hosts.check_url(str(body["instanceUrl"])),
                login_url=self._hosts.check_url(str(body["loginUrl"])),
            )
        except (KeyError, TypeError) as error:
            raise SalesforceError("Salesforce's sandboxAuth answer is incomplete") from error

    def exchange_code(
        self, auth: SandboxAuth, client_id: str, client_secret: str, callback_url: str
    ) -> TokenGrant:
        """The authorization-code grant on the sandbox's login host: tokens for the sandbox.

        The grant carries the sandbox's refresh token. Raises `CredentialsRejected` when
        Salesforce refuses the code.
        """
        form = {
            "grant_type": "authorization_code",
            "code": auth.auth_code.get_secret_value(),
            "client_id": client_id,
            "redirect_uri": callback_url,
        }
        if client_secret:
            form["client_secret"] = client_secret
        return self._token_request(f"{auth.login_url}/services/oauth2/token", form)

    def get_record(
        self, grant: Session, sobject: str, record_id: str, fields: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """One record's `fields`, or None when there is no such record (404)."""
        url = (
            f"{self._data_url(grant)}/sobjects/{sobject}/{quote(record_id, safe='')}"
            f"?fields={','.join(fields)}"
        )
        response = self._send("GET", url, headers=_bearer(grant))
        if response.status_code == 404:
            return None
        body = self._expect_json(response, "record")
        if not isinstance(body, dict):
            raise SalesforceError("Salesforce's record answer is not an object")
        return body

    def update_record(
        self, grant: Session, sobject: str, record_id: str, changes: dict[str, Any]
    ) -> None:
        """`PATCH` a record's fields (Salesforce answers 204)."""
        url = f"{self._data_url(grant)}/sobjects/{sobject}/{quote(record_id, safe='')}"
        _expect_no_content(self._send("PATCH", url, headers=_bearer(grant), json=changes), "update")

    def delete_record(self, grant: Session, sobject: str, record_id: str) -> bool:
        """`DELETE` a record; False when it was already gone (404)."""
        url = f"{self._data_url(grant)}/sobjects/{sobject}/{quote(record_id, safe='')}"
        response = self._send("DELETE", url, headers=_bearer(grant))
        if response.status_code == 404:
            return False
        _expect_no_content(response, "delete")
        return True

    def _data_url(self, grant: Session) -> str:
        return f"{grant.instance_url}/services/data/v{self._api_version}"

    def _get(self, grant: Session, url: str) -> Any:
        response = self._send("GET", url, headers=_bearer(grant))
        return self._expect_json(response, "REST")

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        budget = self._budget()
        attempt = 0
        while True:
            left = budget.remaining()
            if left <= 0:
                raise SalesforceTimeout("Salesforce did not answer in time")
            try:
                answer: requests.Response | _NotSent = self._attempt(
                    method, url, min(self._timeout, left), **kwargs
                )
            except _NotSent as not_sent:
                answer = not_sent
            if isinstance(answer, requests.Response) and (
                answer.status_code not in _RETRIED_STATUSES
            ):
                return answer
            attempt += 1
            pause = min(_BACKOFF_SECONDS * 2 ** (attempt - 1), _BACKOFF_MAX_SECONDS)
            if attempt > self._max_retries or budget.remaining() <= pause:
                if isinstance(answer, _NotSent):
                    raise answer.error
                return answer
            self._sleep(pause)

    def _attempt(self, method: str, url: str, timeout: float, **kwargs: Any) -> requests.Response:
        """One request; `_NotSent` when it certainly did not reach Salesforce."""
        try:
            return self._session.request(
                method, url, timeout=timeout, allow_redirects=False, **kwargs
            )
        except requests.ConnectTimeout:
            raise _NotSent(_timed_out()) from None
        except requests.Timeout:
            raise _timed_out() from None
        except requests.ConnectionError as error:
            reason = getattr(error.args[0], "reason", None) if error.args else None
            if isinstance(reason, NewConnectionError):  # refused, or no such host
                raise _NotSent(SalesforceError("Salesforce could not be reached")) from None
            if isinstance(reason, ConnectTimeoutError):
                raise _NotSent(_timed_out()) from None
            if isinstance(reason, TimeoutError | ReadTimeoutError):
                raise _timed_out() from None
            # Reset or dropped after the request went out: it may have taken effect.
            raise SalesforceError("Salesforce could not be reached") from None
        except requests.RequestException:
            raise SalesforceError("The request to Salesforce failed") from None

    @staticmethod
    def _expect_json(response: requests.Response, what: str) -> Any:
        _check_status(response, what)
        body = _json_or_none(response)
        if body is None:
            raise SalesforceError(f"Salesforce's {what} answer is not JSON")
        return body


def _timed_out() -> SalesforceTimeout:
    return SalesforceTimeout("Salesforce did not answer in time")


def _grant_from(body: Any, hosts: HostPolicy) -> TokenGrant:
    try:
        identity = str(body["id"]).rstrip("/").split("/")
        issued_ms = int(body["issued_at"])
        rotated = body.get("refresh_token")
        return TokenGrant(
            access_token=SecretStr(str(body["access_token"])),
            instance_url=hosts.check_url(str(body["instance_url"])),
            org_id=identity[-2],
            user_id=identity[-1],
            issued_at=datetime.fromtimestamp(issued_ms / 1000, tz=UTC),
            refresh_token=SecretStr(str(rotated)) if rotated else None,
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise SalesforceError("Salesforce's token answer is incomplete") from error


def _check_status(response: requests.Response, what: str) -> None:
    if response.status_code >= 300:
        raise SalesforceError(
            f"Salesforce answered the {what} request with HTTP {response.status_code}"
            + _error_code_suffix(response)
        )


def _expect_no_content(response: requests.Response, what: str) -> None:
    """A write is done only when Salesforce says 204: any other answer (a 200 with a body
    mangled on the way, say) may not have been Salesforce's, so it is not trusted."""
    _check_status(response, what)
    if response.status_code != 204:
        raise SalesforceError(
            f"Salesforce answered the {what} request with HTTP {response.status_code}, not 204"
        )


def _bearer(grant: Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {grant.access_token.get_secret_value()}"}


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def _error_code(response: requests.Response) -> str | None:
    """Salesforce's error code (never its message, which may quote input)."""
    body = _json_or_none(response)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        code = body[0].get("errorCode")
    elif isinstance(body, dict):
        code = body.get("error")
    else:
        code = None
    return code if isinstance(code, str) and code.replace("_", "").isalnum() else None


def _error_code_suffix(response: requests.Response) -> str:
    code = _error_code(response)
    return f" ({code})" if code else ""
