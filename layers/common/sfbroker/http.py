"""The API's resolver: validation on, the one error mapping, the caller. Pure: it knows
no services and no wiring; authorization and audit come in as a `Guard`
(`sfbroker.access.AccessControl`)."""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from botocore.exceptions import BotoCoreError, ClientError

from sfbroker.auth.principal import Principal, principal_from_request_context
from sfbroker.budget import request_time
from sfbroker.errors import (
    BrokerError,
    DependencyUnavailable,
    InvalidRequest,
    NotFound,
    UnsupportedMediaType,
)
from sfbroker.observability import logger
from sfbroker.validation import validation_details

# The resolver-context key under which a route names what its audited action turned out to be.
AUDIT_NOTE = "sfbroker.audit_note"


@dataclass(frozen=True)
class AuditNote:
    """What only the route knows of its audited action: `org.replace` rather than
    `org.register`; the username Salesforce reported."""

    action: str | None = None
    target: str | None = None


class Guard(Protocol):
    """Authorization (and its audit) of every request, around the resolver's routes."""

    def middleware(
        self, app: APIGatewayRestResolver, next_middleware: NextMiddleware
    ) -> Response[Any]: ...

    def refusal(self, event: Mapping[str, Any]) -> BrokerError | None:
        """The 401/403 of a request that failed validation before any middleware ran."""
        ...


def build_resolver(*routers: Router, guard: Guard | None = None) -> APIGatewayRestResolver:
    """A REST resolver with validation on and every error answered as API.md says.

    With a `guard` (the functions pass their `AccessControl`), every request is authorized
    before its route runs, and what the guard audits is recorded.
    """
    app = APIGatewayRestResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)
    app.use([_start_budget])
    if guard is not None:
        app.use([guard.middleware])
    app.use([_json_bodies_only])

    def error_response(error: BrokerError) -> Response[Any]:
        body: dict[str, Any] = {
            "error": error.code,
            "message": error.message,
            "requestId": app.current_event.request_context.request_id,
        }
        if error.details:
            body["details"] = error.details
        return Response(
            status_code=error.status, content_type=content_types.APPLICATION_JSON, body=body
        )

    def on_broker_error(error: BrokerError) -> Response[Any]:
        if error.status >= 500:
            logger.warning("dependency failed", extra={"error": error.code})
        return error_response(error)

    def on_validation_error(error: RequestValidationError) -> Response[Any]:
        # Powertools validates before any middleware runs: a caller who may not call the
        # route learns that (401/403), not what its body lacks.
        if guard is not None and (refused := guard.refusal(app.current_event.raw_event)):
            return error_response(refused)
        if not _json_or_no_body(app.current_event.raw_event):
            return error_response(_not_json())
        return error_response(
            InvalidRequest("The request is not valid", details=validation_details(error.errors()))
        )

    def on_unreadable_body(error: Exception) -> Response[Any]:
        # Powertools parses the body by its Content-Type before validating it and lets
        # these escape: a media type it does not know, multipart without a boundary, bytes
        # that are not UTF-8, an integer past int()'s digit limit, nesting past the
        # recursion limit. A body we can read as JSON did not cause the error: ours did.
        if not isinstance(error, RequestUnsupportedContentType) and _json_body_readable(
            app.current_event.raw_event
        ):
            return on_unexpected(error)
        problem = {"type": "body_unreadable", "loc": ("body",), "msg": UNREADABLE_BODY}
        return on_validation_error(RequestValidationError([problem]))

    def on_not_found(error: NotFoundError) -> Response[Any]:
        return error_response(as_broker_error(error))

    def on_aws_error(error: ClientError | BotoCoreError) -> Response[Any]:
        logger.warning("AWS call failed", extra={"aws_error": type(error).__name__})
        return error_response(as_broker_error(error))

    def on_unexpected(error: Exception) -> Response[Any]:
        # The traceback goes to the log (our messages carry no secrets); the caller
        # gets the documented body, never a stack trace.
        logger.exception("unexpected error")
        return error_response(as_broker_error(error))

    app.exception_handler(BrokerError)(on_broker_error)
    app.exception_handler(RequestValidationError)(on_validation_error)
    app.exception_handler([RequestUnsupportedContentType, ValueError, RecursionError])(
        on_unreadable_body
    )
    app.exception_handler(NotFoundError)(on_not_found)
    app.exception_handler([ClientError, BotoCoreError])(on_aws_error)
    app.exception_handler(Exception)(on_unexpected)
    return app


