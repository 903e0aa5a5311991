"""Recording the dose after the shot, and what it means for the next dose."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import Booking, StaffMember, VaccinationRecord, VaccineProduct
from booking.selectors.vaccinations import VrsQuery
from booking.services.booking import BookingRefused, booking_create
from tenants.models import Municipality

from ..conftest import StaffAccount, events, make_staff
from .conftest import RESIDENT_NAME, Day, at, logged_in, make_booking, make_slot, make_voucher

TODAY = date(2026, 5, 11)


def checked_in(tenant: Municipality, booking: Booking) -> Booking:
    with tenant_context(tenant):
        Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.CHECKED_IN)
    return booking


def record(client: Client, booking: Booking, product: VaccineProduct, **extra: str):
    data = {"product": str(product.pk), "lot_number": " ｆｋ　８８９２ ", "doctor": "医師 一郎"}
    data.update(extra)
    return client.post(f"/console/reception/bookings/{booking.pk}/vaccination/", data)


def test_venue_staff_record_the_dose_given(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert 'id="record-vaccination"' in card and "1回目 ／ 接種日 2026年5月11日" in card

    response = record(client_a, day.booking, day.pfizer)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        vaccination = VaccinationRecord.objects.get()
        booking = Booking.objects.get(pk=day.booking.pk)
    assert booking.status == Booking.Status.VACCINATED
    assert vaccination.booking_id == day.booking.pk
    assert vaccination.voucher_id == day.resident.pk
    assert (vaccination.dose, vaccination.product_id) == (1, day.pfizer.pk)
    assert vaccination.lot_number == "FK8892"  # folded from full width, upper case, no spaces
    assert vaccination.vaccinated_on == TODAY
    assert vaccination.venue_name == "小平市役所" and vaccination.doctor == "医師 一郎"
    assert (vaccination.actor_kind, vaccination.actor_id) == ("staff", str(venue_a.user_id))

    page = client_a.get(response["Location"]).content.decode()
    assert "接種を記録しました" in page and "FK8892" in page and "接種済み" in page
    assert 'id="record-vaccination"' not in page

    (recorded,) = events(tenant_a, "reception.vaccination_recorded")
    assert recorded.target_id == str(vaccination.pk)
    assert recorded.details == {
        "booking": day.booking.pk,
        "dose": 1,
        "product": "pfizer",
        "slot_product": "pfizer",
        "product_reason": "",
    }
    assert "医師" not in str(recorded.details)


def test_a_dose_is_not_recorded_before_check_in(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert 'id="record-vaccination"' not in card
    response = record(client_a, day.booking, day.pfizer)
    assert "受付が済んでいないため" in client_a.get(response["Location"]).content.decode()
    with tenant_context(tenant_a):
        assert not VaccinationRecord.objects.exists()
    assert events(tenant_a, "reception.refused")[-1].details == {
        "operation": "vaccination",
        "reason": "not_checked_in",
    }


def test_another_vaccine_needs_the_doctors_reason(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    refused = record(client_a, day.booking, day.moderna)
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "医師が理由を選んでください" in page
    # The focus on the box to mend (not on the next resident's, nor the lot number).
    assert page.count("autofocus") == 1
    assert "autofocus" in page.split('name="product_reason"')[1].split(">")[0]
    with tenant_context(tenant_a):
        assert not VaccinationRecord.objects.exists()

    accepted = record(client_a, day.booking, day.moderna, product_reason="stock")
    assert accepted.status_code == 302
    with tenant_context(tenant_a):
        assert VaccinationRecord.objects.get().product_id == day.moderna.pk
    assert events(tenant_a, "reception.vaccination_recorded")[-1].details["product_reason"] == (
        "stock"
    )


def test_a_missing_lot_number_is_asked_for(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    response = record(client_a, day.booking, day.pfizer, lot_number="  ")
    assert response.status_code == 400
    assert "ロット番号を入力してください" in response.content.decode()
    with tenant_context(tenant_a):
        assert not VaccinationRecord.objects.exists()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ({"lot_number": "ふぁ１２３４"}, "英数字（とハイフン）で入力してください"),
        ({"lot_number": "FA-12/34"}, "英数字（とハイフン）で入力してください"),
        ({"doctor": '=HYPERLINK("http://evil.example","x")'}, "「=」「+」「-」「@」で始めずに"),
        ({"doctor": "＝佐藤 二郎"}, "「=」「+」「-」「@」で始めずに"),
    ],
)
def test_a_lot_number_or_doctor_the_vrs_file_would_carry_wrong_is_refused(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    clock,  # noqa: ANN001
    typed: dict[str, str],
    message: str,
) -> None:
    """Kana typed with the Japanese input still on, a formula for the spreadsheet the VRS
    file is checked in: refused at the box, nothing recorded."""
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    response = record(client_a, day.booking, day.pfizer, **typed)
    assert response.status_code == 400
    assert message in response.content.decode()
    with tenant_context(tenant_a):
        assert not VaccinationRecord.objects.exists()


def test_a_dose_already_recorded_is_not_recorded_twice(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    with tenant_context(tenant_a):
        VaccinationRecord.objects.create(
            voucher=day.resident,
            dose=1,
            product=day.pfizer,
            lot_number="OLD1",
            vaccinated_on=TODAY - timedelta(days=40),
            venue_name="他市の会場",
            actor_kind="system",
        )
    logged_in(client_a, venue_a, clock)
    response = record(client_a, day.booking, day.pfizer)
    assert "既に記録されています" in client_a.get(response["Location"]).content.decode()
    with tenant_context(tenant_a):
        assert VaccinationRecord.objects.count() == 1
        assert Booking.objects.get(pk=day.booking.pk).status == Booking.Status.CHECKED_IN


def test_the_doctor_of_the_last_record_is_filled_in_for_the_next_resident(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    with tenant_context(tenant_a):
        following = make_booking(make_voucher(tenant_a, "2000000099"), day.later)
    checked_in(tenant_a, following)
    logged_in(client_a, venue_a, clock)
    first = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    assert 'value="医師 一郎"' not in first
    record(client_a, day.booking, day.pfizer)
    card = client_a.get(f"/console/reception/bookings/{following.pk}/").content.decode()
    assert 'value="医師 一郎"' in card.split('name="doctor"')[1].split(">")[0]


def test_a_stale_form_for_a_resident_vaccinated_meanwhile_says_it_is_recorded(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """Recorded in one tab, the other tab's form sent again: not "not checked in"."""
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    record(client_a, day.booking, day.pfizer)
    again = record(client_a, day.booking, day.pfizer)
    said = client_a.get(again["Location"]).content.decode()
    assert "既に記録されています" in said and "受付が済んでいない" not in said
    checked = client_a.post(f"/console/reception/bookings/{day.booking.pk}/check-in/")
    assert "既に記録されています" in client_a.get(checked["Location"]).content.decode()
    with tenant_context(tenant_a):
        assert VaccinationRecord.objects.count() == 1


