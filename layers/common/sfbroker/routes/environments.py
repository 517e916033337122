"""`/environments`: a stable name per repository for an org, its token, and its leases."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from sfbroker.http import current_principal, no_content, note_for_audit, path_value
from sfbroker.models import (
    AccessToken,
    AcquireLeaseRequest,
    CreateEnvironmentRequest,
    Environment,
    EnvironmentList,
    Lease,
    UpdateEnvironmentRequest,
)
from sfbroker.routes import Provider
from sfbroker.services.environments import EnvironmentChanges, EnvironmentService
from sfbroker.services.tokens import TokenService

Name = Annotated[str, Path(description="Environment name", max_length=80)]
RepositoryQuery = Annotated[
    str, Query(description="Repository, e.g. acme/app", min_length=1, max_length=140)
]
LeaseId = Annotated[str, Path(alias="leaseId", description="Lease id", max_length=64)]


def build_router(
    environments: Provider[EnvironmentService], tokens: Provider[TokenService]
) -> Router:
    router = Router()  # type: ignore[no-untyped-call]

    def visible(repository: str, name: str, scope: str) -> Any:
        """The environment, if the caller's org patterns cover its org."""
        environment = environments().get(repository, path_value(name))
        current_principal(router).require(scope, target=environment.username)
        note_for_audit(router, target=f"env:{environment.repository}/{environment.name}")
        return environment

    @router.post(
        "/environments",
        tags=["environments"],
        summary="Create an environment of a repository",
        responses={
            201: {"description": "Created", "content": {"application/json": {"model": Environment}}}
        },
    )
    def create_environment(body: CreateEnvironmentRequest) -> Response[dict[str, Any]]:
        current_principal(router).require("environments:write", target=body.username)
        note_for_audit(router, target=f"env:{body.repository}/{body.name}")
        environment = environments().create(
            body.repository,
            body.name,
            body.category,
            body.username,
            branch=body.branch,
            description=body.description,
        )
        return Response(
            status_code=201,
            content_type="application/json",
            body=Environment.of(environment).model_dump(mode="json", by_alias=True),
        )

    @router.get("/environments", tags=["environments"], summary="List a repository's environments")
    def list_environments(repository: RepositoryQuery) -> EnvironmentList:
        principal = current_principal(router)
        return EnvironmentList(
            environments=[
                Environment.of(environment)
                for environment in environments().in_repository(repository)
                if principal.may_touch(environment.username)
            ]
        )

    @router.get(
        "/environments/<name>",
        tags=["environments"],
        summary="Read an environment (with authenticate=true: and a token for its org)",
    )
    def get_environment(
        name: Name,
        repository: RepositoryQuery,
        authenticate: Annotated[bool, Query(description="Add a token (scope token:issue)")] = False,
        lease_id: Annotated[
            str | None, Header(alias="Lease-Id", description="The holder's lease id")
        ] = None,
    ) -> Environment:
        environment = visible(repository, name, "environments:read")
        view = Environment.of(environment)
        if not authenticate:
            return view
        current_principal(router).require("token:issue", target=environment.username)
        note_for_audit(router, action="environment.authenticate", target=environment.username)
        environments().require_holder(environment.repository, environment.name, lease_id)
        issued = tokens().issue(environment.username)
        return view.model_copy(
            update={
                "auth": AccessToken(
                    access_token=issued.access_token.get_secret_value(),
                    instance_url=issued.instance_url,
                    username=issued.username,
                    org_id=issued.org_id,
                    expires_at=issued.expires_at,
                    source=issued.source,
                )
            }
        )

    @router.patch("/environments/<name>", tags=["environments"], summary="Change an environment")
    def update_environment(
        name: Name, repository: RepositoryQuery, body: UpdateEnvironmentRequest
    ) -> Environment:
        environment = visible(repository, name, "environments:write")
        if body.username is not None:
            current_principal(router).require("environments:write", target=body.username)
        changes = EnvironmentChanges(**body.model_dump(exclude_none=True))
        return Environment.of(
            environments().update(environment.repository, environment.name, changes)
        )

    @router.delete(
        "/environments/<name>",
        tags=["environments"],
        summary="Delete an environment and its leases",
        responses={204: {"description": "Deleted"}},
    )
    def delete_environment(name: Name, repository: RepositoryQuery) -> Response[Any]:
        environment = visible(repository, name, "environments:write")
        environments().delete(environment.repository, environment.name)
        return no_content()

    @router.post(
        "/environments/<name>/leases",
        tags=["environments"],
        summary="Acquire a lease (or, with wait, queue for one)",
        responses={
            201: {
                "description": "Acquired or queued",
                "content": {"application/json": {"model": Lease}},
            }
        },
    )
    def acquire_lease(
        name: Name, repository: RepositoryQuery, body: AcquireLeaseRequest | None = None
    ) -> Response[dict[str, Any]]:
        environment = visible(repository, name, "environments:read")
        options = body or AcquireLeaseRequest()
        lease = environments().acquire(
            environment.repository, environment.name, options.ttl_seconds, wait=options.wait
        )
        return Response(
            status_code=201,
            content_type="application/json",
            body=Lease.of(lease).model_dump(mode="json", by_alias=True),
        )

    @router.get(
        "/environments/<name>/leases/<leaseId>", tags=["environments"], summary="Poll a lease"
    )
    def get_lease(name: Name, lease_id: LeaseId, repository: RepositoryQuery) -> Lease:
        environment = visible(repository, name, "environments:read")
        return Lease.of(
            environments().lease(environment.repository, environment.name, path_value(lease_id))
        )

    @router.delete(
        "/environments/<name>/leases/<leaseId>", tags=["environments"], summary="Release a lease"
    )
    def release_lease(name: Name, lease_id: LeaseId, repository: RepositoryQuery) -> Lease:
        environment = visible(repository, name, "environments:read")
        return Lease.of(
            environments().release(environment.repository, environment.name, path_value(lease_id))
        )

    return router
