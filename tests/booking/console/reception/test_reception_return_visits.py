"""Reception when a resident is not where the booking list expects them: moved to another
venue, come late after 来場なし, back again after the dose, or known only by name."""

from __future__ import annotations

from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import Booking, VaccinationRecord
from booking.services.reception import no_shows_mark
from tenants.models import Municipality

from ..conftest import StaffAccount, events
from .conftest import RESIDENT_KANA, RESIDENT_NAME, Day, at, logged_in, make_booking, make_slot
from .test_reception_check_in import check_in, status_of
from .test_reception_lookup import lookup
from .test_reception_vaccination import checked_in, record


def _no_show(tenant: Municipality, booking: Booking, staff: StaffAccount) -> None:
    from booking.models import StaffMember

    with tenant_context(tenant):
        member = StaffMember.objects.get(user_id=staff.user_id)
        assert no_shows_mark(venue=booking.slot.venue, booking_ids=[booking.pk], staff=member)


def test_a_voucher_lookup_sends_a_resident_to_a_live_booking_before_opening_one_ended_here(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """Marked 来場なし at 09:00 here, then booked again by the call centre for 10:00 at
    another venue: the voucher number says where to go, not '来場なし'."""
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(slot=day.early)
    _no_show(tenant_a, day.booking, venue_a)
    with tenant_context(tenant_a):
        elsewhere = make_booking(day.resident, day.north_today)
    logged_in(client_a, venue_a, clock)
    found = lookup(client_a, day.resident.voucher_number)
    assert found.status_code == 403
    text = found.content.decode()
    assert "本日10:00からの「北部集会所」の予約です" in text
    refused = events(tenant_a, "reception.refused")[-1]
    assert refused.details["reason"] == "other_venue"
    assert refused.target_id == str(elsewhere.pk)

    # Two ended here (a no-show at 09:00, a deferral at 10:00): the later one opens.
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=elsewhere.pk).update(slot=day.later, status="cancelled")
    opened = lookup(client_a, day.resident.voucher_number)
    assert opened["Location"] == f"/console/reception/bookings/{elsewhere.pk}/"


