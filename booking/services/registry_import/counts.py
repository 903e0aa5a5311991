"""What a registry import's preview counts, from its staged rows against the vouchers: taken
when the preview is made, and again when another import has changed the vouchers since."""

from __future__ import annotations

from typing import Any

from django.db import connection

from booking.models import RegistryImport, Voucher


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
        counts["withdrawn"] = unlisted_vouchers(registry_import).count()
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
