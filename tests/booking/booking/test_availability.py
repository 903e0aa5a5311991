"""Availability: every venue for a date, per channel, roughly, cached and invalidated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from booking.models import Slot
from booking.selectors.availability import (
    Mark,
    availability_choices,
    availability_for_day,
    availability_invalidate,
    mark_for,
    open_days,
    open_venues,
)
from booking.services.booking import booking_cancel, booking_create
from tests.booking.booking.conftest import World, make_voucher, today


@pytest.mark.parametrize(
    ("remaining", "capacity", "mark"),
    [
        (10, 10, Mark.PLENTY),
        (5, 10, Mark.PLENTY),
        (4, 10, Mark.SOME),
        (2, 10, Mark.SOME),
        (1, 10, Mark.FEW),
        (0, 10, Mark.NONE),
        (0, 0, Mark.NONE),
        (1, 1, Mark.PLENTY),
    ],
)
def test_marks_are_fractions_of_the_channel_capacity(remaining, capacity, mark) -> None:
    assert mark_for(remaining, capacity) is mark
    assert mark.label


def test_every_venue_of_the_day_in_one_answer(world: World, django_assert_max_num_queries) -> None:
    day = today() + timedelta(days=3)
    civic_9 = world.slot(days=3, hour=9)
    civic_10 = world.slot(days=3, hour=10, product=world.moderna)
    north_9 = world.slot(days=3, hour=9, venue=world.north)
    world.slot(days=4, hour=9)  # another day
    world.slot(days=3, hour=11, status=Slot.Status.CLOSED)
    world.slot(days=3, hour=12, web=0, call_centre=3)  # not for the web
    with django_assert_max_num_queries(2):
        venues = availability_for_day(channel="web", day=day)
    assert [v.name for v in venues] == ["小平市役所", "北部集会所"]  # 中央地区, 北地区
    assert [s.slot_id for s in venues[0].slots] == [civic_9.pk, civic_10.pk]
    assert [s.slot_id for s in venues[1].slots] == [north_9.pk]
    assert venues[0].address.startswith("東京都小平市")
    assert {s.mark for v in venues for s in v.slots} == {Mark.PLENTY}


def test_filters_by_area_and_vaccine(world: World) -> None:
    day = today() + timedelta(days=3)
    world.slot(days=3, hour=9)
    moderna = world.slot(days=3, hour=10, product=world.moderna)
    north = world.slot(days=3, hour=9, venue=world.north)
    assert [
        s.slot_id
        for v in availability_for_day(channel="web", day=day, area="北地区")
        for s in v.slots
    ] == [north.pk]
    assert [
        s.slot_id
        for v in availability_for_day(channel="web", day=day, product="moderna")
        for s in v.slots
    ] == [moderna.pk]
    choices = availability_choices()
    assert choices.areas == ("中央地区", "北地区")
    assert set(choices.products) == {
        ("pfizer", "ファイザー社ワクチン"),
        ("moderna", "モデルナ社ワクチン"),
    }


def test_each_channel_sees_only_its_own_capacity(world: World, staff) -> None:
    day = today() + timedelta(days=3)
    slot = world.slot(days=3, web=2, line=0, call_centre=1)
    booking_create(voucher=world.resident, slot=slot, channel="call_centre", actor=staff)
    web = availability_for_day(channel="web", day=day)
    assert web[0].slots[0].mark is Mark.PLENTY
    assert availability_for_day(channel="line", day=day) == []
    centre = availability_for_day(channel="call_centre", day=day)
    assert centre[0].slots[0].mark is Mark.NONE
    assert not centre[0].bookable


def test_slots_outside_the_booking_window_are_not_offered(world: World) -> None:
    world.slot(days=40)
    assert availability_for_day(channel="web", day=today() + timedelta(days=40)) == []
    assert availability_for_day(channel="web", day=today()) == []


def test_a_cached_answer_costs_no_query(world: World, django_assert_num_queries, settings) -> None:
    """The key holds the last day open, from the policy: each process keeps the policy a few
    seconds (BookingPolicy.current), as it does outside the tests."""
    settings.SESSHU_TENANT_CACHE_SECONDS = 5
    day = today() + timedelta(days=3)
    world.slot(days=3)
    first = availability_for_day(channel="web", day=day)
    with django_assert_num_queries(0):
        assert availability_for_day(channel="web", day=day) == first


def _invalidations(callbacks: list) -> list:
    # A booking also queues other work after commit (audit sealing, metrics); count the cache's.
    return [c for c in callbacks if getattr(c, "func", None) is availability_invalidate]


def test_a_booking_that_changes_a_mark_drops_the_cached_day(
    world: World, django_capture_on_commit_callbacks
) -> None:
    day = today() + timedelta(days=3)
    slot = world.slot(days=3, web=2, line=0, call_centre=0)
    assert availability_for_day(channel="web", day=day)[0].slots[0].mark is Mark.PLENTY
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        booking = booking_create(
            voucher=world.resident, slot=slot, channel="web", actor=world.resident_actor()
        )
    assert _invalidations(callbacks) == []  # 2 of 2 -> 1 of 2 is still ◎: the cache stays
    neighbour = world.neighbour
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        booking_create(
            voucher=neighbour, slot=slot, channel="web", actor=world.resident_actor(neighbour)
        )
    assert len(_invalidations(callbacks)) == 1
    assert availability_for_day(channel="web", day=day)[0].slots[0].mark is Mark.NONE
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking=booking, channel="web", actor=world.resident_actor())
    assert availability_for_day(channel="web", day=day)[0].slots[0].mark is Mark.PLENTY


def test_open_days_for_the_date_picker(world: World, django_assert_max_num_queries) -> None:
    world.slot(days=3, hour=9, web=2)
    world.slot(days=3, hour=10, web=2)
    full = world.slot(days=4, hour=9, web=1)
    world.slot(days=5, hour=9, web=0, call_centre=2)  # not for the web
    booking_create(voucher=world.resident, slot=full, channel="web", actor=world.resident_actor())
    with django_assert_max_num_queries(2):
        days = open_days("web", today(), today() + timedelta(days=10))
    assert [(d.day - today()).days for d in days] == [3, 4]
    assert [d.mark for d in days] == [Mark.PLENTY, Mark.NONE]
    assert open_days("call_centre", today(), today() + timedelta(days=10))[-1].day == (
        today() + timedelta(days=5)
    )
    assert open_days("web", today() + timedelta(days=5), today()) == []


def _fill(slot: Slot) -> None:
    Slot.objects.filter(pk=slot.pk).update(booked_web=slot.capacity_web)


def test_venues_first_each_with_its_mark_first_free_day_and_vaccines(
    world: World, django_assert_max_num_queries
) -> None:
    world.slot(days=5, hour=9)
    world.slot(days=3, hour=9, product=world.moderna)
    _fill(world.slot(days=2, hour=9))  # full: the first free day is the 3rd
    _fill(world.slot(days=3, hour=9, venue=world.north, web=2))
    world.slot(days=4, hour=9, venue=world.north, status=Slot.Status.CLOSED)
    world.slot(days=40, hour=9, venue=world.north)  # outside the booking window
    world.slot(days=4, hour=10, venue=world.north, web=0, call_centre=2)  # not for the web
    with django_assert_max_num_queries(2):
        venues = open_venues("web", today(), today() + timedelta(days=10))
    civic, north = venues
    assert (civic.venue_id, civic.name, civic.area) == (world.civic.pk, "小平市役所", "中央地区")
    assert civic.address.startswith("東京都小平市")
    assert civic.products == ("ファイザー社ワクチン", "モデルナ社ワクチン")
    assert civic.mark is Mark.PLENTY and civic.bookable  # 10 of 15 places left
    assert civic.first_day == today() + timedelta(days=3)
    # Every slot of the north venue taken: listed, marked ×, with no free day.
    assert (north.name, north.mark, north.first_day, north.bookable) == (
        "北部集会所",
        Mark.NONE,
        None,
        False,
    )
    assert north.products == ("ファイザー社ワクチン",)
    centre = open_venues("call_centre", today(), today() + timedelta(days=10))
    assert [(v.name, v.mark) for v in centre] == [
        ("小平市役所", Mark.PLENTY),
        ("北部集会所", Mark.PLENTY),
    ]


def test_venues_first_are_filtered_by_area_and_vaccine(world: World) -> None:
    world.slot(days=3, hour=9, product=world.moderna)
    world.slot(days=3, hour=9, venue=world.north)
    window = (today(), today() + timedelta(days=10))
    assert [v.name for v in open_venues("web", *window, area="北地区")] == ["北部集会所"]
    assert [v.name for v in open_venues("web", *window, product="moderna")] == ["小平市役所"]
    assert open_venues("web", *window, area="北地区", product="moderna") == []
    assert open_venues("web", window[1], window[0]) == []


def test_a_venues_own_days_and_slots(world: World) -> None:
    day = today() + timedelta(days=3)
    civic = world.slot(days=3, hour=9)
    world.slot(days=4, hour=9)
    north = world.slot(days=3, hour=10, venue=world.north)
    window = (today(), today() + timedelta(days=10))
    # Asked for all venues first, so a cached answer for everyone must not answer for one.
    assert [(d.day - today()).days for d in open_days("web", *window)] == [3, 4]
    assert [(d.day - today()).days for d in open_days("web", *window, venue=world.north.pk)] == [3]
    assert len(availability_for_day(channel="web", day=day)) == 2
    (only,) = availability_for_day(channel="web", day=day, venue=world.north.pk)
    assert [s.slot_id for s in only.slots] == [north.pk]
    (only,) = availability_for_day(channel="web", day=day, venue=world.civic.pk)
    assert [s.slot_id for s in only.slots] == [civic.pk]


def test_the_venues_offered_are_the_open_ones_by_area(world: World) -> None:
    from booking.models import Venue

    old = Venue.objects.create(
        name="旧庁舎", area="中央地区", address="東京都小平市1", is_open=False
    )
    Venue.objects.create(name="新会場", area="南地区", address="東京都小平市2")  # no slots yet
    world.slot(days=3, hour=9)
    world.slot(days=3, hour=9, venue=world.north)
    world.slot(days=3, hour=10, venue=old)
    assert availability_choices().venues == (
        (world.civic.pk, "小平市役所", "中央地区"),
        (world.north.pk, "北部集会所", "北地区"),
    )
    assert "南地区" not in availability_choices().areas  # it would lead to an empty list


def test_availability_is_per_municipality(tenant_b, world: World) -> None:
    from django_tenants.utils import tenant_context

    day = today() + timedelta(days=3)
    world.slot(days=3)
    assert availability_for_day(channel="web", day=day)
    with tenant_context(tenant_b):
        assert availability_for_day(channel="web", day=day) == []
        make_voucher(tenant_b, "1000000009")


def test_an_unknown_channel_is_an_error(world: World) -> None:
    with pytest.raises(ValueError):
        availability_for_day(channel="fax", day=today())
