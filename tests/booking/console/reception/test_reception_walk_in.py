"""A resident at the desk without a booking, given a free place of today and checked in."""

from __future__ import annotations

import importlib

from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import Booking, Slot, VaccinationRecord, Voucher
from booking.services.callcentre import booked_how
from tenants.models import Municipality

from ..conftest import StaffAccount, events
from .conftest import Day, logged_in, make_booking, make_voucher

WALK_IN = "/console/reception/walk-in/"


def _walk_in(client: Client, number: str, slot: Slot, **extra: str):
    """The second step, the holder shown and confirmed: book and check in."""
    data = {"voucher_number": number, "slot": str(slot.pk), "confirm": "1", "step": "book"}
    return client.post(WALK_IN, {**data, **extra})


def _bookings(tenant: Municipality, voucher: Voucher) -> list[Booking]:
    with tenant_context(tenant):
        return list(Booking.objects.filter(voucher=voucher).order_by("pk"))


def test_a_resident_without_a_booking_is_booked_into_a_free_place_and_checked_in(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """At 09:30 the 10:00 slot's booking window closed long ago (24 hours before): at the
    desk it is still given, from the places nobody can book any more."""
    with tenant_context(tenant_a):
        walker = make_voucher(tenant_a, "1000000055", name="当日 一郎", kana="トウジツ イチロウ")
        # No place of the call centre's left: the web's is taken.
        Slot.objects.filter(pk=day.later.pk).update(booked_call_centre=5)
    logged_in(client_a, venue_a, clock)
    assert 'id="walk-in-link"' in client_a.get("/console/reception/").content.decode()
    page = client_a.get(WALK_IN).content.decode()
    # Today's slots not over, at this staff member's venue only: not 09:00 (ended), not north.
    assert f'value="{day.later.pk}"' in page and "10:00 小平市役所" in page
    assert f'value="{day.early.pk}"' not in page and f'value="{day.north_today.pk}"' not in page
    assert "残り12人" in page  # web 10 + LINE 2 (the call centre's 5 taken)

    # First who the number is (a mistyped number would book someone else): nothing booked.
    shown = client_a.post(
        WALK_IN, {"voucher_number": "１０００００００５５", "slot": day.later.pk, "step": "check"}
    )
    assert shown.status_code == 200
    who = shown.content.decode().split('id="walk-in-who"')[1]
    assert "当日 一郎" in who and "トウジツ イチロウ" in who and "1948年4月1日（昭和23年）" in who
    assert 'name="step" value="book"' in who and f'name="slot" value="{day.later.pk}"' in who
    assert _bookings(tenant_a, walker) == []
    viewed = events(tenant_a, "reception.viewed")[-1]
    assert viewed.target_id == str(walker.pk) and viewed.details["voucher"] == walker.pk
    # Pressed without ticking that the resident is that person: nothing booked.
    unconfirmed = _walk_in(client_a, "1000000055", day.later, confirm="")
    assert unconfirmed.status_code == 400
    assert "確認のチェックを入れてください" in unconfirmed.content.decode()
    assert _bookings(tenant_a, walker) == []

    response = _walk_in(client_a, "１０００００００５５", day.later)  # full-width, as typed
    assert response.status_code == 302
    (booking,) = _bookings(tenant_a, walker)
    assert response["Location"] == f"/console/reception/bookings/{booking.pk}/"
    assert booking.status == Booking.Status.CHECKED_IN and booking.slot_id == day.later.pk
    # The web's place, and counted as made at the venue (not by the call centre).
    assert booking.channel == "web" and booking.booked_through == "venue"
    with tenant_context(tenant_a):
        assert Slot.objects.get(pk=day.later.pk).booked_web == 1
    card = client_a.get(response["Location"]).content.decode()
    assert "本日の空き枠で予約し受付しました" in card and "当日 一郎" in card
    assert 'id="record-vaccination"' in card
    (created,) = [e for e in events(tenant_a, "booking.created") if e.target_id == str(booking.pk)]
    assert created.details["at_the_venue"] is True and created.details["places_of"] == "web"
    assert created.actor_kind == "staff" and created.actor_id == str(venue_a.user_id)
    (checked,) = [
        e for e in events(tenant_a, "reception.checked_in") if e.target_id == str(booking.pk)
    ]
    assert checked.actor_id == str(venue_a.user_id)
    with tenant_context(tenant_a):  # what the call centre tells the resident who asks
        assert booked_how(booking) == "会場の受付で、予約のない方として"


def test_the_booking_rules_still_hold_at_the_desk(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """One live booking per dose: the resident already booked (today) is refused in words,
    with nothing written; an unknown number too (and audited)."""
    logged_in(client_a, venue_a, clock)
    refused = _walk_in(client_a, day.resident.voucher_number, day.later)
    assert refused.status_code == 400
    # Named, in the desk's words (venue staff have no call-centre screens).
    said = refused.content.decode()
    assert f"本日の予約（10:00 {day.civic.name}、予約番号 {day.number}）" in said
    with tenant_context(tenant_a):  # booked for tomorrow instead: come then, or cancel it
        Booking.objects.filter(pk=day.booking.pk).update(slot=day.tomorrow)
    said = _walk_in(client_a, day.resident.voucher_number, day.later).content.decode()
    assert f"5月12日（火）10:00 {day.civic.name} の1回目の予約（予約番号 {day.number}）" in said
    assert "コールセンターにその予約の取消を頼んでから" in said
    assert len(_bookings(tenant_a, day.resident)) == 1
    unknown = client_a.post(
        WALK_IN, {"voucher_number": "1999999999", "slot": day.later.pk, "step": "check"}
    )
    assert unknown.status_code == 400
    # Said at the number's box, not at the top of the form.
    box = unknown.content.decode().split('name="voucher_number"')[0].rsplit('class="field"', 1)[1]
    assert "この接種券番号は、この市区町村の接種券にありません" in box
    assert events(tenant_a, "reception.refused")[-1].details == {
        "operation": "walk_in",
        "reason": "walk_in_unknown",
    }
    short = _walk_in(client_a, "12345", day.later)
    assert "接種券番号は数字10桁で入力してください" in short.content.decode()


def test_a_slot_elsewhere_or_over_is_not_given(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    clock,
) -> None:
    with tenant_context(tenant_a):
        walker = make_voucher(tenant_a, "1000000056")
    logged_in(client_a, venue_a, clock)
    # Another venue's slot (not offered on the page, sent by hand): refused.
    elsewhere = _walk_in(client_a, walker.voucher_number, day.north_today)
    assert elsewhere.status_code == 400
    # A slot of today already over, or of tomorrow: not among the choices.
    assert _walk_in(client_a, walker.voucher_number, day.early).status_code == 400
    assert _walk_in(client_a, walker.voucher_number, day.tomorrow).status_code == 400
    assert _bookings(tenant_a, walker) == []


def test_a_slot_with_no_place_left_is_not_offered(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Slot.objects.filter(pk=day.later.pk).update(
            booked_web=10, booked_line=2, booked_call_centre=5
        )
        make_booking(make_voucher(tenant_a, "1000000057"), day.tomorrow)
    logged_in(client_a, venue_a, clock)
    page = client_a.get(WALK_IN).content.decode()
    assert 'id="no-free-places"' in page and f'value="{day.later.pk}"' not in page


def test_a_walk_ins_check_in_taken_back_cancels_the_booking_made_for_it(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """The booking existed only for the walk-in: undoing its check-in leaves no booking the
    resident never asked for (to turn into a no-show), and gives the place back."""
    with tenant_context(tenant_a):
        walker = make_voucher(tenant_a, "1000000058")
    logged_in(client_a, venue_a, clock)
    _walk_in(client_a, walker.voucher_number, day.later)
    (booking,) = _bookings(tenant_a, walker)
    with tenant_context(tenant_a):
        held = Slot.objects.get(pk=day.later.pk).booked_call_centre
    card = client_a.get(f"/console/reception/bookings/{booking.pk}/").content.decode()
    assert "受付で作った予約のため、予約も取り消します" in card
    response = client_a.post(
        f"/console/reception/bookings/{booking.pk}/not-given/",
        {"outcome": "undo", "confirm": "1"},
    )
    page = client_a.get(response["Location"]).content.decode()
    assert "予約のない方として受付で作った予約のため、予約も取り消しました" in page
    (after,) = _bookings(tenant_a, walker)
    assert after.status == Booking.Status.CANCELLED
    with tenant_context(tenant_a):
        assert Slot.objects.get(pk=day.later.pk).booked_call_centre == held - 1
    # A booking made beforehand keeps the old undo: back to booked.
    client_a.post(f"/console/reception/bookings/{day.booking.pk}/check-in/")
    client_a.post(
        f"/console/reception/bookings/{day.booking.pk}/not-given/",
        {"outcome": "undo", "confirm": "1"},
    )
    assert _bookings(tenant_a, day.resident)[0].status == Booking.Status.ACTIVE


def test_walk_ins_made_before_they_were_told_apart_are_counted_as_such_again(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """The migration that told the venue's desk apart from the call centre finds the
    earlier walk-ins by their trail (booking.created with at_the_venue)."""
    backfill = importlib.import_module(
        "booking.migrations.0029_booking_booked_through_at_the_venue"
    ).BACKFILL
    with tenant_context(tenant_a):
        walker = make_voucher(tenant_a, "1000000056")
    logged_in(client_a, venue_a, clock)
    assert _walk_in(client_a, "1000000056", day.later).status_code == 302
    with tenant_context(tenant_a):
        (walk_in,) = Booking.objects.filter(voucher=walker)
        Booking.objects.filter(pk=walk_in.pk).update(booked_through="call_centre")
        with connection.cursor() as cursor:
            cursor.execute(backfill)
        assert Booking.objects.get(pk=walk_in.pk).booked_through == "venue"
        # The day's other booking, made by the web, is left as it was.
        assert Booking.objects.get(pk=day.booking.pk).booked_through == "web"


def test_a_resident_given_a_dose_too_recently_is_told_at_once_not_after_the_identity_check(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """Given their first dose this morning (here, elsewhere, or a week ago), a resident who
    comes to the desk again is turned away on the first step, in the desk's words, with no
    button to book."""
    with tenant_context(tenant_a):
        walker = make_voucher(tenant_a, "1000000057", name="再来 八郎", kana="サイライ ハチロウ")
        done = make_booking(walker, day.early, status=Booking.Status.VACCINATED)
        VaccinationRecord.objects.create(
            voucher=walker,
            booking=done,
            dose=1,
            product=day.pfizer,
            lot_number="FA1234",
            vaccinated_on=day.early.starts_at.date(),
            venue_name=day.civic.name,
            actor_kind="staff",
            actor_id="1",
        )
        newcomer = make_voucher(tenant_a, "1000000058")
    logged_in(client_a, venue_a, clock)
    shown = client_a.post(
        WALK_IN, {"voucher_number": "1000000057", "slot": day.later.pk, "step": "check"}
    ).content.decode()
    assert "1回目（2026年5月11日、ファイザー社ワクチン）" in shown
    told = shown.split('id="walk-in-not-due"')[1].split("</p>")[0]
    assert "間隔が足りないため、本日は接種できません" in told and "2026年5月30日（土）以降" in told
    assert 'id="walk-in"' not in shown  # no button to book
    # Someone with no dose yet: the button, and no warning.
    fresh = client_a.post(
        WALK_IN, {"voucher_number": "1000000058", "slot": day.later.pk, "step": "check"}
    ).content.decode()
    assert 'id="walk-in"' in fresh and 'id="walk-in-not-due"' not in fresh
    assert '<dd id="walk-in-last-dose">記録なし</dd>' in fresh
    with tenant_context(tenant_a):
        assert not Booking.objects.filter(voucher__in=[walker, newcomer], slot=day.later).exists()
