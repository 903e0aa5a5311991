"""Booking through the residents' pages: date, venues and slots that day, confirm, done,
printable confirmation; change (the old booking stays if the new slot fails) and cancel."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from datetime import time as datetime_time
from typing import Any

import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import (
    Booking,
    BookingPolicy,
    ContactPreference,
    Slot,
    VaccineProduct,
    Venue,
)
from booking.models.bookings import booking_number_display
from booking.resident.views.booking import _day_venues_html
from booking.services.notifications import line_channel_configure
from tenants.models import Municipality
from tests.booking.resident.conftest import (
    JAPAN,
    Resident,
    World,
    at,
    events,
    logged_in,
    login_dob,
)

LINE_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Safari Line/13.6.1"
)


def _book(client: Client, slot: Slot, municipality: Municipality) -> Booking:
    response = client.post(f"/book/slot/{slot.pk}/")
    assert response.status_code == 302, response.content.decode()[:3000]
    match = re.fullmatch(r"/bookings/([A-Z0-9]+)/done/", response["Location"])
    assert match is not None
    with tenant_context(municipality):
        return Booking.objects.select_related("slot").get(booking_number=match.group(1))


def _bookings(municipality: Municipality, resident: Resident) -> list[Booking]:
    with tenant_context(municipality):
        return list(Booking.objects.filter(voucher_id=resident.pk).order_by("pk"))


def test_a_resident_books_by_date_then_venue_then_slot(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    morning = world_a.slot(3, 10)
    world_a.slot(3, 14, venue=world_a.north, web=1, booked_web=1)  # full: shown as ×
    world_a.slot(5, 10)
    dates = client_a.get("/book/")
    text = dates.content.decode()
    assert dates.status_code == 200
    day_url = f"/book/{morning.starts_at.astimezone(at(0).tzinfo).date().isoformat()}/"
    assert f'href="{day_url}"' in text
    assert "◎" in text and "空きあり" in text  # the mark, and words for screen readers
    # The words are seen as well (◎ and ○ are hard to tell apart), on each day's button.
    day_button = text.split(f'href="{day_url}"')[1].split("</a>")[0]
    assert '<span class="day-label">空きあり</span>' in day_button

    slots = client_a.get(day_url)
    text = slots.content.decode()
    assert "小平市役所" in text and "北部集会所" in text  # every venue of the day, together
    assert f'href="/book/slot/{morning.pk}/"' in text
    assert "×" in text and "空きなし" in text

    confirm = client_a.get(f"/book/slot/{morning.pk}/")
    text = confirm.content.decode()
    for expected in (
        "小平市役所",
        "東京都小平市小川町2-1333",
        "10:00",
        "1回目",
        "接種券",
        "予診票",
    ):
        assert expected in text
    assert "本人確認書類" in text and "https://www.google.com/maps/search/" in text

    booking = _book(client_a, morning, world_a.municipality)
    assert booking.channel == "web" and booking.dose == 1
    done = client_a.get(f"/bookings/{booking.booking_number}/done/")
    text = done.content.decode()
    assert "予約が完了しました" in text
    assert booking_number_display(booking.booking_number) in text
    mypage = client_a.get("/mypage/").content.decode()
    assert booking_number_display(booking.booking_number) in mypage


def test_the_printable_confirmation_has_a_server_drawn_qr_code(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    page = client_a.get(f"/bookings/{booking.booking_number}/print/")
    text = page.content.decode()
    assert page.status_code == 200
    assert re.search(r'<img class="qr" src="data:image/png;base64,[A-Za-z0-9+/=]+"', text)
    assert "予約番号" in text and "のQRコード" in text
    assert "/static/sesshu/resident.css" in text and "@media print" not in text  # in the file
    assert '<script src="/static/sesshu/resident.js" defer></script>' in text
    # Inside LINE's browser nothing prints: the page says what to do instead.
    assert "スクリーンショット" in text.split('id="cannot-print"')[1].split("</p>")[0]
    assert 'class="print-button"' in text
    assert page["Cache-Control"] == "no-store"
    # Opened in LINE's browser, the page offers no print button that would do nothing.
    in_line = client_a.get(
        f"/bookings/{booking.booking_number}/print/", HTTP_USER_AGENT=LINE_AGENT
    ).content.decode()
    assert 'class="print-button"' not in in_line and "「印刷」から" not in in_line
    told = in_line.split('id="cannot-print"')[1].split("</p>")[0]
    assert "LINEの画面の中からは印刷できません" in told and "スクリーンショット" in told
    assert 'class="qr"' in in_line


def test_the_sheet_printed_from_english_pages_has_its_labels_in_japanese_too(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """The venue's staff read the sheet in Japanese: printed from the English pages, each
    label carries its Japanese beside it (marked as Japanese); the Japanese sheet and the
    English booking page do not repeat them."""
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    sheet = f"/bookings/{booking.booking_number}/print/"
    assert "sheet-ja" not in client_a.get(sheet).content.decode()
    client_a.cookies["django_language"] = "en"
    text = client_a.get(sheet).content.decode()
    assert "Booking number" in text
    for label in ("予約確認票", "予約番号", "接種券番号", "会場", "住所", "日にち", "時間", "接種"):
        assert f'<span lang="ja" class="sheet-ja"> ／ {label}</span>' in text, label
    detail = client_a.get(f"/bookings/{booking.booking_number}/").content.decode()
    assert "Venue" in detail and "sheet-ja" not in detail


def test_a_change_keeps_the_number_and_the_old_slot_if_the_new_one_fails(
    client_a: Client, world_a: World, resident_a: Resident, neighbour_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    last_place = world_a.slot(4, 11, web=1)
    later = world_a.slot(6, 9)
    # The change pages: dates, then slots, then confirm, all under the booking's number.
    base = f"/bookings/{booking.booking_number}/change/"
    assert client_a.get(base).status_code == 200
    day = last_place.starts_at.astimezone(at(0).tzinfo).date().isoformat()
    assert f"{base}slot/{last_place.pk}/" in client_a.get(f"{base}{day}/").content.decode()
    # Someone else takes the last place between the resident's look and their confirm.
    neighbour = Client(HTTP_HOST="kodaira.localhost")
    login_dob(neighbour, neighbour_a)
    _book(neighbour, last_place, world_a.municipality)
    refused = client_a.post(f"{base}slot/{last_place.pk}/")
    assert refused.status_code == 409
    text = refused.content.decode()
    assert "満員" in text
    # No button to press again on the full slot: the answer is the same day's slots, the
    # one just taken shown full (whatever the cached marks say), the others to choose from.
    assert "この日時・会場には変更できませんでした" in text
    assert "のほかの会場と時間" in text
    assert f'action="{base}slot/{last_place.pk}/"' not in text
    assert f'href="{base}slot/{last_place.pk}/"' not in text
    assert re.search(
        r'<span class="slot full"><span class="mark" aria-hidden="true">×</span> 11:00', text
    )
    assert re.search(rf'<a href="{base}(\?[^"]*)?">日にちを選び直す</a>', text)
    assert "当日お持ちいただくもの" not in text  # nothing to bring to a refusal
    confirm_page = client_a.get(f"{base}slot/{later.pk}/").content.decode()
    assert "当日お持ちいただくもの" in confirm_page
    (still,) = _bookings(world_a.municipality, resident_a)
    assert still.slot_id == booking.slot_id and still.status == "active"
    # A slot with room: the same booking number, the new slot.
    moved = client_a.post(f"{base}slot/{later.pk}/")
    assert moved["Location"] == f"/bookings/{booking.booking_number}/done/?changed=1"
    (changed,) = _bookings(world_a.municipality, resident_a)
    assert changed.booking_number == booking.booking_number and changed.slot_id == later.pk
    assert "予約を変更しました" in client_a.get(moved["Location"]).content.decode()


def test_cancelling_asks_first_then_cancels(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    url = f"/bookings/{booking.booking_number}/cancel/"
    confirm = client_a.get(url)
    assert confirm.status_code == 200 and "取り消しますか" in confirm.content.decode()
    assert _bookings(world_a.municipality, resident_a)[0].status == "active"
    response = client_a.post(url, follow=True)
    assert "取り消しました" in response.content.decode()
    assert _bookings(world_a.municipality, resident_a)[0].status == "cancelled"
    assert "現在、予約はありません" in client_a.get("/mypage/").content.decode()


def test_a_cancelled_booking_has_no_sheet_to_print_and_says_it_is_cancelled(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """A sheet printed for a cancelled booking would be taken for valid at reception; and
    the browser's Back to the cancel page, or to the done page, says what happened, not
    that the cut-off has passed or that the booking was made."""
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    number = booking.booking_number
    detail = client_a.get(f"/bookings/{number}/").content.decode()
    assert f"/bookings/{number}/print/" in detail and "当日お持ちいただくもの" in detail
    client_a.post(f"/bookings/{number}/cancel/")
    printed = client_a.get(f"/bookings/{number}/print/")
    assert printed.status_code == 302 and printed["Location"] == f"/bookings/{number}/"
    detail = client_a.get(f"/bookings/{number}/").content.decode()
    assert "この予約は取り消されています" in detail
    assert f"/bookings/{number}/print/" not in detail and "当日お持ちいただくもの" not in detail
    for page in (f"/bookings/{number}/cancel/", f"/bookings/{number}/change/"):
        back = client_a.get(page, follow=True).content.decode()
        assert back.count("この予約は取り消されています") == 1 and "締切を過ぎた" not in back
    done = client_a.get(f"/bookings/{number}/done/", follow=True).content.decode()
    assert "予約が完了しました" not in done and "この予約は取り消されています" in done


def test_a_booking_put_off_at_the_venue_says_so_not_cancelled(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    with tenant_context(world_a.municipality):
        Booking.objects.filter(pk=booking.pk).update(
            status=Booking.Status.CANCELLED,
            cancelled_at=timezone.now(),
            cancel_reason=Booking.CancelReason.DEFERRED,
        )
    detail = client_a.get(f"/bookings/{booking.booking_number}/").content.decode()
    assert "（接種見合わせ）" in detail and "予診の結果、この予約の接種は見合わせ" in detail
    assert "この予約は取り消されています" not in detail


def test_a_booking_the_municipality_called_off_is_said_so_with_its_words(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """A slot cancelled by the municipality: my page does not just say "no booking", and
    the booking's page says why, with what the municipality wrote to its residents."""
    from booking.services.notifications import contact_preferences_update
    from booking.services.planning import slot_cancel

    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    booking = _book(client_a, slot, world_a.municipality)
    with tenant_context(world_a.municipality):
        contact_preferences_update(
            voucher=resident_a.voucher,
            email="hanako@example.jp",
            phone=None,
            channels=["email"],
            language="ja",
            actor=Actor.resident(resident_a.voucher.pk),
            ip=None,
        )
        slot_cancel(slot=slot, actor=Actor(Actor.STAFF, "1"), notice="医師の急病のため")
        assert Booking.objects.get(pk=booking.pk).called_off
    mypage = client_a.get("/mypage/").content.decode()
    called_off = mypage.split('id="called-off"')[1].split("</div>")[0]
    assert (
        "小平市の都合により" in called_off
        and booking_number_display(booking.booking_number) in called_off
        and "小平市からのお知らせ：医師の急病のため" in called_off
    )
    detail = client_a.get(f"/bookings/{booking.booking_number}/").content.decode()
    assert "小平市の都合により、この予約の枠は中止となり" in detail
    assert "（医師の急病のため）" in detail
    assert "この予約は取り消されています" not in detail
    # Booked again for that dose: nothing left to point out — nor once that new booking is
    # cancelled by the resident (the page would read as if the city had cancelled it).
    again = _book(client_a, world_a.slot(4, 10), world_a.municipality)
    assert 'id="called-off"' not in client_a.get("/mypage/").content.decode()
    client_a.post(f"/bookings/{again.booking_number}/cancel/")
    with tenant_context(world_a.municipality):
        assert Booking.objects.get(pk=again.pk).status == Booking.Status.CANCELLED
    assert 'id="called-off"' not in client_a.get("/mypage/").content.decode()


