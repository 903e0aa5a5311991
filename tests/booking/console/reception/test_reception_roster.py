"""The venue's list of the day, to print: today's bookings with names, at one's own venues."""

from __future__ import annotations

import time_machine
from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import Booking, Voucher
from booking.models.bookings import booking_number_display
from tenants.models import Municipality
from tests.booking.console.trail.test_trail_bulk_reads import of_action, report

from ..conftest import StaffAccount, events, make_staff
from .conftest import Day, at, logged_in, make_booking, make_slot, make_voucher

ROSTER = "/console/reception/roster/"


def _residents(tenant: Municipality, day: Day) -> dict[str, Booking]:
    """Beside the day's booking (受付 花子, 10:00 at civic): two more at 10:00 and one at
    11:00 there, one cancelled, one tomorrow, one at the north hall — by kana."""
    with tenant_context(tenant):
        eleven = make_slot(day.civic, day.moderna, at(0, 11))
        people = {
            kana: make_voucher(tenant, number, name=name, kana=kana)
            for number, name, kana in [
                ("1000000002", "青木 一郎", "アオキ イチロウ"),
                ("1000000003", "渡辺 次郎", "ワタナベ ジロウ"),
                ("1000000004", "佐藤 三郎", "サトウ サブロウ"),
                ("1000000005", "取消 四郎", "トリケシ シロウ"),
                ("1000000006", "明日 五郎", "アシタ ゴロウ"),
                ("1000000007", "北部 六郎", "ホクブ ロクロウ"),
            ]
        }
        Voucher.objects.filter(pk=people["ワタナベ ジロウ"].pk).update(
            status=Voucher.Status.WITHDRAWN
        )
        return {
            "aoki": make_booking(people["アオキ イチロウ"], day.later),
            "watanabe": make_booking(
                people["ワタナベ ジロウ"], day.later, status=Booking.Status.CHECKED_IN
            ),
            "sato": make_booking(people["サトウ サブロウ"], eleven, dose=2),
            "cancelled": make_booking(
                people["トリケシ シロウ"], day.later, status=Booking.Status.CANCELLED
            ),
            "tomorrow": make_booking(people["アシタ ゴロウ"], day.tomorrow),
            "north": make_booking(people["ホクブ ロクロウ"], day.north_today),
        }


