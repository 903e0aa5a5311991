"""Celery tasks of a municipality: interfaces that take ids and call a service.

Each runs in the schema and role of the municipality that queued it (tenant-schemas-celery)
and is idempotent: the services claim their work with a conditional UPDATE.
"""

from __future__ import annotations

from typing import Any

# Celery discovers booking.tasks only: the notification tasks register through this import.
from booking import tasks_notifications  # noqa: F401
from sesshu.celery import app


@app.task(name="booking.registry_import_parse", bind=True, acks_late=True, max_retries=None)
def registry_import_parse(self: Any, registry_import_id: int) -> None:
    from booking.services.registry_import import STALE_AFTER, RegistryImportBusy
    from booking.services.registry_import import registry_import_parse as parse

    try:
        parse(registry_import_id=registry_import_id)
    except RegistryImportBusy as exc:
        # A redelivered task while the first run may still be alive: look again once its
        # heartbeat would have gone stale.
        raise self.retry(countdown=STALE_AFTER.total_seconds() + 5) from exc


@app.task(name="booking.registry_import_apply", bind=True, acks_late=True, max_retries=None)
def registry_import_apply(self: Any, registry_import_id: int) -> None:
    from booking.services.registry_import import STALE_AFTER, RegistryImportBusy
    from booking.services.registry_import import registry_import_apply as apply

    try:
        apply(registry_import_id=registry_import_id)
    except RegistryImportBusy as exc:
        raise self.retry(countdown=STALE_AFTER.total_seconds() + 5) from exc


@app.task(name="booking.registry_imports_resume", acks_late=True)
def registry_imports_resume() -> list[int]:
    """Resume this municipality's import if its run died or its task was lost."""
    from booking.services.registry_upkeep import registry_imports_resume_stalled

    return registry_imports_resume_stalled()


@app.task(name="booking.registry_imports_upkeep", acks_late=True)
def registry_imports_upkeep() -> dict[str, int]:
    """Expire this municipality's unconfirmed previews and old import files."""
    from booking.services.registry_upkeep import registry_imports_expire

    return registry_imports_expire()


def _in_each_municipality(task: Any) -> int:
    """Queue ``task`` once in every municipality that still has a schema of its own (a
    suspended one too: its imports' files are kept as short a time as anyone's)."""
    from tenants.models import Municipality
    from tenants.queue import queue_in_each_municipality

    return queue_in_each_municipality(
        task, Municipality.objects.exclude(status=Municipality.Status.DECOMMISSIONED)
    )


@app.task(name="booking.registry_imports_resume_all")
def registry_imports_resume_all() -> int:
    """Beat entry (public schema, every few minutes): one resume pass per municipality."""
    return _in_each_municipality(registry_imports_resume)


@app.task(name="booking.registry_imports_upkeep_all")
def registry_imports_upkeep_all() -> int:
    """Beat entry (public schema, hourly): one upkeep pass per municipality."""
    return _in_each_municipality(registry_imports_upkeep)


@app.task(name="booking.sessions_clear", acks_late=True)
def sessions_clear() -> dict[str, int]:
    """Delete this municipality's ended sessions (booking.services.session_upkeep)."""
    from booking.services.session_upkeep import sessions_clear_ended

    return sessions_clear_ended()


@app.task(name="booking.sessions_clear_all")
def sessions_clear_all() -> int:
    """Beat entry (public schema, hourly): the platform's own ended sessions here, then one
    pass per municipality."""
    from booking.services.session_upkeep import sessions_clear_ended

    sessions_clear_ended()
    return _in_each_municipality(sessions_clear)
