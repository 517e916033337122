"""Powertools Logger and Tracer, one of each per container, and business metrics."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "sfbroker")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "sfbroker")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


def count(name: str) -> None:
    """Emit one business event (`TokenCacheHit`, `TokenRefresh`, …) as an EMF metric.

    Each metric is its own EMF document, written at once: unlike `Metrics`' shared
    buffer this is safe when several requests run in one process (the local stack).
    """
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ):
        pass
