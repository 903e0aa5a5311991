"""Confirm (or cancel) a preview, then apply it: batched upserts from the staging table,
and at the end the withdrawal of the vouchers a full list leaves out and the activation
codes."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport, Voucher
from booking.models.registry import STALE_AFTER
from booking.selectors.registry import withdrawn_vouchers_with_bookings
from booking.services.registry_import.codes import activation_codes_issue
from booking.services.registry_import.progress import Progress
from booking.services.registry_import.state import (
    RegistryImportRefused,
    _claim,
    _delete_upload,
    _enqueue,
    _event_details,
    _fail,
    _no_commit_wait,
    _staging_reset,
    audit_file_name,
)
from tenants.db import current_municipality

# A batch is a range of this many lines of the file: what a batch covers follows from the
# line it starts after, with no query to find where the next one ends.
APPLY_BATCH_LINES = 50_000


def registry_import_confirm(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None, enqueue: bool = True
) -> RegistryImport:
    if registry_import.status != RegistryImport.Status.PREVIEWED or registry_import.confirmed_at:
        raise RegistryImportRefused(_("この取込は確認済みの状態ではないため、実行できません。"))
    with transaction.atomic():
        updated = RegistryImport.objects.filter(
            pk=registry_import.pk, status=RegistryImport.Status.PREVIEWED, confirmed_at=None
        ).update(confirmed_at=timezone.now(), confirmed_by=f"{actor.kind}:{actor.id}"[:90])
        if updated != 1:
            raise RegistryImportRefused(_("この取込は既に実行されています。"))
        record(
            action="registry_import.confirmed",
            actor=actor,
            target=registry_import,
            ip=ip,
            details=_event_details(registry_import),
        )
        if enqueue:
            _enqueue("booking.registry_import_apply", registry_import)
    registry_import.refresh_from_db()
    return registry_import


def registry_import_cancel(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None, reason: str = ""
) -> RegistryImport:
    """Drop an import that has not started writing vouchers: its staged rows and its
    uploaded file go. ``reason`` says why in the trail when nobody asked (an expired
    preview)."""
    now = timezone.now()
    # A parse that died may be cancelled too (it wrote nothing but the staging rows); an
    # apply that died may not: part of its rows are in, and resuming it finishes the job.
    stalled_parse = Q(status=RegistryImport.Status.PARSING) & (
        Q(heartbeat_at=None) | Q(heartbeat_at__lt=now - STALE_AFTER)
    )
    not_started = Q(
        status__in=[RegistryImport.Status.UPLOADED, RegistryImport.Status.PREVIEWED],
        confirmed_at=None,
    )
    updated = (
        RegistryImport.objects.filter(pk=registry_import.pk)
        .filter(not_started | stalled_parse)
        .update(status=RegistryImport.Status.CANCELLED, finished_at=now)
    )
    if updated != 1:
        raise RegistryImportRefused(_("この取込は取り消せません。"))
    registry_import.refresh_from_db()
    _staging_reset(registry_import)
    _delete_upload(registry_import)
    details: dict[str, Any] = {"file_name": audit_file_name(registry_import)}
    if reason:
        details["reason"] = reason
    record(
        action="registry_import.cancelled",
        actor=actor,
        target=registry_import,
        ip=ip,
        details=details,
    )
    return registry_import


# A batch of the apply: changed (or withdrawn) vouchers are updated, new ones inserted, and
# unchanged ones not touched at all — not even locked, so re-importing the same list writes
# nothing. Vouchers are only ever created by an import, one import at work at a time, and
# no two rows of a batch share a number (duplicates are marked): a plain INSERT suffices.
_APPLY_CHANGED = """
UPDATE booking_voucher v SET
    personal = s.personal, kana_index = s.kana_index, phone_index = s.phone_index,
    content_hash = s.content_hash, dose = s.dose, status = 'active', withdrawn_at = NULL,
    last_import_id = %(id)s, updated_at = now()
FROM booking_registryimportrow s
WHERE s.import_id = %(id)s AND NOT s.duplicate AND s.line_number > %(after)s
  AND s.line_number <= %(upto)s AND v.voucher_number = s.voucher_number
  AND (v.content_hash <> s.content_hash OR v.status <> 'active')
"""
_APPLY_NEW = """
INSERT INTO booking_voucher (voucher_number, personal, kana_index, phone_index, content_hash,
                             dose, status, web_login_disabled, last_import_id, created_at,
                             updated_at)
SELECT s.voucher_number, s.personal, s.kana_index, s.phone_index, s.content_hash, s.dose,
       'active', false, %(id)s, now(), now()
