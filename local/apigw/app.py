"""The local API Gateway: a WSGI app that authenticates, routes and calls the handlers.

One request goes through the steps API Gateway takes for a REST API with Lambda proxy
integrations: match a route of the template (with or without the ``/v1`` stage
prefix), authenticate it (SigV4 on AWS_IAM APIs, the Lambda authorizer on bearer-token
APIs, nothing on ``Auth: NONE`` routes), build the proxy event and return what the
function returned. Errors the gateway produces itself have the API.md body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from local.apigw.authorizers import AuthorizerFailure, LambdaAuthorizer, method_arn
from local.apigw.routing import RouteMatch, RouteTable
from local.apigw.sigv4 import ALGORITHM, ReceivedRequest, SignatureRejected, SigV4Verifier
from local.events import request_event
from local.template import AWS_IAM, ApiSpec, RouteSpec

__all__ = ["GatewayApp", "Invoke", "api_id"]

LOGGER = logging.getLogger(__name__)

# invoke(function_logical_id, event) -> what the function returned
Invoke = Callable[[str, dict[str, Any]], Any]

_BEARER: Final = "bearer"


def api_id(logical_id: str) -> str:
    """A stable 10-character API id for an API of the template (``a1b2c3d4e5``-like)."""
    return hashlib.sha256(logical_id.encode()).hexdigest()[:10]


class _Refusal(Exception):
    """An answer of the gateway itself (not of a function), in the API.md error shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = tuple(headers)


