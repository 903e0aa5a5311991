"""End of the day: the bookings of finished slots that nobody came to (today's, and earlier
days' left unmarked)."""

from __future__ import annotations

from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import Booking, StaffMember
from booking.models.bookings import booking_number_display
from tenants.models import Municipality

from ..conftest import StaffAccount, events, make_staff
from .conftest import RESIDENT_NAME, Day, at, logged_in, make_booking, make_slot, make_voucher


def early_bookings(day: Day) -> dict[str, Booking]:
    """At the civic centre: three in the 09:00 slot (one came), one at 10:00; one at the
    north hall at 09:00; one yesterday, never marked."""
    with tenant_context(day.municipality):
        north_early = make_slot(day.north, day.pfizer, at(0, 9))
        yesterday = make_slot(day.civic, day.pfizer, at(-1, 9))

        def voucher(n: int):
            return make_voucher(day.municipality, f"20000000{n:02d}")

        return {
            "absent": make_booking(voucher(1), day.early),
            "absent_too": make_booking(voucher(2), day.early),
            "came": make_booking(voucher(3), day.early, status=Booking.Status.CHECKED_IN),
            "cancelled": make_booking(voucher(4), day.early, status=Booking.Status.CANCELLED),
            "north": make_booking(voucher(5), north_early),
            "yesterday": make_booking(voucher(6), yesterday),
        }


def statuses(day: Day, bookings: dict[str, Booking]) -> dict[str, str]:
    with tenant_context(day.municipality):
        return {key: Booking.objects.get(pk=booking.pk).status for key, booking in bookings.items()}


