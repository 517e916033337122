"""`POST /pools/{tag}/cleanup`: the scheduled cleanup, on demand (dry run by default)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from sfbroker.http import current_principal, path_value
from sfbroker.models import CleanupReport, CleanupRequest
from sfbroker.routes import Provider
from sfbroker.services.cleanup import PoolCleanup
from sfbroker.services.pools import validate_tag


def build_router(cleanup: Provider[PoolCleanup]) -> Router:
    router = Router()  # type: ignore[no-untyped-call]

    @router.post(
        "/pools/<tag>/cleanup", tags=["pools"], summary="Clean a pool (dry run by default)"
    )
    def clean_pool(
        tag: Annotated[str, Path(description="Pool tag (`Pooltag__c`)", max_length=80)],
        body: Annotated[CleanupRequest | None, Body()] = None,
    ) -> CleanupReport:
        options = body or CleanupRequest()
        pool = validate_tag(path_value(tag))
        service = cleanup()
        dev_hub = service.dev_hub_username(options.dev_hub_username)
        # The caller's org patterns must cover the Dev Hub as well as `pool:<tag>`.
        current_principal(router).require("pools:admin", dev_hub)
        report = service.run(
            dev_hub, pool, dry_run=options.dry_run, max_deletions=options.max_deletions
        )
        return CleanupReport.of(report)

    return router
