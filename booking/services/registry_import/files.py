"""The import's files: where they are stored, how large an upload may be, how it is read in
chunks, and how long the error file stays."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from booking.registry.pipeline import CHUNK_BYTES
from tenants.crypto import SEGMENTS_MAGIC, cipher_for
from tenants.db import current_municipality
from tenants.storage import EXPORTS, UPLOADS

# Days the error file can be downloaded; the bucket keeps exports/ at least this long
# (terraform exports_expiry_days, checked by tests/sesshu/test_storage_prefixes.py).
ERROR_FILE_DAYS = 14


# The largest registry file taken by default. The web and worker pods' scratch space
# (k8s/base) holds twice it: tests/infra/test_k8s_manifests.py reads this line.
REGISTRY_MAX_BYTES = 512 * 1024 * 1024


def _max_bytes() -> int:
    return int(getattr(settings, "SESSHU_REGISTRY_MAX_BYTES", REGISTRY_MAX_BYTES))


def _chunk_bytes() -> int:
    return int(getattr(settings, "SESSHU_REGISTRY_CHUNK_BYTES", CHUNK_BYTES))


def error_file_days() -> int:
    return int(getattr(settings, "SESSHU_REGISTRY_ERROR_FILE_DAYS", ERROR_FILE_DAYS))


# --- Stored file names (tenants.storage puts the tenant after the area) ------------------------


def upload_file_name() -> str:
    """The registry file as sent: plaintext personal data until the import is done, so under
    uploads/ (deleted after the import, and by the bucket lifecycle in any case)."""
    return f"{UPLOADS}/registry-imports/{uuid.uuid4().hex}.csv"


def error_file_name(registry_import_id: int) -> str:
    return f"{EXPORTS}/registry-imports/errors-{registry_import_id}.bin"


def codes_file_name(registry_import_id: int) -> str:
    return f"{EXPORTS}/registry-imports/codes-{registry_import_id}.bin"


# --- Sealed files (the error file, the activation codes) --------------------------------------


def sealed_file_save(name: str, segments: Iterable[bytes], *, table: str, row_id: str) -> str:
    """Store ``segments`` under ``name``, sealed under the municipality's key a segment at a
    time (TenantCipher.seal_segments) through a temporary file: never held whole."""
    cipher = cipher_for(current_municipality())
    with tempfile.TemporaryFile() as sealed:
        for piece in cipher.seal_segments(segments, table=table, column="content", row_id=row_id):
            sealed.write(piece)
        sealed.seek(0)
        return default_storage.save(name, File(sealed))


def sealed_file_open(
    name: str, *, table: str, row_id: str, whole_codec: str = "utf-8"
) -> Iterator[bytes]:
    """A stored sealed file's plaintext: segment by segment, or — written before segments —
    whole, as the text it was sealed as, encoded with ``whole_codec``. Yields at least once;
    raises DecryptionFailed on a segment that does not open."""
    cipher = cipher_for(current_municipality())
    with default_storage.open(name, "rb") as stream:
        segmented = stream.read(len(SEGMENTS_MAGIC)) == SEGMENTS_MAGIC
        stream.seek(0)
        if not segmented:
            field = cipher.decrypt_field(
                stream.read(), table=table, column="content", row_id=row_id
            )
            yield field.encode(whole_codec)
            return
        yield from cipher.open_segments(stream, table=table, column="content", row_id=row_id)
