"""Birth dates as municipalities write them: Western or Japanese era (和暦), any width.

Accepted (full-width digits and letters too, spaces ignored)::

    1948-04-01  1948/4/1  1948.4.1  19480401  1948年4月1日
    昭和23年4月1日  昭23年4月1日  昭和23.4.1  S23.4.1  S23/04/01  S23-4-1  S230401
    平成元年1月8日  H1.1.8  ㍻1.1.8  R5.1.1

An era year must exist within the era's span, checked to the day (昭和64年1月7日 is accepted,
昭和64年1月8日 and 平成32年 are refused). Errors are :class:`DateParseError` with a Japanese
message that names the rule, never the value (the day, the month or the era year it has:
the messages reach the vendor's screens, which show residents' values masked).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import NamedTuple

from booking.registry.errors import RegistryValueError
from booking.registry.normalize import HYPHENS

# Japan has had no daylight saving time since 1951: a fixed offset is exact for "today".
JST = timezone(timedelta(hours=9), "JST")


class DateParseError(RegistryValueError):
    """A date that cannot be read or does not exist."""


@dataclass(frozen=True, slots=True)
class Era:
    name: str
    letter: str
    start: date
    end: date | None  # inclusive; None for the current era

    @property
    def offset(self) -> int:
        """Western year of the era's year 0 (so 昭和23年 = 1925 + 23)."""
        return self.start.year - 1

    @property
    def last_year(self) -> int | None:
        return None if self.end is None else self.end.year - self.offset


ERAS: tuple[Era, ...] = (
    Era("明治", "M", date(1868, 1, 25), date(1912, 7, 29)),
    Era("大正", "T", date(1912, 7, 30), date(1926, 12, 24)),
    Era("昭和", "S", date(1926, 12, 25), date(1989, 1, 7)),
    Era("平成", "H", date(1989, 1, 8), date(2019, 4, 30)),
    Era("令和", "R", date(2019, 5, 1), None),
)
EARLIEST = ERAS[0].start

_ERA_BY_TOKEN: dict[str, Era] = {}
for _era in ERAS:
    _ERA_BY_TOKEN[_era.name] = _era
    _ERA_BY_TOKEN[_era.name[0]] = _era
    _ERA_BY_TOKEN[_era.letter] = _era
    _ERA_BY_TOKEN[_era.letter.lower()] = _era
del _era

_ERA_PATTERN = "明治|大正|昭和|平成|令和|[明大昭平令MTSHRmtshr]"
_ERA_DATE = re.compile(
    rf"({_ERA_PATTERN})([0-9]{{1,2}}|元)"
    r"(?:年(?:([0-9]{1,2})月(?:([0-9]{1,2})日?)?)?"
    r"|([-/.])([0-9]{1,2})\5([0-9]{1,2}))?"
)
_ERA_COMPACT = re.compile(rf"({_ERA_PATTERN})([0-9]{{2}})([0-9]{{2}})([0-9]{{2}})")
_WESTERN_SEPARATED = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})")
_WESTERN_KANJI = re.compile(r"([0-9]{4})年(?:([0-9]{1,2})月(?:([0-9]{1,2})日?)?)?")
# Spreadsheets sometimes export a date cell with a midnight time: "1948/04/01 0:00:00".
_MIDNIGHT = re.compile(r"\s+0?0:00(?::00)?$")

_NON_ASCII_HYPHEN = re.compile("[" + re.escape(HYPHENS.replace("-", "")) + "]")
_MAX_INPUT_LENGTH = 40

FORMAT_HINT = "例: 1948-04-01、1948/4/1、19480401、1948年4月1日、昭和23年4月1日、S23.4.1"


def today_in_japan() -> date:
    return datetime.now(JST).date()


def _year_label(era_year: int) -> str:
    return "元" if era_year == 1 else str(era_year)


def _calendar_date(year: int, month: int, day: int) -> date:
    if not 1 <= month <= 12:
        raise DateParseError("月が1〜12の範囲にありません")
    try:
        return date(year, month, day)
    except ValueError:
        raise DateParseError("存在しない日付です（その月にない日です）") from None


