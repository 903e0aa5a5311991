"""Check-in (受付): today's active bookings, at a venue the staff member works at."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import Booking, Slot, StaffMember, Voucher
from booking.models.bookings import booking_number_display
from tenants.models import Municipality
from tests.conftest import host_of

from ..conftest import StaffAccount, events, make_staff
from .conftest import RESIDENT_NAME, Day, at, logged_in, make_booking, make_slot


def check_in(client: Client, booking: Booking):
    return client.post(f"/console/reception/bookings/{booking.pk}/check-in/")


def status_of(tenant: Municipality, booking: Booking) -> str:
    with tenant_context(tenant):
        return Booking.objects.get(pk=booking.pk).status


def test_venue_staff_check_a_resident_in(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert 'id="check-in"' in card and "本人確認をして受付する" in card

    response = check_in(client_a, day.booking)
    assert response.status_code == 302
    assert response["Location"] == f"/console/reception/bookings/{day.booking.pk}/"
    assert status_of(tenant_a, day.booking) == Booking.Status.CHECKED_IN
    page = client_a.get(response["Location"]).content.decode()
    assert f"予約番号 {day.number} を受付しました" in page
    assert "受付済み" in page and 'id="record-vaccination"' in page
    assert 'id="check-in"' not in page

    (checked,) = events(tenant_a, "reception.checked_in")
    assert checked.actor_kind == "staff" and checked.actor_id == str(venue_a.user_id)
    assert checked.target_id == str(day.booking.pk)
    assert checked.details == {"venue": day.civic.pk, "slot": day.later.pk}


def test_a_second_check_in_is_refused_without_harm(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    check_in(client_a, day.booking)
    response = check_in(client_a, day.booking)
    assert "既に受付済みです" in client_a.get(response["Location"]).content.decode()
    assert status_of(tenant_a, day.booking) == Booking.Status.CHECKED_IN
    assert len(events(tenant_a, "reception.checked_in")) == 1
    assert events(tenant_a, "reception.refused")[-1].details == {
        "operation": "check_in",
        "reason": "already_checked_in",
    }


def test_only_todays_bookings_are_checked_in(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        tomorrow = make_booking(day.resident, day.tomorrow, dose=2)
    logged_in(client_a, venue_a, clock)
    card = client_a.get(f"/console/reception/bookings/{tomorrow.pk}/").content.decode()
    assert "本日の予約ではありません" in card and 'id="check-in"' not in card

    response = check_in(client_a, tomorrow)
    assert (
        "本日の予約ではないため、受付できません"
        in client_a.get(response["Location"]).content.decode()
    )
    assert status_of(tenant_a, tomorrow) == Booking.Status.ACTIVE
    assert events(tenant_a, "reception.refused")[-1].details["reason"] == "not_today"


def test_venue_staff_of_one_venue_cannot_check_in_at_another(
    tenant_a: Municipality, client_a: Client, day: Day, venue_north_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_north_a, clock)
    response = check_in(client_a, day.booking)
    assert response.status_code == 403
    assert RESIDENT_NAME not in response.content.decode()
    assert status_of(tenant_a, day.booking) == Booking.Status.ACTIVE
    assert events(tenant_a, "reception.refused")[-1].details["reason"] == "other_venue"
    assert not events(tenant_a, "reception.checked_in")


def test_an_admin_checks_in_at_any_venue(
    tenant_a: Municipality, client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        north = make_booking(day.resident, day.north_today, dose=2)
    logged_in(client_a, admin_a, clock)
    assert check_in(client_a, north).status_code == 302
    assert status_of(tenant_a, north) == Booking.Status.CHECKED_IN


def test_cancelled_and_no_show_bookings_are_not_checked_in(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(status=Booking.Status.CANCELLED)
    logged_in(client_a, venue_a, clock)
    check_in(client_a, day.booking)
    assert status_of(tenant_a, day.booking) == Booking.Status.CANCELLED
    assert events(tenant_a, "reception.refused")[-1].details["reason"] == "not_active"


def test_a_cancelled_bookings_card_says_so_and_names_the_booking_that_stands(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """The resident shows the confirmation of a booking they changed: its card says it is
    cancelled, and which booking stands instead (another venue, tomorrow), or that none."""
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(status=Booking.Status.CANCELLED)
    logged_in(client_a, venue_a, clock)
    url = f"/console/reception/bookings/{day.booking.pk}/"
    said = client_a.get(url).content.decode().split('id="cancelled"')[1].split("</p>")[0]
    assert "この予約は取り消されています" in said and "有効な予約はありません" in said
    with tenant_context(tenant_a):
        stands = make_booking(day.resident, day.tomorrow)
    said = client_a.get(url).content.decode().split('id="cancelled"')[1].split("</p>")[0]
    assert f"{day.civic.name}（予約番号 {booking_number_display(stands.booking_number)}）" in said
    assert 'id="check-in"' not in client_a.get(url).content.decode()
    # Another venue, another day: said to exist, not where or when (nobody at this desk
    # learns from a card opened by its id where residents elsewhere will be).
    with tenant_context(tenant_a):
        north_tomorrow = make_slot(day.north, day.pfizer, at(1, 11))
        Booking.objects.filter(pk=stands.pk).update(slot=north_tomorrow)
    said = client_a.get(url).content.decode().split('id="cancelled"')[1].split("</p>")[0]
    assert "ほかの会場で別の日の予約があります" in said
    assert day.north.name not in said and booking_number_display(stands.booking_number) not in said
    # Today at another venue: named, to send the resident there now.
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=stands.pk).update(slot=day.north_today)
    said = client_a.get(url).content.decode().split('id="cancelled"')[1].split("</p>")[0]
    assert day.north.name in said


def test_a_withdrawn_voucher_is_not_checked_in(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Voucher.objects.filter(pk=day.resident.pk).update(status=Voucher.Status.WITHDRAWN)
    logged_in(client_a, venue_a, clock)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert "対象外（転出・死亡等）" in card and 'id="check-in"' not in card
    check_in(client_a, day.booking)
    assert status_of(tenant_a, day.booking) == Booking.Status.ACTIVE
    assert events(tenant_a, "reception.refused")[-1].details["reason"] == "voucher_withdrawn"


def test_check_in_is_a_post_with_a_csrf_token(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    strict = Client(HTTP_HOST=host_of(tenant_a), enforce_csrf_checks=True)
    strict.cookies["sessionid"] = client_a.cookies["sessionid"].value
    assert strict.get(f"/console/reception/bookings/{day.booking.pk}/check-in/").status_code == 405
    assert check_in(strict, day.booking).status_code == 403  # no token
    assert status_of(tenant_a, day.booking) == Booking.Status.ACTIVE


def test_an_auditor_cannot_check_in(
    tenant_a: Municipality, client_a: Client, day: Day, clock
) -> None:
    auditor = make_staff(tenant_a, "kansa@kodaira.example.jp", StaffMember.Role.AUDITOR)
    logged_in(client_a, auditor, clock)
    assert check_in(client_a, day.booking).status_code == 403
    assert status_of(tenant_a, day.booking) == Booking.Status.ACTIVE


def _not_given(client: Client, booking: Booking, **data: str):
    return client.post(f"/console/reception/bookings/{booking.pk}/not-given/", data)


def test_a_check_in_by_mistake_is_undone_and_the_booking_is_booked_again(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    check_in(client_a, day.booking)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert 'id="not-given"' in card and "接種を見合わせる" in card
    _not_given(client_a, day.booking, outcome="undo")  # not confirmed: nothing happens
    assert status_of(tenant_a, day.booking) == Booking.Status.CHECKED_IN
    response = _not_given(client_a, day.booking, outcome="undo", confirm="1")
    assert "受付を取り消しました" in client_a.get(response["Location"]).content.decode()
    assert status_of(tenant_a, day.booking) == Booking.Status.ACTIVE
    (undone,) = events(tenant_a, "reception.check_in_undone")
    assert undone.actor_id == str(venue_a.user_id)


def test_a_deferred_vaccination_ends_the_booking_and_gives_its_place_back(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    check_in(client_a, day.booking)
    with tenant_context(tenant_a):  # its place, as the booking service claims it
        Slot.objects.filter(pk=day.later.pk).update(booked_web=1)
    response = _not_given(client_a, day.booking, outcome="deferred", confirm="1")
    page = client_a.get(response["Location"]).content.decode()
    assert "接種を見合わせ、予約を終了しました" in page and 'id="not-given"' not in page
    # Opened again later, the card says it was a deferral, not only 取消.
    again = client_a.get(response["Location"]).content.decode()
    assert "予診の結果などで接種を見合わせ" in again.split('id="deferred"')[1].split("</p>")[0]
    assert '<span id="booking-status" class="status-cancelled">接種見合わせ</span>' in again
    assert status_of(tenant_a, day.booking) == Booking.Status.CANCELLED
    with tenant_context(tenant_a):
        ended_booking = Booking.objects.get(pk=day.booking.pk)
        assert ended_booking.cancel_reason == Booking.CancelReason.DEFERRED
    with tenant_context(tenant_a):
        assert Slot.objects.get(pk=day.later.pk).booked_web == 0
    assert len(events(tenant_a, "reception.deferred")) == 1
    (ended,) = events(tenant_a, "booking.cancelled")
    # Recorded as a deferral at the venue, not as a cancellation by the call centre.
    assert ended.details["reason"] == "deferred" and "channel" not in ended.details
    # The same press again (a double click): said as done, not as an error.
    twice = _not_given(client_a, day.booking, outcome="deferred", confirm="1")
    assert "この操作はすでに記録されています" in client_a.get(twice["Location"]).content.decode()
    assert len(events(tenant_a, "booking.cancelled")) == 1
    # Nothing to undo twice; and a dose recorded is never undone this way.
    again = _not_given(client_a, day.booking, outcome="undo", confirm="1")
    assert "受付済みの状態ではありません" in client_a.get(again["Location"]).content.decode()


def test_the_card_keeps_the_focus_for_the_next_scan_and_warns_of_an_early_arrival(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """A scanner types the next code and an Enter wherever the focus is: on the check-in
    button it would check in the resident on screen. The focus stays in the lookup box."""
    logged_in(client_a, venue_a, clock)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert card.count("autofocus") == 1
    assert "autofocus" in card.split('name="number"')[1].split(">")[0]
    assert card.index('id="next-heading"') < card.index('id="identity-heading"')
    assert 'id="early"' not in card  # 10:00, half an hour ahead
    with tenant_context(tenant_a):
        starts = day.booking.slot.starts_at + timedelta(hours=3)
        Slot.objects.filter(pk=day.booking.slot_id).update(
            starts_at=starts, ends_at=starts + timedelta(minutes=30)
        )
    early = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert "この予約は本日 13:00 からです" in early.split('id="early"')[1]


def test_a_deferral_counts_in_the_days_table(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=day.booking.pk).update(
            status=Booking.Status.CANCELLED, cancel_reason=Booking.CancelReason.DEFERRED
        )
    logged_in(client_a, venue_a, clock)
    page = client_a.get("/console/reception/").content.decode()
    row = page.split(f'<th scope="row">{day.civic.name}</th>')[1].split("</tr>")[0]
    assert [cell.split("</td>")[0] for cell in row.split("<td>")[1:6]] == ["0", "0", "0", "0", "1"]
    # Looked up by the voucher number, the day's deferred booking opens (its card says so).
    found = client_a.post("/console/reception/", {"number": day.resident.voucher_number})
    assert found["Location"] == f"/console/reception/bookings/{day.booking.pk}/"
