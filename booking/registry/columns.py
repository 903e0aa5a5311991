"""A chunk's rows validated a column at a time.

The row-at-a-time parser (``pipeline._fast_parser``, then ``rows.parse_row``) calls a
normaliser for every cell: a million-row registry makes ten million Python calls, each doing
little. Here the cells of one column are joined into one string for the steps a regex or a
``str`` method does in one pass (invisible characters, the common full-width characters,
whitespace folding, hyphens), then split again; NFKC goes value by value through ``map``
(cheaper than on one long string: most values are already in NFKC once the full-width digits
and spaces are replaced, and unicodedata answers those at once). Numbers, codes and the
common date spellings are checked by compiled patterns.

The result for a row is exactly what the row-at-a-time parser gives, or None: a value this
module is not sure of (anything empty, too long, with unusual characters, or a shape its
patterns do not know) sends its whole row back to that parser, which decides and words every
error. tests/booking/registry/test_columns.py holds the two to the same output on arbitrary
text.

Why joining is safe: the separator, U+0000, is a starter that NFKC neither changes nor
composes with, that no whitespace or hyphen pattern matches and that no pattern's lookaround
crosses, so each step treats each value on its own. A value that itself holds the separator
(it would be refused anyway: a control character) sends every row of the chunk back.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from functools import partial
from operator import itemgetter
from typing import Any

from booking.registry.dates import EARLIEST, ERAS, parse_birth_date
from booking.registry.errors import RegistryValueError
from booking.registry.normalize import (
    _ADDRESS_HYPHEN,
    _CJK_COMPAT,
    _FORMULA_START,
    _HIRAGANA_TO_KATAKANA,
    _HYPHEN_AFTER_KANA,
    _INVISIBLE,
    _KATAKANA_NAME,
    _NUMBER_JUNK,
    normalize_dose,
    normalize_email,
    normalize_sex,
)

SEPARATOR = "\x00"
# Whitespace that " ".join(value.split()) changes between words (str.split's whitespace is
# re's \s for text): a run of more than one, or one that is not a space. Written to start
# with a character class, which the regex engine scans for quickly.
_SPACE_RUNS = re.compile(r"\s(?:(?<=[^ ])|(?=\s))\s*")
# What _check_characters refuses, except the separator.
_UNACCEPTABLE = re.compile("[\x01-\x1f\x7f-\x9f\ue000-\uf8ff]")

_HIRAGANA = re.compile("[\u3041-\u3096\u309d\u309e]")
_VOUCHER = re.compile(r"[0-9]{10}")
# The commonest birth-date spellings, each read as parse_birth_date reads it: the two ISO 8601
# ones (not week dates), Western with a separator or 年月日, and era dates with the era's
# letter or name.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}")
_WESTERN_DATE = re.compile(
    r"([0-9]{4})(?:([-/.])([0-9]{1,2})\2([0-9]{1,2})|年([0-9]{1,2})月([0-9]{1,2})日)"
)
_ERA_DATE = re.compile(
    r"([MTSHR]|明治|大正|昭和|平成|令和)(元|[0-9]{1,2})"
    r"(?:([-/.])([0-9]{1,2})\3([0-9]{1,2})|年([0-9]{1,2})月([0-9]{1,2})日)"
)
# Era -> (offset, first day, last day). A year the era never reached (0, 平成32) gives a day
# outside its span.
_ERA_SPANS = {
    key: (era.offset, era.start, era.end or date.max)
    for era in ERAS
    for key in (era.letter, era.name)
}


def _common_date(text: str) -> str:
    """The ISO date of a birth date in a common spelling, if it is a real day from Meiji 1
    on and within its era; "" for anything else, which parse_birth_date then reads or
    refuses with its message. (Whether it is after today is for the caller.)"""
    try:
        if _ISO_DATE.fullmatch(text):
            born = date.fromisoformat(text)
        elif match := _WESTERN_DATE.fullmatch(text):
            year, _sep, month, day, kanji_month, kanji_day = match.groups()
            born = date(int(year), int(month or kanji_month), int(day or kanji_day))
        elif match := _ERA_DATE.fullmatch(text):
            era, era_year, _sep, month, day, kanji_month, kanji_day = match.groups()
            offset, first, last = _ERA_SPANS[era]
            number = 1 if era_year == "元" else int(era_year)
            born = date(offset + number, int(month or kanji_month), int(day or kanji_day))
            if not first <= born <= last:
                return ""
        else:
            return ""
    except ValueError:  # not a day of the calendar
        return ""
    return born.isoformat() if born >= EARLIEST else ""


# A registry repeats its birth dates: each spelling is read once per process. Bounded (the
# first spellings seen are kept, about 10 MB at most); a file of many spellings, like the
# benchmark's, reads the rest each time. Birth dates alone, as parse_date's own cache holds.
_DATES_KEPT = 65_536
_COMMON_DATES: dict[str, str] = {}


_POSTAL_MARK = "〒"
_ADDRESS_NUMBER = re.compile(r"[0-9]{1,15}")
_POSTAL_CODE = re.compile(r"[0-9]{7}")
# The numbering plan as normalize_phone checks it: 0X0 (X = 2..9) numbers have 11 digits,
# every other number 10.
_PHONE = re.compile(r"0(?:[2-9]0[0-9]{8}|[01][0-9]{8}|[2-9][1-9][0-9]{7})")


def _spellings(parse: Callable[[str], Any], candidates: list[str]) -> dict[str, Any]:
    """The common spellings of a coded value, each mapped to what its normaliser returns
    for it: equal to the row parser by construction."""
    return {text: parse(text) for text in candidates}


_FULL_WIDTH = str.maketrans("0123456789MFmf", "０１２３４５６７８９ＭＦｍｆ")
_SEX_VALUES = {
    text: sex.value
    for text, sex in _spellings(
        normalize_sex,
        [
            spelling
            for code in ("1", "2", "男", "女", "男性", "女性", "M", "F", "m", "f")
            for spelling in {code, code.translate(_FULL_WIDTH)}
        ],
    ).items()
}
_DOSE_VALUES = _spellings(
    normalize_dose,
    [
        form.format(digits)
        for dose in range(1, 10)
        for digits in (str(dose), str(dose).translate(_FULL_WIDTH))
        for form in ("{}", "{}回目", "{}回", "第{}回", "第{}回目")
    ],
)

NAME_MAX = 100
ADDRESS_MAX = 200

# A row as pipeline._values_of lays it out: the personal fields in PERSONAL_FIELDS order,
# then the voucher number and the dose.
Values = tuple[
    str,
    str,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    str,
    int | None,
]


def _blank(value: str) -> bool:
    return not value or value.isspace()


def _joined_text(values: list[str]) -> list[str] | None:
    """Each value with invisible characters removed, NFKC applied and whitespace folded as
    ``" ".join(value.split())`` does; None if a value holds the separator."""
    joined = SEPARATOR.join(values)
    if joined.count(SEPARATOR) != len(values) - 1:
        return None
    if not joined.isascii():
        joined = _nfkc(joined)
    return _fold_spaces(joined, len(values))


# Characters whose NFKC form is one ASCII character, common in municipal files: the
# ideographic space and full-width digits and hyphen. Replacing them first leaves the NFKC
# form of every value unchanged (their compatibility decomposition is that character, a
# starter), and leaves most values already in NFKC, which unicodedata answers at once; NFKC
# itself goes value by value (on one long string it is slower than on its pieces).
_WIDE = [(chr(code), unicodedata.normalize("NFKC", chr(code))) for code in (0x3000, 0xFF0D)] + [
    (chr(0xFF10 + digit), str(digit)) for digit in range(10)
]


_NFKC = partial(unicodedata.normalize, "NFKC")


def _nfkc(joined: str) -> str:
    """NFKC of each separated value (invisible characters removed first, as the row
    normalisers do)."""
    if _INVISIBLE.search(joined):
        joined = _INVISIBLE.sub("", joined)
    for wide, narrow in _WIDE:
        if wide in joined:
            joined = joined.replace(wide, narrow)
    if joined.isascii():
        return joined
    return SEPARATOR.join(map(_NFKC, joined.split(SEPARATOR)))


def _fold_spaces(joined: str, count: int) -> list[str] | None:
    joined = _SPACE_RUNS.sub(" ", joined)
    if " " in joined:
        joined = joined.replace(" " + SEPARATOR, SEPARATOR).replace(SEPARATOR + " ", SEPARATOR)
        joined = joined.strip(" ")
    parts = joined.split(SEPARATOR)
    return parts if len(parts) == count else None


def _accepted(
    values: list[str], column: list[str], accept: Callable[[str], object], refer: set[int]
) -> list[str | None]:
    """An optional column's values where ``accept`` takes them, None elsewhere; a row whose
    cell is not blank (a value the pattern does not know) is referred."""
    kept: list[str | None] = []
    append = kept.append
    for index, (value, ok) in enumerate(zip(values, map(accept, values), strict=True)):
        if ok:
            append(value)
        else:
            append(None)
            if not _blank(column[index]):
                refer.add(index)
    return kept


def _containing(pattern: re.Pattern[str], values: list[str]) -> list[int]:
    """Indexes of the values the pattern finds something in (one search when none does)."""
    if not pattern.search(SEPARATOR.join(values)):
        return []
    return [index for index, value in enumerate(values) if pattern.search(value)]


class ColumnParser:
    """Validates a chunk's full-width rows (``cells`` lists at least as wide as the header)
    column by column. ``columns`` are the header's field names in file order (None for a
    column the import ignores); required columns are always present (``map_header`` checks)."""

    def __init__(self, columns: Sequence[str | None], today: date) -> None:
        where = {name: index for index, name in enumerate(columns) if name is not None}
        self._where = where
        self._today = today

    def _column(self, rows: list[list[str]], name: str) -> list[str] | None:
        index = self._where.get(name)
        if index is None:
            return None
        return list(map(itemgetter(index), rows))

    def values(self, rows: list[list[str]]) -> list[Values | None]:
        """The rows' values, or None for a row the row-at-a-time parser must decide."""
        count = len(rows)
        if not count:
            return []
        refer: set[int] = set()  # rows sent back to the row-at-a-time parser
        vouchers = self._required(rows, "voucher_number", _VOUCHER.fullmatch, refer)
        names = self._names(rows, refer)
        kanas = self._kanas(rows, refer)
        births = self._births(rows, refer)
        numbers = self._optional(rows, "address_number", _ADDRESS_NUMBER.fullmatch, refer)
        sexes = self._codes(rows, "sex", _SEX_VALUES, refer)
        postals = self._digits(
            rows, "postal_code", _POSTAL_CODE.fullmatch, refer, mark=_POSTAL_MARK
        )
        addresses = self._addresses(rows, refer)
        phones = self._digits(rows, "phone", _PHONE.fullmatch, refer)
        emails = self._emails(rows, refer)
        doses = self._codes(rows, "dose", _DOSE_VALUES, refer)
        none = [None] * count
        result: list[Values | None] = list(
            zip(
                names,
                kanas,
                births,
                sexes or none,
                postals or none,
                addresses or none,
                phones or none,
                emails or none,
                numbers or none,
                vouchers,
                doses or none,
                strict=True,
            )
        )
        for index in refer:
            result[index] = None
        return result

    # Each reader returns the column's values in row order; a row it cannot decide is added
    # to ``refer`` (its value in the list is then a placeholder).

    def _required(
        self,
        rows: list[list[str]],
        name: str,
        accept: Callable[[str], object],
        refer: set[int],
    ) -> list[str]:
        column = self._column(rows, name)
        assert column is not None
        refer.update(index for index, ok in enumerate(map(accept, column)) if not ok)
        return column

    def _optional(
        self,
        rows: list[list[str]],
        name: str,
        accept: Callable[[str], object],
        refer: set[int],
    ) -> list[str | None] | None:
        column = self._column(rows, name)
        if column is None:
            return None
        return _accepted(column, column, accept, refer)

    def _digits(
        self,
        rows: list[list[str]],
        name: str,
        accept: Callable[[str], object],
        refer: set[int],
        *,
        mark: str = "",
    ) -> list[str | None] | None:
        """A number (phone, postal code): its digits once width, hyphens, spaces and
        brackets are gone, as ``_digits_only`` leaves them (and the postal mark, 〒)."""
        column = self._column(rows, name)
        if column is None:
            return None
        joined = SEPARATOR.join(column)
        if joined.count(SEPARATOR) != len(column) - 1:
            refer.update(range(len(column)))
            return None
        if not joined.isascii():
            joined = _nfkc(joined)
        joined = _NUMBER_JUNK.sub("", joined)
        if mark and mark in joined:
            joined = joined.replace(SEPARATOR + mark, SEPARATOR).removeprefix(mark)
        digits = joined.split(SEPARATOR)
        if len(digits) != len(column):
            refer.update(range(len(column)))
            return None
        return _accepted(digits, column, accept, refer)

    def _codes(
        self,
        rows: list[list[str]],
        name: str,
        codes: Mapping[str, Any],
        refer: set[int],
    ) -> list[Any] | None:
        """A value from a short list of codes (sex, dose), as written."""
        column = self._column(rows, name)
        if column is None:
            return None
        values = list(map(codes.get, column))
        for index, value in enumerate(values):
            if value is None and not _blank(column[index]):
                refer.add(index)
        return values

    def _texts(
        self, column: list[str], refer: set[int], *, limit: int, required: bool
    ) -> list[str] | None:
        """Text values (name, address) folded; the empty, the over-long and those with
        characters the row parser refuses or treats apart are referred. None (every row
        referred) when the column cannot be joined."""
        texts = _joined_text(column)
        if texts is None:
            refer.update(range(len(column)))
            return None
        if not all(map(str.isprintable, texts)):
            refer.update(_containing(_UNACCEPTABLE, texts))
        for index, text in enumerate(texts):
            if not text or len(text) > limit:
                if required or not _blank(column[index]):
                    refer.add(index)
        return texts

    def _names(self, rows: list[list[str]], refer: set[int]) -> list[str]:
        column = self._column(rows, "name")
        assert column is not None
        # CJK compatibility ideographs are kept as written: those names go row by row.
        refer.update(_containing(_CJK_COMPAT, column))
        texts = self._texts(column, refer, limit=NAME_MAX, required=True)
        if texts is None:
            return column
        # A name that starts as a spreadsheet formula is refused row by row (normalize_name).
        joined = SEPARATOR.join(texts)
        if any(mark in joined for mark in _FORMULA_START):
            refer.update(i for i, text in enumerate(texts) if text[:1] in _FORMULA_START)
        return texts

    def _addresses(self, rows: list[list[str]], refer: set[int]) -> list[str | None] | None:
        column = self._column(rows, "address")
        if column is None:
            return None
        texts = self._texts(column, refer, limit=ADDRESS_MAX, required=False)
        if texts is None:
            return None
        joined = SEPARATOR.join(texts)
        if not joined.isascii():
            texts = _ADDRESS_HYPHEN.sub("-", joined).split(SEPARATOR)
        return [text or None for text in texts]

    def _kanas(self, rows: list[list[str]], refer: set[int]) -> list[str]:
        """Katakana, as ``normalize_kana`` makes it: NFKC, hiragana to katakana, spaces
        folded, a hyphen after a kana read as ー."""
        column = self._column(rows, "name_kana")
        assert column is not None
        texts = _joined_text(column)
        if texts is None:
            refer.update(range(len(column)))
            return column
        if _HIRAGANA.search(SEPARATOR.join(texts)):
            texts = [
                text.translate(_HIRAGANA_TO_KATAKANA) if _HIRAGANA.search(text) else text
                for text in texts
            ]
        joined = SEPARATOR.join(texts)
        if not joined.isascii():
            joined = _HYPHEN_AFTER_KANA.sub("ー", joined)
        kanas = joined.split(SEPARATOR)
        accepted = map(_KATAKANA_NAME.fullmatch, kanas)
        for index, (kana, ok) in enumerate(zip(kanas, accepted, strict=True)):
            if not ok or len(kana) > NAME_MAX:
                refer.add(index)
        return kanas

    def _births(self, rows: list[list[str]], refer: set[int]) -> list[str]:
        """The common spellings read by :func:`_common_date` (once per spelling and
        process, up to _DATES_KEPT of them); every other one, and every date it refuses,
        through ``parse_birth_date``."""
        column = self._column(rows, "birth_date")
        assert column is not None
        today = self._today
        latest = today.isoformat()  # ISO dates compare as their text does
        known = _COMMON_DATES
        values: list[str] = []
        append = values.append
        for index, text in enumerate(column):
            born = known.get(text)
            if born is None:
                born = _common_date(text)
                if len(known) < _DATES_KEPT:
                    known[text] = born
            if not born or born > latest:
                try:
                    born = parse_birth_date(text, today=today).isoformat()
                except RegistryValueError:
                    born = ""
                    refer.add(index)
            append(born)
        return values

    def _emails(self, rows: list[list[str]], refer: set[int]) -> list[str | None] | None:
        column = self._column(rows, "email")
        if column is None:
            return None
        values: list[str | None] = []
        append = values.append
        for index, text in enumerate(column):
            if not text or text.isspace():
                append(None)
                continue
            try:
                append(normalize_email(text))
            except RegistryValueError:
                append(None)
                refer.add(index)
        return values