def _check_era_year(era: Era, era_year: int) -> int:
    if era_year == 0:
        raise DateParseError(f"{era.name}0年は存在しません（{era.name}は元年から）")
    if era.end is not None and era.last_year is not None and era_year > era.last_year:
        raise DateParseError(
            f"{era.name}の年が範囲を超えています"
            f"（{era.name}は{era.last_year}年{era.end.month}月{era.end.day}日まで）"
        )
    return era.offset + era_year


def _era_date(era: Era, era_year: int, month: int, day: int) -> date:
    western = _calendar_date(_check_era_year(era, era_year), month, day)
    index = ERAS.index(era)
    if western < era.start:
        rule = f"{era.name}{_year_label(era_year)}年は{era.start.month}月{era.start.day}日からです"
        if index > 0:
            previous = era_of(era.start - timedelta(days=1))
            rule += (
                f"（{previous.month}月{previous.day}日までは"
                f"{previous.era.name}{_year_label(previous.year)}年）"
            )
        raise DateParseError(rule)
    if era.end is not None and western > era.end:
        following = ERAS[index + 1]
        raise DateParseError(
            f"{era.name}{_year_label(era_year)}年は{era.end.month}月{era.end.day}日までです"
            f"（{following.start.month}月{following.start.day}日からは{following.name}元年）"
        )
    return western


def _preprocess(text: str) -> str:
    if not text.isascii():
        text = _NON_ASCII_HYPHEN.sub("-", unicodedata.normalize("NFKC", text))
    if ":" in text:
        text = _MIDNIGHT.sub("", text)
    return "".join(text.split())


def _western(year: int, month: int, day: int) -> date:
    if year < EARLIEST.year:
        raise DateParseError("明治元年（1868年1月25日）より前の日付は扱えません")
    result = _calendar_date(year, month, day)
    if result < EARLIEST:
        raise DateParseError("明治元年（1868年1月25日）より前の日付は扱えません")
    return result


# Birth dates repeat a lot in a registry (a few tens of thousands of distinct values per
# million rows), so successful parses are cached; errors are not (lru_cache skips exceptions).
@lru_cache(maxsize=65536)
def _parse_cached(raw: str) -> date:
    text = _preprocess(raw)
    if not text:
        raise DateParseError("日付が空です")
    if text[0].isdigit():
        if len(text) == 8 and text.isascii() and text.isdigit():
            return _western(int(text[:4]), int(text[4:6]), int(text[6:]))
        match = _WESTERN_SEPARATED.fullmatch(text)
        if match:
            return _western(int(match[1]), int(match[3]), int(match[4]))
        match = _WESTERN_KANJI.fullmatch(text)
        if match:
            if match[2] is None:
                raise DateParseError("月と日がありません")
            if match[3] is None:
                raise DateParseError("日がありません")
            return _western(int(match[1]), int(match[2]), int(match[3]))
        raise DateParseError(f"日付の形式が読み取れません（{FORMAT_HINT}）")
    match = _ERA_DATE.fullmatch(text)
    if match:
        era = _ERA_BY_TOKEN[match[1]]
        era_year = 1 if match[2] == "元" else int(match[2])
        if match[5] is not None:
            return _era_date(era, era_year, int(match[6]), int(match[7]))
        if match[4] is not None:
            return _era_date(era, era_year, int(match[3]), int(match[4]))
        _check_era_year(era, era_year)
        raise DateParseError("月と日がありません" if match[3] is None else "日がありません")
    match = _ERA_COMPACT.fullmatch(text)
    if match:
        era = _ERA_BY_TOKEN[match[1]]
        return _era_date(era, int(match[2]), int(match[3]), int(match[4]))
    raise DateParseError(f"日付の形式が読み取れません（{FORMAT_HINT}）")


def _western_ascii(text: str) -> date | None:
    """The commonest spellings, ``19480401`` and ``1948/4/1`` (or ``-``, ``.``), read without
    a regex or the cache; None for anything else, which takes the general path. Accepts
    exactly what ``_parse_cached`` accepts for these shapes."""
    if len(text) == 8 and text.isdigit():
        return _western(int(text[:4]), int(text[4:6]), int(text[6:]))
    separator = text[4:5]
    if separator not in ("/", "-", "."):
        return None
    parts = text.split(separator)
    if len(parts) != 3:
        return None
    year, month, day = parts
    if (
        len(year) == 4
        and 0 < len(month) <= 2
        and 0 < len(day) <= 2
        and year.isdigit()
        and month.isdigit()
        and day.isdigit()
    ):
        return _western(int(year), int(month), int(day))
    return None


