"""What a registry import's preview counts, from its staged rows against the vouchers: taken
when the preview is made, and again when another import has changed the vouchers since."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import F, OuterRef, Subquery

from booking.models import Booking, RegistryImport, RegistryImportRow, Voucher
from booking.registry.fields import FIELD_LABELS
from booking.registry.pipeline import VOUCHER_TABLE
from tenants.crypto import cipher_for
from tenants.db import current_municipality


def preview_counts(registry_import: RegistryImport) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE v.id IS NULL),
                   count(*) FILTER (WHERE v.id IS NOT NULL AND (v.content_hash <> s.content_hash
                                    OR v.status <> 'active')),
                   count(*) FILTER (WHERE v.id IS NOT NULL AND v.content_hash = s.content_hash
                                    AND v.status = 'active')
            FROM booking_registryimportrow s
            LEFT JOIN booking_voucher v ON v.voucher_number = s.voucher_number
            WHERE s.import_id = %s AND NOT s.duplicate
            """,
            [registry_import.pk],
        )
        new, changed, unchanged = cursor.fetchone()
        cursor.execute(
            "SELECT count(DISTINCT line_number) FROM booking_registryimporterror"
            " WHERE import_id = %s",
            [registry_import.pk],
        )
        (invalid,) = cursor.fetchone()
    counts = {
        "rows": registry_import.rows_total,
        "new": new,
        "changed": changed,
        "unchanged": unchanged,
        "invalid": invalid,
    }
    if registry_import.full_list:
        unlisted = unlisted_vouchers(registry_import)
        counts["withdrawn"] = unlisted.count()
        # Said before confirming: their bookings are kept, and followed up after.
        counts["withdrawn_with_booking"] = (
            unlisted.filter(bookings__status__in=Booking.LIVE_STATUSES).distinct().count()
        )
        # What the withdrawals are a share of (a full list that would withdraw many is
        # confirmed only with their number acknowledged).
        counts["active"] = Voucher.objects.filter(status=Voucher.Status.ACTIVE).count()
    return counts


def unlisted_vouchers(registry_import: RegistryImport) -> Any:
    """Active vouchers that the (full-list) file does not mention at all — not even in a row
    that is invalid for another reason."""
    return Voucher.objects.filter(status=Voucher.Status.ACTIVE).extra(  # noqa: S610
        where=[
            "NOT EXISTS (SELECT 1 FROM booking_registryimportrow s WHERE s.import_id = %s"
            " AND s.voucher_number = booking_voucher.voucher_number)",
            "NOT EXISTS (SELECT 1 FROM booking_registryimporterror e WHERE e.import_id = %s"
            " AND e.voucher_number = booking_voucher.voucher_number)",
        ],
        params=[registry_import.pk, registry_import.pk],
    )


@dataclass(frozen=True)
class ChangedVoucher:
    """A voucher the import would change: its number and which columns change (never the
    values), and whether it comes back from withdrawn."""

    voucher_number: str
    columns: tuple[str, ...]
    returns: bool


CHANGED_SHOWN = 100


def changed_vouchers(
    registry_import: RegistryImport, *, limit: int = CHANGED_SHOWN
) -> list[ChangedVoucher]:
    """The first ``limit`` vouchers (by number) that the import would change, each with the
    columns whose values differ: a birth date changed is a login changed. For the
    municipality's own console: the two records are opened (with its key) to compare them,
    and only the column names leave here."""
    rows = list(
        RegistryImportRow.objects.filter(registry_import_id=registry_import.pk, duplicate=False)
        .annotate(
            current_personal=Subquery(_voucher_of_row.values("personal")[:1]),
            current_hash=Subquery(_voucher_of_row.values("content_hash")[:1]),
            current_status=Subquery(_voucher_of_row.values("status")[:1]),
            current_dose=Subquery(_voucher_of_row.values("dose")[:1]),
        )
        .filter(current_personal__isnull=False)
        .exclude(current_hash=F("content_hash"), current_status=Voucher.Status.ACTIVE)
        .order_by("voucher_number")
        .values_list(
            "voucher_number",
            "personal",
            "dose",
            "current_personal",
            "current_status",
            "current_dose",
        )[:limit]
    )
    if not rows:
        return []
    cipher = cipher_for(current_municipality())
    changed = []
    for number, personal, dose, current, status, current_dose in rows:
        new = cipher.open_record(bytes(personal), table=VOUCHER_TABLE, row_id=number)
        old = cipher.open_record(bytes(current), table=VOUCHER_TABLE, row_id=number)
        columns = [
            FIELD_LABELS[name]
            for name in FIELD_LABELS
            if name in new and new[name] != old.get(name)
        ]
        if dose != current_dose:
            columns.append(FIELD_LABELS["dose"])
        changed.append(ChangedVoucher(number, tuple(columns), status != Voucher.Status.ACTIVE))
    return changed


_voucher_of_row = Voucher.objects.filter(voucher_number=OuterRef("voucher_number"))