def as_broker_error(error: Exception) -> BrokerError:
    """The API's error for any exception a route can raise: the one mapping."""
    if isinstance(error, BrokerError):
        return error
    if isinstance(error, NotFoundError):
        return NotFound("No such route")
    if isinstance(error, ClientError | BotoCoreError):
        return DependencyUnavailable("A storage service is unavailable")
    return BrokerError("An unexpected error occurred; quote the request id")


UNREADABLE_BODY = "The body must be JSON, in UTF-8, sent as Content-Type: application/json"
JSON_MEDIA_TYPE = "application/json"


def _json_or_no_body(event: Mapping[str, Any]) -> bool:
    """Whether the request has no body, or one sent as JSON (or without a media type)."""
    if not event.get("body"):
        return True
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type in ("", JSON_MEDIA_TYPE)


def _not_json() -> UnsupportedMediaType:
    return UnsupportedMediaType(f"A request body must be sent as Content-Type: {JSON_MEDIA_TYPE}")


def _json_body_readable(event: Mapping[str, Any]) -> bool:
    """Whether the request's body is JSON that Powertools could have parsed."""
    if not _json_or_no_body(event):
        return False
    body = event.get("body")
    if body is None:
        return True
    try:
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else str(body).encode()
        json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return True


def current_principal(app: APIGatewayRestResolver | Router) -> Principal:
    """The caller of the request being handled."""
    return principal_from_request_context(app.current_event.raw_event.get("requestContext") or {})


def note_for_audit(
    app: APIGatewayRestResolver | Router, *, action: str | None = None, target: str | None = None
) -> None:
    """Name what an audited action turned out to be, when only the route knows it."""
    app.context[AUDIT_NOTE] = AuditNote(action=action, target=target)


def path_value(raw: str) -> str:
    """A path parameter as the client meant it.

    REST API proxy events keep `path` percent-encoded, and the resolver hands route
    functions the raw segment (`admin%40acme.com`): decode it here, once. Control and
    format characters (NUL, CR/LF, ESC, bidi overrides) are no part of any name: 400,
    before an error message could echo them into a log line or a terminal.
    """
    value = unquote(raw)
    if any(unicodedata.category(char) in {"Cc", "Cf"} for char in value):
        raise InvalidRequest("A path parameter contains control or format characters")
    return value


def path_username(raw: str) -> str:
    """A username path parameter, only in its normalised (lowercase) form.

    Orgs are stored under the lowercase username, so `/orgs/ADMIN@acme.com` would reach
    `admin@acme.com` while IAM compares the resource path as sent: a `Deny` on
    `/orgs/admin@acme.com/*` would not match it. Accepting one form keeps the API and the
    IAM resource path in agreement.
    """
    username = path_value(raw)
    if username != username.lower():
        raise InvalidRequest(
            "The request is not valid",
            details=[{"field": "username", "message": "must be lowercase, as stored"}],
        )
    return username


def no_content() -> Response[Any]:
    """An empty 204 answer."""
    return Response(status_code=HTTPStatus.NO_CONTENT, body=None)


def _start_budget(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Give the request its time budget, from what the Lambda context says is left."""
    context = app.lambda_context
    with request_time(context.get_remaining_time_in_millis() if context else None):
        return next_middleware(app)


def _json_bodies_only(
    app: APIGatewayRestResolver, next_middleware: NextMiddleware
) -> Response[Any]:
    """A body that validated but was not sent as JSON (a form, say) is still refused."""
    if not _json_or_no_body(app.current_event.raw_event):
        raise _not_json()
    return next_middleware(app)