FROM booking_registryimportrow s
WHERE s.import_id = %(id)s AND NOT s.duplicate AND s.line_number > %(after)s
  AND s.line_number <= %(upto)s
  AND NOT EXISTS (SELECT 1 FROM booking_voucher v WHERE v.voucher_number = s.voucher_number)
"""


def registry_import_apply(
    *, registry_import_id: int, progress: Progress | None = None
) -> RegistryImport | None:
    """Apply a confirmed preview in batches. Each batch commits with the line it reached, so
    a rerun after a crash continues from there: the upsert of a batch is all or nothing."""
    registry_import = _claim(
        registry_import_id,
        to=RegistryImport.Status.APPLYING,
        fresh=Q(status=RegistryImport.Status.PREVIEWED, confirmed_at__isnull=False),
    )
    if registry_import is None:
        return None
    if _staging_lost(registry_import):
        _fail(
            registry_import,
            _(
                "一時データが失われました（データベースの再起動など）。"
                "もう一度アップロードして確認からやり直してください。"
            ),
            phase="apply",
        )
        return registry_import
    first_line, last_line = _staged_lines(registry_import_id)
    while True:
        with transaction.atomic():
            _no_commit_wait()
            locked = RegistryImport.objects.select_for_update().get(pk=registry_import_id)
            after = max(locked.applied_through_line, first_line - 1)
            if after >= last_line:
                break
            upto = min(after + APPLY_BATCH_LINES, last_line)
            batch = {"id": registry_import_id, "after": after, "upto": upto}
            with connection.cursor() as cursor:
                cursor.execute(_APPLY_CHANGED, batch)
                cursor.execute(_APPLY_NEW, batch)
                cursor.execute(
                    "SELECT count(*) FROM booking_registryimportrow WHERE import_id = %s AND"
                    " line_number > %s AND line_number <= %s",
                    [registry_import_id, after, upto],
                )
                (batch_rows,) = cursor.fetchone()
            RegistryImport.objects.filter(pk=registry_import_id).update(
                applied_through_line=upto,
                rows_applied=F("rows_applied") + batch_rows,
                heartbeat_at=timezone.now(),
            )
        registry_import.refresh_from_db()
        if progress:
            progress(registry_import)
    _finish(registry_import)
    if progress:
        progress(registry_import)
    return registry_import


def _staged_lines(registry_import_id: int) -> tuple[int, int]:
    """The first and last line of the staged rows ((1, 0) when none are staged): the span the
    batches cut into ranges of lines. Two probes of the line index, where finding each
    batch's end by counting rows (OFFSET) read the index and the heap behind it every time."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(line_number), max(line_number) FROM booking_registryimportrow"
            " WHERE import_id = %s",
            [registry_import_id],
        )
        first, last = cursor.fetchone()
    return (1, 0) if first is None else (first, last)


def _staging_lost(registry_import: RegistryImport) -> bool:
    """The staging rows vanished (an unlogged table after a database crash) before all of
    them were applied."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM booking_registryimportrow WHERE import_id = %s",
            [registry_import.pk],
        )
        (staged,) = cursor.fetchone()
    counts = registry_import.counts
    valid = (
        int(counts.get("new", 0)) + int(counts.get("changed", 0)) + int(counts.get("unchanged", 0))
    )
    return staged == 0 and registry_import.rows_applied < valid


def _finish(registry_import: RegistryImport) -> None:
    counts = dict(registry_import.counts)
    with transaction.atomic():
        if registry_import.full_list:
            withdrawn = _unlisted_vouchers(registry_import)
            counts["withdrawn"] = withdrawn.update(
                status=Voucher.Status.WITHDRAWN,
                withdrawn_at=timezone.now(),
                withdrawn_by=registry_import,
                updated_at=timezone.now(),
            )
            counts["withdrawn_with_booking"] = withdrawn_holding_bookings(registry_import)
        municipality = current_municipality()
        if municipality.login_mode == municipality.LoginMode.VOUCHER_CODE:
            registry_import.codes_file, counts["codes_issued"] = activation_codes_issue(
                registry_import
            )
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM booking_registryimportrow WHERE import_id = %s", [registry_import.pk]
            )
        registry_import.counts = counts
        registry_import.status = RegistryImport.Status.DONE
        registry_import.finished_at = timezone.now()
        registry_import.save()
        record(
            action="registry_import.applied",
            actor=Actor.system("registry-import"),
            target=registry_import,
            details=_event_details(registry_import, registry_import.confirmed_by, counts),
        )
    _delete_upload(registry_import)


def withdrawn_holding_bookings(registry_import: RegistryImport) -> int:
    """How many vouchers this import withdrew still hold an active booking. Their bookings
    are left as they are: the municipality decides, and the console lists them."""
    return withdrawn_vouchers_with_bookings(registry_import).count()


def _unlisted_vouchers(registry_import: RegistryImport) -> Any:
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
