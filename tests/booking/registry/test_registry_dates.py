from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking.registry.dates import (
    ERAS,
    DateParseError,
    era_of,
    parse_birth_date,
    parse_date,
    parse_era_year,
    to_era,
    today_in_japan,
)

TODAY = date(2026, 11, 23)
FULL_WIDTH = str.maketrans("0123456789-/.MTSHR", "０１２３４５６７８９－／．ＭＴＳＨＲ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1948-04-01", date(1948, 4, 1)),
        ("1948/4/1", date(1948, 4, 1)),
        ("1948.4.1", date(1948, 4, 1)),
        ("19480401", date(1948, 4, 1)),
        ("1948年4月1日", date(1948, 4, 1)),
        ("1948年04月01日", date(1948, 4, 1)),
        ("昭和23年4月1日", date(1948, 4, 1)),
        ("昭23年4月1日", date(1948, 4, 1)),
        ("昭和23.4.1", date(1948, 4, 1)),
        ("S23.4.1", date(1948, 4, 1)),
        ("s23.4.1", date(1948, 4, 1)),
        ("S23/04/01", date(1948, 4, 1)),
        ("S23-4-1", date(1948, 4, 1)),
        ("S23年4月1日", date(1948, 4, 1)),
        ("S230401", date(1948, 4, 1)),
        ("H1.1.8", date(1989, 1, 8)),
        ("平成元年1月8日", date(1989, 1, 8)),
        ("平成1年1月8日", date(1989, 1, 8)),
        ("H元.1.8", date(1989, 1, 8)),
        ("㍻元年1月8日", date(1989, 1, 8)),
        ("R5.1.1", date(2023, 1, 1)),
        ("令和5年1月1日", date(2023, 1, 1)),
        ("㋿5年1月1日", date(2023, 1, 1)),
        ("M45.7.29", date(1912, 7, 29)),
        ("明治元年1月25日", date(1868, 1, 25)),
        ("T1.7.30", date(1912, 7, 30)),
        ("大正15年12月24日", date(1926, 12, 24)),
        ("昭和元年12月25日", date(1926, 12, 25)),
        ("昭和64年1月7日", date(1989, 1, 7)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("令和元年5月1日", date(2019, 5, 1)),
        # Full width, spaces, other dashes, a spreadsheet's midnight.
        ("１９４８－０４－０１", date(1948, 4, 1)),
        ("１９４８／４／１", date(1948, 4, 1)),
        ("昭和２３年４月１日", date(1948, 4, 1)),
        ("Ｓ２３．４．１", date(1948, 4, 1)),
        ("ｓ２３ー４ー１", date(1948, 4, 1)),
        ("1948\u20104\u20101", date(1948, 4, 1)),
        (" 昭和 23 年 4 月 1 日 ", date(1948, 4, 1)),
        ("1948/04/01 0:00:00", date(1948, 4, 1)),
        ("1948/04/01 00:00", date(1948, 4, 1)),
    ],
)
def test_every_written_style_is_read(text: str, expected: date) -> None:
    assert parse_birth_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("平成32年1月1日", "平成の年が範囲を超えています（平成は31年4月30日まで）"),
        ("H32.1.1", "平成の年が範囲を超えています（平成は31年4月30日まで）"),
        ("平成32年", "平成の年が範囲を超えています（平成は31年4月30日まで）"),
        ("昭和65年1月1日", "昭和の年が範囲を超えています（昭和は64年1月7日まで）"),
        ("大正16年1月1日", "大正の年が範囲を超えています（大正は15年12月24日まで）"),
        ("明治46年1月1日", "明治の年が範囲を超えています（明治は45年7月29日まで）"),
        ("昭和64年1月8日", "昭和64年は1月7日までです（1月8日からは平成元年）"),
        ("平成31年5月1日", "平成31年は4月30日までです（5月1日からは令和元年）"),
        ("大正15年12月25日", "大正15年は12月24日までです（12月25日からは昭和元年）"),
        ("明治45年7月30日", "明治45年は7月29日までです（7月30日からは大正元年）"),
        ("平成元年1月7日", "平成元年は1月8日からです（1月7日までは昭和64年）"),
        ("令和元年4月30日", "令和元年は5月1日からです（4月30日までは平成31年）"),
        ("昭和元年12月24日", "昭和元年は12月25日からです（12月24日までは大正15年）"),
        ("大正元年7月29日", "大正元年は7月30日からです（7月29日までは明治45年）"),
        ("明治元年1月24日", "明治元年は1月25日からです"),
        ("平成0年1月1日", "平成0年は存在しません（平成は元年から）"),
        ("2001年2月30日", "存在しない日付です（その月にない日です）"),
        ("平成13年2月30日", "存在しない日付です（その月にない日です）"),
        ("2001-02-29", "存在しない日付です（その月にない日です）"),
        ("19480431", "存在しない日付です（その月にない日です）"),
        ("S45.13.1", "月が1〜12の範囲にありません"),
        ("1948-00-10", "月が1〜12の範囲にありません"),
        ("1868-01-24", "明治元年（1868年1月25日）より前"),
        ("1800/1/1", "明治元年（1868年1月25日）より前"),
        ("令和5年", "月と日がありません"),
        ("H1", "月と日がありません"),
        ("1948年", "月と日がありません"),
        ("1948年4月", "日がありません"),
        ("S23年4月", "日がありません"),
        ("", "空"),
        ("不明", "形式が読み取れません"),
        ("48/4/1", "形式が読み取れません"),
        ("1948-4/1", "形式が読み取れません"),
        ("X23.4.1", "形式が読み取れません"),
        ("昭和", "形式が読み取れません"),
        ("1948/04/01 12:30", "形式が読み取れません"),
        ("1" * 100, "形式が読み取れません"),
    ],
)
def test_impossible_or_unreadable_dates_are_refused_with_the_reason(
    text: str, message: str
) -> None:
    with pytest.raises(DateParseError) as caught:
        parse_birth_date(text, today=TODAY)
    assert message in caught.value.message


