"""A resident, in Japanese, in headless Chromium: log in, book, change, cancel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from booking.models import AgePhase, Booking, BookingPolicy, Slot
from booking.selectors.availability import availability_invalidate
from tests.e2e.conftest import JAPAN, Shots, Site, add_voucher, watched_page

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    with watched_page(browser, site, width=420, statuses=[400]) as page:
        yield page


def _log_in(page: Any, site: Site) -> None:
    page.goto(site.url("/"))
    site.log_in(page)


def _bookings(site: Site, django_db_blocker: Any) -> list[Booking]:
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        return list(Booking.objects.order_by("pk"))


def _day_slot_confirm(
    page: Any,
    shots: Shots,
    step: str,
    *,
    last: bool,
    shot_prefix: str,
    confirm_shot: str,
    button: str,
) -> None:
    """With scripts off, on the /{step}/ pages: the first (or last) day, then its first (or
    last) slot, then the confirming button, with a screenshot before each choice."""
    shots.take(page, f"{shot_prefix}date")
    days = page.locator("a.day")
    (days.last if last else days.first).click()
    page.wait_for_url(re.compile(rf".*/{step}/\d{{4}}-\d{{2}}-\d{{2}}/(\?.*)?$"))
    shots.take(page, f"{shot_prefix}slot")
    slots = page.locator("a.slot")
    (slots.last if last else slots.first).click()
    page.wait_for_url(re.compile(rf".*/{step}/slot/\d+/(\?.*)?$"))
    shots.take(page, confirm_shot)
    page.get_by_role("button", name=button).click()


def test_a_resident_logs_in_books_changes_and_cancels(
    page: Any, site: Site, django_db_blocker: Any
) -> None:
    shots = Shots("resident-book-change-cancel")

    page.goto(site.url("/"))
    assert page.get_by_role("heading", level=1).inner_text() == "E2E市 ワクチン接種の予約"
    assert page.get_by_text("65歳以上の方", exact=False).first.is_visible()
    # The call centre's number, to tap: on the top page, and in every page's footer.
    for place in ("main", "footer"):
        number = page.locator(place).get_by_role("link", name="042-000-0000")
        assert number.get_attribute("href") == "tel:0420000000"
    shots.take(page, "top")

    page.get_by_label("接種券番号（10桁）").fill(site.voucher_number)
    page.select_option("#id_birth_date_year", str(site.born.year))
    page.select_option("#id_birth_date_month", str(site.born.month))
    page.select_option("#id_birth_date_day", str(site.born.day))
    shots.take(page, "login-filled")
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(site.url("/mypage/"))
    assert site.voucher_number in page.inner_text("main")
    shots.take(page, "mypage")

    # Book: a date, then every venue that day, then a slot, then confirm.
    page.get_by_role("link", name="1回目の接種を予約する").click()
    page.wait_for_url(re.compile(r".*/book/$"))
    shots.take(page, "choose-date")
    page.locator("a.day").first.click()
    page.wait_for_url(re.compile(r".*/book/\d{4}-\d{2}-\d{2}/(\?.*)?$"))
    assert page.get_by_role("heading", name="市役所 健康センター").is_visible()
    assert page.get_by_role("heading", name="北部公民館").is_visible()
    shots.take(page, "choose-slot")
    page.locator("a.slot").first.click()
    page.wait_for_url(re.compile(r".*/book/slot/\d+/(\?.*)?$"))
    main = page.inner_text("main")
    for expected in (
        "市役所 健康センター",
        "東京都小平市小川町2-1333",
        "1回目",
        "接種券",
        "予診票",
    ):
        assert expected in main
    shots.take(page, "confirm")
    page.get_by_role("button", name="予約する").click()
    page.wait_for_url(re.compile(r".*/bookings/[A-Z0-9]+/done/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "予約が完了しました"
    number = page.inner_text("#booking-number")
    (booking,) = _bookings(site, django_db_blocker)
    assert number.replace("-", "") == booking.booking_number
    assert booking.channel == "web"
    shots.take(page, "done")

    page.get_by_role("link", name="確認票を表示・印刷する").click()
    page.wait_for_url(re.compile(r".*/print/$"))
    qr = page.locator("img.qr")
    assert qr.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 100
    # The script shows the print button (progressive enhancement).
    assert page.get_by_role("button", name="印刷する").is_visible()
    shots.take(page, "print")
    page.emulate_media(media="print")
    assert page.locator(".site-header").is_hidden()
    assert page.get_by_role("button", name="印刷する").is_hidden()
    assert page.locator("img.qr").is_visible()
    shots.take(page, "print-as-printed")
    page.emulate_media(media="screen")
    # On a 360 x 740 phone (LINE cannot print: a screenshot is kept), one screen holds the
    # header, the number, the code, and when and where: the time is above the fold.
    page.set_viewport_size({"width": 360, "height": 740})
    shots.take(page, "print-on-a-phone")
    assert page.evaluate("document.querySelector('.site-header').offsetHeight") <= 130
    time_row = page.locator(".print-sheet dd").nth(4)  # 会場, 接種券番号 … 時間
    box = time_row.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 740, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.set_viewport_size({"width": 420, "height": 900})

    # Change: another day, another slot; the number stays.
    page.goto(site.url("/mypage/"))
    page.get_by_role("link", name="日時・会場を変更").click()
    page.wait_for_url(re.compile(r".*/change/$"))
    shots.take(page, "change-date")
    page.locator("a.day").last.click()
    page.wait_for_url(re.compile(r".*/change/\d{4}-\d{2}-\d{2}/(\?.*)?$"))
    page.locator("a.slot").last.click()
    page.wait_for_url(re.compile(r".*/change/slot/\d+/(\?.*)?$"))
    shots.take(page, "change-confirm")
    page.get_by_role("button", name="変更する").click()
    page.wait_for_url(re.compile(r".*/done/\?changed=1$"))
    assert page.get_by_role("heading", level=1).inner_text() == "予約を変更しました"
    (changed,) = _bookings(site, django_db_blocker)
    assert changed.booking_number == booking.booking_number
    assert changed.slot_id != booking.slot_id
    shots.take(page, "changed")

    # Cancel: a confirmation step first.
    page.goto(site.url("/mypage/"))
    page.get_by_role("link", name="取り消す").click()
    page.wait_for_url(re.compile(r".*/cancel/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "この予約を取り消しますか"
    shots.take(page, "cancel-confirm")
    page.get_by_role("button", name="予約を取り消す").click()
    page.wait_for_url(site.url("/mypage/"))
    assert "取り消しました" in page.inner_text("main")
    assert "現在、予約はありません" in page.inner_text("main")
    (cancelled,) = _bookings(site, django_db_blocker)
    assert cancelled.status == "cancelled"
    shots.take(page, "cancelled")

    page.get_by_role("button", name="ログアウト").click()
    page.wait_for_url(site.url("/"))
    shots.take(page, "logged-out")


def test_the_pages_work_without_javascript(
    browser: Any, site: Site, django_db_blocker: Any
) -> None:
    """Log in, book, print, change and cancel with scripts off: links and forms only."""
    context = browser.new_context(
        locale="ja-JP", java_script_enabled=False, viewport={"width": 420, "height": 900}
    )
    page = context.new_page()
    failures: list[str] = []
    page.on(
        "response",
        lambda response: (
            failures.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    shots = Shots("no-javascript")
    before = {b.pk for b in _bookings(site, django_db_blocker)}
    try:
        _log_in(page, site)
        shots.take(page, "mypage")

        page.get_by_role("link", name="1回目の接種を予約する").click()
        page.wait_for_url(re.compile(r".*/book/$"))
        assert page.get_by_role("heading", level=1).is_visible()
        _day_slot_confirm(
            page,
            shots,
            "book",
            last=False,
            shot_prefix="choose-",
            confirm_shot="confirm",
            button="予約する",
        )
        page.wait_for_url(re.compile(r".*/bookings/[A-Z0-9]+/done/$"))
        assert page.get_by_role("heading", level=1).inner_text() == "予約が完了しました"
        number = page.inner_text("#booking-number").replace("-", "")
        (booking,) = [b for b in _bookings(site, django_db_blocker) if b.pk not in before]
        assert (booking.booking_number, booking.status) == (number, "active")
        shots.take(page, "done")

        page.get_by_role("link", name="確認票を表示・印刷する").click()
        page.wait_for_url(re.compile(r".*/print/$"))
        assert page.locator("img.qr").is_visible()
        # Without the script the print button stays hidden and the hint says what to do.
        assert page.get_by_role("button", name="印刷する").is_hidden()
        assert page.get_by_text("ブラウザの「印刷」から印刷できます。").is_visible()
        shots.take(page, "print")

        page.goto(site.url("/mypage/"))
        page.get_by_role("link", name="日時・会場を変更").click()
        page.wait_for_url(re.compile(r".*/change/$"))
        _day_slot_confirm(
            page,
            shots,
            "change",
            last=True,
            shot_prefix="change-",
            confirm_shot="change-confirm",
            button="変更する",
        )
        page.wait_for_url(re.compile(r".*/done/\?changed=1$"))
        assert page.get_by_role("heading", level=1).inner_text() == "予約を変更しました"
        (changed,) = [b for b in _bookings(site, django_db_blocker) if b.pk == booking.pk]
        assert changed.booking_number == booking.booking_number
        assert changed.slot_id != booking.slot_id
        shots.take(page, "changed")

        page.goto(site.url("/mypage/"))
        page.get_by_role("link", name="取り消す").click()
        page.wait_for_url(re.compile(r".*/cancel/$"))
        shots.take(page, "cancel-confirm")
        page.get_by_role("button", name="予約を取り消す").click()
        page.wait_for_url(site.url("/mypage/"))
        assert "取り消しました" in page.inner_text("main")
        assert "現在、予約はありません" in page.inner_text("main")
        (cancelled,) = [b for b in _bookings(site, django_db_blocker) if b.pk == booking.pk]
        assert cancelled.status == "cancelled"
        shots.take(page, "cancelled")

        page.get_by_role("button", name="ログアウト").click()
        page.wait_for_url(site.url("/"))
        shots.take(page, "logged-out")
        assert failures == []
    finally:
        context.close()


def test_a_resident_books_at_the_venue_they_look_for_first(
    page: Any, site: Site, django_db_blocker: Any
) -> None:
    """The clinic they always go to: the venues, its days, its slots that day, confirm."""
    shots = Shots("resident-venue-first")
    before = {b.pk for b in _bookings(site, django_db_blocker)}
    _log_in(page, site)
    page.get_by_role("link", name="1回目の接種を予約する").click()
    page.wait_for_url(re.compile(r".*/book/$"))
    page.get_by_role("link", name="会場から探す").click()
    page.wait_for_url(re.compile(r".*/book/venues/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "接種を受ける会場を選んでください"
    assert page.get_by_role("heading", name="市役所 健康センター").is_visible()
    assert page.get_by_role("heading", name="北部公民館").is_visible()
    assert "いちばん早い空き" in page.inner_text("main")
    shots.take(page, "venues")

    page.get_by_role("link", name="北部公民館の空いている日を見る").click()
    page.wait_for_url(re.compile(r".*/book/\?venue=\d+$"))
    assert "北部公民館の空いている日を表示しています" in page.inner_text("main")
    assert page.locator("#id_venue option:checked").inner_text() == "北部公民館"
    shots.take(page, "venue-dates")
    page.locator("a.day").first.click()
    page.wait_for_url(re.compile(r".*/book/\d{4}-\d{2}-\d{2}/\?venue=\d+$"))
    assert page.get_by_role("heading", name="北部公民館").is_visible()
    assert page.get_by_role("heading", name="市役所 健康センター").count() == 0
    shots.take(page, "venue-slots")
    page.locator("a.slot").first.click()
    page.wait_for_url(re.compile(r".*/book/slot/\d+/(\?.*)?$"))
    assert "北部公民館" in page.inner_text("main")
    shots.take(page, "confirm")
    page.get_by_role("button", name="予約する").click()
    page.wait_for_url(re.compile(r".*/bookings/[A-Z0-9]+/done/$"))
    (booking,) = [b for b in _bookings(site, django_db_blocker) if b.pk not in before]
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        assert Slot.objects.get(pk=booking.slot_id).venue.name == "北部公民館"
    shots.take(page, "done")

    page.goto(site.url("/mypage/"))
    page.get_by_role("link", name="取り消す").click()
    page.get_by_role("button", name="予約を取り消す").click()
    page.wait_for_url(site.url("/mypage/"))
    assert "現在、予約はありません" in page.inner_text("main")


def test_a_resident_not_yet_eligible_is_told_when_their_turn_opens(
    page: Any, site: Site, django_db_blocker: Any
) -> None:
    """Aged 62 while only 65 and over may book: my page says from when, with no button to
    pages that would only refuse."""
    shots = Shots("resident-not-yet-eligible")
    opens = (
        (timezone.now() + timedelta(days=10))
        .astimezone(JAPAN)
        .replace(hour=9, minute=0, second=0, microsecond=0)
    )
    born = date(timezone.localdate(timezone=JAPAN).year - 62, 1, 1)
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        phase = AgePhase.objects.create(name="60歳以上の方", minimum_age=60, opens_at=opens)
        add_voucher(site.municipality, "3000000062", born)
    try:
        younger = Site(site.municipality, site.base_url, "3000000062", born)
        page.goto(site.url("/"))
        younger.log_in(page)
        main = page.inner_text("main")
        assert f"あなたの年齢の方の予約受付は{opens.year}年{opens.month}月{opens.day}日" in main
        assert "09:00に始まります" in main
        assert page.get_by_role("link", name="1回目の接種を予約する").count() == 0
        shots.take(page, "mypage")
        page.goto(site.url("/book/"))
        assert "09:00に始まります" in page.inner_text("main")
        shots.take(page, "book")
        page.get_by_role("button", name="ログアウト").click()
    finally:
        with django_db_blocker.unblock(), tenant_context(site.municipality):
            phase.delete()


def test_a_failed_login_is_announced_and_the_skip_link_comes_first(page: Any, site: Site) -> None:
    page.goto(site.url("/"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "本文へ移動"
    page.get_by_label("接種券番号（10桁）").fill("3999999999")
    page.select_option("#id_birth_date_year", "1950")
    page.select_option("#id_birth_date_month", "1")
    page.select_option("#id_birth_date_day", "1")
    page.get_by_role("button", name="ログイン").click()
    alert = page.get_by_role("alert")
    assert "接種券番号または生年月日が正しくありません" in alert.inner_text()
    # The number typed is kept for the next try; the birth date is chosen again.
    assert page.get_by_label("接種券番号（10桁）").input_value() == "3999999999"
    assert page.input_value("#id_birth_date_year") == ""
    Shots("failed-login").take(page, "failed")


def test_doses_1_and_2_booked_together_without_javascript(
    browser: Any, site: Site, django_db_blocker: Any
) -> None:
    """Where the municipality books the series together: the first slot, then the second
    dose's date and slot, one confirmation for both; cancelling dose 1 cancels dose 2."""
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        policy = BookingPolicy.current()
        policy.book_series_together, policy.cancel_cascades = True, True
        policy.save()
        first_day = Slot.objects.order_by("starts_at").first()
        assert first_day is not None
        later = Slot.objects.create(
            venue=first_day.venue,
            product=first_day.product,
            starts_at=first_day.starts_at + timedelta(days=21),
            ends_at=first_day.ends_at + timedelta(days=21),
            capacity_web=10,
        )
        availability_invalidate(days=[later.starts_at.date()])
    context = browser.new_context(
        locale="ja-JP", java_script_enabled=False, viewport={"width": 420, "height": 900}
    )
    page = context.new_page()
    shots = Shots("no-javascript-series-together")
    before = {b.pk for b in _bookings(site, django_db_blocker)}
    try:
        _log_in(page, site)
        page.get_by_role("link", name="1回目の接種を予約する").click()
        page.wait_for_url(re.compile(r".*/book/$"))
        page.locator("a.day").first.click()
        page.locator("a.slot").first.click()
        page.wait_for_url(re.compile(r".*/book/slot/\d+/second/$"))
        assert "2回目の接種を受ける日を選んでください" in page.inner_text("main")
        assert "まだ予約されていません" in page.inner_text("main")
        shots.take(page, "second-date")
        page.locator("a.day").first.click()
        page.wait_for_url(re.compile(r".*/second/\d{4}-\d{2}-\d{2}/(\?.*)?$"))
        shots.take(page, "second-slot")
        page.locator("a.slot").first.click()
        page.wait_for_url(re.compile(r".*/second/slot/\d+/(\?.*)?$"))
        assert "1回目と2回目を予約しますか" in page.inner_text("main")
        shots.take(page, "confirm-both")
        page.get_by_role("button", name="2回分を予約する").click()
        page.wait_for_url(re.compile(r".*/bookings/[A-Z0-9]+/done/$"))
        assert "一緒に予約した2回目" in page.inner_text("main")
        shots.take(page, "done-both")
        new = [b for b in _bookings(site, django_db_blocker) if b.pk not in before]
        dose1, dose2 = sorted(new, key=lambda b: b.dose)
        assert (dose1.dose, dose2.dose, dose2.linked_to_id) == (1, 2, dose1.pk)
        assert dose2.slot_id == later.pk

        page.goto(site.url(f"/bookings/{dose1.booking_number}/cancel/"))
        assert "も取り消されます" in page.inner_text("main")
        shots.take(page, "cancel-both-confirm")
        page.get_by_role("button", name="予約を取り消す").click()
        page.wait_for_url(site.url("/mypage/"))
        assert "一緒に予約していた2回目" in page.inner_text("main")
        shots.take(page, "cancelled-both")
        statuses = {b.status for b in _bookings(site, django_db_blocker) if b.pk not in before}
        assert statuses == {"cancelled"}
    finally:
        context.close()
        with django_db_blocker.unblock(), tenant_context(site.municipality):
            policy = BookingPolicy.current()
            policy.book_series_together = False
            policy.save()


