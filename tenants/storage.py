"""File storage whose every object key names its area and the current tenant, read at call time.

Every stored name starts with an *area*, and the storage puts the tenant right after it:

    uploads/tenants/<schema>/registry-imports/<uuid>.csv   files sent in (registry CSVs: personal
                                                             data in plaintext until processed)
    exports/tenants/<schema>/registry-imports/errors-7.bin  files the application generates
    uploads/platform/...  exports/platform/...               the public context (control plane)

The area comes first because S3 can only scope IAM policies and lifecycle expiry by key prefix:
terraform/iam.tf lets the web and worker roles use ``uploads/*`` and ``exports/*`` only, and
terraform/s3.tf expires each area after its own number of days. A name outside the areas is
refused here, before S3 would refuse it (or keep it for ever); tests/sesshu/
test_storage_prefixes.py checks each key the application writes against the Terraform.

A storage object is created once per process and shared by all requests, so the tenant
cannot be fixed at construction: each call asks the connection which tenant is current.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage
from django_tenants.utils import get_public_schema_name
from storages.backends.s3 import S3Storage

from tenants.db import current_schema

# Files people send in: deleted once processed, and by the bucket lifecycle after a few weeks.
UPLOADS = "uploads"
# Files the application generates for download: deleted by the bucket lifecycle after days.
EXPORTS = "exports"
AREAS: tuple[str, ...] = (UPLOADS, EXPORTS)


def tenant_prefix() -> str:
    schema = current_schema()
    return "platform" if schema in (None, get_public_schema_name()) else f"tenants/{schema}"


def storage_key(name: str) -> str:
    """The key under which `name` ("<area>/<path>") is stored for the current tenant:
    "<area>/<tenant prefix>/<path>". Names already carrying the prefix are kept as they are."""
    name = name.lstrip("/")
    area, _, rest = name.partition("/")
    if area not in AREAS or not rest.strip("/"):
        raise SuspiciousFileOperation(
            f"Stored file names start with one of {', '.join(a + '/' for a in AREAS)}"
            f" (the prefixes IAM and the bucket lifecycle know): {name!r}"
        )
    prefix = tenant_prefix()
    return name if rest.startswith(prefix + "/") else f"{area}/{prefix}/{rest}"


class _TenantPathMixin:
    def _tenant_name(self, name: str) -> str:
        return storage_key(name)


class TenantFileSystemStorage(_TenantPathMixin, FileSystemStorage):
    def path(self, name: str) -> str:
        return super().path(self._tenant_name(name))

    def _save(self, name: str, content: Any) -> str:
        return super()._save(self._tenant_name(name), content)  # type: ignore[misc]

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return super().get_available_name(self._tenant_name(name), max_length)

    def url(self, name: str | None) -> str:
        return super().url(self._tenant_name(name or ""))


class TenantS3Storage(_TenantPathMixin, S3Storage):
    def _normalize_name(self, name: str) -> str:
        return super()._normalize_name(self._tenant_name(name))

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return super().get_available_name(self._tenant_name(name), max_length)
