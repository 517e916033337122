"""The OAuth endpoints: token grants (refresh token, authorization code), revoke, userinfo."""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta

from local.fake_salesforce.state import (
    AUTHORIZATION_CODE_SECONDS,
    FakeSalesforceState,
    User,
)
from local.fake_salesforce.wire import OAuthError

SCOPE = "refresh_token web api"


def _expired_grant() -> OAuthError:
    return OAuthError("invalid_grant", "expired access/refresh token")


def identity_url(user: User) -> str:
    """The `id` of a token response: `https://login.salesforce.com/id/<org id>/<user id>`."""
    return f"https://login.salesforce.com/id/{user.org_id}/{user.id}"


def token_grant(state: FakeSalesforceState, form: Mapping[str, str]) -> dict[str, str]:
    """Answer `POST /services/oauth2/token`; raise `OAuthError` as Salesforce would."""
    grant_type = form.get("grant_type", "")
    if grant_type == "refresh_token":
        return _refresh_token_grant(state, form)
    if grant_type == "authorization_code":
        return _authorization_code_grant(state, form)
    raise OAuthError("unsupported_grant_type", "grant type not supported")


def _check_client(state: FakeSalesforceState, form: Mapping[str, str]) -> str:
    client_id = form.get("client_id", "")
    app = state.connected_apps.get(client_id)
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    secret = form.get("client_secret")
    if app.client_secret is not None and secret is not None and secret != app.client_secret:
        raise OAuthError("invalid_client", "invalid client credentials")
    return client_id


def _check_user(state: FakeSalesforceState, user: User) -> None:
    if state.org_of(user).deleted:
        raise _expired_grant()
    if not user.is_active:
        raise OAuthError("invalid_grant", "inactive user")


def _refresh_token_grant(state: FakeSalesforceState, form: Mapping[str, str]) -> dict[str, str]:
    with state.lock:
        client_id = _check_client(state, form)
        token = form.get("refresh_token", "")
        record = state.refresh_tokens.get(token)
        if record is None or record.revoked or record.client_id != client_id:
            raise _expired_grant()
        user = state.users[record.user_id]
        _check_user(state, user)
        if state.org_of(user).rotate_refresh_tokens:
            state.revoke_refresh_token(token)
            token = state.mint_refresh_token(user.username, client_id)
            return _token_response(state, user, token, include_refresh_token=True)
        return _token_response(state, user, token, include_refresh_token=False)


def _authorization_code_grant(
    state: FakeSalesforceState, form: Mapping[str, str]
) -> dict[str, str]:
    with state.lock:
        client_id = _check_client(state, form)
        code = state.authorization_codes.get(form.get("code", ""))
        too_old = code is not None and state.now() - code.issued_at > timedelta(
            seconds=AUTHORIZATION_CODE_SECONDS
        )
        if code is None or code.used or too_old or code.client_id != client_id:
            raise OAuthError("invalid_grant", "invalid authorization code")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
        code.used = True
        user = state.users[code.user_id]
        _check_user(state, user)
        refresh_token = state.mint_refresh_token(user.username, client_id)
        return _token_response(state, user, refresh_token, include_refresh_token=True)


def _token_response(
    state: FakeSalesforceState, user: User, refresh_token: str, *, include_refresh_token: bool
) -> dict[str, str]:
    access_token, record = state.issue_access_token(user, refresh_token)
    identity = identity_url(user)
    issued_at = str(int(record.issued_at.timestamp() * 1000))
    digest = hmac.new(state.signing_key, (identity + issued_at).encode(), hashlib.sha256)
    body = {"access_token": access_token}
    if include_refresh_token:
        body["refresh_token"] = refresh_token
    body |= {
        "signature": base64.b64encode(digest.digest()).decode(),
        "scope": SCOPE,
        "instance_url": state.base_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }
    return body


def revoke_token(state: FakeSalesforceState, token: str) -> None:
    """Answer `POST /services/oauth2/revoke`: revoke a refresh or access token."""
    if not (state.revoke_refresh_token(token) or state.revoke_access_token(token)):
        raise OAuthError("unsupported_token_type", "this token type is not supported")


def userinfo(state: FakeSalesforceState, user: User) -> dict[str, object]:
    """The OpenID userinfo of `user` (`GET /services/oauth2/userinfo`)."""
    base = state.base_url
    org15 = user.org_id[:15]
    rest = f"{base}/services/data/v{{version}}"
    return {
        "sub": identity_url(user),
        "user_id": user.id,
        "organization_id": user.org_id,
        "preferred_username": user.username,
        "nickname": user.username.split("@", 1)[0],
        "name": user.name,
        "email": user.email,
        "email_verified": True,
        "given_name": user.first_name,
        "family_name": user.last_name,
        "zoneinfo": "America/Los_Angeles",
        "profile": f"{base}/{user.id}",
        "address": {},
        "urls": {
            "enterprise": f"{base}/services/Soap/c/{{version}}/{org15}",
            "partner": f"{base}/services/Soap/u/{{version}}/{org15}",
            "rest": f"{rest}/",
            "sobjects": f"{rest}/sobjects/",
            "search": f"{rest}/search/",
            "query": f"{rest}/query/",
            "tooling_rest": f"{rest}/tooling/",
            "profile": f"{base}/{user.id}",
        },
        "active": user.is_active,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": -28800000,
        "updated_at": _iso(user.created_date),
        "is_app_installed": True,
    }


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S+0000")
