"""The API's resolver: validation, access rules and audit, the one error mapping, the caller."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
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

from sfbroker import runtime
from sfbroker.auth.access import Access
from sfbroker.auth.principal import (
    ANONYMOUS,
    Principal,
    principal_from_request_context,
    request_facts,
)
from sfbroker.errors import (
    BrokerError,
    DependencyUnavailable,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
)
from sfbroker.observability import logger
from sfbroker.services.audit import PendingAudit

AccessRules = Mapping[tuple[str, str], Access]
Middleware = Callable[[APIGatewayRestResolver, NextMiddleware], Response[Any]]


@dataclass
class _AuditedRequest:
    """The audit event of the request being handled, and what its route said about it."""

    pending: PendingAudit
    action: str | None = None
    target: str | None = None


_audited: ContextVar[_AuditedRequest | None] = ContextVar("sfbroker_audited", default=None)


def build_resolver(*routers: Router, access: AccessRules | None = None) -> APIGatewayRestResolver:
    """A REST resolver with validation on and every error answered as API.md says.

    With `access` (the functions pass `ROUTE_ACCESS`), every request is authorized by its
    route's rule before the route runs — a route without a rule is refused — and audited
    actions are recorded in the audit trail.
    """
    app = APIGatewayRestResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)
    if access is not None:
        app.use([_access_middleware(access)])

    def error_response(error: BrokerError) -> Response[Any]:
        if access is not None:
            _audit_failure(app.current_event.raw_event, error, access)
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
        if access is not None:
            try:
                _authorize(app.current_event.raw_event, access)
            except BrokerError as refused:
                return error_response(refused)
        return error_response(
            InvalidRequest("The request is not valid", details=validation_details(error))
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

    def on_not_found(_: NotFoundError) -> Response[Any]:
        return error_response(NotFound("No such route"))

    def on_aws_error(error: ClientError | BotoCoreError) -> Response[Any]:
        logger.warning("AWS call failed", extra={"aws_error": type(error).__name__})
        return error_response(DependencyUnavailable("A storage service is unavailable"))

    def on_unexpected(_: Exception) -> Response[Any]:
        # The traceback goes to the log (our messages carry no secrets); the caller
        # gets the documented body, never a stack trace.
        logger.exception("unexpected error")
        body = BrokerError("An unexpected error occurred; quote the request id")
        return error_response(body)

    app.exception_handler(BrokerError)(on_broker_error)
    app.exception_handler(RequestValidationError)(on_validation_error)
    app.exception_handler([RequestUnsupportedContentType, ValueError, RecursionError])(
        on_unreadable_body
    )
    app.exception_handler(NotFoundError)(on_not_found)
    app.exception_handler([ClientError, BotoCoreError])(on_aws_error)
    app.exception_handler(Exception)(on_unexpected)
    return app


UNREADABLE_BODY = "The body must be JSON, in UTF-8, sent as Content-Type: application/json"


def _json_body_readable(event: Mapping[str, Any]) -> bool:
    """Whether the request's body is JSON that Powertools could have parsed."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "").strip()
    if content_type and not content_type.startswith("application/json"):
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


def validation_details(error: RequestValidationError) -> list[dict[str, str]]:
    """Field and message of each validation problem; never the rejected value itself."""
    details = []
    for problem in error.errors():
        if problem.get("type") == "json_invalid":
            details.append({"field": "body", "message": "The body is not valid JSON"})
            continue
        location = [str(part) for part in problem.get("loc", ()) if part != "body"]
        field = ".".join(location) or "body"
        details.append({"field": field, "message": str(problem.get("msg", "invalid value"))})
    return details


def current_principal(app: APIGatewayRestResolver | Router) -> Principal:
    """The caller of the request being handled."""
    return principal_from_request_context(app.current_event.raw_event.get("requestContext") or {})


def note_for_audit(*, action: str | None = None, target: str | None = None) -> None:
    """Name what an audited action turned out to be, when only the route knows it
    (`org.replace` rather than `org.register`; the username Salesforce reported)."""
    audited = _audited.get()
    if audited is not None:
        audited.action = action or audited.action
        audited.target = target or audited.target


def path_value(raw: str) -> str:
    """A path parameter as the client meant it.

    REST API proxy events keep `path` percent-encoded, and the resolver hands route
    functions the raw segment (`admin%40acme.com`): decode it here, once.
    """
    return unquote(raw)


def no_content() -> Response[Any]:
    """An empty 204 answer."""
    return Response(status_code=HTTPStatus.NO_CONTENT, body=None)


def _access_middleware(access: AccessRules) -> Middleware:
    def enforce_access(
        app: APIGatewayRestResolver, next_middleware: NextMiddleware
    ) -> Response[Any]:
        event = app.current_event.raw_event
        principal, rule = _authorize(event, access)
        if rule.action is None or principal is None:
            return next_middleware(app)
        audited = _AuditedRequest(
            runtime.audit_trail().begin(
                request_facts(event),
                actor=principal.id,
                action=rule.action,
                target=rule.target_of(event.get("pathParameters") or {}),
            )
        )
        _audited.set(audited)
        response = next_middleware(app)
        _audited.set(None)
        audited.pending.settle(
            "success" if response.status_code < 400 else "error",
            action=audited.action,
            target=audited.target,
        )
        return response

    return enforce_access


def _authorize(event: Mapping[str, Any], access: AccessRules) -> tuple[Principal | None, Access]:
    """The caller and the rule of the request's route; raises 401/403 when refused."""
    rule = access.get(_route_of(event))
    if rule is None:
        logger.error("route has no access rule", extra={"route": " ".join(_route_of(event))})
        raise Forbidden("This route has no access rule")
    if rule.public:
        return None, rule
    principal = principal_from_request_context(event.get("requestContext") or {})
    if rule.scope is not None:
        principal.require(rule.scope, rule.target_of(event.get("pathParameters") or {}))
    return principal, rule


def _audit_failure(event: Mapping[str, Any], error: BrokerError, access: AccessRules) -> None:
    """Settle the audited action that failed, or record a refused request (401/403)."""
    audited = _audited.get()
    _audited.set(None)
    facts = request_facts(event)
    denied = isinstance(error, Forbidden | Unauthorized)
    if audited is not None and audited.pending.request_id == facts.request_id:
        try:
            audited.pending.settle(
                "denied" if denied else "error",
                action="request.denied" if denied else audited.action,
                target=audited.target,
                reason=error.message if denied else error.code,
            )
        except DependencyUnavailable:
            logger.warning("audit event of a failed request not written")
        return
    if not denied:
        return
    try:
        actor = principal_from_request_context(event.get("requestContext") or {}).id
    except Unauthorized:
        actor = ANONYMOUS
    rule = access.get(_route_of(event))
    target = rule.target_of(event.get("pathParameters") or {}) if rule else None
    runtime.audit_trail().record_denial(facts, actor=actor, target=target, reason=error.message)


def _route_of(event: Mapping[str, Any]) -> tuple[str, str]:
    """Method and resource (`/orgs/{username}`): the route as `template.yaml` names it."""
    return str(event.get("httpMethod", "")).upper(), str(event.get("resource", ""))
