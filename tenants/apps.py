from __future__ import annotations

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Municipalities"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants import hosts, signals  # noqa: F401  (connect their signal receivers)
