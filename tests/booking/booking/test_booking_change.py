"""booking_change: all or nothing, the number stays, the cut-off, the rules of the new slot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from audit.chain import Actor
from audit.models import Event
from booking.models import Booking, Slot
from booking.services.booking import BookingRefused, booking_cancel, booking_change, booking_create
from tests.booking.booking.conftest import World, counters, record_dose, today


def book(world: World, slot: Slot, **kwargs) -> Booking:
    kwargs.setdefault("channel", "web")
    kwargs.setdefault("actor", world.resident_actor())
    return booking_create(voucher=kwargs.pop("voucher", world.resident), slot=slot, **kwargs)


def change(world: World, booking: Booking, slot: Slot, **kwargs) -> Booking:
    kwargs.setdefault("channel", "web")
    kwargs.setdefault("actor", world.resident_actor())
    return booking_change(booking=booking, slot=slot, **kwargs)


def make_late(world: World, slot: Slot) -> None:
    """Move the slot inside the cut-off (after the booking was made)."""
    starts = timezone.now() + timedelta(hours=world.policy.closes_hours_before - 2)
    Slot.objects.filter(pk=slot.pk).update(starts_at=starts, ends_at=starts + timedelta(minutes=30))


def test_it_moves_the_booking_and_keeps_its_number(world: World) -> None:
    old, new = world.slot(days=3), world.slot(days=5, venue=world.north)
    booking = book(world, old)
    number = booking.booking_number
    moved = change(world, booking, new, ip="192.0.2.9")
    assert moved.pk == booking.pk
    assert moved.booking_number == number
    assert moved.slot_id == new.pk
    assert moved.changed_at is not None
    assert counters(old) == (0, 0, 0)
    assert counters(new) == (1, 0, 0)
    assert Booking.objects.filter(voucher=world.resident).count() == 1
    event = Event.objects.get(action="booking.changed", target_id=str(booking.pk))
    assert event.details == {
        "channel": "web",
        "dose": 1,
        "slot": new.pk,
        "previous_slot": old.pk,
        "previous_channel": "web",
    }


def test_it_keeps_the_old_booking_when_the_new_slot_is_full(world: World) -> None:
    old, new = world.slot(days=3), world.slot(days=5, web=1)
    book(world, new, voucher=world.neighbour, actor=world.resident_actor(world.neighbour))
    booking = book(world, old)
    with pytest.raises(BookingRefused) as caught:
        change(world, booking, new)
    assert caught.value.code == "full"
    booking.refresh_from_db()
    assert booking.slot_id == old.pk
    assert booking.status == Booking.Status.ACTIVE
    assert counters(old) == (1, 0, 0)
    assert counters(new) == (1, 0, 0)


def test_it_keeps_the_old_booking_when_the_new_slot_is_closed(world: World) -> None:
    old, new = world.slot(days=3), world.slot(days=5, status=Slot.Status.CLOSED)
    booking = book(world, old)
    with pytest.raises(BookingRefused) as caught:
        change(world, booking, new)
    assert caught.value.code == "slot_closed"
    assert counters(old) == (1, 0, 0)


def test_it_refuses_after_the_cut_off(world: World, staff: Actor) -> None:
    old, new = world.slot(days=3), world.slot(days=5)
    booking = book(world, old)
    make_late(world, old)
    with pytest.raises(BookingRefused) as caught:
        change(world, booking, new)
    assert caught.value.code == "cutoff_passed"
    assert "042-000-0000" in caught.value.message
    with pytest.raises(BookingRefused):
        change(world, booking, new, channel="call_centre", actor=staff)
    assert counters(new) == (0, 0, 0)


def test_the_new_slot_must_be_in_the_window(world: World) -> None:
    booking = book(world, world.slot(days=3))
    with pytest.raises(BookingRefused) as caught:
        change(world, booking, world.slot(days=40))
    assert caught.value.code == "window_not_open"


def test_the_call_centre_moves_a_web_booking_to_its_own_capacity(
    world: World, staff: Actor
) -> None:
    old, new = world.slot(days=3), world.slot(days=5, web=0, call_centre=1)
    booking = book(world, old)
    moved = change(world, booking, new, channel="call_centre", actor=staff)
    assert moved.channel == "call_centre"
    assert counters(old) == (0, 0, 0)  # the web place is back
    assert counters(new) == (0, 0, 1)


def test_changing_only_the_channel_in_the_same_slot(world: World, staff: Actor) -> None:
    slot = world.slot(days=3)
    booking = book(world, slot)
    change(world, booking, slot, channel="call_centre", actor=staff)
    assert counters(slot) == (0, 0, 1)
    unchanged = change(world, booking, slot, channel="call_centre", actor=staff)
    assert unchanged.slot_id == slot.pk
    assert counters(slot) == (0, 0, 1)


def test_a_second_dose_cannot_move_too_close_to_the_first(world: World) -> None:
    record_dose(world.resident, 1, world.pfizer, today() - timedelta(days=10))
    booking = book(world, world.slot(days=12))  # 22 days after
    assert booking.dose == 2
    with pytest.raises(BookingRefused) as caught:
        change(world, booking, world.slot(days=5))  # 15 days after
    assert caught.value.code == "too_soon_after_previous_dose"
    with pytest.raises(BookingRefused) as caught:
        change(world, booking, world.slot(days=12, hour=11, product=world.moderna))
    assert caught.value.code == "different_product"


def test_a_first_dose_cannot_move_too_close_to_its_booked_second(world: World) -> None:
    world.policy.book_series_together = True
    world.policy.save()
    first = book(world, world.slot(days=3), second_slot=world.slot(days=22))
    with pytest.raises(BookingRefused) as caught:
        change(world, first, world.slot(days=4))
    assert caught.value.code == "too_soon_after_previous_dose"
    assert "2回目の予約" in caught.value.message
    moved = change(world, first, world.slot(days=2))
    assert moved.slot.starts_at.date() <= (today() + timedelta(days=2))


def test_a_cancelled_booking_cannot_be_changed(world: World) -> None:
    booking = book(world, world.slot(days=3))
    booking_cancel(booking=booking, channel="web", actor=world.resident_actor())
    with pytest.raises(BookingRefused) as caught:
        change(world, booking, world.slot(days=5))
    # Said as it is (not as a deadline passed, which it was not).
    assert caught.value.code == "no_longer_booked"
    assert "すでに取り消されたか" in caught.value.message
    assert "締切" not in caught.value.staff_message


def test_a_change_made_over_another_change_since_the_page_was_shown_is_refused(
    world: World, staff: Actor
) -> None:
    """Two operators (or two tabs) on one booking: the second, whose page showed the old
    slot, is refused with where the booking is now, instead of moving it again."""
    old, first, second = world.slot(days=3), world.slot(days=4), world.slot(days=5)
    booking = book(world, old)
    change(world, booking, first, channel="call_centre", actor=staff, expected_slot_id=old.pk)
    with pytest.raises(BookingRefused) as caught:
        change(world, booking, second, channel="call_centre", actor=staff, expected_slot_id=old.pk)
    assert caught.value.code == "changed_meanwhile"
    assert "いまの予約：" in caught.value.staff_message
    booking.refresh_from_db()
    assert booking.slot_id == first.pk
    assert counters(first)[2] == 1 and counters(second) == (0, 0, 0)
    # The same press again (a double click) is no refusal: it is where it was asked to be.
    again = change(
        world, booking, first, channel="call_centre", actor=staff, expected_slot_id=old.pk
    )
    assert again.slot_id == first.pk


def test_a_cancel_from_a_page_shown_before_a_change_cancels_nothing(
    world: World, staff: Actor
) -> None:
    """A resident's cancel page left open while the call centre moved the booking (which
    the caller was told): the cancel is refused with where the booking is now."""
    old, new = world.slot(days=3), world.slot(days=4)
    booking = book(world, old)
    change(world, booking, new, channel="call_centre", actor=staff, expected_slot_id=old.pk)
    with pytest.raises(BookingRefused) as caught:
        booking_cancel(
            booking=booking,
            channel="web",
            actor=world.resident_actor(),
            expected_slot_id=old.pk,
        )
    assert caught.value.code == "moved_before_cancel"
    assert "取り消していません" in caught.value.message and "いまの予約：" in caught.value.message
    assert "別の操作で" in caught.value.staff_message
    booking.refresh_from_db()
    assert booking.status == Booking.Status.ACTIVE and booking.slot_id == new.pk
    assert sum(counters(new)) == 1  # its place still held
    # From a page showing where it is now, it is cancelled.
    booking_cancel(
        booking=booking, channel="web", actor=world.resident_actor(), expected_slot_id=new.pk
    )
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


def test_a_resident_cannot_change_someone_else_s_booking(world: World) -> None:
    theirs = book(
        world,
        world.slot(days=3),
        voucher=world.neighbour,
        actor=world.resident_actor(world.neighbour),
    )
    with pytest.raises(PermissionDenied):
        change(world, theirs, world.slot(days=5))
    theirs.refresh_from_db()
    assert theirs.slot.starts_at.date() == today() + timedelta(days=3)