def _era_ascii(text: str) -> date | None:
    """Era dates written with the era's letter, ``S23.4.1``, ``S23/04/01``, ``H1-1-8`` or
    ``S230401``, read without a regex or the cache; None for anything else, or for a date
    that does not exist, which takes the general path (and its message). Accepts exactly
    what ``_parse_cached`` accepts for these shapes, as the same dates."""
    era = _ERA_BY_TOKEN.get(text[:1])
    rest = text[1:]
    if era is None or not rest:
        return None
    if len(rest) == 6 and rest.isdigit():
        year, month, day = rest[:2], rest[2:4], rest[4:]
    else:
        separator = rest[1:2] if rest[1:2] in ("/", "-", ".") else rest[2:3]
        if separator not in ("/", "-", "."):
            return None
        parts = rest.split(separator)
        if len(parts) != 3:
            return None
        year, month, day = parts
        if not (0 < len(year) <= 2 and 0 < len(month) <= 2 and 0 < len(day) <= 2):
            return None
        if not (year.isdigit() and month.isdigit() and day.isdigit()):
            return None
    try:
        return _era_date(era, int(year), int(month), int(day))
    except DateParseError:
        return None


def _ascii_shapes(text: str) -> date | None:
    """The commonest spellings, from text that is ASCII throughout (as written, or after
    _preprocess): the Western and era-letter fast paths."""
    if text[:1].isdigit():
        return _western_ascii(text)
    return _era_ascii(text)


# A date read once is looked up, not read again, whichever path read it: the fast paths
# cost more than the lookup, and a registry repeats its birth dates.
@lru_cache(maxsize=65536)
def _parse_seen(text: str) -> date:
    # ASCII letters, digits and one kind of separator only: nothing for _preprocess to
    # change as long as the shape is one the fast paths know. Other text (full-width digits,
    # kanji eras) is preprocessed as the general path does first; what comes out ASCII
    # takes the same fast paths.
    shaped = text if text.isascii() else _preprocess(text)
    if shaped.isascii():
        found = _ascii_shapes(shaped)
        if found is not None:
            return found
    return _parse_cached(text)


def parse_date(text: str) -> date:
    """Read a Western or era date (see the module docstring); raise :class:`DateParseError`."""
    if len(text) > _MAX_INPUT_LENGTH:
        raise DateParseError(f"日付の形式が読み取れません（{FORMAT_HINT}）")
    return _parse_seen(text)


def parse_birth_date(text: str, *, today: date | None = None) -> date:
    """:func:`parse_date`, refusing a date after ``today`` (default: today in Japan)."""
    result = parse_date(text)
    if result > (today or today_in_japan()):
        raise DateParseError("未来の日付になっています")
    return result


def parse_era_year(text: str) -> int:
    """An era year on its own (``"H1"``, ``"令和5年"``, ``"平成元年"``) -> Western year,
    checked against the era's span."""
    normalized = _preprocess(text) if len(text) <= _MAX_INPUT_LENGTH else ""
    match = re.fullmatch(rf"({_ERA_PATTERN})([0-9]{{1,2}}|元)年?", normalized)
    if match is None:
        raise DateParseError("和暦の年の形式が読み取れません（例: 昭和23年、H1、令和5年）")
    era_year = 1 if match[2] == "元" else int(match[2])
    return _check_era_year(_ERA_BY_TOKEN[match[1]], era_year)


class EraDate(NamedTuple):
    era: Era
    year: int  # year within the era, 1 for 元年
    month: int
    day: int


def era_of(value: date) -> EraDate:
    """The era, era year, month and day of a date (from 明治元年 on)."""
    for era in reversed(ERAS):
        if value >= era.start:
            return EraDate(era, value.year - era.offset, value.month, value.day)
    raise ValueError(f"{value.isoformat()} is before the Meiji era")


def to_era(value: date) -> str:
    """``date(1989, 1, 8)`` -> ``"平成元年1月8日"``."""
    era, year, month, day = era_of(value)
    return f"{era.name}{_year_label(year)}年{month}月{day}日"
