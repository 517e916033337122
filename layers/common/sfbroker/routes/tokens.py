"""`POST /orgs/{username}/token`: short-lived access tokens."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from sfbroker.http import path_username
from sfbroker.models import AccessToken, IssueTokenRequest
from sfbroker.routes import Provider
from sfbroker.services.tokens import TokenService


def build_router(tokens: Provider[TokenService]) -> Router:
    router = Router()  # type: ignore[no-untyped-call]

    @router.post("/orgs/<username>/token", tags=["tokens"], summary="Issue an access token")
    def issue_token(
        username: Annotated[str, Path(description="Salesforce username", max_length=240)],
        body: Annotated[IssueTokenRequest | None, Body()] = None,
    ) -> AccessToken:
        options = body or IssueTokenRequest()
        issued = tokens().issue(
            path_username(username),
            min_validity_seconds=options.min_validity_seconds,
            force_refresh=options.force_refresh,
        )
        return AccessToken(
            access_token=issued.access_token.get_secret_value(),
            instance_url=issued.instance_url,
            username=issued.username,
            org_id=issued.org_id,
            expires_at=issued.expires_at,
            source=issued.source,
            force_refresh_limited=issued.force_refresh_limited,
        )

    return router
