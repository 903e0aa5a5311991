"""The voucher-registry import: upload, preview, confirm, apply — one service for every entry
point (the vendor's control plane, the municipal console, ``manage.py vouchers_import``).

Parsing (CPU) runs in worker processes on chunks of the file (``booking.registry.pipeline``);
this module moves their output into PostgreSQL with COPY and does everything else in SQL.
Nothing is written to the vouchers until the operator confirms the preview.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import multiprocessing
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport, RegistryImportError, Voucher
from booking.models.registry import STALE_AFTER
from booking.registry.csvfile import CsvFileError, check_upload, resolve_encoding
from booking.registry.dates import today_in_japan
from booking.registry.errorrows import header_cells, rows_at_lines
from booking.registry.errors import RegistryValueError
from booking.registry.pipeline import (
    CHUNK_BYTES,
    COPY_COLUMNS,
    ChunkResult,
    chunk_file,
    copy_binary,
    process_chunk,
    split_head,
)
from booking.selectors.registry import withdrawn_vouchers_with_bookings
from booking.services.bulk_reads import codes_file_scope
from booking.services.registry_mapping import saved_column_mapping
from tenants.crypto import cipher_for
from tenants.db import current_municipality
from tenants.keys import data_key_for
from tenants.queue import enqueue_on_commit
from tenants.storage import EXPORTS, UPLOADS

logger = logging.getLogger(__name__)

Progress = Callable[[RegistryImport], None]
APPLY_BATCH_ROWS = 50_000
ERROR_ROWS_SHOWN = 200
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed
CODE_LENGTH = 8  # 32**8 = 2**40
# Days the error file can be downloaded; the bucket keeps exports/ at least this long
# (terraform exports_expiry_days, checked by tests/sesshu/test_storage_prefixes.py).
ERROR_FILE_DAYS = 14


class RegistryImportRefused(Exception):
    """A request the import refuses, with a message for the operator (Japanese)."""


class RegistryImportStalled(RegistryImportRefused):
    """A new upload is refused because an earlier import stopped half-way: it must be
    resumed (or, before its preview is ready, cancelled) first — one import at work at a
    time, and an interrupted apply has already written part of its rows."""

    def __init__(self, registry_import: RegistryImport) -> None:
        self.registry_import = registry_import
        if registry_import.status == RegistryImport.Status.APPLYING:
            message = _(
                "中断した取込（%(file)s）があります。その取込を再開して終わらせてから、"
                "もう一度アップロードしてください。"
            )
        else:
            message = _(
                "中断した取込（%(file)s）があります。その取込を再開するか取り消してから、"
                "もう一度アップロードしてください。"
            )
        super().__init__(message % {"file": registry_import.file_name})


def _refuse_while_at_work() -> None:
    at_work = RegistryImport.objects.filter(
        status__in=[RegistryImport.Status.PARSING, RegistryImport.Status.APPLYING]
    ).first()
    if at_work is None:
        return
    if at_work.stalled:
        raise RegistryImportStalled(at_work)
    raise RegistryImportRefused(_("別の取込が進行中です。終わってからもう一度お試しください。"))


def _max_bytes() -> int:
    return int(getattr(settings, "SESSHU_REGISTRY_MAX_BYTES", 512 * 1024 * 1024))


def _chunk_bytes() -> int:
    return int(getattr(settings, "SESSHU_REGISTRY_CHUNK_BYTES", CHUNK_BYTES))


def error_file_days() -> int:
    return int(getattr(settings, "SESSHU_REGISTRY_ERROR_FILE_DAYS", ERROR_FILE_DAYS))


# The uploaded file's own name goes into the audit trail (a file name, not a resident's
# data), cut to a length that keeps an event small.
AUDIT_FILE_NAME_CHARS = 100


def audit_file_name(registry_import: RegistryImport) -> str:
    return registry_import.file_name[:AUDIT_FILE_NAME_CHARS]


# --- Stored file names (tenants.storage puts the tenant after the area) ------------------------


def upload_file_name() -> str:
    """The registry file as sent: plaintext personal data until the import is done, so under
    uploads/ (deleted after the import, and by the bucket lifecycle in any case)."""
    return f"{UPLOADS}/registry-imports/{uuid.uuid4().hex}.csv"


def error_file_name(registry_import_id: int) -> str:
    return f"{EXPORTS}/registry-imports/errors-{registry_import_id}.bin"


def codes_file_name(registry_import_id: int) -> str:
    return f"{EXPORTS}/registry-imports/codes-{registry_import_id}.bin"


# --- Upload ----------------------------------------------------------------------------------


def registry_import_upload(
    *,
    stream: IO[bytes],
    file_name: str,
    size: int,
    actor: Actor,
    source: str,
    full_list: bool = False,
    encoding: str = "",
    column_mapping: dict[str, str | None] | None = None,
    ip: str | None = None,
    enqueue: bool = True,
) -> RegistryImport:
    """Check the upload before anything is parsed, store it, and queue the preview (unless
    the caller, like the command, runs the preview itself). Without ``column_mapping`` the
    municipality's saved mapping applies (none saved: the built-in header names)."""
    head = stream.read(64 * 1024)
    try:
        check_upload(head, size, _max_bytes())
        if encoding:
            resolve_encoding(encoding)
    except RegistryValueError as exc:
        raise RegistryImportRefused(str(exc)) from exc
    _refuse_while_at_work()
    stream.seek(0)
    digest = hashlib.sha256()
    for block in iter(partial(stream.read, 1024 * 1024), b""):
        digest.update(block)
    stream.seek(0)
    stored = default_storage.save(upload_file_name(), File(stream))
    registry_import = RegistryImport.objects.create(
        source=source,
        file_name=os.path.basename(file_name)[:200],
        stored_file=stored,
        size=size,
        sha256=digest.hexdigest(),
        encoding=encoding,
        column_mapping=saved_column_mapping() if column_mapping is None else column_mapping,
        full_list=full_list,
        actor_kind=actor.kind,
        actor_id=actor.id,
    )
    record(
        action="registry_import.uploaded",
        actor=actor,
        target=registry_import,
        ip=ip,
        details={
            "file_name": audit_file_name(registry_import),
            "size": size,
            "full_list": full_list,
            "source": source,
        },
    )
    if enqueue:
        _enqueue("booking.registry_import_parse", registry_import)
    return registry_import