def test_a_resident_who_could_not_be_told_reads_the_municipality_s_words_too(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """No e-mail or SMS registered: the notice was sent to nobody, and the pages are the
    only place the resident can read why (台風のため), not a message they never got."""
    from booking.services.planning import slot_cancel

    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    booking = _book(client_a, slot, world_a.municipality)
    with tenant_context(world_a.municipality):
        slot_cancel(slot=slot, actor=Actor(Actor.STAFF, "1"), notice="台風の接近のため")
    mypage = client_a.get("/mypage/").content.decode()
    assert "小平市からのお知らせ：台風の接近のため" in mypage
    detail = client_a.get(f"/bookings/{booking.booking_number}/").content.decode()
    assert "（台風の接近のため）" in detail


def test_every_page_says_when_the_call_centre_answers(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    with tenant_context(world_a.municipality):
        policy = BookingPolicy.current()
        policy.call_centre_phone = "042-346-9500"
        policy.save()
    assert 'id="call-centre-hours"' not in client_a.get("/login/").content.decode()
    with tenant_context(world_a.municipality):
        policy = BookingPolicy.current()
        policy.call_centre_hours = "毎日 9:00〜17:00（土日祝も受付）"
        policy.save()
    logged_in(client_a, resident_a)
    for url in ("/login/", "/mypage/"):
        text = client_a.get(url).content.decode()
        assert "受付時間：毎日 9:00〜17:00（土日祝も受付）" in text, url


def test_a_page_asked_for_before_logging_in_is_opened_after_it(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """A link kept from before (the confirmation's print page, a bookmark, a reminder)."""
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    client_a.post("/logout/")
    print_url = f"/bookings/{booking.booking_number}/print/"
    asked = client_a.get(print_url)
    assert asked.status_code == 302 and asked["Location"] == "/"
    response = login_dob(client_a, resident_a)
    assert response.status_code == 302 and response["Location"] == print_url
    # Once: the next login goes to my page as usual.
    client_a.post("/logout/")
    assert login_dob(client_a, resident_a)["Location"] == "/mypage/"


def test_a_page_of_someone_else_s_booking_asked_for_before_logging_in_is_not_opened(
    client_a: Client, world_a: World, resident_a: Resident, neighbour_a: Resident
) -> None:
    """One phone for a couple: the first logs out, Back reaches their booking's page (the
    login is asked for), the second logs in: my page, not a page not found."""
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    client_a.post("/logout/")
    assert client_a.get(f"/bookings/{booking.booking_number}/print/")["Location"] == "/"
    assert login_dob(client_a, neighbour_a)["Location"] == "/mypage/"


def test_a_slot_cancelled_while_its_confirmation_was_open_is_said_so(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """The municipality cancelled the slot (a typhoon) while the resident was choosing: the
    confirmation and its 予約する say so and lead back to the dates, not a page not found."""
    from booking.services.planning import slot_cancel

    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    assert client_a.get(f"/book/slot/{slot.pk}/").status_code == 200
    with tenant_context(world_a.municipality):
        slot_cancel(slot=slot, actor=Actor(Actor.STAFF, "1"))
    for response in (
        client_a.get(f"/book/slot/{slot.pk}/"),
        client_a.post(f"/book/slot/{slot.pk}/"),
    ):
        assert response.status_code == 410
        text = response.content.decode()
        assert "中止になったか受付を停止したため" in text and 'href="/book/"' in text
    assert _bookings(world_a.municipality, resident_a) == []


def test_the_confirmation_says_the_deadline_before_booking(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    later = world_a.slot(10, 10)
    page_text = client_a.get(f"/book/slot/{later.pk}/").content.decode()
    closes = timezone.localtime(later.starts_at) - timedelta(hours=24)
    deadline = page_text.split('id="confirm-deadline"')[1].split("</p>")[0]
    assert f"{closes.year}年{closes.month}月{closes.day}日" in deadline
    assert 'class="help deadline"' in page_text  # days away: said, not alarmed
    # Its cut-off within the day (whatever the hour the test runs at).
    starts = timezone.localtime(timezone.now() + timedelta(hours=36))
    tomorrow = world_a.slot((starts.date() - timezone.localdate()).days, starts.hour)
    soon = client_a.get(f"/book/slot/{tomorrow.pk}/").content.decode()
    assert 'class="notice-box deadline" id="confirm-deadline"' in soon


def test_a_change_to_another_vaccine_is_said_before_it_is_made(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    with tenant_context(world_a.municipality):
        moderna = VaccineProduct.objects.create(
            code="moderna", name="モデルナ社ワクチン", interval_days=28, doses_in_series=2
        )
        world_a.north.products.add(moderna)
    other = world_a.slot(4, 10, venue=world_a.north, product=moderna)
    same = world_a.slot(4, 11)
    url = f"/bookings/{booking.booking_number}/change/slot/"
    page_text = client_a.get(f"{url}{other.pk}/").content.decode()
    assert "ワクチンの種類が変わります（ファイザー社ワクチン → モデルナ社ワクチン）" in page_text
    assert 'id="product-changes"' not in client_a.get(f"{url}{same.pk}/").content.decode()
    # Filtering by the booked vaccine at a venue that does not give it: said so.
    with tenant_context(world_a.municipality):
        world_a.north.products.remove(world_a.pfizer)
    dates = client_a.get(
        f"/bookings/{booking.booking_number}/change/?product=pfizer&venue={world_a.north.pk}"
    ).content.decode()
    assert "この会場では、絞り込んでいる種類のワクチンの接種を行っていません" in dates


def test_all_vaccines_chosen_for_a_change_stays_chosen_along_its_links(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """Changing a Pfizer booking with 「すべてのワクチン」 chosen: the days and venues it lists
    lead to pages that still show every vaccine, not back to the booked one (which found
    nothing at a Moderna-only venue the page before had just offered)."""
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    with tenant_context(world_a.municipality):
        moderna = VaccineProduct.objects.create(
            code="moderna", name="モデルナ社ワクチン", interval_days=28, doses_in_series=2
        )
        world_a.north.products.set([moderna])
    other = world_a.slot(4, 10, venue=world_a.north, product=moderna)
    change = f"/bookings/{booking.booking_number}/change/"
    day = timezone.localtime(other.starts_at).date().isoformat()

    def link_to(page_text: str, path: str) -> str:
        start = page_text.index(f'href="{path}')
        return html.unescape(page_text[start + 6 : page_text.index('"', start + 6)])

    # By day: the day's link, then the day's page.
    dates = client_a.get(change, {"product": ""}).content.decode()
    day_page = client_a.get(link_to(dates, f"{change}{day}/")).content.decode()
    assert f"/change/slot/{other.pk}/" in day_page
    # The slot's confirmation, and its way back to the days, still show every vaccine.
    confirm = client_a.get(link_to(day_page, f"{change}slot/{other.pk}/")).content.decode()
    back = link_to(confirm, change + "?")
    assert "product=" in back and "product=pfizer" not in back
    # By venue: the venues' list, then the venue's days.
    venues = client_a.get(f"{change}venues/", {"product": ""}).content.decode()
    venue_days = client_a.get(link_to(venues, f"{change}?")).content.decode()
    assert "絞り込んでいる種類のワクチンの接種を行っていません" not in venue_days
    assert f"{change}{day}/" in venue_days
    # Without a choice, the change starts from the booked vaccine, as before.
    assert f"{change}{day}/" not in client_a.get(change).content.decode()


def test_the_deadline_for_changes_is_shown_and_the_done_page_says_what_is_sent(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    closes = timezone.localtime(booking.slot.starts_at) - timedelta(hours=24)
    deadline = f"{closes.year}年{closes.month}月{closes.day}日"
    done = client_a.get(f"/bookings/{booking.booking_number}/done/").content.decode()
    assert f"変更・取消は {deadline}" in done and f"{closes:%H:%M} まで" in done
    assert "お知らせ先が登録されていないため" in done and 'href="/contact/"' in done
    for page in ("/mypage/", f"/bookings/{booking.booking_number}/"):
        assert f"変更・取消は {deadline}" in client_a.get(page).content.decode()
    with tenant_context(world_a.municipality):
        ContactPreference.objects.create(voucher_id=resident_a.pk, email=b"sealed")
    done = client_a.get(f"/bookings/{booking.booking_number}/done/").content.decode()
    assert "受け取り方が選ばれていないため" in done  # an address, but no channel chosen
    with tenant_context(world_a.municipality):
        ContactPreference.objects.filter(voucher_id=resident_a.pk).update(
            email_consented_at=timezone.now()
        )
    done = client_a.get(f"/bookings/{booking.booking_number}/done/").content.decode()
    assert "登録されたお知らせ先にお送りします" in done


def test_after_the_cut_off_change_and_cancel_go_to_the_call_centre(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    with tenant_context(world_a.municipality):
        Slot.objects.filter(pk=booking.slot_id).update(
            starts_at=at(0, 23, 0), ends_at=at(0, 23, 30)
        )
    detail = client_a.get(f"/bookings/{booking.booking_number}/").content.decode()
    assert "/cancel/" not in detail and "コールセンター" in detail
    response = client_a.post(f"/bookings/{booking.booking_number}/cancel/", follow=True)
    assert "締切を過ぎたため" in response.content.decode()
    assert _bookings(world_a.municipality, resident_a)[0].status == "active"


def test_a_booking_sent_twice_shows_the_booking_it_made_both_times(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """A double click, or the form sent again from the browser's history: the first one
    booked, the second finds that booking and shows it, instead of a refusal that reads as
    if nothing had been booked."""
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10, web=2)
    booking = _book(client_a, slot, world_a.municipality)
    again = client_a.post(f"/book/slot/{slot.pk}/")
    assert again.status_code == 302
    assert again["Location"] == f"/bookings/{booking.booking_number}/done/"
    assert (
        booking_number_display(booking.booking_number)
        in client_a.get(again["Location"]).content.decode()
    )
    assert len(_bookings(world_a.municipality, resident_a)) == 1
    with tenant_context(world_a.municipality):
        assert Slot.objects.get(pk=slot.pk).booked_web == 1
    # Another slot, with the booking already made: still refused, saying why.
    other = client_a.post(f"/book/slot/{world_a.slot(5, 10).pk}/")
    assert other.status_code == 409
    assert "すでにご予約があります" in other.content.decode()
    # Once cancelled, the same slot is booked anew, with a new number.
    client_a.post(f"/bookings/{booking.booking_number}/cancel/")
    rebooked = _book(client_a, slot, world_a.municipality)
    assert rebooked.booking_number != booking.booking_number


def test_a_press_on_a_full_slot_is_answered_without_the_booking_transaction(
    client_a: Client, world_a: World, resident_a: Resident, neighbour_a: Resident
) -> None:
    """Most presses in a rush are on a slot already full: answered from the slot as read
    for the request (no voucher lock, no claim), the same way the service would answer."""
    logged_in(client_a, resident_a)
    last_place = world_a.slot(4, 11, web=1)
    neighbour = Client(HTTP_HOST="kodaira.localhost")
    login_dob(neighbour, neighbour_a)
    taken = _book(neighbour, last_place, world_a.municipality)
    # The one who took it, pressing again: their booking, not "full".
    again = neighbour.post(f"/book/slot/{last_place.pk}/")
    assert again["Location"] == f"/bookings/{taken.booking_number}/done/"
    with CaptureQueriesContext(connection) as queries:
        refused = client_a.post(f"/book/slot/{last_place.pk}/")
    assert refused.status_code == 409
    text = refused.content.decode()
    assert "満員" in text and "のほかの会場と時間" in text
    statements = [q["sql"] for q in queries.captured_queries]
    assert not any("FOR UPDATE" in sql for sql in statements)
    assert not any(sql.startswith("UPDATE booking_slot") for sql in statements)
    assert _bookings(world_a.municipality, resident_a) == []


def test_back_on_the_slot_just_booked_says_it_is_booked_not_refused(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """The Back button after booking shows the confirmation of the slot just booked: it
    says the slot is booked (the number, the way to it), not 「いまは予約できません」."""
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    booking = _book(client_a, slot, world_a.municipality)
    back = client_a.get(f"/book/slot/{slot.pk}/")
    assert back.status_code == 200
    text = back.content.decode()
    assert "この予約枠はご予約済みです" in text and "いまは予約できません" not in text
    assert booking_number_display(booking.booking_number) in text.split('id="booked-here"')[1]
    assert f'href="/bookings/{booking.booking_number}/"' in text
    other = client_a.get(f"/book/slot/{world_a.slot(5, 10).pk}/").content.decode()
    assert "いまは予約できません" in other and 'id="booked-here"' not in other


def test_a_press_after_the_session_ended_comes_back_to_the_same_slot_after_login(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """予約する pressed with the session gone (timed out, ended in another tab): nothing is
    booked, and logging in again goes back to that slot's confirmation (with the day's
    filters), not to my page, to press again."""
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    client_a.cookies.pop("sessionid")
    pressed = client_a.post(f"/book/slot/{slot.pk}/?area=%E4%B8%AD%E5%A4%AE")
    assert pressed.status_code == 302 and pressed["Location"] == "/"
    assert (
        "いまの操作（予約・変更・取消など）は行われていません" in client_a.get("/").content.decode()
    )
    again = login_dob(client_a, resident_a)
    assert again["Location"] == f"/book/slot/{slot.pk}/?area=%E4%B8%AD%E5%A4%AE"
    assert _bookings(world_a.municipality, resident_a) == []
    # A press on a page that has no page at its address (logging out) is not resumed.
    client_a.cookies.pop("sessionid")
    client_a.post("/logout/")
    assert login_dob(client_a, resident_a)["Location"] == "/mypage/"


def test_the_confirmation_and_the_booking_say_how_to_get_there_and_the_accessibility(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    with tenant_context(world_a.municipality):
        Venue.objects.filter(pk=world_a.civic.pk).update(
            access_notes="市役所前バス停から徒歩1分", accessibility="車いすで入れます"
        )
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    confirm = client_a.get(f"/book/slot/{slot.pk}/").content.decode()
    assert "<dt>交通案内</dt><dd>市役所前バス停から徒歩1分</dd>" in confirm
    assert "<dt>バリアフリー情報</dt><dd>車いすで入れます</dd>" in confirm
    booking = _book(client_a, slot, world_a.municipality)
    done = client_a.get(f"/bookings/{booking.booking_number}/done/").content.decode()
    assert "<dt>バリアフリー情報</dt><dd>車いすで入れます</dd>" in done


def test_a_day_empty_under_the_filters_says_to_change_them(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """A day whose slots are all in another area: "pick another day" would never help while
    the area stays chosen; the page says to change the filters too."""
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)  # at the civic centre (中央地区) only that day
    world_a.slot(4, 10, venue=world_a.north)  # 北地区 has slots another day
    day = timezone.localtime(slot.starts_at).date().isoformat()
    page = client_a.get(f"/book/{day}/", {"area": "北地区"}).content.decode()
    said = page.split('id="no-venues"')[1].split("</p>")[0]
    assert "地区やワクチンの絞り込みを変えるか" in said
    unfiltered = client_a.get(f"/book/{day}/").content.decode()
    assert 'id="no-venues"' not in unfiltered and "小平市役所" in unfiltered
    # A day with no slot at all, every vaccine chosen (product=, as the filters' links
    # write it): nothing to change in the filters, only another day to pick.
    empty_day = (timezone.localtime(slot.starts_at) + timedelta(days=2)).date().isoformat()
    empty = client_a.get(f"/book/{empty_day}/", {"area": "", "product": ""}).content.decode()
    told = empty.split('id="no-venues"')[1].split("</p>")[0]
    assert "この日に予約できる会場はありません。ほかの日を選んでください。" in told
    # The dates say until when booking, changing and cancelling are open.
    dates = client_a.get("/book/").content.decode()
    closing = dates.split('id="closing-time"')[1].split("</p>")[0]
    assert "予約・変更・取消は、接種開始の24時間前までです" in closing


def test_one_booking_at_a_time(client_a: Client, world_a: World, resident_a: Resident) -> None:
    logged_in(client_a, resident_a)
    made = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    page = client_a.get("/book/")
    assert "すでにご予約があります" in page.content.decode()
    # Which booking: its number, linked (a resident back on a page after booking).
    live = page.content.decode().split('id="live-bookings"')[1].split("</section>")[0]
    assert booking_number_display(made.booking_number) in live
    assert f"/bookings/{made.booking_number}/" in live
    assert 'id="not-booked"' not in page.content.decode()
    # A second phone's 予約する: refused, and said plainly that it booked nothing.
    refused = client_a.post(f"/book/slot/{world_a.slot(5, 10).pk}/")
    assert refused.status_code == 409
    assert "いま選んだ予約枠は、予約していません。" in refused.content.decode()
    assert len(_bookings(world_a.municipality, resident_a)) == 1
    # Once cancelled, the booking's page leads to booking again.
    client_a.post(f"/bookings/{made.booking_number}/cancel/")
    detail = client_a.get(f"/bookings/{made.booking_number}/").content.decode()
    assert 'id="book-again"' in detail and 'href="/book/"' in detail


def test_a_days_slots_are_made_once_for_everyone_and_again_when_a_mark_changes(
    client_a: Client,
    world_a: World,
    resident_a: Resident,
    neighbour_a: Resident,
    django_capture_on_commit_callbacks: Any,
) -> None:
    slot = world_a.slot(4, 10, web=1)
    day_url = f"/book/{slot.starts_at.astimezone(at(0).tzinfo).date().isoformat()}/"
    logged_in(client_a, resident_a)
    neighbour = Client(HTTP_HOST="kodaira.localhost")
    logged_in(neighbour, neighbour_a)
    made = _day_venues_html.cache_info().misses
    first = client_a.get(day_url).content.decode()
    second = neighbour.get(day_url).content.decode()
    assert _day_venues_html.cache_info().misses == made + 1  # made once, shown twice
    link = f'<a class="slot" href="/book/slot/{slot.pk}/">'
    assert link in first and link in second
    # The neighbour takes the last place: the mark changes, and so does the list, at once.
    with django_capture_on_commit_callbacks() as after_commit:
        _book(neighbour, slot, world_a.municipality)
    with tenant_context(world_a.municipality):  # as at the booking's commit: marks dropped
        for callback in after_commit:
            callback()
    after = client_a.get(day_url).content.decode()
    assert link not in after
    assert '<span class="slot full"><span class="mark" aria-hidden="true">×</span> 10:00' in after
    assert _day_venues_html.cache_info().misses == made + 2


def test_the_filters_show_what_the_resident_chose_on_each_page(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    civic, north = world_a.slot(4, 10), world_a.slot(4, 11, venue=world_a.north)
    day = civic.starts_at.astimezone(at(0).tzinfo).date().isoformat()
    logged_in(client_a, resident_a)
    everything = client_a.get(f"/book/{day}/").content.decode()
    assert '<option value="" selected>すべての地区</option>' in everything
    assert f'action="/book/{day}/"' in everything
    chosen = client_a.get(f"/book/{day}/?area=北地区").content.decode()
    assert '<option value="北地区" selected>北地区</option>' in chosen
    assert '<option value="" selected>すべての地区</option>' not in chosen
    assert f"/book/slot/{north.pk}/" in chosen and f"/book/slot/{civic.pk}/" not in chosen
    dates = client_a.get("/book/?area=北地区").content.decode()
    assert '<option value="北地区" selected>北地区</option>' in dates
    assert 'action="/book/"' in dates
    # An area that is not offered filters nothing and selects nothing.
    unknown = client_a.get(f"/book/{day}/?area=<b>").content.decode()
    assert f"/book/slot/{civic.pk}/" in unknown and "<b>" not in unknown


def test_what_staff_typed_is_shown_as_text_in_the_days_slots(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    with tenant_context(world_a.municipality):
        VaccineProduct.objects.filter(pk=world_a.pfizer.pk).update(
            name='ファイザー<script>alert("x")</script>&'
        )
    slot = world_a.slot(4, 10)
    logged_in(client_a, resident_a)
    day = slot.starts_at.astimezone(at(0).tzinfo).date().isoformat()
    text = client_a.get(f"/book/{day}/").content.decode()
    assert "<script>alert" not in text
    assert "ファイザー&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in text


def test_a_slot_taken_meanwhile_answers_with_the_days_other_slots(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    taken, free = world_a.slot(4, 11, web=1), world_a.slot(4, 14)
    day = taken.starts_at.astimezone(at(0).tzinfo).date().isoformat()
    listed = client_a.get(f"/book/{day}/").content.decode()  # the day's list, now cached
    assert f'href="/book/slot/{taken.pk}/"' in listed
    with tenant_context(world_a.municipality):  # someone takes the last place meanwhile
        Slot.objects.filter(pk=taken.pk).update(booked_web=1)
    refused = client_a.post(f"/book/slot/{taken.pk}/")
    assert refused.status_code == 409
    text = refused.content.decode()
    assert "この日時・会場では予約できませんでした" in text and 'role="alert"' in text
    assert "満員" in text
    # The slot just refused shows full (the cached list still said otherwise); the day's
    # other slots are there to choose from, with no button to press again.
    assert f'href="/book/slot/{taken.pk}/"' not in text
    assert f'href="/book/slot/{free.pk}/"' in text
    assert f'action="/book/slot/{taken.pk}/"' not in text
    assert "当日お持ちいただくもの" not in text
    assert _bookings(world_a.municipality, resident_a) == []
    # And the resident books the other one from there.
    _book(client_a, free, world_a.municipality)


def test_a_full_slot_says_so_on_its_confirmation_before_any_button(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    slot = world_a.slot(4, 11, web=1)
    with tenant_context(world_a.municipality):
        Slot.objects.filter(pk=slot.pk).update(booked_web=1)
    shown = client_a.get(f"/book/slot/{slot.pk}/").content.decode()
    assert "満員" in shown and f'action="/book/slot/{slot.pk}/"' not in shown


def test_a_change_refused_as_full_lists_the_days_slots_of_the_vaccine_chosen(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """Changing a Pfizer booking to a Moderna slot that fills up meanwhile: the day's other
    slots shown are Moderna's, the vaccine the resident was choosing."""
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    with tenant_context(world_a.municipality):
        moderna = VaccineProduct.objects.create(
            code="moderna", name="モデルナ社ワクチン", interval_days=28, doses_in_series=2
        )
        world_a.civic.products.add(moderna)
    taken = world_a.slot(5, 11, web=1, product=moderna)
    other = world_a.slot(5, 14, product=moderna)
    with tenant_context(world_a.municipality):
        Slot.objects.filter(pk=taken.pk).update(booked_web=1)
    url = f"/bookings/{booking.booking_number}/change/slot/{taken.pk}/"
    refused = client_a.post(url, {"from_slot": booking.slot_id})
    assert refused.status_code == 409
    text = refused.content.decode()
    assert f"/bookings/{booking.booking_number}/change/slot/{other.pk}/" in text


def test_a_change_to_a_slot_past_its_cut_off_does_not_say_it_will_be_made(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    late = world_a.slot(4, 10)
    with tenant_context(world_a.municipality):
        soon = timezone.now() + timedelta(hours=3)
        Slot.objects.filter(pk=late.pk).update(starts_at=soon, ends_at=soon + timedelta(hours=1))
    shown = client_a.get(
        f"/bookings/{booking.booking_number}/change/slot/{late.pk}/"
    ).content.decode()
    assert "この日時の予約受付は終了しました" in shown and "選んだ予約枠" in shown
    assert "次のとおり変更します" not in shown and "変更する</button>" not in shown
    assert "ほかの日にちを選ぶ" in shown


def test_a_refusal_shows_the_booking_services_message(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    with tenant_context(world_a.municipality):  # moved into its last 24 hours: closed
        soon = timezone.now() + timedelta(hours=3)
        Slot.objects.filter(pk=slot.pk).update(starts_at=soon, ends_at=soon + timedelta(hours=1))
        slot.refresh_from_db()
    action = f'action="/book/slot/{slot.pk}/"'
    # The confirmation (an old tab, a link from yesterday) says so before any button.
    shown = client_a.get(f"/book/slot/{slot.pk}/").content.decode()
    assert "この日時の予約受付は終了しました" in shown and action not in shown
    assert "この予約枠はご予約いただけません" in shown
    refused = client_a.post(f"/book/slot/{slot.pk}/")
    assert refused.status_code == 409
    text = refused.content.decode()
    assert "この日時の予約受付は終了しました" in text and 'role="alert"' in text
    day = slot.starts_at.astimezone(at(0).tzinfo).date().isoformat()
    # The way on is another date first (the day's earlier slots are past the cut-off too);
    # the day's later ones are a link away.
    assert "ほかの日にちを選ぶ" in text and 'href="/book/"' in text
    assert f'href="/book/{day}/"' in text and "この日の、もっと遅い時間の枠を見る" in text
    assert action not in text
    assert _bookings(world_a.municipality, resident_a) == []


def test_lines_browser_books_with_lines_places(
    tenant_a: Municipality, world_a: World, resident_a: Resident
) -> None:
    client = Client(HTTP_HOST="kodaira.localhost", HTTP_USER_AGENT=LINE_AGENT)
    logged_in(client, resident_a)
    slot = world_a.slot(3, 10)
    day = timezone.localtime(slot.starts_at).date().isoformat()
    # LINE's places can run out before the web's: the pages say so.
    told = client.get(f"/book/{day}/").content.decode().split('id="line-capacity"')[1]
    # And how else to book: what a browser is, said by name.
    assert "SafariやChromeなどのブラウザでこの予約サイトを開くか" in told.split("</p>")[0]
    assert (
        'id="line-capacity"' not in Client(HTTP_HOST="kodaira.localhost").get("/").content.decode()
    )
    booking = _book(client, slot, world_a.municipality)
    assert booking.channel == "line"
    # LINE's browser does not print: the done page says to save the screen instead.
    done = client.get(f"/bookings/{booking.booking_number}/done/").content.decode()
    assert "スクリーンショット" in done and "印刷" not in done
    for path in ("/mypage/", f"/bookings/{booking.booking_number}/"):
        assert "印刷" not in client.get(path).content.decode().split("<main")[1], path


def test_the_rich_menu_entry_marks_the_session_as_line_through_login(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    assert client_a.get("/line/")["Location"] == "/"
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    assert booking.channel == "line"


def test_slots_without_places_for_the_channel_are_not_offered(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    phone_only = world_a.slot(3, 10, web=0, line=0, call_centre=5)
    # Reached by its address (an old link, or its places moved to the phone since the page
    # was opened): said so, with the way back to the dates; nothing is booked.
    for response in (
        client_a.get(f"/book/slot/{phone_only.pk}/"),
        client_a.post(f"/book/slot/{phone_only.pk}/"),
    ):
        assert response.status_code == 410
        assert "このサイトから予約できる枠がありません" in response.content.decode()
    assert _bookings(world_a.municipality, resident_a) == []
    assert client_a.get("/book/slot/999999/").status_code == 404  # a slot that never was


def test_contact_details_are_entered_again_and_never_shown(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    page = client_a.get("/contact/").content.decode()
    assert "未登録" in page
    # A municipality without LINE offers neither the link nor LINE as a choice.
    assert "/contact/line/link/" not in page and 'value="line"' not in page
    assert "LINE" not in client_a.get("/mypage/").content.decode()
    with tenant_context(world_a.municipality):
        line_channel_configure(
            login_channel_id="1650000000",
            login_channel_secret="s" * 32,
            messaging_access_token="t" * 40,
            actor=Actor.system("tests"),
            ip=None,
        )
    page = client_a.get("/contact/").content.decode()
    assert 'action="/contact/line/link/"' in page  # linking LINE starts here, by a POST
    assert 'value="line"' not in page  # a choice once an account is linked
    assert "未連携" in client_a.get("/mypage/").content.decode()
    invalid = client_a.post(
        "/contact/", {"email": "", "phone": "", "channels": ["email"], "language": "ja"}
    )
    assert invalid.status_code == 400
    refused = invalid.content.decode()
    assert 'id="id_email_error"' in refused
    # Announced above the form, and the first wrong box takes the focus.
    assert '<p class="error" role="alert" id="form-errors">' in refused
    assert "autofocus" in refused.split('name="email"')[1].split(">")[0]
    saved = client_a.post(
        "/contact/",
        {
            "email": "hanako.kodaira@example.jp",
            "phone": "090-1234-5678",
            "channels": ["email", "sms"],
            "language": "ja",
        },
    )
    assert saved.status_code == 302 and saved["Location"] == "/mypage/"
    for url in ("/mypage/", "/contact/"):
        text = client_a.get(url).content.decode()
        assert "登録済み" in text
        assert "hanako.kodaira" not in text and "1234" not in text
    with tenant_context(world_a.municipality):
        preference = ContactPreference.objects.get(voucher_id=resident_a.pk)
        assert preference.consented_channels() == ["email", "sms"]
    assert events(world_a.municipality, "notification.preferences_updated")
    # A phone number entered alone removes the e-mail address: the page says so.
    phone_only = client_a.post(
        "/contact/",
        {"email": "", "phone": "090-1234-5678", "channels": ["sms"], "language": "ja"},
        follow=True,
    ).content.decode()
    assert "メールアドレス：登録なし／携帯電話番号：登録あり" in phone_only
    assert "（空欄にしたメールアドレスは削除しました）" in phone_only
    # In English, one sentence with its parts apart and the item in lower case.
    client_a.cookies["django_language"] = "en"
    english = client_a.post(
        "/contact/",
        {"email": "", "phone": "", "channels": [], "language": "en"},
        follow=True,
    ).content.decode()
    assert "Email address: not registered; mobile phone number: not registered." in english
    assert "(the mobile phone number left empty was deleted)" in english


def test_a_malformed_booking_number_in_the_address_is_not_found(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    number = booking.booking_number
    # Typed with the printed hyphen and in lower case: still the resident's booking.
    assert client_a.get(f"/bookings/{booking_number_display(number).lower()}/").status_code == 200
    for bad in (f"{number[:5]}%00{number[5:]}", number[:9], f"{number}X", "%E3%81%82" * 10):
        assert client_a.get(f"/bookings/{bad}/").status_code == 404, bad


def test_a_change_shows_the_booking_it_changes_and_not_its_own_slot_as_a_change(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    later = world_a.slot(5, 14, venue=world_a.north)
    base = f"/bookings/{booking.booking_number}/change/"
    page = client_a.get(f"{base}slot/{later.pk}/").content.decode()
    changing_from = page.split('id="changing-from"')[1].split("</p>")[0]
    assert (
        "いまのご予約" in changing_from
        and "10:00" in changing_from
        and "小平市役所" in changing_from
    )
    assert "変更後" in page and "北部集会所" in page and "変更する</button>" in page
    same = client_a.get(f"{base}slot/{booking.slot_id}/").content.decode()
    assert "いまのご予約と同じ日時・会場です" in same and "変更する</button>" not in same
    assert "変更後" not in same and "ご予約いただけません" not in same  # not a refusal


def test_my_page_says_when_the_next_dose_can_be_booked(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    earliest = timezone.localtime(booking.slot.starts_at).date() + timedelta(days=19)
    text = client_a.get("/mypage/").content.decode()
    next_dose = text.split('id="next-dose">')[1].split("</p>")[0]
    assert (
        "2回目（ファイザー社ワクチン）は、1回目の接種が済んだあとで予約できます（いまはまだ予約できません）"
        in next_dose
    )
    assert f"{earliest.year}年{earliest.month}月{earliest.day}日" in next_dose
    # Said as the date is counted: the dose's day plus the interval, not "days left between".
    assert "1回目の接種日の19日後から" in next_dose


def test_the_top_page_says_who_may_book_now_and_from_when_the_others_may(
    client_a: Client, world_a: World
) -> None:
    from booking.models import AgePhase

    with tenant_context(world_a.municipality):
        AgePhase.objects.create(
            name="一般", minimum_age=16, opens_at=timezone.now() + timedelta(days=40)
        )
        opens = timezone.localtime(AgePhase.objects.get(minimum_age=12).opens_at)
    text = client_a.get("/").content.decode()
    now, later = text.split("いま予約できる方")[1].split("これから予約できる方")
    assert "<strong>65歳以上</strong><br>" in now  # the name says the age: said once
    assert "（65歳以上の方）" not in now and "12歳以上" not in now
    assert "<strong>一般</strong>（16歳以上の方）" in later
    # With its weekday, as the phases open now say when they opened.
    weekday = "月火水木金土日"[opens.weekday()]
    assert f"{opens:%Y年%-m月%-d日}（{weekday}）{opens:%H:%M}から受付開始" in later


def test_a_day_of_many_venues_starts_with_a_list_that_jumps_to_each(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    from booking.models import Venue

    logged_in(client_a, resident_a)
    with tenant_context(world_a.municipality):
        third = Venue.objects.create(name="南公民館", area="南地区", address="小平市南町1-1")
        third.products.add(world_a.pfizer)
    two = timezone.localtime(world_a.slot(3, 10).starts_at).date().isoformat()
    world_a.slot(3, 11, venue=world_a.north)
    three = timezone.localtime(world_a.slot(4, 10).starts_at).date().isoformat()
    world_a.slot(4, 11, venue=world_a.north)
    world_a.slot(4, 12, venue=third)
    text = client_a.get(f"/book/{two}/").content.decode()
    assert "この日の会場" not in text  # two venues: nothing to jump over
    text = client_a.get(f"/book/{three}/").content.decode()
    jump = text.split('id="venue-jump-heading"')[1].split("</nav>")[0]
    assert f'href="#venue-{third.pk}">南公民館</a>（南地区）' in jump
    assert f'id="venue-{third.pk}"' in text
    # After each venue's slots (a long day), the way back to the list.
    assert text.count('href="#venue-jump-heading"') == 3


def test_a_change_shows_the_booking_among_the_days_slots_without_offering_it(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    other = world_a.slot(3, 14)
    day = timezone.localtime(booking.slot.starts_at).date().isoformat()
    base = f"/bookings/{booking.booking_number}/change/"
    dates = client_a.get(base).content.decode()  # the change starts by saying what it changes
    now = dates.split('id="changing-now"')[1].split("</p>")[0]
    assert "10:00" in now and "小平市役所" in now
    page = client_a.get(f"{base}{day}/").content.decode()
    own = page.split('class="slot own"')[1].split("</li>")[0]
    assert "10:00" in own and "いまのご予約" in own
    assert "★</span> いまのご予約" in page.split('class="legend"')[1].split("</p>")[0]
    assert f'href="{base}slot/{booking.slot_id}/' not in page  # not offered as a change
    assert f'href="{base}slot/{other.pk}/?' in page  # its link carries the filters
    # Booking afresh (not changing), nothing is marked as the resident's.
    assert 'class="slot own"' not in client_a.get(f"/book/{day}/").content.decode()


def test_a_change_marks_the_day_of_the_booking_among_the_days(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    world_a.slot(3, 14)
    world_a.slot(5, 10)
    days = client_a.get(f"/bookings/{booking.booking_number}/change/").content.decode()
    items = days.split('<ul class="days">')[1].split("</ul>")[0].split("<li>")[1:]
    marked = [item for item in items if "（いまのご予約の日）" in item]
    day = timezone.localtime(booking.slot.starts_at).date().isoformat()
    assert len(items) == 2 and len(marked) == 1 and f"/{day}/" in marked[0]
    assert '<span class="mark" aria-hidden="true">★</span>' in marked[0]
    assert "いまのご予約の日" not in client_a.get("/book/").content.decode()


def test_my_page_says_when_the_booked_slot_starts_and_ends(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    mypage = client_a.get("/mypage/").content.decode()
    start = timezone.localtime(booking.slot.starts_at).strftime("%H:%M")
    end = timezone.localtime(booking.slot.ends_at).strftime("%H:%M")
    assert f"{start}〜{end}" in mypage.split('class="panel booking"')[1]
    # The call centre's number, in the footer of every page, is a link to tap.
    assert '<a class="tel" href="tel:' in mypage.split('class="site-footer"')[1]


def test_the_messages_language_changes_without_entering_the_addresses_again(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    client_a.post(
        "/contact/",
        {"email": "hanako.kodaira@example.jp", "phone": "", "channels": ["email"]},
    )
    page = client_a.get("/contact/").content.decode()
    assert 'name="language_only"' in page
    changed = client_a.post("/contact/", {"language_only": "1", "language": "en"})
    assert changed.status_code == 302 and changed["Location"] == "/mypage/"
    assert "お知らせの言語を保存しました" in client_a.get("/mypage/").content.decode()
    with tenant_context(world_a.municipality):
        preference = ContactPreference.objects.get(voucher_id=resident_a.pk)
        assert preference.language == "en"
        assert preference.consented_channels() == ["email"]  # the address stays registered
    (updated,) = events(world_a.municipality, "notification.language_updated")
    assert updated.details == {"language": "en"}
    refused = client_a.post("/contact/", {"language_only": "1", "language": "fr"})
    assert refused.status_code == 400
    with tenant_context(world_a.municipality):
        assert ContactPreference.objects.get(voucher_id=resident_a.pk).language == "en"


def test_a_cancel_page_shown_before_a_change_does_not_cancel_the_moved_booking(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """The cancel page left open (a grandchild's phone) while the booking moved (the call
    centre, another tab): pressing it cancels nothing and shows the booking as it is now."""
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    later = world_a.slot(4, 10)
    cancel_url = f"/bookings/{booking.booking_number}/cancel/"
    shown = client_a.get(cancel_url).content.decode()
    assert f'name="from_slot" value="{booking.slot_id}"' in shown
    base = f"/bookings/{booking.booking_number}/change/"
    assert (
        client_a.post(f"{base}slot/{later.pk}/", {"from_slot": booking.slot_id}).status_code == 302
    )
    stale = client_a.post(cancel_url, {"from_slot": booking.slot_id})
    assert stale.status_code == 409
    text = stale.content.decode()
    assert "この画面を開いたあとに日時・会場が変更されています" in text
    assert f'name="from_slot" value="{later.pk}"' in text  # the page now shows the new slot
    (now,) = _bookings(world_a.municipality, resident_a)
    assert now.status == Booking.Status.ACTIVE and now.slot_id == later.pk
    assert client_a.post(cancel_url, {"from_slot": later.pk}).status_code == 302
    (now,) = _bookings(world_a.municipality, resident_a)
    assert now.status == Booking.Status.CANCELLED


def test_a_change_confirmed_from_a_page_shown_before_another_change_is_refused(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """Two tabs (or the call centre meanwhile): the older confirmation does not move the
    booking again; it says where the booking is now."""
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    first, second = world_a.slot(4, 10), world_a.slot(5, 10)
    base = f"/bookings/{booking.booking_number}/change/"
    confirm = client_a.get(f"{base}slot/{second.pk}/").content.decode()
    assert f'name="from_slot" value="{booking.slot_id}"' in confirm
    moved = client_a.post(f"{base}slot/{first.pk}/", {"from_slot": booking.slot_id})
    assert moved.status_code == 302
    stale = client_a.post(f"{base}slot/{second.pk}/", {"from_slot": booking.slot_id})
    text = stale.content.decode()
    assert "この画面を開いたあとに変更されています" in text
    (now,) = _bookings(world_a.municipality, resident_a)
    assert now.slot_id == first.pk


def test_a_day_gone_by_is_said_to_be_one(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """Yesterday's page (a tab left open): the day has passed, not "too young" (the age
    window starts today for everyone)."""
    logged_in(client_a, resident_a)
    yesterday = timezone.localdate() - timedelta(days=1)
    page = client_a.get(f"/book/{yesterday.isoformat()}/").content.decode()
    assert "この日はすでに過ぎています" in page.split('id="day-passed"')[1].split("</div>")[0]
    assert 'id="too-early"' not in page and "年齢" not in page.split("<main")[1]
    today = client_a.get(f"/book/{timezone.localdate().isoformat()}/").content.decode()
    assert 'id="day-passed"' not in today


def test_a_day_too_soon_after_the_previous_dose_offers_no_slots_and_says_from_when(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """Dose 1 given today: a day within the 19 days shows no slots (each would be refused),
    and says from which day dose 2 may be booked; that day shows its slots."""
    from booking.models import VaccinationRecord

    today = timezone.localdate()
    with tenant_context(world_a.municipality):
        VaccinationRecord.objects.create(
            voucher=resident_a.voucher,
            dose=1,
            product=world_a.pfizer,
            lot_number="AB1234",
            vaccinated_on=today,
            venue_name="小平市役所",
            actor_kind="staff",
            actor_id="1",
        )
    too_soon = world_a.slot(12, 10)
    allowed = world_a.slot(19, 10)
    logged_in(client_a, resident_a)
    page = client_a.get(f"/book/{(today + timedelta(days=12)).isoformat()}/").content.decode()
    told = page.split('id="too-early"')[1].split("</div>")[0]
    first = today + timedelta(days=19)
    assert "前の接種からの間隔が足りないため予約できません" in told
    assert f"{first.year}年{first.month}月{first.day}日" in told
    assert f"/book/slot/{too_soon.pk}/" not in page
    page = client_a.get(f"/book/{first.isoformat()}/").content.decode()
    assert 'id="too-early"' not in page and f"/book/slot/{allowed.pk}/" in page


def test_residents_are_promised_reminders_only_while_the_municipality_sends_them(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    from booking.models import NotificationSettings

    logged_in(client_a, resident_a)
    contact = client_a.get("/contact/").content.decode()
    assert "接種日の前日にお知らせを送ります" in contact
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    done = client_a.get(f"/bookings/{booking.booking_number}/done/").content.decode()
    assert "前日のお知らせが届きます" in done
    with tenant_context(world_a.municipality):
        NotificationSettings.objects.update_or_create(
            pk=NotificationSettings.SINGLETON_ID, defaults={"reminders_enabled": False}
        )
    contact = client_a.get("/contact/").content.decode()
    assert "前日" not in contact and "予約の完了・変更・取消のお知らせを送ります" in contact
    done = client_a.get(f"/bookings/{booking.booking_number}/done/").content.decode()
    assert "前日" not in done.split("<main")[1]
    assert "予約の内容のお知らせが届きます" in done


def test_my_page_says_when_the_call_centre_cancelled_a_booking(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """After a complaint ("someone cancelled my booking"): a cancellation the resident did
    not make is on my page, with when, until they book that dose again."""
    from booking.services.booking import booking_cancel

    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    with tenant_context(world_a.municipality):
        booking_cancel(booking=booking, channel="call_centre", actor=Actor(Actor.STAFF, "7"))
    page = client_a.get("/mypage/").content.decode()
    told = page.split('id="cancelled-by-staff"')[1].split("</div>")[0]
    assert "コールセンターで取り消されました" in told
    assert booking_number_display(booking.booking_number) in told and "に取消" in told
    # Booked again: nothing more to say.
    _book(client_a, world_a.slot(4, 10), world_a.municipality)
    assert 'id="cancelled-by-staff"' not in client_a.get("/mypage/").content.decode()


def test_my_page_says_nothing_of_a_cancellation_the_resident_made(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    booking = _book(client_a, world_a.slot(3, 10), world_a.municipality)
    cancel = f"/bookings/{booking.booking_number}/cancel/"
    assert client_a.post(cancel, {"from_slot": str(booking.slot_id)}).status_code == 302
    assert 'id="cancelled-by-staff"' not in client_a.get("/mypage/").content.decode()


def test_with_an_opening_time_the_dates_say_when_new_days_open(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    """From 9:00 each day the day 28 days on opens, all its slots together: before 9:00 the
    dates end the day before it, and the page says when the next day opens."""
    with tenant_context(world_a.municipality):
        policy = BookingPolicy.current()
        policy.opens_at_time = datetime_time(9)
        policy.save()
    day = timezone.localdate(timezone=JAPAN) + timedelta(days=2)
    with time_machine.travel(datetime.combine(day, datetime_time(8, 59), tzinfo=JAPAN)) as clock:
        logged_in(client_a, resident_a)
        last = day + timedelta(days=28)
        with tenant_context(world_a.municipality):
            evening = Slot.objects.create(
                venue=world_a.civic,
                product=world_a.pfizer,
                starts_at=datetime.combine(last, datetime_time(18), tzinfo=JAPAN),
                ends_at=datetime.combine(last, datetime_time(18, 30), tzinfo=JAPAN),
                capacity_web=5,
            )
        dates = client_a.get("/book/").content.decode()
        told = dates.split('id="opening-time"')[1].split("</p>")[0]
        assert "新しい日の予約は、毎日9:00に受付を始めます（28日後の日の分）" in told
        venues = client_a.get("/book/venues/").content.decode()  # the venue-first way in
        assert "新しい日の予約は、毎日9:00に受付を始めます" in venues.split('id="opening-time"')[1]
        assert f'href="/book/{last.isoformat()}/"' not in dates
        # Its address typed: the day says when it opens, rather than "no venue".
        early = client_a.get(f"/book/{last.isoformat()}/").content.decode()
        weekday = "月火水木金土日"[day.weekday()]
        assert (
            f"この日の予約はまだ始まっていません。{day.month}月{day.day}日（{weekday}）9:00から"
            in early.split('id="day-not-open"')[1]
        )
        assert f'href="/book/slot/{evening.pk}/"' not in early
        clock.move_to(datetime.combine(day, datetime_time(9), tzinfo=JAPAN))
        dates = client_a.get("/book/").content.decode()
        assert f'href="/book/{last.isoformat()}/"' in dates
        slots = client_a.get(f"/book/{last.isoformat()}/").content.decode()
        assert f'href="/book/slot/{evening.pk}/"' in slots
        assert "毎日9:00に受付を始めます" in slots.split('id="opening-time"')[1]  # step 2 too
