"""The OpenAPI document of the whole API, generated from every router's models."""

from __future__ import annotations

from functools import cache
from typing import Any

from sfbroker import __version__
from sfbroker.http import build_resolver
from sfbroker.routes import admin, meta, orgs, tokens


@cache
def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for all routes (validation errors answer 400, not Powertools' 422)."""
    app = build_resolver(meta.router, orgs.router, tokens.router, admin.router)
    document: dict[str, Any] = app.get_openapi_schema(
        title="sfbroker", version=__version__
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses["400"] = {"description": "Invalid request (body `invalid_request`)"}
    return document
