"""Admin: `POST/GET /api-tokens`, `DELETE /api-tokens/{id}`, `GET /audit`."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from sfbroker.auth.access import ROUTE_ACCESS
from sfbroker.http import build_resolver
from sfbroker.observability import logger, tracer
from sfbroker.routes import admin

app = build_resolver(admin.router, access=ROUTE_ACCESS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
