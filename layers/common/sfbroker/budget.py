"""One time budget per request, so every call, retry and wait ends before API Gateway does.

API Gateway gives up on an integration after 29 s. A request's budget is the smaller of
a cap below that and what the Lambda context says is left (minus a reserve for writing
the answer); Salesforce attempts, their backoff and the wait for another instance's
refresh all draw on it, so a hanging Salesforce answers 504 while the caller still
listens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

API_GATEWAY_TIMEOUT_SECONDS = 29.0
# Left for what follows the last Salesforce answer: DynamoDB writes, audit, the response.
RESERVE_SECONDS = 1.5


@dataclass(frozen=True)
class Budget:
    """A deadline on a monotonic clock."""

    deadline: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.deadline - self.clock())


@dataclass(frozen=True)
class _Request:
    started: float
    remaining_ms: int | None


_current: ContextVar[_Request | None] = ContextVar("sfbroker_request_time", default=None)


def new_budget(
    cap_seconds: float,
    remaining_ms: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
) -> Budget:
    """A budget of `cap_seconds` from `started` (now), or less when the Lambda has less left."""
    seconds = cap_seconds
    if remaining_ms is not None:
        seconds = min(seconds, remaining_ms / 1000 - RESERVE_SECONDS)
    return Budget((clock() if started is None else started) + max(0.0, seconds), clock)


@contextmanager
def request_time(remaining_ms: int | None) -> Iterator[None]:
    """Within: the request being handled started now, and its Lambda may run this long."""
    token = _current.set(_Request(time.monotonic(), remaining_ms))
    try:
        yield
    finally:
        _current.reset(token)


def current_budget(cap_seconds: float) -> Budget:
    """The budget of the request being handled; outside a request, a fresh full one."""
    request = _current.get()
    if request is None:
        return new_budget(cap_seconds)
    return new_budget(cap_seconds, request.remaining_ms, started=request.started)
