"""Environments and leases: `/environments`, `/environments/{name}`, `…/leases`."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from sfbroker import runtime
from sfbroker.http import build_resolver
from sfbroker.observability import logger, traced
from sfbroker.routes import environments

runtime.settings()  # a missing or malformed variable fails the init, naming it

app = build_resolver(
    environments.build_router(runtime.environment_service, runtime.token_service),
    guard=runtime.access_control(),
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
