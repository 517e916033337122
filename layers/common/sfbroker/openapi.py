"""The OpenAPI document of the whole API, generated from every router's models."""

from __future__ import annotations

from functools import cache
from typing import Any, NoReturn

from sfbroker import __version__
from sfbroker.http import build_resolver
from sfbroker.models import ErrorBody

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


@cache
def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for all routes, with the error body of API.md on every operation.

    Validation errors answer 400 `invalid_request`, not Powertools' 422; every other
    error (401, 403, 404, 409, 422, 5xx) has the same body, documented as `default`.
    """
    # Imported here: the orgs function serves this document, and its cold start should
    # not load every other function's routes and services for it (issue 15).
    from sfbroker.routes import admin, cleanup, environments, meta, orgs, pools, sandboxes, tokens

    app = build_resolver(
        meta.build_router(openapi_document),
        orgs.build_router(_not_served),
        tokens.build_router(_not_served),
        sandboxes.build_router(_not_served),
        environments.build_router(_not_served, _not_served),
        pools.build_router(_not_served),
        cleanup.build_router(_not_served),
        admin.build_router(_not_served, _not_served, _not_served),
    )
    document: dict[str, Any] = app.get_openapi_schema(
        title="sfbroker", version=__version__
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    schemas.update(error_schema.pop("$defs", {}))
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)  # Powertools' 422 shapes: we answer 400 `Error` instead
    schemas["Error"] = error_schema
    error_content = {"application/json": {"schema": _ERROR_REF}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["400"] = {
                "description": "Invalid request (`invalid_request`, with `details`)",
                "content": error_content,
            }
            responses["default"] = {
                "description": "Any other error: status and code as in API.md",
                "content": error_content,
            }
    return document


def _not_served() -> NoReturn:
    """The services of the document's resolver: it describes routes, it never runs them."""
    raise RuntimeError("the OpenAPI resolver serves no requests")
