"""`/pools/{tag}`: scratch-org pool counts, fetch and return."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

from sfbroker.auth.principal import Scope
from sfbroker.http import current_principal, no_content, note_for_audit, path_value
from sfbroker.models import FetchPoolOrgRequest, PoolOrg, PoolStatus
from sfbroker.routes import Provider
from sfbroker.services.pools import FetchedOrg, FetchRequest, PoolService, validate_tag

Tag = Annotated[str, Path(description="Pool tag (`Pooltag__c`)", max_length=80)]
DevHubQuery = Annotated[
    str | None,
    Query(alias="devHubUsername", description="Default: the default Dev Hub", max_length=240),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A retried fetch with the same key (and caller) gets the same org",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
    ),
]


def build_router(pools: Provider[PoolService]) -> Router:
    router = Router()  # type: ignore[no-untyped-call]

    def dev_hub(requested: str | None, scope: Scope) -> str:
        """The Dev Hub of the request; the caller's org patterns must cover it as well as
        `pool:<tag>`."""
        username = pools().dev_hub_username(requested)
        current_principal(router).require(scope, username)
        return username

    @router.get("/pools/<tag>", tags=["pools"], summary="Count a pool's orgs by status")
    def pool_status(tag: Tag, dev_hub_username: DevHubQuery = None) -> PoolStatus:
        pool = validate_tag(path_value(tag))
        return PoolStatus.of(pools().counts(pool, dev_hub(dev_hub_username, "pools:read")))

    @router.post(
        "/pools/<tag>/fetch",
        tags=["pools"],
        summary="Fetch a scratch org from a pool",
        responses={
            200: {
                "description": "The org, with `sfdxAuthUrl` or (format `accessToken`) "
                "`accessToken` and `expiresAt` instead",
                "content": {"application/json": {"model": PoolOrg}},
            }
        },
    )
    def fetch_pool_org(
        tag: Tag,
        body: Annotated[FetchPoolOrgRequest | None, Body()] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[dict[str, Any]]:
        options = body or FetchPoolOrgRequest()
        pool = validate_tag(path_value(tag))
        fetched = pools().fetch(
            FetchRequest(
                tag=pool,
                dev_hub_username=dev_hub(options.dev_hub_username, "pools:fetch"),
                caller=current_principal(router).id,
                format=options.format,
                idempotency_key=idempotency_key,
            )
        )
        note_for_audit(router, target=f"pool:{pool}/{fetched.username}")
        return Response(
            status_code=200,
            content_type="application/json",
            body=pool_org_view(fetched).answer(),
        )

    @router.delete(
        "/pools/<tag>/orgs/<username>",
        tags=["pools"],
        summary="Return a fetched org (it is deleted on the Dev Hub)",
        responses={204: {"description": "Deleted"}},
    )
    def return_pool_org(
        tag: Tag,
        username: Annotated[str, Path(description="Scratch org username", max_length=240)],
    ) -> Response[Any]:
        principal = current_principal(router)
        pools().return_org(
            validate_tag(path_value(tag)),
            path_value(username),
            caller=principal.id,
            may_return_any=principal.holds("pools:admin"),
        )
        return no_content()

    return router


def pool_org_view(fetched: FetchedOrg) -> PoolOrg:
    """The API's view of a fetched org: the one place its secrets are revealed."""
    return PoolOrg(
        tag=fetched.tag,
        username=fetched.username,
        org_id=fetched.org_id,
        scratch_org_info_id=fetched.scratch_org_info_id,
        login_url=fetched.login_url,
        instance_url=fetched.instance_url,
        password=fetched.password.get_secret_value() if fetched.password else None,
        sfdx_auth_url=fetched.sfdx_auth_url.get_secret_value() if fetched.sfdx_auth_url else None,
        access_token=fetched.access_token.get_secret_value() if fetched.access_token else None,
        expires_at=fetched.expires_at,
        expiration_date=fetched.expiration_date,
    )