def _set_booked(site: Site, django_db_blocker: Any, slot: Slot) -> None:
    """The slot's web counter back to what it was."""
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        Slot.objects.filter(pk=slot.pk).update(booked_web=slot.booked_web)
        availability_invalidate(channels=["web"], days=[timezone.localtime(slot.starts_at).date()])


def test_a_slot_that_fills_up_while_confirming_offers_the_days_other_slots(
    browser: Any, site: Site, django_db_blocker: Any, request: pytest.FixtureRequest
) -> None:
    """The last place is taken between the resident's look and their press: the refusal is
    announced, nothing is booked, and the answer is that day's other slots, the one just
    taken shown full, not a button that would only be refused again."""
    shots = Shots("slot-filled-while-confirming")
    before = {b.pk for b in _bookings(site, django_db_blocker)}
    with watched_page(browser, site, width=420, statuses=[409]) as page:
        _log_in(page, site)
        page.get_by_role("link", name="1回目の接種を予約する").click()
        page.wait_for_url(re.compile(r".*/book/$"))
        page.locator("a.day").first.click()
        page.wait_for_url(re.compile(r".*/book/\d{4}-\d{2}-\d{2}/(\?.*)?$"))
        page.locator("a.slot").first.click()
        page.wait_for_url(re.compile(r".*/book/slot/\d+/(\?.*)?$"))
        slot_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
        with django_db_blocker.unblock(), tenant_context(site.municipality):
            slot = Slot.objects.get(pk=slot_id)
            Slot.objects.filter(pk=slot_id).update(booked_web=slot.capacity_web)
            # What the booking service does when a slot's mark changes.
            day = timezone.localtime(slot.starts_at).date()
            availability_invalidate(channels=["web"], days=[day])
        request.addfinalizer(lambda: _set_booked(site, django_db_blocker, slot))
        page.get_by_role("button", name="予約する").click()
        alert = page.get_by_role("alert")
        assert "満員" in alert.inner_text()
        heading = page.get_by_role("heading", level=1).inner_text()
        assert heading == "この日時・会場では予約できませんでした"
        assert page.get_by_role("button", name="予約する").count() == 0
        assert page.locator("a.slot").count() > 0  # the day's other slots, on the same page
        assert page.locator(f'a[href^="/book/slot/{slot_id}/"]').count() == 0  # full now
        assert page.get_by_role("link", name="日にちを選び直す").count() == 1
        shots.take(page, "refused-other-slots")
        page.locator("a.slot").first.click()  # choosing again goes on as usual
        page.wait_for_url(re.compile(r".*/book/slot/\d+/(\?.*)?$"))
        assert page.get_by_role("button", name="予約する").count() == 1
    assert {b.pk for b in _bookings(site, django_db_blocker)} == before