@pytest.mark.parametrize(
    "role", [StaffMember.Role.CALL_CENTRE, StaffMember.Role.AUDITOR], ids=["call", "auditor"]
)
def test_the_call_centre_and_auditors_cannot_record_vaccinations(
    tenant_a: Municipality, client_a: Client, day: Day, role: str, clock
) -> None:
    checked_in(tenant_a, day.booking)
    account = make_staff(tenant_a, f"{role}@kodaira.example.jp", role)
    logged_in(client_a, account, clock)
    assert record(client_a, day.booking, day.pfizer).status_code == 403
    with tenant_context(tenant_a):
        assert not VaccinationRecord.objects.exists()
        assert Booking.objects.get(pk=day.booking.pk).status == Booking.Status.CHECKED_IN


def test_venue_staff_of_another_venue_cannot_record(
    tenant_a: Municipality, client_a: Client, day: Day, venue_north_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_north_a, clock)
    assert record(client_a, day.booking, day.pfizer).status_code == 403
    with tenant_context(tenant_a):
        assert not VaccinationRecord.objects.exists()


def second_dose(day: Day, slot_day: int, product: VaccineProduct | None = None) -> Booking:
    slot = make_slot(day.civic, product or day.pfizer, at(slot_day, 14))
    return booking_create(
        voucher=day.resident, slot=slot, channel="web", actor=Actor.system("tests")
    )


