"""Venue staff, in Japanese, in headless Chromium: log in with a password and TOTP, take the
resident's number from the scanner, check them in, record the dose after the shot."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.models import Event
from booking.models import (
    Booking,
    Slot,
    StaffMember,
    VaccinationRecord,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.models.bookings import booking_number_display, booking_number_new
from tenants.crypto import cipher_for
from tests.e2e.conftest import JAPAN, Shots, Site, StaffLogin, staff_account, watched_page

pytestmark = pytest.mark.browser

PASSWORD = "uketsuke-e2e-2026"


@dataclass(frozen=True)
class Desk:
    venue: str
    bookings: list[Booking]


@pytest.fixture(scope="module")
def desk(site: Site, django_db_blocker: Any) -> Desk:
    """Two of the site's residents booked late today at the civic centre (the booking
    service closes slots a day ahead, so these are written as it would leave them)."""
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        venue = Venue.objects.get(name="市役所 健康センター")
        product = VaccineProduct.objects.get(code="pfizer")
        today = timezone.localdate(timezone=JAPAN)
        starts_at = datetime.combine(today, time(23, 0), tzinfo=JAPAN)
        slot = Slot.objects.create(
            venue=venue,
            product=product,
            starts_at=starts_at,
            # Until the day's end: a place is given at the desk while the slot is not over.
            ends_at=starts_at + timedelta(minutes=59),
            capacity_web=10,
        )
        first = Voucher.objects.get(voucher_number=site.voucher_number)
        cipher = cipher_for(site.municipality)
        second = Voucher.objects.create(
            voucher_number="3000000002",
            personal=cipher.seal_record(
                {"name": "小川 一郎", "name_kana": "オガワ イチロウ", "birth_date": "1950-01-02"},
                table="booking_voucher",
                row_id="3000000002",
            ),
            content_hash=cipher.blind_index("3000000002", purpose="e2e"),
        )
        bookings = [
            Booking.objects.create(
                booking_number=booking_number_new(),
                voucher=voucher,
                slot=slot,
                dose=1,
                channel="web",
                booked_through="web",
                actor_kind="system",
                actor_id="tests/e2e",
            )
            for voucher in (first, second)
        ]
    return Desk(venue=venue.name, bookings=bookings)


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    with watched_page(browser, site, width=820, height=1000, statuses=[400]) as page:
        yield page


def _venue_staff(site: Site, email: str, venue: Venue) -> StaffLogin:
    return staff_account(
        site, email=email, role=StaffMember.Role.VENUE, password=PASSWORD, venues=[venue]
    )


def test_venue_staff_check_a_resident_in_and_record_the_dose(
    page: Any, site: Site, desk: Desk, django_db_blocker: Any
) -> None:
    shots = Shots("console-reception")
    booking = desk.bookings[0]
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        venue = Venue.objects.get(name=desk.venue)
        staff = _venue_staff(site, "uketsuke@e2e.example.jp", venue)

    staff.log_in(page, site)
    shots.take(page, "console-home")
    page.get_by_role("navigation", name="メニュー").get_by_role("link", name="受付").click()
    page.wait_for_url(site.url("/console/reception/"))
    # The box has the focus: a hardware scanner types the QR code's text and an Enter.
    box = page.get_by_label("予約番号・接種券番号（またはQRコードの読み取り）")
    assert page.evaluate("document.activeElement.name") == "number"
    assert desk.venue in page.inner_text("main")
    shots.take(page, "reception")
    page.keyboard.type(booking.booking_number)
    shots.take(page, "scanned")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/console/reception/bookings/{booking.pk}/$"))
    main = page.inner_text("main")
    for expected in (
        booking_number_display(booking.booking_number),
        "小平 花子",
        "コダイラ ハナコ",
        "1948年3月15日（昭和23年）",
        desk.venue,
        "23:00",
        "1回目",
        "ファイザー社ワクチン",
        "予約中",
    ):
        assert expected in main
    assert box.count() == 1  # the next resident's box is on the card too
    shots.take(page, "card")

    # The next resident's box keeps the focus: a scan meant for the next resident, with its
    # Enter, never checks in (nor records) the resident on screen. Checking in is a tap.
    assert page.evaluate("document.activeElement.name") == "number"
    page.get_by_role("button", name="本人確認をして受付する").click()
    page.get_by_text("を受付しました").wait_for()
    assert page.inner_text("#booking-status") == "受付済み"
    assert page.evaluate("document.activeElement.name") == "number"
    shots.take(page, "checked-in")

    # After the shot: the lot number is typed where the staff member taps.
    page.get_by_label("ロット番号").click()
    page.keyboard.type("fk8892")
    page.get_by_label("接種した医師の氏名").fill("医師 一郎")
    shots.take(page, "vaccination-filled")
    page.get_by_role("button", name="接種を記録する").click()
    page.get_by_text("の接種を記録しました").wait_for()
    assert page.inner_text("#booking-status") == "接種済み"
    assert "FK8892" in page.inner_text("main")
    shots.take(page, "vaccinated")

    with django_db_blocker.unblock(), tenant_context(site.municipality):
        record = VaccinationRecord.objects.get(booking_id=booking.pk)
        assert (record.dose, record.lot_number, record.doctor) == (1, "FK8892", "医師 一郎")
        assert Booking.objects.get(pk=booking.pk).status == Booking.Status.VACCINATED
        actions = list(
            Event.objects.filter(action__startswith="reception.").values_list("action", flat=True)
        )
    assert "reception.viewed" in actions
    assert "reception.checked_in" in actions and "reception.vaccination_recorded" in actions


def test_reception_works_without_javascript(
    browser: Any, site: Site, desk: Desk, django_db_blocker: Any
) -> None:
    booking = desk.bookings[1]
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        venue = Venue.objects.get(name=desk.venue)
        staff = _venue_staff(site, "uketsuke2@e2e.example.jp", venue)
    context = browser.new_context(locale="ja-JP", java_script_enabled=False)
    page = context.new_page()
    try:
        staff.log_in(page, site)
        page.goto(site.url("/console/reception/"))
        page.get_by_label("予約番号・接種券番号（またはQRコードの読み取り）").fill(
            booking_number_display(booking.booking_number).lower()
        )
        page.get_by_role("button", name="予約を探す").click()
        page.wait_for_url(re.compile(rf".*/console/reception/bookings/{booking.pk}/$"))
        page.get_by_role("button", name="本人確認をして受付する").click()
        page.get_by_text("を受付しました").wait_for()
        assert page.inner_text("#booking-status") == "受付済み"
        Shots("console-reception-no-javascript").take(page, "checked-in")
    finally:
        context.close()


def test_a_resident_without_a_booking_is_given_a_free_place_and_checked_in(
    page: Any, site: Site, desk: Desk, django_db_blocker: Any
) -> None:
    """A dose left over late in the day: the resident at the desk, with their 接種券 and no
    booking, is booked into today's slot there and checked in, in one step."""
    shots = Shots("console-reception-walk-in")
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        venue = Venue.objects.get(name=desk.venue)
        staff = _venue_staff(site, "uketsuke3@e2e.example.jp", venue)
        cipher = cipher_for(site.municipality)
        Voucher.objects.create(
            voucher_number="3000000003",
            personal=cipher.seal_record(
                {"name": "当日 三郎", "name_kana": "トウジツ サブロウ", "birth_date": "1945-03-03"},
                table="booking_voucher",
                row_id="3000000003",
            ),
            content_hash=cipher.blind_index("3000000003", purpose="e2e"),
        )
    staff.log_in(page, site)
    page.goto(site.url("/console/reception/"))
    page.get_by_role("link", name="予約のない方を受付する（本日の空き枠）").click()
    page.wait_for_url(site.url("/console/reception/walk-in/"))
    page.get_by_label("接種券番号（数字10桁）").fill("3000000003")
    page.get_by_label(re.compile(rf"23:00 {re.escape(desk.venue)}")).check()
    shots.take(page, "filled")
    page.get_by_role("button", name="この番号の方を確かめる").click()
    # Who the number is, to compare with the 接種券 and the ID before anything is booked.
    assert page.inner_text("#walk-in-name") == "当日 三郎"
    page.get_by_label("接種券と本人確認書類で、上の方ご本人であることを確かめました").check()
    shots.take(page, "holder-shown")
    page.get_by_role("button", name="この方を、この枠で予約して受付する").click()
    page.get_by_text("本日の空き枠で予約し受付しました").wait_for()
    assert page.inner_text("#booking-status") == "受付済み"
    assert "当日 三郎" in page.inner_text("main")
    shots.take(page, "checked-in")
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        booking = Booking.objects.get(voucher__voucher_number="3000000003")
        assert booking.status == Booking.Status.CHECKED_IN
        assert Event.objects.filter(
            action="booking.created", target_id=str(booking.pk), details__at_the_venue=True
        ).exists()


