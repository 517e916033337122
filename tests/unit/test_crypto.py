from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sfbroker.crypto import DataKeyCache, EnvelopeCipher, EnvelopeIntegrityError
from sfbroker.errors import DependencyUnavailable

RECORD = "ORG#admin@acme.com/META"
SECRET = "force://PlatformCLI::5AepSECRETREFRESHTOKEN@acme.my.salesforce.com"


class KmsCalls(Counter[str]):
    def __call__(self, event_name: str, **_: Any) -> None:
        self[event_name.rsplit(".", 1)[-1]] += 1


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        yield client


@pytest.fixture
def key_id(kms: Any) -> str:
    return str(kms.create_key(Description="test")["KeyMetadata"]["Arn"])


@pytest.fixture
def calls(kms: Any) -> KmsCalls:
    counter = KmsCalls()
    kms.meta.events.register("before-call.kms", counter)
    return counter


def cipher(kms: Any, key_id: str, entries: int = 16, age: float = 300) -> EnvelopeCipher:
    return EnvelopeCipher(kms, key_id, DataKeyCache(entries, age))


def test_round_trip_and_the_stored_envelope_hides_the_secret(kms: Any, key_id: str) -> None:
    envelope = cipher(kms, key_id).encrypt(RECORD, SECRET)
    assert set(envelope) == {"v", "kid", "wk", "n", "ct"}
    assert SECRET not in repr(envelope)
    assert "5AepSECRET" not in repr(envelope)
    # A cold cipher (another container) must go to KMS and still open it.
    assert cipher(kms, key_id).decrypt(RECORD, envelope) == SECRET


def test_a_tampered_ciphertext_fails(kms: Any, key_id: str) -> None:
    c = cipher(kms, key_id)
    envelope = c.encrypt(RECORD, SECRET)
    sealed = bytearray(base64.b64decode(envelope["ct"]))
    sealed[0] ^= 1
    envelope["ct"] = base64.b64encode(bytes(sealed)).decode()
    with pytest.raises(EnvelopeIntegrityError):
        c.decrypt(RECORD, envelope)


def test_an_envelope_copied_onto_another_record_fails_warm_and_cold(kms: Any, key_id: str) -> None:
    warm = cipher(kms, key_id)
    envelope = warm.encrypt(RECORD, SECRET)
    other = "ORG#evil@other.com/META"
    with pytest.raises(EnvelopeIntegrityError):
        warm.decrypt(other, envelope)  # KMS refuses the context
    with pytest.raises(EnvelopeIntegrityError):
        cipher(kms, key_id).decrypt(other, envelope)


def test_a_wrong_encryption_context_is_refused_by_kms(kms: Any, key_id: str) -> None:
    envelope = cipher(kms, key_id).encrypt(RECORD, SECRET)
    wrapped = base64.b64decode(envelope["wk"])
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=wrapped, EncryptionContext={"app": "sfbroker", "record": "x"})
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=wrapped)


@pytest.mark.parametrize(
    "broken",
    [{}, {"v": 2, "wk": "", "n": "", "ct": ""}, {"v": 1, "wk": "@@", "n": "AA==", "ct": "AA=="}],
)
def test_malformed_envelopes_are_integrity_errors(
    kms: Any, key_id: str, broken: dict[str, Any]
) -> None:
    with pytest.raises(EnvelopeIntegrityError):
        cipher(kms, key_id).decrypt(RECORD, broken)


def test_warm_cipher_reuses_data_keys_within_bounds(kms: Any, key_id: str, calls: KmsCalls) -> None:
    c = cipher(kms, key_id)
    first = c.encrypt(RECORD, SECRET)
    second = c.encrypt(RECORD, SECRET + "x")
    assert calls == {"GenerateDataKey": 1}
    assert first["n"] != second["n"]
    assert c.decrypt(RECORD, first) == SECRET
    assert c.decrypt(RECORD, second) == SECRET + "x"
    assert calls == {"GenerateDataKey": 1}
    cold = cipher(kms, key_id)
    cold.decrypt(RECORD, first)
    cold.decrypt(RECORD, second)
    assert calls == {"GenerateDataKey": 1, "Decrypt": 1}


