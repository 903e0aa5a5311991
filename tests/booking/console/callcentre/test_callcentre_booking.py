"""Booking, changing and cancelling for a resident: the one booking service, call-centre
capacity only, the same rules and messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import time_machine
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from audit.chain import Actor
from booking.console.planning.common import JAPAN
from booking.models import AgePhase, Booking, BookingPolicy, Slot
from booking.selectors.availability import availability_invalidate
from booking.services.booking import booking_change
from tenants.models import Municipality
from tests.booking.booking.conftest import counters, years_ago
from tests.booking.console.callcentre.cast import (
    CALL_CENTRE_HOME,
    Town,
    confirm_identity,
    live_bookings,
    make_resident,
    offered,
    signed_in,
)
from tests.booking.console.conftest import StaffAccount, events, make_staff
from tests.redis_outage import closed_port, redis_at


def resident_url(town: Town) -> str:
    return f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/"


def ready(client: Client, account: StaffAccount, town: Town, clock) -> Client:  # noqa: ANN001
    signed_in(client, account, clock)
    confirm_identity(client, town.hanako)
    return client


def test_the_operator_books_with_the_call_centres_capacity(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    ready(client_a, operator_a, town, clock)
    response = client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    assert response.status_code == 302
    [booking] = live_bookings(tenant_a, town.hanako)
    assert response["Location"] == f"{resident_url(town)}bookings/{booking.pk}/"
    assert booking.channel == "call_centre" and booking.dose == 1
    assert (booking.actor_kind, booking.actor_id) == ("staff", str(operator_a.user_id))
    with schema_context(tenant_a.schema_name):
        assert counters(town.call_slot) == (0, 0, 1)
    created = events(tenant_a, "booking.created")[-1]
    assert created.details["channel"] == "call_centre"
    page = client_a.get(response["Location"]).content.decode()
    number = booking.booking_number
    assert f"{number[:5]}-{number[5:]}" in page
    # Read back a character at a time, letters that sound alike told apart by a word.
    read_back = page.split('id="read-back"')[1].split("</details>")[0]
    assert read_back.count("<li>") == 10 and "ここで区切ります" in read_back
    if "M" in number:
        assert "エム（マウンテンのM）" in read_back
    assert 'id="identity-first"' not in page
    # Another operator, the caller's identity not checked by them: nothing to read out yet.
    other = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    signed_in(other, make_staff(tenant_a, "call3@kodaira.example.jp", "call_centre"), clock)
    unchecked = other.get(response["Location"]).content.decode()
    assert 'id="identity-first"' in unchecked and 'id="read-back"' not in unchecked


def test_a_slot_closed_to_the_call_centre_is_refused_in_words_for_the_operator(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    ready(client_a, operator_a, town, clock)
    response = client_a.post(resident_url(town) + "book/", {"slot": town.web_only.pk})
    assert response.status_code == 409
    text = response.content.decode()
    assert "コールセンターの受付枠がありません" in text
    assert "お問い合わせください" not in text  # the resident's words: ask the call centre
    assert live_bookings(tenant_a, town.hanako) == []
    with schema_context(tenant_a.schema_name):
        assert counters(town.web_only) == (0, 0, 0)
    # Pressed from a later day's list, the refusal shows that day again, not the first.
    later = timezone.localtime(town.later_slot.starts_at).date().isoformat()
    shown = client_a.get(resident_url(town) + "book/", {"day": later}).content.decode()
    assert f"?day={later}&amp;area=&amp;product=" in shown  # the buttons carry the day
    # With a venue chosen, its id (not the venue's whole list of slots) rides along.
    venue_id = town.later_slot.venue_id
    chosen = client_a.get(
        resident_url(town) + "book/",
        {"day": later, "venue": venue_id, "confirm": town.later_slot.pk},
    )
    actions = re.findall(r'<form method="post" action="([^"]+)"', chosen.content.decode())
    assert actions and all(action.endswith(f"&amp;venue={venue_id}") for action in actions)
    again = client_a.post(
        resident_url(town) + f"book/?day={later}", {"slot": town.web_only.pk}
    ).content.decode()
    day = timezone.localtime(town.later_slot.starts_at).date()
    heading = again.split('id="slots-heading"')[1].split("</h2>")[0]
    assert f"{day.year}年{day.month}月{day.day}日" in heading


def test_the_last_call_centre_place_taken_means_full_even_with_web_places_left(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    with schema_context(tenant_a.schema_name):
        Slot.objects.filter(pk=town.call_slot.pk).update(booked_call_centre=2)
    ready(client_a, operator_a, town, clock)
    response = client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    assert response.status_code == 409
    # The call centre's places are gone, not the slot's: the operator is told so.
    text = response.content.decode()
    assert "コールセンターの受付枠が、ちょうど埋まりました" in text
    assert "インターネットでは予約できる場合があります" in text
    assert live_bookings(tenant_a, town.hanako) == []


def test_the_booking_page_lists_only_slots_with_call_centre_capacity(
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    days = town.call_slot.starts_at, town.web_only.starts_at
    call_day, web_day = (moment.date().isoformat() for moment in days)
    page = client_a.get(resident_url(town) + f"book/?day={call_day}").content.decode()
    assert offered(page, town.call_slot.pk)
    assert "本人確認がまだです" in page
    web_page = client_a.get(resident_url(town) + f"book/?day={web_day}").content.decode()
    assert not offered(web_page, town.web_only.pk)
    assert "コールセンター用の枠がある会場はありません" in web_page


def test_the_operator_finds_the_days_of_the_venue_the_resident_asks_for(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    world = town.world
    with schema_context(tenant_a.schema_name):
        north = world.slot(days=6, hour=9, venue=world.north)
    signed_in(client_a, operator_a, clock)
    book = resident_url(town) + "book/"
    everything = client_a.get(book).content.decode()
    assert '<optgroup label="北地区">' in everything
    assert f'<option value="{world.north.pk}">北部集会所</option>' in everything
    page = client_a.get(book, {"venue": world.north.pk}).content.decode()
    assert f'<option value="{world.north.pk}" selected>北部集会所</option>' in page
    # The venue's one day is chosen; its slot is offered, and no other venue's.
    assert offered(page, north.pk)
    assert not offered(page, town.call_slot.pk)
    days = page.split('id="days-heading"')[1].split("</section>")[0]
    assert days.count("<li>") == 1 and 'aria-current="date"' in days
    # A venue that is not open filters nothing.
    other = client_a.get(book, {"venue": 999999}).content.decode()
    assert offered(other, town.call_slot.pk)
    assert f"&amp;venue={world.north.pk}" not in other


def test_the_operator_reads_what_a_resident_too_young_to_book_yet_is_told(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    with schema_context(tenant_a.schema_name):
        young = make_resident(
            tenant_a,
            "2000000009",
            name="小平 一郎",
            kana="コダイラ イチロウ",
            phone="0423112222",
            born=years_ago(40),
        )
        opens = timezone.localtime(AgePhase.objects.get(minimum_age=12).opens_at)
    signed_in(client_a, operator_a, clock)
    page = client_a.get(f"{CALL_CENTRE_HOME}residents/{young.pk}/book/").content.decode()
    assert 'id="not-eligible-yet"' in page
    assert (
        "この方の年齢の予約受付は" in page
        and "あなたの" not in page
        and f"{opens.year}年{opens.month}月" in page
    )
    # Nothing is offered that the service would refuse: no days, no slot buttons.
    assert 'id="days-heading"' not in page and 'name="slot"' not in page
    # The resident's page says so before the operator offers to book.
    summary = client_a.get(f"{CALL_CENTRE_HOME}residents/{young.pk}/").content.decode()
    assert 'id="not-eligible-yet"' in summary and "回目を予約する" not in summary
    hanako = client_a.get(resident_url(town) + "book/").content.decode()
    assert 'id="not-eligible-yet"' not in hanako
    assert 'id="not-eligible-yet"' not in client_a.get(resident_url(town)).content.decode()
    # A baby: no phase, opened or announced, takes that age; no start date to give.
    with schema_context(tenant_a.schema_name):
        baby = make_resident(
            tenant_a,
            "2000000010",
            name="小平 花",
            kana="コダイラ ハナ",
            phone="0423113333",
            born=years_ago(1),
        )
    page = client_a.get(f"{CALL_CENTRE_HOME}residents/{baby.pk}/book/").content.decode()
    told = page.split('id="not-eligible-yet"')[1].split("</")[0]
    assert "受付開始日が決まっているものはありません" in told and "お伝えください" in told
    assert f"{opens.year}年{opens.month}月" not in told


def test_the_operator_is_offered_the_days_from_the_residents_birthday(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """Turning 65 in six days while only 65 and over may book: as on the resident's own
    pages, the days from the birthday (the service would refuse the others)."""
    today = timezone.localdate()
    birthday = today + timedelta(days=6)
    with schema_context(tenant_a.schema_name):
        turning = make_resident(
            tenant_a,
            "2000000010",
            name="小平 次郎",
            kana="コダイラ ジロウ",
            phone="0423113333",
            born=birthday.replace(year=birthday.year - 65),
        )
        after = town.world.slot(days=7, hour=10)
    signed_in(client_a, operator_a, clock)
    page = client_a.get(f"{CALL_CENTRE_HOME}residents/{turning.pk}/book/").content.decode()
    days = page.split('id="days-heading"')[1].split("</section>")[0]
    assert days.count("<li>") == 1 and 'aria-current="date"' in days
    assert offered(page, after.pk)
    assert not offered(page, town.call_slot.pk)
    # Asking for an earlier day by its address gives the first day that can be booked.
    early = town.call_slot.starts_at.astimezone(timezone.get_current_timezone()).date()
    again = client_a.get(
        f"{CALL_CENTRE_HOME}residents/{turning.pk}/book/", {"day": early.isoformat()}
    ).content.decode()
    assert offered(again, after.pk)
    assert 'id="not-eligible-yet"' not in again


def test_change_and_cancel_go_through_the_same_service(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    [booking] = live_bookings(tenant_a, town.hanako)

    change_url = f"{resident_url(town)}bookings/{booking.pk}/change/"
    page = client_a.get(
        change_url, {"day": town.call_slot.starts_at.astimezone(JAPAN).date().isoformat()}
    )
    assert page.status_code == 200
    # The booking's own slot is marked, not offered as a change.
    own_row = page.content.decode().split('id="changing-slot"')[0].rsplit("<tr>", 1)[1]
    assert town.call_slot.starts_at.astimezone(JAPAN).strftime("%H:%M") in own_row
    same = client_a.post(change_url, {"slot": town.call_slot.pk})
    told = client_a.get(same["Location"]).content.decode()
    assert "いまの予約と同じ枠です。予約は変更していません。" in told
    assert "予約を変更しました" not in told
    refused = client_a.post(change_url, {"slot": town.web_only.pk})
    assert refused.status_code == 409
    moved = client_a.post(change_url, {"slot": town.later_slot.pk})
    assert moved.status_code == 302
    [after] = live_bookings(tenant_a, town.hanako)
    assert after.pk == booking.pk and after.slot_id == town.later_slot.pk
    assert after.booking_number == booking.booking_number
    assert events(tenant_a, "booking.changed")[-1].details["channel"] == "call_centre"

    cancel_url = f"{resident_url(town)}bookings/{booking.pk}/cancel/"
    asked = client_a.get(cancel_url).content.decode()
    assert "取り消しますか" in asked
    # Whose booking, on the page that cancels it (an operator with two callers' tabs).
    whose = asked.split('id="whose"')[1].split("</p>")[0]
    assert town.hanako.voucher_number in whose
    detail = client_a.get(f"{resident_url(town)}bookings/{booking.pk}/").content.decode()
    assert town.hanako.voucher_number in detail.split('id="whose"')[1].split("</p>")[0]
    # Who asked is asked: a grandson's call is told apart from the resident's own.
    unsaid = client_a.post(cancel_url)
    assert unsaid.status_code == 400
    assert (
        "お申し出の方（ご本人か、ご家族・代理の方か）を選んでください。" in unsaid.content.decode()
    )
    assert live_bookings(tenant_a, town.hanako) != []
    asked = {"asked_by": "family", "given_reason": "unwell", "from_slot": town.later_slot.pk}
    assert client_a.post(cancel_url, asked).status_code == 302
    assert live_bookings(tenant_a, town.hanako) == []
    with schema_context(tenant_a.schema_name):
        assert Booking.objects.get(pk=booking.pk).status == Booking.Status.CANCELLED
        assert counters(town.later_slot) == (0, 0, 0)
    # Back to the confirmation after cancelling: it is not offered again, nor "cancelled"
    # a second time; the booking's page says it already is.
    back = client_a.get(cancel_url)
    assert back.status_code == 302 and back["Location"].endswith(f"bookings/{booking.pk}/")
    assert "すでに取り消されたか" in client_a.get(back["Location"]).content.decode()
    again = client_a.post(cancel_url, asked, follow=True).content.decode()
    assert "すでに取り消されたか" in again and "予約を取り消しました。" not in again
    [cancelled] = events(tenant_a, "booking.cancelled")
    assert (cancelled.details["asked_by"], cancelled.details["given_reason"]) == (
        "family",
        "unwell",
    )
    # What the next operator tells a resident who asks why their booking is gone.
    assert "コールセンターで、ご家族・代理の方の「体調がすぐれない」とのお申し出により" in again


def _booked_with_a_second_operator(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> tuple[Booking, Client]:
    """Hanako booked by the first operator, and a second operator at another desk, both
    past the identity check."""
    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    [booking] = live_bookings(tenant_a, town.hanako)
    second = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    ready(second, make_staff(tenant_a, "call2@kodaira.example.jp", "call_centre"), town, clock)
    return booking, second


def test_two_operators_changing_one_booking_the_second_is_told_not_overwritten(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    booking, second = _booked_with_a_second_operator(tenant_a, client_a, operator_a, town, clock)
    change_url = f"{resident_url(town)}bookings/{booking.pk}/change/"
    # Both pages show the booking at its slot; each confirmation carries it.
    later_day = timezone.localtime(town.later_slot.starts_at).date().isoformat()
    for client in (client_a, second):
        page = client.get(change_url).content.decode()
        now = page.split('id="changing-now"')[1].split("</p>")[0]
        assert town.call_slot.venue.name in now  # what is being changed, on the page
        confirm = client.get(f"{change_url}?day={later_day}&confirm={town.later_slot.pk}")
        assert f'name="from_slot" value="{town.call_slot.pk}"' in confirm.content.decode()
        read_back = confirm.content.decode().split('id="confirm"')[1].split("</dl>")[0]
        assert "接種回数" in read_back and "1回目" in read_back
    with schema_context(tenant_a.schema_name):
        other = Slot.objects.create(
            venue=town.later_slot.venue,
            product=town.later_slot.product,
            starts_at=town.later_slot.starts_at + timedelta(hours=2),
            ends_at=town.later_slot.ends_at + timedelta(hours=2),
            capacity_call_centre=2,
        )
    moved = client_a.post(change_url, {"slot": town.later_slot.pk, "from_slot": town.call_slot.pk})
    assert moved.status_code == 302
    late = second.post(change_url, {"slot": other.pk, "from_slot": town.call_slot.pk})
    assert late.status_code == 409
    assert "この画面を開いたあとに別の操作で変更されました" in late.content.decode()
    [after] = live_bookings(tenant_a, town.hanako)
    assert after.slot_id == town.later_slot.pk  # what the first operator told the caller
    assert len(events(tenant_a, "booking.changed")) == 1
    # Cancelled by the first meanwhile: the second's change page says so, and offers nothing.
    client_a.post(f"{resident_url(town)}bookings/{booking.pk}/cancel/", {"asked_by": "resident"})
    gone = second.post(change_url, {"slot": other.pk, "from_slot": town.later_slot.pk})
    assert gone.status_code == 302 and gone["Location"].endswith(f"bookings/{booking.pk}/")
    told = second.get(gone["Location"]).content.decode()
    assert "すでに取り消されたか" in told and "締切" not in told
    assert second.get(change_url).status_code == 302


def test_a_cancel_page_shown_before_a_change_does_not_cancel_the_moved_booking(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    booking, second = _booked_with_a_second_operator(tenant_a, client_a, operator_a, town, clock)
    cancel_url = f"{resident_url(town)}bookings/{booking.pk}/cancel/"
    page = second.get(cancel_url).content.decode()
    assert f'name="from_slot" value="{town.call_slot.pk}"' in page
    change_url = f"{resident_url(town)}bookings/{booking.pk}/change/"
    moved = client_a.post(change_url, {"slot": town.later_slot.pk, "from_slot": town.call_slot.pk})
    assert moved.status_code == 302
    stale = second.post(
        cancel_url,
        {"from_slot": town.call_slot.pk, "asked_by": "resident", "given_reason": "schedule"},
    )
    assert stale.status_code == 409
    text = stale.content.decode()
    assert "別の操作で日時・会場が変更されました" in text
    assert f'name="from_slot" value="{town.later_slot.pk}"' in text
    # What the operator chose stays chosen, to cancel the moved booking if the caller wishes.
    assert 'value="schedule" id="id_given_reason_0" checked' in text
    [after] = live_bookings(tenant_a, town.hanako)
    assert after.slot_id == town.later_slot.pk
    assert not events(tenant_a, "booking.cancelled")


def test_another_residents_booking_is_not_found_under_this_resident(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    [booking] = live_bookings(tenant_a, town.hanako)
    elsewhere = f"{CALL_CENTRE_HOME}residents/{town.namesake.pk}/bookings/{booking.pk}/"
    assert client_a.get(elsewhere).status_code == 404
    assert client_a.post(elsewhere + "cancel/").status_code == 404
    assert len(live_bookings(tenant_a, town.hanako)) == 1


def test_the_auditor_cannot_book(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, auditor_a, clock)
    response = client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    assert response.status_code == 403
    assert live_bookings(tenant_a, town.hanako) == []


def test_with_redis_unreachable_the_call_centre_still_books(
    settings,  # noqa: ANN001
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    """The call centre must keep working when the web site cannot (UX.md, Yokohama 2021):
    an operator already signed in finds the slots and books, with Redis gone."""
    ready(client_a, operator_a, town, clock)
    redis_at(settings, closed_port())
    assert client_a.get(resident_url(town) + "book/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):  # the cache's invalidation too
        response = client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    assert response.status_code == 302
    [booking] = live_bookings(tenant_a, town.hanako)
    assert booking.channel == "call_centre"
    assert client_a.get(response["Location"]).status_code == 200


def test_the_resident_page_offers_only_what_the_service_allows_now(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A booking past its cut-off can be cancelled, not moved; and with dose 1 booked, dose
    2 waits for it to be given (the series is not booked together here)."""
    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    [booking] = live_bookings(tenant_a, town.hanako)
    page = client_a.get(resident_url(town)).content.decode()
    assert f"bookings/{booking.pk}/change/" in page and f"bookings/{booking.pk}/cancel/" in page
    assert "2回目を予約する" not in page
    assert "2回目は、1回目の接種が済んでから予約できます" in page
    with schema_context(tenant_a.schema_name):
        soon = timezone.now() + timedelta(hours=2)
        Slot.objects.filter(pk=booking.slot_id).update(
            starts_at=soon, ends_at=soon + timedelta(minutes=30)
        )
    page = client_a.get(resident_url(town)).content.decode()
    assert f"bookings/{booking.pk}/change/" not in page
    assert f"bookings/{booking.pk}/cancel/" in page and "締切後のため変更はできません" in page


