"""Which residents a bulk read reached: files and exports that hold many residents' data.

The breach-scope report (``booking.services.incident.trail_report_build``) lists one row per
event and resident. Most reads name their residents in the event (a voucher as the target,
or ``details["vouchers"]``). A file can hold hundreds of thousands, so these events instead
record what makes the set reproducible, and stay small:

- ``registry_import.codes_downloaded``: the vouchers in the codes file, as ranges of
  consecutive voucher ids (``details["voucher_ranges"]``). Codes are issued in id order to
  the vouchers an import created, so a whole import is usually one range.
- ``export.vrs``: the export's query (days, basis, ``as_of``). Vaccination records are only
  ever added, never changed or deleted, so the same query names the same records later.
- ``registry_import.error_file_downloaded``: the import (the event's target). Its error rows
  (``RegistryImportError``) are kept with the import and never rewritten after the preview;
  rows whose voucher number is not a voucher yet are listed by number, rows without a valid
  number are counted.

Voucher ids and numbers only: never a personal value in the trail.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import Count

from audit.models import Event
from booking.models import RegistryImportError, VaccinationRecord
from booking.selectors.vaccinations import VrsQuery

CODES_DOWNLOADED = "registry_import.codes_downloaded"
ERROR_FILE_DOWNLOADED = "registry_import.error_file_downloaded"
VRS_EXPORTED = "export.vrs"
BULK_READ_ACTIONS = (VRS_EXPORTED, ERROR_FILE_DOWNLOADED, CODES_DOWNLOADED)

_LOOKUP_BATCH = 10_000


@dataclass(frozen=True)
class ReadResident:
    """One resident an event showed: a voucher, or — for a registry row that is not a
    voucher — its voucher number, or only a note saying how many such rows there were."""

    voucher_id: int | None
    voucher_number: str = ""
    note: str = ""


def voucher_ranges(ids: Iterable[int]) -> list[list[int]]:
    """``[1, 2, 3, 7]`` → ``[[1, 3], [7, 7]]``."""
    ranges = VoucherRanges()
    ranges.add_ids(sorted(ids))
    return ranges.pairs


class VoucherRanges:
    """Voucher ids as disjoint, ascending ``[first, last]`` ranges, built a piece at a time
    in any order: a million vouchers an import created are one range in memory, not a
    million ids."""

    def __init__(self, pairs: Iterable[list[int]] = ()) -> None:
        self.pairs: list[list[int]] = []
        for first, last in pairs:
            self.add(first, last)

    @property
    def count(self) -> int:
        return sum(last - first + 1 for first, last in self.pairs)

    def add(self, first: int, last: int) -> None:
        pairs = self.pairs
        # The common cases, ids in ascending order: after every range, or extending the last.
        if not pairs or pairs[-1][1] < first - 1:
            pairs.append([first, last])
            return
        if pairs[-1][0] <= first and pairs[-1][1] <= last:
            pairs[-1][1] = last
            return
        # The ranges that overlap [first, last] or touch it, merged with it into one.
        start = bisect.bisect_left(pairs, first - 1, key=lambda pair: pair[1])
        end = bisect.bisect_right(pairs, last + 1, key=lambda pair: pair[0])
        if start < end:
            first, last = min(first, pairs[start][0]), max(last, pairs[end - 1][1])
        pairs[start:end] = [[first, last]]

    def add_ids(self, ids: Iterable[int]) -> None:
        for voucher_id in ids:
            self.add(voucher_id, voucher_id)


def voucher_ranges_expand(ranges: Any) -> list[int]:
    return list(voucher_ranges_ids(ranges))


def _range_pairs(ranges: Any) -> Iterator[tuple[int, int]]:
    """The recorded ``[first, last]`` pairs of integers; anything else is skipped."""
    if not isinstance(ranges, list):
        return
    for pair in ranges:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(value, int) for value in pair)
        ):
            yield pair[0], pair[1]


def voucher_ranges_ids(ranges: Any) -> Iterator[int]:
    """The ids of recorded ranges, one at a time (a million for a large codes file);
    anything that is not a ``[first, last]`` pair of integers is skipped."""
    for first, last in _range_pairs(ranges):
        yield from range(first, last + 1)


def codes_file_scope(segments: Iterable[bytes]) -> dict[str, Any]:
    """Audit details for a codes file read back (UTF-8 ``接種券番号,認証コード`` rows, in
    pieces that may cut a line anywhere): its vouchers as id ranges. For files written
    before the scope was recorded with them (``RegistryImport.codes_scope``). Call before
    the file is handed out, inside the download's transaction.

    Read a batch of numbers at a time and kept as ranges only: a million codes are a few
    ranges (an import's vouchers have consecutive ids), not a million ids in memory."""
    ranges = VoucherRanges()
    numbers = _first_cells(segments)
    while batch := list(itertools.islice(numbers, _LOOKUP_BATCH)):
        ranges.add_ids(sorted(_voucher_ids_of_numbers(batch).values()))
    return {"voucher_ranges": ranges.pairs, "residents": ranges.count}


def _first_cells(segments: Iterable[bytes]) -> Iterator[str]:
    """The first cell of every line after the header (codes files hold no quoted cells)."""
    rest = b""
    header = True
    for segment in segments:
        lines = (rest + segment).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if header:
                header = False
            elif line.strip():
                yield line.split(b",", 1)[0].decode("utf-8")
    if rest.strip() and not header:
        yield rest.split(b",", 1)[0].decode("utf-8")


def _voucher_ids_of_numbers(numbers: list[str]) -> dict[str, int]:
    # One array parameter, not one placeholder per number: the client would parse thousands.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT voucher_number, id FROM booking_voucher WHERE voucher_number = ANY(%s)",
            [numbers],
        )
        return dict(cursor.fetchall())


