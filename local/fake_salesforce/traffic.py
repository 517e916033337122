"""Request counting for tests: how often each endpoint was called, and in what order."""

import threading
from collections import Counter
from typing import NamedTuple


class RequestRecord(NamedTuple):
    """One request as logged: no headers, no bodies, so no secrets."""

    method: str
    path: str
    grant_type: str | None


class TrafficLog:
    """Thread-safe counts per endpoint and an ordered request log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._requests: list[RequestRecord] = []

    def record(self, endpoint: str, method: str, path: str, grant_type: str | None) -> None:
        """Count one request to `endpoint`."""
        with self._lock:
            self._counts[endpoint] += 1
            self._requests.append(RequestRecord(method, path, grant_type))

    @property
    def counts(self) -> Counter[str]:
        """A snapshot of the counts (a Counter: absent endpoints read as 0)."""
        with self._lock:
            return Counter(self._counts)

    @property
    def requests_log(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget all counts and logged requests."""
        with self._lock:
            self._counts.clear()
            self._requests.clear()
