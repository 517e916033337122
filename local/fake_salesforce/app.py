"""The WSGI application: Salesforce's routes, request counting and fault injection.

Requests under `/__fake__/` go to the admin API (`admin.py`), outside Salesforce's
namespace; they are neither counted nor faulted.
"""

import logging
import socket
import struct
import threading
from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from local.fake_salesforce import endpoints, oauth, rest
from local.fake_salesforce.admin import ADMIN_PREFIX, AdminApi
from local.fake_salesforce.faults import Fault, FaultInjector, FaultKind
from local.fake_salesforce.schema import Api
from local.fake_salesforce.state import FakeSalesforceState, User
from local.fake_salesforce.traffic import TrafficLog
from local.fake_salesforce.wire import (
    JSON_CONTENT_TYPE,
    NO_STORE,
    OAuthError,
    RestError,
    json_response,
    not_found,
    oauth_error_response,
    rest_error_response,
    session_invalid,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

_DATA = "/services/data/v<version>"
_RECORD = f"{_DATA}/sobjects/<entity>/<record_id>"
_ROUTES = Map(
    [
        Rule("/services/oauth2/token", endpoint=endpoints.TOKEN, methods=["POST"]),
        Rule("/services/oauth2/revoke", endpoint=endpoints.REVOKE, methods=["POST"]),
        Rule("/services/oauth2/userinfo", endpoint=endpoints.USERINFO, methods=["GET", "POST"]),
        Rule("/services/data", endpoint=endpoints.VERSIONS, methods=["GET"]),
        Rule(_DATA, endpoint=endpoints.RESOURCES, methods=["GET"]),
        Rule(f"{_DATA}/query", endpoint=endpoints.QUERY, methods=["GET"]),
        Rule(f"{_DATA}/tooling/query", endpoint=endpoints.TOOLING_QUERY, methods=["GET"]),
        Rule(f"{_DATA}/tooling/sandboxAuth", endpoint=endpoints.SANDBOX_AUTH, methods=["POST"]),
        Rule(f"{_DATA}/sobjects/<entity>/describe", endpoint=endpoints.DESCRIBE, methods=["GET"]),
        Rule(_RECORD, endpoint=endpoints.RECORD_GET, methods=["GET"]),
        Rule(_RECORD, endpoint=endpoints.RECORD_PATCH, methods=["PATCH"]),
        Rule(_RECORD, endpoint=endpoints.RECORD_DELETE, methods=["DELETE"]),
    ],
    strict_slashes=False,
)

_HTTP_500 = RestError(
    500,
    "UNKNOWN_EXCEPTION",
    "An unexpected error occurred. Please include this ErrorId if you contact support: "
    "1234567890-12345 (-1234567890)",
)
_HTTP_503 = RestError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
_HTTP_429 = RestError(
    429, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded or too many requests"
)
_TRUNCATED_JSON = b'{"access_token": "00D'
_MAINTENANCE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Salesforce - Maintenance</title></head>"
    b"<body><h1>Down for maintenance</h1><p>We'll be back shortly.</p></body></html>"
)


