"""Powertools Logger, X-Ray tracing of the handlers, and business metrics."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "sfbroker")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "sfbroker")

logger = Logger(service=SERVICE)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_sdk_enabled() -> bool:
    """Whether the X-Ray SDK traces the functions' calls (the stack's `Tracing=sdk`).

    Otherwise (`lambda`, `off`: POWERTOOLS_TRACE_DISABLED=true) the SDK is not even
    imported: Lambda's active tracing records the function's segments without it.
    """
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in {"true", "1"}


def traced(handler: Handler) -> Handler:
    """The handler with an X-Ray subsegment per invocation and per AWS call, when the SDK
    is on; as it is otherwise. Neither an answer nor an exception is ever captured:
    answers carry access tokens and freshly minted API tokens.

    Only botocore is patched at init (the X-Ray SDK's default patches every library it
    knows, importing requests and more at cold start); requests is patched when the
    Salesforce session is first built (`trace_salesforce_calls`).
    """
    if not tracing_sdk_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
    return cast(
        Handler, tracer.capture_lambda_handler(handler, capture_response=False, capture_error=False)
    )


def trace_salesforce_calls() -> None:
    """Trace the Salesforce calls (requests) too, when the SDK is on."""
    if tracing_sdk_enabled():
        from aws_lambda_powertools import Tracer

        Tracer(service=SERVICE).patch(modules=("requests",))


def count(name: str, value: int = 1) -> None:
    """Emit business events (`TokenCacheHit`, `TokenRefresh`, …) as an EMF metric.

    Each metric is its own EMF document, written at once: unlike `Metrics`' shared
    buffer this is safe when several requests run in one process (the local stack).
    """
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ):
        pass
