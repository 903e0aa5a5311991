"""Reading an uploaded slot CSV: every row is checked before anything is written.

Columns (Japanese headers, in any order, full-width letters allowed):
会場, 日付, 開始時刻, 終了時刻, ワクチンコード, ウェブ枠, LINE枠, コールセンター枠.
会場 is the venue's number (shown on the venue list) or its exact name. Dates are
``2026/5/18`` or ``2026-05-18``, times ``9:00``; Asia/Tokyo.

All or nothing: if any row has an error, the page lists every error with its line number
and no slot is created. A row for a slot that already exists (same venue, vaccine and start)
is not an error; it is skipped, as the generator skips it.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext as _

from booking.models import VaccineProduct, Venue
from booking.services.planning import MAX_PLANNED_SLOTS, SlotSpec

JAPAN = ZoneInfo("Asia/Tokyo")
ERRORS_SHOWN = 100
MAX_CAPACITY = 10_000

HEADERS = (
    "会場",
    "日付",
    "開始時刻",
    "終了時刻",
    "ワクチンコード",
    "ウェブ枠",
    "LINE枠",
    "コールセンター枠",
)
_FIELDS = ("venue", "day", "start", "end", "product", "web", "line", "call_centre")
_ALIASES = {
    "会場id": "venue",
    "会場番号": "venue",
    "会場名": "venue",
    "接種日": "day",
    "開始": "start",
    "終了": "end",
    "ワクチン": "product",
    "web枠": "web",
    "電話枠": "call_centre",
    "コールセンター": "call_centre",
}
_DATE = re.compile(r"^(\d{4})[/\-.](\d{1,2})[/\-.](\d{1,2})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class SlotFile:
    specs: list[SlotSpec] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    encoding: str = ""
    rows: int = 0

    @property
    def valid(self) -> bool:
        return not self.errors


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def _header_key(text: str) -> str:
    return re.sub(r"\s+", "", _fold(text).lstrip("\ufeff")).lower()


_HEADER_FIELDS = {_header_key(label): name for label, name in zip(HEADERS, _FIELDS, strict=True)}
_HEADER_FIELDS.update({_header_key(label): name for label, name in _ALIASES.items()})


def decode(raw: bytes) -> tuple[str, str]:
    """The text and the encoding it was in: UTF-8 (with or without BOM), else CP932."""
    try:
        return raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp932"), "Shift_JIS"
    except UnicodeDecodeError as exc:
        raise ValueError(
            _("文字コードを読み取れません。UTF-8 または Shift_JIS（CP932）で保存してください。")
        ) from exc


def _parse_date(text: str) -> date:
    match = _DATE.match(_fold(text))
    if not match:
        raise ValueError
    year, month, day = (int(part) for part in match.groups())
    return date(year, month, day)


def _parse_time(text: str) -> time:
    match = _TIME.match(_fold(text))
    if not match:
        raise ValueError
    hour, minute, second = match.groups()
    return time(int(hour), int(minute), int(second or 0))


def _parse_capacity(text: str) -> int:
    folded = _fold(text).replace(",", "")
    if folded == "":
        return 0
    if not folded.isdigit():
        raise ValueError
    value = int(folded)
    if value > MAX_CAPACITY:
        raise ValueError
    return value


class _Venues:
    """Venue lookup by number or exact name, loaded once per file."""

    def __init__(self) -> None:
        rows = list(Venue.objects.values_list("pk", "name", "is_open"))
        self.by_id = {pk: (name, is_open) for pk, name, is_open in rows}
        self.by_name: dict[str, list[int]] = {}
        for pk, name, _is_open in rows:
            self.by_name.setdefault(_fold(name), []).append(pk)
        self.offered: dict[int, set[int]] = {}
        for venue_id, product_id in Venue.products.through.objects.values_list(
            "venue_id", "vaccineproduct_id"
        ):
            self.offered.setdefault(venue_id, set()).add(product_id)

    def find(self, text: str) -> int:
        folded = _fold(text)
        if folded.isdigit() and int(folded) in self.by_id:
            return int(folded)
        matches = self.by_name.get(folded, [])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise LookupError(_("同じ名前の会場が複数あります。会場の番号で指定してください。"))
        raise LookupError(_("会場が見つかりません（会場の番号または正確な会場名）。"))


def read_slot_file(raw: bytes) -> SlotFile:
    """Check every row of the file and plan its slots. Reads the database, writes nothing."""
    result = SlotFile()
    try:
        text, result.encoding = decode(raw)
    except ValueError as exc:
        result.errors.append(RowError(0, str(exc)))
        return result
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        result.errors.append(RowError(1, _("見出しの行がありません。")))
        return result
    columns = [_HEADER_FIELDS.get(_header_key(cell)) for cell in header]
    missing = [label for label, name in zip(HEADERS, _FIELDS, strict=True) if name not in columns]
    if missing:
        result.errors.append(RowError(1, _("見出しに次の列がありません：") + "、".join(missing)))
        return result
    venues = _Venues()
    products = {
        _fold(code).lower(): pk
        for code, pk in VaccineProduct.objects.filter(active=True).values_list("code", "pk")
    }
    now = timezone.now()
    seen: dict[tuple[int, int, datetime], int] = {}
    # A row needs cells up to the last column read (a note column after it may be left off).
    width = max(index for index, name in enumerate(columns) if name is not None) + 1
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            result.rows += 1
            if result.rows > MAX_PLANNED_SLOTS:
                result.errors.append(
                    RowError(
                        line,
                        _("一度に登録できるのは%(rows)s行までです。")
                        % {"rows": f"{MAX_PLANNED_SLOTS:,}"},
                    )
                )
                break
            if len(cells) < width:
                # A row cut short: say so, not what each missing cell would be wrong for.
                result.errors.append(
                    RowError(
                        line,
                        _("列が足りません（%(cells)s列。見出しは%(columns)s列です）。")
                        % {"cells": len(cells), "columns": len(columns)},
                    )
                )
                continue
            values = {name: cells[index] for index, name in enumerate(columns) if name is not None}
            spec, problems = _read_row(values, venues, products, now)
            for problem in problems:
                result.errors.append(RowError(line, problem))
            if spec is None:
                continue
            key = (spec.venue_id, spec.product_id, spec.starts_at)
            if key in seen:
                result.errors.append(
                    RowError(
                        line,
                        _("%(line)s行目と同じ会場・ワクチン・開始時刻です。") % {"line": seen[key]},
                    )
                )
                continue
            seen[key] = line
            result.specs.append(spec)
    except csv.Error:
        result.errors.append(
            RowError(reader.line_num, _("CSVの形式が正しくありません（引用符の閉じ忘れなど）。"))
        )
    result.errors += _overlaps(result.specs, seen)
    result.errors.sort(key=lambda error: error.line)
    return result


def _read_row(
    values: dict[str, str], venues: _Venues, products: dict[str, int], now: datetime
) -> tuple[SlotSpec | None, list[str]]:
    problems: list[str] = []
    venue_id = product_id = None
    try:
        venue_id = venues.find(values["venue"])
        if not venues.by_id[venue_id][1]:
            problems.append(_("受付を停止している会場です。"))
    except LookupError as exc:
        problems.append(str(exc))
    product_id = products.get(_fold(values["product"]).lower())
    if product_id is None:
        problems.append(_("ワクチンコードが見つかりません（使用中のワクチンのコード）。"))
    elif venue_id is not None:
        offered = venues.offered.get(venue_id)
        if offered and product_id not in offered:
            problems.append(_("この会場では扱っていないワクチンです。"))
    day = start = end = None
    try:
        day = _parse_date(values["day"])
    except ValueError:
        problems.append(_("日付の形式が正しくありません（例：2026/5/18）。"))
    try:
        start = _parse_time(values["start"])
    except ValueError:
        problems.append(_("開始時刻の形式が正しくありません（例：9:00）。"))
    try:
        end = _parse_time(values["end"])
    except ValueError:
        problems.append(_("終了時刻の形式が正しくありません（例：9:30）。"))
    capacities: list[int] = []
    for name, label in (
        ("web", "ウェブ枠"),
        ("line", "LINE枠"),
        ("call_centre", "コールセンター枠"),
    ):
        try:
            capacities.append(_parse_capacity(values[name]))
        except ValueError:
            problems.append(
                _("%(column)sは0以上%(most)s以下の整数で入力してください。")
                % {"column": label, "most": f"{MAX_CAPACITY:,}"}
            )
    if len(capacities) == 3 and sum(capacities) == 0:
        problems.append(_("いずれかの受付方法に1人以上の定員を設定してください。"))
    if day is not None and start is not None and end is not None:
        starts_at = datetime.combine(day, start, tzinfo=JAPAN)
        ends_at = datetime.combine(day, end, tzinfo=JAPAN)
        if ends_at <= starts_at:
            problems.append(_("終了時刻は開始時刻より後にしてください。"))
        elif starts_at <= now:
            problems.append(_("過去の日時には枠を作成できません。"))
    if problems or venue_id is None or product_id is None:
        return None, problems
    assert day is not None and start is not None and end is not None
    return (
        SlotSpec(
            venue_id=venue_id,
            product_id=product_id,
            starts_at=datetime.combine(day, start, tzinfo=JAPAN),
            ends_at=datetime.combine(day, end, tzinfo=JAPAN),
            capacity_web=capacities[0],
            capacity_line=capacities[1],
            capacity_call_centre=capacities[2],
        ),
        [],
    )


def _overlaps(
    specs: Sequence[SlotSpec], lines: dict[tuple[int, int, datetime], int]
) -> list[RowError]:
    """Rows of the same venue and vaccine whose times cross (a twin slot, not capacity)."""
    errors: list[RowError] = []
    ordered = sorted(specs, key=lambda s: (s.venue_id, s.product_id, s.starts_at))
    for before, after in zip(ordered, ordered[1:], strict=False):
        if (
            before.venue_id == after.venue_id
            and before.product_id == after.product_id
            and after.starts_at < before.ends_at
        ):
            first = lines[(before.venue_id, before.product_id, before.starts_at)]
            second = lines[(after.venue_id, after.product_id, after.starts_at)]
            errors.append(
                RowError(
                    second,
                    _("%(line)s行目の枠と時間が重なっています（同じ会場・ワクチン）。")
                    % {"line": first},
                )
            )
    return errors


def template_csv(today: date | None = None) -> bytes:
    """The header row and one example, UTF-8 with a BOM (Excel opens it as Japanese). The
    example's day is two weeks ahead, so the template as downloaded is a valid file."""
    day = (today or timezone.localdate()) + timedelta(days=14)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerow(
        ["1", f"{day.year}/{day.month}/{day.day}", "9:00", "9:30", "pfizer", "10", "5", "5"]
    )
    return buffer.getvalue().encode("utf-8-sig")
