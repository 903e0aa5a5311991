"""The preview: the file parsed in worker processes (``booking.registry.pipeline``), their
rows moved into the staging table with COPY, then duplicates marked and counts taken in SQL.

Only ``process_chunk`` (bound with ``functools.partial``) crosses to the workers; it is
pickled by its own module path, ``booking.registry.pipeline``."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport
from booking.registry.csvfile import CsvFileError
from booking.registry.dates import today_in_japan
from booking.registry.fields import FIELD_LABELS, REQUIRED_FIELDS
from booking.registry.pipeline import (
    COPY_COLUMNS,
    ChunkResult,
    chunk_file,
    copy_binary,
    process_chunk,
    split_head,
)
from booking.services.registry_import.counts import preview_counts
from booking.services.registry_import.error_file import _write_error_file
from booking.services.registry_import.files import _chunk_bytes, error_file_days
from booking.services.registry_import.progress import Progress
from booking.services.registry_import.state import (
    RegistryImportLost,
    RegistryImportRefused,
    _claim,
    _event_details,
    _fail,
    _held,
    _hold,
    _no_commit_wait,
    _staging_reset,
)
from tenants.db import current_municipality, current_schema
from tenants.keys import data_key_for

# The name the import's log lines have always carried (the package's, not this module's).
logger = logging.getLogger(__package__)

ERROR_ROWS_SHOWN = 200


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
    except RegistryImportLost:
        logger.warning(
            "registry import %s in schema %s: taken over or cancelled while parsing; this run"
            " stops",
            registry_import.pk,
            current_schema(),
        )
        return None
    except (CsvFileError, RegistryImportRefused) as exc:
        _fail(registry_import, str(exc))
    except Exception:
        # An import's id is its municipality's own (a schema each): the schema says whose,
        # also where no request or task puts the tenant on the line (the command).
        logger.exception(
            "registry import %s in schema %s failed while parsing",
            registry_import.pk,
            current_schema(),
        )
        _fail(registry_import, _("取込の確認中にエラーが発生しました。もう一度お試しください。"))
        raise
    return registry_import


def _parse(registry_import: RegistryImport, progress: Progress | None) -> None:
    held = _held(registry_import)
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
            home=(municipality.prefecture, municipality.name),
        )
        rows = 0
        addresses = Addresses()
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
                addresses.add(result)
                # With the chunk's rows, or not at all: a run that lost the import (taken
                # over, cancelled) has its last chunk rolled back and stops.
                if not RegistryImport.objects.filter(held).update(
                    bytes_done=done, rows_total=rows, heartbeat_at=timezone.now()
                ):
                    raise RegistryImportLost()
            registry_import.bytes_done, registry_import.rows_total = done, rows
            if progress:
                progress(registry_import)
    # The rest in one transaction holding the import's row: a takeover or a cancellation
    # waits for it, then finds the preview done.
    with transaction.atomic():
        _hold(held)
        _mark_duplicates(registry_import)
        registry_import.counts = {**preview_counts(registry_import), **addresses.counts()}
        # The optional columns the file does not have: the page says that a voucher
        # already held loses those values, and, without the address, what the call centre
        # then asks a caller instead.
        registry_import.columns_missing = [
            field
            for field in FIELD_LABELS
            if field not in REQUIRED_FIELDS and field not in head.fields
        ]
        registry_import.error_file = _write_error_file(registry_import, encoding)
        registry_import.error_file_expires_at = (
            timezone.now() + timedelta(days=error_file_days())
            if registry_import.error_file
            else None
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


@dataclass
class Addresses:
    """What the chunks' address samples found: how many addresses were read, and how many
    named another municipality, which ones most often (names of places, never an address)."""

    checked: int = 0
    elsewhere: Counter[str] = field(default_factory=Counter)

    def add(self, result: ChunkResult) -> None:
        self.checked += result.addresses_checked
        self.elsewhere.update(result.elsewhere)

    def counts(self) -> dict[str, Any]:
        return {
            "addresses_checked": self.checked,
            "addresses_elsewhere": sum(self.elsewhere.values()),
            "places_elsewhere": [place for place, _n in self.elsewhere.most_common(3)],
        }


# A voucher number on this many other lines is named with the first of them and "…": the
# message stays within its column however often a file repeats a number.
_OTHER_LINES_SHOWN = 20

# The error rows of duplicated voucher numbers, one per line that has such a number (staged
# or invalid), naming the other lines — all in SQL: a file holding its list twice
# duplicates every row.
_DUPLICATE_ERRORS = """
WITH duplicated AS (
    SELECT line_number, voucher_number FROM booking_registryimportrow
    WHERE import_id = %(id)s AND duplicate
), lines AS (
    SELECT line_number, voucher_number FROM duplicated
    UNION
    -- The invalid rows sharing a number with a staged row (only numbers staged rows have:
    -- two invalid rows are both left out anyway).
    SELECT e.line_number, e.voucher_number FROM booking_registryimporterror e
    WHERE e.import_id = %(id)s AND e.voucher_number IN (SELECT voucher_number FROM duplicated)
), grouped AS (
    SELECT voucher_number, array_agg(line_number ORDER BY line_number) AS every_line
    FROM lines GROUP BY voucher_number
)
INSERT INTO booking_registryimporterror
    (import_id, line_number, voucher_number, "column", masked_value, message)