def test_a_birth_date_in_the_future_is_refused() -> None:
    assert parse_birth_date("2026-11-23", today=TODAY) == TODAY
    with pytest.raises(DateParseError, match="未来"):
        parse_birth_date("2026-11-24", today=TODAY)
    with pytest.raises(DateParseError, match="未来"):
        parse_birth_date("R8.11.24", today=TODAY)
    # parse_date itself does not know about birth.
    assert parse_date("2026-11-24") == date(2026, 11, 24)


def test_the_default_bound_is_today_in_japan() -> None:
    tomorrow = today_in_japan() + timedelta(days=1)
    with pytest.raises(DateParseError, match="未来"):
        parse_birth_date(tomorrow.isoformat())
    assert parse_birth_date(today_in_japan().isoformat()) == today_in_japan()


def test_a_refused_date_does_not_echo_the_full_value() -> None:
    with pytest.raises(DateParseError) as caught:
        parse_birth_date("1990年2月30日", today=TODAY)
    assert "1990" not in caught.value.message


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("H1", 1989),
        ("令和5年", 2023),
        ("平成元年", 1989),
        ("S64", 1989),
        ("ｔ１", 1912),
        ("明治45年", 1912),
    ],
)
def test_an_era_year_on_its_own_is_read(text: str, year: int) -> None:
    assert parse_era_year(text) == year


@pytest.mark.parametrize("text", ["平成32年", "S65", "H0", "1989", "平成", "H1.1.8"])
def test_an_era_year_that_does_not_exist_is_refused(text: str) -> None:
    with pytest.raises(DateParseError):
        parse_era_year(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(1868, 1, 25), "明治元年1月25日"),
        (date(1912, 7, 29), "明治45年7月29日"),
        (date(1912, 7, 30), "大正元年7月30日"),
        (date(1926, 12, 25), "昭和元年12月25日"),
        (date(1948, 4, 1), "昭和23年4月1日"),
        (date(1989, 1, 7), "昭和64年1月7日"),
        (date(1989, 1, 8), "平成元年1月8日"),
        (date(2019, 4, 30), "平成31年4月30日"),
        (date(2019, 5, 1), "令和元年5月1日"),
        (date(2023, 1, 1), "令和5年1月1日"),
    ],
)
def test_to_era_writes_the_japanese_form(value: date, expected: str) -> None:
    assert to_era(value) == expected


