from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import pytest
from django.test import override_settings

from tenants import keys
from tenants.crypto import DecryptionFailed, TenantCipher, cipher_for

TENANT_A = "131016"  # Chiyoda, Tokyo
TENANT_B = "011002"  # Sapporo


@pytest.fixture
def key_a() -> bytes:
    return os.urandom(32)


@pytest.fixture
def cipher_a(key_a: bytes) -> TenantCipher:
    return TenantCipher(TENANT_A, key_a)


@pytest.fixture
def cipher_b() -> TenantCipher:
    return TenantCipher(TENANT_B, os.urandom(32))


PLACE = {"table": "booking_resident", "column": "phone", "row_id": "42"}


def test_a_field_round_trips(cipher_a: TenantCipher) -> None:
    blob = cipher_a.encrypt_field("090-1234-5678", **PLACE)

    assert b"090-1234-5678" not in blob
    assert cipher_a.decrypt_field(blob, **PLACE) == "090-1234-5678"


def test_the_same_value_encrypts_differently_each_time(cipher_a: TenantCipher) -> None:
    assert cipher_a.encrypt_field("山田太郎", **PLACE) != cipher_a.encrypt_field(
        "山田太郎", **PLACE
    )


@pytest.mark.parametrize(
    "elsewhere",
    [
        {**PLACE, "row_id": "43"},
        {**PLACE, "column": "email"},
        {**PLACE, "table": "booking_booking"},
        # Boundaries shift between parts: an ambiguous encoding would accept these.
        {"table": "booking_residentp", "column": "hone", "row_id": "42"},
        {"table": "booking_resident", "column": "phone4", "row_id": "2"},
    ],
    ids=["another-row", "another-column", "another-table", "shifted-1", "shifted-2"],
)
def test_a_ciphertext_copied_elsewhere_does_not_decrypt(
    cipher_a: TenantCipher, elsewhere: dict[str, str]
) -> None:
    blob = cipher_a.encrypt_field("090-1234-5678", **PLACE)

    with pytest.raises(DecryptionFailed):
        cipher_a.decrypt_field(blob, **elsewhere)


def test_a_ciphertext_copied_to_another_tenant_does_not_decrypt(
    cipher_a: TenantCipher, cipher_b: TenantCipher
) -> None:
    blob = cipher_a.encrypt_field("090-1234-5678", **PLACE)

    with pytest.raises(DecryptionFailed):
        cipher_b.decrypt_field(blob, **PLACE)


def test_another_tenant_code_with_the_same_key_does_not_decrypt(key_a: bytes) -> None:
    blob = TenantCipher(TENANT_A, key_a).encrypt_field("090-1234-5678", **PLACE)

    with pytest.raises(DecryptionFailed):
        TenantCipher(TENANT_B, key_a).decrypt_field(blob, **PLACE)


def test_every_tampered_byte_is_refused(cipher_a: TenantCipher) -> None:
    blob = cipher_a.encrypt_field("東京都千代田区", **PLACE)

    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionFailed):
            cipher_a.decrypt_field(bytes(tampered), **PLACE)


@pytest.mark.parametrize("length", [0, 1, 13, 28])
def test_a_truncated_ciphertext_is_refused(cipher_a: TenantCipher, length: int) -> None:
    blob = cipher_a.encrypt_field("x", **PLACE)

    with pytest.raises(DecryptionFailed):
        cipher_a.decrypt_field(blob[:length], **PLACE)


def test_the_same_value_indexes_identically_within_a_tenant(key_a: bytes) -> None:
    first = TenantCipher(TENANT_A, key_a).blind_index("09012345678", purpose="resident.phone")
    again = TenantCipher(TENANT_A, key_a).blind_index("09012345678", purpose="resident.phone")

    assert first == again
    assert len(first) == 16


def test_the_same_value_indexes_differently_in_two_tenants(
    cipher_a: TenantCipher, cipher_b: TenantCipher
) -> None:
    assert cipher_a.blind_index("09012345678", purpose="resident.phone") != cipher_b.blind_index(
        "09012345678", purpose="resident.phone"
    )


def test_two_tenants_index_apart_even_with_one_key(key_a: bytes) -> None:
    index_a = TenantCipher(TENANT_A, key_a).blind_index("ヤマダタロウ", purpose="resident.kana")
    index_b = TenantCipher(TENANT_B, key_a).blind_index("ヤマダタロウ", purpose="resident.kana")

    assert index_a != index_b


def test_the_purpose_separates_indexes(cipher_a: TenantCipher) -> None:
    assert cipher_a.blind_index("0312345678", purpose="resident.phone") != cipher_a.blind_index(
        "0312345678", purpose="resident.fax"
    )


