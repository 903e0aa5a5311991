"""Reports: the numbers in the tables and CSVs are the data's, and nothing personal shows."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import date, datetime

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from audit.chain import Actor
from booking.console.planning.reports import attendance, bookings_last_hour
from booking.models import Booking, Slot, VaccinationRecord
from booking.resident.waiting_room import queue_join
from booking.services.booking import booking_cancel, booking_change, booking_create
from booking.services.planning import slot_cancel
from tenants.models import Municipality

from ..conftest import events
from .conftest import (
    JAPAN,
    MONDAY,
    RESIDENT_NAME,
    SYSTEM,
    World,
    at,
    in_a,
    make_slot,
    make_voucher,
)

TUESDAY = MONDAY.replace(day=19)
RANGE = "first_day=2026-05-08&last_day=2026-05-19"


def made_on(booking: Booking, day: date, hour: int = 12) -> None:
    Booking.objects.filter(pk=booking.pk).update(
        created_at=datetime(day.year, day.month, day.day, hour, tzinfo=JAPAN)
    )


@pytest.fixture
def history(world: World, tenant_a: Municipality) -> World:
    with in_a(tenant_a):
        a = make_slot(world.civic, world.pfizer, at(MONDAY, 9))  # 8 places each
        b = make_slot(world.north, world.pfizer, at(MONDAY, 10))
        c = make_slot(world.civic, world.pfizer, at(TUESDAY, 9))
        r = world.residents
        made_on(world.book(a, r[0], "web"), date(2026, 5, 8))
        # 08:00 on the 9th in Tokyo is still the 8th in UTC: days are Tokyo's.
        made_on(world.book(a, r[1], "line"), date(2026, 5, 9), hour=8)
        made_on(world.book(b, r[2], "web"), date(2026, 5, 9))
        late = world.book(c, r[3], "call_centre")
        made_on(late, date(2026, 5, 9))
        booking_cancel(booking=late, channel="call_centre", actor=SYSTEM)  # now: the 11th
        # Put off at the venue (the doctor's pre-screening): not a cancellation.
        deferred = world.book(
            c, make_voucher(world.municipality, "1000000007", address_number="A000000007")
        )
        made_on(deferred, date(2026, 5, 1))  # before the reports' range
        booking_cancel(
            booking=deferred,
            channel="call_centre",
            actor=SYSTEM,
            reason=Booking.CancelReason.DEFERRED,
        )
        Booking.objects.filter(voucher=r[1]).update(status=Booking.Status.NO_SHOW)
        for voucher, dose, day in [(r[0], 1, MONDAY), (r[4], 2, MONDAY), (r[5], 3, TUESDAY)]:
            VaccinationRecord.objects.create(
                voucher=voucher,
                dose=dose,
                product=world.pfizer,
                lot_number="FA1234",
                vaccinated_on=day,
                venue_name="小平市役所",
                actor_kind="staff",
                actor_id="1",
            )
    return world


def csv_rows(client: Client, key: str) -> list[list[str]]:
    response = client.get(f"/console/planning/reports/{key}.csv?{RANGE}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def rows_with_data(rows: list[list[str]]) -> list[list[str]]:
    return [row for row in rows[1:] if row[-1] not in ("0", "")]


def test_bookings_per_day_by_channel(as_admin: Client, history: World) -> None:
    rows = csv_rows(as_admin, "bookings")
    assert rows[0] == [
        "日付",
        "ウェブ",
        "LINE",
        "コールセンター",
        "会場の受付（予約なしで来場）",
        "合計",
    ]
    assert len(rows) == 1 + 12  # every day of the range, empty ones too
    assert rows_with_data(rows) == [
        ["2026-05-08", "1", "0", "0", "0", "1"],
        ["2026-05-09", "1", "1", "1", "0", "3"],
    ]


def test_a_resident_taken_at_the_venue_without_a_booking_counts_as_such(
    as_admin: Client, history: World, tenant_a: Municipality
) -> None:
    """A dose given at the desk to a resident without a booking takes a place of whichever
    channel has one (the call centre's first), and is counted as made at the venue, not by
    phone."""
    with in_a(tenant_a):
        today = make_slot(history.civic, history.pfizer, at(date(2026, 5, 11), 10))
        walk_in = booking_create(
            voucher=make_voucher(history.municipality, "1000000008", address_number="A8"),
            slot=today,
            channel="call_centre",
            actor=Actor(Actor.STAFF, "1"),
            at_the_venue=True,
        )
        assert (walk_in.channel, walk_in.booked_through) == ("call_centre", "venue")
    rows = rows_with_data(csv_rows(as_admin, "bookings"))
    assert ["2026-05-11", "0", "0", "0", "1", "1"] in rows


def test_a_booking_changed_through_another_channel_counts_where_it_was_made(
    as_admin: Client, history: World, tenant_a: Municipality
) -> None:
    """A web booking changed by phone holds the call centre's places now, but it was made
    on the web: that is how the reports count it (予約したときの受付方法)."""
    with in_a(tenant_a):
        booking = Booking.objects.get(voucher=history.residents[0])
        booking_change(
            booking=booking,
            slot=Slot.objects.get(starts_at=at(TUESDAY, 9)),
            channel="call_centre",
            actor=SYSTEM,
        )
        booking.refresh_from_db()
        assert (booking.channel, booking.booked_through) == ("call_centre", "web")
    assert rows_with_data(csv_rows(as_admin, "bookings"))[0] == [
        "2026-05-08",
        "1",
        "0",
        "0",
        "0",
        "1",
    ]


def test_fill_rate_per_venue_and_day(as_admin: Client, history: World) -> None:
    rows = csv_rows(as_admin, "fill")
    assert rows == [
        ["日付", "地区", "会場", "定員", "予約済み", "充足率（%）", "中止した枠"],
        ["2026-05-18", "中央地区", "小平市役所", "8", "2", "25.0", "0"],
        ["2026-05-18", "北地区", "北部集会所", "8", "1", "12.5", "0"],
        ["2026-05-19", "中央地区", "小平市役所", "8", "0", "0.0", "0"],
    ]
    # A day called off at a venue stays in the report, its slots counted as cancelled.
    with in_a(history.municipality):
        slot_cancel(slot=Slot.objects.get(venue=history.north), actor=Actor(Actor.STAFF, "1"))
    assert csv_rows(as_admin, "fill")[2] == [
        "2026-05-18",
        "北地区",
        "北部集会所",
        "0",
        "0",
        "",
        "1",
    ]


def test_cancellations_no_shows_deferrals_and_doses(as_admin: Client, history: World) -> None:
    assert rows_with_data(csv_rows(as_admin, "cancellations")) == [
        ["2026-05-11", "0", "0", "1", "0", "1"]
    ]
    assert rows_with_data(csv_rows(as_admin, "no_shows")) == [
        ["2026-05-18", "0", "1", "0", "0", "1"]
    ]
    # Counted on the day of its slot, by the channel it was booked through.
    assert rows_with_data(csv_rows(as_admin, "deferrals")) == [
        ["2026-05-19", "1", "0", "0", "0", "1"]
    ]
    doses = csv_rows(as_admin, "doses")
    assert doses[0] == ["日付", "1回目", "2回目", "3回目以降", "合計"]
    assert rows_with_data(doses) == [
        ["2026-05-18", "1", "1", "0", "2"],
        ["2026-05-19", "0", "0", "1", "1"],
    ]


def test_attendance_per_venue_and_slot_day(
    as_admin: Client, history: World, tenant_a: Municipality, clock: time_machine.Coordinates
) -> None:
    """What became of each venue's bookings of the day: a booking cancelled beforehand is
    not counted, one put off at the venue is, and one nobody recorded shows as 未受付."""
    with in_a(tenant_a):
        r = history.residents
        Booking.objects.filter(voucher=r[0]).update(status=Booking.Status.VACCINATED)
        Booking.objects.filter(voucher=r[2]).update(status=Booking.Status.CHECKED_IN)
    rows = csv_rows(as_admin, "attendance")
    assert rows == [
        [
            "日付",
            "地区",
            "会場",
            "予約",
            "接種済み",
            "受付のみ",
            "接種見合わせ",
            "来場なし",
            "未受付",
            "来場率（%）",
        ],
        # Days still ahead of the clock: no attendance rate yet.
        ["2026-05-18", "中央地区", "小平市役所", "2", "1", "0", "0", "1", "0", ""],
        ["2026-05-18", "北地区", "北部集会所", "1", "0", "1", "0", "0", "0", ""],
        # The booking cancelled by phone is not counted; the one put off at the venue is.
        ["2026-05-19", "中央地区", "小平市役所", "1", "0", "0", "1", "0", "0", ""],
    ]
    page = as_admin.get(f"/console/planning/reports/?{RANGE}").content.decode()
    assert "<title>5/18 来場なし 1件</title>" in page
    # The days over, the rates: those who came (or were put off) among those booked.
    clock.move_to(datetime(2026, 5, 20, 9, 0, tzinfo=JAPAN))
    with in_a(tenant_a):
        rates = [row[-1] for row in attendance(date(2026, 5, 8), date(2026, 5, 19)).rows]
        assert rates == ["50.0", "100.0", "100.0"]
        Booking.objects.filter(voucher=r[2]).update(status=Booking.Status.ACTIVE)
        assert attendance(date(2026, 5, 8), date(2026, 5, 19)).rows[1][-1] == "0.0"


def test_the_dashboard_draws_svg_without_script_or_inline_style(
    as_admin: Client, history: World, tenant_a: Municipality
) -> None:
    response = as_admin.get(f"/console/planning/reports/?{RANGE}")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg viewBox") == 8  # the seven reports and the last hour's minutes
    assert "<script" not in page and " style=" not in page and "<style" not in page
    # A bar per channel segment, with its number as the title (for a pointer and a reader).
    assert "<title>5/9 LINE 1件</title>" in page
    assert "小平市役所 5/18 25%（2/8）" in page
    assert "今日の予約：0件" in page
    with in_a(tenant_a):
        vouchers = [v.voucher_number for v in history.residents]
    for personal in [RESIDENT_NAME, *vouchers]:
        assert personal not in page
    assert events(tenant_a, "export.report") == []


def test_each_report_is_one_aggregate_query(history: World) -> None:
    from booking.console.planning.reports import REPORTS

    for key, report in REPORTS.items():
        with CaptureQueriesContext(connection) as queries:
            report(date(2026, 5, 8), date(2026, 5, 19))
        selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
        assert len(selects) == 1, key
        assert re.search(r"GROUP BY", selects[0]), key


def test_a_report_csv_is_audited_without_values(as_admin: Client, history: World, tenant_a):
    csv_rows(as_admin, "fill")
    exported = events(tenant_a, "export.report")[-1]
    assert exported.details == {
        "report": "fill",
        "first_day": "2026-05-08",
        "last_day": "2026-05-19",
        "rows": 3,
    }


def test_a_report_csv_of_a_wrong_period_is_not_another_periods_figures(
    as_admin: Client, world: World, tenant_a
) -> None:
    before = len(events(tenant_a, "export.report"))
    for query in (
        "first_day=2026-05-19&last_day=2026-05-08",
        "first_day=2026-01-01&last_day=2026-12-31",
    ):
        response = as_admin.get(f"/console/planning/reports/fill.csv?{query}")
        assert response.status_code == 302
        assert response["Location"] == f"/console/planning/reports/?{query}"
        page = as_admin.get(response["Location"])
        assert page.status_code == 400 and "errorlist" in page.content.decode()
    assert len(events(tenant_a, "export.report")) == before  # nothing exported


def test_an_unknown_report_is_404(as_admin: Client, world: World) -> None:
    assert as_admin.get("/console/planning/reports/vouchers.csv").status_code == 404


def test_the_last_hour_minute_by_minute(as_admin: Client, world: World, tenant_a) -> None:
    """The clock stands at 09:30 in Tokyo: bookings at 09:05 and 09:29 (two), one at 08:20
    (more than an hour ago), counted per minute and channel."""
    with in_a(tenant_a):
        slot = make_slot(world.civic, world.pfizer, at(MONDAY, 9))
        r = world.residents
        for resident, channel, minute in [
            (r[0], "web", (9, 5)),
            (r[1], "web", (9, 29)),
            (r[2], "call_centre", (9, 29)),
            (r[3], "line", (8, 20)),
        ]:
            booking = world.book(slot, resident, channel)
            Booking.objects.filter(pk=booking.pk).update(
                created_at=datetime(2026, 5, 11, *minute, tzinfo=JAPAN)
            )
        report = bookings_last_hour()
    assert report.columns[0] == "時刻" and report.columns[-1] == "合計"
    web, line, centre = (
        report.columns.index(label) for label in ("ウェブ", "LINE", "コールセンター")
    )
    assert [(row[0], row[web], row[line], row[centre], row[-1]) for row in report.rows] == [
        ("09:05", 1, 0, 0, 1),
        ("09:29", 1, 0, 1, 2),
    ]
    assert len(report.chart.rects) == 3  # two bars, the second of two channels
    page = as_admin.get("/console/planning/reports/").content.decode()
    assert "直近1時間の予約（1分ごと・受付方法別）" in page and '<th scope="row">09:29</th>' in page


def test_the_admin_sees_the_web_queue(as_admin: Client, world: World, tenant_a) -> None:
    def line() -> str:
        page = as_admin.get("/console/planning/reports/").content.decode()
        return page.split('id="waiting-room">')[1].split("</li>")[0]

    assert "使っていません" in line()
    cache.clear()
    Municipality.objects.filter(pk=tenant_a.pk).update(waiting_room_per_minute=60)
    assert "1分あたり60人をご案内。いまは待っている方はいません。" in line()
    with schema_context(tenant_a.schema_name):  # 200 residents queue, one a second
        for _ in range(200):
            queue_join(tenant_a.schema_name, now=time.time(), per_second=1.0, horizon=3600)
    assert "いま約200人が待っています（最後の方まで約4分）" in line()


def test_the_period_boxes_show_the_period_shown(as_admin: Client, world: World) -> None:
    page = as_admin.get("/console/planning/reports/").content.decode()
    first = page.split('name="first_day"')[1].split(">")[0]
    last = page.split('name="last_day"')[1].split(">")[0]
    assert 'value="20' in first and 'value="20' in last
