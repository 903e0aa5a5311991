"""File storage whose every path starts with the current tenant's schema, read at call time.

A storage object is created once per process and shared by all requests, so the tenant
cannot be fixed at construction: each call asks the connection which tenant is current. In
the public context (control plane) paths go under ``platform/``.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import FileSystemStorage
from django_tenants.utils import get_public_schema_name
from storages.backends.s3 import S3Storage

from tenants.db import current_schema


def tenant_prefix() -> str:
    schema = current_schema()
    return "platform" if schema in (None, get_public_schema_name()) else f"tenants/{schema}"


class _TenantPathMixin:
    def _tenant_name(self, name: str) -> str:
        prefix = tenant_prefix()
        name = name.lstrip("/")
        return name if name.startswith(prefix + "/") else f"{prefix}/{name}"


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
