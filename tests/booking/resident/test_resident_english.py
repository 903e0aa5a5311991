"""Japanese by default; English through the base template's language form."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import ContactPreference
from booking.services.reception import JAPAN as JST
from tenants.models import Municipality
from tests.booking.resident.conftest import Resident, World, birth_fields, logged_in

CATALOGUE = Path(django_settings.BASE_DIR) / "booking" / "locale"


@pytest.fixture
def english_catalogue() -> None:
    # The booking app's own catalogue, found by Django without any setting.
    assert (CATALOGUE / "en" / "LC_MESSAGES" / "django.mo").exists()


def _english(client: Client) -> None:
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302


def test_the_site_is_japanese_by_default(client_a: Client, dob_mode: Municipality) -> None:
    text = client_a.get("/").content.decode()
    assert '<html lang="ja">' in text and "ワクチン接種の予約" in text
    # Each language is offered by its own name, so a reader of either finds theirs.
    assert '<option value="en" lang="en">English</option>' in text
    assert '<option value="ja" lang="ja" selected>日本語</option>' in text
    assert '言語 <span lang="en">/ Language</span>' in text
    assert '<span lang="ja">' not in text  # the page is Japanese as a whole


def test_the_language_form_switches_the_residents_pages_to_english(
    client_a: Client, dob_mode: Municipality, resident_a: Resident, english_catalogue: None
) -> None:
    _english(client_a)
    text = client_a.get("/").content.decode()
    assert '<html lang="en">' in text and 'Language <span lang="ja">/ 言語</span>' in text
    assert '<option value="ja" lang="ja">日本語</option>' in text
    assert "vaccination booking" in text and "Voucher number (10 digits)" in text
    assert "Date of birth" in text and "Booking by phone" in text
    failed = client_a.post(
        "/login/", {"voucher_number": resident_a.number, **birth_fields(date(1950, 4, 2))}
    )
    assert "The voucher number or the date of birth is not correct." in failed.content.decode()


def slot_day(world: World) -> str:
    from booking.models import Slot

    with tenant_context(world.municipality):
        first = Slot.objects.order_by("starts_at").first()
        assert first is not None
        return first.starts_at.astimezone(JST).date().isoformat()


def test_my_page_and_the_booking_pages_read_in_english(
    client_a: Client, world_a: World, resident_a: Resident, english_catalogue: None
) -> None:
    logged_in(client_a, resident_a)
    _english(client_a)
    world_a.slot(3, 10)
    top = client_a.get("/").content.decode()
    # The name alone is Japanese, and marked so (read with a Japanese voice).
    assert '<span lang="ja">65歳以上</span></strong> (aged 65 or over)' in top
    mypage = client_a.get("/mypage/").content.decode()
    assert "My page" in mypage and "Book dose 1" in mypage and "Not registered" in mypage
    dates = client_a.get("/book/").content.decode()
    assert "Choose the day of your vaccination" in dates and "places available" in dates
    assert "Search by venue" in dates
    venues = client_a.get("/book/venues/").content.decode()
    assert "Choose the venue of your vaccination" in venues and "First free place:" in venues
    assert "See the days with free places at" in venues and "Search by date" in venues
    # Japanese punctuation stays out of the English pages' labels and asides.
    assert "Vaccine: " in venues and "Availability: " in dates and "：" not in dates
    # The municipality's names are Japanese: said once, and marked so for screen readers.
    assert 'id="names-in-japanese"' in dates and "shown in Japanese" in dates
    assert re.search(r'<option value="pfizer"[^>]* lang="ja"', dates)
    assert '<option value="" selected>' in dates or '<option value="">' in dates
    day = client_a.get(f"/book/{slot_day(world_a)}/").content.decode()
    assert '<span class="slot-product" lang="ja">' in day
    slot = world_a.slot(4, 11)
    confirm = client_a.get(f"/book/slot/{slot.pk}/").content.decode()
    assert "Dose 1 (" in confirm and "（" not in confirm.split("<main")[1]
    assert f'<span lang="ja">{slot.venue.name}</span>' in confirm
    assert f'<span lang="ja">{slot.venue.address}</span>' in confirm
    # Booked, its cancel link says what it cancels (a bare "Cancel" reads as "close this").
    booked = client_a.post(f"/book/slot/{slot.pk}/")
    assert booked.status_code == 302
    for page in ("/mypage/", booked["Location"].replace("done/", "")):
        text = client_a.get(page).content.decode()
        assert ">Cancel booking</a>" in text and ">Cancel</a>" not in text, page


def test_the_birth_date_reads_year_month_day_with_the_era_in_english(
    client_a: Client, dob_mode: Municipality, english_catalogue: None
) -> None:
    _english(client_a)
    text = client_a.get("/").content.decode()
    selects = re.findall(r'<select name="birth_date_(year|month|day)"', text)
    assert selects == ["year", "month", "day"]  # as the help text says: year, month and day
    assert '<option value="1948">1948 (Showa 23)</option>' in text
    assert '<option value="1926">1926 (Taisho 15 / Showa 1)</option>' in text
    assert "昭和" not in text and "（" not in text.split('name="birth_date_year"')[1][:20000]


def test_messages_are_sent_in_the_language_of_the_site_until_the_resident_chooses(
    client_a: Client, world_a: World, resident_a: Resident, english_catalogue: None
) -> None:
    logged_in(client_a, resident_a)
    _english(client_a)
    form = client_a.get("/contact/").content.decode()
    assert '<option value="en" selected>English</option>' in form
    client_a.post("/contact/", {"email": "hanako@example.jp", "phone": "", "channels": ["email"]})
    with tenant_context(world_a.municipality):
        assert ContactPreference.objects.get(voucher_id=resident_a.pk).language == "en"