def _enqueue(task_name: str, registry_import: RegistryImport) -> None:
    from booking import tasks

    enqueue_on_commit(getattr(tasks, task_name.rsplit(".", 1)[1]), registry_import.pk)


# --- Preview (parse into the staging table) -----------------------------------------------------


class RegistryImportBusy(Exception):
    """Another run is working on this import right now (its heartbeat is fresh)."""


def _claim(registry_import_id: int, *, to: str, fresh: Q) -> RegistryImport | None:
    """Take the import into the ``to`` state: from a state matching ``fresh``, or from ``to``
    itself when the run that had it stopped sending heartbeats (it died). Returns None when
    the import is past this phase; raises RegistryImportBusy when a live run has it."""
    now = timezone.now()
    stale = Q(status=to, heartbeat_at__lt=now - STALE_AFTER) | Q(status=to, heartbeat_at=None)
    try:
        with transaction.atomic():
            claimed = RegistryImport.objects.filter(
                Q(pk=registry_import_id) & (fresh | stale)
            ).update(status=to, phase_started_at=now, heartbeat_at=now)
    except IntegrityError as exc:
        # Another import of the municipality is at work (one at a time): wait for it, as
        # for a live run of this one. Two uploads in quick succession end up here.
        raise RegistryImportBusy(registry_import_id) from exc
    if claimed == 1:
        return RegistryImport.objects.get(pk=registry_import_id)
    if RegistryImport.objects.filter(pk=registry_import_id, status=to).exists():
        raise RegistryImportBusy(registry_import_id)
    return None


def _processes() -> int:
    wanted = int(getattr(settings, "SESSHU_REGISTRY_PROCESSES", 0)) or (os.cpu_count() or 1)
    # A daemonic process (a Celery prefork child) may not start children: parse in-process.
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, wanted)


