"""The voucher-registry import: upload, preview, confirm, apply — one service for every entry
point (the vendor's control plane, the municipal console, ``manage.py vouchers_import``).

Parsing (CPU) runs in worker processes on chunks of the file (``booking.registry.pipeline``);
this package moves their output into PostgreSQL with COPY and does everything else in SQL.
Nothing is written to the vouchers until the operator confirms the preview.

- ``upload``: the checks before anything is parsed, storing the file, queueing the preview.
- ``preview``: the parse in worker processes, COPY into staging, duplicates and counts.
- ``error_file``: the invalid rows as sent, with what is wrong; its download.
- ``apply``: confirm or cancel, the batched apply, the withdrawal a full list makes.
- ``codes``: activation codes (voucher_code login mode) and their one-time download.
- ``state``: refusals, the claim on a phase, failing, the staged rows and upload dropped.
- ``files``: stored file names, size and chunk limits, the error file's period.
- ``progress``: the progress callback and the report the pages show.

Callers import from here; the names below are the package's API.
"""

from __future__ import annotations

from booking.models.registry import STALE_AFTER
from booking.services.registry_import.apply import (
    WITHDRAWAL_SHARE_ASKED,
    WITHDRAWALS_NEVER_ASKED,
    addresses_elsewhere,
    full_list_without_rows,
    registry_import_apply,
    registry_import_cancel,
    registry_import_confirm,
    withdrawals_to_acknowledge,
    withdrawn_holding_bookings,
)
from booking.services.registry_import.codes import (
    CODE_ALPHABET,
    CODE_LENGTH,
    activation_code_hash,
    activation_codes_issue,
    format_code,
    registry_import_codes_file,
)
from booking.services.registry_import.error_file import (
    error_file_expired,
    registry_import_error_file,
)
from booking.services.registry_import.files import (
    ERROR_FILE_DAYS,
    codes_file_name,
    error_file_days,
    error_file_name,
    upload_file_name,
)
from booking.services.registry_import.preview import ERROR_ROWS_SHOWN, registry_import_parse
from booking.services.registry_import.progress import (
    Progress,
    ProgressReport,
    registry_import_progress,
)
from booking.services.registry_import.state import (
    AUDIT_FILE_NAME_CHARS,
    RegistryImportBusy,
    RegistryImportRefused,
    RegistryImportStalled,
    audit_file_name,
)
from booking.services.registry_import.upload import registry_import_upload

__all__ = [
    "WITHDRAWAL_SHARE_ASKED",
    "WITHDRAWALS_NEVER_ASKED",
    "addresses_elsewhere",
    "full_list_without_rows",
    "withdrawals_to_acknowledge",
    "AUDIT_FILE_NAME_CHARS",
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "ERROR_FILE_DAYS",
    "ERROR_ROWS_SHOWN",
    "STALE_AFTER",
    "Progress",
    "ProgressReport",
    "RegistryImportBusy",
    "RegistryImportRefused",
    "RegistryImportStalled",
    "activation_code_hash",
    "activation_codes_issue",
    "audit_file_name",
    "codes_file_name",
    "error_file_days",
    "error_file_expired",
    "error_file_name",
    "format_code",
    "registry_import_apply",
    "registry_import_cancel",
    "registry_import_codes_file",
    "registry_import_confirm",
    "registry_import_error_file",
    "registry_import_parse",
    "registry_import_progress",
    "registry_import_upload",
    "upload_file_name",
    "withdrawn_holding_bookings",
]
