"""One search box: voucher number, kana name or phone; masked results; who may search."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django_tenants.utils import schema_context

from booking.models import Voucher
from booking.resident.waiting_room import queue_join
from tenants.crypto import cipher_for
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import CALL_CENTRE_HOME, Town, signed_in
from tests.booking.console.conftest import StaffAccount, events
from tests.redis_outage import closed_port, redis_at


def search(client: Client, query: str):  # noqa: ANN201
    return client.post(CALL_CENTRE_HOME, {"q": query})


def listed(client: Client, query: str) -> Any:
    """A search that finds several residents: its list is a page of its own."""
    found = search(client, query)
    assert found.status_code == 302 and "?found=" in found["Location"]
    return client.get(found["Location"])


def test_a_voucher_number_opens_the_resident_masked(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    response = search(client_a, "２０００００００01")  # full-width digits, as IMEs type them
    assert response.status_code == 302
    assert response["Location"] == f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/"
    page = client_a.get(response["Location"]).content.decode()
    assert "2000000001" in page
    assert "小＊ ＊＊" in page
    assert "小平 花子" not in page and "コダイラ" not in page
    assert "東京都小平市" not in page and "0423111111" not in page
    searched = events(tenant_a, "callcentre.searched")[-1]
    assert searched.details["by"] == "voucher"
    assert searched.details["vouchers"] == [town.hanako.pk]
    assert searched.actor_id == str(operator_a.user_id)
    # Written with hyphens, as a letter may group it: still the voucher number.
    grouped = search(client_a, "2000-000-001")
    assert grouped["Location"] == f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/"
    viewed = events(tenant_a, "callcentre.resident_viewed")[-1]
    assert viewed.target_id == str(town.hanako.pk)


@pytest.mark.parametrize("typed", ["コダイラハナコ", "こだいら　はなこ", "ｺﾀﾞｲﾗ ﾊﾅｺ"])
def test_a_kana_name_lists_every_namesake_masked_with_birth_years(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
    typed: str,
) -> None:
    signed_in(client_a, operator_a, clock)
    response = listed(client_a, typed)
    assert response.status_code == 200
    page = response.content.decode()
    assert "2000000001" in page and "2000000002" in page
    assert page.count("小＊ ＊＊") == 2
    assert "小平 花子" not in page
    searched = events(tenant_a, "callcentre.searched")[-1]
    assert searched.details["by"] == "kana"
    assert sorted(searched.details["vouchers"]) == sorted([town.hanako.pk, town.namesake.pk])
    # What the operator typed is nowhere in the trail.
    assert "ハナコ" not in json.dumps(searched.details, ensure_ascii=False)


@pytest.mark.parametrize("typed", ["042-311-1111", "(042)311-1111", "0423111111"])
def test_a_phone_number_finds_the_resident(
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
    typed: str,
) -> None:
    signed_in(client_a, operator_a, clock)
    response = search(client_a, typed)
    assert response.status_code == 302
    assert response["Location"] == f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/"


def test_kana_and_phone_together_narrow_to_one(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    response = search(client_a, "コダイラ ハナコ 090-1234-5678")
    assert response.status_code == 302
    assert response["Location"] == f"{CALL_CENTRE_HOME}residents/{town.namesake.pk}/"
    assert events(tenant_a, "callcentre.searched")[-1].details["by"] == "kana_and_phone"


def test_nothing_found_says_so(
    client_a: Client, operator_a: StaffAccount, town: Town, clock: time_machine.Coordinates
) -> None:
    signed_in(client_a, operator_a, clock)
    page = search(client_a, "9999999999").content.decode()
    assert "一致する人はいません" in page
    # The family name alone (小平 花子 is registered) finds no one: the page says why.
    page = search(client_a, "コダイラ").content.decode()
    assert "一致する人はいません" in page and "氏名は姓と名の両方が必要です" in page


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("小平花子", "漢字では検索できません"),
        ("12345", "5桁になっています"),
        ("", "入力してください"),
        # A name with a voucher number: not a way to search, said so (not "ten digits").
        ("コダイラ ハナコ 2000000001", "氏名と一緒に検索できるのは電話番号です"),
        # Eleven digits are a phone number, which starts with 0.
        ("13999800044", "電話番号は0（市外局番）から始まります"),
        ("コダイラ ハナコ 04231111", "8桁になっています"),
    ],
)
def test_input_that_is_no_key_is_refused_with_a_reason(
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
    typed: str,
    message: str,
) -> None:
    signed_in(client_a, operator_a, clock)
    response = search(client_a, typed)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_birth_year_helps_tell_namesakes_apart(
    client_a: Client, operator_a: StaffAccount, town: Town, clock: time_machine.Coordinates
) -> None:
    from django_tenants.utils import tenant_context

    from booking.services.callcentre import _summary

    with tenant_context(town.world.municipality):
        years = {_summary(town.hanako).birth_year, _summary(town.namesake).birth_year}
    signed_in(client_a, operator_a, clock)
    page = listed(client_a, "コダイラハナコ").content.decode()
    for year in years:
        assert f"{year}年" in page
    assert "昭和31年" in page and "昭和21年" in page  # 1956 and 1946, as residents say them


def test_namesakes_born_the_same_year_are_said_to_need_one_more_question(
    client_a: Client, operator_a: StaffAccount, town: Town, clock: time_machine.Coordinates
) -> None:
    from django_tenants.utils import tenant_context

    from tests.booking.booking.conftest import years_ago
    from tests.booking.console.callcentre.cast import make_resident

    signed_in(client_a, operator_a, clock)
    assert 'id="look-alike"' not in listed(client_a, "コダイラハナコ").content.decode()
    with tenant_context(town.world.municipality):
        make_resident(
            town.world.municipality,
            "2000000003",
            name="小平 花子",
            kana="コダイラ ハナコ",
            phone="09087654321",
            born=years_ago(70),
        )
    page = listed(client_a, "コダイラハナコ").content.decode()
    assert "表示だけでは区別できない方がいます" in page.split('id="look-alike"')[1]


def test_the_list_of_namesakes_is_there_again_when_the_operator_comes_back_to_it(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """The list is a page (a GET): the browser's Back from a resident shows it again instead
    of asking to send the search again. It holds only the residents found, for a quarter
    of an hour, in this operator's session, and showing it again is not a second search."""
    signed_in(client_a, operator_a, clock)
    found = search(client_a, "コダイラハナコ")
    client_a.get(f"{CALL_CENTRE_HOME}residents/{town.namesake.pk}/")
    again = client_a.get(found["Location"]).content.decode()
    assert again.count("小＊ ＊＊") == 2 and "2000000002" in again
    assert len(events(tenant_a, "callcentre.searched")) == 1
    with schema_context(tenant_a.schema_name):
        session = client_a.session
        assert set(session["callcentre_found"]) == {"token", "vouchers", "truncated", "at"}
        assert "ハナコ" not in json.dumps(dict(session.items()), ensure_ascii=False)

    guessed = client_a.get(CALL_CENTRE_HOME, {"found": "guessed"})
    assert guessed.status_code == 302
    told = client_a.get(guessed["Location"]).content.decode()
    assert "前の検索結果は表示できません" in told and "2000000001" not in told
    clock.shift(timedelta(minutes=16))  # the console session holds; the list does not
    gone = client_a.get(found["Location"])
    assert gone.status_code == 302 and gone["Location"] == CALL_CENTRE_HOME


