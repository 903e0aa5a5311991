"""The error file: the invalid rows as the municipality sent them, with what is wrong,
sealed under the municipality's key; written by the preview, downloaded from the pages."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
from collections import deque
from collections.abc import Iterable, Iterator

from django.core.files.storage import default_storage
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport
from booking.registry.errorrows import AS_SENT, header_cells, rows_at_lines
from booking.registry.pipeline import FileHead, Readable, split_head
from booking.services.registry_import.files import (
    _chunk_bytes,
    error_file_name,
    sealed_file_open,
    sealed_file_save,
)
from booking.services.registry_import.state import RegistryImportRefused, audit_file_name

# The error file is written and read a segment at a time (TenantCipher.seal_segments): a
# file whose every row is invalid — a wrong column mapping, say — makes an error file as large
# as itself, and neither the worker writing it nor the pod serving it holds it whole.
SEGMENT_BYTES = 1024 * 1024
# The invalid rows' messages are read a window of lines at a time, in file order.
_LINES_PER_QUERY = 5_000
_TABLE = "registry_error_file"


def _write_error_file(registry_import: RegistryImport, encoding: str) -> str:
    """The invalid rows exactly as the municipality sent them (same encoding, same columns),
    plus a last column saying what is wrong, so it can fix and re-send just those rows."""
    if not registry_import.errors.exists():
        return ""
    column_mapping = registry_import.column_mapping or None
    with default_storage.open(registry_import.stored_file, "rb") as stream:
        head, _encoding, rest = split_head(stream, encoding=encoding, column_mapping=column_mapping)
        rows = _error_rows(registry_import, head, rest, stream, encoding)
        return sealed_file_save(
            error_file_name(registry_import.pk),
            _segments(rows, encoding, line_end=_line_end(head)),
            table=_TABLE,
            row_id=str(registry_import.pk),
        )


def _messages_by_line(registry_import: RegistryImport) -> Iterator[tuple[int, list[str]]]:
    """Each invalid line and what is wrong with it, in file order."""
    errors = registry_import.errors.order_by("line_number", "id")
    bounds = errors.aggregate(first=Min("line_number"), last=Max("line_number"))
    if bounds["first"] is None:
        return
    after = bounds["first"] - 1
    while after < bounds["last"]:
        upto = after + _LINES_PER_QUERY
        line_now: int | None = None
        texts: list[str] = []
        window = errors.filter(line_number__gt=after, line_number__lte=upto)
        for line, column, message in window.values_list("line_number", "column", "message"):
            if line != line_now:
                if line_now is not None:
                    yield line_now, texts
                line_now, texts = line, []
            texts.append(f"{column}: {message}" if column else message)
        if line_now is not None:
            yield line_now, texts
        after = upto


def _error_rows(
    registry_import: RegistryImport, head: FileHead, rest: bytes, stream: Readable, encoding: str
) -> Iterator[list[str]]:
    """The error file's rows: the header with a last column, then each invalid row as sent
    with what is wrong with it."""
    header = header_cells(head, encoding=encoding)
    yield [*header, "エラー内容"]
    # The lines asked for whose rows have not come back yet: a chunk's worth at most.
    asked: deque[tuple[int, list[str]]] = deque()

    def lines() -> Iterator[int]:
        for line, texts in _messages_by_line(registry_import):
            asked.append((line, texts))
            yield line

    for line, cells in rows_at_lines(
        head, rest, stream, encoding=encoding, lines=lines(), chunk_bytes=_chunk_bytes()
    ):
        while asked and asked[0][0] < line:
            asked.popleft()  # a line no record starts on (never, for lines the parse reported)
        _line, texts = asked.popleft()
        # What is wrong stands under エラー内容 whatever the row's width: a short row is
        # padded, a long row's cells past the header's follow it. It starts with the row's
        # line in the file sent, which the messages (a duplicate's other line) and the
        # preview's table refer to.
        width = len(header)
        padding = [""] * (width - len(cells))
        said = f"{line}行目: " + " / ".join(texts)
        yield [*cells[:width], *padding, said, *cells[width:]]


def _line_end(head: FileHead) -> str:
    """The line end the file was sent with, as its header ends (CRLF, as Excel writes,
    when that does not say)."""
    return (
        "\n"
        if head.header_bytes.endswith(b"\n") and not head.header_bytes.endswith(b"\r\n")
        else "\r\n"
    )


def _segments(rows: Iterable[list[str]], encoding: str, *, line_end: str) -> Iterator[bytes]:
    """Rows as CSV in the file's own encoding and line ends, about SEGMENT_BYTES at a time."""
    encoder = codecs.getincrementalencoder(encoding)(errors=AS_SENT)
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator=line_end)
    for row in rows:
        writer.writerow(row)
        if text.tell() >= SEGMENT_BYTES:
            yield encoder.encode(text.getvalue())
            text.seek(0)
            text.truncate()
    yield encoder.encode(text.getvalue(), final=True)


def error_file_expired(registry_import: RegistryImport) -> bool:
    """Past its download period: refused, and soon deleted by the upkeep."""
    expires_at = registry_import.error_file_expires_at
    return expires_at is not None and expires_at < timezone.now()


def registry_import_error_file(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None
) -> tuple[str, Iterator[bytes]]:
    """The error file's name and its bytes (decrypted), a segment at a time; audited once
    its first segment has opened."""
    # The expiry first: once past it, the periodic upkeep deletes the file itself.
    if error_file_expired(registry_import):
        raise RegistryImportRefused(_("エラーファイルの保存期間が過ぎたため削除されました。"))
    if not registry_import.error_file:
        raise RegistryImportRefused(_("エラーファイルはありません。"))
    content = sealed_file_open(
        registry_import.error_file,
        table=_TABLE,
        row_id=str(registry_import.pk),
        whole_codec="latin-1",  # written whole, the file's bytes went in as latin-1 text
    )
    first = next(content)
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
    return f"{stem}_errors.csv", itertools.chain([first], content)
