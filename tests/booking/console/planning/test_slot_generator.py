"""The slot generator: a preview that writes nothing, then a write that is idempotent."""

from __future__ import annotations

import re
from datetime import time

import pytest
from django.test import Client

from audit.chain import Actor
from audit.models import Event
from booking.models import Slot
from booking.services.planning import (
    PlanningRefused,
    SlotPattern,
    slot_pattern_plan,
    slots_create,
)
from tenants.models import Municipality

from ..conftest import events
from .conftest import JAPAN, MONDAY, World, at, in_a, make_slot

URL = "/console/planning/slots/generate/"
PLAN = re.compile(r'name="plan" value="([0-9a-f]+)"')


def week_form(world: World, **overrides: object) -> dict[str, object]:
    """Monday to Friday of one week, 9:00-12:00 in 30-minute slots with a break 10:00-10:30,
    6 places on the web, 2 on LINE, 2 for the call centre: 5 slots a day."""
    data: dict[str, object] = {
        "venue": world.civic.pk,
        "product": world.pfizer.pk,
        "first_day": MONDAY.isoformat(),
        "last_day": "2026-05-24",
        "weekdays": ["0", "1", "2", "3", "4"],
        "opens": "09:00",
        "closes": "12:00",
        "break_from": "10:00",
        "break_to": "10:30",
        "slot_minutes": "30",
        "capacity_web": "6",
        "capacity_line": "2",
        "capacity_call_centre": "2",
    }
    data.update(overrides)
    return data


def slot_count(tenant: Municipality) -> int:
    with in_a(tenant):
        return Slot.objects.count()


def preview(client: Client, data: dict[str, object]) -> tuple[str, str]:
    response = client.post(URL, {**data, "action": "preview"})
    assert response.status_code == 200, response.content.decode()[:2000]
    page = response.content.decode()
    match = PLAN.search(page)
    assert match, "the preview carries the plan it shows"
    return page, match.group(1)


