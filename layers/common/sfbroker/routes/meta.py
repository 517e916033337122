"""`/health` and `/openapi.json`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from sfbroker import __version__
from sfbroker.models import Health


def build_router(document: Callable[[], dict[str, Any]]) -> Router:
    """`document` is handed in (`sfbroker.openapi`), which describes this router too."""
    router = Router()  # type: ignore[no-untyped-call]

    @router.get("/health", tags=["meta"], summary="Liveness (no authentication)")
    def health() -> Health:
        return Health(status="ok", version=__version__)

    @router.get("/openapi.json", tags=["meta"], summary="This API's OpenAPI document")
    def openapi_document() -> dict[str, Any]:
        return document()

    return router