def _results(
    chunks: Iterator[Any], work: Callable[[Any], ChunkResult], processes: int
) -> Iterator[ChunkResult]:
    """Run ``work`` over ``chunks`` in order, keeping at most a few chunks in flight so memory
    stays flat however large the file is."""
    if processes == 1:
        yield from map(work, chunks)
        return
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        pending: deque[Future[ChunkResult]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(work, chunk))
            if len(pending) >= processes * 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _no_commit_wait() -> None:
    """Batches of an import need not wait for their commit to reach the disk: a batch lost
    in a crash is lost with the progress it recorded, and the rerun does it again."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")


def _copy_rows(data: bytes) -> None:
    """The workers' rows into the staging table: binary COPY, so PostgreSQL neither parses
    text nor decodes hex for the sealed values."""
    copy_sql = (
        f"COPY booking_registryimportrow ({', '.join(COPY_COLUMNS)}) FROM STDIN (FORMAT binary)"
    )
    with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
        for piece in copy_binary(data):
            copy.write(piece)


_ERROR_COPY = (
    "COPY booking_registryimporterror"
    ' (import_id, line_number, voucher_number, "column", masked_value, message) FROM STDIN'
)


def _save_errors(registry_import: RegistryImport, result: ChunkResult) -> None:
    if not result.errors:
        return
    with connection.cursor() as cursor, cursor.cursor.copy(_ERROR_COPY) as copy:
        for error, voucher in result.errors:
            copy.write_row(
                (
                    registry_import.pk,
                    error.line_number,
                    voucher,
                    error.column or "",
                    error.value[:60],
                    error.message[:300],
                )
            )


def registry_import_parse(
    *, registry_import_id: int, progress: Progress | None = None
) -> RegistryImport | None:
    """Parse and stage the whole file; compute the preview. Safe to run again: a run that
    died half-way is started over from the file."""
    registry_import = _claim(
        registry_import_id,
        to=RegistryImport.Status.PARSING,
        fresh=Q(status=RegistryImport.Status.UPLOADED),
    )
    if registry_import is None:
        return None
    try:
        _parse(registry_import, progress)
    except (CsvFileError, RegistryImportRefused) as exc:
        _fail(registry_import, str(exc))
    except Exception:
        logger.exception("registry import %s failed while parsing", registry_import.pk)
        _fail(registry_import, _("取込の確認中にエラーが発生しました。もう一度お試しください。"))
        raise
    return registry_import


def _fail(registry_import: RegistryImport, message: str, *, phase: str = "parse") -> None:
    registry_import.status = RegistryImport.Status.FAILED
    registry_import.message = message
    registry_import.finished_at = timezone.now()
    registry_import.save(update_fields=["status", "message", "finished_at"])
    # A failed import is not taken up again (the operator uploads anew): its plaintext file
    # has no further use.
    _delete_upload(registry_import)
    record(
        action="registry_import.failed",
        actor=Actor.system("registry-import"),
        target=registry_import,
        details={
            "phase": phase,
            "file_name": audit_file_name(registry_import),
            "requested_by": registry_import.confirmed_by
            if phase == "apply" and registry_import.confirmed_by
            else registry_import.requested_by,
        },
    )


def _staging_reset(registry_import: RegistryImport) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM booking_registryimportrow WHERE import_id = %s", [registry_import.pk]
        )
    registry_import.errors.all().delete()


def _parse(registry_import: RegistryImport, progress: Progress | None) -> None:
    _staging_reset(registry_import)
    municipality = current_municipality()
    data_key = data_key_for(
        tenant_code=municipality.code, wrapped=bytes(municipality.wrapped_data_key)
    )
    today = today_in_japan()
    with default_storage.open(registry_import.stored_file, "rb") as stream:
        head, encoding, rest = split_head(
            stream,
            encoding=registry_import.encoding or None,
            column_mapping=registry_import.column_mapping or None,
        )
        registry_import.detected_encoding = encoding
        work = partial(
            process_chunk,
            head=head,
            encoding=encoding,
            column_mapping=registry_import.column_mapping or None,
            tenant_code=municipality.code,
            data_key=data_key,
            import_id=registry_import.pk,
            today=today,
        )
        rows = 0
        done = len(head.header_bytes)
        chunks = chunk_file(head, rest, stream, chunk_bytes=_chunk_bytes())
        for result in _results(chunks, work, _processes()):
            with transaction.atomic():
                _no_commit_wait()
                if result.copy_data:
                    _copy_rows(result.copy_data)
                _save_errors(registry_import, result)
                rows += result.rows
                done += result.bytes_done
                RegistryImport.objects.filter(pk=registry_import.pk).update(
                    bytes_done=done, rows_total=rows, heartbeat_at=timezone.now()
                )
            registry_import.bytes_done, registry_import.rows_total = done, rows
            if progress:
                progress(registry_import)
    _mark_duplicates(registry_import)
    registry_import.counts = _preview_counts(registry_import)
    registry_import.error_file = _write_error_file(registry_import, encoding)
    registry_import.error_file_expires_at = (
        timezone.now() + timedelta(days=error_file_days()) if registry_import.error_file else None
    )
    registry_import.status = RegistryImport.Status.PREVIEWED
    registry_import.parsed_at = timezone.now()
    registry_import.save()
    record(
        action="registry_import.previewed",
        actor=Actor.system("registry-import"),
        target=registry_import,
        details=_event_details(registry_import, registry_import.requested_by),
    )
    if progress:
        progress(registry_import)


def _count_details(counts: dict[str, int]) -> dict[str, Any]:
    return {key: int(value) for key, value in counts.items()}


def _event_details(
    registry_import: RegistryImport, requested_by: str = "", counts: dict[str, int] | None = None
) -> dict[str, Any]:
    """File name and counts for the trail; ``requested_by`` ("kind:id") when the event's
    actor is the system working for someone (the preview for the uploader, the apply for
    whoever confirmed)."""
    details: dict[str, Any] = {
        "file_name": audit_file_name(registry_import),
        **_count_details(registry_import.counts if counts is None else counts),
    }
    if requested_by:
        details["requested_by"] = requested_by
    return details


def _mark_duplicates(registry_import: RegistryImport) -> None:
    """A voucher number twice in one file is an error for every row that has it: which
    one is right is for the municipality to say, not for the import to guess. That holds
    when one of the rows is invalid for another reason too (its voucher number itself being
    valid): the other row is not imported either, and the invalid row's entry in the error
    file names the duplicate as well.

    Written as semi-joins the (import, voucher number) index answers row by row: the
    staging table's statistics are usually those of an earlier import (the application's
    role may not ANALYZE it), and a join against an aggregate planned on such estimates
    can rescan the aggregate for every row."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE booking_registryimportrow s SET duplicate = true
            WHERE s.import_id = %s AND EXISTS (
                SELECT 1 FROM booking_registryimportrow o
                WHERE o.import_id = s.import_id AND o.voucher_number = s.voucher_number
                  AND o.line_number <> s.line_number)
            RETURNING s.line_number, s.voucher_number
            """,
            [registry_import.pk],
        )
        duplicated = cursor.fetchall()
        # Staged rows sharing a number with an invalid row: driven by the invalid rows (a
        # few percent of a file), each probing the staging index once.
        cursor.execute(
            """
            UPDATE booking_registryimportrow s SET duplicate = true
            WHERE s.import_id = %s AND NOT s.duplicate AND s.voucher_number IN (
                SELECT e.voucher_number FROM booking_registryimporterror e
                WHERE e.import_id = %s AND e.voucher_number <> '')
            RETURNING s.line_number, s.voucher_number
            """,
            [registry_import.pk, registry_import.pk],
        )
        duplicated += cursor.fetchall()
    lines_by_voucher: dict[str, list[int]] = {}
    for line, voucher in duplicated:
        lines_by_voucher.setdefault(voucher, []).append(line)
    # The invalid rows sharing a number with a staged row (only numbers staged rows have:
    # two invalid rows are both left out anyway).
    invalid_lines = (
        registry_import.errors.filter(voucher_number__in=list(lines_by_voucher))
        .order_by()
        .values_list("line_number", "voucher_number")
        .distinct()
    )
    for line, voucher in list(invalid_lines):
        lines_by_voucher[voucher].append(line)
    RegistryImportError.objects.bulk_create(
        [
            RegistryImportError(
                registry_import=registry_import,
                line_number=line,
                voucher_number=voucher,
                column="接種券番号",
                masked_value="＊" * 8 + voucher[-2:],
                message=_("同じ接種券番号が%(lines)s行目にもあります（どちらも取り込みません）")
                % {"lines": "・".join(str(n) for n in sorted(lines) if n != line)},
            )
            for voucher, lines in lines_by_voucher.items()
            for line in lines
        ],
        batch_size=2000,
    )


def _preview_counts(registry_import: RegistryImport) -> dict[str, int]:
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
        counts["withdrawn"] = _unlisted_vouchers(registry_import).count()
    return counts


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


def _write_error_file(registry_import: RegistryImport, encoding: str) -> str:
    """The invalid rows exactly as the municipality sent them (same encoding, same columns),
    plus a last column saying what is wrong, so it can fix and re-send just those rows."""
    messages: dict[int, list[str]] = {}
    for line, column, message in registry_import.errors.values_list(
        "line_number", "column", "message"
    ):
        messages.setdefault(line, []).append(f"{column}: {message}" if column else message)
    if not messages:
        return ""
    output = io.StringIO(newline="")
    writer = csv.writer(output, lineterminator="\r\n")
    column_mapping = registry_import.column_mapping or None
    with default_storage.open(registry_import.stored_file, "rb") as stream:
        head, _encoding, rest = split_head(stream, encoding=encoding, column_mapping=column_mapping)
        writer.writerow([*header_cells(head, encoding=encoding), "エラー内容"])
        for line, cells in rows_at_lines(
            head, rest, stream, encoding=encoding, lines=messages, chunk_bytes=_chunk_bytes()
        ):
            writer.writerow([*cells, " / ".join(messages[line])])
    data = output.getvalue().encode(encoding, errors="replace")
    cipher = cipher_for(current_municipality())
    sealed = cipher.encrypt_field(
        data.decode("latin-1"),
        table="registry_error_file",
        column="content",
        row_id=str(registry_import.pk),
    )
    return default_storage.save(error_file_name(registry_import.pk), ContentFile(sealed))


def registry_import_error_file(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None
) -> tuple[str, bytes]:
    """The error file's name and bytes (decrypted); audited."""
    # The expiry first: once past it, the periodic upkeep deletes the file itself.
    if (
        registry_import.error_file_expires_at
        and registry_import.error_file_expires_at < timezone.now()
    ):
        raise RegistryImportRefused(_("エラーファイルの保存期間が過ぎたため削除されました。"))
    if not registry_import.error_file:
        raise RegistryImportRefused(_("エラーファイルはありません。"))
    with default_storage.open(registry_import.error_file, "rb") as stream:
        sealed = stream.read()
    cipher = cipher_for(current_municipality())
    data = cipher.decrypt_field(
        sealed, table="registry_error_file", column="content", row_id=str(registry_import.pk)
    ).encode("latin-1")
    record(
        action="registry_import.error_file_downloaded",
        actor=actor,
        target=registry_import,
        ip=ip,
        details={
            "file_name": audit_file_name(registry_import),
            "invalid": int(registry_import.counts.get("invalid", 0)),
        },
    )
    stem = os.path.splitext(registry_import.file_name)[0]
    return f"{stem}_errors.csv", data


