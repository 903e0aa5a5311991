"""Resident-scoped selectors: a resident reaches their own bookings and doses, nobody else's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from django_tenants.utils import tenant_context

from booking.models.bookings import booking_number_display
from booking.selectors.residents import booking_of, bookings_of, next_dose, vaccinations_of
from booking.services.booking import booking_cancel, booking_create
from tests.booking.booking.conftest import World, build_world, record_dose, today


def _book(world: World, voucher, days: int = 3):
    return booking_create(
        voucher=voucher,
        slot=world.slot(days=days, hour=9 + len(world.live(voucher)) + int(voucher.pk % 5)),
        channel="web",
        actor=world.resident_actor(voucher),
    )


def test_a_resident_finds_their_booking_by_number(world: World) -> None:
    booking = _book(world, world.resident)
    assert booking_of(world.resident, booking.booking_number) == booking
    # As printed (with a hyphen), lower case, full width: still theirs.
    printed = booking_number_display(booking.booking_number)
    assert booking_of(world.resident, printed.lower()) == booking
    wide = printed.translate({ord(c): ord(c) + 0xFEE0 for c in printed if c.isalnum()})
    assert booking_of(world.resident, wide) == booking
    assert [b.pk for b in bookings_of(world.resident)] == [booking.pk]


def test_a_resident_cannot_reach_another_resident_s_booking(world: World) -> None:
    theirs = _book(world, world.neighbour)
    with pytest.raises(Http404):
        booking_of(world.resident, theirs.booking_number)
    assert list(bookings_of(world.resident)) == []
    with pytest.raises(Http404):
        booking_of(world.resident, "")


def test_nothing_of_another_municipality_is_reachable(tenant_b, world: World) -> None:
    booking_in_a = _book(world, world.resident)
    record_dose(world.resident, 1, world.pfizer, today() - timedelta(days=100))
    with tenant_context(tenant_b):
        world_b = build_world(tenant_b)
        resident_b = world_b.resident  # same voucher number as A's resident, maybe same id
        with pytest.raises(Http404):
            booking_of(resident_b, booking_in_a.booking_number)
        assert list(bookings_of(resident_b)) == []
        assert list(vaccinations_of(resident_b)) == []
        # A's voucher object, used while B is the current municipality: refused outright.
        with pytest.raises(Http404):
            bookings_of(world.resident)
        with pytest.raises(Http404):
            next_dose(world.resident)
    # And B's voucher under A, even when its id names one of A's residents.
    with pytest.raises(Http404):
        booking_of(resident_b, booking_in_a.booking_number)
    with pytest.raises(Http404):
        vaccinations_of(resident_b)


def test_live_only_leaves_out_cancelled_bookings(world: World) -> None:
    booking = _book(world, world.resident)
    booking_cancel(booking=booking, channel="web", actor=world.resident_actor())
    assert list(bookings_of(world.resident, live_only=True)) == []
    assert list(bookings_of(world.resident)) == [booking]


def test_next_dose_says_what_to_book_and_from_when(world: World) -> None:
    state = next_dose(world.resident)
    assert (state.dose, state.previous, state.series_complete) == (1, None, False)
    given = today() - timedelta(days=5)
    record_dose(world.resident, 1, world.pfizer, given)
    state = next_dose(world.resident)
    assert state.dose == 2
    assert state.product == world.pfizer
    assert state.earliest_day == given + timedelta(days=19)
    assert not state.has_pending_booking
    assert [v.dose for v in vaccinations_of(world.resident)] == [1]
    record_dose(world.resident, 2, world.pfizer, today())
    assert next_dose(world.resident).series_complete


def test_next_dose_counts_a_live_booking(world: World) -> None:
    _book(world, world.resident)
    state = next_dose(world.resident)
    assert state.dose == 2
    assert state.has_pending_booking
