"""Confirm (or cancel) a preview, then apply it: batched upserts from the staging table,
and at the end the withdrawal of the vouchers a full list leaves out and the activation
codes."""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport, Voucher
from booking.models.registry import DRY_RUN, STALE_AFTER
from booking.selectors.registry import withdrawn_vouchers_with_bookings
from booking.services.registry_import.codes import (
    activation_codes_issue,
    activation_codes_keep,
    activation_codes_new,
)
from booking.services.registry_import.counts import preview_counts, unlisted_vouchers
from booking.services.registry_import.progress import Progress
from booking.services.registry_import.state import (
    RegistryImportLost,
    RegistryImportRefused,
    _claim,
    _delete_upload,
    _enqueue,
    _event_details,
    _fail,
    _held,
    _hold,
    _no_commit_wait,
    _staging_clear,
    _staging_reset,
    audit_file_name,
)
from tenants.crypto import BLIND_INDEX_BYTES, TenantCipher, cipher_for
from tenants.db import current_municipality, current_schema, tenant_connection

# The name the import's log lines have always carried (the package's, not this module's).
logger = logging.getLogger(__package__)

# A batch is a range of this many lines of the file: what a batch covers follows from the
# line it starts after, with no query to find where the next one ends.
APPLY_BATCH_LINES = 50_000


def _apply_connections() -> int:
    """Database connections the apply works on at once (SESSHU_REGISTRY_APPLY_CONNECTIONS):
    a batch is one backend's work on one core, so a second connection puts a second core of
    the database to work."""
    return max(1, int(getattr(settings, "SESSHU_REGISTRY_APPLY_CONNECTIONS", 2)))


# A full list that would withdraw more than this share of the active vouchers (a file cut
# short, another municipality's or an old file) is confirmed only with that number
# acknowledged; a few per cent a month are residents who moved out or died. A handful is
# not asked about, unless it is most of the vouchers.
WITHDRAWAL_SHARE_ASKED = 0.05
WITHDRAWALS_NEVER_ASKED = 20


def withdrawals_to_acknowledge(registry_import: RegistryImport) -> int:
    """How many vouchers the confirmation must acknowledge withdrawing (0: nothing to ask)."""
    counts = registry_import.counts or {}
    withdrawn = int(counts.get("withdrawn") or 0)
    if not registry_import.full_list or not withdrawn:
        return 0
    active = int(counts.get("active") or 0)
    if withdrawn <= WITHDRAWALS_NEVER_ASKED and withdrawn * 2 <= active:
        return 0
    return withdrawn if withdrawn > active * WITHDRAWAL_SHARE_ASKED else 0


# A file whose addresses (those the preview read) name other municipalities this often is
# asked about before it is confirmed: probably another municipality's list. A few may (a
# resident in a care home elsewhere, still this municipality's: 住所地特例).
ELSEWHERE_SHARE_ASKED = 0.2
ELSEWHERE_NEVER_ASKED = 3


def addresses_elsewhere(registry_import: RegistryImport) -> tuple[int, int, list[str]] | None:
    """(addresses naming another municipality, addresses read, the places most named) when
    they are enough to ask whether the file is this municipality's; None otherwise."""
    counts = registry_import.counts or {}
    elsewhere = int(counts.get("addresses_elsewhere") or 0)
    checked = int(counts.get("addresses_checked") or 0)
    if elsewhere < ELSEWHERE_NEVER_ASKED or elsewhere < checked * ELSEWHERE_SHARE_ASKED:
        return None
    return elsewhere, checked, list(counts.get("places_elsewhere") or [])


def full_list_without_rows(registry_import: RegistryImport) -> bool:
    """A full list with no row to import: confirming it would withdraw every voucher."""
    counts = registry_import.counts or {}
    listed = sum(int(counts.get(key) or 0) for key in ("new", "changed", "unchanged"))
    return registry_import.full_list and listed == 0


