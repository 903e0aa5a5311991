"""The day-before reminders of one municipality, queued in batches of bounded size.

A reminder row is unique per booking, appointment date and channel (``dedupe_key``), and
each batch is one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: a pass that runs twice,
two passes at once, or a pass resumed after a crash queue each reminder once. Memory is one
batch of booking ids and the ids of the rows it created, whatever the day's size.

The beat (``booking.tasks_notifications.reminders_queue_all``) runs every ten minutes; each
municipality's pass queues tomorrow's reminders once its reminder time has come, and passes
later that day pick up bookings made since (a no-op for the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from booking.models import (
    Booking,
    ContactPreference,
    Notification,
    NotificationKind,
    Slot,
    VaccineProduct,
    Venue,
)
from booking.services.notifications import (
    notification_settings_get,
    notifications_dispatch_on_commit,
)
from booking.tasks_notifications import SEND_BATCH

JAPAN = ZoneInfo("Asia/Tokyo")
BATCH_BOOKINGS = 2000

# Mirrors booking.services.notifications.booking_message_context (a test holds them equal).
_INSERT = """
INSERT INTO {notification} (
    kind, channel, voucher_id, booking_id, dedupe_key, context, status, idempotency_key,
    attempts, provider, provider_message_id, last_error, created_at, updated_at
)
SELECT
    %(kind)s, ch.channel, b.voucher_id, b.id,
    'reminder:' || b.id || ':' || %(day)s || ':' || ch.channel,
    jsonb_build_object(
        'booking_number', b.booking_number,
        'slot_id', s.id,
        'dose', b.dose,
        'venue_name', v.name,
        'venue_address', v.address,
        'venue_map_url', v.map_url,
        'product_name', p.name,
        'starts_at', to_char(s.starts_at AT TIME ZONE 'Asia/Tokyo',
                             'YYYY-MM-DD"T"HH24:MI:SS"+09:00"'),
        'ends_at', to_char(s.ends_at AT TIME ZONE 'Asia/Tokyo',
                           'YYYY-MM-DD"T"HH24:MI:SS"+09:00"')
    ),
    'pending', gen_random_uuid(), 0, '', '', '', now(), now()
FROM {booking} b
JOIN {slot} s ON s.id = b.slot_id
JOIN {venue} v ON v.id = s.venue_id
JOIN {product} p ON p.id = s.product_id
JOIN {preference} cp ON cp.voucher_id = b.voucher_id
CROSS JOIN LATERAL (
    VALUES
        ('email', cp.email_consented_at IS NOT NULL AND cp.email IS NOT NULL),
        ('sms', cp.sms_consented_at IS NOT NULL AND cp.phone IS NOT NULL),
        ('line', cp.line_consented_at IS NOT NULL AND cp.line_user_id IS NOT NULL)
) AS ch (channel, consented)
WHERE b.id = ANY(%(booking_ids)s) AND ch.consented
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""

_NEXT_BATCH = """
SELECT b.id
FROM {booking} b
JOIN {slot} s ON s.id = b.slot_id
WHERE s.starts_at >= %(start)s AND s.starts_at < %(end)s
  AND s.status <> 'cancelled'
  AND b.status = 'active'
  AND b.id > %(after)s
ORDER BY b.id
LIMIT %(limit)s
"""


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "notification": quote(Notification._meta.db_table),
        "booking": quote(Booking._meta.db_table),
        "slot": quote(Slot._meta.db_table),
        "venue": quote(Venue._meta.db_table),
        "product": quote(VaccineProduct._meta.db_table),
        "preference": quote(ContactPreference._meta.db_table),
    }


@dataclass
class ReminderPass:
    day: date
    bookings_seen: int = 0
    queued: int = 0
    batches: int = 0
    tasks: int = 0


def reminders_queue_for_day(*, day: date, batch_size: int = BATCH_BOOKINGS) -> ReminderPass:
    """Queue a reminder on every consented channel for each live booking on ``day`` (Tokyo).

    Each batch commits on its own when called in autocommit (a Celery task), so a crash
    loses at most the batch in flight, and the next pass redoes only what is missing.
    """
    tables = _tables()
    start = datetime.combine(day, time.min, tzinfo=JAPAN)
    end = start + timedelta(days=1)
    result = ReminderPass(day=day)
    after = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                _NEXT_BATCH.format(**tables),
                {"start": start, "end": end, "after": after, "limit": batch_size},
            )
            booking_ids = [row[0] for row in cursor.fetchall()]
            if not booking_ids:
                break
            after = booking_ids[-1]
            cursor.execute(
                _INSERT.format(**tables),
                {
                    "kind": NotificationKind.REMINDER.value,
                    "day": day.isoformat(),
                    "booking_ids": booking_ids,
                },
            )
            created = [row[0] for row in cursor.fetchall()]
            result.bookings_seen += len(booking_ids)
            result.batches += 1
            result.queued += len(created)
            if created:
                notifications_dispatch_on_commit(created)
                result.tasks += -(-len(created) // SEND_BATCH)
    return result


def reminders_queue_if_due(*, now: datetime | None = None) -> int:
    """Tomorrow's reminders, once this municipality's reminder time has come today."""
    local_now = (now or timezone.now()).astimezone(JAPAN)
    settings_row = notification_settings_get()
    if not settings_row.reminders_enabled or local_now.time() < settings_row.reminder_time:
        return 0
    return reminders_queue_for_day(day=local_now.date() + timedelta(days=1)).queued
