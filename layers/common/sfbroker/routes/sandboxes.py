"""`/sandboxes`: JIT sandbox registration and authentication through the production org."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from sfbroker.http import current_principal, note_for_audit, path_value
from sfbroker.models import Org, RegisterSandboxRequest, SandboxAuthRequest, SandboxToken
from sfbroker.routes import Provider
from sfbroker.services.jit import JitService, default_username


def build_router(jit: Provider[JitService]) -> Router:
    router = Router()  # type: ignore[no-untyped-call]

    @router.post(
        "/sandboxes",
        tags=["sandboxes"],
        summary="Register a JIT sandbox of a registered production org (no credential stored)",
        responses={
            201: {"description": "Registered", "content": {"application/json": {"model": Org}}}
        },
    )
    def register_sandbox(body: RegisterSandboxRequest) -> Response[dict[str, Any]]:
        username = body.username or default_username(body.production_username, body.sandbox_name)
        principal = current_principal(router)
        # The caller's org patterns must cover the sandbox and the org it authenticates through.
        principal.require("orgs:write", target=body.production_username)
        principal.require("orgs:write", target=username)
        note_for_audit(router, target=username)
        org = jit().register(body.sandbox_name, body.production_username, username)
        return Response(
            status_code=201,
            content_type="application/json",
            body=Org.of(org).model_dump(mode="json", by_alias=True),
        )

    @router.post(
        "/sandboxes/<sandboxName>/auth",
        tags=["sandboxes"],
        summary="Authenticate into a JIT sandbox through its production org",
        responses={
            200: {
                "description": "A sandbox token (`sfdxAuthUrl` only with that format)",
                "content": {"application/json": {"model": SandboxToken}},
            }
        },
    )
    def authenticate_sandbox(
        sandbox_name: Annotated[
            str, Path(alias="sandboxName", description="Salesforce sandbox name", max_length=10)
        ],
        body: SandboxAuthRequest,
    ) -> Response[dict[str, Any]]:
        principal = current_principal(router)
        principal.require("sandboxes:auth", target=body.production_username)
        with_auth_url = body.format == "sfdxAuthUrl"
        if with_auth_url:
            principal.require("sandboxes:auth-url")
        org = jit().registration(path_value(sandbox_name), body.production_username)
        principal.require("sandboxes:auth", target=org.username)
        note_for_audit(router, target=org.username)
        auth = jit().authenticate(
            org,
            min_validity_seconds=body.min_validity_seconds,
            force_refresh=body.force_refresh,
            with_auth_url=with_auth_url,
        )
        token = auth.token
        answer = SandboxToken(
            sandbox_name=auth.sandbox_name,
            username=token.username,
            access_token=token.access_token.get_secret_value(),
            instance_url=token.instance_url,
            login_url=auth.login_url,
            org_id=token.org_id,
            expires_at=token.expires_at,
            production_username=auth.production_username,
            source=token.source,
            sfdx_auth_url=auth.sfdx_auth_url.get_secret_value() if auth.sfdx_auth_url else None,
        )
        return Response(
            status_code=200,
            content_type="application/json",
            body=answer.model_dump(mode="json", by_alias=True, exclude_none=True),
        )

    return router
