"""Demo data (idempotent, bookable) and the booking counts the control plane shows."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.demo import demo_data_create, demo_venue_day
from booking.models import AgePhase, BookingPolicy, Slot, Venue, Voucher
from booking.selectors.availability import availability_for_day, open_days
from booking.services.booking import booking_create
from tenants.tasks import STAT_COUNTERS, municipality_stats_count
from tests.booking.booking.conftest import JAPAN, make_voucher, today


def test_demo_data_is_realistic_and_idempotent(tenant_a) -> None:
    with tenant_context(tenant_a):
        first = demo_data_create(days=14, venues=6)
        again = demo_data_create(days=14, venues=6)
        assert first == again
        assert first.products == 2
        assert first.venues == 6
        weekdays = sum(
            1 for offset in range(1, 15) if (today() + timedelta(days=offset)).weekday() < 5
        )
        # 9:00 to 16:30, every 30 minutes; and today at the first venue, for its desk.
        assert first.slots == 6 * weekdays * 16 + 16
        assert len({v.area for v in Venue.objects.all()}) >= 4
        assert all(v.address.startswith("東京都小平市") for v in Venue.objects.all())
        starts = [s.starts_at.astimezone(JAPAN) for s in Slot.objects.all()]
        assert all(s.weekday() < 5 for s in starts if s.date() != today())
        first_venue = Venue.objects.order_by("pk").first()
        assert {
            s.venue_id
            for s in Slot.objects.all()
            if s.starts_at.astimezone(JAPAN).date() == today()
        } == {first_venue.pk}
        assert min(s.time() for s in starts).hour == 9
        assert max(s.time() for s in starts).strftime("%H:%M") == "16:30"
        slot = Slot.objects.first()
        assert slot.capacity_web > 0 and slot.capacity_line > 0 and slot.capacity_call_centre > 0
        phases = {p.minimum_age: p.opens_at for p in AgePhase.objects.all()}
        assert phases[65] <= timezone.now() < phases[12]
        assert BookingPolicy.current().call_centre_phone
        # More days extend the same venues.
        assert demo_data_create(days=21, venues=6).slots > first.slots


def test_a_resident_can_book_the_demo(tenant_a) -> None:
    with tenant_context(tenant_a):
        demo_data_create(days=14, venues=3)
        day = open_days("web", today(), today() + timedelta(days=14))[0].day
        venue = availability_for_day(channel="web", day=day)[0]
        slot = Slot.objects.get(pk=venue.slots[0].slot_id)
        voucher = make_voucher(tenant_a, "1000000077")
        booking = booking_create(
            voucher=voucher, slot=slot, channel="web", actor=Actor.resident(voucher.pk)
        )
        assert booking.dose == 1


def test_booking_counts_for_the_control_plane(tenant_a) -> None:
    registered_before = set(STAT_COUNTERS)
    import booking.stats  # noqa: F401  (BookingConfig.ready imports it in the running app)

    try:
        assert {"vouchers_active", "bookings_live"} <= set(STAT_COUNTERS)
        with tenant_context(tenant_a):
            demo_data_create(days=7, venues=1)
            vouchers = [make_voucher(tenant_a, f"100000008{i}") for i in range(3)]
            Voucher.objects.filter(pk=vouchers[2].pk).update(status=Voucher.Status.WITHDRAWN)
            # Well inside the booking window whatever the hour: today's first slots may
            # already be closed to booking (it closes hours before a slot starts).
            slot = (
                Slot.objects.filter(starts_at__gte=timezone.now() + timedelta(days=2))
                .order_by("starts_at")
                .first()
            )
            booking_create(
                voucher=vouchers[0], slot=slot, channel="web", actor=Actor.resident(vouchers[0].pk)
            )
        stats = municipality_stats_count(tenant_a)
        assert stats["vouchers_active"] == 2
        assert stats["bookings_live"] == 1
    finally:
        # Until the app registers them at start-up, leave the registry as other tests know it.
        for key in set(STAT_COUNTERS) - registered_before:
            del STAT_COUNTERS[key]


def test_the_demo_venue_day_books_residents_today_at_the_first_venue(tenant_a) -> None:
    """The venue's desk has residents to receive today, whatever the hour: booked as the
    service leaves a booking (its place claimed), once."""
    with tenant_context(tenant_a):
        demo_data_create(days=7, venues=2)
        vouchers = [make_voucher(tenant_a, f"100000009{i}") for i in range(2)]
        made = demo_venue_day(vouchers)
        assert len(made) == 2
        first_venue = Venue.objects.order_by("pk").first()
        for booking in made:
            assert booking.slot.venue_id == first_venue.pk
            assert booking.slot.starts_at.astimezone(JAPAN).date() == today()
            assert booking.status == "active" and booking.dose == 1
        slot = Slot.objects.get(pk=made[0].slot_id)
        live = slot.bookings.filter(status="active").count()
        assert slot.booked_call_centre == live
        assert demo_venue_day(vouchers) == []  # again: nothing more
        assert Slot.objects.get(pk=slot.pk).booked_call_centre == live