# --- Confirm and apply ------------------------------------------------------------------------


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
    while True:
        with transaction.atomic():
            _no_commit_wait()
            locked = RegistryImport.objects.select_for_update().get(pk=registry_import_id)
            after = locked.applied_through_line
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT line_number FROM booking_registryimportrow WHERE import_id = %s AND"
                    " line_number > %s ORDER BY line_number OFFSET %s LIMIT 1",
                    [registry_import_id, after, APPLY_BATCH_ROWS - 1],
                )
                row = cursor.fetchone()
                upto = row[0] if row else 2**31 - 1
                batch = {"id": registry_import_id, "after": after, "upto": upto}
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
        if row is None:
            break
    _finish(registry_import)
    if progress:
        progress(registry_import)
    return registry_import


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
            registry_import.codes_file, counts["codes_issued"] = _issue_activation_codes(
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


def _delete_upload(registry_import: RegistryImport) -> None:
    if registry_import.stored_file:
        default_storage.delete(registry_import.stored_file)
        RegistryImport.objects.filter(pk=registry_import.pk).update(stored_file="")
        registry_import.stored_file = ""


# --- Activation codes (voucher_code login mode) -----------------------------------------------


def _new_code(random_bytes: bytes) -> str:
    number = int.from_bytes(random_bytes, "big")
    chars = []
    for _position in range(CODE_LENGTH):
        number, index = divmod(number, 32)
        chars.append(CODE_ALPHABET[index])
    return "".join(chars)


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def activation_code_hash(cipher: Any, code: str) -> bytes:
    """A keyed hash (not a password hash): a million codes are issued in one import, and the
    key — which never leaves the key provider unwrapped — is what keeps 40 bits from being
    walked offline."""
    return cipher.blind_index(code.replace("-", "").upper(), purpose="activation-code")


def _issue_activation_codes(registry_import: RegistryImport) -> tuple[str, int]:
    """Give every active voucher without a code a new one; only its hash is kept. The codes
    go into one file, encrypted under the municipality's key, downloadable once."""
    cipher = cipher_for(current_municipality())
    output = io.StringIO(newline="")
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(["接種券番号", "認証コード"])
    issued = 0
    pending = Voucher.objects.filter(status=Voucher.Status.ACTIVE, activation_code_hash=None)
    while True:
        batch = list(pending.order_by("id").values_list("id", "voucher_number")[:20_000])
        if not batch:
            break
        randomness = os.urandom(5 * len(batch))
        ids, hashes = [], []
        for index, (voucher_id, number) in enumerate(batch):
            code = _new_code(randomness[5 * index : 5 * index + 5])
            writer.writerow([number, format_code(code)])
            ids.append(voucher_id)
            hashes.append(activation_code_hash(cipher, code))
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE booking_voucher v SET activation_code_hash = u.hash, updated_at = now()"
                " FROM unnest(%s::bigint[], %s::bytea[]) AS u(id, hash) WHERE v.id = u.id",
                [ids, hashes],
            )
        issued += len(batch)
    if not issued:
        return "", 0
    sealed = cipher.encrypt_field(
        output.getvalue(),
        table="registry_codes_file",
        column="content",
        row_id=str(registry_import.pk),
    )
    name = default_storage.save(codes_file_name(registry_import.pk), ContentFile(sealed))
    return name, issued


