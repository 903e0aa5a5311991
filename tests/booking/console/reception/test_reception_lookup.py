"""Finding the resident at reception: typed or scanned booking number, who may see whom."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from booking.models import Booking, Slot, StaffMember, Voucher
from booking.services.reception import booking_number_from_text
from tenants.models import Municipality

from ..conftest import StaffAccount, events, make_staff
from .conftest import RESIDENT_KANA, RESIDENT_NAME, Day, logged_in


def lookup(client: Client, text: str):
    return client.post("/console/reception/", {"number": text})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABCDE-FGHJK", "ABCDEFGHJK"),
        ("abcde fghjk", "ABCDEFGHJK"),
        ("ＡＢＣＤＥ－ＦＧＨＪＫ", "ABCDEFGHJK"),  # typed with the IME in full width
        ("ＡＢＣＤＥ−ＦＧＨＪＫ", "ABCDEFGHJK"),  # a Mac's IME gives the minus sign U+2212
        ("ABCDE–FGHJK", "ABCDEFGHJK"),  # an en dash, pasted from a document
        ("https://kodaira.sesshu.example.jp/booking/ABCDE-FGHJK/", "ABCDEFGHJK"),
        ("予約番号：ABCDE-FGHJK", "ABCDEFGHJK"),
        ("SESSHU:ABCDEFGHJK\r\n", "ABCDEFGHJK"),
        ("112132110100000001", ""),  # the 接種券's OCR line, not a booking number
        ("ABCDE-FGHJ", ""),
        ("ABCDE-FGHJ0", ""),  # 0 is never in a booking number
        ("", ""),
    ],
)
def test_the_booking_number_is_read_from_what_was_typed_or_scanned(
    text: str, expected: str
) -> None:
    assert booking_number_from_text(text) == expected


def test_venue_staff_find_a_booking_by_its_typed_number_and_see_who_to_check(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    typed = day.booking.booking_number.lower()[:5] + " " + day.booking.booking_number[5:].lower()
    response = lookup(client_a, typed)
    assert response.status_code == 302
    location = response["Location"]
    assert location == f"/console/reception/bookings/{day.booking.pk}/"
    assert day.booking.booking_number not in location  # nothing a resident holds in a URL

    page = client_a.get(location)
    text = page.content.decode()
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    assert RESIDENT_NAME in text and RESIDENT_KANA in text
    assert "1948年4月1日（昭和23年）78歳" in text
    assert "小平市役所" in text and "10:00" in text and "1回目" in text
    assert "ファイザー社ワクチン" in text and day.number in text
    # Only what reception needs: no address or phone number.
    assert "小川東町" not in text and "0423000001" not in text

    viewed = events(tenant_a, "reception.viewed")
    assert len(viewed) == 1
    assert viewed[0].actor_id == str(venue_a.user_id)
    assert viewed[0].target_id == str(day.booking.pk)
    assert viewed[0].details["voucher"] == day.resident.pk
    assert RESIDENT_NAME not in str(viewed[0].details) and "1948" not in str(viewed[0].details)


def test_a_scanners_text_finds_the_booking_in_the_same_box(
    client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    scanned = f"https://kodaira.sesshu.example.jp/r/{day.number}\n"
    response = lookup(client_a, scanned)
    assert response.status_code == 302
    assert response["Location"] == f"/console/reception/bookings/{day.booking.pk}/"


def test_the_lookup_page_has_one_autofocused_box_and_an_optional_camera_script(
    client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    text = client_a.get("/console/reception/").content.decode()
    assert 'name="number"' in text and "autofocus" in text
    assert "csrfmiddlewaretoken" in text
    assert '<script src="/static/sesshu/reception-scan.js" defer></script>' in text
    assert "<script>" not in text and "style=" not in text  # nothing inline (CSP)
    # Today's counts for the staff member's venue, no names.
    assert "小平市役所" in text and RESIDENT_NAME not in text


def test_an_unknown_number_is_not_found_and_audited(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    for text in ("ZZZZZ-ZZZZZ", "112132110100000001"):
        response = lookup(client_a, text)
        assert response.status_code == 404
        assert "この予約番号・接種券番号の予約は見つかりません" in response.content.decode()
        # Typed by hand, the number is said back (the box is empty for the next scan).
        assert f"（入力された番号：{text}）" in response.content.decode()
    refused = events(tenant_a, "reception.refused")
    assert [event.details["reason"] for event in refused] == ["not_found", "not_found"]
    assert not events(tenant_a, "reception.viewed")


def test_venue_staff_cannot_see_a_booking_at_another_venue(
    tenant_a: Municipality, client_a: Client, day: Day, venue_north_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_north_a, clock)
    response = lookup(client_a, day.number)
    assert response.status_code == 403
    text = response.content.decode()
    assert "担当会場ではありません" in text and RESIDENT_NAME not in text
    # Where to send the resident: the venue the booking is at, and from when today.
    assert f"「{day.booking.slot.venue.name}」をご案内ください" in text
    starts = timezone.localtime(day.booking.slot.starts_at).strftime("%H:%M")
    assert f"本日{starts}からの" in text

    # Opened by its id (an address walked, not a number the resident holds): refused
    # without where, when or what became of it.
    direct = client_a.get(f"/console/reception/bookings/{day.booking.pk}/")
    assert direct.status_code == 403 and RESIDENT_NAME not in direct.content.decode()
    said = direct.content.decode()
    assert "担当会場の予約ではありません" in said
    assert day.booking.slot.venue.name not in said.split("<main")[1] and starts not in said
    refused = events(tenant_a, "reception.refused")
    assert [(event.details["reason"], event.target_id) for event in refused] == [
        ("other_venue", str(day.booking.pk)),
        ("other_venue", str(day.booking.pk)),
    ]
    assert not events(tenant_a, "reception.viewed")


def test_venue_staff_without_a_venue_are_told_and_see_nothing(
    tenant_a: Municipality, client_a: Client, day: Day, clock
) -> None:
    nowhere = make_staff(tenant_a, "mada@kodaira.example.jp", StaffMember.Role.VENUE)
    logged_in(client_a, nowhere, clock)
    assert "担当会場が設定されていません" in client_a.get("/console/reception/").content.decode()
    assert lookup(client_a, day.number).status_code == 403


def test_an_admin_finds_bookings_at_every_venue(
    client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    with tenant_context(day.municipality):
        from .conftest import make_booking, make_voucher

        other = make_booking(make_voucher(day.municipality, "1000000099"), day.north_today)
    logged_in(client_a, admin_a, clock)
    response = lookup(client_a, other.booking_number)
    assert response.status_code == 302
    assert client_a.get(response["Location"]).status_code == 200


@pytest.mark.parametrize("role", [StaffMember.Role.CALL_CENTRE, StaffMember.Role.AUDITOR])
def test_the_call_centre_and_auditors_have_no_reception(
    tenant_a: Municipality, client_a: Client, day: Day, role: str, clock
) -> None:
    account = make_staff(tenant_a, f"{role}@kodaira.example.jp", role)
    logged_in(client_a, account, clock)
    base = f"/console/reception/bookings/{day.booking.pk}/"
    assert client_a.get("/console/reception/").status_code == 403
    assert lookup(client_a, day.number).status_code == 403
    page = client_a.get(base)
    assert page.status_code == 403 and RESIDENT_NAME not in page.content.decode()
    assert client_a.post(f"{base}check-in/").status_code == 403
    assert client_a.get("/console/reception/no-shows/").status_code == 403
    refused = events(tenant_a, "console.access_refused")
    assert {event.details["reason"] for event in refused} == {"role"}
    assert len(refused) == 5
    assert not events(tenant_a, "reception.viewed")
    with tenant_context(tenant_a):
        assert Booking.objects.get(pk=day.booking.pk).status == Booking.Status.ACTIVE
    # No link to reception in the menu.
    assert "/console/reception/" not in client_a.get("/console/").content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(client_a: Client, day: Day) -> None:
    for path in ("/console/reception/", f"/console/reception/bookings/{day.booking.pk}/"):
        response = client_a.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/console/login/")


def test_staff_of_a_cannot_reach_bs_bookings(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_a: Client,
    client_b: Client,
    day: Day,
    day_b: Day,
    venue_a: StaffAccount,
    venue_b: StaffAccount,
    clock,
) -> None:
    logged_in(client_a, venue_a, clock)
    # B's booking number means nothing in A (another schema, another role).
    response = lookup(client_a, day_b.number)
    assert response.status_code == 404
    assert "この予約番号・接種券番号の予約は見つかりません" in response.content.decode()
    # A's session means nothing on B's host.
    client_b.cookies["sessionid"] = client_a.cookies["sessionid"].value
    on_b = client_b.get(f"/console/reception/bookings/{day_b.booking.pk}/")
    assert on_b.status_code == 302 and on_b["Location"].startswith("/console/login/")
    # And B's own venue staff see B's resident, not A's.
    other = Client(HTTP_HOST=client_b.defaults["HTTP_HOST"])
    logged_in(other, venue_b, clock)
    assert lookup(other, day.number).status_code == 404
    with tenant_context(tenant_b):
        assert Voucher.objects.count() == 1


def test_a_booking_at_another_venue_that_is_cancelled_sends_nobody_there(
    tenant_a: Municipality, client_a: Client, day: Day, venue_north_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(status=Booking.Status.CANCELLED)
    logged_in(client_a, venue_north_a, clock)
    text = lookup(client_a, day.number).content.decode()
    assert "この予約は取り消されています" in text and "ご案内ください" not in text
    assert RESIDENT_NAME not in text


def test_a_booking_at_another_venue_on_another_day_says_when(
    tenant_a: Municipality, client_a: Client, day: Day, venue_north_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        later = day.booking.slot.starts_at + timedelta(days=2)
        Slot.objects.filter(pk=day.booking.slot_id).update(
            starts_at=later, ends_at=later + timedelta(minutes=30)
        )
    logged_in(client_a, venue_north_a, clock)
    text = lookup(client_a, day.number).content.decode()
    assert "本日の予約でもありません" in text and "ご案内ください" not in text
    local = timezone.localtime(later)
    assert f"{local.year}年{local.month}月{local.day}日" in text


def test_a_resident_without_the_confirmation_is_found_by_the_voucher_number(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """Residents bring the 接種券 (they must); many forget the confirmation sheet."""
    logged_in(client_a, venue_a, clock)
    number = day.resident.voucher_number
    found = lookup(client_a, f"{number[:4]}-{number[4:7]}-{number[7:]}")
    assert found.status_code == 302
    assert found["Location"] == f"/console/reception/bookings/{day.booking.pk}/"
    # The same voucher with no booking today: said so, and no card is opened.
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(slot=day.tomorrow)
    none_today = lookup(client_a, number)
    assert none_today.status_code == 404
    assert "この接種券番号の方の本日の予約はありません" in none_today.content.decode()
    assert RESIDENT_NAME not in none_today.content.decode()
    # A voucher number nobody has: not found, like a mistyped booking number.
    assert "見つかりません" in lookup(client_a, "9999999999").content.decode()
    refused = events(tenant_a, "reception.refused")
    assert [event.details["reason"] for event in refused] == ["no_booking_today", "not_found"]
    assert refused[0].target_id == str(day.resident.pk)
