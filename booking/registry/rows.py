"""One registry row -> a validated record or the list of what is wrong with it."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from booking.registry.dates import parse_birth_date
from booking.registry.errors import RegistryValueError
from booking.registry.fields import FIELD_LABELS
from booking.registry.normalize import (
    Sex,
    normalize_address,
    normalize_address_number,
    normalize_dose,
    normalize_email,
    normalize_kana,
    normalize_name,
    normalize_phone,
    normalize_postal_code,
    normalize_sex,
    normalize_text,
    normalize_voucher_number,
)

if TYPE_CHECKING:
    from booking.registry.csvfile import CsvRecord

MASK = "＊"
_MASK_MAX_SHOWN = 20


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    """A registry row, every field normalised and validated."""

    line_number: int
    voucher_number: str
    name: str
    name_kana: str
    birth_date: date
    address_number: str | None = None
    sex: Sex | None = None
    postal_code: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    dose: int | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong with one cell (or, with ``column=None``, the whole row).

    ``value`` is masked (:func:`mask_value`): an error list is shown to operators and may be
    downloaded, so it never carries the full personal value.
    """

    line_number: int
    column: str | None
    value: str
    message: str


def mask_value(value: str, *, keep_last: int = 0) -> str:
    """``"山田太郎"`` -> ``"山＊＊＊"``; with ``keep_last=2``, ``"0012345678"`` ->
    ``"＊＊＊＊＊＊＊＊78"``. Shows at most the first character (or the last ``keep_last``)
    and the length; a one-character value is masked entirely."""
    text = normalize_text(value)
    length = len(text)
    if length == 0:
        return ""
    if keep_last:
        shown = min(keep_last, length - 1)
        hidden = length - shown
        tail = text[length - shown :] if shown else ""
        if hidden > _MASK_MAX_SHOWN:
            return f"{MASK * _MASK_MAX_SHOWN}…{tail}（{length}文字）"
        return MASK * hidden + tail
    if length == 1:
        return MASK
    if length > _MASK_MAX_SHOWN:
        return f"{text[0]}{MASK * (_MASK_MAX_SHOWN - 1)}…（{length}文字）"
    return text[0] + MASK * (length - 1)


def _missing(field: str, line_number: int) -> RowError:
    label = FIELD_LABELS[field]
    return RowError(line_number, label, "", f"{label}が入力されていません（必須）")


def _invalid(field: str, line_number: int, raw: str, error: RegistryValueError) -> RowError:
    keep_last = 2 if field == "voucher_number" else 0
    return RowError(
        line_number, FIELD_LABELS[field], mask_value(raw, keep_last=keep_last), error.message
    )


# Fields parsed by a plain ``str -> value`` function, in the order errors are reported. The
# birth date (which needs ``today``) sits between the required and the optional ones.
_REQUIRED_PARSERS: tuple[tuple[str, Callable[[str], Any]], ...] = (
    ("voucher_number", normalize_voucher_number),
    ("name", normalize_name),
    ("name_kana", normalize_kana),
)
_OPTIONAL_PARSERS: tuple[tuple[str, Callable[[str], Any]], ...] = (
    ("address_number", normalize_address_number),
    ("sex", normalize_sex),
    ("postal_code", normalize_postal_code),
    ("address", normalize_address),
    ("phone", normalize_phone),
    ("email", normalize_email),
    ("dose", normalize_dose),
)


def parse_row(
    raw: Mapping[str, str], line_number: int, *, today: date | None = None
) -> RegistryRecord | list[RowError]:
    """Validate one row whose keys are field names (``voucher_number``, ``name``, ... as
    :mod:`booking.registry.csvfile` produces them). Returns the record, or every error of
    the row (never only the first). ``today`` bounds the birth date (default: today in
    Japan); pass the same value for every row of a file, so an import running past midnight
    applies one bound.
    """
    errors: list[RowError] = []
    # Any: each parser returns its own field's type; RegistryRecord's annotations are the
    # contract, and the tests check every field.
    values: dict[str, Any] = {"line_number": line_number}
    for field, parse in _REQUIRED_PARSERS:
        value = raw.get(field)
        if not value or value.isspace():
            errors.append(_missing(field, line_number))
            continue
        try:
            values[field] = parse(value)
        except RegistryValueError as error:
            errors.append(_invalid(field, line_number, value, error))

    value = raw.get("birth_date")
    if not value or value.isspace():
        errors.append(_missing("birth_date", line_number))
    else:
        try:
            values["birth_date"] = parse_birth_date(value, today=today)
        except RegistryValueError as error:
            errors.append(_invalid("birth_date", line_number, value, error))

    for field, parse in _OPTIONAL_PARSERS:
        value = raw.get(field)
        if not value or value.isspace():
            continue
        try:
            values[field] = parse(value)
        except RegistryValueError as error:
            if normalize_text(value):  # not only invisible characters: a real value
                errors.append(_invalid(field, line_number, value, error))

    if errors:
        return errors
    return RegistryRecord(**values)


