"""The import's fast paths give exactly what the general code gives.

A million-row import reads rows through a straight-line validator, encodes records with a
precomputed encoder, seals them in batches, and hashes with precomputed HMAC states. Each
is checked here against the code it stands in for, on a realistic registry with bad rows.
"""

from __future__ import annotations

import hmac
import io
import random
from datetime import date

import pytest

from booking.registry.csvfile import RegistryFile
from booking.registry.dates import DateParseError, _parse_cached, parse_date
from booking.registry.pipeline import (
    PERSONAL_FIELDS,
    VOUCHER_TABLE,
    _fast_parser,
    _values_of,
)
from booking.registry.rows import RegistryRecord, parse_row
from scripts.gen_registry import write_registry
from tenants.crypto import (
    _INDEX_INFO,
    BLIND_INDEX_BYTES,
    RecordEncoder,
    TenantCipher,
    _derive,
    _length_prefixed,
    encode_record,
)

TODAY = date(2026, 11, 23)


def _registry(rows: int, *, english_header: bool = False) -> RegistryFile:
    out = io.StringIO(newline="")
    write_registry(
        out, rows=rows, bad_percent=5, seed=7, today=TODAY, english_header=english_header
    )
    return RegistryFile.from_text(out.getvalue(), encoding="utf-8")


@pytest.mark.parametrize("english_header", [False, True])
def test_the_fast_validator_agrees_with_parse_row_on_every_row_it_accepts(
    english_header: bool,
) -> None:
    registry = _registry(3000, english_header=english_header)
    columns = registry.header.columns
    fast = _fast_parser(columns, TODAY)
    accepted = refused = invalid = 0
    with registry:
        for line_number, cells, _problem in registry.rows():
            assert cells is not None
            raw = {name: cells[i] for i, name in enumerate(columns) if name and i < len(cells)}
            general = parse_row(raw, line_number, today=TODAY)
            values = fast(cells)
            if values is None:
                refused += 1
                invalid += isinstance(general, list)
                continue
            accepted += 1
            assert isinstance(general, RegistryRecord), (line_number, cells)
            assert values == _values_of(general)
    # The fast path takes the common row; the bad rows (5 %) all go to parse_row.
    assert accepted > 2700
    assert invalid >= 100
    assert refused - invalid < 30


@pytest.mark.parametrize(
    "cells",
    [
        # A required value missing or blank, a short row, an unreadable date, a bad phone,
        # an optional value that is only invisible characters (parse_row drops it silently).
        ["", "1", "山田太郎", "ヤマダタロウ", "19480401", "", "", "", "", "", ""],
        ["0000000001", "1", "山田太郎", " ", "19480401", "", "", "", "", "", ""],
        ["0000000001", "1", "山田太郎"],
        ["0000000001", "1", "山田太郎", "ヤマダタロウ", "1948/13/01", "", "", "", "", "", ""],
        ["0000000001", "1", "山田太郎", "ヤマダタロウ", "19480401", "", "", "", "090", "", ""],
        ["0000000001", "1", "山田太郎", "ヤマダタロウ", "19480401", "\u200b", "", "", "", "", ""],
    ],
)
def test_the_fast_validator_leaves_unusual_rows_to_parse_row(cells: list[str]) -> None:
    registry = _registry(1)
    assert len(registry.header.columns) >= 9
    assert _fast_parser(registry.header.columns, TODAY)(cells) is None


@pytest.mark.parametrize(
    "text",
    [
        "19480401",
        "1948/4/1",
        "1948-04-01",
        "1948.4.1",
        "2000/2/29",
        "1900/2/29",
        "1948/13/1",
        "1948/4/31",
        "19480431",
        "1948/4/1/2",
        "1948/4-1",
        "194/04/01",
        "1948//1",
        "0000/01/01",
        "S23.4.1",
        "昭和23年4月1日",
        "１９４８/4/1",
    ],
)
def test_ascii_dates_read_as_the_general_parser_reads_them(text: str) -> None:
    _assert_read_as_the_general_parser_reads(text)


def _era_letter_spellings() -> list[str]:
    """Era-letter dates of every era, real and impossible (year 0, past the era's end, month
    13, day 32, before the era began), in each separator and compact form, lower case,
    full width and with stray spaces."""
    spellings = []
    for letter in "MTSHRs":
        for year in (0, 1, 2, 15, 45, 64, 99):
            for month, day in ((1, 1), (1, 7), (1, 8), (2, 29), (2, 30), (12, 25), (13, 1)):
                for separator in "./-":
                    spellings.append(f"{letter}{year}{separator}{month}{separator}{day}")
                spellings.append(f"{letter}{year:02d}/{month:02d}/{day:02d}")
                spellings.append(f"{letter}{year:02d}{month:02d}{day:02d}")
    spellings += ["S23.4", "S23.4.1.1", "S23./4.1", "S.4.1", "S234.1.1", "S23.4.001", "S"]
    spellings += ["S23.4/1", "X23.4.1", "S23. 4. 1", "s23.4.1 0:00", "H1.1.8", "h01-01-08"]
    spellings += ["Ｓ２３．４．１", "昭23.4.1", "S２３/４/１", "２００６０７１２", "S230401"]
    return spellings


@pytest.mark.parametrize("text", _era_letter_spellings())
def test_era_letter_dates_read_as_the_general_parser_reads_them(text: str) -> None:
    _assert_read_as_the_general_parser_reads(text)


def _assert_read_as_the_general_parser_reads(text: str) -> None:
    """The fast path (parse_date) gives the general parser's date, or its very error."""

    def outcome(parse: object) -> object:
        try:
            return parse(text)  # type: ignore[operator]
        except DateParseError as error:
            return ("error", str(error))

    _parse_cached.cache_clear()
    assert outcome(parse_date) == outcome(_parse_cached)


def _cipher() -> tuple[TenantCipher, bytes]:
    key = random.Random(1).randbytes(32)
    return TenantCipher("132110", key), key


def test_blind_indexes_are_hmac_sha256_of_the_derived_key() -> None:
    cipher, key = _cipher()
    index_key = _derive(key, _INDEX_INFO + b":132110")
    for value in ["", "ヤマダタロウ", "09012345678", "x" * 500]:
        raw = value.encode()
        message = _length_prefixed("phone") + len(raw).to_bytes(4, "big") + raw
        expected = hmac.digest(index_key, message, "sha256")[:BLIND_INDEX_BYTES]
        assert cipher.blind_index(value, purpose="phone") == expected
    assert cipher.blind_index("a", purpose="phone") != cipher.blind_index("a", purpose="kana")


def test_a_blind_indexer_gives_the_blind_index_of_its_purpose() -> None:
    cipher, _key = _cipher()
    index_phone = cipher.blind_indexer("phone")
    for value in ["", "ヤマダタロウ", "09012345678", "x" * 500]:
        raw = value.encode()
        assert index_phone(raw) == cipher.blind_index(value, purpose="phone")
        assert index_phone(raw) == cipher.blind_index_bytes(raw, purpose="phone")
    assert cipher.blind_indexer("kana")(b"a") != index_phone(b"a")


@pytest.mark.parametrize("length", [16, 32, 64, 65, 100])
def test_a_blind_indexer_is_hmac_sha256_for_a_key_of_any_length(length: int) -> None:
    """The indexer builds HMAC from SHA-256 states itself (RFC 2104): the same digests as
    the hmac module, for keys shorter than, as long as and longer than a block."""
    cipher, _key = _cipher()
    key = bytes(range(length))
    cipher._index_key = key
    index = cipher.blind_indexer("phone")
    for value in [b"", b"x", "ヤマダタロウ".encode()]:
        message = _length_prefixed("phone") + len(value).to_bytes(4, "big") + value
        assert index(value) == hmac.digest(key, message, "sha256")[:BLIND_INDEX_BYTES]


def test_the_record_encoder_writes_encode_records_bytes() -> None:
    encoder = RecordEncoder(PERSONAL_FIELDS)
    rows = [
        ("山田太郎", "ヤマダタロウ", "1948-04-01", "1", "1600023", "新宿区西新宿2-8-1",
         "0312345678", "a@example.jp", "000123"),
        ("佐藤花子", "サトウハナコ", "1950-02-03", None, None, None, None, None, None),
        ("", "", "", "", "", "", "", "", ""),
    ]  # fmt: skip
    for values in rows:
        assert encoder.encode(values) == encode_record(
            dict(zip(PERSONAL_FIELDS, values, strict=True))
        )
    with pytest.raises(ValueError):
        encoder.encode(rows[0][:-1])
    with pytest.raises(ValueError):
        RecordEncoder(["name", "name"])


def record_values(record: RegistryRecord) -> dict[str, str | None]:
    """The row's personal fields by name, as the record sealed for a voucher holds them."""
    return {
        "name": record.name,
        "name_kana": record.name_kana,
        "birth_date": record.birth_date.isoformat(),
        "sex": record.sex.value if record.sex is not None else None,
        "postal_code": record.postal_code,
        "address": record.address,
        "phone": record.phone,
        "email": record.email,
        "address_number": record.address_number,
    }


def test_batch_sealed_records_open_as_single_ones_do_with_fresh_nonces() -> None:
    cipher, _key = _cipher()
    record = RegistryRecord(
        line_number=2,
        voucher_number="0000000001",
        name="山田太郎",
        name_kana="ヤマダタロウ",
        birth_date=date(1948, 4, 1),
    )
    payload = encode_record(record_values(record))
    sealed = cipher.seal_encoded_records(
        [payload, payload], table=VOUCHER_TABLE, row_ids=["0000000001", "0000000002"]
    )
    assert sealed[0][1:13] != sealed[1][1:13]  # each row its own nonce
    for blob, row_id in zip(sealed, ["0000000001", "0000000002"], strict=True):
        assert cipher.open_record(blob, table=VOUCHER_TABLE, row_id=row_id) == record_values(record)
    with pytest.raises(Exception):  # noqa: B017, PT011  (the row id is authenticated)
        cipher.open_record(sealed[0], table=VOUCHER_TABLE, row_id="0000000002")
    with pytest.raises(ValueError):
        cipher.seal_encoded_records([payload], table=VOUCHER_TABLE, row_ids=[])
