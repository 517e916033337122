"""`/orgs`: registration of orgs with stored credentials."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from sfbroker.http import current_principal, no_content, note_for_audit, path_username
from sfbroker.models import Org, OrgList, OrgType, RegisterOrgRequest
from sfbroker.routes import Provider
from sfbroker.services.registration import Registration, RegistrationService

Username = Annotated[str, Path(description="Salesforce username (percent-encoded)", max_length=240)]


def build_router(registrations: Provider[RegistrationService]) -> Router:
    router = Router()  # type: ignore[no-untyped-call]

    @router.post(
        "/orgs",
        tags=["orgs"],
        summary="Register an org by its SFDX auth URL",
        responses={
            201: {"description": "Registered", "content": {"application/json": {"model": Org}}},
            200: {
                "description": "The credential of a registered org was replaced",
                "content": {"application/json": {"model": Org}},
            },
        },
    )
    def register_org(body: RegisterOrgRequest) -> Response[dict[str, Any]]:
        registration = Registration(
            auth_url=body.sfdx_auth_url,
            is_dev_hub=body.is_dev_hub,
            is_default=body.is_default,
            alias=body.alias,
            allow_org_change=body.allow_org_change,
        )
        org, created = registrations().register(registration, current_principal(router))
        note_for_audit(
            router, action="org.register" if created else "org.replace", target=org.username
        )
        return Response(
            status_code=201 if created else 200,
            content_type="application/json",
            body=Org.of(org).model_dump(mode="json", by_alias=True),
        )

    @router.get("/orgs", tags=["orgs"], summary="List registered orgs")
    def list_orgs(
        org_type: Annotated[OrgType | None, Query(alias="orgType")] = None,
        is_dev_hub: Annotated[bool | None, Query(alias="isDevHub")] = None,
    ) -> OrgList:
        principal = current_principal(router)
        orgs = registrations().list(org_type, is_dev_hub)
        return OrgList(orgs=[Org.of(org) for org in orgs if principal.may_touch(org.username)])

    @router.get("/orgs/<username>", tags=["orgs"], summary="Read one registered org")
    def get_org(username: Username) -> Org:
        return Org.of(registrations().get(path_username(username)))

    @router.delete(
        "/orgs/<username>",
        tags=["orgs"],
        summary="Forget an org and its credential (409 while JIT sandboxes point at it)",
        responses={204: {"description": "Deleted"}},
    )
    def delete_org(
        username: Username,
        cascade: Annotated[
            bool,
            Query(description="Also forget the JIT sandboxes registered under this org"),
        ] = False,
    ) -> Response[Any]:
        registrations().delete(path_username(username), cascade=cascade)
        return no_content()

    return router
