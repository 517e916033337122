"""JIT sandboxes: `POST /sandboxes`, `POST /sandboxes/{sandboxName}/auth`."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from sfbroker import runtime
from sfbroker.http import build_resolver
from sfbroker.observability import logger, traced
from sfbroker.routes import sandboxes

runtime.settings()  # a missing or malformed variable fails the init, naming it

app = build_resolver(sandboxes.build_router(runtime.jit_service), guard=runtime.access_control())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
