"""Background work on municipalities: the counts the control plane shows.

The vendor sees numbers only. They are counted inside the municipality's schema, under its
own database role (the public role cannot read a tenant schema), and written to the public
Municipality row after leaving it (a tenant role cannot write public tables).

Apps add their own counts with :func:`stat_counter`; the control plane shows every
registered count with its label::

    @stat_counter("bookings", _("予約"))
    def count_bookings() -> int:
        return Booking.objects.count()

A counter runs inside the municipality's schema and returns a number — never a row, a name
or anything else personal. Register it from a module that the app's ``AppConfig.ready()``
imports, so that both the worker (which counts) and the web process (which shows the
labels) know it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import get_public_schema_name, schema_context

from sesshu.celery import app
from tenants.models import Municipality

Count = Callable[[], int]


@dataclass(frozen=True)
class StatCounter:
    key: str
    label: str | Promise
    count: Count
    # Whether a value needs the vendor's attention (shown as such in the control plane).
    attention: Callable[[int], bool] | None = None


STAT_COUNTERS: dict[str, StatCounter] = {}

# Statuses whose schema still exists: a suspended municipality or one in incident response
# is exactly one the vendor wants fresh numbers for.
COUNTED_STATUSES = (
    Municipality.Status.ACTIVE,
    Municipality.Status.SUSPENDED,
    Municipality.Status.INCIDENT,
)


def stat_counter(
    key: str, label: str | Promise, *, attention: Callable[[int], bool] | None = None
) -> Callable[[Count], Count]:
    """Register ``count`` under ``key``; it is called inside one municipality's schema.
    ``attention`` says which values the control plane marks as needing attention."""

    def register(count: Count) -> Count:
        if key in STAT_COUNTERS and STAT_COUNTERS[key].count is not count:
            raise ValueError(f"a stat counter named {key!r} is already registered")
        STAT_COUNTERS[key] = StatCounter(key=key, label=label, count=count, attention=attention)
        return count

    return register


@stat_counter("staff_accounts", _("職員アカウント"))
def count_staff_accounts() -> int:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.count()


@stat_counter("audit_events", _("監査イベント"))
def count_audit_events() -> int:
    from audit.models import Event

    return Event.objects.count()


def municipality_stats_count(municipality: Municipality) -> dict[str, int]:
    """Run every registered counter inside ``municipality``'s schema and role."""
    with schema_context(municipality.schema_name):
        return {key: int(counter.count()) for key, counter in STAT_COUNTERS.items()}


@app.task
def municipality_stats_refresh(municipality_id: int) -> dict[str, Any] | None:
    """Count inside one municipality and store the numbers on its public row.

    Idempotent: running it twice stores the same numbers. Works wherever it was enqueued
    from: it reads and writes the public row in the public context explicitly.
    """
    with schema_context(get_public_schema_name()):
        municipality = (
            Municipality.objects.filter(pk=municipality_id, status__in=COUNTED_STATUSES)
            .exclude(schema_name=get_public_schema_name())
            .first()
        )
        if municipality is None:
            return None
        stats = municipality_stats_count(municipality)
        Municipality.objects.filter(pk=municipality.pk).update(
            stats=stats, stats_refreshed_at=timezone.now()
        )
    return stats


@app.task
def municipality_stats_refresh_all() -> int:
    """Enqueue one refresh per municipality that still has a schema; return how many."""
    with schema_context(get_public_schema_name()):
        ids = list(
            Municipality.objects.filter(status__in=COUNTED_STATUSES)
            .exclude(schema_name=get_public_schema_name())
            .values_list("pk", flat=True)
        )
        for municipality_id in ids:
            municipality_stats_refresh.delay(municipality_id)
    return len(ids)