def test_venue_staff_print_the_list_of_the_day(
    page: Any, site: Site, desk: Desk, django_db_blocker: Any
) -> None:
    """In the morning the desk prints today's list, to tick residents off on paper (and to
    go on if the network stops); printed, the list stands alone, without the console."""
    shots = Shots("console-reception-roster")
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        venue = Venue.objects.get(name=desk.venue)
        staff = _venue_staff(site, "uketsuke4@e2e.example.jp", venue)
    staff.log_in(page, site)
    page.goto(site.url("/console/reception/"))
    page.get_by_role("link", name="受付名簿（印刷用）").click()
    page.wait_for_url(re.compile(r".*/console/reception/roster/\?venue=\d+$"))
    roster = page.locator("#roster")
    assert f"受付名簿　{desk.venue}" in roster.inner_text()
    for booking, name in zip(desk.bookings, ("小平 花子", "小川 一郎"), strict=True):
        row = roster.locator("tr", has_text=booking_number_display(booking.booking_number))
        assert name in row.inner_text()
    # The script shows the print button (progressive enhancement).
    assert page.get_by_role("button", name="印刷する").is_visible()
    shots.take(page, "roster")
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.get_by_role("button", name="印刷する").is_visible()
    assert not page.get_by_label("会場").is_visible()  # the venue chooser
    assert roster.is_visible()
    shots.take(page, "roster-as-printed")
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        viewed = Event.objects.filter(action="reception.roster_viewed").latest("seq")
    assert viewed.target_id == str(venue.pk)
    assert {booking.voucher_id for booking in desk.bookings} <= set(viewed.details["vouchers"])
