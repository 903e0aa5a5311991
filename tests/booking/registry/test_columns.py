"""The column-at-a-time validator gives exactly what the row validator gives, or sends the row
back to it.

``ColumnParser.values`` decides most rows of a chunk at once; for every row it decides, the
values must be those of ``_fast_parser`` (itself held to ``parse_row`` in
test_registry_fast_paths.py), and a row the row validator refuses must never be decided.
"""

from __future__ import annotations

import io
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.registry.columns import ColumnParser
from booking.registry.csvfile import RegistryFile
from booking.registry.fields import FIELD_LABELS
from booking.registry.pipeline import PERSONAL_FIELDS, _fast_parser
from scripts.gen_registry import write_registry
from tenants.crypto import RecordEncoder

TODAY = date(2026, 11, 23)
COLUMNS = tuple(FIELD_LABELS)  # every column, in the order of the canonical header


def _agree(columns: tuple[str | None, ...], rows: list[list[str]]) -> int:
    """Assert the two validators agree on every row; the number of rows decided by columns."""
    fast = _fast_parser(columns, TODAY)
    decided = ColumnParser(columns, TODAY).values(rows)
    assert len(decided) == len(rows)
    for cells, values in zip(rows, decided, strict=True):
        if values is not None:
            assert values == fast(cells), cells
    return sum(values is not None for values in decided)


def _registry_rows(count: int, *, english_header: bool = False) -> tuple[tuple, list[list[str]]]:
    out = io.StringIO(newline="")
    write_registry(
        out, rows=count, bad_percent=5, seed=11, today=TODAY, english_header=english_header
    )
    registry = RegistryFile.from_text(out.getvalue(), encoding="utf-8")
    with registry:
        rows = [cells for _line, cells, _problem in registry.rows() if cells is not None]
    return registry.header.columns, rows


@pytest.mark.parametrize("english_header", [False, True])
def test_a_realistic_registry_is_decided_by_columns_but_for_its_bad_rows(
    english_header: bool,
) -> None:
    columns, rows = _registry_rows(3000, english_header=english_header)
    fast = _fast_parser(columns, TODAY)
    decided = _agree(columns, rows)
    valid = sum(fast(cells) is not None for cells in rows)
    # Mixed widths, hiragana and half-width kana, 〒, "3回目": all common, all decided here;
    # only the bad rows (5 %) and the odd row the patterns do not know go row by row.
    assert decided >= valid - 15
    assert decided > 2700


ROW = [
    "0012345678",
    "000123",
    "山田　太郎",
    "ヤマダ　タロウ",
    "1948/4/1",
    "1",
    "160-0023",
    "東京都新宿区西新宿２－８－１",
    "03-1234-5678",
    "taro@example.jp",
    "1",
]


@pytest.mark.parametrize(
    ("column", "value", "decided"),
    [
        ("name_kana", "やまだ たろう", True),  # hiragana: converted, as normalize_kana does
        ("name_kana", "ﾔﾏﾀﾞ ﾀﾛｳ", True),  # half-width, with a voiced mark to compose
        ("name_kana", "ユ-キ", True),  # a hyphen after kana is ー
        ("name_kana", "Yamada", False),
        ("name", "  山田\u3000\u3000太郎 ", True),
        ("name", "山\u200b田", True),  # invisible characters removed, as normalize_name does
        ("name", "\ufa19田", False),  # a compatibility ideograph, kept as written
        ("name", "山田\ue000", False),  # 外字
        ("name", "x" * 101, False),
        ("address", "東京都\n新宿区 ２ー３", True),  # a line break in a quoted cell
        ("address", "", True),
        ("address", "\u200b", False),
        ("phone", "０９０－１２３４－５６７８", True),
        ("phone", "(03) 1234 5678", True),
        ("phone", "+81-3-1234-5678", False),
        ("phone", "090-1234-567", False),  # a mobile number has 11 digits
        ("phone", "050-1234-5678", True),
        ("phone", "0120-123-456", True),
        ("phone", "0120-123-4567", False),
        ("phone", "0312345678 9", False),
        ("phone", "", True),
        ("postal_code", "〒１６０－００２３", True),
        ("postal_code", "〒〒1600023", False),
        ("sex", "男性", True),
        ("sex", "ｍ", True),
        ("sex", "X", False),
        ("dose", "第２回目", True),
        ("dose", "10", False),
        ("birth_date", "昭和23年4月1日", True),
        ("birth_date", "平成32年1月1日", False),
        ("birth_date", "1948-04-01", True),
        ("birth_date", "19480401", True),
        ("birth_date", "19480230", False),
        ("birth_date", "1868-01-24", False),  # before Meiji 1
        ("birth_date", "2099-01-01", False),  # in the future
        ("birth_date", "1948-W01-1", False),
        ("birth_date", "1948年4月1日", True),
        ("birth_date", "1948/4/31", False),
        ("birth_date", "H31.4.30", True),
        ("birth_date", "H31.5.1", False),  # Reiwa from 1 May 2019
        ("birth_date", "R1.5.1", True),
        ("birth_date", "R1.4.30", False),
        ("birth_date", "S64.1.7", True),
        ("birth_date", "S64.1.8", False),
        ("birth_date", "平成元年1月8日", True),
        ("birth_date", "S0.1.1", False),
        ("birth_date", "T15.12.25", False),
        ("birth_date", "M1.1.1", False),  # before 25 January 1868
        ("voucher_number", " 0012345678", False),
        ("voucher_number", "012345678", False),
        ("email", "Taro@Example.JP", True),
        ("email", "not an address", False),
        ("address_number", "0" * 16, False),
    ],
)
def test_each_value_is_decided_or_sent_back(column: str, value: str, decided: bool) -> None:
    cells = list(ROW)
    cells[COLUMNS.index(column)] = value
    # Among other rows, so that joining the column is exercised.
    rows = [list(ROW), cells, list(ROW)]
    assert _agree(COLUMNS, rows) == (3 if decided else 2)