def _export_query(details: Any) -> VrsQuery | None:
    """The export's own query, so the records it names are exactly those the file held
    (None: an event that does not say it)."""
    try:
        query = VrsQuery(
            first_day=date.fromisoformat(details["first_day"]),
            last_day=date.fromisoformat(details["last_day"]),
            basis=details["basis"],
            as_of=datetime.fromisoformat(details["as_of"]),
        )
        query.records()  # an unknown basis is refused here, not later
    except (KeyError, TypeError, ValueError):
        return None
    return query


def _vrs_residents(details: dict[str, Any]) -> list[ReadResident]:
    query = _export_query(details)
    if query is None:
        rows = details.get("rows", "?")
        return [ReadResident(None, note=f"VRS出力 {rows}件（対象を特定できません）")]
    ids = query.records().order_by().values_list("voucher_id", flat=True).distinct()
    return [ReadResident(voucher_id) for voucher_id in sorted(ids)]


def _error_file_residents(event: Event) -> Iterator[ReadResident]:
    """Each voucher number the import's error rows have, in order (a voucher, or a number
    that is not one), then how many rows had none: read from the database a batch at a
    time, so an error file of half a million rows is never in memory."""
    if not event.target_id.isdigit():
        yield ReadResident(None, note="エラーファイル（取込を特定できません）")
        return
    errors = RegistryImportError.objects.filter(registry_import_id=int(event.target_id))
    numbered = errors.exclude(voucher_number="")
    # With how many lines had it: a number on two lines (the duplicate error) may be two
    # people's, one of whom another number is really theirs; the report says so.
    numbers = (
        numbered.order_by("voucher_number")
        .values_list("voucher_number")
        .annotate(lines=Count("line_number", distinct=True))
        .iterator(chunk_size=_LOOKUP_BATCH)
    )
    while batch := list(itertools.islice(numbers, _LOOKUP_BATCH)):
        ids = _voucher_ids_of_numbers([number for number, _lines in batch])
        for number, lines in batch:
            notes = [] if number in ids else ["未登録の接種券番号"]
            if lines > 1:
                notes.append(f"この番号の行 {lines}行（別の方の行を含むことがあります）")
            yield ReadResident(ids.get(number), number, "、".join(notes))
    # A row has several error rows when it has several errors: lines, not error rows.
    unnumbered = (
        errors.filter(voucher_number="")
        .exclude(line_number__in=numbered.values("line_number"))
        .values("line_number")
        .distinct()
        .count()
    )
    if unnumbered:
        yield ReadResident(
            None,
            note=f"接種券番号のない行 {unnumbered}行（取込 {event.target_id} のエラーファイル）",
        )


def _in_ranges(ranges: Any, voucher_id: int) -> bool:
    return any(first <= voucher_id <= last for first, last in _range_pairs(ranges))


def bulk_reads_of(voucher_number: str, voucher_id: int | None) -> list[int]:
    """The bulk reads (``BULK_READ_ACTIONS``) whose files held this resident, as event ids
    (``seq``): what the trail shows when an auditor asks who read one resident's data. A
    number that is no voucher (only in an error file) has its error files alone."""
    seqs = list(
        Event.objects.filter(
            action=ERROR_FILE_DOWNLOADED,
            target_id__in=[
                str(pk)
                for pk in RegistryImportError.objects.filter(voucher_number=voucher_number)
                .values_list("registry_import_id", flat=True)
                .distinct()
            ],
        ).values_list("seq", flat=True)
    )
    if voucher_id is None:
        return seqs
    codes = Event.objects.filter(action=CODES_DOWNLOADED).values_list("seq", "details")
    seqs += [
        seq
        for seq, details in codes
        if isinstance(details, dict) and _in_ranges(details.get("voucher_ranges"), voucher_id)
    ]
    # An export can have held the resident only once a dose of theirs was recorded.
    first_record = (  # withdrawn ones too: an export before the withdrawal held them
        VaccinationRecord.every_record.filter(voucher_id=voucher_id)
        .order_by("recorded_at")
        .values_list("recorded_at", flat=True)
        .first()
    )
    if first_record is not None:
        exports = Event.objects.filter(
            action=VRS_EXPORTED, occurred_at__gte=first_record
        ).values_list("seq", "details")
        for seq, details in exports:
            query = _export_query(details)
            if query is not None and query.records().filter(voucher_id=voucher_id).exists():
                seqs.append(seq)
    return seqs


def bulk_read_residents(event: Event) -> Iterator[ReadResident]:
    """The residents of a bulk read (one of ``BULK_READ_ACTIONS``); see the module's docstring."""
    details = event.details if isinstance(event.details, dict) else {}
    if event.action == VRS_EXPORTED:
        yield from _vrs_residents(details)
    elif event.action == ERROR_FILE_DOWNLOADED:
        yield from _error_file_residents(event)
    elif event.action == CODES_DOWNLOADED:
        if "voucher_ranges" in details:
            for voucher_id in voucher_ranges_ids(details["voucher_ranges"]):
                yield ReadResident(voucher_id)
        else:  # recorded before the codes file named its vouchers
            codes = details.get("codes", "?")
            note = f"認証コード {codes}件（対象の接種券は記録されていません）"
            yield ReadResident(None, note=note)
