"""The token API's Lambda REQUEST authorizer: `Authorization: Bearer sfb_…` → policy + principal."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from sfbroker import runtime
from sfbroker.access import authorize_token
from sfbroker.observability import logger, traced

runtime.settings()  # a missing or malformed variable fails the init, naming it


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return authorize_token(
        APIGatewayAuthorizerRequestEvent(event), runtime.api_token_service(), runtime.audit_trail()
    )
