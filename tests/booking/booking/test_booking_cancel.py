"""booking_cancel: the right channel's place comes back; the cut-off; the cascade."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from audit.chain import Actor
from audit.models import Event
from booking.models import Booking, Slot
from booking.services.booking import BookingRefused, booking_cancel, booking_create
from tests.booking.booking.conftest import World, counters


def make_late(world: World, slot: Slot) -> None:
    starts = timezone.now() + timedelta(hours=world.policy.closes_hours_before - 2)
    Slot.objects.filter(pk=slot.pk).update(starts_at=starts, ends_at=starts + timedelta(minutes=30))


def test_it_gives_back_exactly_the_place_of_the_channel_booked_through(
    world: World, staff: Actor
) -> None:
    slot = world.slot(web=5, line=5, call_centre=5)
    by_line = booking_create(
        voucher=world.resident, slot=slot, channel="line", actor=world.resident_actor()
    )
    booking_create(voucher=world.neighbour, slot=slot, channel="call_centre", actor=staff)
    assert counters(slot) == (0, 1, 1)
    # Cancelled by the call centre: the LINE place comes back, not a call-centre one.
    cancelled = booking_cancel(booking=by_line, channel="call_centre", actor=staff, ip="192.0.2.3")
    assert cancelled.status == Booking.Status.CANCELLED
    assert cancelled.cancelled_at is not None
    assert counters(slot) == (0, 0, 1)
    event = Event.objects.get(action="booking.cancelled", target_id=str(by_line.pk))
    assert event.details["booked_channel"] == "line"
    assert event.details["channel"] == "call_centre"
    assert event.actor_kind == "staff"


def test_the_trail_says_where_a_booking_was_made_and_whose_places_it_held(
    world: World, staff: Actor
) -> None:
    """Booked on the web, moved by the call centre (onto its places), then cancelled: the
    trail says web for where it was made, and the call centre for the places given back."""
    from booking.services.booking import booking_change

    booked = booking_create(
        voucher=world.resident, slot=world.slot(), channel="web", actor=world.resident_actor()
    )
    moved = booking_change(
        booking=booked, slot=world.slot(days=4), channel="call_centre", actor=staff
    )
    assert moved.channel == "call_centre" and moved.booked_through == "web"
    booking_cancel(booking=moved, channel="call_centre", actor=staff)
    event = Event.objects.get(action="booking.cancelled", target_id=str(booked.pk))
    assert event.details["booked_through"] == "web"
    assert event.details["booked_channel"] == "call_centre"


def test_cancelling_twice_releases_once(world: World) -> None:
    slot = world.slot()
    booking = booking_create(
        voucher=world.resident, slot=slot, channel="web", actor=world.resident_actor()
    )
    booking_create(
        voucher=world.neighbour,
        slot=slot,
        channel="web",
        actor=world.resident_actor(world.neighbour),
    )
    booking_cancel(booking=booking, channel="web", actor=world.resident_actor())
    booking_cancel(booking=booking, channel="web", actor=world.resident_actor())
    assert counters(slot) == (1, 0, 0)


def test_a_resident_cannot_cancel_after_the_cut_off(world: World) -> None:
    slot = world.slot()
    booking = booking_create(
        voucher=world.resident, slot=slot, channel="web", actor=world.resident_actor()
    )
    make_late(world, slot)
    with pytest.raises(BookingRefused) as caught:
        booking_cancel(booking=booking, channel="web", actor=world.resident_actor())
    assert caught.value.code == "cutoff_passed"
    assert "コールセンター（電話 042-000-0000）" in caught.value.message
    booking.refresh_from_db()
    assert booking.status == Booking.Status.ACTIVE
    assert counters(slot) == (1, 0, 0)


def test_the_call_centre_can_cancel_after_the_cut_off(world: World, staff: Actor) -> None:
    slot = world.slot()
    booking = booking_create(
        voucher=world.resident, slot=slot, channel="web", actor=world.resident_actor()
    )
    make_late(world, slot)
    booking_cancel(booking=booking, channel="call_centre", actor=staff)
    assert counters(slot) == (0, 0, 0)


def test_a_checked_in_booking_cannot_be_cancelled(world: World, staff: Actor) -> None:
    booking = booking_create(
        voucher=world.resident, slot=world.slot(), channel="web", actor=world.resident_actor()
    )
    Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.CHECKED_IN)
    with pytest.raises(BookingRefused) as caught:
        booking_cancel(booking=booking, channel="call_centre", actor=staff)
    assert caught.value.code == "no_longer_booked"


def _together(world: World) -> tuple[Booking, Booking, Slot, Slot]:
    world.policy.book_series_together = True
    world.policy.save()
    first_slot, second_slot = world.slot(days=3), world.slot(days=22)
    first = booking_create(
        voucher=world.resident,
        slot=first_slot,
        channel="web",
        actor=world.resident_actor(),
        second_slot=second_slot,
    )
    return first, first.linked.get(), first_slot, second_slot


def test_cancelling_the_first_dose_cancels_the_second_booked_with_it(world: World) -> None:
    first, second, first_slot, second_slot = _together(world)
    booking_cancel(booking=first, channel="web", actor=world.resident_actor())
    second.refresh_from_db()
    assert second.status == Booking.Status.CANCELLED
    assert counters(first_slot) == (0, 0, 0)
    assert counters(second_slot) == (0, 0, 0)
    cascade = Event.objects.get(action="booking.cancelled", target_id=str(second.pk))
    assert cascade.details["cascade_of"] == first.pk


def test_without_the_cascade_the_second_dose_stays(world: World) -> None:
    first, second, first_slot, second_slot = _together(world)
    world.policy.cancel_cascades = False
    world.policy.save()
    booking_cancel(booking=first, channel="web", actor=world.resident_actor())
    second.refresh_from_db()
    assert second.status == Booking.Status.ACTIVE
    assert counters(first_slot) == (0, 0, 0)
    assert counters(second_slot) == (1, 0, 0)


def test_cancelling_the_second_dose_leaves_the_first(world: World) -> None:
    first, second, first_slot, second_slot = _together(world)
    booking_cancel(booking=second, channel="web", actor=world.resident_actor())
    first.refresh_from_db()
    assert first.status == Booking.Status.ACTIVE
    assert counters(first_slot) == (1, 0, 0)
    assert counters(second_slot) == (0, 0, 0)


def test_a_resident_cannot_cancel_someone_else_s_booking(world: World) -> None:
    theirs = booking_create(
        voucher=world.neighbour,
        slot=world.slot(),
        channel="web",
        actor=world.resident_actor(world.neighbour),
    )
    with pytest.raises(PermissionDenied):
        booking_cancel(booking=theirs, channel="web", actor=world.resident_actor())
    theirs.refresh_from_db()
    assert theirs.status == Booking.Status.ACTIVE
