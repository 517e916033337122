"""The audit trail: who did what to which target, with what outcome — never a secret.

An audited action's event is written optimistically as a success while the action runs
(`begin`), on a background thread, so a token issuance pays no sequential write; when
the action ends, `settle` joins that write and rewrites the same event (same key) only
if the outcome or details turned out different. An action whose event cannot be written
fails with `DependencyUnavailable`: no credential leaves without its record.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from itertools import islice

from sfbroker.auth.principal import ANONYMOUS
from sfbroker.errors import DependencyUnavailable, InvalidRequest
from sfbroker.observability import logger
from sfbroker.store.audit import AuditRecord, AuditStore, Outcome, audit_time

DEFAULT_LOOKBACK = timedelta(days=1)
# Failed authentications of one kind recorded as events per minute; the rest are counted.
REFUSALS_RECORDED_PER_MINUTE = 3


@dataclass(frozen=True)
class RequestFacts:
    """What identifies a request in the audit trail: its id, origin and route."""

    request_id: str
    source_ip: str | None
    route: str | None


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditRecord]
    next_token: str | None


class PendingAudit:
    """An audited action's event, written optimistically as a success and settled at the end."""

    def __init__(self, trail: AuditTrail, record: AuditRecord, written: Future[None]) -> None:
        self._trail = trail
        self._record = record
        self._written = written
        self._settled = False

    @property
    def request_id(self) -> str:
        return self._record.request_id

    def settle(
        self,
        outcome: Outcome,
        *,
        action: str | None = None,
        target: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Wait for the optimistic write; rewrite the event if the final one differs.

        Raises `DependencyUnavailable` when the event could not be written. Settling twice
        does nothing.
        """
        if self._settled:
            return
        self._settled = True
        final = replace(
            self._record,
            outcome=outcome,
            action=action or self._record.action,
            target=target if target is not None else self._record.target,
            reason=reason,
        )
        try:
            self._written.result()
        except DependencyUnavailable:
            if final.outcome == "success":
                raise
        else:
            if final == self._record:
                return
        self._trail.store.put(final)


class AuditTrail:
    """Records and reads audit events."""

    def __init__(
        self,
        store: AuditStore,
        clock: Callable[[], datetime],
        retention: timedelta,
        executor: Executor,
    ) -> None:
        self.store = store
        self._clock = clock
        self._retention = retention
        self._executor = executor

    def record(
        self,
        request: RequestFacts,
        *,
        actor: str,
        action: str,
        target: str | None,
        outcome: Outcome,
        reason: str | None = None,
        claimed_token_id: str | None = None,
    ) -> None:
        """Write one event now; `DependencyUnavailable` if it cannot be written."""
        event = self._event(
            request, actor=actor, action=action, target=target, outcome=outcome, reason=reason
        )
        self.store.put(replace(event, claimed_token_id=claimed_token_id))

    def record_denial(
        self,
        request: RequestFacts,
        *,
        actor: str,
        target: str | None,
        reason: str,
        claimed_token_id: str | None = None,
    ) -> None:
        """Write a `request.denied` event; a failure is logged, never raised (the caller is
        being turned away either way)."""
        try:
            self.record(
                request,
                actor=actor,
                action="request.denied",
                target=target,
                outcome="denied",
                reason=reason,
                claimed_token_id=claimed_token_id,
            )
        except DependencyUnavailable:
            logger.warning("audit event of a denied request not written")

    def record_failed_authentication(
        self, request: RequestFacts, *, reason: str, claimed_token_id: str | None, kind: str
    ) -> None:
        """A refused bearer token: by nobody (`anonymous`), naming the id it claimed.

        Every refusal is counted per minute and `kind`; only the first few of a kind each
        minute become events, so a flood of junk headers cannot fill the audit table.
        Failures to write are logged, never raised (the caller is turned away either way).
        """
        now = self._clock()
        try:
            seen = self.store.count_refusal(now, kind, now + self._retention)
        except DependencyUnavailable:
            logger.warning("failed authentication not counted")
            return
        if seen > REFUSALS_RECORDED_PER_MINUTE:
            return
        if seen == REFUSALS_RECORDED_PER_MINUTE:
            logger.info(
                "further failed authentications this minute are counted only", extra={"kind": kind}
            )
        self.record_denial(
            request,
            actor=ANONYMOUS,
            target=None,
            reason=f"authorizer: {reason}",
            claimed_token_id=claimed_token_id,
        )

    def begin(
        self, request: RequestFacts, *, actor: str, action: str, target: str | None
    ) -> PendingAudit:
        """Start writing the action's event (as a success) in the background."""
        record = self._event(request, actor=actor, action=action, target=target, outcome="success")
        return PendingAudit(self, record, self._executor.submit(self.store.put, record))

    def read(
        self,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        target: str | None = None,
        limit: int = 100,
        next_token: str | None = None,
    ) -> AuditPage:
        """Events from `since` (default: the last day) on, oldest first, `limit` per page.

        `next_token` continues a previous page; pass the same filters with it.
        """
        now = self._clock()
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # a time without zone is read as UTC
        oldest = now - self._retention
        start = max(since or now - DEFAULT_LOOKBACK, oldest)
        day, after = start.astimezone(UTC).date(), audit_time(start)
        today = now.astimezone(UTC).date()
        if next_token is not None:
            # Only a position inside the retention window: a forged one must not make
            # the read walk day by day from year 1.
            day, after = _decode_position(next_token)
            if not oldest.astimezone(UTC).date() <= day <= today:
                raise _invalid_next_token()
            if not after.startswith(day.isoformat()):
                raise _invalid_next_token()
        matching = self._events(day, after, until=today, actor=actor, target=target)
        events = list(islice(matching, limit + 1))
        if len(events) <= limit:
            return AuditPage(events=events, next_token=None)
        last = events[limit - 1]
        return AuditPage(events=events[:limit], next_token=_encode_position(last))

    def _events(
        self, day: date, after: str, *, until: date, actor: str | None, target: str | None
    ) -> Iterator[AuditRecord]:
        while day <= until:
            yield from self.store.day(day, after=after, actor=actor, target=target)
            day += timedelta(days=1)
            after = day.isoformat()  # sorts before every key of that day

    def _event(
        self,
        request: RequestFacts,
        *,
        actor: str,
        action: str,
        target: str | None,
        outcome: Outcome,
        reason: str | None = None,
    ) -> AuditRecord:
        at = self._clock()
        return AuditRecord(
            at=at,
            request_id=request.request_id,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            source_ip=request.source_ip,
            route=request.route,
            reason=reason,
            expires_at=at + self._retention,
        )


def _encode_position(last: AuditRecord) -> str:
    position = {"d": last.at.astimezone(UTC).date().isoformat(), "k": last.sort_key}
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _decode_position(token: str) -> tuple[date, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
        return date.fromisoformat(position["d"]), str(position["k"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _invalid_next_token() from None


def _invalid_next_token() -> InvalidRequest:
    return InvalidRequest(
        "nextToken is not one this API returned",
        details=[{"field": "nextToken", "message": "not a valid page token"}],
    )
