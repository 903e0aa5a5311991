"""The days to come at a venue, in numbers: residents booked per day and vaccine."""

from __future__ import annotations

from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import Booking, Slot
from tenants.models import Municipality

from ..conftest import StaffAccount, make_staff
from .conftest import Day, at, logged_in, make_booking, make_slot, make_voucher

AHEAD = "/console/reception/ahead/"


def _row(day: str, product: str, booked: int, first: int, places: int) -> str:
    return f"<td>{day}</td><td>{product}</td><td>{booked}</td><td>{first}</td><td>{places}</td>"


def test_venue_staff_see_their_venues_next_two_weeks_day_by_day_and_vaccine_by_vaccine(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        people = [make_voucher(tenant_a, f"100000001{n}") for n in range(6)]
        make_booking(people[0], day.tomorrow)
        make_booking(people[1], day.tomorrow, dose=2)
        make_booking(people[2], day.tomorrow, status=Booking.Status.CANCELLED)
        stopped = make_slot(day.civic, day.pfizer, at(1, 14))
        Slot.objects.filter(pk=stopped.pk).update(status=Slot.Status.CANCELLED)
        make_booking(people[3], make_slot(day.civic, day.moderna, at(3, 10)))
        make_booking(people[4], make_slot(day.civic, day.pfizer, at(14, 10)))  # too far
        make_booking(people[5], day.north_today)  # another venue
    logged_in(client_a, venue_a, clock)
    top = client_a.get("/console/reception/").content.decode()
    assert f'href="{AHEAD}" id="ahead-link"' in top
    response = client_a.get(AHEAD)
    assert response.status_code == 200
    page = response.content.decode()
    assert "小平市役所（4人）" in page and "北部集会所" not in page
    assert '<p id="ahead-as-of">5月11日（月） 09:30 時点</p>' in page
    # Today: the two slots' places (17 each), the resident booked at 10:00.
    assert _row("5月11日（月）", "ファイザー社ワクチン", 1, 1, 34) in page
    # Tomorrow: a first and a second dose (the cancelled booking and slot not counted).
    assert _row("5月12日（火）", "ファイザー社ワクチン", 2, 1, 17) in page
    assert _row("5月14日（木）", "モデルナ社ワクチン", 1, 1, 17) in page
    assert "5月25日" not in page  # two weeks on: not yet
    assert "受付 花子" not in page  # numbers only


def test_admins_see_every_venue_and_operators_nothing(
    tenant_a: Municipality, client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    page = client_a.get(AHEAD).content.decode()
    assert "小平市役所（1人）" in page and "北部集会所（0人）" in page
    assert _row("5月11日（月）", "ファイザー社ワクチン", 0, 0, 17) in page  # north's slot
    operator = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    logged_in(operator, make_staff(tenant_a, "call@kodaira.example.jp", "call_centre"), clock)
    assert operator.get(AHEAD).status_code == 403
