"""Day-before reminders: the right bookings, once each, in every municipality's own schema."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django_tenants.utils import tenant_context

from booking.models import Booking, Notification, NotificationSettings
from booking.notifications.reminders import reminders_queue_for_day, reminders_queue_if_due
from booking.services.notifications import booking_message_context, notification_enqueue
from booking.tasks_notifications import reminders_queue_all
from tenants.models import Municipality
from tests.booking.notifications.conftest import LINE_USER
from tests.booking.notifications.factories import (
    make_booking,
    make_slot,
    make_voucher,
    set_contacts,
)

pytestmark = pytest.mark.django_db
JAPAN = ZoneInfo("Asia/Tokyo")
DAY = date(2026, 12, 2)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock(hour, minute), tzinfo=JAPAN)


def test_it_queues_tomorrows_live_bookings_on_consented_channels_once(
    tenant_a: Municipality,
) -> None:
    with tenant_context(tenant_a):
        slot = make_slot(_at(DAY, 10))
        early = make_slot(_at(DAY, 0, 0))  # midnight belongs to the day
        other_day = make_slot(_at(DAY + timedelta(days=1), 0, 0))
        cancelled_slot = make_slot(_at(DAY, 11))
        cancelled_slot.status = "cancelled"
        cancelled_slot.save()
        everything = make_voucher()
        set_contacts(everything, email="a@example.jp", phone="09011112222", line_user_id=LINE_USER)
        email_only = make_voucher()
        set_contacts(email_only, email="b@example.jp")
        silent = make_voucher()
        cancelled = make_voucher()
        set_contacts(cancelled, email="c@example.jp")

        wanted = [make_booking(everything, slot), make_booking(email_only, early)]
        make_booking(silent, slot)
        gone = make_booking(cancelled, slot)
        Booking.objects.filter(pk=gone.pk).update(status="cancelled")
        make_booking(email_only, other_day, dose=2)
        make_booking(cancelled, cancelled_slot, dose=2)

        first = reminders_queue_for_day(day=DAY, batch_size=2)
        assert (first.queued, first.bookings_seen, first.batches) == (4, 3, 2)
        rows = Notification.objects.filter(kind="reminder")
        assert sorted((row.booking_id, row.channel) for row in rows) == sorted(
            [(wanted[0].pk, c) for c in ("email", "line", "sms")] + [(wanted[1].pk, "email")]
        )
        # A second pass, or the booking service asking for one, adds nothing.
        assert reminders_queue_for_day(day=DAY).queued == 0
        again = notification_enqueue(kind="reminder", booking=wanted[1])
        assert [row.pk for row in again] == [rows.get(booking=wanted[1]).pk]
        assert Notification.objects.filter(kind="reminder").count() == 4


def test_the_queued_context_is_the_one_the_booking_service_would_write(
    tenant_a: Municipality,
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, email="a@example.jp")
        booking = make_booking(resident, make_slot(_at(DAY, 14, 30)))
        reminders_queue_for_day(day=DAY)
        row = Notification.objects.get(booking=booking, kind="reminder")
        assert row.context == booking_message_context(booking)
        assert row.dedupe_key == f"reminder:{booking.pk}:{DAY.isoformat()}:email"


def test_reminders_wait_for_the_municipalitys_reminder_time(tenant_a: Municipality) -> None:
    with tenant_context(tenant_a):
        NotificationSettings.objects.update_or_create(pk=1, defaults={"reminder_time": clock(18)})
        resident = make_voucher()
        set_contacts(resident, phone="08011112222")
        make_booking(resident, make_slot(_at(DAY, 9)))
        day_before = DAY - timedelta(days=1)
        assert reminders_queue_if_due(now=_at(day_before, 17, 59)) == 0
        assert reminders_queue_if_due(now=_at(day_before, 18, 0)) == 1
        assert reminders_queue_if_due(now=_at(day_before, 18, 10)) == 0


def test_the_beat_queues_each_municipalitys_reminders_in_its_own_schema(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    made = {}
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            resident = make_voucher()
            set_contacts(resident, email="a@example.jp")
            made[tenant.schema_name] = make_booking(resident, make_slot(_at(DAY, 9))).pk
    connection.set_schema_to_public()
    with time_machine.travel(_at(DAY - timedelta(days=1), 9, 5), tick=False):
        assert reminders_queue_all() >= 2  # tasks run in-process without a broker
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            rows = Notification.objects.filter(kind="reminder")
            assert [row.booking_id for row in rows] == [made[tenant.schema_name]]


def _bookings(count: int, day: date) -> None:
    """``count`` bookings on ``day`` with e-mail consent, inserted in bulk."""
    from booking.models import ContactPreference, Voucher

    slot = make_slot(_at(day, 9))
    start = Voucher.objects.count()
    vouchers = Voucher.objects.bulk_create(
        Voucher(voucher_number=f"7{start + i:09d}", personal=b"-", content_hash=b"-")
        for i in range(count)
    )
    now = datetime.now(UTC)
    ContactPreference.objects.bulk_create(
        ContactPreference(voucher=v, email=b"sealed", email_consented_at=now) for v in vouchers
    )
    Booking.objects.bulk_create(
        Booking(
            booking_number=f"Q{start + i:09d}",
            voucher=v,
            slot=slot,
            dose=1,
            channel="web",
            booked_through="web",
            actor_kind="tests",
        )
        for i, v in enumerate(vouchers)
    )


def _measure(tenants: list[Municipality], day: date) -> tuple[float, int, int]:
    tracemalloc.start()
    started = time.perf_counter()
    queued = 0
    for tenant in tenants:
        with tenant_context(tenant):
            queued += reminders_queue_for_day(day=day, batch_size=500).queued
    elapsed = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, queued


def test_queuing_is_bounded_in_memory_and_time(
    tenant_a: Municipality, tenant_b: Municipality, django_capture_on_commit_callbacks
) -> None:
    """Memory depends on the batch, not on the day: four times the bookings, same peak.
    (scripts/bench/bench_reminders.py runs the same at 50,000.)"""
    tenants = [tenant_a, tenant_b]
    with django_capture_on_commit_callbacks() as dispatches:
        for tenant in tenants:
            with tenant_context(tenant):
                _bookings(500, DAY)
                _bookings(2000, DAY + timedelta(days=1))
        small_time, small_peak, small_queued = _measure(tenants, DAY)
        large_time, large_peak, large_queued = _measure(tenants, DAY + timedelta(days=1))
    assert (small_queued, large_queued) == (1000, 4000)
    print(
        f"\nreminders in 2 municipalities: 1,000 in {small_time:.2f}s "
        f"(peak {small_peak / 1024:.0f} KiB); 4,000 in {large_time:.2f}s "
        f"(peak {large_peak / 1024:.0f} KiB)"
    )
    assert large_peak < 2 * small_peak + 256 * 1024
    assert large_peak < 4 * 1024 * 1024
    assert large_time < 20
    # One dispatch per batch that queued rows, sent on commit: 1 + 1, then 4 + 4 batches.
    assert len(dispatches) == 2 + 8
