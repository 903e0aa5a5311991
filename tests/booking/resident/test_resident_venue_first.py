"""Venue first: the clinic a resident always goes to → its days → its slots that day →
confirm, in a new booking, a change and the second dose of a series booked together."""

from __future__ import annotations

import re
from html import unescape

from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import Booking, BookingPolicy, Slot
from booking.selectors.availability import availability_invalidate
from tests.booking.resident.conftest import Resident, World, at, logged_in


def _day(slot: Slot) -> str:
    return slot.starts_at.astimezone(at(0).tzinfo).date().isoformat()


def _links(text: str) -> list[str]:
    """The links of the page's main content (not the header's or the footer's)."""
    main = text.split("<main", 1)[1].split("</main>", 1)[0]
    return [unescape(href) for href in re.findall(r'href="([^"]+)"', main)]


def test_a_resident_books_at_the_venue_they_chose_first(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    civic = world_a.slot(3, 10)
    world_a.slot(4, 10)
    north = world_a.slot(5, 14, venue=world_a.north)
    north_pk = world_a.north.pk

    dates = client_a.get("/book/").content.decode()
    assert 'href="/book/venues/"' in dates and "会場から探す" in dates

    listed = client_a.get("/book/venues/")
    text = listed.content.decode()
    assert listed.status_code == 200
    assert "接種を受ける会場を選んでください" in text
    assert text.index("小平市役所") < text.index("北部集会所")  # by area, then name
    assert "東京都小平市上水本町1-1" in text and "ファイザー社ワクチン" in text
    assert "いちばん早い空き" in text
    assert f"/book/?venue={north_pk}" in _links(text)
    assert 'name="venue"' not in text  # no venue filter on the page that chooses one

    days = client_a.get(f"/book/?venue={north_pk}").content.decode()
    assert "北部集会所の空いている日を表示しています" in days
    assert "/book/" in _links(days)  # back to every venue's days
    day_links = [link for link in _links(days) if re.fullmatch(r"/book/\d{4}-.*", link)]
    assert day_links == [f"/book/{_day(north)}/?venue={north_pk}"]
    assert f'<option value="{north_pk}" selected>北部集会所</option>' in days
    assert '<optgroup label="北地区">' in days

    slots = client_a.get(day_links[0]).content.decode()
    assert f'href="/book/slot/{north.pk}/?venue={north_pk}"' in slots
    assert "小平市役所" not in slots.split("<main", 1)[1].split("</form>", 1)[1]
    # The venue's name in the heading of its section, and nothing of the other venue.
    assert f'id="venue-{north_pk}"' in slots and f'id="venue-{world_a.civic.pk}"' not in slots
    assert _links(slots)[-1] == f"/book/?venue={north_pk}"  # choose the day again, there

    response = client_a.post(f"/book/slot/{north.pk}/")
    assert response.status_code == 302
    with tenant_context(world_a.municipality):
        booking = Booking.objects.get(voucher_id=resident_a.pk)
    assert booking.slot_id == north.pk != civic.pk


def test_a_full_venue_is_listed_without_a_way_to_its_days(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    world_a.slot(3, 10)
    world_a.slot(3, 14, venue=world_a.north, web=1, booked_web=1)
    text = client_a.get("/book/venues/").content.decode()
    assert "北部集会所" in text
    assert "いまは空きがありません" in text
    assert f"/book/?venue={world_a.north.pk}" not in _links(text)
    assert f"/book/?venue={world_a.civic.pk}" in _links(text)


def test_the_venues_are_filtered_and_the_filters_carried_to_the_days(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    world_a.slot(3, 10)
    world_a.slot(3, 14, venue=world_a.north)
    text = client_a.get("/book/venues/?area=北地区").content.decode()
    assert "北部集会所" in text and f'id="venue-{world_a.civic.pk}"' not in text
    assert 'action="/book/venues/"' in text
    area = "area=%E5%8C%97%E5%9C%B0%E5%8C%BA"
    assert f"/book/?{area}&venue={world_a.north.pk}" in _links(text)
    # From the dates page, the way to the venues keeps the area, not the venue.
    dates = client_a.get(f"/book/?area=北地区&venue={world_a.north.pk}").content.decode()
    assert f"/book/venues/?{area}" in _links(dates)
    with tenant_context(world_a.municipality):
        Slot.objects.filter(venue=world_a.north).update(status=Slot.Status.CLOSED)
        availability_invalidate(days=[])  # as the console does after editing slots
    nothing = client_a.get("/book/venues/?area=北地区").content.decode()
    assert "この条件で予約できる会場はありません" in nothing


def test_a_venue_that_is_not_offered_filters_nothing(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    for venue in ("999999", "x", "<b>", ""):
        response = client_a.get("/book/", {"venue": venue})
        text = response.content.decode()
        assert response.status_code == 200
        assert f"/book/{_day(slot)}/" in _links(text)
        assert "の空いている日を表示しています" not in text and "<b>" not in text
        slots = client_a.get(f"/book/{_day(slot)}/", {"venue": venue}).content.decode()
        assert f'href="/book/slot/{slot.pk}/"' in slots


def test_a_change_can_start_from_a_venue(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first = world_a.slot(3, 10)
    north = world_a.slot(4, 14, venue=world_a.north)
    assert client_a.post(f"/book/slot/{first.pk}/").status_code == 302
    with tenant_context(world_a.municipality):
        number = Booking.objects.get(voucher_id=resident_a.pk).booking_number
    dates = client_a.get(f"/bookings/{number}/change/").content.decode()
    assert f"/bookings/{number}/change/venues/?product=pfizer" in _links(dates)
    venues = client_a.get(f"/bookings/{number}/change/venues/").content.decode()
    assert "を変更します" in venues
    days_url = f"/bookings/{number}/change/?product=pfizer&venue={world_a.north.pk}"
    assert days_url in _links(venues)
    days = client_a.get(days_url).content.decode()
    slots_url = f"/bookings/{number}/change/{_day(north)}/?product=pfizer&venue={world_a.north.pk}"
    assert slots_url in _links(days)
    slots = client_a.get(slots_url).content.decode()
    assert (
        f"/bookings/{number}/change/slot/{north.pk}/?product=pfizer&venue={world_a.north.pk}"
        in _links(slots)
    )


def test_the_second_dose_of_a_series_can_start_from_a_venue(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    with tenant_context(world_a.municipality):
        policy = BookingPolicy.current()
        policy.book_series_together = True
        policy.save()
    logged_in(client_a, resident_a)
    first = world_a.slot(3, 10)
    second = world_a.slot(25, 10, venue=world_a.north)
    world_a.slot(26, 10)
    assert client_a.post(f"/book/slot/{first.pk}/")["Location"] == (
        f"/book/slot/{first.pk}/second/"
    )
    venues = client_a.get(f"/book/slot/{first.pk}/second/venues/").content.decode()
    assert "2回目の接種を受ける会場を選んでください" in venues
    days_url = f"/book/slot/{first.pk}/second/?product=pfizer&venue={world_a.north.pk}"
    assert days_url in _links(venues)
    days = client_a.get(days_url).content.decode()
    day_links = [link for link in _links(days) if "/second/20" in link]
    assert day_links == [
        f"/book/slot/{first.pk}/second/{_day(second)}/?product=pfizer&venue={world_a.north.pk}"
    ]


def test_with_a_venue_chosen_the_area_is_its_own(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    civic = world_a.slot(3, 10)
    world_a.slot(4, 10, venue=world_a.north)
    # The venues list of 北地区 leads to a venue; the resident then picks a venue of another
    # area from the select, the area still in the address: that venue's days, not nothing.
    page = client_a.get("/book/", {"area": "北地区", "venue": world_a.civic.pk}).content.decode()
    assert [link for link in _links(page) if re.fullmatch(r"/book/\d{4}-.*", link)] == [
        f"/book/{_day(civic)}/?area=%E5%8C%97%E5%9C%B0%E5%8C%BA&venue={world_a.civic.pk}"
    ]
    assert '<select name="area"' not in page and 'name="venue"' in page
    assert '<input type="hidden" name="area" value="北地区">' in page  # kept for the links
    slots = client_a.get(
        f"/book/{_day(civic)}/", {"area": "北地区", "venue": world_a.civic.pk}
    ).content.decode()
    assert f'href="/book/slot/{civic.pk}/?' in slots
    assert "/book/venues/?area=%E5%8C%97%E5%9C%B0%E5%8C%BA" in _links(page)
    # Without a venue, the area select is back.
    assert '<select name="area"' in client_a.get("/book/", {"area": "北地区"}).content.decode()
