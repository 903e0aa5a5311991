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

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from audit.models import Event
from booking.models import RegistryImportError, Voucher
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
    ranges: list[list[int]] = []
    for voucher_id in sorted(set(ids)):
        if ranges and ranges[-1][1] == voucher_id - 1:
            ranges[-1][1] = voucher_id
        else:
            ranges.append([voucher_id, voucher_id])
    return ranges


def voucher_ranges_expand(ranges: Any) -> list[int]:
    if not isinstance(ranges, list):
        return []
    ids: list[int] = []
    for pair in ranges:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(value, int) for value in pair)
        ):
            ids.extend(range(pair[0], pair[1] + 1))
    return ids


def _voucher_ids_of_numbers(numbers: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    batch: list[str] = []

    def lookup() -> None:
        found.update(
            Voucher.objects.filter(voucher_number__in=batch).values_list("voucher_number", "id")
        )

    for number in numbers:
        batch.append(number)
        if len(batch) == _LOOKUP_BATCH:
            lookup()
            batch = []
    if batch:
        lookup()
    return found


def codes_file_scope(text: str) -> dict[str, Any]:
    """Audit details for a codes file (``接種券番号,認証コード`` rows): its vouchers as id
    ranges. Call before the file is handed out, inside the download's transaction."""
    reader = csv.reader(io.StringIO(text))
    next(reader, None)  # the header
    numbers = [line[0] for line in reader if line]
    ids = _voucher_ids_of_numbers(numbers).values()
    return {"voucher_ranges": voucher_ranges(ids), "residents": len(ids)}


def _vrs_residents(details: dict[str, Any]) -> list[ReadResident]:
    # The export's own query, so the report names exactly the records the file held.
    try:
        query = VrsQuery(
            first_day=date.fromisoformat(details["first_day"]),
            last_day=date.fromisoformat(details["last_day"]),
            basis=details["basis"],
            as_of=datetime.fromisoformat(details["as_of"]),
        )
        ids = query.records().order_by().values_list("voucher_id", flat=True).distinct()
        return [ReadResident(voucher_id) for voucher_id in sorted(ids)]
    except (KeyError, TypeError, ValueError):
        rows = details.get("rows", "?")
        return [ReadResident(None, note=f"VRS出力 {rows}件（対象を特定できません）")]


def _error_file_residents(event: Event) -> list[ReadResident]:
    if not event.target_id.isdigit():
        return [ReadResident(None, note="エラーファイル（取込を特定できません）")]
    lines = RegistryImportError.objects.filter(registry_import_id=int(event.target_id))
    numbered: dict[int, str] = {}
    unnumbered: set[int] = set()
    for line, number in lines.values_list("line_number", "voucher_number"):
        if number:
            numbered[line] = number
        else:
            unnumbered.add(line)
    unnumbered -= set(numbered)
    ids = _voucher_ids_of_numbers(sorted(set(numbered.values())))
    residents = [
        ReadResident(ids.get(number), number, "" if number in ids else "未登録の接種券番号")
        for number in sorted(set(numbered.values()))
    ]
    if unnumbered:
        residents.append(
            ReadResident(
                None,
                note=f"接種券番号のない行 {len(unnumbered)}行"
                f"（取込 {event.target_id} のエラーファイル）",
            )
        )
    return residents


def bulk_read_residents(event: Event) -> Iterator[ReadResident]:
    """The residents of a bulk read (one of ``BULK_READ_ACTIONS``); see the module's docstring."""
    details = event.details if isinstance(event.details, dict) else {}
    if event.action == VRS_EXPORTED:
        yield from _vrs_residents(details)
    elif event.action == ERROR_FILE_DOWNLOADED:
        yield from _error_file_residents(event)
    elif event.action == CODES_DOWNLOADED:
        if "voucher_ranges" in details:
            for voucher_id in voucher_ranges_expand(details["voucher_ranges"]):
                yield ReadResident(voucher_id)
        else:  # recorded before the codes file named its vouchers
            codes = details.get("codes", "?")
            note = f"認証コード {codes}件（対象の接種券は記録されていません）"
            yield ReadResident(None, note=note)
