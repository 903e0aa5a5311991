"""The error file: the invalid rows as the municipality sent them, with what is wrong,
sealed under the municipality's key; written by the preview, downloaded from the pages."""

from __future__ import annotations

import csv
import io
import os

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport
from booking.registry.errorrows import header_cells, rows_at_lines
from booking.registry.pipeline import split_head
from booking.services.registry_import.files import _chunk_bytes, error_file_name
from booking.services.registry_import.state import RegistryImportRefused, audit_file_name
from tenants.crypto import cipher_for
from tenants.db import current_municipality


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


def error_file_expired(registry_import: RegistryImport) -> bool:
    """Past its download period: refused, and soon deleted by the upkeep."""
    expires_at = registry_import.error_file_expires_at
    return expires_at is not None and expires_at < timezone.now()


def registry_import_error_file(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None
) -> tuple[str, bytes]:
    """The error file's name and bytes (decrypted); audited."""
    # The expiry first: once past it, the periodic upkeep deletes the file itself.
    if error_file_expired(registry_import):
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