def test_the_recorded_dose_sets_when_the_next_may_be_booked(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    assert record(client_a, day.booking, day.pfizer).status_code == 302
    with tenant_context(tenant_a):
        # Pfizer: 19 days after 11 May, so from 30 May.
        with pytest.raises(BookingRefused) as too_soon:
            second_dose(day, 18)
        assert too_soon.value.code == "too_soon_after_previous_dose"
        with pytest.raises(BookingRefused) as other_vaccine:
            second_dose(day, 30, day.moderna)
        assert other_vaccine.value.code == "different_product"
        booked = second_dose(day, 19)
        assert booked.dose == 2 and booked.status == Booking.Status.ACTIVE


def test_the_vaccine_actually_given_is_the_one_the_series_continues_with(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    record(client_a, day.booking, day.moderna, product_reason="medical")
    with tenant_context(tenant_a):
        with pytest.raises(BookingRefused) as pfizer:
            second_dose(day, 30)
        assert pfizer.value.code == "different_product"
        with pytest.raises(BookingRefused) as too_soon:
            second_dose(day, 27, day.moderna)
        assert too_soon.value.code == "too_soon_after_previous_dose"
        assert second_dose(day, 28, day.moderna).dose == 2


def test_a_mistyped_lot_number_is_corrected_with_the_reason_and_the_old_value_kept(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    client_a.post(f"/console/reception/bookings/{day.booking.pk}/check-in/")
    record(client_a, day.booking, day.pfizer)
    card = client_a.get(f"/console/reception/bookings/{day.booking.pk}/").content.decode()
    url = f"/console/reception/bookings/{day.booking.pk}/vaccination/correct/"
    assert url in card
    form = client_a.get(url).content.decode()
    assert 'value="FK8892"' in form
    no_reason = client_a.post(url, {"lot_number": "FK8893", "doctor": "医師 一郎", "reason": ""})
    assert (
        no_reason.status_code == 400
        and "訂正の理由を入力してください" in no_reason.content.decode()
    )
    same = client_a.post(url, {"lot_number": "fk8892", "doctor": "医師 一郎", "reason": "確認"})
    assert "記録と同じ内容です" in same.content.decode()
    done = client_a.post(
        url, {"lot_number": "fk 8893", "doctor": "医師 一郎", "reason": "バイアルの表示を確認"}
    )
    assert done.status_code == 302
    assert (
        "VRSでも訂正する記録として表示されます" in client_a.get(done["Location"]).content.decode()
    )
    with tenant_context(tenant_a):
        assert VaccinationRecord.objects.get(booking_id=day.booking.pk).lot_number == "FK8893"
    (corrected,) = events(tenant_a, "reception.vaccination_corrected")
    assert corrected.details == {"lot_number": "FK8892 → FK8893", "reason": "バイアルの表示を確認"}


def test_a_correction_made_meanwhile_by_someone_else_is_never_undone(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    admin_a: StaffAccount,
    clock,  # noqa: ANN001
) -> None:
    """Two people open the correction of one record; the first fixes the lot number; the
    second, from the page as first opened, changes only the doctor: refused, and the lot
    number stays fixed (before, the stale form wrote the old lot number back)."""
    logged_in(client_a, venue_a, clock)
    client_a.post(f"/console/reception/bookings/{day.booking.pk}/check-in/")
    record(client_a, day.booking, day.pfizer)
    url = f"/console/reception/bookings/{day.booking.pk}/vaccination/correct/"
    form = client_a.get(url).content.decode()
    assert 'name="seen_lot_number" value="FK8892"' in form
    shown = {"seen_lot_number": "FK8892", "seen_doctor": "医師 一郎"}
    fixed = {"lot_number": "FK8893", "doctor": "医師 一郎", "reason": "バイアルを確認"}
    assert client_a.post(url, {**fixed, **shown}).status_code == 302
    admin = logged_in(Client(HTTP_HOST=client_a.defaults["HTTP_HOST"]), admin_a, clock)
    stale = {"lot_number": "FK8892", "doctor": "医師 二郎", "reason": "医師の記入誤り"}
    refused = admin.post(url, {**stale, **shown})
    assert refused.status_code == 400
    assert "この画面を開いた後に、この接種記録が変更されました" in refused.content.decode()
    with tenant_context(tenant_a):
        kept = VaccinationRecord.objects.get(booking_id=day.booking.pk)
    assert (kept.lot_number, kept.doctor) == ("FK8893", "医師 一郎")
    assert len(events(tenant_a, "reception.vaccination_corrected")) == 1

    # Withdrawn meanwhile: the correction page says so on the booking's card, not 404.
    with tenant_context(tenant_a):
        VaccinationRecord.objects.filter(booking_id=day.booking.pk).delete()
    gone = admin.post(url, {**stale, "seen_lot_number": "FK8893", "seen_doctor": "医師 一郎"})
    assert gone.status_code == 302
    assert "ほかの操作で取り消されたため" in admin.get(gone["Location"]).content.decode()


def test_an_admin_withdraws_a_dose_recorded_with_the_wrong_vaccine_and_the_venue_records_it_again(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    admin_a: StaffAccount,
    clock,
) -> None:
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    record(client_a, day.booking, day.moderna, product_reason="medical")  # meant Pfizer
    card_url = f"/console/reception/bookings/{day.booking.pk}/"
    url = f"{card_url}vaccination/void/"
    assert url not in client_a.get(card_url).content.decode()
    assert client_a.get(url).status_code == 403  # venue staff correct, admins withdraw

    admin = logged_in(Client(HTTP_HOST=client_a.defaults["HTTP_HOST"]), admin_a, clock)
    assert url in admin.get(card_url).content.decode()
    form = admin.get(url).content.decode()
    assert "モデルナ" in form and "FK8892" in form
    for data, message in (
        ({"reason": "", "confirm": "1"}, "取り消す理由を入力してください"),
        ({"reason": "ワクチンの選択誤り"}, "確認のチェックを入れてください"),
        ({"reason": "1399980001 の方と取り違え", "confirm": "1"}, "個人を特定できる情報は"),
    ):
        refused = admin.post(url, data)
        assert refused.status_code == 400 and message in refused.content.decode()
    with tenant_context(tenant_a):
        assert VaccinationRecord.objects.filter(booking_id=day.booking.pk).exists()

    with tenant_context(tenant_a):
        exported = VrsQuery(TODAY, TODAY, "vaccinated_on", timezone.now())
        assert exported.records().count() == 1
    clock.shift(60)
    done = admin.post(url, {"reason": " ワクチンの選択誤り ", "confirm": "1"})
    assert done.status_code == 302 and done["Location"] == card_url
    assert "予約は「受付済み」に戻りました" in admin.get(card_url).content.decode()
    with tenant_context(tenant_a):
        assert not VaccinationRecord.objects.exists()  # it no longer counts
        (kept,) = VaccinationRecord.every_record.all()  # but is kept, withdrawn
        assert kept.voided_at is not None and kept.booking_id is None
        assert Booking.objects.get(pk=day.booking.pk).status == Booking.Status.CHECKED_IN
        # An export made before the withdrawal held it: asked again, its query still names
        # it (the breach-scope report); an export made now does not.
        assert list(exported.records()) == [kept]
        assert not VrsQuery(TODAY, TODAY, "vaccinated_on", timezone.now()).records().exists()
    (voided,) = events(tenant_a, "reception.vaccination_voided")
    assert voided.details["product"] == "moderna" and voided.details["dose"] == 1
    assert voided.details["lot_number"] == "FK8892"
    assert voided.details["vaccinated_on"] == TODAY.isoformat()
    assert voided.details["reason"] == "ワクチンの選択誤り"

    # The venue records the dose as given; the series continues with Pfizer.
    assert record(client_a, day.booking, day.pfizer).status_code == 302
    with tenant_context(tenant_a):
        assert VaccinationRecord.objects.get(booking_id=day.booking.pk).product_id == day.pfizer.pk
        assert VaccinationRecord.every_record.count() == 2
        assert second_dose(day, 19).dose == 2


def test_a_dose_is_not_withdrawn_while_a_later_one_stands_recorded(
    tenant_a: Municipality, client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    checked_in(tenant_a, day.booking)
    logged_in(client_a, admin_a, clock)
    record(client_a, day.booking, day.pfizer)
    url = f"/console/reception/bookings/{day.booking.pk}/vaccination/void/"
    with tenant_context(tenant_a):
        later = second_dose(day, 19)
    # A later dose booked is shown: it stays booked whatever is done here.
    later_doses = client_a.get(url).content.decode().split('id="later-doses"')[1]
    assert "2回目" in later_doses and later.booking_number[:5] in later_doses
    with tenant_context(tenant_a):
        first = VaccinationRecord.objects.get()
        VaccinationRecord.objects.create(
            voucher_id=first.voucher_id,
            booking=later,
            dose=2,
            product=day.pfizer,
            lot_number="FK9000",
            vaccinated_on=TODAY + timedelta(days=19),
            venue_name="小平市役所",
            actor_kind="staff",
        )
    refused = client_a.post(url, {"reason": "別の方に記録", "confirm": "1"})
    assert refused.status_code == 400
    assert "次の回の接種が既に記録されています" in refused.content.decode()
    with tenant_context(tenant_a):
        assert VaccinationRecord.objects.count() == 2
        assert Booking.objects.get(pk=day.booking.pk).status == Booking.Status.VACCINATED
    (refusal,) = events(tenant_a, "reception.refused")
    assert refusal.details == {"operation": "void", "reason": "later_dose_recorded"}


def test_a_dose_recorded_with_another_vaccine_flags_the_later_booking_it_no_longer_fits(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    admin_a: StaffAccount,
    clock,
) -> None:
    from booking.services.booking import bookings_out_of_step

    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    record(client_a, day.booking, day.pfizer)
    with tenant_context(tenant_a):
        second = second_dose(day, 21)  # Pfizer, 21 days on: fits
        assert bookings_out_of_step(day.resident) == []
    admin = logged_in(Client(HTTP_HOST=client_a.defaults["HTTP_HOST"]), admin_a, clock)
    card_url = f"/console/reception/bookings/{day.booking.pk}/"
    admin.post(f"{card_url}vaccination/void/", {"reason": "ワクチンの選択誤り", "confirm": "1"})
    # Moderna was given: the Pfizer dose 2 no longer fits (another vaccine, 28 days apart).
    recorded = record(client_a, day.booking, day.moderna, product_reason="medical")
    told = client_a.get(recorded["Location"]).content.decode()
    number = second.booking_number
    assert "2回目の予約（予約番号" in told and f"{number[:5]}-{number[5:]}" in told
    with tenant_context(tenant_a):
        (item,) = bookings_out_of_step(day.resident)
        assert item.booking.pk == second.pk and item.reason == "different_product"
    page = admin.get(f"/console/callcentre/residents/{day.resident.pk}/").content.decode()
    notice = page.split('id="out-of-step"')[1].split("</div>")[0]
    assert f"{number[:5]}-{number[5:]}" in notice and "違うワクチンの枠です" in notice
    assert "接種したワクチン：モデルナ" in page  # what was given, not the slot's vaccine


def test_the_days_doses_are_counted_by_lot_for_the_venue(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    venue_north_a: StaffAccount,
    clock,
) -> None:
    """At the end of the day the venue reconciles its vials: doses by vaccine and lot, and
    each record (booking number, dose, lot, doctor; no name), its own venues only."""
    with tenant_context(tenant_a):
        second = make_booking(make_voucher(tenant_a, "1000000041"), day.later)
        third = make_booking(make_voucher(tenant_a, "1000000042"), day.later)
    for booking in (day.booking, second, third):
        checked_in(tenant_a, booking)
    logged_in(client_a, venue_a, clock)
    record(client_a, day.booking, day.pfizer)
    record(client_a, second, day.pfizer)
    record(client_a, third, day.pfizer, lot_number="EW0200")
    page = client_a.get("/console/reception/today/").content.decode()
    lots = page.split('class="lots"')[1].split("</table>")[0]
    assert '<td>ファイザー社ワクチン</td><td class="mono">FK8892</td><td>2</td>' in lots
    assert '<td>ファイザー社ワクチン</td><td class="mono">EW0200</td><td>1</td>' in lots
    listed = page.split('class="records"')[1].split("</table>")[0]
    assert day.number in listed and "医師 一郎" in listed and RESIDENT_NAME not in page
    assert "（3件）" in page
    other = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    logged_in(other, venue_north_a, clock)
    north = other.get("/console/reception/today/").content.decode()
    assert day.number not in north and "本日の接種記録はまだありません" in north


def test_the_card_says_when_the_next_dose_can_be_booked(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    """Recorded today, the card tells the desk what to say as the resident leaves: from when
    the next dose can be booked (19 days after a first Pfizer dose), the booking they hold
    for it, or that the series is complete."""
    checked_in(tenant_a, day.booking)
    logged_in(client_a, venue_a, clock)
    response = record(client_a, day.booking, day.pfizer)
    card = client_a.get(response["Location"]).content.decode()
    said = card.split('id="next-dose"')[1].split("</p>")[0]
    assert "2回目は、2026年5月30日（土）以降の日で予約できます" in said
    assert "ファイザー社ワクチン" in said
    with tenant_context(tenant_a):
        second_day = make_slot(day.civic, day.pfizer, at(21, 10))
        make_booking(day.resident, second_day, dose=2)
    card = client_a.get(response["Location"]).content.decode()
    said = card.split('id="next-dose"')[1].split("</p>")[0]
    assert "2回目の予約があります（6月1日（月）10:00 小平市役所）" in said
