"""Re-wrap every envelope under the key's current material, while the broker serves.

After a KMS key rotation, old envelopes still open (KMS keeps every material of a key);
re-wrapping moves their data keys onto the current material, so an old material is no
longer needed by any stored record. Only the wrapped data key changes (KMS `ReEncrypt`:
nothing is ever decrypted here); a value that live traffic rewrote meanwhile is skipped,
never overwritten. The walk pages through the table: after each page the progress
carries the cursor to resume from, and re-running from any earlier cursor is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sfbroker.crypto import EnvelopeCipher, EnvelopeIntegrityError
from sfbroker.errors import DependencyUnavailable
from sfbroker.observability import logger
from sfbroker.store.sealed import SealedValue, SealedValueStore
from sfbroker.store.table import ConditionFailed


@dataclass
class ReencryptProgress:
    """Counts so far, and where to resume (None once the walk is complete).

    `seen`: sealed values found; `rewrapped`: re-wrapped and written back (in a dry run:
    would be); `current`: already under the current material (KMS says so), left as is;
    `skipped`: changed or deleted by live traffic meanwhile, left as is; `failed`: a
    wrapped key KMS refuses for its record (tampered or foreign), left as is.
    """

    dry_run: bool
    cursor: str | None = None
    seen: int = 0
    rewrapped: int = 0
    current: int = 0
    skipped: int = 0
    failed: int = 0
    complete: bool = False
    interrupted_by: str | None = None


class Reencryption:
    """One walk over every sealed value of the table."""

    def __init__(self, sealed: SealedValueStore, cipher: EnvelopeCipher, page_size: int) -> None:
        self._sealed = sealed
        self._cipher = cipher
        self._page_size = page_size

    def run(
        self,
        *,
        dry_run: bool,
        cursor: str | None,
        report: Callable[[ReencryptProgress], None],
    ) -> ReencryptProgress:
        """Walk from `cursor` (None: the start) to the end, calling `report` after each
        page. DynamoDB or KMS failing after their retries ends the walk early:
        `interrupted_by` says why and `cursor` is the start of the unfinished page."""
        progress = ReencryptProgress(dry_run=dry_run, cursor=cursor)
        while not progress.complete:
            try:
                page = self._sealed.page(progress.cursor, self._page_size)
                for sealed in page.values:
                    self._rewrap(sealed, progress)
            except DependencyUnavailable as error:
                progress.interrupted_by = error.message
                return progress
            progress.cursor = page.next_cursor
            progress.complete = page.next_cursor is None
            report(progress)
        return progress

    def _rewrap(self, sealed: SealedValue, progress: ReencryptProgress) -> None:
        progress.seen += 1
        if progress.dry_run:
            progress.rewrapped += 1
            return
        try:
            rewrapped = self._cipher.rewrap(sealed.record, sealed.envelope)
        except EnvelopeIntegrityError:
            progress.failed += 1
            logger.warning("envelope refused by KMS", extra={"record": sealed.record})
            return
        if rewrapped.already_current:
            progress.current += 1
            return
        try:
            self._sealed.replace(sealed, rewrapped.envelope)
        except ConditionFailed:
            progress.skipped += 1
            return
        progress.rewrapped += 1
