"""Full data only after a reason, in the trail; the identity checklist, recorded and timed."""

from __future__ import annotations

import json
from datetime import date, timedelta

import time_machine
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import Event
from booking.console.trail.selectors import value_name
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import (
    CALL_CENTRE_HOME,
    Town,
    confirm_identity,
    live_bookings,
    make_resident,
    signed_in,
)
from tests.booking.console.conftest import StaffAccount, events


def resident_url(town: Town) -> str:
    return f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/"


def test_full_data_is_shown_only_after_a_reason_and_the_reveal_is_in_the_trail(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    masked = client_a.get(resident_url(town)).content.decode()
    assert "小平 花子" not in masked and "東京都小平市小川町" not in masked

    page = client_a.post(resident_url(town) + "reveal/", {"reason": "identity_check"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "小平 花子" in body and "コダイラ ハナコ" in body
    assert "東京都小平市小川町1-1" in body and "0423111111" in body
    assert '<dd class="mono">187-0001</dd>' in body  # as letters print it, to compare
    assert page["Cache-Control"] == "no-store"

    revealed = events(tenant_a, "callcentre.personal_data_revealed")[-1]
    assert revealed.actor_kind == "staff" and revealed.actor_id == str(operator_a.user_id)
    assert (revealed.target_type, revealed.target_id) == ("booking.voucher", str(town.hanako.pk))
    assert revealed.details == {"reason": "identity_check"}


def test_a_reveal_without_a_known_reason_shows_nothing(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    for data in ({}, {"reason": "curiosity"}, {"reason": "other", "note": "   "}):
        response = client_a.post(resident_url(town) + "reveal/", data)
        assert response.status_code == 400
        assert "小平 花子" not in response.content.decode()
    assert events(tenant_a, "callcentre.personal_data_revealed") == []


def test_the_free_text_note_is_sealed_never_in_the_trail_in_clear(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    note = "長男の小平太郎さんから住所の問い合わせ"
    response = client_a.post(resident_url(town) + "reveal/", {"reason": "other", "note": note})
    assert response.status_code == 200
    revealed = events(tenant_a, "callcentre.personal_data_revealed")[-1]
    assert revealed.details["reason"] == "other"
    assert "note_sealed" in revealed.details
    stored = json.dumps(revealed.details, ensure_ascii=False)
    assert "小平" not in stored and "問い合わせ" not in stored


def test_identity_is_confirmed_only_when_all_three_items_match(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    client_a.post(resident_url(town) + "reveal/", {"reason": "identity_check"})
    partial = client_a.post(
        resident_url(town) + "identity/",
        {"name_matches": "on", "birth_date_matches": "on", "result": "mismatch"},
    )
    assert partial.status_code == 302
    failed = events(tenant_a, "callcentre.identity_failed")[-1]
    assert failed.details == {"matched": ["name", "birth_date"]}
    assert "本人確認できなかった" in client_a.get(resident_url(town)).content.decode()

    confirmed = confirm_identity(client_a, town.hanako)
    assert confirmed.status_code == 302
    event = events(tenant_a, "callcentre.identity_confirmed")[-1]
    assert event.details == {"matched": ["name", "birth_date", "address"], "asked_by": "resident"}
    assert event.target_id == str(town.hanako.pk)
    assert "本人確認済みです" in client_a.get(resident_url(town)).content.decode()


def test_failed_identity_checks_of_the_day_are_shown_to_whoever_takes_the_next_call(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A caller who keeps getting the birth date wrong: each try is counted on the page,
    also for another operator, until a check succeeds."""
    from tests.booking.console.conftest import make_staff

    signed_in(client_a, operator_a, clock)
    for _try in range(2):
        client_a.post(resident_url(town) + "reveal/", {"reason": "identity_check"})
        client_a.post(
            resident_url(town) + "identity/", {"name_matches": "on", "result": "mismatch"}
        )
    other = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    signed_in(other, make_staff(tenant_a, "call2@kodaira.example.jp", "call_centre"), clock)
    page = other.get(resident_url(town)).content.decode()
    said = page.split('id="identity-failures"')[1].split("</p>")[0]
    assert "本人確認ができなかった記録が2回あります" in said
    assert "確認を何度もやり直すことは控えてください" in said
    confirm_identity(other, town.hanako)
    assert 'id="identity-failures"' not in client_a.get(resident_url(town)).content.decode()


def test_sensitive_actions_are_refused_before_the_identity_check(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    url = resident_url(town)
    attempts = [
        ("book/", {"slot": town.call_slot.pk}),
        ("password-reset/", {}),
        ("web-login/", {"disabled": "1", "confirm": "1"}),
        ("lock-lift/", {}),
    ]
    for path, data in attempts:
        response = client_a.post(url + path, data)
        assert response.status_code == 302 and response["Location"] == url
    refused = events(tenant_a, "callcentre.refused")
    assert [event.details["operation"] for event in refused] == [
        "book",
        "password_reset",
        "web_login_disable",
        "login_lock_lift",
    ]
    assert all(event.details["reason"] == "identity_not_confirmed" for event in refused)
    assert live_bookings(tenant_a, town.hanako) == []
    page = client_a.get(url).content.decode()
    assert "先に本人確認をしてください" in page


def test_a_failed_check_closes_an_earlier_confirmation(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    confirm_identity(client_a, town.hanako)
    client_a.post(resident_url(town) + "reveal/", {"reason": "identity_check"})
    client_a.post(resident_url(town) + "identity/", {"result": "mismatch"})
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    assert live_bookings(tenant_a, town.hanako) == []


def test_enter_in_the_checklist_never_records_a_failure_nor_undoes_a_confirmation(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """Enter in a box sends the form by its first button, "all matched": with an item not
    ticked yet, nothing is recorded (the browser asks for the box first); only the button
    "an item did not match" records a failure."""
    signed_in(client_a, operator_a, clock)
    page = client_a.post(resident_url(town) + "reveal/", {"reason": "identity_check"})
    form = page.content.decode().split('id="check-heading"')[1]
    # Three boxes and who is on the phone (two choices), each asked for by the browser.
    assert form.count('type="checkbox"') == 3 and form.count('type="radio"') == 2
    assert form.count("required") == 5
    assert form.index('value="matched"') < form.index('value="mismatch"')  # the default
    assert 'value="mismatch" class="danger" formnovalidate' in form
    confirm_identity(client_a, town.hanako)
    client_a.post(resident_url(town) + "reveal/", {"reason": "identity_check"})
    stray = client_a.post(
        resident_url(town) + "identity/", {"name_matches": "on", "result": "matched"}
    )
    # Shown again to finish, the tick kept: nothing recorded, the earlier check holding.
    assert stray.status_code == 400
    told = stray.content.decode()
    assert "照合結果はまだ記録していません" in told.split('id="identity-error"')[1]
    assert 'name="name_matches" required id="id_name_matches" checked' in told
    assert events(tenant_a, "callcentre.identity_failed") == []
    assert "本人確認済みです" in client_a.get(resident_url(town)).content.decode()
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    assert len(live_bookings(tenant_a, town.hanako)) == 1  # the confirmation still holds


def test_who_is_on_the_phone_is_asked_at_the_check_and_kept_with_what_the_call_does(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A grandson phones for his grandmother: the check records that a family member
    called, and so do the booking, the change and the password-free actions of the call; the
    booking's page says so to whoever takes the resident's next call, and the cancellation
    starts from it. Without an answer, "all matched" records nothing."""
    signed_in(client_a, operator_a, clock)
    client_a.post(resident_url(town) + "reveal/", {"reason": "identity_check"})
    ticked = {"name_matches": "on", "birth_date_matches": "on", "address_matches": "on"}
    unsaid = client_a.post(resident_url(town) + "identity/", {**ticked, "result": "matched"})
    # The record and the checklist again, the three ticks kept, to choose who called and
    # press again — not the reveal's reason asked again. Shown again, it is audited again.
    assert unsaid.status_code == 400
    told = unsaid.content.decode()
    assert "お電話の方が選ばれていませんでした" in told.split('id="identity-error"')[1]
    assert told.count("checked") == 3 and "小平 花子" in told
    assert events(tenant_a, "callcentre.identity_confirmed") == []
    assert events(tenant_a, "callcentre.identity_failed") == []
    revealed = events(tenant_a, "callcentre.personal_data_revealed")
    assert revealed[-1].details == {"reason": "identity_check", "shown_again": True}
    finished = client_a.post(
        resident_url(town) + "identity/", {**ticked, "asked_by": "resident", "result": "matched"}
    )
    assert finished.status_code == 302
    assert len(events(tenant_a, "callcentre.identity_confirmed")) == 1

    confirm_identity(client_a, town.hanako, asked_by="family")
    page = client_a.get(resident_url(town)).content.decode()
    assert "本人確認済みです（お電話の方：ご家族・代理の方。" in page
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    [booking] = live_bookings(tenant_a, town.hanako)
    assert events(tenant_a, "booking.created")[-1].details["asked_by"] == "family"
    detail = client_a.get(f"{resident_url(town)}bookings/{booking.pk}/").content.decode()
    booked = detail.split('id="booked-at"')[1].split("</dd>")[0]
    assert "コールセンターで、ご家族・代理の方のお申し出により予約" in booked
    client_a.post(
        f"{resident_url(town)}bookings/{booking.pk}/change/", {"slot": town.later_slot.pk}
    )
    changed = events(tenant_a, "booking.changed")[-1]
    assert changed.details["asked_by"] == "family"
    assert value_name("booking.changed", "asked_by", "family") == "ご家族・代理の方"
    cancel = client_a.get(f"{resident_url(town)}bookings/{booking.pk}/cancel/").content.decode()
    assert 'value="family" required id="id_asked_by_1" checked' in cancel

    # The resident phones herself later: a new check, and what she does is hers.
    clock.shift(timedelta(minutes=16))
    confirm_identity(client_a, town.hanako, asked_by="resident")
    client_a.post(f"{resident_url(town)}bookings/{booking.pk}/change/", {"slot": town.call_slot.pk})
    assert events(tenant_a, "booking.changed")[-1].details["asked_by"] == "resident"


def test_the_identity_check_holds_for_fifteen_minutes_only(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    confirm_identity(client_a, town.hanako)
    clock.shift(timedelta(minutes=15, seconds=1))
    response = client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    assert response.status_code == 302 and response["Location"] == resident_url(town)
    assert live_bookings(tenant_a, town.hanako) == []
    # Told as it is: the check ran out (not "check first", as if never done).
    told = client_a.get(resident_url(town)).content.decode()
    assert "本人確認から15分が過ぎたため、操作はしていません" in told


def test_one_operators_check_does_not_open_actions_for_another(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    confirm_identity(client_a, town.hanako)
    other = signed_in(Client(HTTP_HOST="kodaira.localhost"), admin_a, clock)
    response = other.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    assert response.status_code == 302 and response["Location"] == resident_url(town)
    assert live_bookings(tenant_a, town.hanako) == []


def test_no_personal_value_reaches_the_trail(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    client_a.post(CALL_CENTRE_HOME, {"q": "コダイラ ハナコ"})
    client_a.post(CALL_CENTRE_HOME, {"q": "042-311-1111"})
    confirm_identity(client_a, town.hanako)
    client_a.post(resident_url(town) + "book/", {"slot": town.call_slot.pk})
    with schema_context(tenant_a.schema_name):
        trail = json.dumps(
            list(Event.objects.values_list("action", "target_id", "details")),
            ensure_ascii=False,
            default=str,
        )
    for value in (
        "小平 花子",
        "コダイラ",
        "ハナコ",
        "0423111111",
        "311-1111",
        "小川町",
        "2000000001",
    ):
        assert value not in trail


def test_the_checklist_needs_the_record_on_screen_first(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    ticked = {
        "asked_by": "resident",
        "name_matches": "on",
        "birth_date_matches": "on",
        "address_matches": "on",
    }
    response = client_a.post(resident_url(town) + "identity/", ticked)
    assert response.status_code == 302
    assert events(tenant_a, "callcentre.identity_confirmed") == []
    assert "登録内容を表示してください" in client_a.get(resident_url(town)).content.decode()
    client_a.post(resident_url(town) + "reveal/", {"reason": "identity_check"})
    clock.shift(timedelta(minutes=16))  # the record shown long ago no longer counts
    client_a.post(resident_url(town) + "identity/", ticked)
    assert events(tenant_a, "callcentre.identity_confirmed") == []


def test_a_registry_without_the_address_asks_for_the_phone_or_the_voucher_number(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A registry file need not hold the address: the third item read back is then the
    phone number it holds, or the number on the voucher in the resident's hands. Which
    items count is decided from the record, never by what the form sends."""
    with schema_context(tenant_a.schema_name):
        no_address = make_resident(
            tenant_a,
            "2000000071",
            name="東 一",
            kana="アズマ ハジメ",
            phone="0423000071",
            born=date(1950, 1, 1),
            address="",
        )
        nothing = make_resident(
            tenant_a,
            "2000000072",
            name="東 二",
            kana="アズマ ジロウ",
            phone="",
            born=date(1950, 1, 2),
            address="",
        )
    signed_in(client_a, operator_a, clock)
    for voucher, third, label in (
        (no_address, "phone", "電話番号が登録内容と一致した"),
        (nothing, "voucher_number", "お手元の接種券の接種券番号が一致した"),
    ):
        url = f"{CALL_CENTRE_HOME}residents/{voucher.pk}/"
        page = client_a.post(url + "reveal/", {"reason": "identity_check"}).content.decode()
        assert label in page and 'name="address_matches"' not in page
        assert f'name="{third}_matches"' in page
        # The address ticked (a box the page never showed) confirms nothing.
        forged = {
            "asked_by": "resident",
            "name_matches": "on",
            "birth_date_matches": "on",
            "address_matches": "on",
        }
        refused = client_a.post(url + "identity/", forged)
        assert "照合結果はまだ記録していません" in refused.content.decode()
        confirmed_ids = [e.target_id for e in events(tenant_a, "callcentre.identity_confirmed")]
        assert str(voucher.pk) not in confirmed_ids
        client_a.post(
            url + "identity/",
            {
                "asked_by": "family",
                "name_matches": "on",
                "birth_date_matches": "on",
                f"{third}_matches": "on",
            },
        )
        confirmed = events(tenant_a, "callcentre.identity_confirmed")[-1]
        assert confirmed.target_id == str(voucher.pk)
        assert confirmed.details == {"matched": ["name", "birth_date", third], "asked_by": "family"}