SELECT %(id)s, l.line_number, l.voucher_number, %(column)s,
       %(mask)s || right(l.voucher_number, 2),
       %(before)s || array_to_string(others[1:%(shown)s], '・')
           || CASE WHEN cardinality(others) > %(shown)s THEN '…' ELSE '' END || %(after)s
FROM lines l JOIN grouped g USING (voucher_number),
     LATERAL (SELECT array_remove(g.every_line, l.line_number) AS others) o
"""


def _mark_duplicates(registry_import: RegistryImport) -> None:
    """A voucher number twice in one file is an error for every row that has it: which
    one is right is for the municipality to say, not for the import to guess. That holds
    when one of the rows is invalid for another reason too (its voucher number itself being
    valid): the other row is not imported either, and the invalid row's entry in the error
    file names the duplicate as well.

    One pass marks both kinds: the numbers staged more than once (an aggregate of the
    import's rows) and the valid numbers of invalid rows, hashed, then the staged rows
    scanned once against them (about 1.5 s per million rows here, against 2 s for the two
    semi-joins it replaces). The staging table's statistics are usually those of an
    earlier import (the application's role may not ANALYZE it): planned on such estimates,
    a nested loop would scan the aggregate's result once per staged row, so nested loops
    are off for this transaction. Nothing comes back to Python: the error rows are made in
    SQL too."""
    message = _("同じ接種券番号が%(lines)s行目にもあります（どちらも取り込みません）")
    before, after = message.split("%(lines)s")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(
            """
            UPDATE booking_registryimportrow s SET duplicate = true
            WHERE s.import_id = %(id)s AND s.voucher_number IN (
                SELECT o.voucher_number FROM booking_registryimportrow o
                WHERE o.import_id = %(id)s
                GROUP BY o.voucher_number HAVING count(*) > 1
                UNION ALL
                SELECT e.voucher_number FROM booking_registryimporterror e
                WHERE e.import_id = %(id)s AND e.voucher_number <> '')
            """,
            {"id": registry_import.pk},
        )
        cursor.execute(
            _DUPLICATE_ERRORS,
            {
                "id": registry_import.pk,
                "column": "接種券番号",
                "mask": "＊" * 8,
                "before": before,
                "after": after,
                "shown": _OTHER_LINES_SHOWN,
            },
        )
        # Back to the session's setting, should this run inside a caller's transaction.
        cursor.execute("RESET enable_nestloop")
