"""The upload: checked before anything is parsed, stored, and its preview queued."""

from __future__ import annotations

import hashlib
import os
from functools import partial
from typing import IO

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport
from booking.registry.csvfile import check_upload, resolve_encoding
from booking.registry.errors import RegistryValueError
from booking.selectors.registry import registry_imports_at_work
from booking.services.registry_import.files import _max_bytes, upload_file_name
from booking.services.registry_import.state import (
    RegistryImportRefused,
    RegistryImportStalled,
    _enqueue,
    audit_file_name,
)
from booking.services.registry_mapping import saved_column_mapping


def _refuse_while_at_work() -> None:
    at_work = registry_imports_at_work().first()
    if at_work is None:
        return
    if at_work.stalled:
        raise RegistryImportStalled(at_work)
    raise RegistryImportRefused(_("別の取込が進行中です。終わってからもう一度お試しください。"))


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
        check_upload(
            head, size, _max_bytes(), encoding=resolve_encoding(encoding) if encoding else None
        )
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
