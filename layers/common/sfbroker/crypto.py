"""KMS envelope encryption bound to the record it protects.

Each record gets a data key from `GenerateDataKey` with the encryption context
`{"app": "sfbroker", "record": "<PK>/<SK>"}`; the plaintext is sealed with AES-256-GCM
using the same record key as associated data. A ciphertext copied onto another record
fails to decrypt, at KMS and at GCM. Plaintext data keys are cached in memory, bounded in
entries and age (like the Encryption SDK's caching CMM), so a warm container does not
call KMS on every request.
"""

from __future__ import annotations

import base64
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sfbroker.errors import DependencyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

ENVELOPE_VERSION = 1
APP_CONTEXT = "sfbroker"
_NONCE_BYTES = 12
# AES-GCM with random nonces is safe far beyond this; the bound keeps one key's reach small.
_MAX_ENCRYPTIONS_PER_KEY = 10_000


class EnvelopeIntegrityError(Exception):
    """An envelope does not decrypt under its record key: tampered, swapped or foreign."""


@dataclass(frozen=True)
class Rewrapped:
    """A re-wrapped envelope; `already_current`: KMS reports the data key was already
    wrapped under the key's current material (only real KMS reports key material ids)."""

    envelope: dict[str, Any] = field(repr=False)
    already_current: bool


@dataclass
class _CachedKey:
    plaintext: bytes
    wrapped: bytes
    created: float
    uses: int = 0


class DataKeyCache:
    """A bounded LRU of plaintext data keys, each usable for at most `max_age` seconds."""

    def __init__(
        self, max_entries: int, max_age: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_entries = max_entries
        self._max_age = max_age
        self._clock = clock
        self._entries: OrderedDict[tuple[str, bytes], _CachedKey] = OrderedDict()
        self._latest: OrderedDict[str, bytes] = OrderedDict()

    def for_decrypt(self, record: str, wrapped: bytes) -> bytes | None:
        """The plaintext key that unwraps `wrapped` for `record`, if cached and fresh."""
        entry = self._fresh((record, wrapped))
        return entry.plaintext if entry else None

    def for_encrypt(self, record: str) -> _CachedKey | None:
        """A fresh key recently used for `record` that may seal another message."""
        wrapped = self._latest.get(record)
        if wrapped is None:
            return None
        entry = self._fresh((record, wrapped))
        if entry is None or entry.uses >= _MAX_ENCRYPTIONS_PER_KEY:
            return None
        return entry

    def put(
        self, record: str, plaintext: bytes, wrapped: bytes, *, for_encrypt: bool
    ) -> _CachedKey:
        """Remember a data key (bounded: the least recently used entry goes first)."""
        entry = _CachedKey(plaintext, wrapped, self._clock())
        if self._max_entries == 0:
            return entry
        self._entries[(record, wrapped)] = entry
        self._entries.move_to_end((record, wrapped))
        if for_encrypt:
            self._latest[record] = wrapped
            self._latest.move_to_end(record)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        while len(self._latest) > self._max_entries:
            self._latest.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    def _fresh(self, key: tuple[str, bytes]) -> _CachedKey | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry.created > self._max_age:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry


class EnvelopeCipher:
    """Seals and opens secrets for one record key (`"<PK>/<SK>"`) with KMS envelopes."""

    def __init__(self, kms: KMSClient, key_id: str, cache: DataKeyCache) -> None:
        self._kms = kms
        self._key_id = key_id
        self._cache = cache

    def encrypt(self, record: str, plaintext: str) -> dict[str, Any]:
        """Seal `plaintext` for `record`; the result is what the table stores."""
        key = self._cache.for_encrypt(record) or self._new_data_key(record)
        key.uses += 1
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key.plaintext).encrypt(nonce, plaintext.encode(), record.encode())
        return {
            "v": ENVELOPE_VERSION,
            "kid": self._key_id,
            "wk": _b64(key.wrapped),
            "n": _b64(nonce),
            "ct": _b64(sealed),
        }

    def decrypt(self, record: str, envelope: dict[str, Any]) -> str:
        """Open an envelope stored on `record`; raise `EnvelopeIntegrityError` if it is not one."""
        wrapped, nonce, sealed = _parts(envelope)
        plaintext_key = self._cache.for_decrypt(record, wrapped) or self._unwrap(record, wrapped)
        try:
            return AESGCM(plaintext_key).decrypt(nonce, sealed, record.encode()).decode()
        except InvalidTag as error:
            raise EnvelopeIntegrityError("envelope does not belong to this record") from error

    def rewrap(self, record: str, envelope: dict[str, Any]) -> Rewrapped:
        """The envelope with its data key re-wrapped under the current material of this
        cipher's key, by KMS `ReEncrypt`: neither the data key nor the secret is ever in
        this process. Nonce and ciphertext are unchanged; `EnvelopeIntegrityError` if the
        wrapped key does not belong to `record`."""
        wrapped, _, _ = _parts(envelope)
        with _kms_errors():
            answer = self._kms.re_encrypt(
                CiphertextBlob=wrapped,
                SourceEncryptionContext=_context(record),
                DestinationKeyId=self._key_id,
                DestinationEncryptionContext=_context(record),
            )
        source_material = answer.get("SourceKeyMaterialId")
        already_current = (
            source_material is not None
            and source_material == answer.get("DestinationKeyMaterialId")
            and answer.get("SourceKeyId") == answer.get("KeyId")
        )
        return Rewrapped(
            {**envelope, "kid": self._key_id, "wk": _b64(answer["CiphertextBlob"])},
            already_current=already_current,
        )

    def _new_data_key(self, record: str) -> _CachedKey:
        try:
            answer = self._kms.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=_context(record)
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyUnavailable("The key service is unavailable") from error
        return self._cache.put(
            record, answer["Plaintext"], answer["CiphertextBlob"], for_encrypt=True
        )

    def _unwrap(self, record: str, wrapped: bytes) -> bytes:
        with _kms_errors():
            answer = self._kms.decrypt(
                CiphertextBlob=wrapped, EncryptionContext=_context(record), KeyId=self._key_id
            )
        self._cache.put(record, answer["Plaintext"], wrapped, for_encrypt=False)
        return answer["Plaintext"]


@contextmanager
def _kms_errors() -> Iterator[None]:
    """A wrapped key KMS refuses for this record is an integrity error; any other KMS
    failure is the dependency being unavailable."""
    try:
        yield
    except ClientError as error:
        if error.response["Error"]["Code"] in {
            "InvalidCiphertextException",
            "IncorrectKeyException",
        }:
            raise EnvelopeIntegrityError("data key does not belong to this record") from error
        raise DependencyUnavailable("The key service is unavailable") from error
    except BotoCoreError as error:
        raise DependencyUnavailable("The key service is unavailable") from error


def _parts(envelope: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """Wrapped key, nonce and ciphertext of an envelope of our version."""
    try:
        if int(envelope["v"]) != ENVELOPE_VERSION:
            raise EnvelopeIntegrityError("unknown envelope version")
        return (
            base64.b64decode(envelope["wk"], validate=True),
            base64.b64decode(envelope["n"], validate=True),
            base64.b64decode(envelope["ct"], validate=True),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise EnvelopeIntegrityError("malformed envelope") from error


def _context(record: str) -> dict[str, str]:
    return {"app": APP_CONTEXT, "record": record}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