def test_a_voucher_with_no_booking_today_is_told_its_next_one(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(slot=day.tomorrow)
    logged_in(client_a, venue_a, clock)
    text = lookup(client_a, day.resident.voucher_number).content.decode()
    assert "本日の予約はありません。次の予約は「小平市役所」2026年5月12日（火）10:00です" in text
    # None to come: only that there is none today.
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(status="cancelled")
    text = lookup(client_a, day.resident.voucher_number).content.decode()
    assert "本日の予約はありません" in text and "次の予約は" not in text
    # At a venue the staff member does not work at: not named (the box would otherwise tell
    # anyone at any desk where and when any resident will be).
    with tenant_context(tenant_a):
        north_later = make_slot(day.north, day.pfizer, at(3, 11))
        make_booking(day.resident, north_later, dose=1)
    text = lookup(client_a, day.resident.voucher_number).content.decode()
    assert "本日の予約はありません" in text and "ご本人の予約確認" in text
    assert "北部集会所" not in text and "次の予約は" not in text


def test_voucher_numbers_typed_at_a_desk_are_limited_booking_numbers_are_not(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    clock,
    monkeypatch,
) -> None:
    """A desk receives a resident every half minute, most by the confirmation's QR code:
    voucher numbers walked faster than that are stopped, and the trail says so."""
    from booking.services import reception

    monkeypatch.setattr(reception, "VOUCHER_LOOKUPS_PER_WINDOW", 3)
    logged_in(client_a, venue_a, clock)
    for _ in range(3):
        assert lookup(client_a, day.resident.voucher_number).status_code == 302
    stopped = lookup(client_a, "2999999999")
    assert (
        stopped.status_code == 429
        and "しばらく（10分ほど）止めています" in stopped.content.decode()
    )
    assert events(tenant_a, "reception.refused")[-1].details["reason"] == "too_many_lookups"
    assert lookup(client_a, day.number).status_code == 302  # the confirmation still works
    clock.shift(11 * 60)
    logged_in(client_a, venue_a, clock)
    assert lookup(client_a, day.resident.voucher_number).status_code == 302


def test_a_card_of_a_day_to_come_names_nobody(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """A resident early by a day is told the day; a card opened ahead of its day (by its
    address alone) shows no name or birth date."""
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(slot=day.tomorrow)
    logged_in(client_a, venue_a, clock)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert 'id="identity-ahead"' in card and "本日の予約ではありません" in card
    assert RESIDENT_NAME not in card and RESIDENT_KANA not in card
    viewed = events(tenant_a, "reception.viewed")[-1]
    assert viewed.details["fields"] == []
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(slot=day.later)
    today = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert RESIDENT_NAME in today and 'id="identity-ahead"' not in today


def test_a_name_typed_into_the_box_is_told_what_the_box_finds(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    text = lookup(client_a, "コダイラ　タロウ").content.decode()
    assert "氏名では探せません" in text and "コールセンター" in text
    assert events(tenant_a, "reception.refused")[-1].details["reason"] == "not_a_number"
    # A mistyped number is still 'not found', with what was typed.
    text = lookup(client_a, "12345").content.decode()
    assert "見つかりません" in text and "12345" in text


def test_a_resident_marked_no_show_who_comes_late_is_checked_in(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(slot=day.early)
    _no_show(tenant_a, day.booking, venue_a)
    logged_in(client_a, venue_a, clock)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert 'id="late-arrival"' in card and 'id="check-in"' in card
    assert check_in(client_a, day.booking).status_code == 302
    assert status_of(tenant_a, day.booking) == Booking.Status.CHECKED_IN
    checked = events(tenant_a, "reception.checked_in")[-1]
    assert checked.details["after_no_show"] is True


def test_a_late_arrival_who_booked_that_dose_again_is_checked_in_on_the_new_booking(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(slot=day.early)
    _no_show(tenant_a, day.booking, venue_a)
    with tenant_context(tenant_a):
        make_booking(day.resident, day.tomorrow)
    logged_in(client_a, venue_a, clock)
    refused = check_in(client_a, day.booking)
    assert status_of(tenant_a, day.booking) == Booking.Status.NO_SHOW
    page = client_a.get(refused["Location"]).content.decode()
    assert "同じ回を予約し直しています" in page
    assert events(tenant_a, "reception.refused")[-1].details["reason"] == "booked_again"


def _yesterday(tenant: Municipality, day: Day) -> Booking:
    """The resident's booking, moved to yesterday at the venue."""
    with tenant_context(tenant):
        slot = make_slot(day.civic, day.pfizer, at(-1, 10))
        Booking.objects.filter(pk=day.booking.pk).update(slot=slot)
        return Booking.objects.get(pk=day.booking.pk)


def test_a_day_gone_by_that_the_venue_did_not_record_is_recorded_after_the_fact(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """Marked 来場なし at the end of yesterday, though the resident came (the paper list of
    a busy day): checked in as of that day, and the dose recorded for that day."""
    booking = _yesterday(tenant_a, day)
    _no_show(tenant_a, booking, venue_a)
    logged_in(client_a, venue_a, clock)
    url = f"/console/reception/bookings/{booking.pk}/"
    card = client_a.get(url).content.decode()
    assert 'id="after-the-day"' in card and 'id="check-in"' not in card
    assert "この予約の日（5月10日）は過ぎていて、「来場なし」のままです" in card
    # Not by the plain check-in, nor without the confirmation.
    check_in(client_a, booking)
    assert events(tenant_a, "reception.refused")[-1].details["reason"] == "not_today"
    unconfirmed = client_a.post(f"{url}check-in/", {"after_the_day": "1"}, follow=True)
    assert "確認のチェックを入れてから押してください。" in unconfirmed.content.decode()
    assert status_of(tenant_a, booking) == Booking.Status.NO_SHOW
    done = client_a.post(f"{url}check-in/", {"after_the_day": "1", "confirm": "1"}, follow=True)
    assert "5月10日の受付として記録しました" in done.content.decode()
    assert status_of(tenant_a, booking) == Booking.Status.CHECKED_IN
    checked = events(tenant_a, "reception.checked_in")[-1]
    assert checked.details["after_the_day"] is True and checked.details["after_no_show"] is True
    assert record(client_a, booking, day.pfizer).status_code == 302
    with tenant_context(tenant_a):
        given = VaccinationRecord.objects.get(booking_id=booking.pk)
        assert given.vaccinated_on.isoformat() == "2026-05-10"


def test_a_day_gone_by_is_not_recorded_over_a_dose_recorded_since(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    booking = _yesterday(tenant_a, day)  # never marked: still 予約中
    with tenant_context(tenant_a):
        VaccinationRecord.objects.create(
            voucher=day.resident,
            dose=booking.dose,
            product=day.pfizer,
            lot_number="FA1234",
            vaccinated_on=at(0, 9).date(),
            venue_name="市外の医療機関",
            actor_kind="staff",
            actor_id="1",
        )
    logged_in(client_a, venue_a, clock)
    url = f"/console/reception/bookings/{booking.pk}/"
    assert 'id="after-the-day"' in client_a.get(url).content.decode()
    client_a.post(f"{url}check-in/", {"after_the_day": "1", "confirm": "1"})
    assert status_of(tenant_a, booking) == Booking.Status.ACTIVE
    refused = events(tenant_a, "reception.refused")[-1]
    assert refused.details["reason"] == "already_recorded"


def test_a_resident_back_after_the_dose_or_the_check_in_is_flagged(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    checked_in(tenant_a, day.booking)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert 'id="already-checked-in"' in card and 'id="already-vaccinated"' not in card
    assert record(client_a, day.booking, day.pfizer).status_code == 302
    found = lookup(client_a, day.resident.voucher_number)
    card = client_a.get(found["Location"]).content.decode()
    warned = card.split('id="already-vaccinated"')[1].split("</p>")[0]
    assert "本日 09:30 に記録済みです" in warned and "もう一度接種しないでください" in warned
