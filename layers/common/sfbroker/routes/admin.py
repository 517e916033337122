"""Admin: API tokens (`/api-tokens`) and the audit trail (`GET /audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from sfbroker.auth.principal import token_principal_id
from sfbroker.http import current_principal, no_content, note_for_audit, path_value
from sfbroker.models import (
    ApiToken,
    ApiTokenList,
    AuditEvent,
    AuditPage,
    CreateApiTokenRequest,
    CreatedApiToken,
)
from sfbroker.routes import Provider
from sfbroker.services.api_tokens import ApiTokenService, NewApiToken
from sfbroker.services.audit import AuditTrail


def build_router(
    api_tokens: Provider[ApiTokenService],
    audit_trail: Provider[AuditTrail],
    clock: Provider[datetime],
) -> Router:
    router = Router()  # type: ignore[no-untyped-call]

    @router.post(
        "/api-tokens",
        tags=["admin"],
        summary="Create an API token (shown once)",
        responses={
            201: {
                "description": "Created",
                "content": {"application/json": {"model": CreatedApiToken}},
            }
        },
    )
    def create_api_token(body: CreateApiTokenRequest) -> Response[dict[str, Any]]:
        record, token = api_tokens().create(
            NewApiToken(
                name=body.name,
                scopes=tuple(body.scopes),
                org_patterns=tuple(body.orgs),
                expires_in_days=body.expires_in_days,
            ),
            created_by=current_principal(router).id,
        )
        note_for_audit(router, target=token_principal_id(record.token_id))
        created = CreatedApiToken(
            **ApiToken.of_token(record, clock()).model_dump(), token=token.get_secret_value()
        )
        return Response(
            status_code=201,
            content_type="application/json",
            body=created.model_dump(mode="json", by_alias=True),
        )

    @router.get("/api-tokens", tags=["admin"], summary="List API tokens (never the tokens)")
    def list_api_tokens() -> ApiTokenList:
        now = clock()
        return ApiTokenList(
            api_tokens=[ApiToken.of_token(record, now) for record in api_tokens().list()]
        )

    @router.delete(
        "/api-tokens/<id>",
        tags=["admin"],
        summary="Revoke an API token at once",
        responses={204: {"description": "Revoked (also when it already was)"}},
    )
    def revoke_api_token(
        # Named as in API.md (`/api-tokens/{id}`): the OpenAPI document shows this name.
        id: Annotated[str, Path(description="The token's id", max_length=40)],
    ) -> Response[Any]:
        api_tokens().revoke(path_value(id), revoked_by=current_principal(router).id)
        return no_content()

    @router.get("/audit", tags=["admin"], summary="Read the audit trail, oldest first")
    def read_audit(
        since: Annotated[datetime | None, Query(description="Default: one day ago")] = None,
        actor: Annotated[str | None, Query(max_length=300)] = None,
        target: Annotated[str | None, Query(max_length=300)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        next_token: Annotated[str | None, Query(alias="nextToken", max_length=2000)] = None,
    ) -> AuditPage:
        page = audit_trail().read(
            since=since, actor=actor, target=target, limit=limit, next_token=next_token
        )
        return AuditPage(
            events=[AuditEvent.of(event) for event in page.events], next_token=page.next_token
        )

    return router
