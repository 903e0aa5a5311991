"""A municipality that opens a new day's slots together, every morning at a set time ("from
9:00 each day, the day 28 days on"), against the default: each slot opens on its own, a set
number of days before it starts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from audit.chain import Actor
from booking.models import BookingPolicy
from booking.selectors.availability import open_days
from booking.services.booking import booking_days

from .conftest import JAPAN, World, make_voucher
from .test_booking_create import book, refused

MONDAY = date(2026, 5, 11)


def _next_monday() -> date:
    """A Monday to come, for a world built now (its age phase opened yesterday)."""
    day = timezone.localdate(timezone=JAPAN) + timedelta(days=2)
    return day + timedelta(days=-day.weekday() % 7)


def _text(day: date) -> str:
    return f"{day.month}月{day.day}日（月）"


def _moment(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=JAPAN)


def test_the_window_of_a_policy_with_and_without_an_opening_time() -> None:
    rolling = BookingPolicy(opens_days_ahead=28)
    nine = BookingPolicy(opens_days_ahead=28, opens_at_time=time(9))
    slot_starts = _moment(date(2026, 6, 8), 15)  # 28 days after Monday
    # Each slot on its own: 28 days before it starts, to the minute.
    assert rolling.booking_opens_at(slot_starts) == _moment(MONDAY, 15)
    # A day's slots together: 28 days before the day, at 9:00 in Japan.
    assert nine.booking_opens_at(slot_starts) == _moment(MONDAY, 9)
    assert nine.booking_opens_at(_moment(date(2026, 6, 8), 0, 30)) == _moment(MONDAY, 9)

    before, after = _moment(MONDAY, 8, 59), _moment(MONDAY, 9)
    assert rolling.last_day_open(before) == rolling.last_day_open(after) == date(2026, 6, 8)
    assert nine.last_day_open(before) == date(2026, 6, 7)  # today's opening still to come
    assert nine.last_day_open(after) == date(2026, 6, 8)
    assert rolling.bookable_until(before) == _moment(date(2026, 6, 8), 8, 59)
    assert nine.bookable_until(before) == _moment(date(2026, 6, 7), 23, 59).replace(
        second=59, microsecond=999_999
    )
    assert nine.bookable_until(after).date() == date(2026, 6, 8)


@pytest.fixture
def nine(world: World) -> World:
    world.policy.opens_at_time = time(9)
    world.policy.save()
    return world


def test_a_days_slots_open_together_at_the_opening_time(nine: World, staff: Actor) -> None:
    monday = _next_monday()
    opened, last = monday + timedelta(days=27), monday + timedelta(days=28)
    with time_machine.travel(_moment(monday, 8, 59), tick=False) as clock:
        afternoon = nine.slot(days=28, hour=15)
        morning = nine.slot(days=28, hour=8)
        day_before = nine.slot(days=27, hour=22)
        refusal = refused(nine, afternoon)
        assert refusal.code == "window_not_open"
        assert "接種日の28日前の9:00から受け付けます" in refusal.message
        assert f"{_text(monday)}9:00以降に" in refusal.message
        assert refused(nine, morning, channel="call_centre", actor=staff).code == "window_not_open"
        assert booking_days(nine.policy)[1] == opened
        # The day before opened yesterday at 9:00, late slots too.
        assert book(nine, day_before).slot_id == day_before.pk
        assert [day.day for day in open_days("web", last, last)] == []

        clock.move_to(_moment(monday, 9))
        assert booking_days(nine.policy)[1] == last
        # Every slot of the day at once, the afternoon's as the morning's.
        assert [day.day for day in open_days("web", last, last)] == [last]
        assert book(nine, afternoon, voucher=nine.neighbour).slot_id == afternoon.pk
        third = make_voucher(nine.municipality, "1000000003")
        assert book(nine, morning, third, channel="call_centre", actor=staff).slot_id == morning.pk


def test_without_an_opening_time_each_slot_opens_at_its_own_time(world: World) -> None:
    monday = _next_monday()
    with time_machine.travel(_moment(monday, 10), tick=False) as clock:
        afternoon = world.slot(days=28, hour=15)
        refusal = refused(world, afternoon)
        assert refusal.code == "window_not_open"
        # When, to the minute: today at 15:00 (not "from today", which is already here).
        assert "この時間の枠の予約はまだ始まっていません" in refusal.message
        assert "接種の開始時刻の28日前から枠ごとに受け付けます" in refusal.message
        assert f"{_text(monday)}15:00以降に" in refusal.message
        clock.move_to(_moment(monday, 15))
        assert book(world, afternoon).slot_id == afternoon.pk
