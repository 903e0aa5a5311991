"""Celery tasks for notifications: interfaces that take ids and call a service.

Tenant tasks run in the schema and role of the municipality that queued them
(tenant-schemas-celery). The beat entries ``notifications_sweep_all`` and
``reminders_queue_all`` run in the public schema and queue one task per municipality, each in
that municipality's context. Beat schedule (settings)::

    CELERY_BEAT_SCHEDULE = {
        "notifications-sweep": {"task": "booking.notifications_sweep_all", "schedule": 60.0},
        "reminders-queue": {"task": "booking.reminders_queue_all", "schedule": 600.0},
    }

Nothing here relies on a task being delivered exactly once: every send is claimed with a
conditional UPDATE on the outbox row, and the sweeper re-dispatches whatever a lost task
left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sesshu.celery import app

logger = logging.getLogger(__name__)

SEND_BATCH = 100


def dispatch_ids(notification_ids: Sequence[int]) -> int:
    """Queue the sender for these rows in the current municipality; return tasks queued."""
    ids = list(notification_ids)
    if len(ids) == 1:
        notification_send.delay(ids[0])
        return 1
    tasks = 0
    for start in range(0, len(ids), SEND_BATCH):
        notification_send_batch.delay(ids[start : start + SEND_BATCH])
        tasks += 1
    return tasks


def _eager() -> bool:
    return bool(app.conf.task_always_eager)


@app.task(name="booking.notification_send", bind=True, acks_late=True, max_retries=None)
def notification_send(self: Any, notification_id: int) -> str:
    from booking.notifications.delivery import Outcome, notification_deliver

    result = notification_deliver(notification_id=notification_id)
    if result.outcome in (Outcome.RETRY, Outcome.RATE_LIMITED) and not _eager():
        # Without a broker (development) the row keeps its not_before and the sweeper takes
        # it up; an eager retry would spin in-process.
        raise self.retry(countdown=result.countdown)
    return result.outcome.value


@app.task(name="booking.notification_send_batch", acks_late=True)
def notification_send_batch(notification_ids: list[int]) -> dict[str, int]:
    """Send several rows in one task (reminders); a row that must wait gets its own task."""
    from booking.notifications.delivery import Outcome, notification_deliver

    counts: dict[str, int] = {}
    for position, notification_id in enumerate(notification_ids):
        result = notification_deliver(notification_id=notification_id)
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
        if result.outcome == Outcome.RATE_LIMITED:
            # The provider's budget is spent: hand the rest back as one delayed batch.
            from booking.notifications.delivery import notifications_defer

            rest = notification_ids[position:]
            notifications_defer(notification_ids=rest, seconds=result.countdown)
            if not _eager():
                notification_send_batch.apply_async((rest,), countdown=result.countdown)
            counts["deferred"] = len(rest) - 1
            break
        if result.outcome == Outcome.RETRY and not _eager():
            notification_send.apply_async((notification_id,), countdown=result.countdown)
        if result.outcome == Outcome.PAUSED:
            break  # the municipality paused sending; resuming re-dispatches what waits
    return counts


@app.task(name="booking.notifications_sweep", acks_late=True)
def notifications_sweep() -> int:
    """Re-dispatch what is due and was not (lost publish, expired claim, backoff over)."""
    from booking.notifications.delivery import notifications_due

    ids = notifications_due()
    if ids:
        dispatch_ids(ids)
    return len(ids)


@app.task(name="booking.reminders_queue", acks_late=True)
def reminders_queue() -> int:
    """Queue tomorrow's reminders in this municipality once its reminder time has come."""
    from booking.notifications.reminders import reminders_queue_if_due

    return reminders_queue_if_due()


def _in_each_municipality(task: Any) -> int:
    """Queue ``task`` once in every municipality that is sent notifications."""
    from booking.notifications.delivery import NOTIFIED_STATUSES
    from tenants.models import Municipality
    from tenants.queue import queue_in_each_municipality

    return queue_in_each_municipality(
        task, Municipality.objects.filter(status__in=NOTIFIED_STATUSES)
    )


@app.task(name="booking.notifications_sweep_all")
def notifications_sweep_all() -> int:
    """Beat entry (public schema, every minute): one sweep per municipality."""
    return _in_each_municipality(notifications_sweep)


@app.task(name="booking.reminders_queue_all")
def reminders_queue_all() -> int:
    """Beat entry (public schema, every ten minutes): one reminder pass per municipality.

    A pass before the municipality's reminder time does nothing; later passes that day add
    the bookings made since (the rest is a no-op).
    """
    return _in_each_municipality(reminders_queue)