def test_era_years_follow_the_day_an_era_began() -> None:
    from datetime import date

    from booking.services.callcentre import era_year

    assert era_year(date(1989, 1, 7)) == "昭和64年"
    assert era_year(date(1989, 1, 8)) == "平成元年"
    assert era_year(date(2019, 5, 1)) == "令和元年"
    assert era_year(date(1926, 12, 24)) == "大正15年"


def test_venue_staff_cannot_use_the_call_centre(
    tenant_a: Municipality,
    client_a: Client,
    venue_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, venue_a, clock)
    assert client_a.get(CALL_CENTRE_HOME).status_code == 403
    assert search(client_a, "2000000001").status_code == 403
    assert client_a.get(f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/").status_code == 403
    refused = events(tenant_a, "console.access_refused")[-1]
    assert refused.details["reason"] == "role"
    assert refused.actor_id == str(venue_a.user_id)
    assert events(tenant_a, "callcentre.searched") == []


def test_the_auditor_cannot_use_the_call_centre(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, auditor_a, clock)
    assert search(client_a, "2000000001").status_code == 403
    response = client_a.post(
        f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/reveal/", {"reason": "identity_check"}
    )
    assert response.status_code == 403
    assert events(tenant_a, "callcentre.personal_data_revealed") == []


def test_an_anonymous_visitor_goes_to_the_login_page(client_a: Client, town: Town) -> None:
    response = search(client_a, "2000000001")
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/")


def test_the_admin_may_use_the_call_centre(
    client_a: Client, admin_a: StaffAccount, town: Town, clock: time_machine.Coordinates
) -> None:
    signed_in(client_a, admin_a, clock)
    assert search(client_a, "2000000001").status_code == 302


def test_staff_of_b_find_nothing_of_a_and_their_session_means_nothing_in_a(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_b: Client,
    operator_b: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_b, operator_b, clock)
    page = search(client_b, "2000000001").content.decode()
    assert "一致する人はいません" in page
    assert search(client_b, "コダイラハナコ").content.decode().count("小＊ ＊＊") == 0
    # B's session cookie presented on A's host: no console session there.
    foreign = Client(HTTP_HOST="kodaira.localhost")
    foreign.cookies = client_b.cookies
    response = foreign.get(f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    assert events(tenant_a, "callcentre.resident_viewed") == []


def test_the_call_centre_sees_the_web_queue_while_residents_wait(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    cache.clear()
    Municipality.objects.filter(pk=tenant_a.pk).update(waiting_room_per_minute=60)
    assert 'id="web-queue"' not in client_a.get(CALL_CENTRE_HOME).content.decode()
    with schema_context(tenant_a.schema_name):  # 200 residents queue on the web, one a second
        for _ in range(200):
            queue_join(tenant_a.schema_name, now=time.time(), per_second=1.0, horizon=3600)
    page = client_a.get(CALL_CENTRE_HOME).content.decode()
    assert "いま約200人が順番を待っています（最後の方のご案内まで約4分）" in page
    assert "お電話での予約は待たずにお受けできます" in page


def test_with_redis_unreachable_the_call_centre_is_told_the_web_queue_is_paused(
    settings: Any,
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    Municipality.objects.filter(pk=tenant_a.pk).update(waiting_room_per_minute=60)
    redis_at(settings, closed_port())
    page = client_a.get(CALL_CENTRE_HOME)
    assert page.status_code == 200  # the call centre keeps working
    assert "新しく来た方の順番を受け付けていません" in page.content.decode()


def test_a_search_that_finds_nobody_says_so_and_what_to_check(
    client_a: Client, operator_a: StaffAccount, town: Town, clock: time_machine.Coordinates
) -> None:
    signed_in(client_a, operator_a, clock)
    page = search(client_a, "ダレモ イナイ 09099999999").content.decode()
    assert "該当する方は見つかりませんでした" in page and "0件" not in page


@pytest.mark.parametrize("written", ["iso", "digits", "era_letter", "era_kanji"])
def test_kana_and_birth_date_together_narrow_to_one(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
    written: str,
) -> None:
    """A caller without their letter and with no phone on the registry: the namesakes of
    their kana name are told apart by the birth date, written as a caller says it."""
    born = _birth_date(tenant_a, town.namesake)
    era_year = born.year - 1925  # 昭和
    typed = {
        "iso": born.isoformat(),
        "digits": born.strftime("%Y%m%d"),
        "era_letter": f"S{era_year}.{born.month}.{born.day}",
        "era_kanji": f"昭和{era_year}年{born.month}月{born.day}日",
    }[written]
    signed_in(client_a, operator_a, clock)
    response = search(client_a, f"コダイラ ハナコ {typed}")
    assert response.status_code == 302
    assert response["Location"] == f"{CALL_CENTRE_HOME}residents/{town.namesake.pk}/"
    searched = events(tenant_a, "callcentre.searched")[-1]
    assert searched.details["by"] == "kana_and_birth_date"
    assert searched.details["vouchers"] == [town.namesake.pk]  # the other one not shown
    # Another day: nobody. A birth date alone, or with a number: said what to type.
    other = (born - timedelta(days=1)).isoformat()
    assert "一致する人はいません" in search(client_a, f"コダイラ ハナコ {other}").content.decode()
    for query in (born.isoformat(), f"{born.isoformat()} 090-1234-5678"):
        refused = search(client_a, query).content.decode()
        assert "氏名（カナ）と生年月日だけを入力してください" in refused, query


def _birth_date(tenant: Municipality, voucher: Voucher) -> date:
    personal = cipher_for(tenant).open_record(
        bytes(voucher.personal), table="booking_voucher", row_id=voucher.voucher_number
    )
    return date.fromisoformat(personal["birth_date"])