def test_different_values_index_differently(cipher_a: TenantCipher) -> None:
    assert cipher_a.blind_index("09012345678", purpose="p") != cipher_a.blind_index(
        "09012345679", purpose="p"
    )


ROW = {
    "name": "山田 太郎",
    "kana": "ヤマダ タロウ",
    "birth_date": "1948-04-01",
    "phone": "090-1234-5678",
    "email": None,
    "address": "東京都千代田区千代田1-1 🏠",
    "empty": "",
}


def test_a_record_round_trips_with_none_and_japanese(cipher_a: TenantCipher) -> None:
    blob = cipher_a.seal_record(ROW, table="booking_resident", row_id="7")

    assert "山田".encode() not in blob
    assert cipher_a.open_record(blob, table="booking_resident", row_id="7") == ROW


def test_an_empty_record_round_trips(cipher_a: TenantCipher) -> None:
    blob = cipher_a.seal_record({}, table="t", row_id="1")

    assert cipher_a.open_record(blob, table="t", row_id="1") == {}


@pytest.mark.parametrize(
    ("table", "row_id"),
    [("booking_resident", "8"), ("booking_voucher", "7")],
    ids=["another-row", "another-table"],
)
def test_a_record_copied_elsewhere_does_not_open(
    cipher_a: TenantCipher, table: str, row_id: str
) -> None:
    blob = cipher_a.seal_record(ROW, table="booking_resident", row_id="7")

    with pytest.raises(DecryptionFailed):
        cipher_a.open_record(blob, table=table, row_id=row_id)


def test_a_record_of_another_tenant_does_not_open(
    cipher_a: TenantCipher, cipher_b: TenantCipher
) -> None:
    blob = cipher_a.seal_record(ROW, table="booking_resident", row_id="7")

    with pytest.raises(DecryptionFailed):
        cipher_b.open_record(blob, table="booking_resident", row_id="7")


def test_a_tampered_record_is_refused(cipher_a: TenantCipher) -> None:
    blob = bytearray(cipher_a.seal_record(ROW, table="t", row_id="1"))
    blob[-1] ^= 0x80

    with pytest.raises(DecryptionFailed):
        cipher_a.open_record(bytes(blob), table="t", row_id="1")


def test_a_field_is_not_accepted_as_a_record_nor_the_reverse(cipher_a: TenantCipher) -> None:
    field = cipher_a.encrypt_field("x", table="t", column="c", row_id="1")
    record = cipher_a.seal_record({"c": "x"}, table="t", row_id="1")

    with pytest.raises(DecryptionFailed):
        cipher_a.open_record(field, table="t", row_id="1")
    with pytest.raises(DecryptionFailed):
        cipher_a.decrypt_field(record, table="t", column="c", row_id="1")


def test_a_record_refuses_a_non_string_value(cipher_a: TenantCipher) -> None:
    with pytest.raises(TypeError):
        cipher_a.seal_record({"age": 77}, table="t", row_id="1")  # type: ignore[dict-item]


def test_the_cipher_does_not_show_its_keys(cipher_a: TenantCipher, key_a: bytes) -> None:
    assert key_a.hex() not in repr(cipher_a)
    assert repr(cipher_a) == f"TenantCipher(tenant_code={TENANT_A!r})"


@dataclass
class Municipality:
    code: str
    wrapped_data_key: bytes | memoryview


def test_cipher_for_unwraps_the_tenants_key_with_the_configured_provider() -> None:
    master_key = os.urandom(32)
    data_key = keys.LocalKeyProvider(master_key).generate_data_key(tenant_code=TENANT_A)
    blob = TenantCipher(TENANT_A, data_key.plaintext).encrypt_field("山田", **PLACE)
    # A BinaryField may hand the wrapped key back as a memoryview.
    tenant = Municipality(TENANT_A, memoryview(data_key.wrapped))

    keys.forget_data_key(TENANT_A)
    try:
        with override_settings(
            SESSHU_KEY_PROVIDER="local",
            SESSHU_LOCAL_MASTER_KEY=base64.b64encode(master_key).decode(),
        ):
            assert cipher_for(tenant).decrypt_field(blob, **PLACE) == "山田"
    finally:
        keys.forget_data_key(TENANT_A)


def test_cipher_for_fails_clearly_when_the_key_does_not_unwrap() -> None:
    wrapped_for_b = keys.LocalKeyProvider(os.urandom(32)).generate_data_key(tenant_code=TENANT_B)
    tenant = Municipality(TENANT_A, wrapped_for_b.wrapped)

    keys.forget_data_key(TENANT_A)
    with override_settings(
        SESSHU_KEY_PROVIDER="local",
        SESSHU_LOCAL_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
    ):
        with pytest.raises(keys.KeyUnavailable, match=TENANT_A):
            cipher_for(tenant)
