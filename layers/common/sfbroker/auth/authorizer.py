"""The token API's Lambda REQUEST authorizer: a bearer API token → an IAM policy + principal.

API Gateway caches the answer per `Authorization` header value for the authorizer TTL,
for every route of the API, so a valid token is allowed on the whole API (`<api>/<stage>/*/*`)
and the handlers enforce scopes and org patterns (`sfbroker.auth.access`). An invalid
token makes the authorizer fail with the exact message `Unauthorized`, which API Gateway
answers with 401 (the UNAUTHORIZED gateway response) and does not cache.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
    parse_api_gateway_arn,
)

from sfbroker.auth.principal import ANONYMOUS, request_facts, token_principal_id
from sfbroker.observability import logger
from sfbroker.services.api_tokens import ApiTokenService, TokenRejected
from sfbroker.services.audit import AuditTrail

# The one error message API Gateway turns into a 401 instead of a 500.
UNAUTHORIZED = "Unauthorized"


class Unauthorized(Exception):
    """Raised out of the authorizer to answer 401 (API Gateway matches the message)."""

    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


def authorize(
    event: APIGatewayAuthorizerRequestEvent, tokens: ApiTokenService, trail: AuditTrail
) -> dict[str, Any]:
    """The Allow policy and principal context for a valid token; `Unauthorized` otherwise.

    A refusal is recorded in the audit trail with the token id when one was presented,
    never with the token.
    """
    try:
        token = tokens.authenticate(event.headers.get("Authorization"))
    except TokenRejected as rejected:
        logger.info(
            "API token rejected", extra={"reason": rejected.reason, "token_id": rejected.token_id}
        )
        trail.record_denial(
            request_facts(event.raw_event),
            actor=token_principal_id(rejected.token_id) if rejected.token_id else ANONYMOUS,
            target=None,
            reason=f"authorizer: {rejected.reason}",
        )
        raise Unauthorized from None
    arn = parse_api_gateway_arn(event.method_arn)
    principal_id = token_principal_id(token.token_id)
    response = APIGatewayAuthorizerResponse(
        principal_id=principal_id,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        # Authorizer context values must be strings, numbers or booleans: lists go as JSON.
        context={
            "kind": "token",
            "scopes": json.dumps(list(token.scopes)),
            "orgs": json.dumps(list(token.org_patterns)),
            "tokenId": token.token_id,
            "tokenName": token.name,
        },
        partition=arn.partition,
    )
    response.allow_all_routes()
    logger.info("API token accepted", extra={"token_id": token.token_id})
    return response.asdict()
