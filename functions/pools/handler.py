"""Scratch-org pools: counts, fetch and return (`/pools/{tag}…`)."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from sfbroker import runtime
from sfbroker.http import build_resolver
from sfbroker.observability import logger, traced
from sfbroker.routes import pools

runtime.settings()  # a missing or malformed variable fails the init, naming it
runtime.idempotency_table_name()  # this function needs it too

app = build_resolver(pools.build_router(runtime.pool_service), guard=runtime.access_control())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # An idempotency record left in progress by a crashed invocation expires with it.
    runtime.idempotency_records().register_lambda_context(context)
    return app.resolve(event, context)
