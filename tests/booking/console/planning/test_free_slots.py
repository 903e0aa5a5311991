"""Free slots across every venue, and the CSV the municipality publishes: no personal data."""

from __future__ import annotations

import csv
import io

import time_machine
from django.test import Client

from booking.models import Slot
from tenants.models import Municipality

from ..conftest import StaffAccount, events
from .conftest import MONDAY, RESIDENT_NAME, World, at, in_a, logged_in, make_slot

TUESDAY = MONDAY.replace(day=19)


def build_day(world: World) -> dict[str, Slot]:
    slots = {
        "civic_9": make_slot(
            world.civic, world.pfizer, at(MONDAY, 9), web=2, line=1, call_centre=1
        ),
        "civic_moderna": make_slot(
            world.civic, world.moderna, at(MONDAY, 9), web=1, line=0, call_centre=0
        ),
        "north_10": make_slot(
            world.north, world.pfizer, at(MONDAY, 10), web=0, line=0, call_centre=3
        ),
        "full": make_slot(world.north, world.pfizer, at(MONDAY, 11), web=1, line=0, call_centre=0),
        "closed": make_slot(world.civic, world.pfizer, at(MONDAY, 14), status=Slot.Status.CLOSED),
        "tuesday": make_slot(world.civic, world.pfizer, at(TUESDAY, 9)),
    }
    world.book(slots["civic_9"], world.residents[0])
    world.book(slots["full"], world.residents[1])
    world.book(slots["civic_moderna"], world.residents[2])
    return slots


def read_csv(response) -> list[list[str]]:
    text = response.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_the_list_shows_places_left_per_channel_across_venues(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        build_day(world)
    response = as_admin.get("/console/planning/free/?first_day=2026-05-18&last_day=2026-05-18")
    assert response.status_code == 200
    page = response.content.decode()
    assert "空きのある枠 2件" in page  # civic 9:00 Pfizer and north 10:00
    assert "小平市役所" in page and "北部集会所" in page
    assert "<td>モデルナ社ワクチン</td>" not in page  # its one place is taken
    assert "14:00" not in page  # closed
    assert "5月19日" not in page  # outside the range


def test_the_csv_has_the_numbers_and_nothing_personal(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        build_day(world)
        vouchers = [v.voucher_number for v in world.residents]
    response = as_admin.get("/console/planning/free.csv?first_day=2026-05-18&last_day=2026-05-19")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "no-store"
    rows = read_csv(response)
    assert rows[0] == [
        "日付",
        "曜日",
        "開始",
        "終了",
        "地区",
        "会場",
        "住所",
        "ワクチン",
        "空き（ウェブ）",
        "空き（LINE）",
        "空き（コールセンター）",
        "空き（合計）",
    ]
    assert rows[1] == [
        "2026-05-18",
        "月",
        "09:00",
        "09:30",
        "中央地区",
        "小平市役所",
        "東京都小平市小川町2-1333",
        "ファイザー社ワクチン",
        "1",
        "1",
        "1",
        "3",
    ]
    assert rows[2][5] == "北部集会所" and rows[2][8:] == ["0", "0", "3", "3"]
    assert rows[3][0] == "2026-05-19"
    assert len(rows) == 4
    text = response.content.decode("utf-8-sig")
    for personal in [RESIDENT_NAME, *vouchers]:
        assert personal not in text
    with in_a(tenant_a):
        from booking.models import Booking

        for number in Booking.objects.values_list("booking_number", flat=True):
            assert number not in text
    exported = events(tenant_a, "export.free_slots")[-1]
    assert exported.details == {"first_day": "2026-05-18", "last_day": "2026-05-19", "rows": 3}


def test_filters_by_area_vaccine_and_channel(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        build_day(world)
    base = "/console/planning/free.csv?first_day=2026-05-18&last_day=2026-05-18"
    assert [r[5] for r in read_csv(as_admin.get(base + "&area=北地区"))[1:]] == ["北部集会所"]
    assert len(read_csv(as_admin.get(base + "&product=moderna"))) == 1  # header only
    web = read_csv(as_admin.get(base + "&channel=web"))[1:]
    assert [r[5] for r in web] == ["小平市役所"]


def test_a_formula_in_a_venue_name_is_not_run_by_a_spreadsheet(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        world.civic.name = '=HYPERLINK("http://evil.example")'
        world.civic.save()
        make_slot(world.civic, world.pfizer, at(MONDAY, 9))
    rows = read_csv(as_admin.get("/console/planning/free.csv?first_day=2026-05-18"))
    assert rows[1][5].startswith("'=")


def test_the_call_centre_sees_only_its_own_places(
    client_a: Client,
    operator_a: StaffAccount,
    world: World,
    tenant_a: Municipality,
    clock: time_machine.Coordinates,
) -> None:
    with in_a(tenant_a):
        build_day(world)
        make_slot(world.civic, world.pfizer, at(MONDAY, 15), web=5, line=5, call_centre=0)
    logged_in(client_a, operator_a, clock)
    page = client_a.get("/console/planning/free/?first_day=2026-05-18&last_day=2026-05-18")
    text = page.content.decode()
    assert "空き<br>コールセンター" in text and "空き<br>ウェブ" not in text
    assert "15:00" not in text  # nothing the call centre can book
    assert "空きのある枠 2件" in text


def test_a_slot_past_its_cut_off_is_not_listed_as_free(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """The clock stands at Monday 11 May 09:30; the cut-off is 24 hours: a slot on Tuesday
    at 09:00 can no longer be booked by anyone, one at 10:00 can."""
    from datetime import date

    tuesday = date(2026, 5, 12)
    with in_a(tenant_a):
        make_slot(world.civic, world.pfizer, at(tuesday, 9))
        make_slot(world.civic, world.pfizer, at(tuesday, 10))
    page = as_admin.get("/console/planning/free/?first_day=2026-05-12&last_day=2026-05-12")
    text = page.content.decode()
    assert "空きのある枠 1件" in text and "10:00" in text and "09:00" not in text