def test_to_era_refuses_a_date_before_meiji() -> None:
    with pytest.raises(ValueError, match="Meiji"):
        to_era(date(1868, 1, 24))


def test_the_era_table_has_no_gap_and_no_overlap() -> None:
    for earlier, later in zip(ERAS, ERAS[1:], strict=False):
        assert earlier.end is not None
        assert earlier.end + timedelta(days=1) == later.start
    assert ERAS[-1].end is None


# --- properties ----------------------------------------------------------------------------


@given(text=st.text(max_size=50))
def test_any_text_is_read_or_refused_with_a_date_parse_error(text: str) -> None:
    try:
        result = parse_birth_date(text, today=TODAY)
    except DateParseError as error:
        assert error.message
    else:
        assert ERAS[0].start <= result <= TODAY


DATE_CHARACTERS = st.sampled_from(
    list("0123456789０１２３４５６７８９-/.年月日元 ー－")
    + ["昭和", "平成", "令和", "S", "H", "R", "M", "T"]
)


@given(parts=st.lists(DATE_CHARACTERS, max_size=14))
def test_date_like_text_is_read_or_refused_with_a_date_parse_error(parts: list[str]) -> None:
    text = "".join(parts)
    try:
        result = parse_birth_date(text, today=TODAY)
    except DateParseError as error:
        assert error.message
    else:
        assert ERAS[0].start <= result <= TODAY
        # Whatever was read is a real date of the era it was written in.
        assert parse_date(to_era(result)) == result


def _era_year(value: date) -> tuple[str, str, int]:
    era, year, _, _ = era_of(value)
    return era.name, era.letter, year


def _western_styles(value: date) -> list[str]:
    y, m, d = value.year, value.month, value.day
    return [
        f"{y:04d}-{m:02d}-{d:02d}",
        f"{y}/{m}/{d}",
        f"{y}.{m}.{d}",
        f"{y:04d}{m:02d}{d:02d}",
        f"{y}年{m}月{d}日",
    ]


def _era_styles(value: date) -> list[str]:
    name, letter, year = _era_year(value)
    m, d = value.month, value.day
    styles = [
        f"{name}{year}年{m}月{d}日",
        f"{name[0]}{year}年{m}月{d}日",
        f"{letter}{year}.{m}.{d}",
        f"{letter}{year:02d}/{m:02d}/{d:02d}",
        f"{letter}{year}-{m}-{d}",
        f"{letter.lower()}{year}.{m}.{d}",
        f"{letter}{year:02d}{m:02d}{d:02d}",
        to_era(value),
    ]
    if year == 1:
        styles.append(f"{name}元年{m}月{d}日")
    return styles


STYLES: list[Callable[[date], list[str]]] = [_western_styles, _era_styles]


@given(value=st.dates(min_value=ERAS[0].start, max_value=TODAY))
def test_every_written_style_of_a_date_reads_back_as_that_date(value: date) -> None:
    for styles in STYLES:
        for text in styles(value):
            assert parse_birth_date(text, today=TODAY) == value, text
            assert parse_birth_date(text.translate(FULL_WIDTH), today=TODAY) == value, text


@given(value=st.dates(min_value=date(1800, 1, 1), max_value=ERAS[0].start - timedelta(days=1)))
def test_dates_before_meiji_are_refused(value: date) -> None:
    with pytest.raises(DateParseError, match="明治元年"):
        parse_birth_date(value.isoformat(), today=TODAY)


@given(value=st.dates(min_value=date(1912, 1, 1), max_value=date(2020, 12, 31)))
def test_a_date_written_in_the_wrong_era_is_refused(value: date) -> None:
    # Write the date with each era it does not belong to, keeping the era year arithmetic.
    actual = era_of(value).era
    for era in ERAS:
        if era is actual:
            continue
        era_year = value.year - era.offset
        if not 1 <= era_year <= 99:
            continue
        text = f"{era.name}{era_year}年{value.month}月{value.day}日"
        with pytest.raises(DateParseError):
            parse_birth_date(text, today=TODAY)