def registry_import_confirm(
    *,
    registry_import: RegistryImport,
    actor: Actor,
    ip: str | None = None,
    enqueue: bool = True,
    withdrawals_acknowledged: int = 0,
) -> RegistryImport:
    """Start the apply of a preview, as shown: refused when another import has been applied
    since (its counts are taken again, to be read before confirming), when a full list has no
    row to import, and when a full list withdraws many vouchers and the confirmation does not
    give their number (``withdrawals_to_acknowledge``)."""
    if registry_import.status != RegistryImport.Status.PREVIEWED or registry_import.confirmed_at:
        raise RegistryImportRefused(_("この取込は確認済みの状態ではないため、実行できません。"))
    _refuse_stale_preview(registry_import)
    if full_list_without_rows(registry_import):
        raise RegistryImportRefused(
            _(
                "全件リストに取り込める行が1件もないため、実行できません"
                "（実行すると、すべての接種券が対象外になります）。ファイルを確認してください。"
            )
        )
    to_acknowledge = withdrawals_to_acknowledge(registry_import)
    if to_acknowledge and withdrawals_acknowledged != to_acknowledge:
        raise RegistryImportRefused(
            _(
                "対象外にする接種券が%(count)s件と多いため、その件数を確認のうえ"
                "チェックを入れてから実行してください。"
            )
            % {"count": f"{to_acknowledge:,}"}
        )
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


def _refuse_stale_preview(registry_import: RegistryImport) -> None:
    """The preview's counts hold while no other import has written vouchers since it was
    made: one still applying refuses the confirmation; one finished since has its counts
    taken again and shown, and the confirmation is refused once, to be read."""
    others = (
        RegistryImport.objects.exclude(pk=registry_import.pk)
        .exclude(confirmed_at=None)
        .exclude(status=RegistryImport.Status.CANCELLED)
    )
    if others.filter(finished_at=None).exists():
        raise RegistryImportRefused(
            _("別の取込を実行中です。その取込が終わってから、もう一度実行してください。")
        )
    if not others.filter(finished_at__gt=registry_import.parsed_at).exists():
        return
    registry_import.counts = {**registry_import.counts, **preview_counts(registry_import)}
    registry_import.parsed_at = timezone.now()  # the counts' time: they hold from now
    registry_import.save(update_fields=["counts", "parsed_at"])
    raise RegistryImportRefused(
        _(
            "この確認のあとに別の取込が行われたため、件数を計算し直しました。"
            "新しい件数を確認してから、もう一度実行してください。"
        )
    )


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
        .update(
            status=RegistryImport.Status.CANCELLED,
            finished_at=now,
            **({"message": DRY_RUN} if reason == DRY_RUN else {}),
        )
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
#
# A preview that found none of its rows among the vouchers (a municipality's first list)
# is applied without looking for them: no UPDATE, and no NOT EXISTS probe per row (together
# about a sixth of such an apply). Nothing else writes vouchers meanwhile (the confirmation
# is refused while another import is at work, and counted again after one); should one
# appear all the same, the unique voucher number refuses the blind insert and the batch is
# applied the usual way (_inserted_blind).
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
"""
_NOT_LISTED = """
  AND NOT EXISTS (SELECT 1 FROM booking_voucher v WHERE v.voucher_number = s.voucher_number)
"""

# The voucher_code mode: the batch's new vouchers, then their insert with the hashes of the
# codes issued to them (an UPDATE of every new voucher afterwards would write each twice).
_NEW_IN_BATCH = """
SELECT s.line_number, s.voucher_number
FROM booking_registryimportrow s
WHERE s.import_id = %(id)s AND NOT s.duplicate AND s.line_number > %(after)s
  AND s.line_number <= %(upto)s
"""
_APPLY_NEW_WITH_CODES = """
INSERT INTO booking_voucher (voucher_number, personal, kana_index, phone_index, content_hash,
                             dose, status, web_login_disabled, last_import_id,
                             activation_code_hash, created_at, updated_at)
SELECT s.voucher_number, s.personal, s.kana_index, s.phone_index, s.content_hash, s.dose,
       'active', false, %(id)s,
       substring(%(hashes)s::bytea FROM ((c.position - 1) * %(width)s + 1)::int FOR %(width)s),
       now(), now()