def test_a_value_holding_the_separator_sends_its_column_row_by_row() -> None:
    cells = list(ROW)
    cells[COLUMNS.index("address")] = "新宿\x00区"
    rows = [list(ROW), cells]
    fast = _fast_parser(COLUMNS, TODAY)
    assert ColumnParser(COLUMNS, TODAY).values(rows) == [None, None]
    assert fast(rows[0]) is not None  # sent back, not refused


def test_a_file_without_the_optional_columns() -> None:
    columns = ("voucher_number", None, "name", "name_kana", "birth_date")
    rows = [["0012345678", "x", "山田太郎", "ヤマダタロウ", "S23.4.1"]]
    assert _agree(columns, rows) == 1


# Arbitrary text from the characters that make the normalisers branch: widths, kana kinds,
# spaces of every kind, hyphens, invisible and control characters, 外字, compatibility
# ideographs, the separator itself, combining marks.
_TRICKY = st.sampled_from(
    list("0123456789０１２３-－ー―‐ｰ 　\t\n\r\x00\x1f\x85\u200b\ufeff〒+()@.")
    + list("ヤマダタロウやまだｶﾞﾞ゛\u3099\u0301ゝヽ山田\ufa19\ue000aAｍMF男女性回目第年月日")
    + ["昭和", "平成", "S", "H", "/"]
)
_TEXT = st.lists(_TRICKY, max_size=12).map("".join)


def _mutated(base: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.one_of(st.none(), _TEXT), min_size=len(base), max_size=len(base)).map(
        lambda changes: [b if c is None else c for b, c in zip(base, changes, strict=True)]
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutated(ROW), min_size=1, max_size=6))
def test_the_column_validator_never_disagrees_on_arbitrary_text(rows: list[list[str]]) -> None:
    _agree(COLUMNS, rows)


_VALUE = st.one_of(st.none(), st.text(max_size=8))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[_VALUE] * len(PERSONAL_FIELDS)), max_size=5))
def test_records_encoded_a_column_at_a_time_are_those_encoded_a_row_at_a_time(
    rows: list[tuple[str | None, ...]],
) -> None:
    encoder = RecordEncoder(PERSONAL_FIELDS)
    columns = [list(column) for column in zip(*rows, strict=True)] or [[]] * len(PERSONAL_FIELDS)
    assert encoder.encode_columns(columns) == [encoder.encode(row) for row in rows]


def test_the_column_encoder_refuses_what_the_row_encoder_refuses() -> None:
    encoder = RecordEncoder(PERSONAL_FIELDS)
    with pytest.raises(ValueError):
        encoder.encode_columns([["a"]] * (len(PERSONAL_FIELDS) - 1))
    with pytest.raises(ValueError):
        encoder.encode_columns([["a"], ["a", "b"]] + [["a"]] * (len(PERSONAL_FIELDS) - 2))
    with pytest.raises(TypeError):
        encoder.encode_columns([[1]] + [["a"]] * (len(PERSONAL_FIELDS) - 1))  # type: ignore[list-item]


_DATE_LIKE = st.one_of(
    st.from_regex(r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}", fullmatch=True),
    st.from_regex(r"(18|19|20)[0-9]{2}-?(0[0-9]|1[0-3])-?[0-3][0-9]", fullmatch=True),
    st.from_regex(r"(18|19|20)[0-9]{2}([-/.年])1?[0-9]([-/.月])[1-3]?[0-9]日?", fullmatch=True),
    st.from_regex(
        r"([MTSHRmtsh]|明治|大正|昭和|平成|令和)(元|[0-9]{1,2})([-/.年])[01]?[0-9]([-/.月])[0-3]?[0-9]日?",
        fullmatch=True,
    ),
    _TEXT,
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_DATE_LIKE, min_size=1, max_size=6))
def test_birth_dates_read_in_c_are_those_parse_birth_date_reads(births: list[str]) -> None:
    index = COLUMNS.index("birth_date")
    rows = [[*ROW[:index], birth, *ROW[index + 1 :]] for birth in births]
    _agree(COLUMNS, rows)


def test_birth_dates_are_read_once_per_spelling_and_the_memory_of_them_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from booking.registry import columns

    monkeypatch.setattr(columns, "_COMMON_DATES", {})
    monkeypatch.setattr(columns, "_DATES_KEPT", 3)
    index = COLUMNS.index("birth_date")
    births = ["1948/4/1", "S23.4.1", "1948/4/1", "2099/1/1", "1950-01-02", "昭和25年1月2日"]
    rows = [[*ROW[:index], birth, *ROW[index + 1 :]] for birth in births]
    # Twice: the second time from what the first kept (a future date is kept as read, and
    # still refused against today).
    assert _agree(COLUMNS, rows) == 5
    assert _agree(COLUMNS, rows) == 5
    assert columns._COMMON_DATES == {
        "1948/4/1": "1948-04-01",
        "S23.4.1": "1948-04-01",
        "2099/1/1": "2099-01-01",
    }