def parse_record(
    record: CsvRecord, *, today: date | None = None
) -> RegistryRecord | list[RowError]:
    """:func:`parse_row` for a record from :class:`~booking.registry.csvfile.RegistryFile`,
    reporting a row the CSV reader could not split properly as a whole-row error."""
    if record.problem is not None:
        return [RowError(record.line_number, None, "", record.problem)]
    return parse_row(record.values, record.line_number, today=today)


# Duplicate voucher numbers. A voucher number (< 10**10 < 2**34) and a line number
# (< 2**29) pack into one signed 64-bit integer, so a million rows cost 8 MB instead of the
# ~100 MB a dict of strings would.
_LINE_BITS = 29
_LINE_MASK = (1 << _LINE_BITS) - 1


class DuplicateVoucherFinder:
    """Finds voucher numbers that occur more than once in a file; every occurrence is an
    error, since the file cannot say which row is right.

    Either two passes (``add`` every row, then check rows against :meth:`duplicates` while
    importing) or one pass (``add`` while importing, then mark the lines in
    :meth:`errors` afterwards)."""

    def __init__(self) -> None:
        self._packed = array("q")

    def __len__(self) -> int:
        return len(self._packed)

    def add(self, voucher_number: str, line_number: int) -> None:
        """Record one row. Raw values are normalised; values that are not a valid voucher
        number are skipped (they are reported by :func:`parse_row`)."""
        if not 0 < line_number <= _LINE_MASK:
            raise ValueError(f"line number out of range: {line_number}")
        if not (
            len(voucher_number) == 10 and voucher_number.isascii() and voucher_number.isdigit()
        ):
            try:
                voucher_number = normalize_voucher_number(voucher_number)
            except RegistryValueError:
                return
        self._packed.append(int(voucher_number) << _LINE_BITS | line_number)

    def duplicates(self) -> dict[str, list[int]]:
        """Voucher number -> the lines it occurs on (ascending), only for duplicates."""
        result: dict[str, list[int]] = {}
        previous_voucher = -1
        previous_line = 0
        for packed in sorted(self._packed):
            voucher = packed >> _LINE_BITS
            line = packed & _LINE_MASK
            if voucher == previous_voucher:
                key = f"{voucher:010d}"
                lines = result.get(key)
                if lines is None:
                    result[key] = [previous_line, line]
                else:
                    lines.append(line)
            previous_voucher = voucher
            previous_line = line
        return result

    def errors(self) -> list[RowError]:
        """One :class:`RowError` per row whose voucher number is duplicated, by line."""
        return duplicate_voucher_errors(self.duplicates())


def find_duplicate_vouchers(rows: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """``(voucher_number, line_number)`` pairs -> duplicated voucher number -> lines."""
    finder = DuplicateVoucherFinder()
    for voucher_number, line_number in rows:
        finder.add(voucher_number, line_number)
    return finder.duplicates()


_LINES_LISTED = 5


def duplicate_voucher_errors(duplicates: Mapping[str, Sequence[int]]) -> list[RowError]:
    """An error for every line of every duplicated voucher number, sorted by line."""
    label = FIELD_LABELS["voucher_number"]
    errors: list[RowError] = []
    for voucher_number, lines in duplicates.items():
        listed = "、".join(f"{line}行目" for line in lines[:_LINES_LISTED])
        if len(lines) > _LINES_LISTED:
            listed += f" ほか{len(lines) - _LINES_LISTED}行"
        message = f"接種券番号がファイル内で重複しています（{listed}）"
        masked = mask_value(voucher_number, keep_last=2)
        errors.extend(RowError(line, label, masked, message) for line in lines)
    errors.sort(key=lambda error: error.line_number)
    return errors