FROM booking_registryimportrow s
JOIN unnest(%(lines)s::int[]) WITH ORDINALITY AS c(line, position) ON c.line = s.line_number
WHERE s.import_id = %(id)s AND s.line_number > %(after)s AND s.line_number <= %(upto)s
RETURNING id
"""


def registry_import_apply(
    *, registry_import_id: int, progress: Progress | None = None
) -> RegistryImport | None:
    """Apply a confirmed preview in batches of lines. Each batch commits with the range of
    lines it covered, so a rerun after a crash applies just the ranges not yet covered: the
    upsert of a batch is all or nothing.

    The batches run on several connections at once, each in a thread of its own, unless the
    caller's connection is inside a transaction: other connections could not see what that
    transaction has not committed, so the batches then run on it, one after another."""
    registry_import = _claim(
        registry_import_id,
        to=RegistryImport.Status.APPLYING,
        fresh=Q(status=RegistryImport.Status.PREVIEWED, confirmed_at__isnull=False),
    )
    if registry_import is None:
        return None
    held = _held(registry_import)
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
    batches = _batches_left(registry_import)
    municipality = current_municipality()
    # The voucher_code mode: each batch issues its new vouchers' activation codes.
    codes = (
        cipher_for(municipality)
        if municipality.login_mode == municipality.LoginMode.VOUCHER_CODE
        else None
    )
    only_new = _only_new(registry_import)
    workers = 1 if connection.in_atomic_block else min(_apply_connections(), len(batches))
    if workers > 1:
        _apply_in_parallel(registry_import, batches, workers, progress, codes, only_new)
    else:
        for after, upto in batches:
            _apply_batch(registry_import_id, after, upto, codes=codes, only_new=only_new)
            registry_import.refresh_from_db()
            if progress:
                progress(registry_import)
    registry_import.refresh_from_db()
    try:
        _finish(registry_import, held)
    except RegistryImportLost:
        # Its batches are done and recorded (a batch is applied once, whoever runs it): the
        # run that took the import over finishes it, once.
        logger.warning(
            "registry import %s in schema %s: taken over while applying; the other run finishes it",
            registry_import.pk,
            current_schema(),
        )
        return None
    if progress:
        progress(registry_import)
    return registry_import


def _only_new(registry_import: RegistryImport) -> bool:
    """Whether the preview found none of its rows among the vouchers (its counts hold until
    the apply: see _refuse_stale_preview)."""
    counts = registry_import.counts or {}
    return not counts.get("changed") and not counts.get("unchanged")


def _batches_left(registry_import: RegistryImport) -> list[tuple[int, int]]:
    """The (after, upto] line ranges still to apply: the staged lines no applied range
    covers, cut where multiples of APPLY_BATCH_LINES past the first staged line fall, so
    every run cuts the same batches and finds a batch applied by its range."""
    first_line, last_line = _staged_lines(registry_import.pk)
    origin = first_line - 1
    batches: list[tuple[int, int]] = []
    position = origin
    applied = sorted(tuple(pair) for pair in registry_import.applied_lines)
    for applied_after, applied_upto in [*applied, (last_line, last_line)]:
        gap_end = min(applied_after, last_line)
        while position < gap_end:
            cut = origin + ((position - origin) // APPLY_BATCH_LINES + 1) * APPLY_BATCH_LINES
            upto = min(cut, gap_end)
            batches.append((position, upto))
            position = upto
        position = max(position, applied_upto)
    return batches


def _covered(applied_lines: list[list[int]], after: int, upto: int) -> bool:
    """Whether the applied ranges cover every line after ``after`` up to ``upto``."""
    position = after
    for applied_after, applied_upto in sorted(tuple(pair) for pair in applied_lines):
        if applied_after <= position < applied_upto:
            position = applied_upto
    return position >= upto


def _apply_batch(
    registry_import_id: int,
    after: int,
    upto: int,
    *,
    codes: TenantCipher | None = None,
    only_new: bool = False,
) -> None:
    """One batch in one transaction: its changed and new vouchers (with ``codes``, the
    cipher of a voucher_code municipality, each new voucher's activation code, kept sealed
    for the codes file), and its range of lines added to the import's applied ranges.
    Under a lock on the batch (an advisory lock on the import and the range's first line),
    so a run that took the import over from one still alive (its heartbeat late, not
    stopped) waits for that run's batch, then finds the range applied and leaves it.
    With ``only_new`` (the preview found none of the rows among the vouchers), the rows are
    inserted without looking for them first."""
    with transaction.atomic():
        _no_commit_wait()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s), %s)",
                [f":registry-apply:{registry_import_id}", after],
            )
            cursor.execute(
                "SELECT applied_lines FROM booking_registryimport WHERE id = %s",
                [registry_import_id],
            )
            (applied,) = cursor.fetchone()
            if _covered(json.loads(applied) if isinstance(applied, str) else applied, after, upto):
                return
            batch = {"id": registry_import_id, "after": after, "upto": upto}
            if not (only_new and _inserted_blind(cursor, batch, codes)):
                cursor.execute(_APPLY_CHANGED, batch)
                if codes is None:
                    cursor.execute(_APPLY_NEW + _NOT_LISTED, batch)
                else:
                    _insert_new_with_codes(cursor, batch, codes, _NOT_LISTED)
            cursor.execute(
                "SELECT count(*) FROM booking_registryimportrow WHERE import_id = %s AND"
                " line_number > %s AND line_number <= %s",
                [registry_import_id, after, upto],
            )
            (batch_rows,) = cursor.fetchone()
            # Last, so that the import's row is locked only just before the commit: the
            # batches on the other connections update it too.
            cursor.execute(
                "UPDATE booking_registryimport SET applied_lines = applied_lines || %s::jsonb,"
                " rows_applied = rows_applied + %s, heartbeat_at = %s WHERE id = %s",
                [json.dumps([[after, upto]]), batch_rows, timezone.now(), registry_import_id],
            )


def _inserted_blind(cursor: Any, batch: dict[str, int], codes: TenantCipher | None) -> bool:
    """The batch's rows inserted without looking for them among the vouchers first; False,
    with nothing written, when one of them is there after all (the batch then goes the
    usual way: updated where listed, inserted where not)."""
    try:
        with transaction.atomic():
            if codes is None:
                cursor.execute(_APPLY_NEW, batch)
            else:
                _insert_new_with_codes(cursor, batch, codes, "")
    except IntegrityError:
        logger.warning(
            "registry import %s in schema %s: a voucher of lines %s-%s was written since the"
            " preview; the batch is applied the usual way",
            batch["id"],
            current_schema(),
            batch["after"] + 1,
            batch["upto"],
        )
        return False
    return True


def _insert_new_with_codes(
    cursor: Any, batch: dict[str, int], codes: TenantCipher, unlisted: str
) -> None:
    cursor.execute(_NEW_IN_BATCH + unlisted + "ORDER BY s.line_number", batch)
    new = cursor.fetchall()
    if not new:
        return
    rows, hashes = activation_codes_new(codes, [number for _line, number in new])
    cursor.execute(
        _APPLY_NEW_WITH_CODES,
        {
            **batch,
            "lines": [line for line, _number in new],
            # One bytea of the hashes end to end: an array of 50,000 small ones costs the
            # client about 0.13 s to write out per batch.
            "hashes": b"".join(hashes),
            "width": BLIND_INDEX_BYTES,
        },
    )
    activation_codes_keep(
        codes,
        registry_import_id=batch["id"],
        after_line=batch["after"],
        rows=rows,
        voucher_ids=[voucher_id for (voucher_id,) in cursor.fetchall()],
    )


def _apply_in_parallel(
    registry_import: RegistryImport,
    batches: list[tuple[int, int]],
    workers: int,
    progress: Progress | None,
    codes: TenantCipher | None,
    only_new: bool,
) -> None:
    """The batches over ``workers`` threads, each with its own connection switched to the
    municipality; progress is reported from this thread as batches finish. A batch that
    fails stops the others after the batch each is doing and is raised here: what was
    committed stays applied, and a rerun does the rest."""
    municipality = current_municipality()
    pending: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    for batch in batches:
        pending.put(batch)
    finished: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        try:
            tenant_connection().set_tenant(municipality)
            while not stop.is_set():
                try:
                    after, upto = pending.get_nowait()
                except queue.Empty:
                    return
                _apply_batch(registry_import.pk, after, upto, codes=codes, only_new=only_new)
                finished.put(None)
        except BaseException as exc:  # raised again by the thread that reports progress
            finished.put(exc)
        finally:
            tenant_connection().set_schema_to_public()
            connection.close()

    threads = [
        threading.Thread(target=work, name=f"registry-apply-{index}", daemon=True)
        for index in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        for _batch in batches:
            failure = finished.get()
            if failure is not None:
                raise failure
            registry_import.refresh_from_db()
            if progress:
                progress(registry_import)
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _staged_lines(registry_import_id: int) -> tuple[int, int]:
    """The first and last line of the staged rows ((1, 0) when none are staged)."""
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
        # Whether any row is staged, not how many: one index probe instead of a count of
        # a million rows.
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM booking_registryimportrow WHERE import_id = %s)",
            [registry_import.pk],
        )
        (staged,) = cursor.fetchone()
    counts = registry_import.counts
    valid = (
        int(counts.get("new", 0)) + int(counts.get("changed", 0)) + int(counts.get("unchanged", 0))
    )
    return not staged and registry_import.rows_applied < valid


def _finish(registry_import: RegistryImport, held: Q) -> None:
    """Withdraw what a full list leaves out, issue the codes file, drop the staged rows and
    mark the import done: once, by the run that holds the import (the row stays locked
    until then, so a takeover waits and finds the import done)."""
    counts = dict(registry_import.counts)
    with transaction.atomic():
        _hold(held)
        if registry_import.full_list:
            withdrawn = unlisted_vouchers(registry_import)
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
        _staging_clear(registry_import)
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
