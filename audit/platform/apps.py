from __future__ import annotations

from django.apps import AppConfig


class AuditPlatformConfig(AppConfig):
    name = "audit.platform"
    label = "audit_platform"
    verbose_name = "Audit trail (platform)"
    default_auto_field = "django.db.models.BigAutoField"
