"""A call-centre operator, in Japanese, in headless Chromium: log in with a password and TOTP,
find a resident by the kana name they give on the phone, reveal the record for the identity
check, tick the checklist, book a call-centre slot for them and read back the 予約番号."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.core.cache import cache
from django_tenants.utils import schema_context, tenant_context

from audit.models import Event
from booking.models import Booking, StaffMember, Voucher
from booking.models.bookings import booking_number_display
from booking.registry.pipeline import kana_key
from booking.resident.waiting_room import queue_join
from tenants.crypto import cipher_for
from tenants.models import Municipality
from tests.e2e.conftest import Shots, Site, StaffLogin, staff_account, watched_page

pytestmark = pytest.mark.browser

PASSWORD = "denwa-uketsuke-e2e-2026"
NUMBER = "3000000101"
BORN = date(1950, 7, 1)


@dataclass(frozen=True)
class Caller:
    voucher_id: int
    number: str


def _resident(
    municipality: Municipality, number: str, *, name: str, kana: str, born: date, phone: str
) -> Caller:
    """A resident as the registry import leaves them, with the kana and phone indexes the
    call centre searches."""
    with tenant_context(municipality):
        cipher = cipher_for(municipality)
        values = {
            "name": name,
            "name_kana": kana,
            "birth_date": born.isoformat(),
            "sex": "1",
            "postal_code": "1870011",
            "address": "東京都小平市鈴木町1-100",
            "phone": phone,
            "email": None,
            "address_number": "000" + number[-6:],
        }
        voucher = Voucher.objects.create(
            voucher_number=number,
            personal=cipher.seal_record(values, table="booking_voucher", row_id=number),
            kana_index=cipher.blind_index(kana_key(kana), purpose="name_kana"),
            phone_index=cipher.blind_index(phone, purpose="phone"),
            content_hash=cipher.blind_index(number, purpose="e2e"),
        )
    return Caller(voucher.pk, number)


@pytest.fixture(scope="module")
def caller(site: Site, django_db_blocker: Any) -> Caller:
    with django_db_blocker.unblock():
        return _resident(
            site.municipality,
            NUMBER,
            name="武蔵 一郎",
            kana="ムサシ イチロウ",
            born=BORN,
            phone="0423000101",
        )


@pytest.fixture(scope="module")
def operator(site: Site, django_db_blocker: Any) -> StaffLogin:
    with django_db_blocker.unblock():
        return staff_account(
            site, email="denwa@e2e.example.jp", role=StaffMember.Role.CALL_CENTRE, password=PASSWORD
        )


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    with watched_page(browser, site, width=1024) as page:
        yield page


def test_an_operator_finds_a_resident_checks_identity_and_books_for_them(
    page: Any, site: Site, caller: Caller, operator: StaffLogin, django_db_blocker: Any
) -> None:
    shots = Shots("console-callcentre")
    resident_url = site.url(f"/console/callcentre/residents/{caller.voucher_id}/")

    operator.log_in(page, site, shots)

    page.get_by_role("navigation", name="メニュー").get_by_role(
        "link", name="コールセンター"
    ).click()
    page.wait_for_url(site.url("/console/callcentre/"))
    # The one search box has the focus: the operator types what the resident says, and Enter.
    assert page.evaluate("document.activeElement.name") == "q"
    shots.take(page, "search")
    # No one of that name: the search is shown again, selected, for the next words to replace.
    page.keyboard.type("やまだ たろう")
    page.keyboard.press("Enter")
    page.get_by_text("一致する人はいません").wait_for()
    assert page.evaluate("document.activeElement.name") == "q"
    page.keyboard.type("むさし いちろう")
    page.keyboard.press("Enter")
    page.wait_for_url(resident_url)
    main = page.inner_text("main")
    assert NUMBER in main and "武＊ ＊＊" in main and "1950年" in main
    assert "武蔵 一郎" not in main and "鈴木町" not in main
    shots.take(page, "resident-masked")

    # Reveal for the identity check: the reason is preselected and the button has the focus.
    assert page.evaluate("document.activeElement.textContent") == "登録内容を表示"
    page.keyboard.press("Enter")
    page.wait_for_url(resident_url + "reveal/")
    main = page.inner_text("main")
    assert "武蔵 一郎" in main and "1950年7月1日" in main and "東京都小平市鈴木町1-100" in main
    shots.take(page, "revealed")
    # The checklist by keyboard: who is on the phone has the focus (Space chooses the
    # resident themself), then the boxes: Space ticks, Tab moves on.
    assert page.evaluate("document.activeElement.name") == "asked_by"
    page.keyboard.press("Space")
    assert page.get_by_label("ご本人", exact=True).is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "name_matches"
    page.keyboard.press("Space")
    # A stray Enter with boxes left: the browser asks for the next box; nothing is sent.
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement.name === 'birth_date_matches'")
    assert page.url == resident_url + "reveal/"
    for key in ("Space", "Tab", "Space"):
        page.keyboard.press(key)
    assert page.get_by_label("住所が登録内容と一致した").is_checked()
    shots.take(page, "checklist")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(resident_url)
    assert "本人確認済みです（お電話の方：ご本人。" in page.inner_text("main")
    assert "武蔵 一郎" not in page.inner_text("main")  # masked again
    shots.take(page, "identity-confirmed")

    assert page.evaluate("document.activeElement.textContent") == "1回目を予約する"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/book/$"))
    assert "コールセンター用の枠だけ" in page.inner_text("main")
    shots.take(page, "slots")
    # A slot's button opens its confirmation, read back to the caller; nothing booked yet.
    page.get_by_role("link", name=re.compile("この枠で予約")).first.click()
    page.wait_for_url(re.compile(r".*confirm=\d+#confirm$"))
    assert "この枠で予約しますか" in page.inner_text("#confirm")
    shots.take(page, "confirm")
    page.get_by_role("button", name="予約を確定する").click()
    page.wait_for_url(re.compile(rf".*/residents/{caller.voucher_id}/bookings/\d+/$"))
    shots.take(page, "booked")

    with django_db_blocker.unblock(), tenant_context(site.municipality):
        booking = Booking.objects.get(voucher_id=caller.voucher_id)
        actions = set(
            Event.objects.filter(target_id=str(caller.voucher_id)).values_list("action", flat=True)
        )
    assert booking.channel == "call_centre" and booking.status == Booking.Status.ACTIVE
    assert page.inner_text("#booking-number") == booking_number_display(booking.booking_number)
    assert {
        "callcentre.resident_viewed",
        "callcentre.personal_data_revealed",
        "callcentre.identity_confirmed",
    } <= actions


def test_the_operator_sees_how_long_the_web_queue_is_while_residents_wait(
    page: Any, site: Site, django_db_blocker: Any
) -> None:
    """Booking has opened and 300 residents wait on the web, one let in a second: the call
    centre's search page says so, so that a caller can be told the phone does not wait."""
    municipality = site.municipality
    with django_db_blocker.unblock():
        # An operator of their own: an authenticator code logs in once.
        operator = staff_account(
            site,
            email="denwa2@e2e.example.jp",
            role=StaffMember.Role.CALL_CENTRE,
            password=PASSWORD,
        )
        Municipality.objects.filter(pk=municipality.pk).update(waiting_room_per_minute=60)
        with schema_context(municipality.schema_name):
            for _ in range(300):
                queue_join(municipality.schema_name, now=time.time(), per_second=1.0, horizon=3600)
    try:
        operator.log_in(page, site)  # the console never waits
        page.goto(site.url("/console/callcentre/"))
        notice = page.get_by_role("status")
        assert notice.is_visible()
        text = notice.inner_text()
        assert "いま約300人が順番を待っています（最後の方のご案内まで約5分）" in text, text
        assert "お電話での予約は待たずにお受けできます" in text
        Shots("console-web-queue").take(page, "search")
    finally:
        with django_db_blocker.unblock():
            Municipality.objects.filter(pk=municipality.pk).update(waiting_room_per_minute=None)
            with schema_context(municipality.schema_name):
                cache.clear()


