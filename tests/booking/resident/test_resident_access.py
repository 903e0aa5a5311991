"""The cast against every resident page: the anonymous visitor, a neighbour in the same
municipality, a resident of another municipality. Plus what every page must carry: no-store,
a strict CSP, CSRF on every form, nothing personal in any URL, nothing from a third party."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import Booking, Voucher
from booking.services.booking import booking_create
from tenants.models import Municipality
from tests.booking.resident.conftest import (
    Resident,
    World,
    build_world,
    events,
    logged_in,
    set_mode,
)

RESIDENT_PAGES = [
    "/mypage/",
    "/contact/",
    "/book/",
    "/password/",
]


def _book_directly(world: World, resident: Resident, days: int = 3) -> Booking:
    with tenant_context(world.municipality):
        voucher = Voucher.objects.get(pk=resident.pk)
        slot = world.slot(days, 10)
        return booking_create(
            voucher=voucher, slot=slot, channel="web", actor=Actor.resident(voucher.pk)
        )


def _booking_urls(number: str, slot_id: int) -> list[str]:
    return [
        f"/bookings/{number}/",
        f"/bookings/{number}/done/",
        f"/bookings/{number}/print/",
        f"/bookings/{number}/cancel/",
        f"/bookings/{number}/change/",
        f"/bookings/{number}/change/2026-06-01/",
        f"/bookings/{number}/change/slot/{slot_id}/",
    ]


@pytest.fixture
def neighbours_booking(world_a: World, neighbour_a: Resident) -> Booking:
    return _book_directly(world_a, neighbour_a)


def test_the_anonymous_visitor_is_sent_to_the_top_page_and_audited(
    client_a: Client, world_a: World, neighbours_booking: Booking
) -> None:
    urls = RESIDENT_PAGES + _booking_urls(neighbours_booking.booking_number, 1)
    posts = [
        "/contact/",
        "/password/",
        *[url for url in urls if "/cancel/" in url or "/slot/" in url],
    ]
    posts.append("/book/slot/1/")
    for url, method in [(url, client_a.get) for url in urls] + [
        (url, client_a.post) for url in posts
    ]:
        response = method(url)
        assert response.status_code == 302, url
        assert response["Location"] == "/", url
    refused = events(world_a.municipality, "resident.access_refused")
    assert len(refused) == len(urls) + len(posts)
    assert {event.details["reason"] for event in refused} == {"anonymous"}
    with tenant_context(world_a.municipality):
        assert Booking.objects.get(pk=neighbours_booking.pk).status == "active"


def test_a_neighbour_cannot_see_change_or_cancel_a_booking_by_its_number(
    client_a: Client, world_a: World, resident_a: Resident, neighbours_booking: Booking
) -> None:
    logged_in(client_a, resident_a)
    target = world_a.slot(6, 9)
    for url in _booking_urls(neighbours_booking.booking_number, target.pk):
        assert client_a.get(url).status_code == 404, url
        assert client_a.post(url).status_code in (404, 405), url
    # Lower case and the printed hyphen find nothing either.
    number = neighbours_booking.booking_number
    for guess in (number.lower(), f"{number[:5]}-{number[5:]}"):
        assert client_a.get(f"/bookings/{guess}/").status_code == 404
    with tenant_context(world_a.municipality):
        untouched = Booking.objects.get(pk=neighbours_booking.pk)
    assert untouched.status == "active" and untouched.slot_id == neighbours_booking.slot_id
    mypage = client_a.get("/mypage/").content.decode()
    assert number not in mypage and number[:5] not in mypage


def test_guessing_numbers_and_ids_finds_nothing(
    client_a: Client, world_a: World, resident_a: Resident, neighbours_booking: Booking
) -> None:
    logged_in(client_a, resident_a)
    for guess in ("AAAAAAAAAA", "2222222222", str(neighbours_booking.pk), "0", "-1", "%00"):
        assert client_a.get(f"/bookings/{guess}/").status_code == 404
    assert client_a.get("/book/slot/999999/").status_code == 404
    assert client_a.get("/book/not-a-date/").status_code == 404


def test_a_resident_of_a_sees_nothing_of_b(
    client_a: Client,
    world_a: World,
    resident_a: Resident,
    tenant_b: Municipality,
    resident_b: Resident,
) -> None:
    world_b = build_world(tenant_b)
    bookings_b = _book_directly(world_b, resident_b)
    logged_in(client_a, resident_a)
    for url in _booking_urls(bookings_b.booking_number, bookings_b.slot_id):
        assert client_a.get(url).status_code == 404, url
    # B's slot id is a slot of A's or nothing: never B's.
    page = client_a.get(f"/book/slot/{bookings_b.slot_id}/")
    assert "千代田" not in page.content.decode()
    # And A's session cookie is no session at B.
    client_b = Client(HTTP_HOST="chiyoda.localhost")
    client_b.cookies = client_a.cookies
    assert client_b.get("/mypage/").status_code == 302
    with tenant_context(tenant_b):
        assert Booking.objects.get(pk=bookings_b.pk).status == "active"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.resources: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self.forms: list[dict[str, object]] = []
        self._form: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "style" in values:
            self.inline_styles += 1
        if any(name.startswith("on") for name in values):
            self.inline_scripts += 1
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1
        if tag == "style":
            self.inline_styles += 1
        for name in ("href", "src", "action"):
            if name in values:
                self.urls.append(values[name])
                if tag in ("script", "img", "link") and name in ("src", "href"):
                    self.resources.append(values[name])
        if tag == "form":
            self._form = {"method": values.get("method", "get").lower(), "csrf": False}
            self.forms.append(self._form)
        if tag == "input" and values.get("name") == "csrfmiddlewaretoken" and self._form:
            self._form["csrf"] = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def _pages_of_a_logged_in_resident(
    client: Client, world: World, resident: Resident
) -> Iterator[tuple[str, object]]:
    yield "/", client.get("/")
    logged_in(client, resident)
    slot = world.slot(3, 10)
    day = slot.starts_at.date().isoformat()
    for url in ["/", "/mypage/", "/contact/", "/book/", f"/book/{day}/", f"/book/slot/{slot.pk}/"]:
        yield url, client.get(url)
    booking = client.post(f"/book/slot/{slot.pk}/")
    number = booking["Location"].split("/")[2]
    for url in _booking_urls(number, world.slot(5, 10).pk)[:5]:
        yield url, client.get(url)


def test_every_page_is_no_store_with_a_strict_csp_and_csrf_on_every_form(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    pages = list(_pages_of_a_logged_in_resident(client_a, world_a, resident_a))
    assert len(pages) > 10
    for url, response in pages:
        assert response.status_code == 200, url  # type: ignore[attr-defined]
        assert response["Cache-Control"] == "no-store", url  # type: ignore[index]
        csp = response["Content-Security-Policy"]  # type: ignore[index]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp
        parser = _Page()
        parser.feed(response.content.decode())  # type: ignore[attr-defined]
        assert parser.inline_scripts == 0 and parser.inline_styles == 0, url
        for form in parser.forms:
            if form["method"] == "post":
                assert form["csrf"], url


def test_no_url_carries_anything_personal_and_nothing_loads_from_a_third_party(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    personal = [
        resident_a.number,
        resident_a.born.isoformat(),
        resident_a.born.strftime("%Y%m%d"),
        "コダイラ",
        "小平 花子",
        "hanako",
        "0423411211",
        "1878701",
    ]
    seen_urls: list[str] = []
    for url, response in _pages_of_a_logged_in_resident(client_a, world_a, resident_a):
        seen_urls.append(url)
        parser = _Page()
        parser.feed(response.content.decode())  # type: ignore[attr-defined]
        seen_urls += parser.urls
        for resource in parser.resources:
            parts = urlsplit(resource)
            assert parts.scheme in ("", "data"), resource
            assert not parts.netloc, resource
    assert len(seen_urls) > 50
    for seen in seen_urls:
        for value in personal:
            assert value not in seen, (seen, value)


def test_redirects_after_login_carry_nothing_personal(
    client_a: Client, tenant_a: Municipality, resident_a: Resident
) -> None:
    set_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB_THEN_PASSWORD)
    from tests.booking.resident.conftest import login_dob

    response = login_dob(client_a, resident_a)
    assert response["Location"] == "/password/"
    assert not re.search(r"\d{6,}", response["Location"])