def test_the_list_shows_ended_slots_still_active_and_marks_them_in_one_action(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    bookings = early_bookings(day)
    logged_in(client_a, venue_a, clock)
    page = client_a.get("/console/reception/no-shows/")  # one venue: listed at once
    text = page.content.decode()
    assert page.status_code == 200
    due = text.split('id="checked-in-unrecorded"')[0]
    listed = {key for key, b in bookings.items() if booking_number_display(b.booking_number) in due}
    # Yesterday's, never marked, too: until it is, the resident cannot book that dose again.
    assert listed == {"absent", "absent_too", "yesterday"}
    assert day.number not in text  # the 10:00 slot has not ended
    assert RESIDENT_NAME not in text and "3件" in text
    yesterday_row = text.split(booking_number_display(bookings["yesterday"].booking_number))[1]
    assert "5月10日（日）</strong> 09:00" in yesterday_row.split("</tr>")[0]

    response = client_a.post(
        "/console/reception/no-shows/",
        {
            "venue": str(day.civic.pk),
            "booking": [
                str(bookings["absent"].pk),
                str(bookings["absent_too"].pk),
                str(bookings["yesterday"].pk),
            ],
        },
    )
    assert response.status_code == 302
    assert "3 件を「来場なし」にしました" in client_a.get(response["Location"]).content.decode()
    assert statuses(day, bookings) == {
        "absent": "no_show",
        "absent_too": "no_show",
        "came": "checked_in",
        "cancelled": "cancelled",
        "north": "active",
        "yesterday": "no_show",
    }
    with tenant_context(tenant_a):
        assert Booking.objects.get(pk=day.booking.pk).status == Booking.Status.ACTIVE
    (marked,) = events(tenant_a, "reception.no_shows_marked")
    assert marked.target_id == str(day.civic.pk)
    assert marked.details == {
        "count": 3,
        "bookings": sorted(b.pk for k, b in bookings.items() if k.startswith(("absent", "yes"))),
    }
    # The button pressed twice: the second finds nothing left, says so, records nothing.
    again = client_a.post(
        "/console/reception/no-shows/",
        {"venue": str(day.civic.pk), "booking": [str(bookings["absent"].pk)]},
    )
    told = client_a.get(again["Location"]).content.decode()
    assert "すでに「来場なし」か受付済みになっています" in told and "0 件" not in told
    assert len(events(tenant_a, "reception.no_shows_marked")) == 1


def test_only_what_was_listed_and_is_still_due_is_marked(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    bookings = early_bookings(day)
    logged_in(client_a, venue_a, clock)
    client_a.get(f"/console/reception/no-shows/?venue={day.civic.pk}")
    # Meanwhile one of the two arrives late and is checked in.
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=bookings["absent_too"].pk).update(
            status=Booking.Status.CHECKED_IN
        )
    client_a.post(
        "/console/reception/no-shows/",
        {
            "venue": str(day.civic.pk),
            # Ids smuggled in: the 10:00 booking, another venue's, one that came.
            "booking": [
                str(bookings["absent"].pk),
                str(bookings["absent_too"].pk),
                str(day.booking.pk),
                str(bookings["north"].pk),
                str(bookings["came"].pk),
            ],
        },
    )
    result = statuses(day, bookings)
    assert result["absent"] == "no_show"
    assert result["absent_too"] == "checked_in"
    assert result["north"] == result["yesterday"] == "active" and result["came"] == "checked_in"
    with tenant_context(tenant_a):
        assert Booking.objects.get(pk=day.booking.pk).status == Booking.Status.ACTIVE
    assert events(tenant_a, "reception.no_shows_marked")[-1].details["count"] == 1


def test_venue_staff_cannot_mark_another_venues_no_shows(
    tenant_a: Municipality, client_a: Client, day: Day, venue_north_a: StaffAccount, clock
) -> None:
    bookings = early_bookings(day)
    logged_in(client_a, venue_north_a, clock)
    listed = client_a.get(f"/console/reception/no-shows/?venue={day.civic.pk}")
    assert listed.status_code == 400
    assert booking_number_display(bookings["absent"].booking_number) not in (
        listed.content.decode()
    )
    assert 'id="venue-refused"' in listed.content.decode()  # said, not an empty page
    response = client_a.post(
        "/console/reception/no-shows/",
        {"venue": str(day.civic.pk), "booking": [str(bookings["absent"].pk)]},
    )
    assert response.status_code == 400
    assert statuses(day, bookings)["absent"] == "active"
    # Their own venue's list is theirs.
    own = client_a.get("/console/reception/no-shows/").content.decode()
    assert booking_number_display(bookings["north"].booking_number) in own


def test_the_call_centre_cannot_mark_no_shows(
    tenant_a: Municipality, client_a: Client, day: Day, clock
) -> None:
    bookings = early_bookings(day)
    operator = make_staff(tenant_a, "call@kodaira.example.jp", StaffMember.Role.CALL_CENTRE)
    logged_in(client_a, operator, clock)
    response = client_a.post(
        "/console/reception/no-shows/",
        {"venue": str(day.civic.pk), "booking": [str(bookings["absent"].pk)]},
    )
    assert response.status_code == 403
    assert statuses(day, bookings)["absent"] == "active"


def test_an_admin_chooses_the_venue(
    tenant_a: Municipality, client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    bookings = early_bookings(day)
    logged_in(client_a, admin_a, clock)
    chooser = client_a.get("/console/reception/no-shows/").content.decode()
    assert "小平市役所" in chooser and "北部集会所" in chooser
    assert booking_number_display(bookings["north"].booking_number) not in chooser
    north = client_a.get(f"/console/reception/no-shows/?venue={day.north.pk}").content.decode()
    assert booking_number_display(bookings["north"].booking_number) in north
    assert booking_number_display(bookings["absent"].booking_number) not in north


def test_earlier_days_bookings_left_checked_in_are_listed_for_the_card(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    bookings = early_bookings(day)  # "came": checked in today, at 09:00
    with tenant_context(day.municipality):
        earlier = make_slot(day.civic, day.pfizer, at(-2, 14))
        stuck = make_booking(
            make_voucher(day.municipality, "2000000099"), earlier, status=Booking.Status.CHECKED_IN
        )
        # Checked in for the 10:00 slot, which has not ended: still being seen to.
        Booking.objects.filter(pk=day.booking.pk).update(status=Booking.Status.CHECKED_IN)
    logged_in(client_a, venue_a, clock)
    text = client_a.get("/console/reception/no-shows/").content.decode()
    listed = text.split('id="checked-in-unrecorded"')[1].split("</section>")[0]
    assert booking_number_display(stuck.booking_number) in listed
    assert f'href="/console/reception/bookings/{stuck.pk}/"' in listed  # its card decides
    # Today's whose slot has ended is listed too (at closing, nothing is left unrecorded);
    # one whose slot goes on is not.
    assert booking_number_display(bookings["came"].booking_number) in listed
    assert day.number not in listed