def test_venue_staff_print_todays_list_of_their_venue_with_names_slot_by_slot(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    bookings = _residents(tenant_a, day)
    logged_in(client_a, venue_a, clock)
    top = client_a.get("/console/reception/").content.decode()
    assert f'href="{ROSTER}?venue={day.civic.pk}" id="roster-{day.civic.pk}"' in top
    # The page alone only offers the venues: nobody is named until one is chosen.
    chooser = client_a.get(ROSTER)
    assert chooser.status_code == 200 and 'id="roster"' not in chooser.content.decode()
    assert events(tenant_a, "reception.roster_viewed") == []

    response = client_a.get(ROSTER, {"venue": day.civic.pk})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    page = response.content.decode().split('id="roster"')[1]
    assert "受付名簿　小平市役所　2026年5月11日（月）" in page
    assert "09:30 時点の予約 4件（取消・接種見合わせを除く）" in page
    assert "個人情報を含みます" in page
    script = '<script src="/static/sesshu/print-button.js" defer></script>'
    assert script in response.content.decode()
    # Slot by slot in time order, each slot's residents by kana; the 09:00 slot had nobody.
    ten, eleven = page.split("<caption>")[1:]
    assert "10:00〜10:30　ファイザー社ワクチン（3人）" in ten
    assert "11:00〜11:30　モデルナ社ワクチン（1人）" in eleven
    kanas = ("アオキ イチロウ", "ウケツケ ハナコ", "ワタナベ ジロウ")
    assert sorted(kanas, key=ten.index) == list(kanas)
    assert "青木 一郎" in ten and "1948年4月1日（78）" in ten
    assert booking_number_display(bookings["aoki"].booking_number) in ten
    assert "受付済み" in ten and "（接種券は対象外）" in ten  # Watanabe's, withdrawn since
    # Every row says its time (a page of the printed list may start mid-slot), and those
    # received already are ticked.
    watanabe = ten.split("ワタナベ ジロウ")[0].rsplit("<tr>", 1)[1]
    aoki = ten.split("アオキ イチロウ")[0].rsplit("<tr>", 1)[1]
    assert "☑" in watanabe and "□" in aoki and "☑" not in aoki
    assert '<td class="nowrap">10:00</td>' in aoki
    assert "佐藤 三郎" in eleven and "2回目" in eleven
    # Not the cancelled booking, nor tomorrow's, nor another venue's.
    for name in ("取消 四郎", "明日 五郎", "北部 六郎"):
        assert name not in page

    # One read in the trail naming every resident listed, and no personal value in it; the
    # list says who showed it, when, and the trail's record of it.
    (viewed,) = events(tenant_a, "reception.roster_viewed")
    shown_by = page.split('id="roster-shown-by">')[1].split("</p>")[0]
    assert shown_by == (
        f"表示した職員：uketsuke@kodaira.example.jp（2026/05/11 09:30:30、監査記録 {viewed.seq}番）"
    )
    listed = {day.resident.pk, *(bookings[key].voucher_id for key in ("aoki", "watanabe", "sato"))}
    assert viewed.target_type == "booking.venue" and viewed.target_id == str(day.civic.pk)
    assert viewed.actor_id == str(venue_a.user_id)
    assert viewed.details == {
        "day": "2026-05-11",
        "bookings_listed": 4,
        "vouchers": sorted(listed),
        "fields": ["name", "name_kana", "birth_date"],
    }
    assert "受付" not in str(viewed.details) and "1948" not in str(viewed.details)
    # The breach-scope report names each of them as read by this member of staff.
    read = [row for row in report(auditor_a, clock) if row[1] == "reception.roster_viewed"]
    # Each names the venue whose list it was.
    assert {row[-1] for row in read} == {f"booking.venue:{day.civic.pk}"}
    rows = of_action(read, "reception.roster_viewed")
    assert {int(voucher_id) for _actor, voucher_id, _number, _note in rows} == listed
    assert {actor for actor, *_rest in rows} == {str(venue_a.user_id)}
    # Each showing is a read of its own.
    client_a.get(ROSTER, {"venue": day.civic.pk})
    assert len(events(tenant_a, "reception.roster_viewed")) == 2


def test_another_venue_list_is_refused_and_the_refusal_audited(
    tenant_a: Municipality, client_a: Client, day: Day, venue_north_a: StaffAccount, clock
) -> None:
    _residents(tenant_a, day)
    logged_in(client_a, venue_north_a, clock)
    chooser = client_a.get(ROSTER).content.decode()
    assert f'value="{day.north.pk}"' in chooser and f'value="{day.civic.pk}"' not in chooser

    refused = client_a.get(ROSTER, {"venue": day.civic.pk})
    assert refused.status_code == 403
    text = refused.content.decode()
    assert 'id="venue-refused"' in text and 'id="roster"' not in text
    assert "受付 花子" not in text and "青木 一郎" not in text
    (refusal,) = events(tenant_a, "reception.refused")
    assert refusal.details == {
        "operation": "roster",
        "reason": "other_venue",
        "venue": day.civic.pk,
    }
    assert events(tenant_a, "reception.roster_viewed") == []

    # Its own venue: today's one booking there.
    own = client_a.get(ROSTER, {"venue": day.north.pk}).content.decode()
    assert "北部 六郎" in own and "受付 花子" not in own
    for missing in ("999999", "abc"):
        gone = client_a.get(ROSTER, {"venue": missing})
        assert gone.status_code == 404 and 'id="venue-refused"' in gone.content.decode()


def test_a_venue_with_no_booking_today_says_so_and_admins_see_every_venue(
    tenant_a: Municipality, client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Booking.objects.all().delete()
    logged_in(client_a, admin_a, clock)
    chooser = client_a.get(ROSTER).content.decode()
    assert f'value="{day.north.pk}"' in chooser and f'value="{day.civic.pk}"' in chooser
    page = client_a.get(ROSTER, {"venue": day.civic.pk}).content.decode()
    assert "この会場の本日の予約はありません" in page and "<caption>" not in page
    (viewed,) = events(tenant_a, "reception.roster_viewed")
    assert viewed.details["bookings_listed"] == 0 and viewed.details["vouchers"] == []


def test_call_centre_operators_and_auditors_have_no_list(
    tenant_a: Municipality, client_a: Client, day: Day, clock
) -> None:
    for email, role in (
        ("call@kodaira.example.jp", "call_centre"),
        ("kansa@kodaira.example.jp", "auditor"),
    ):
        client = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
        logged_in(client, make_staff(tenant_a, email, role), clock)
        response = client.get(ROSTER, {"venue": day.civic.pk})
        assert response.status_code == 403 and "受付 花子" not in response.content.decode()
    assert events(tenant_a, "reception.roster_viewed") == []


def test_the_trail_of_a_resident_shows_the_lists_that_named_them_and_their_doses(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """A leak report asks who saw a resident: the venue's lists of the day name them, and
    the records of their doses are theirs too (by voucher number and by booking number)."""
    logged_in(client_a, venue_a, clock)
    client_a.get(ROSTER, {"venue": day.civic.pk})
    with tenant_context(tenant_a):
        other = make_voucher(tenant_a, "1000000009", name="別人 七郎", kana="ベツジン シチロウ")
    client_a.post(f"/console/reception/bookings/{day.booking.pk}/check-in/")
    recorded = client_a.post(
        f"/console/reception/bookings/{day.booking.pk}/vaccination/",
        {"product": day.pfizer.pk, "lot_number": "FA1234", "doctor": "医師 一郎", "dose": 1},
    )
    assert recorded.status_code == 302, recorded.content.decode()[:3000]
    auditor = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    logged_in(auditor, auditor_a, clock)
    for typed in (day.resident.voucher_number, day.number):
        body = auditor.get("/console/trail/", {"target": typed}).content.decode()
        assert "reception.vaccination_recorded" in body, typed
    by_voucher = auditor.get("/console/trail/", {"target": day.resident.voucher_number})
    assert "reception.roster_viewed" in by_voucher.content.decode()
    # Another resident, on no list: none of it.
    nothing = auditor.get("/console/trail/", {"target": other.voucher_number}).content.decode()
    assert "reception.roster_viewed" not in nothing
    assert "reception.vaccination_recorded" not in nothing
