"""The Celery app. Every task runs in the schema (and database role) of the tenant that
enqueued it: tenant-schemas-celery puts the schema in the message headers and switches the
connection before the task, and back after it."""

from __future__ import annotations

import os
import sys
from typing import Any

from celery.signals import worker_init
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sesshu.settings")

app = CeleryApp("sesshu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def refuse_outside_tokyo(**kwargs: Any) -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from sesshu.regions import assert_tokyo

    try:
        assert_tokyo(settings)
    except ImproperlyConfigured as exc:
        # Celery logs and swallows exceptions from signal handlers; the worker must stop.
        print(f"ImproperlyConfigured: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(78) from exc  # EX_CONFIG
