"""A resident whose age no phase opens to yet is told so before choosing anything — with
the day their turn opens where the municipality has set it — rather than after three pages;
one who comes of age inside the booking window is shown the days from their birthday."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from booking.models import AgePhase, Booking, VaccineProduct
from booking.services.booking import age_window
from booking.services.booking.checks import _birthdays
from tests.booking.resident.conftest import World, at, logged_in, make_resident, today


def _years_before(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


def test_a_resident_too_young_for_any_phase_opened_is_told_when_their_turn_opens(
    client_a: Client, world_a: World
) -> None:
    young = make_resident(world_a.municipality, "1000000005", born=date(1990, 1, 1))
    slot = world_a.slot(5, 10)
    with tenant_context(world_a.municipality):
        opens = timezone.localtime(AgePhase.objects.get(minimum_age=12).opens_at)
    when = f"{opens.year}年{opens.month}月{opens.day}日"
    logged_in(client_a, young)
    mypage = client_a.get("/mypage/").content.decode()
    assert "あなたの年齢の方の予約受付は" in mypage and when in mypage
    assert 'href="/book/"' not in mypage  # no button to pages that would only refuse
    dates = client_a.get("/book/")
    assert dates.status_code == 200
    text = dates.content.decode()
    assert when in text and f"{opens:%H:%M}に始まります" in text
    assert 'class="day"' not in text
    assert when in client_a.get("/book/venues/").content.decode()
    assert when in client_a.get(f"/book/slot/{slot.pk}/").content.decode()
    # A booking sent anyway is refused by the service, and the answer says the same.
    refused = client_a.post(f"/book/slot/{slot.pk}/")
    assert refused.status_code == 409 and when in refused.content.decode()
    with tenant_context(world_a.municipality):
        assert not Booking.objects.filter(voucher_id=young.pk).exists()


def test_with_no_phase_set_for_them_the_service_refusal_says_where_to_ask(
    client_a: Client, world_a: World
) -> None:
    with tenant_context(world_a.municipality):
        AgePhase.objects.filter(minimum_age=12).delete()
    young = make_resident(world_a.municipality, "1000000005", born=date(1990, 1, 1))
    logged_in(client_a, young)
    for path in ("/mypage/", "/book/"):
        text = client_a.get(path).content.decode()
        assert "現在はまだ予約の対象ではありません" in text
        assert "コールセンター（電話 042-000-0000）" in text


def test_a_resident_who_comes_of_age_in_the_window_sees_the_days_from_their_birthday(
    client_a: Client, world_a: World
) -> None:
    birthday = today() + timedelta(days=6)
    turning = make_resident(world_a.municipality, "1000000006", born=_years_before(birthday, 65))
    before, on = world_a.slot(4, 10), world_a.slot(6, 10)
    logged_in(client_a, turning)
    mypage = client_a.get("/mypage/").content.decode()
    assert 'href="/book/"' in mypage
    text = client_a.get("/book/").content.decode()
    shown = f"{birthday.year}年{birthday.month}月{birthday.day}日"
    assert "接種日の年齢が予約の対象となる" in text and shown in text
    days = re.findall(r'href="/book/(\d{4}-\d{2}-\d{2})/"', text)
    assert days == [birthday.isoformat()]
    # The day before the birthday is refused by the service, as before.
    refused = client_a.post(f"/book/slot/{before.pk}/")
    assert refused.status_code == 409
    assert client_a.post(f"/book/slot/{on.pk}/").status_code == 302


def test_an_eligible_resident_sees_no_age_notice(
    client_a: Client, world_a: World, resident_a
) -> None:
    world_a.slot(3, 10)
    logged_in(client_a, resident_a)
    text = client_a.get("/book/").content.decode()
    assert "以降の日を表示しています" not in text and 'class="day"' in text


@pytest.mark.parametrize(
    ("born", "after", "until", "expected"),
    [
        (date(1961, 12, 10), date(2026, 12, 6), date(2027, 1, 3), [date(2026, 12, 10)]),
        (date(1961, 12, 6), date(2026, 12, 6), date(2027, 1, 3), []),  # today is not "after"
        (date(1961, 1, 2), date(2026, 12, 6), date(2027, 1, 3), [date(2027, 1, 2)]),
        (date(1960, 2, 29), date(2027, 2, 1), date(2027, 3, 31), [date(2027, 3, 1)]),
        (date(1960, 2, 29), date(2028, 2, 1), date(2028, 3, 31), [date(2028, 2, 29)]),
    ],
)
def test_birthdays_are_the_days_age_on_counts_a_year_more(
    born: date, after: date, until: date, expected: list[date]
) -> None:
    from booking.services.booking import age_on

    assert _birthdays(born, after, until) == expected
    for day in expected:
        assert age_on(born, day) == age_on(born, day - timedelta(days=1)) + 1


def test_the_age_window_follows_the_services_rule(world_a: World) -> None:
    now = timezone.now()
    first, last = today(), today() + timedelta(days=28)
    with tenant_context(world_a.municipality):
        old = make_resident(world_a.municipality, "1000000007", born=date(1940, 1, 1))
        young = make_resident(world_a.municipality, "1000000008", born=date(1990, 1, 1))
        child = make_resident(world_a.municipality, "1000000009", born=date(2020, 1, 1))
        assert age_window(old.voucher, first, last, now=now).first_day == first
        window = age_window(young.voucher, first, last, now=now)
        assert window.first_day is None
        assert window.phase_opens_at == AgePhase.objects.get(minimum_age=12).opens_at
        # Too young for every phase, later ones included.
        assert age_window(child.voucher, first, last, now=now) == type(window)(None, None)
    assert at(0).date() == first


def test_a_vaccine_for_older_residents_is_refused_on_its_confirmation_with_the_reason(
    client_a: Client, world_a: World
) -> None:
    """A 15-year-old in an opened phase, and a vaccine for 18 and over: its slot's
    confirmation says so instead of offering 予約する, a booking sent anyway is refused with
    the same reason and the day's slots to choose from again, and a slot of a vaccine for
    their age books."""
    with tenant_context(world_a.municipality):
        AgePhase.objects.filter(minimum_age=12).update(opens_at=timezone.now() - timedelta(days=1))
        adults_only = VaccineProduct.objects.create(
            code="adult", name="成人用ワクチン", interval_days=28, doses_in_series=2, minimum_age=18
        )
        world_a.civic.products.add(adults_only)
    teenager = make_resident(world_a.municipality, "1000000015", born=_years_before(today(), 15))
    for_adults = world_a.slot(5, 10, product=adults_only)
    for_everyone = world_a.slot(5, 11)
    logged_in(client_a, teenager)
    reason = "このワクチン（成人用ワクチン）は18歳以上の方が対象です"
    confirmation = client_a.get(f"/book/slot/{for_adults.pk}/")
    text = confirmation.content.decode()
    assert confirmation.status_code == 200
    assert reason in text and "この予約枠はご予約いただけません" in text
    assert "<form" not in text.split('id="booking-error"')[1]  # no 予約する
    refused = client_a.post(f"/book/slot/{for_adults.pk}/")
    assert refused.status_code == 409
    text = refused.content.decode()
    assert reason in text and f"/book/slot/{for_everyone.pk}/" in text
    booked = client_a.post(f"/book/slot/{for_everyone.pk}/")
    assert booked.status_code == 302
    with tenant_context(world_a.municipality):
        assert list(
            Booking.objects.filter(voucher_id=teenager.pk).values_list("slot_id", flat=True)
        ) == [for_everyone.pk]
