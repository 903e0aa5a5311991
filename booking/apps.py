from __future__ import annotations

from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "booking"
    verbose_name = "Vaccination booking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from booking import stats  # noqa: F401  (registers the control plane's counts)
