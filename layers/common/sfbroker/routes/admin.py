"""Admin: API tokens (`/api-tokens`) and the audit trail (`GET /audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from sfbroker import runtime
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
from sfbroker.services.api_tokens import NewApiToken
from sfbroker.store.api_tokens import ApiTokenRecord

router = Router()  # type: ignore[no-untyped-call]


@router.post(
    "/api-tokens",
    tags=["admin"],
    summary="Create an API token (shown once)",
    responses={
        201: {"description": "Created", "content": {"application/json": {"model": CreatedApiToken}}}
    },
)
def create_api_token(body: CreateApiTokenRequest) -> Response[dict[str, Any]]:
    record, token = runtime.api_token_service().create(
        NewApiToken(
            name=body.name,
            scopes=tuple(body.scopes),
            org_patterns=tuple(body.orgs),
            expires_in_days=body.expires_in_days,
        ),
        created_by=current_principal(router).id,
    )
    note_for_audit(target=token_principal_id(record.token_id))
    created = CreatedApiToken(
        **api_token_view(record, runtime.utc_now()).model_dump(),
        token=token.get_secret_value(),
    )
    return Response(
        status_code=201,
        content_type="application/json",
        body=created.model_dump(mode="json", by_alias=True),
    )


@router.get("/api-tokens", tags=["admin"], summary="List API tokens (never the tokens)")
def list_api_tokens() -> ApiTokenList:
    now = runtime.utc_now()
    return ApiTokenList(
        api_tokens=[api_token_view(record, now) for record in runtime.api_token_service().list()]
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
    runtime.api_token_service().revoke(path_value(id), revoked_by=current_principal(router).id)
    return no_content()


@router.get("/audit", tags=["admin"], summary="Read the audit trail, oldest first")
def read_audit(
    since: Annotated[datetime | None, Query(description="Default: one day ago")] = None,
    actor: Annotated[str | None, Query(max_length=300)] = None,
    target: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    next_token: Annotated[str | None, Query(alias="nextToken", max_length=2000)] = None,
) -> AuditPage:
    page = runtime.audit_trail().read(
        since=since, actor=actor, target=target, limit=limit, next_token=next_token
    )
    return AuditPage(
        events=[
            AuditEvent(
                at=event.at,
                actor=event.actor,
                action=event.action,
                target=event.target,
                outcome=event.outcome,
                request_id=event.request_id,
                source_ip=event.source_ip,
                route=event.route,
                reason=event.reason,
            )
            for event in page.events
        ],
        next_token=page.next_token,
    )


def api_token_view(record: ApiTokenRecord, now: datetime) -> ApiToken:
    """The API's view of a token: everything but the secret's hash."""
    return ApiToken(
        id=record.token_id,
        name=record.name,
        scopes=list(record.scopes),
        orgs=list(record.org_patterns),
        status=record.status(now),
        created_by=record.created_by,
        created_at=record.created_at,
        expires_at=record.expires_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )
