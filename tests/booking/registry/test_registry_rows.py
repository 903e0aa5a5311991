from __future__ import annotations

import dataclasses
import io
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking.registry.csvfile import CsvRecord, open_registry
from booking.registry.fields import FIELD_LABELS, REQUIRED_FIELDS
from booking.registry.normalize import Sex
from booking.registry.rows import (
    DuplicateVoucherFinder,
    RegistryRecord,
    RowError,
    duplicate_voucher_errors,
    find_duplicate_vouchers,
    mask_value,
    parse_record,
    parse_row,
)

TODAY = date(2026, 11, 23)


def _raw(**overrides: str) -> dict[str, str]:
    raw = {
        "voucher_number": "００１２３４５６７８",
        "address_number": "000123",
        "name": "山田　太郎",
        "name_kana": "ﾔﾏﾀﾞ　たろう",
        "birth_date": "Ｓ２３．４．１",
        "sex": "男",
        "postal_code": "〒371-0026",
        "address": "群馬県前橋市大手町１丁目１－１",
        "phone": "０２７－１２３－４５６７",
        "email": "Taro@Example.JP",
        "dose": "3回目",
    }
    raw.update(overrides)
    return raw


def _errors(raw: dict[str, str], line_number: int = 7) -> list[RowError]:
    result = parse_row(raw, line_number, today=TODAY)
    assert isinstance(result, list), result
    return result


def test_a_good_row_becomes_a_normalised_record() -> None:
    record = parse_row(_raw(), 7, today=TODAY)
    assert record == RegistryRecord(
        line_number=7,
        voucher_number="0012345678",
        name="山田 太郎",
        name_kana="ヤマダ タロウ",
        birth_date=date(1948, 4, 1),
        address_number="000123",
        sex=Sex.MALE,
        postal_code="3710026",
        address="群馬県前橋市大手町1丁目1-1",
        phone="0271234567",
        email="Taro@example.jp",
        dose=3,
    )


def test_a_record_is_frozen_and_slotted() -> None:
    record = parse_row(_raw(), 2, today=TODAY)
    assert isinstance(record, RegistryRecord)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "別人"  # type: ignore[misc]
    assert not hasattr(record, "__dict__")


def test_optional_fields_may_be_blank_or_absent() -> None:
    raw = {
        "voucher_number": "0012345678",
        "name": "山田太郎",
        "name_kana": "ヤマダタロウ",
        "birth_date": "1948-04-01",
        "phone": "　",
        "email": "",
        "sex": "\u200b",
    }
    record = parse_row(raw, 2, today=TODAY)
    assert isinstance(record, RegistryRecord)
    assert (record.phone, record.email, record.sex, record.address, record.dose) == (
        None,
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_a_missing_required_field_is_an_error_in_its_column(field: str) -> None:
    for blank in ("", "  ", "　"):
        errors = _errors(_raw(**{field: blank}))
        assert [(error.column, error.value) for error in errors] == [(FIELD_LABELS[field], "")]
        assert "入力されていません" in errors[0].message
    raw = _raw()
    del raw[field]
    assert _errors(raw)[0].column == FIELD_LABELS[field]


def test_every_error_of_a_row_is_reported_in_column_order() -> None:
    errors = _errors(
        _raw(
            voucher_number="012345678",
            name_kana="山田",
            birth_date="平成32年1月1日",
            postal_code="371-002",
            phone="090-1234-567",
            email="taro@",
            sex="3",
            dose="10",
            address_number="A1",
        ),
        line_number=12,
    )
    assert [error.column for error in errors] == [
        "接種券番号",
        "氏名カナ",
        "生年月日",
        "宛名番号",
        "性別",
        "郵便番号",
        "電話番号",
        "メールアドレス",
        "接種回数",
    ]
    assert {error.line_number for error in errors} == {12}
    by_column = {error.column: error for error in errors}
    assert by_column["生年月日"].message == "平成の年が範囲を超えています（平成は31年4月30日まで）"
    assert "9桁" in by_column["接種券番号"].message


def test_error_values_are_masked() -> None:
    errors = _errors(_raw(voucher_number="012345678", name_kana="山田花子", phone="090-1234-567"))
    by_column = {error.column: error.value for error in errors}
    assert by_column["接種券番号"] == "＊＊＊＊＊＊＊78"
    assert by_column["氏名カナ"] == "山＊＊＊"
    assert by_column["電話番号"] == "0＊＊＊＊＊＊＊＊＊＊＊"


def test_a_birth_date_of_today_is_accepted_and_tomorrow_refused() -> None:
    assert isinstance(parse_row(_raw(birth_date="2026-11-23"), 2, today=TODAY), RegistryRecord)
    errors = _errors(_raw(birth_date="R8.11.24"))
    assert errors[0].column == "生年月日"
    assert "未来" in errors[0].message


def test_a_record_the_reader_could_not_split_is_a_whole_row_error() -> None:
    result = parse_record(CsvRecord(9, {}, "列の数が見出しより多くなっています"), today=TODAY)
    assert result == [RowError(9, None, "", "列の数が見出しより多くなっています")]


def test_parse_record_passes_values_and_line_through() -> None:
    result = parse_record(CsvRecord(5, _raw()), today=TODAY)
    assert isinstance(result, RegistryRecord)
    assert result.line_number == 5


# --- masking -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "keep_last", "expected"),
    [
        ("山田太郎", 0, "山＊＊＊"),
        ("山田", 0, "山＊"),
        ("山", 0, "＊"),
        ("", 0, ""),
        ("　山田　", 0, "山＊"),
        ("0012345678", 2, "＊＊＊＊＊＊＊＊78"),
        ("１２３", 2, "＊23"),
        ("12", 2, "＊2"),
        ("1", 2, "＊"),
        ("山" * 30, 0, "山" + "＊" * 19 + "…（30文字）"),
        ("1" * 40, 2, "＊" * 20 + "…11（40文字）"),
    ],
)
def test_mask_value_shows_at_most_the_first_character_and_the_length(
    value: str, keep_last: int, expected: str
) -> None:
    assert mask_value(value, keep_last=keep_last) == expected


@given(value=st.text(min_size=1, max_size=50), keep_last=st.sampled_from([0, 2]))
def test_a_masked_value_never_shows_more_than_one_or_two_characters(
    value: str, keep_last: int
) -> None:
    masked = mask_value(value, keep_last=keep_last)
    shown = masked.replace("＊", "").split("…")[0].split("（")[0]
    assert len(shown) <= max(1, keep_last)


@given(
    field=st.sampled_from(sorted(FIELD_LABELS)),
    value=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=3, max_size=30),
)
def test_no_row_error_carries_the_full_value(field: str, value: str) -> None:
    result = parse_row(_raw(**{field: value}), 3, today=TODAY)
    if isinstance(result, RegistryRecord):
        return
    for error in result:
        visible = error.value.replace("＊", "")
        assert len(visible.split("…")[0].split("（")[0]) <= 2


# --- duplicate voucher numbers -------------------------------------------------------------


def test_duplicate_vouchers_are_found_with_all_their_lines() -> None:
    finder = DuplicateVoucherFinder()
    for voucher, line in [
        ("0000000001", 2),
        ("0000000002", 3),
        ("０００００００００１", 4),  # full width: the same number
        ("0000000003", 5),
        ("0000000002", 6),
        ("0000000002", 9),
        ("000000001", 10),  # 9 digits: a parse error, not a duplicate
        ("000000001", 11),
    ]:
        finder.add(voucher, line)
    assert len(finder) == 6
    assert finder.duplicates() == {"0000000001": [2, 4], "0000000002": [3, 6, 9]}


def test_duplicate_errors_mark_every_occurrence_by_line() -> None:
    errors = duplicate_voucher_errors({"0012345678": [40, 3], "0000000009": [7, 8]})
    assert [error.line_number for error in errors] == [3, 7, 8, 40]
    assert {error.column for error in errors} == {"接種券番号"}
    first = errors[0]
    assert first.value == "＊＊＊＊＊＊＊＊78"
    assert first.message == "接種券番号がファイル内で重複しています（40行目、3行目）"


def test_a_voucher_repeated_many_times_lists_a_few_lines() -> None:
    errors = duplicate_voucher_errors({"0012345678": list(range(2, 12))})
    assert len(errors) == 10
    assert errors[0].message.endswith("ほか5行）")


def test_find_duplicate_vouchers_reads_pairs() -> None:
    pairs = [(f"{number:010d}", number + 2) for number in range(50_000)]
    pairs.append(("0000049999", 70_000))
    assert find_duplicate_vouchers(pairs) == {"0000049999": [50_001, 70_000]}


def test_voucher_numbers_keep_leading_zeros_in_duplicates() -> None:
    assert find_duplicate_vouchers([("0000000000", 2), ("0000000000", 3)]) == {"0000000000": [2, 3]}
    assert find_duplicate_vouchers([("9999999999", 2), ("9999999999", 3)]) == {"9999999999": [2, 3]}


def test_a_line_number_beyond_the_packing_is_refused() -> None:
    finder = DuplicateVoucherFinder()
    with pytest.raises(ValueError, match="line number"):
        finder.add("0000000001", 2**29)
    with pytest.raises(ValueError, match="line number"):
        finder.add("0000000001", 0)


@given(rows=st.lists(st.tuples(st.integers(0, 10**10 - 1), st.integers(1, 2**29 - 1)), max_size=60))
def test_duplicates_match_a_plain_dictionary(rows: list[tuple[int, int]]) -> None:
    expected: dict[str, list[int]] = {}
    for voucher, line in rows:
        expected.setdefault(f"{voucher:010d}", []).append(line)
    expected = {key: sorted(lines) for key, lines in expected.items() if len(lines) > 1}
    assert find_duplicate_vouchers([(f"{v:010d}", line) for v, line in rows]) == expected


# --- a whole file --------------------------------------------------------------------------


def test_a_file_parses_row_by_row_with_duplicates_in_a_second_pass() -> None:
    content = "\r\n".join(
        [
            "接種券番号,氏名,氏名カナ,生年月日,電話番号",
            "0000000001,山田　太郎,ヤマダ　タロウ,昭和23年4月1日,027-123-4567",
            '0000000002,"佐藤,花子",さとう はなこ,S30.1.2,',
            "000000003,鈴木一郎,スズキ イチロウ,1950-01-01,",
            "0000000001,田中次郎,タナカ ジロウ,H1.1.8,090-1234-5678",
            "0000000005,高橋,タカハシ,昭和64年1月8日,",
        ]
    ).encode("cp932")

    # Pass 1: voucher numbers only.
    finder = DuplicateVoucherFinder()
    with open_registry(io.BytesIO(content)) as registry:
        for record in registry:
            finder.add(record.values.get("voucher_number", ""), record.line_number)
    duplicated_lines = {line for lines in finder.duplicates().values() for line in lines}

    # Pass 2: parse and import.
    imported: list[RegistryRecord] = []
    errors: list[RowError] = []
    with open_registry(io.BytesIO(content)) as registry:
        for record in registry:
            result = parse_record(record, today=TODAY)
            if isinstance(result, list):
                errors.extend(result)
            elif result.line_number in duplicated_lines:
                continue
            else:
                imported.append(result)
    errors.extend(finder.errors())
    errors.sort(key=lambda error: error.line_number)

    assert [record.voucher_number for record in imported] == ["0000000002"]
    assert imported[0].name == "佐藤,花子"
    assert imported[0].name_kana == "サトウ ハナコ"
    assert [(error.line_number, error.column) for error in errors] == [
        (2, "接種券番号"),
        (4, "接種券番号"),
        (5, "接種券番号"),
        (6, "生年月日"),
    ]
