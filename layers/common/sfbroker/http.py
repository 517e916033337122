"""The API's resolver: validation, the one exception-to-response mapping, the caller."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from botocore.exceptions import BotoCoreError, ClientError

from sfbroker.auth.principal import Principal, principal_from_request_context
from sfbroker.errors import BrokerError, DependencyUnavailable, InvalidRequest, NotFound
from sfbroker.observability import logger


def build_resolver(*routers: Router) -> APIGatewayRestResolver:
    """A REST resolver with validation on and every error answered as API.md says."""
    app = APIGatewayRestResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)

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
        return error_response(
            InvalidRequest("The request is not valid", details=validation_details(error))
        )

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
    app.exception_handler(NotFoundError)(on_not_found)
    app.exception_handler([ClientError, BotoCoreError])(on_aws_error)
    app.exception_handler(Exception)(on_unexpected)
    return app


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


def path_value(raw: str) -> str:
    """A path parameter as the client meant it.

    REST API proxy events keep `path` percent-encoded, and the resolver hands route
    functions the raw segment (`admin%40acme.com`): decode it here, once.
    """
    return unquote(raw)


def no_content() -> Response[Any]:
    """An empty 204 answer."""
    return Response(status_code=HTTPStatus.NO_CONTENT, body=None)
