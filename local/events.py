"""API Gateway REST proxy events, shaped like the real ones and like ``events/*.json``.

The files in ``events/`` (for ``sam local invoke -e``) and the events built here share
one shape: ``proxy_event`` starts from a deep copy of ``events/health.json``. In a REST
API event ``path`` is percent-encoded as the client sent it while ``pathParameters``
are decoded; both are reproduced here.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

__all__ = ["BASE_EVENT", "EVENTS_DIR", "load_event", "proxy_event", "request_event"]

EVENTS_DIR: Final = Path(__file__).resolve().parent.parent / "events"
# Unauthenticated and without body: the neutral starting point for every event.
BASE_EVENT: Final = "health.json"

_PATH_PARAMETER: Final = re.compile(r"\{([^}/]+?)(\+?)\}")
# Identity fields API Gateway fills in for a SigV4 (AWS_IAM) caller.
_IAM_IDENTITY_FIELDS: Final = ("accountId", "caller", "accessKey", "userArn", "user")
# AWS's documentation example key id: obviously not a real credential.
_EXAMPLE_USER_ACCESS_KEY: Final = "AKIAIOSFODNN7EXAMPLE"
_EXAMPLE_ROLE_ACCESS_KEY: Final = "ASIAIOSFODNN7EXAMPLE"
_EXAMPLE_USER_ID: Final = "AIDAEXAMPLEUSERID0001"
_EXAMPLE_ROLE_ID: Final = "AROAEXAMPLEROLEID0001"


def load_event(name: str) -> dict[str, Any]:
    """A sample event of ``events/`` (``"orgs-get"`` or ``"orgs-get.json"``), a new copy
    each call (callers fill it in)."""
    file_name = name if name.endswith(".json") else f"{name}.json"
    event: dict[str, Any] = json.loads(_event_text(file_name))
    return event


@cache
def _event_text(file_name: str) -> str:
    # Read once: the local gateway builds every request's event from `health.json`, and a
    # file read per request was a tenth of its time on a token request (issue 15).
    return (EVENTS_DIR / file_name).read_text(encoding="utf-8")


def proxy_event(
    method: str,
    path_template: str,
    *,
    path_params: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    iam_arn: str | None = "arn:aws:iam::123456789012:user/ci",
    authorizer: Mapping[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
) -> dict[str, Any]:
    """Build the event API Gateway (REST, proxy integration, stage ``v1``) would send.

    ``path_template`` is the route as in the template (``/orgs/{username}``); values of
    ``path_params`` are percent-encoded into ``path`` like a client sends them. Without
    ``headers`` the sample headers are used (plus ``Content-Type: application/json``
    when there is a body). A ``bytes`` body that is not UTF-8 is passed base64-encoded.
    ``iam_arn`` fills the SigV4 caller identity; ``authorizer`` becomes
    ``requestContext.authorizer`` (what a Lambda authorizer returned as context).
    """
    path_params = dict(path_params or {})
    event_headers = _headers(
        headers, load_event(BASE_EVENT)["headers"], body is not None, source_ip
    )
    return _event(
        method,
        path_template,
        _expand_path(path_template, path_params),
        path_params=path_params,
        query=list((query or {}).items()),
        headers=list(event_headers.items()),
        body=body,
        identity=_iam_identity(iam_arn),
        authorizer=authorizer,
        source_ip=source_ip,
        request_id=request_id,
    )


def request_event(
    method: str,
    resource: str,
    path: str,
    *,
    stage: str,
    api_id: str,
    path_params: Mapping[str, str] | None,
    query: Sequence[tuple[str, str]],
    headers: Sequence[tuple[str, str]],
    body: bytes | None,
    identity: Mapping[str, str | None] | None,
    authorizer: Mapping[str, Any] | None,
    source_ip: str,
    request_id: str,
) -> dict[str, Any]:
    """The event API Gateway sends for a request received over HTTP (the local emulator).

    ``path`` is the request path exactly as the client sent it (percent-encoding kept,
    stage prefix removed); ``path_params`` are the decoded values of the route's
    parameters. ``query`` and ``headers`` are (name, value) pairs in order received,
    repeated names allowed: the single-value maps keep the last value, as API Gateway
    does. ``identity`` fills the SigV4 caller fields (``None``: all null). An empty body
    is ``null``; a body that is not UTF-8 is passed base64-encoded.
    """
    return _event(
        method,
        resource,
        path,
        path_params=dict(path_params or {}),
        query=query,
        headers=headers,
        body=body or None,
        identity=identity or dict.fromkeys(_IAM_IDENTITY_FIELDS),
        authorizer=authorizer,
        source_ip=source_ip,
        request_id=request_id,
        stage=stage,
        api_id=api_id,
    )


def _event(
    method: str,
    resource: str,
    path: str,
    *,
    path_params: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    headers: Sequence[tuple[str, str]],
    body: str | bytes | None,
    identity: Mapping[str, str | None],
    authorizer: Mapping[str, Any] | None,
    source_ip: str,
    request_id: str | None,
    stage: str | None = None,
    api_id: str | None = None,
) -> dict[str, Any]:
    event = load_event(BASE_EVENT)
    event_headers = dict(headers)
    event["resource"] = resource
    event["path"] = path
    event["httpMethod"] = method.upper()
    event["pathParameters"] = dict(path_params) or None
    event["queryStringParameters"] = dict(query) or None
    event["multiValueQueryStringParameters"] = _multi_value(query) or None
    event["headers"] = event_headers
    event["multiValueHeaders"] = _multi_value(headers)
    event["body"], event["isBase64Encoded"] = _body(body)

    context = event["requestContext"]
    now = time.time()
    if stage is not None:
        context["stage"] = stage
    if api_id is not None:
        context["apiId"] = api_id
    context["requestId"] = request_id or str(uuid.uuid4())
    context["extendedRequestId"] = base64.b32encode(uuid.uuid4().bytes)[:16].decode()
    context["requestTime"] = _request_time(now)
    context["requestTimeEpoch"] = int(now * 1000)
    context["path"] = f"/{context['stage']}{path}"
    context["resourcePath"] = resource
    context["httpMethod"] = method.upper()
    context["domainName"] = _header(event_headers, "Host") or context["domainName"]
    context["domainPrefix"] = context["domainName"].split(".", 1)[0]

    context["identity"]["sourceIp"] = source_ip
    context["identity"]["userAgent"] = _header(event_headers, "User-Agent")
    context["identity"].update(identity)
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    else:
        context.pop("authorizer", None)
    return event


def _multi_value(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return values


def _expand_path(path_template: str, path_params: Mapping[str, str]) -> str:
    def encode(match: re.Match[str]) -> str:
        name, greedy = match.group(1), match.group(2)
        if name not in path_params:
            raise KeyError(f"path parameter {name!r} of {path_template} not given")
        # A greedy {proxy+} spans segments: its slashes stay slashes.
        return quote(path_params[name], safe="/" if greedy else "")

    return _PATH_PARAMETER.sub(encode, path_template)


def _headers(
    given: Mapping[str, str] | None,
    sample: Mapping[str, str],
    has_body: bool,
    source_ip: str,
) -> dict[str, str]:
    if given is not None:
        return dict(given)
    headers = dict(sample)
    headers["X-Forwarded-For"] = source_ip
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _body(body: str | bytes | None) -> tuple[str | None, bool]:
    if body is None or isinstance(body, str):
        return body, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _request_time(epoch_seconds: float) -> str:
    # API Gateway's format: 25/Nov/2026:12:00:00 +0000
    day, month, year, clock = formatdate(epoch_seconds, usegmt=True).split()[1:5]
    return f"{day}/{month}/{year}:{clock} +0000"


def _iam_identity(iam_arn: str | None) -> dict[str, str | None]:
    if iam_arn is None:
        return dict.fromkeys(_IAM_IDENTITY_FIELDS)
    account_id = iam_arn.split(":")[4]
    if ":assumed-role/" in iam_arn:
        session_name = iam_arn.rsplit("/", 1)[-1]
        caller = f"{_EXAMPLE_ROLE_ID}:{session_name}"
        access_key = _EXAMPLE_ROLE_ACCESS_KEY
    else:
        caller = _EXAMPLE_USER_ID
        access_key = _EXAMPLE_USER_ACCESS_KEY
    return {
        "accountId": account_id,
        "caller": caller,
        "accessKey": access_key,
        "userArn": iam_arn,
        "user": caller,
    }
