"""Who may call what, and the record of it: the one place that authorizes and audits.

`AccessControl` is handed the route rules (`sfbroker.auth.rules`) and the audit trail.
Its middleware authorizes every request before its route runs (a route without a rule is
refused), records refusals, and writes the event of every audited action, settled with
the route's outcome. Powertools validates a request before any middleware runs, so the
resolver asks `refusal` first about an invalid request: a caller who may not call the
route learns that (401/403, audited), not what its body lacks.

`authorize_token` is the token API's Lambda REQUEST authorizer: a bearer API token → an
IAM policy + principal. API Gateway caches the answer per `Authorization` header value
for the authorizer TTL, for every route of the API, so a valid token is allowed on the
whole API (`<api>/<stage>/*/*`) and the middleware enforces scopes and org patterns. An
invalid token makes the authorizer fail with the exact message `Unauthorized`, which
API Gateway answers with 401 (the UNAUTHORIZED gateway response) and does not cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
    parse_api_gateway_arn,
)

from sfbroker.auth.principal import (
    ANONYMOUS,
    Principal,
    principal_from_request_context,
    token_principal_id,
)
from sfbroker.auth.rules import Access
from sfbroker.errors import BrokerError, DependencyUnavailable, Forbidden, Unauthorized
from sfbroker.http import AUDIT_NOTE, AuditNote, as_broker_error
from sfbroker.observability import count, logger
from sfbroker.services.api_tokens import ApiTokenService, TokenRejected
from sfbroker.services.audit import AuditTrail, RequestFacts

AccessRules = Mapping[tuple[str, str], Access]


class AccessControl:
    """Authorization and audit of the API's requests, as a resolver middleware."""

    def __init__(self, rules: AccessRules, trail: Callable[[], AuditTrail]) -> None:
        self._rules = rules
        self._trail = trail  # built on first use: a warm container keeps one

    def middleware(
        self, app: APIGatewayRestResolver, next_middleware: NextMiddleware
    ) -> Response[Any]:
        """Authorize the request, run its route, and record what the trail must know."""
        event = app.current_event.raw_event
        try:
            principal, rule = self._authorize(event)
        except (Forbidden, Unauthorized) as refused:
            self._record_denial(event, refused)
            raise
        if rule.action is None or principal is None:
            try:
                return next_middleware(app)
            except (Forbidden, Unauthorized) as refused:
                self._record_denial(event, refused)
                raise
        pending = self._trail().begin(
            request_facts(event),
            actor=principal.id,
            action=rule.action,
            target=rule.target_of(event.get("pathParameters") or {}),
        )
        try:
            response = next_middleware(app)
        except Exception as failure:
            error = as_broker_error(failure)
            denied = isinstance(error, Forbidden | Unauthorized)
            note = _note(app)
            try:
                pending.settle(
                    "denied" if denied else "error",
                    action="request.denied" if denied else note.action,
                    target=note.target,
                    reason=error.message if denied else error.code,
                )
            except DependencyUnavailable:
                logger.warning("audit event of a failed request not written")
            raise
        note = _note(app)
        pending.settle(
            "success" if response.status_code < 400 else "error",
            action=note.action,
            target=note.target,
        )
        return response

    def refusal(self, event: Mapping[str, Any]) -> BrokerError | None:
        """The 401/403 (already audited) of a request that never reached its route, if any."""
        try:
            self._authorize(event)
        except (Forbidden, Unauthorized) as refused:
            self._record_denial(event, refused)
            return refused
        return None

    def _authorize(self, event: Mapping[str, Any]) -> tuple[Principal | None, Access]:
        """The caller and the rule of the request's route; raises 401/403 when refused."""
        rule = self._rules.get(_route_of(event))
        if rule is None:
            logger.error("route has no access rule", extra={"route": " ".join(_route_of(event))})
            raise Forbidden("This route has no access rule")
        if rule.public:
            return None, rule
        principal = principal_from_request_context(event.get("requestContext") or {})
        if rule.scope is not None:
            principal.require(rule.scope, rule.target_of(event.get("pathParameters") or {}))
        return principal, rule

    def _record_denial(self, event: Mapping[str, Any], error: BrokerError) -> None:
        try:
            actor = principal_from_request_context(event.get("requestContext") or {}).id
        except Unauthorized:
            actor = ANONYMOUS
        rule = self._rules.get(_route_of(event))
        target = rule.target_of(event.get("pathParameters") or {}) if rule else None
        self._trail().record_denial(
            request_facts(event), actor=actor, target=target, reason=error.message
        )


def _note(app: APIGatewayRestResolver) -> AuditNote:
    note = app.context.get(AUDIT_NOTE)
    return note if isinstance(note, AuditNote) else AuditNote()


def _route_of(event: Mapping[str, Any]) -> tuple[str, str]:
    """Method and resource (`/orgs/{username}`): the route as `template.yaml` names it."""
    return str(event.get("httpMethod", "")).upper(), str(event.get("resource", ""))


def request_facts(event: Mapping[str, Any]) -> RequestFacts:
    """Request id, source IP and route (`POST /orgs/{username}/token`) of an API Gateway
    REST event (a proxy event or a REQUEST authorizer event: both carry them)."""
    context = event.get("requestContext") or {}
    return RequestFacts(
        request_id=str(context.get("requestId") or "unknown"),
        source_ip=(context.get("identity") or {}).get("sourceIp"),
        route=f"{event.get('httpMethod', '?')} {event.get('resource', '?')}",
    )


# The one error message API Gateway turns into a 401 instead of a 500.
UNAUTHORIZED = "Unauthorized"


class AuthorizerRefusal(Exception):
    """Raised out of the authorizer to answer 401 (API Gateway matches the message)."""

    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


def authorize_token(
    event: APIGatewayAuthorizerRequestEvent, tokens: ApiTokenService, trail: AuditTrail
) -> dict[str, Any]:
    """The Allow policy and principal context for a valid token; `AuthorizerRefusal` otherwise.

    A refusal is recorded in the audit trail with the token id when one was presented,
    never with the token.
    """
    try:
        token = tokens.authenticate(event.headers.get("Authorization"))
    except TokenRejected as rejected:
        count("AuthorizerDenied")  # the AuthorizerDenialsAlarm watches it
        logger.info(
            "API token rejected", extra={"reason": rejected.reason, "token_id": rejected.token_id}
        )
        trail.record_failed_authentication(
            request_facts(event.raw_event),
            reason=rejected.reason,
            claimed_token_id=rejected.token_id,
            kind=rejected.kind,
        )
        raise AuthorizerRefusal from None
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
