"""AWS faults for the real boto3 clients, through botocore's own event system.

A handler on a client's `before-send` event may answer a request itself instead of
sending it (what botocore's Stubber does): `AwsFault` answers the chosen operations the
way DynamoDB and KMS answer when they throttle, or fails the connection as when the
endpoint is down. botocore then does what it always does with such an answer (parse it,
retry it under the client's retry policy, raise `ClientError` / a connection error), so
the broker's own error handling is what is tested. Nothing of ours is replaced.

`CompetingWrite` is a conditional-check race made real: just before the broker's chosen
write goes out, another writer changes the same item in the real table.

`retry_without_pauses` keeps botocore's retries (every attempt is made, and counted by
`AwsFault`) but drops the pause between them: a throttled call otherwise waits its real
exponential backoff (up to 1 s + 2 s with the broker's 3 attempts), which only costs the
suite time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError
from botocore.retries.standard import ExponentialBackoff
from sfbroker.runtime import AWS_CONFIG

WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
# Every failing call of the broker's clients is tried this often: botocore reads the
# `max_attempts` of runtime.AWS_CONFIG as retries, after the first try.
AWS_ATTEMPTS: int = AWS_CONFIG.retries["max_attempts"] + 1  # type: ignore[attr-defined]


def retry_without_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode, minus its sleeps: the backoff it computes is 0 s."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda _self, _context: 0.0)


class AwsFaultKind(StrEnum):
    THROTTLED = "throttled"  # 400 ThrottlingException (KMS) / ProvisionedThroughputExceeded
    UNAVAILABLE = "unavailable"  # the endpoint cannot be reached


_THROTTLED = {
    "dynamodb": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "kms": "ThrottlingException",
}


class _Body:
    """The `raw` of an AWSResponse: what botocore reads the body from."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


@dataclass
class AwsFault:
    """Fail every call of `operations` (all when empty) of one service with `kind`.

    Register on a client with `fault.attach(client)`; `fired` counts the attempts it
    answered (botocore's retries included). `after`: let that many matching calls through
    first (a dependency that fails in the middle of a run).
    """

    service: str
    kind: AwsFaultKind
    operations: Collection[str] = ()
    after: int = 0
    fired: int = 0
    passed: int = 0
    seen: list[str] = field(default_factory=list)

    def attach(self, client: Any) -> None:
        client.meta.events.register(f"before-send.{self.service}", self)

    def detach(self, client: Any) -> None:
        client.meta.events.unregister(f"before-send.{self.service}", self)

    def __call__(self, request: AWSRequest, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        if self.operations and operation not in self.operations:
            return None
        if self.passed < self.after:
            self.passed += 1
            return None
        self.fired += 1
        self.seen.append(operation)
        if self.kind is AwsFaultKind.UNAVAILABLE:
            raise EndpointConnectionError(endpoint_url=str(request.url))
        body = json.dumps({"__type": _THROTTLED[self.service], "message": "injected"}).encode()
        headers = HTTPHeaders.from_pairs(
            [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", "fault")]
        )
        return AWSResponse(str(request.url), 400, headers, _Body(body))


@dataclass
class CompetingWrite:
    """Before the first `operation` of the broker on an item whose key matches `key`,
    run `compete()` (a real write by another writer), once."""

    operation: str
    key: dict[str, Any]
    compete: Callable[[], None]
    done: bool = False

    def attach(self, client: Any) -> None:
        client.meta.events.register(f"before-call.dynamodb.{self.operation}", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params.get("body") or b"{}")
        key = body.get("Key") or {k: body.get("Item", {}).get(k) for k in self.key}
        if not self.done and key == self.key:
            self.done = True
            self.compete()