def test_back_from_one_of_several_namesakes_shows_their_list_again(
    page: Any, site: Site, django_db_blocker: Any
) -> None:
    """Two residents of one kana name: the operator opens the wrong one, and the browser's
    Back shows the list again (a page of its own), not a request to send the search again."""
    with django_db_blocker.unblock():
        operator = staff_account(
            site,
            email="denwa3@e2e.example.jp",
            role=StaffMember.Role.CALL_CENTRE,
            password=PASSWORD,
        )
        for number, born in (("3000000201", date(1944, 2, 2)), ("3000000202", date(1952, 3, 3))):
            _resident(
                site.municipality,
                number,
                name="大和 次郎",
                kana="ヤマト ジロウ",
                born=born,
                phone="04230" + number[-5:],
            )
    operator.log_in(page, site)
    page.goto(site.url("/console/callcentre/"))
    page.get_by_label("接種券番号・氏名（カナ）・電話番号").fill("やまと じろう")
    page.keyboard.press("Enter")
    page.get_by_text("2件見つかりました").wait_for()
    listed = page.url
    assert "?found=" in listed
    page.get_by_role("link", name="3000000201").click()
    page.wait_for_url(re.compile(r".*/residents/\d+/$"))
    page.go_back()
    page.wait_for_url(listed)
    main = page.inner_text("main")
    assert "2件見つかりました" in main and "3000000202" in main and "1952年" in main
    Shots("console-callcentre-namesakes").take(page, "back-to-the-list")