class GatewayApp:
    """WSGI application emulating the template's REST APIs in front of their functions."""

    def __init__(
        self,
        apis: Sequence[ApiSpec],
        routes: Sequence[RouteSpec],
        invoke: Invoke,
        verifier: SigV4Verifier,
    ) -> None:
        self._table = RouteTable(apis, routes)
        self._invoke = invoke
        self._verifier = verifier
        self._authorizers = {
            api.logical_id: LambdaAuthorizer(api.authorizers[api.default_authorizer], invoke)
            for api in apis
            if api.default_authorizer not in (None, AWS_IAM)
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request_id = str(uuid.uuid4())
        try:
            response = self._handle(request, request_id)
        except _Refusal as refusal:
            response = _error(refusal, request_id)
        response.headers["x-amzn-RequestId"] = request_id
        return response(environ, start_response)

    def _handle(self, request: Request, request_id: str) -> Response:
        path, query = _raw_target(request)
        matches = self._table.match(path)
        if not matches:
            raise _Refusal(404, "not_found", "No such route")
        allowed = [m for m in matches if m.route.allows(request.method)]
        if not allowed:
            methods = sorted({m.route.spec.method for m in matches})
            raise _Refusal(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; use {', '.join(methods)}",
                (("Allow", ", ".join(methods)),),
            )
        received = ReceivedRequest(
            method=request.method,
            path=path,
            query=query,
            headers=list(request.headers.items()),
            body=request.get_data(cache=True),
        )
        open_match = next((m for m in allowed if m.route.is_open), None)
        if open_match is not None:
            return self._integrate(open_match, received, request, request_id)
        scheme = _scheme(received.header("Authorization"))
        if scheme == ALGORITHM.lower():
            return self._with_sigv4(allowed, received, request, request_id)
        if scheme == _BEARER:
            return self._with_authorizer(allowed, received, request, request_id)
        raise _Refusal(401, "unauthorized", "Missing Authentication Token")

    def _with_sigv4(
        self, matches: list[RouteMatch], received: ReceivedRequest, request: Request, rid: str
    ) -> Response:
        match = next((m for m in matches if m.route.api.default_authorizer == AWS_IAM), None)
        if match is None:
            raise _Refusal(401, "unauthorized", "This route takes a bearer token, not SigV4")
        try:
            user = self._verifier.verify(received)
        except SignatureRejected as rejected:
            raise _Refusal(401, "unauthorized", rejected.message) from None
        return self._integrate(match, received, request, rid, identity=user.identity())

    def _with_authorizer(
        self, matches: list[RouteMatch], received: ReceivedRequest, request: Request, rid: str
    ) -> Response:
        match = next((m for m in matches if m.route.api.logical_id in self._authorizers), None)
        if match is None:
            raise _Refusal(
                401,
                "unauthorized",
                "This route takes SigV4, not a bearer token (sfbroker --iam)"
                if self._authorizers
                else "Bearer tokens are for the token API, which template.yaml does not "
                "define yet; sign the request with SigV4 (sfbroker --iam)",
            )
        api = match.route.api
        event = self._event(match, received, request, rid)
        arn = method_arn(api_id(api.logical_id), api.stage_name, received.method, match.path)
        try:
            context = self._authorizers[api.logical_id].authorize(event, arn)
        except AuthorizerFailure as failure:
            raise _Refusal(failure.status, failure.code, failure.message) from None
        event["requestContext"]["authorizer"] = context
        return self._call(match.route.spec.function_logical_id, event)

    def _integrate(
        self,
        match: RouteMatch,
        received: ReceivedRequest,
        request: Request,
        request_id: str,
        identity: Mapping[str, str | None] | None = None,
    ) -> Response:
        event = self._event(match, received, request, request_id, identity)
        return self._call(match.route.spec.function_logical_id, event)

    def _event(
        self,
        match: RouteMatch,
        received: ReceivedRequest,
        request: Request,
        request_id: str,
        identity: Mapping[str, str | None] | None = None,
    ) -> dict[str, Any]:
        route = match.route
        return request_event(
            received.method,
            route.spec.path,
            match.path,
            stage=route.api.stage_name,
            api_id=api_id(route.api.logical_id),
            path_params=match.path_parameters,
            query=list(request.args.items(multi=True)),
            headers=received.headers,
            body=received.body,
            identity=identity,
            authorizer=None,
            source_ip=request.remote_addr or "127.0.0.1",
            request_id=request_id,
        )

    def _call(self, function_logical_id: str, event: dict[str, Any]) -> Response:
        try:
            result = self._invoke(function_logical_id, event)
        except Exception:
            # What a Lambda error looks like behind API Gateway: 502, logged here.
            LOGGER.exception("%s failed", function_logical_id)
            raise _Refusal(502, "dependency_unavailable", "Internal server error") from None
        try:
            return _proxy_response(result)
        except (KeyError, TypeError, ValueError, binascii.Error):
            LOGGER.error("%s returned a malformed proxy response", function_logical_id)
            raise _Refusal(502, "dependency_unavailable", "Internal server error") from None


def _raw_target(request: Request) -> tuple[str, str]:
    """Path and query exactly as on the request line (werkzeug's PATH_INFO is decoded)."""
    raw = str(request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or "")
    if not raw:
        return request.path, request.query_string.decode("latin-1")
    if "://" in raw.split("?", 1)[0]:  # absolute-form request target
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    path, _, query = raw.partition("?")
    return path or "/", query


def _scheme(authorization: str | None) -> str | None:
    if not authorization:
        return None
    return authorization.strip().split(" ", 1)[0].lower()


def _proxy_response(result: Any) -> Response:
    if not isinstance(result, Mapping):
        raise TypeError("not a mapping")
    status = int(result["statusCode"])
    headers = Headers()
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            headers.add(str(name), str(value))
    for name, value in (result.get("headers") or {}).items():
        headers[str(name)] = str(value)
    if "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"  # API Gateway's default, too
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(str(body), validate=True)
    else:
        data = str(body).encode("utf-8")
    return Response(data, status=status, headers=headers)


def _error(refusal: _Refusal, request_id: str) -> Response:
    body = {"error": refusal.code, "message": refusal.message, "requestId": request_id}
    response = Response(json.dumps(body), status=refusal.status, mimetype="application/json")
    for name, value in refusal.headers:
        response.headers[name] = value
    return response