def test_the_booking_page_opened_for_a_dose_that_waits_says_why(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    page = client_a.get(resident_url(town) + "book/").content.decode()
    assert 'id="waits-for-dose"' in page and "1回目の接種が済んでから予約できます" in page
    assert 'name="slot"' not in page  # no slot offered that the service would refuse


def test_a_booking_cancelled_with_its_slot_says_so_and_its_channel_is_told_apart(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    from audit.chain import Actor
    from booking.services.planning import slot_cancel

    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    row = client_a.get(resident_url(town)).content.decode().split("予約中")[1].split("</td>")[0]
    assert "予約経路：コールセンター" in row
    with schema_context(tenant_a.schema_name):
        slot = Slot.objects.get(pk=town.call_slot.pk)
        slot_cancel(slot=slot, actor=Actor(Actor.STAFF, str(admin_a.user_id)))
    page = client_a.get(resident_url(town)).content.decode()
    assert "予約枠の中止による取消" in page and "取消（コールセンター）" not in page
    from booking.services.planning import slot_reopen

    with schema_context(tenant_a.schema_name):
        slot_reopen(slot=Slot.objects.get(pk=slot.pk), actor=Actor(Actor.STAFF, "1"))
    assert "予約枠の中止による取消" in client_a.get(resident_url(town)).content.decode()


def test_a_booking_the_resident_cancelled_says_when_and_how_to_the_operator(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A caller asks where their booking went: the operator reads that they cancelled it on
    the web, and when, and what to tell them; nothing to bring is listed any more."""
    from audit.chain import Actor
    from booking.services.booking import booking_cancel

    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    [booking] = live_bookings(tenant_a, town.hanako)
    with schema_context(tenant_a.schema_name):
        booking_cancel(booking=booking, channel="web", actor=Actor.resident(town.hanako.pk))
    row = client_a.get(resident_url(town)).content.decode().split("<tbody>")[1].split("</tr>")[0]
    assert "ご本人がウェブから取り消し" in row
    detail = client_a.get(f"{resident_url(town)}bookings/{booking.pk}/").content.decode()
    assert "ご本人がウェブから" in detail.split('id="cancelled-at"')[1].split("</dd>")[0]
    assert 'id="cancelled-read-out"' in detail and "接種券はそのまま使えます" in detail
    assert "持ち物" not in detail


def test_a_booking_put_off_at_the_venue_reads_as_such_to_the_call_centre(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A caller whose dose the doctor put off asks when to book again: the operator sees
    接種見合わせ, not a cancellation the caller never made."""
    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    with schema_context(tenant_a.schema_name):
        Booking.objects.filter(slot_id=town.call_slot.pk).update(
            status=Booking.Status.CANCELLED,
            cancel_reason=Booking.CancelReason.DEFERRED,
            cancelled_at=datetime(2026, 5, 11, 4, 32, tzinfo=UTC),
        )
    row = client_a.get(resident_url(town)).content.decode().split("<tbody>")[1]
    assert "接種見合わせ" in row.split("</tr>")[0] and "取消" not in row.split("</tr>")[0]
    assert "5月11日 13:32 会場で予診の結果などにより" in row.split("</tr>")[0]


def test_a_web_booking_changed_by_phone_reads_as_made_on_the_web(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    with schema_context(tenant_a.schema_name):
        Booking.objects.filter(slot_id=town.call_slot.pk).update(booked_through="web")
    row = client_a.get(resident_url(town)).content.decode().split("<tbody>")[1]
    assert "予約経路：ウェブ（コールセンターで変更）" in row.split("</tr>")[0]


def test_a_slot_chosen_before_the_identity_check_is_found_again_after_it(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """The operator chose a day and a slot, then learned the check was not done: once it is
    recorded, the booking page comes back with the day chosen, not the resident's page."""
    signed_in(client_a, operator_a, clock)
    day = town.call_slot.starts_at.date().isoformat()
    listing = f"http://kodaira.localhost{resident_url(town)}book/?day={day}&area=&product="
    refused = client_a.post(
        resident_url(town) + "book/", {"slot": town.call_slot.pk}, HTTP_REFERER=listing
    )
    assert refused.status_code == 302 and refused["Location"] == resident_url(town)
    assert live_bookings(tenant_a, town.hanako) == []
    checked = confirm_identity(client_a, town.hanako)
    assert checked.status_code == 302
    assert checked["Location"] == f"{resident_url(town)}book/?day={day}&area=&product="
    # Once: the next check goes to the resident's page as before.
    again = confirm_identity(client_a, town.hanako)
    assert again["Location"] == resident_url(town)


def test_the_call_centre_works_the_list_of_residents_a_cancelled_slot_could_not_tell(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A typhoon: the admin cancels the slot; the call centre is told how many to phone,
    lists them, reads the apology and the municipality's words, and marks each phoned."""
    from audit.chain import Actor
    from booking.services.planning import slot_cancel

    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    [booking] = live_bookings(tenant_a, town.hanako)
    with schema_context(tenant_a.schema_name):
        slot = Slot.objects.get(pk=town.call_slot.pk)
        slot_cancel(slot=slot, actor=Actor(Actor.STAFF, str(admin_a.user_id)), notice="台風のため")
    home = client_a.get(CALL_CENTRE_HOME).content.decode()
    assert "まだ電話でお知らせしていない方：1人" in home
    listed = client_a.get(CALL_CENTRE_HOME + "to-phone/").content.decode()
    assert town.hanako.voucher_number in listed
    assert f"residents/{town.hanako.pk}/" in listed
    detail_url = f"{resident_url(town)}bookings/{booking.pk}/"
    detail = client_a.get(detail_url).content.decode()
    told = detail.split('id="cancelled-read-out"')[1].split("</div>")[0]
    assert "都合で予約枠が中止になり" in told and "住民へのお知らせ：台風のため" in told
    assert 'id="to-phone"' in told
    marked = client_a.post(
        f"/console/planning/slots/{slot.pk}/phoned/{booking.pk}/", {"back": detail_url}
    )
    assert marked.status_code == 302 and marked["Location"] == detail_url
    assert 'id="to-phone"' not in client_a.get(detail_url).content.decode()
    assert 'id="to-phone"' not in client_a.get(CALL_CENTRE_HOME).content.decode()
    (event,) = events(tenant_a, "slot.resident_phoned")
    assert event.actor_id == str(operator_a.user_id)


def test_a_confirmation_whose_slot_filled_meanwhile_says_so(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """The confirmation reloaded (or its link kept) after the last place went: the page
    says why there is nothing to confirm, rather than showing the day without a word."""
    ready(client_a, operator_a, town, clock)
    day = timezone.localtime(town.later_slot.starts_at).date().isoformat()
    url = f"{resident_url(town)}book/?day={day}&confirm={town.later_slot.pk}"
    assert 'id="confirm"' in client_a.get(url).content.decode()
    with schema_context(tenant_a.schema_name):
        Slot.objects.filter(pk=town.later_slot.pk).update(booked_call_centre=2)
        # As a booking through the service leaves the availability.
        availability_invalidate(days=[timezone.localtime(town.later_slot.starts_at).date()])
    page = client_a.get(url).content.decode()
    assert 'id="confirm"' not in page
    gone = page.split('id="confirm-gone"')[1].split("</p>")[0]
    assert "この予約枠のコールセンターの受付枠が、ちょうど埋まりました" in gone


def test_a_day_not_open_yet_is_said_to_be_so_with_when_it_opens(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """The municipality opens a new day every morning at 10:00: at 09:30 the operator asked
    for that day's slot is told it opens at 10:00 (not that it is full), and so is a caller
    asking for the day."""
    with schema_context(tenant_a.schema_name):
        policy = BookingPolicy.current()
        policy.opens_days_ahead, policy.opens_at_time = 5, time(10)
        policy.save()
    ready(client_a, operator_a, town, clock)
    starts = timezone.localtime(town.later_slot.starts_at)  # 5 days ahead, 14:00
    url = f"{resident_url(town)}book/?day={starts.date().isoformat()}&confirm={town.later_slot.pk}"
    page = client_a.get(url).content.decode()
    assert "新しい日の予約は、毎日10:00に受付を始めます（5日後の日の分）" in page
    gone = page.split('id="confirm-gone"')[1].split("</p>")[0]
    assert "予約は接種日の5日前の10:00から受け付けます" in gone and "満員" not in gone
    day = page.split('id="day-not-open"')[1].split("</p>")[0]
    assert "この日の予約はまだ始まっていません。5月11日（月）10:00から受け付けます" in day
    clock.move_to(datetime(2026, 5, 11, 10, 0, tzinfo=JAPAN))
    opened = client_a.get(url).content.decode()
    assert 'id="confirm"' in opened and 'id="confirm-gone"' not in opened
    # A day with no slots at all opens nothing: not said to.
    empty_day = (starts + timedelta(days=1)).date().isoformat()
    empty = client_a.get(f"{resident_url(town)}book/?day={empty_day}").content.decode()
    assert 'id="day-not-open"' not in empty
    # Without a set time, each slot opens on its own: the day says from which day.
    with schema_context(tenant_a.schema_name):
        policy = BookingPolicy.current()
        policy.opens_days_ahead, policy.opens_at_time = 4, None
        policy.save()
    rolling = client_a.get(url).content.decode().split('id="day-not-open"')[1].split("</p>")[0]
    assert (
        "この日の予約はまだ始まっていません。5月12日（火）から、枠ごとに、開始時刻の4日前の"
        "同じ時刻に受付が始まります。"
    ) in rolling


def test_back_to_the_confirmation_after_booking_says_the_caller_holds_the_slot(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """The confirmation opened again (Back) after the caller's booking took the slot's last
    phone place: it says the caller holds it, not that it filled up."""
    ready(client_a, operator_a, town, clock)
    day = timezone.localtime(town.later_slot.starts_at).date().isoformat()
    url = f"{resident_url(town)}book/?day={day}&confirm={town.later_slot.pk}"
    with schema_context(tenant_a.schema_name):
        Slot.objects.filter(pk=town.later_slot.pk).update(capacity_call_centre=1)
        availability_invalidate(days=[timezone.localtime(town.later_slot.starts_at).date()])
    assert 'id="confirm"' in client_a.get(url).content.decode()
    booked = client_a.post(resident_url(town) + "book/", {"slot": town.later_slot.pk})
    assert booked.status_code == 302
    [booking] = live_bookings(tenant_a, town.hanako)
    with schema_context(tenant_a.schema_name):  # as the booking's commit leaves it
        availability_invalidate(days=[timezone.localtime(town.later_slot.starts_at).date()])
    gone = client_a.get(url).content.decode().split('id="confirm-gone"')[1].split("</p>")[0]
    number = booking.booking_number
    assert f"この方は、この枠をすでに予約しています（予約番号 {number[:5]}-{number[5:]}）" in gone
    assert "埋まりました" not in gone


def test_the_booking_page_lists_its_changes_with_what_it_was_before(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A caller asks what their booking was before: each change, by whom, from which slot."""
    ready(client_a, operator_a, town, clock)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    [booking] = live_bookings(tenant_a, town.hanako)
    page = client_a.get(f"{resident_url(town)}bookings/{booking.pk}/").content.decode()
    assert 'id="booking-moves"' not in page
    with tenant_context(tenant_a):
        booking_change(
            booking=booking,
            slot=town.later_slot,
            channel="web",
            actor=Actor.resident(town.hanako.pk),
        )
    page = client_a.get(f"{resident_url(town)}bookings/{booking.pk}/").content.decode()
    moves = page.split('id="booking-moves"')[1].split("</dd>")[0]
    before = timezone.localtime(town.call_slot.starts_at)
    assert moves.count("<li>") == 1 and "ご本人がウェブから変更" in moves
    assert f"（変更前：{before.month}月{before.day}日" in moves and "小平市役所" in moves