class FakeSalesforceApp:
    """The fake's WSGI callable."""

    def __init__(
        self,
        state: FakeSalesforceState,
        traffic: TrafficLog,
        faults: FaultInjector,
        stopping: threading.Event,
    ) -> None:
        self.state = state
        self.traffic = traffic
        self.faults = faults
        self.stopping = stopping
        self.admin = AdminApi(state, traffic, faults)

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(ADMIN_PREFIX):
            response = self.admin.dispatch(request)
        else:
            response = self.serve(request)
        return response(environ, start_response)

    def serve(self, request: Request) -> Response:
        """Count, delay, maybe fault, then answer one Salesforce request."""
        endpoint, args, routing_error = _match(request)
        grant_type = request.form.get("grant_type") if endpoint == endpoints.TOKEN else None
        self.traffic.record(endpoint, request.method, request.path, grant_type)
        self.stopping.wait(self.faults.delay)
        fault = self.faults.take(endpoint)
        if fault is not None:
            faulted = self._apply_fault(fault, request, endpoint)
            if faulted is not None:
                return faulted
        if routing_error is not None:
            return rest_error_response(routing_error)
        answer = self._answer_safely(endpoint, request, args)
        if fault is not None and fault.kind is FaultKind.LOST_ANSWER:
            self.stopping.wait(fault.seconds)
        return answer

    def _answer_safely(self, endpoint: str, request: Request, args: Mapping[str, str]) -> Response:
        try:
            with self.state.lock:
                return self._answer(endpoint, request, args)
        except RestError as error:
            return rest_error_response(error)
        except OAuthError as error:
            return oauth_error_response(error)
        except Exception:
            logger.exception("fake Salesforce failed on %s %s", request.method, request.path)
            return rest_error_response(RestError(500, "UNKNOWN_EXCEPTION", "unexpected error"))

    def _apply_fault(self, fault: Fault, request: Request, endpoint: str) -> Response | None:
        match fault.kind:
            case FaultKind.TIMEOUT:
                self.stopping.wait(fault.seconds)
                return None
            case FaultKind.LOST_ANSWER:
                return None  # stalls after answering, in `serve`
            case FaultKind.HTTP_500:
                return rest_error_response(_HTTP_500)
            case FaultKind.HTTP_503:
                return rest_error_response(_HTTP_503)
            case FaultKind.HTTP_429:
                return rest_error_response(_HTTP_429)
            case FaultKind.HTML_ERROR:
                return Response(_MAINTENANCE_PAGE, status=503, content_type="text/html")
            case FaultKind.INVALID_GRANT | FaultKind.INVALID_SESSION:
                if endpoint in {endpoints.TOKEN, endpoints.REVOKE}:
                    expired = OAuthError("invalid_grant", "expired access/refresh token")
                    return oauth_error_response(expired)
                return rest_error_response(session_invalid())
            case FaultKind.MALFORMED_JSON:
                return Response(_TRUNCATED_JSON, status=200, content_type=JSON_CONTENT_TYPE)
            case FaultKind.CONNECTION_RESET:
                _drop_connection(request.environ)
        raise AssertionError(fault.kind)  # pragma: no cover

    def _answer(self, endpoint: str, request: Request, args: Mapping[str, str]) -> Response:
        if endpoint == endpoints.TOKEN:
            response = json_response(oauth.token_grant(self.state, request.form))
            response.headers["Cache-Control"] = NO_STORE
            return response
        if endpoint == endpoints.REVOKE:
            oauth.revoke_token(self.state, request.form.get("token", ""))
            return Response(status=200)
        if endpoint == endpoints.VERSIONS:
            return json_response(rest.versions())
        version = args.get("version")
        if version is not None and version not in rest.API_VERSIONS:
            raise not_found()
        user = self._authenticate(request)
        return self._answer_rest(endpoint, request, args, user)

    def _answer_rest(
        self, endpoint: str, request: Request, args: Mapping[str, str], user: User
    ) -> Response:
        state = self.state
        version = args.get("version", "")
        columns = request.args.get("columns") == "true"
        match endpoint:
            case endpoints.USERINFO:
                return json_response(oauth.userinfo(state, user))
            case endpoints.RESOURCES:
                return json_response(rest.resources(version))
            case endpoints.QUERY | endpoints.TOOLING_QUERY:
                api = Api.TOOLING if endpoint == endpoints.TOOLING_QUERY else Api.DATA
                text = request.args.get("q", "")
                return json_response(rest.query(state, user, api, version, text, columns=columns))
            case endpoints.DESCRIBE:
                return json_response(rest.describe(state, user, version, args["entity"]))
            case endpoints.RECORD_GET:
                record = rest.get_record(
                    state,
                    user,
                    version,
                    args["entity"],
                    args["record_id"],
                    fields_param=request.args.get("fields"),
                )
                return json_response(record)
            case endpoints.RECORD_PATCH:
                rest.update_record(
                    state, user, args["entity"], args["record_id"], request.get_data()
                )
                return Response(status=204)
            case endpoints.RECORD_DELETE:
                rest.delete_record(state, user, args["entity"], args["record_id"])
                return Response(status=204)
            case endpoints.SANDBOX_AUTH:
                return json_response(rest.sandbox_auth(state, user, request.get_data()))
        raise not_found()

    def _authenticate(self, request: Request) -> User:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in {"bearer", "oauth"} or not token.strip():
            raise session_invalid()
        user = self.state.authenticate(token.strip())
        if user is None:
            raise session_invalid()
        return user


def _match(request: Request) -> tuple[str, Mapping[str, str], RestError | None]:
    adapter = _ROUTES.bind_to_environ(request.environ)
    try:
        endpoint, args = adapter.match()
    except MethodNotAllowed as error:
        allowed = ",".join(sorted(error.valid_methods or []))
        message = f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"
        return endpoints.UNKNOWN, {}, RestError(405, "METHOD_NOT_ALLOWED", message)
    except NotFound:
        return endpoints.UNKNOWN, {}, not_found()
    return str(endpoint), args, None


class _ConnectionDropped(ConnectionResetError):
    """Raised after closing the socket; werkzeug's server treats it as a dropped client."""


def _drop_connection(environ: "WSGIEnvironment") -> None:
    """Close the client connection without an answer (an RST, thanks to SO_LINGER 0)."""
    connection = environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket):
        with suppress(OSError):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.shutdown(socket.SHUT_RDWR)
    raise _ConnectionDropped("fault injected: connection_reset")
