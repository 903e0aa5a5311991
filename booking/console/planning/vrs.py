"""Vaccination records as CSV for the national Vaccination Record System (VRS).

One row per dose given, in this column order (the per-dose block of VRS's 予防接種台帳向け
layout, with the dose number last because each row holds one dose):

    1  宛名番号          the municipality's address number, from the sealed voucher
    2  登録日時          when the record was entered, YYYYMMDDHHMMSS, Asia/Tokyo
    3  接種日            YYYYMMDD
    4  接種券番号        10 digits
    5  市区町村コード    6 digits (the municipality's 全国地方公共団体コード)
    6  接種会場          as recorded
    7  医師名            as recorded
    8  ワクチンメーカー  the vaccine's maker (its name when no maker is set)
    9  ロット番号        as recorded
    10 接種回数          1, 2, 3, ...

Values are written as recorded, never shortened to VRS's display widths (a lot number cut
short would be a wrong record). Rows are ordered by record id, read in batches by keyset
(``id > last``), so a large export never holds more than one batch in memory and needs no
long transaction. The set is fixed when the export starts (records entered up to ``as_of``),
so the audited count is the number of rows written and a leak report can name the rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Count
from django_tenants.utils import tenant_context

from audit.models import Event
from booking.console.planning.common import JAPAN
from booking.models import VaccinationRecord
from booking.selectors.vaccinations import VrsQuery
from tenants.crypto import cipher_for

VRS_COLUMNS = (
    "宛名番号",
    "登録日時",
    "接種日",
    "接種券番号",
    "市区町村コード",
    "接種会場",
    "医師名",
    "ワクチンメーカー",
    "ロット番号",
    "接種回数",
)
VOUCHER_TABLE = "booking_voucher"
BATCH = 1000
ENCODINGS = ("utf-8", "utf-8-sig", "cp932")


def vrs_counts(query: VrsQuery) -> tuple[int, int]:
    """Rows and distinct vouchers the export will hold (one aggregate query)."""
    counts = query.records().aggregate(
        rows=Count("id"), vouchers=Count("voucher_id", distinct=True)
    )
    return int(counts["rows"]), int(counts["vouchers"])


def vrs_unwritable(query: VrsQuery, encoding: str) -> list[str]:
    """The names in the export (venue, doctor, vaccine) that ``encoding`` cannot write: a
    Shift_JIS file would carry "?" for 𠮷 or 﨑 without a word. One query of distinct values;
    none for UTF-8."""
    if encoding != "cp932":
        return []
    names: set[str] = set()
    for row in (
        query.records()
        .values_list("venue_name", "doctor", "product__maker", "product__name")
        .distinct()
    ):
        names.update(value for value in row if value)
    unwritable = []
    for name in sorted(names):
        try:
            name.encode("cp932")
        except UnicodeEncodeError:
            unwritable.append(name)
    return unwritable


# Changes made at reception to records a VRS export may already hold.
_CHANGED_ACTIONS = ("reception.vaccination_corrected", "reception.vaccination_voided")
CHANGES_SHOWN = 200
# Exports looked through for the records they held (a year of daily ones).
_EXPORTS_READ = 400


@dataclass(frozen=True)
class VrsChange:
    """A record corrected or withdrawn after an export held it: to correct in the VRS too."""

    at: datetime
    voided: bool
    voucher_id: int
    voucher_number: str
    dose: int
    vaccinated_on: date
    # What changed ("FA1234 → FA1235"), by field; empty for a withdrawal.
    changes: dict[str, str]
    reason: str


@dataclass(frozen=True)
class VrsChanges:
    changes: list[VrsChange]
    # The trail's sequence number up to which the list reads: what "done" marks as done.
    through_seq: int = 0


def vrs_changes_to_fix() -> VrsChanges:
    """The records corrected or withdrawn at reception after an export held them, since an
    admin last said these were corrected in the VRS: the VRS keeps what the export said
    until corrected there by hand (a correction keeps the record's 登録日, so no later
    export by that date carries it again). Which records an export held is asked again
    with its own range (``VrsQuery``), one query per export."""
    done = Event.objects.filter(action="export.vrs_changes_done").order_by("-seq").first()
    done_seq = int(done.details.get("through_seq", 0)) if done is not None else 0
    events = list(
        Event.objects.filter(action__in=_CHANGED_ACTIONS, seq__gt=done_seq)
        .exclude(target_id="")
        .order_by("seq")[:CHANGES_SHOWN]
    )
    ids = [int(event.target_id) for event in events if event.target_id.isdigit()]
    if not ids:
        return VrsChanges([])
    records = VaccinationRecord.every_record.select_related("voucher").in_bulk(ids)
    if not records:
        return VrsChanges([], through_seq=events[-1].seq)
    held: dict[int, int] = {}  # record -> the first export (its seq) that held it
    # Only exports made once the earliest of these records was: none before could hold one.
    exports = Event.objects.filter(
        action="export.vrs",
        seq__lt=events[-1].seq,
        occurred_at__gte=min(record.recorded_at for record in records.values()),
    ).order_by("-seq")
    for export in exports[:_EXPORTS_READ]:
        query = _export_query(export)
        if query is None:
            continue
        for record_id in query.records().filter(pk__in=ids).values_list("pk", flat=True):
            held[record_id] = min(held.get(record_id, export.seq), export.seq)
    changes = []
    for event in events:
        vaccination = records.get(int(event.target_id)) if event.target_id.isdigit() else None
        if vaccination is None or held.get(vaccination.pk, event.seq) >= event.seq:
            continue  # no export held it before: the next one carries it as it is now
        details = event.details if isinstance(event.details, dict) else {}
        changes.append(
            VrsChange(
                at=event.occurred_at,
                voided=event.action == "reception.vaccination_voided",
                voucher_id=vaccination.voucher_id,
                voucher_number=vaccination.voucher.voucher_number,
                dose=vaccination.dose,
                vaccinated_on=vaccination.vaccinated_on,
                changes={
                    field: str(details[field])
                    for field in ("lot_number", "doctor")
                    if field in details and event.action == "reception.vaccination_corrected"
                },
                reason=str(details.get("reason", "")),
            )
        )
    return VrsChanges(changes, through_seq=events[-1].seq)


def _export_query(export: Event) -> VrsQuery | None:
    """The query an export ran, from what its trail event kept."""
    details = export.details if isinstance(export.details, dict) else {}
    try:
        return VrsQuery(
            first_day=date.fromisoformat(details["first_day"]),
            last_day=date.fromisoformat(details["last_day"]),
            basis=str(details["basis"]),
            as_of=datetime.fromisoformat(details["as_of"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


_FIELDS = (
    "id",
    "recorded_at",
    "vaccinated_on",
    "venue_name",
    "doctor",
    "lot_number",
    "dose",
    "product__maker",
    "product__name",
    "voucher__voucher_number",
    "voucher__personal",
)


def _batches(query: VrsQuery) -> Iterator[list[tuple[Any, ...]]]:
    last_id = 0
    while True:
        batch = list(
            query.records().filter(id__gt=last_id).order_by("id").values_list(*_FIELDS)[:BATCH]
        )
        if not batch:
            return
        yield batch
        last_id = batch[-1][0]


def vrs_csv_stream(*, municipality: Any, query: VrsQuery, encoding: str) -> Iterator[bytes]:
    """The CSV, batch by batch, for a ``StreamingHttpResponse``.

    It runs after the view has returned, when the request's middleware has already put the
    connection back to the public schema: so it enters the municipality itself for each
    batch, and leaves again before handing the bytes out.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}")
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    cipher = cipher_for(municipality)  # one cipher for the whole export
    header = _lines([VRS_COLUMNS])
    yield (("\ufeff" if encoding == "utf-8-sig" else "") + header).encode(codec)
    batches = _batches(query)
    while True:
        with tenant_context(municipality):
            batch = next(batches, None)
            if batch is None:
                return
            rows = [_row(cipher, municipality.code, values) for values in batch]
        yield _lines(rows).encode(codec, errors="replace")


def _row(cipher: Any, municipality_code: str, values: tuple[Any, ...]) -> list[str]:
    (
        _id,
        recorded_at,
        vaccinated_on,
        venue_name,
        doctor,
        lot_number,
        dose,
        maker,
        product_name,
        voucher_number,
        personal,
    ) = values
    sealed = cipher.open_record(bytes(personal), table=VOUCHER_TABLE, row_id=voucher_number)
    return [
        sealed.get("address_number") or "",
        recorded_at.astimezone(JAPAN).strftime("%Y%m%d%H%M%S"),
        vaccinated_on.strftime("%Y%m%d"),
        voucher_number,
        municipality_code,
        venue_name,
        doctor,
        maker or product_name,
        lot_number,
        str(dose),
    ]


def _lines(rows: Any) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()
