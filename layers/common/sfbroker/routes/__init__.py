"""Routes of the API, one router factory per capability; each Lambda function includes its own.

A factory receives the services its routes call, as zero-argument providers from the
composition root (`sfbroker.runtime`), so a cold start builds nothing a request does not
use. Routes answer API models (`sfbroker.models`) built from service results; they never
see a store record's type or a DynamoDB item.

They live in the layer (not in `functions/`) so that `GET /openapi.json` can describe
every route of the API from one resolver.
"""

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
Provider = Callable[[], T]
"""A service as the composition root hands it to a router: built on first call, then reused."""
