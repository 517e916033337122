"""Fault injection: make chosen endpoints fail, stall or drop the connection on demand."""

import threading
from dataclasses import asdict, dataclass
from enum import StrEnum

from local.fake_salesforce.endpoints import ANY, canonical_endpoint

DEFAULT_STALL_SECONDS = 3.0


class FaultKind(StrEnum):
    """What an injected fault does to the request it hits."""

    HTTP_500 = "http_500"  # 500 [{"errorCode": "UNKNOWN_EXCEPTION", …}]
    HTTP_503 = "http_503"  # 503 [{"errorCode": "SERVER_UNAVAILABLE", …}]
    HTTP_429 = "http_429"  # 429 [{"errorCode": "REQUEST_LIMIT_EXCEEDED", …}]
    HTML_ERROR = "html_error"  # 503 text/html: the maintenance page an edge proxy serves
    TIMEOUT = "timeout"  # sleep `seconds`, then answer normally
    # Do the work (a refresh rotates its token), then sleep `seconds` before answering:
    # the caller's read timeout loses an answer whose effect has already happened.
    LOST_ANSWER = "lost_answer"
    INVALID_GRANT = "invalid_grant"  # token endpoint: 400 invalid_grant; REST: 401
    INVALID_SESSION = "invalid_session"  # same as invalid_grant (REST-flavoured name)
    MALFORMED_JSON = "malformed_json"  # 200 with a JSON content type and a truncated body
    CONNECTION_RESET = "connection_reset"  # close the socket without answering


@dataclass
class Fault:
    """One armed fault; `remaining` None means until cleared."""

    id: int
    kind: FaultKind
    endpoint: str
    remaining: int | None
    seconds: float

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return asdict(self)


class FaultInjector:
    """Thread-safe registry of armed faults plus a global per-request delay."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._delay = 0.0

    def add(
        self,
        *,
        kind: FaultKind | str,
        endpoint: str = ANY,
        times: int | None = 1,
        seconds: float = DEFAULT_STALL_SECONDS,
    ) -> Fault:
        """Arm a fault for the next `times` requests to `endpoint` (`*` = any endpoint).

        Endpoints are the count keys (`oauth2/token`, `query`, …) or the aliases `token`,
        `userinfo`, `revoke`, `describe`, `sandboxAuth`. `seconds` is the stall of `timeout`.
        """
        fault_kind = FaultKind(kind)
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")
        with self._lock:
            fault = Fault(self._next_id, fault_kind, canonical_endpoint(endpoint), times, seconds)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def take(self, endpoint: str) -> Fault | None:
        """Consume one use of the first fault armed for `endpoint`, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (ANY, endpoint):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
            return None

    def pending(self) -> list[Fault]:
        """The faults still armed (copies)."""
        with self._lock:
            return [Fault(**asdict(f)) for f in self._faults]

    def clear(self) -> None:
        """Disarm every fault and reset the delay."""
        with self._lock:
            self._faults.clear()
            self._delay = 0.0

    @property
    def delay(self) -> float:
        """Seconds every Salesforce request waits before it is served (benchmarks)."""
        with self._lock:
            return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        with self._lock:
            self._delay = seconds