def test_cache_is_bounded_by_entries_and_age() -> None:
    now = [0.0]
    cache = DataKeyCache(max_entries=2, max_age=10, clock=lambda: now[0])
    for record in ("a", "b", "c"):
        cache.put(record, b"k" * 32, record.encode(), for_encrypt=True)
    assert len(cache) == 2
    assert cache.for_decrypt("a", b"a") is None
    assert cache.for_decrypt("c", b"c") == b"k" * 32
    now[0] = 11
    assert cache.for_decrypt("c", b"c") is None
    assert cache.for_encrypt("b") is None


def test_a_zero_sized_cache_calls_kms_every_time(kms: Any, key_id: str, calls: KmsCalls) -> None:
    c = cipher(kms, key_id, entries=0)
    envelope = c.encrypt(RECORD, SECRET)
    c.encrypt(RECORD, SECRET)
    c.decrypt(RECORD, envelope)
    assert calls == {"GenerateDataKey": 2, "Decrypt": 1}


def test_kms_outage_is_a_dependency_error(kms: Any) -> None:
    with pytest.raises(DependencyUnavailable):
        cipher(kms, "arn:aws:kms:us-east-1:123456789012:key/missing").encrypt(RECORD, SECRET)


def test_rewrap_changes_only_the_wrapped_key_and_never_decrypts(
    kms: Any, key_id: str, calls: KmsCalls
) -> None:
    envelope = cipher(kms, key_id).encrypt(RECORD, SECRET)
    kms.rotate_key_on_demand(KeyId=key_id)
    calls.clear()
    rewrapped = cipher(kms, key_id).rewrap(RECORD, envelope)
    assert calls == {"ReEncrypt": 1}  # no Decrypt, no data key in this process
    assert rewrapped.already_current is False  # moto reports no key material ids
    new = rewrapped.envelope
    assert new["wk"] != envelope["wk"]
    assert {k: new[k] for k in ("v", "kid", "n", "ct")} == {
        k: envelope[k] for k in ("v", "kid", "n", "ct")
    }
    assert cipher(kms, key_id).decrypt(RECORD, new) == SECRET
    assert SECRET not in repr(rewrapped)


def test_rewrap_refuses_a_wrapped_key_of_another_record(kms: Any, key_id: str) -> None:
    envelope = cipher(kms, key_id).encrypt("ORG#evil@other.com/META", SECRET)
    with pytest.raises(EnvelopeIntegrityError):
        cipher(kms, key_id).rewrap(RECORD, envelope)
    with pytest.raises(EnvelopeIntegrityError):
        cipher(kms, key_id).rewrap(RECORD, {"v": 1, "wk": "%%%", "n": "", "ct": ""})


class MaterialReportingKms:
    """Answers ReEncrypt as KMS does for a symmetric key: with key material ids."""

    def __init__(self, source_material: str, destination_material: str) -> None:
        self.answer = {
            "CiphertextBlob": b"new-wrapped-key",
            "SourceKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
            "KeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
            "SourceKeyMaterialId": source_material,
            "DestinationKeyMaterialId": destination_material,
        }

    def re_encrypt(self, **_: Any) -> dict[str, Any]:
        return self.answer


@pytest.mark.parametrize(
    ("source", "destination", "current"), [("m1", "m1", True), ("m1", "m2", False)]
)
def test_rewrap_reports_a_data_key_already_under_the_current_material(
    source: str, destination: str, current: bool
) -> None:
    envelope = {"v": 1, "kid": "k", "wk": base64.b64encode(b"old").decode(), "n": "", "ct": ""}
    kms = MaterialReportingKms(source, destination)
    rewrapped = EnvelopeCipher(kms, "k", DataKeyCache(0, 0)).rewrap(RECORD, envelope)  # type: ignore[arg-type]
    assert rewrapped.already_current is current


def test_rewrap_onto_a_key_kms_cannot_use_is_a_dependency_failure(kms: Any, key_id: str) -> None:
    envelope = cipher(kms, key_id).encrypt(RECORD, SECRET)
    with pytest.raises(DependencyUnavailable):
        cipher(kms, "arn:aws:kms:us-east-1:123456789012:key/missing").rewrap(RECORD, envelope)