def test_the_preview_shows_slots_per_day_and_capacity_per_channel_and_writes_nothing(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    page, _plan = preview(as_admin, week_form(world))

    assert "新しく作成する枠：25件（計画 25件）" in page
    # Per day: 5 slots, 30 web, 10 LINE, 10 call centre, 50 places; Saturday and Sunday none.
    assert re.search(
        r"5月18日（月）</th>\s*<td>5</td><td>30</td><td>10</td>\s*<td>10</td><td>50</td>", page
    )
    assert "5月23日" not in page and "5月24日" not in page
    assert re.search(
        r"合計</th>\s*<td>25</td><td>150</td><td>50</td>\s*<td>50</td><td>250</td>", page
    )
    assert "この内容で25件を作成する" in page
    assert slot_count(tenant_a) == 0
    assert events(tenant_a, "slots.created") == []


def test_generating_writes_the_previewed_slots_and_a_second_run_writes_nothing(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    data = week_form(world)
    _page, plan = preview(as_admin, data)

    response = as_admin.post(URL, {**data, "plan": plan, "action": "generate"})
    assert response.status_code == 302
    assert slot_count(tenant_a) == 25
    with in_a(tenant_a):
        first = Slot.objects.order_by("starts_at").first()
        assert first is not None
        assert first.starts_at == at(MONDAY, 9)
        assert (first.capacity_web, first.capacity_line, first.capacity_call_centre) == (6, 2, 2)
        starts = {s.starts_at.astimezone(JAPAN).time() for s in Slot.objects.all()}
        assert starts == {time(9), time(9, 30), time(10, 30), time(11), time(11, 30)}

    page, plan_again = preview(as_admin, data)
    assert "新しく作成する枠：0件（計画 25件）" in page
    assert "この内容で" not in page  # nothing to create, no create button
    as_admin.post(URL, {**data, "plan": plan_again, "action": "generate"})
    assert slot_count(tenant_a) == 25

    created = events(tenant_a, "slots.created")
    assert len(created) == 1
    assert created[0].actor_kind == "staff"
    assert created[0].details["planned"] == 25 and created[0].details["created"] == 25
    assert created[0].details["source"] == "generator"


def test_the_service_run_twice_creates_each_slot_once(world: World) -> None:
    pattern = SlotPattern(
        venue=world.civic,
        product=world.pfizer,
        first_day=MONDAY,
        last_day=MONDAY,
        weekdays=frozenset({0}),
        opens=time(9),
        closes=time(10),
        slot_minutes=15,
        capacity_web=3,
        capacity_line=0,
        capacity_call_centre=1,
    )
    specs = slot_pattern_plan(pattern)
    staff = Actor(Actor.STAFF, "1")
    assert slots_create(specs=specs, source="generator", actor=staff).created == 4
    again = slots_create(specs=specs, source="generator", actor=staff)
    assert (again.created, again.skipped) == (0, 4)
    assert Slot.objects.count() == 4
    # The trail counts the places each run added: the slots it created, not those skipped.
    first, second = (
        (e.details["capacity_web"], e.details["capacity_call_centre"], e.details["skipped"])
        for e in Event.objects.filter(action="slots.created").order_by("seq")
    )
    assert first == (12, 4, 0) and second == (0, 0, 4)


def test_generate_without_the_previewed_plan_writes_nothing_and_shows_the_preview(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    data = week_form(world)
    _page, plan = preview(as_admin, data)

    # The form was changed after the preview (or the preview was skipped altogether).
    changed = {**data, "capacity_web": "8", "plan": plan, "action": "generate"}
    response = as_admin.post(URL, changed)
    assert response.status_code == 200
    page = response.content.decode()
    assert "入力内容が確認画面と異なります" in page
    assert "作成内容の確認" in page
    response = as_admin.post(URL, {**data, "action": "generate"})
    assert response.status_code == 200
    assert slot_count(tenant_a) == 0


def test_slots_overlapping_existing_ones_at_other_times_are_skipped(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        make_slot(world.civic, world.pfizer, at(MONDAY, 9))  # 9:00-9:30 already exists
    data = week_form(
        world,
        last_day=MONDAY.isoformat(),
        closes="10:00",
        break_from="",
        break_to="",
        slot_minutes="20",
    )  # 9:00, 9:20, 9:40
    page, plan = preview(as_admin, data)
    assert "新しく作成する枠：1件（計画 3件）" in page
    assert "既にある枠と同じ時刻：1件、既にある枠と時間が重なる：1件" in page
    # The places are those of the one slot created (6, 2, 2), not of the three planned.
    assert re.search(r"合計</th>\s*<td>1</td><td>6</td><td>2</td>\s*<td>2</td><td>10</td>", page)

    as_admin.post(URL, {**data, "plan": plan, "action": "generate"})
    with in_a(tenant_a):
        starts = sorted(s.starts_at for s in Slot.objects.filter(venue=world.civic))
    assert starts == [at(MONDAY, 9), at(MONDAY, 9, 40)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"product": "moderna"}, "この会場では扱っていないワクチンです"),
        ({"closes": "08:00"}, "受付終了時刻は開始時刻より後にしてください"),
        ({"last_day": "2026-05-01"}, "終了日は開始日以降にしてください"),
        ({"first_day": "2026-05-01"}, "過去の日付には枠を作成できません"),
        (
            {"capacity_web": "0", "capacity_line": "0", "capacity_call_centre": "0"},
            "いずれかの受付方法に1人以上の定員を設定してください",
        ),
        ({"break_to": ""}, "休憩は開始と終了の両方を入力してください"),
        (
            {"closes": "12:00", "break_from": "13:00", "break_to": "14:00"},
            "休憩は受付時間（09:00〜12:00）の間に入れてください",
        ),
        (
            {"closes": "12:00", "break_from": "", "break_to": "", "slot_minutes": "240"},
            "1枠の長さ（240分）が受付時間（180分）より長いため、枠ができません",
        ),
        (
            # A year, 9:00 to 21:00 every 5 minutes: about 52,000 slots, in parts.
            {
                "last_day": "2027-05-17",
                "weekdays": [str(day) for day in range(7)],
                "closes": "21:00",
                "break_from": "",
                "break_to": "",
                "slot_minutes": "5",
            },
            "一度に作成できる枠は20,000件までです。期間を分けて作成してください。",
        ),
    ],
)
def test_the_generator_explains_what_is_wrong(
    as_admin: Client,
    world: World,
    tenant_a: Municipality,
    overrides: dict[str, str],
    message: str,
) -> None:
    data = week_form(world, venue=world.north.pk)
    if overrides.get("product") == "moderna":
        overrides = {"product": str(world.moderna.pk)}
    response = as_admin.post(URL, {**data, **overrides, "action": "preview"})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert slot_count(tenant_a) == 0


def test_a_preview_over_new_year_writes_its_days_with_the_year_and_counts_in_thousands(
    as_admin: Client, world: World
) -> None:
    data = week_form(
        world,
        first_day="2026-12-28",
        last_day="2027-01-08",
        closes="21:00",
        break_from="",
        break_to="",
        slot_minutes="5",
    )
    page, _plan = preview(as_admin, data)
    assert "2026年12月28日（月）" in page and "2027年1月8日（金）" in page
    assert "新しく作成する枠：1,440件（計画 1,440件）" in page
    assert "この内容で1,440件を作成する" in page


def test_a_closed_venue_gets_no_slots(world: World) -> None:
    world.north.is_open = False
    world.north.save()
    spec = slot_pattern_plan(
        SlotPattern(
            venue=world.north,
            product=world.pfizer,
            first_day=MONDAY,
            last_day=MONDAY,
            weekdays=frozenset({0}),
            opens=time(9),
            closes=time(9, 30),
            slot_minutes=30,
            capacity_web=1,
            capacity_line=0,
            capacity_call_centre=0,
        )
    )
    with pytest.raises(PlanningRefused) as refused:
        slots_create(specs=spec, source="generator", actor=Actor(Actor.STAFF, "1"))
    assert refused.value.code == "venue_closed"
    assert Slot.objects.count() == 0


def test_the_break_leaves_a_gap_and_slots_end_by_closing_time(world: World) -> None:
    specs = slot_pattern_plan(
        SlotPattern(
            venue=world.civic,
            product=world.pfizer,
            first_day=MONDAY,
            last_day=MONDAY,
            weekdays=frozenset({0}),
            opens=time(13),
            closes=time(15, 10),
            slot_minutes=30,
            capacity_web=1,
            capacity_line=0,
            capacity_call_centre=0,
            break_from=time(13, 45),
            break_to=time(14),
        )
    )
    assert [s.starts_at.astimezone(JAPAN).strftime("%H:%M") for s in specs] == [
        "13:00",
        "14:00",
        "14:30",
    ]


def test_the_preview_warns_of_slots_nobody_could_book_any_more(
    as_admin: Client, world: World
) -> None:
    """The clock stands at Monday 11 May 09:30 and the cut-off is 24 hours: of Tuesday's
    slots, those before 09:30 are past it already."""
    page, _plan = preview(as_admin, week_form(world, first_day="2026-05-12", last_day="2026-05-12"))
    warning = page.split('id="past-cut-off">')[1].split("</p>")[0]
    assert "このうち2件は、予約の締切（接種開始の24時間前）を過ぎている" in warning
    later, _plan = preview(as_admin, week_form(world))
    assert 'id="past-cut-off"' not in later


def test_a_slot_that_has_already_started_is_never_planned(as_admin: Client, world: World) -> None:
    """Today, just past 09:30: of 09:00-12:00 with a break at 10:00, the slots of 09:00 and
    09:30 have started; 10:30, 11:00 and 11:30 are planned (and past the cut-off)."""
    page, _plan = preview(as_admin, week_form(world, first_day="2026-05-11", last_day="2026-05-11"))
    assert "新しく作成する枠：3件（計画 3件）" in page
    assert "このうち3件は、予約の締切" in page
    # Only hours already past: the page says that is why nothing is made.
    past = week_form(world, first_day="2026-05-11", last_day="2026-05-11", closes="09:30")
    page, _plan = preview(as_admin, {**past, "break_from": "", "break_to": ""})
    assert "すでに過ぎた時刻の枠は作成しません" in page


def test_holidays_and_the_new_year_are_left_out_when_asked_and_named(
    as_admin: Client, world: World
) -> None:
    """成人の日 and 12/29-1/3 (offices closed) get no slots; the preview names the days left
    out, and says which slots residents cannot book yet (the window opens 60 days ahead)."""
    data = week_form(world, first_day="2026-12-28", last_day="2027-01-15", skip_holidays="on")
    page, _plan = preview(as_admin, data)
    assert "新しく作成する枠：50件（計画 50件）" in page  # 10 days of 5 slots
    left_out = page.split('id="left-out"')[1].split("</p>")[0]
    for said in ("12月29日（火） 年末年始", "1月1日（金） 元日", "1月11日（月） 成人の日"):
        assert said in left_out
    assert "1月2日" not in left_out  # a Saturday: not among the weekdays chosen anyway
    assert "2027年1月11日" not in page.split('id="preview-heading"')[1].split('id="left-out"')[1]
    assert 'id="bookable-until"' in page and "60日前から" in page
    # Without the box, every weekday is planned; a week within the window says nothing more.
    page, _plan = preview(as_admin, {**data, "skip_holidays": ""})
    assert "新しく作成する枠：75件" in page and 'id="left-out"' not in page
    page, _plan = preview(as_admin, week_form(world))
    assert 'id="bookable-until"' not in page


def test_closed_days_include_substitute_and_citizens_holidays() -> None:
    from datetime import date

    from booking.services.planning.slots import closed_days

    days = closed_days(date(2026, 9, 20), date(2026, 9, 24))
    assert days == {
        date(2026, 9, 21): "敬老の日",
        date(2026, 9, 22): "国民の休日",
        date(2026, 9, 23): "秋分の日",
    }
    assert closed_days(date(2027, 3, 21), date(2027, 3, 22))[date(2027, 3, 22)] == "振替休日"


def test_the_preview_warns_of_a_day_called_off_at_the_venue(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """A typhoon day cancelled at the venue: slots made again there would take bookings."""
    from booking.services.planning import slot_cancel

    with in_a(tenant_a):
        slot = make_slot(world.civic, world.pfizer, at(MONDAY, 15))
        slot_cancel(slot=slot, actor=Actor(Actor.STAFF, "1"))
    page, _plan = preview(as_admin, week_form(world))
    warned = page.split('id="called-off-days"')[1].split("</p>")[0]
    assert "5月18日（月）" in warned and "5月19日" not in warned
    other = week_form(world, venue=world.north.pk)
    assert 'id="called-off-days"' not in preview(as_admin, other)[0]
