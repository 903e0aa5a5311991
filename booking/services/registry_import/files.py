"""The import's files: where they are stored, how large an upload may be, how it is read in
chunks, and how long the error file stays."""

from __future__ import annotations

import uuid

from django.conf import settings

from booking.registry.pipeline import CHUNK_BYTES
from tenants.storage import EXPORTS, UPLOADS

# Days the error file can be downloaded; the bucket keeps exports/ at least this long
# (terraform exports_expiry_days, checked by tests/sesshu/test_storage_prefixes.py).
ERROR_FILE_DAYS = 14


def _max_bytes() -> int:
    return int(getattr(settings, "SESSHU_REGISTRY_MAX_BYTES", 512 * 1024 * 1024))


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