def registry_import_codes_file(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None
) -> tuple[str, bytes]:
    """The activation codes for the print vendor, once: the file is deleted as it is read."""
    with transaction.atomic():
        claimed = (
            RegistryImport.objects.filter(pk=registry_import.pk, codes_downloaded_at=None)
            .exclude(codes_file="")
            .update(codes_downloaded_at=timezone.now())
        )
        if claimed != 1:
            raise RegistryImportRefused(
                _(
                    "認証コードのファイルは既にダウンロードされたか、ありません（一度だけ取得できます）。"
                )
            )
        with default_storage.open(registry_import.codes_file, "rb") as stream:
            sealed = stream.read()
        cipher = cipher_for(current_municipality())
        text = cipher.decrypt_field(
            sealed, table="registry_codes_file", column="content", row_id=str(registry_import.pk)
        )
        record(
            action="registry_import.codes_downloaded",
            actor=actor,
            target=registry_import,
            ip=ip,
            details={
                "file_name": audit_file_name(registry_import),
                "codes": int(registry_import.counts.get("codes_issued", 0)),
                **codes_file_scope(text),
            },
        )
    default_storage.delete(registry_import.codes_file)
    RegistryImport.objects.filter(pk=registry_import.pk).update(codes_file="")
    return f"activation-codes-{registry_import.pk}.csv", ("\ufeff" + text).encode("utf-8")


# --- Progress -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressReport:
    phase: str
    fraction: float
    rows_done: int
    rows_per_second: float
    seconds_left: float | None


def registry_import_progress(registry_import: RegistryImport) -> ProgressReport:
    now = timezone.now()
    elapsed = max((now - (registry_import.phase_started_at or now)).total_seconds(), 1e-6)
    if registry_import.status == RegistryImport.Status.APPLYING:
        total = max(registry_import.rows_total - registry_import.counts.get("invalid", 0), 1)
        done = registry_import.rows_applied
        fraction = min(done / total, 1.0)
    elif registry_import.status == RegistryImport.Status.PARSING:
        done = registry_import.rows_total
        fraction = min(registry_import.bytes_done / max(registry_import.size, 1), 1.0)
    else:
        done = registry_import.rows_total
        fraction = (
            1.0
            if registry_import.status
            in (RegistryImport.Status.PREVIEWED, RegistryImport.Status.DONE)
            else 0.0
        )
    rate = done / elapsed
    left = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else None
    return ProgressReport(registry_import.status, fraction, done, rate, left)
