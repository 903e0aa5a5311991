"""The booking rules an admin sets: the window and options, age phases, vaccines. Each change
is audited with what it changed and is what residents and the booking service see next."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta

import time_machine
from django.test import Client

from booking.models import AgePhase, BookingPolicy, VaccineProduct
from booking.selectors.availability import open_days
from tenants.models import Municipality

from ..conftest import StaffAccount, events
from .conftest import JAPAN, MONDAY, World, at, build_world, in_a, logged_in, make_slot

POLICY = {
    "opens_days_ahead": "14",
    "closes_hours_before": "48",
    "book_series_together": "on",
    "call_centre_phone": "０４２－３４６－９５００",
    "call_centre_hours": " 平日　９：00〜17:00（土日祝も受付） ",
}
VACCINE = {
    "code": "novavax",
    "name": "ノババックス社ワクチン",
    "maker": "武田薬品工業",
    "doses_in_series": "2",
    "interval_days": "21",
    "minimum_age": "12",
    "active": "on",
}


def _run(callbacks: list[Callable[[], object]]) -> None:
    """What the request's commit runs, in the municipality's schema as the commit would (the
    test's transaction never commits; the client's request has left the schema by now)."""
    for callback in callbacks:
        callback()


def test_the_rules_page_lists_the_policy_phases_and_vaccines(
    as_admin: Client, world: World
) -> None:
    page = as_admin.get("/console/planning/rules/").content.decode()
    assert "60日先まで" in page and "開始の24時間前" in page
    assert "12歳以上" in page and "受付中" in page
    assert "ファイザー社ワクチン" in page and "モデルナ社ワクチン" in page
    assert "コールセンターの電話番号が未設定です" in page
    menu = as_admin.get("/console/planning/").content.decode()
    assert 'href="/console/planning/rules/"' in menu


def test_an_admin_changes_the_booking_window_and_options(
    as_admin: Client, world: World, tenant_a: Municipality, django_capture_on_commit_callbacks
) -> None:
    form = as_admin.get("/console/planning/rules/policy/").content.decode()
    assert 'name="opens_days_ahead"' in form and 'value="60"' in form
    with in_a(tenant_a):
        make_slot(world.civic, world.pfizer, at(MONDAY + timedelta(days=20), 10))
        first, last = MONDAY - timedelta(days=7), MONDAY + timedelta(days=60)
        assert len(open_days("web", first, last)) == 1  # cached from here on
    with django_capture_on_commit_callbacks() as committed:
        response = as_admin.post("/console/planning/rules/policy/", POLICY)
    assert response.status_code == 302 and response["Location"] == "/console/planning/rules/"
    with in_a(tenant_a):
        _run(committed)
        policy = BookingPolicy.current()
        assert (policy.opens_days_ahead, policy.closes_hours_before) == (14, 48)
        assert policy.book_series_together and not policy.cancel_cascades
        assert policy.call_centre_phone == "042-346-9500"
        # Digits and colon made plain; the Japanese brackets kept as written.
        assert policy.call_centre_hours == "平日 9:00〜17:00（土日祝も受付）"
        # The slot 27 days ahead is beyond the new window, and the cached answer is dropped.
        assert open_days("web", first, last) == []
    changed = events(tenant_a, "booking_policy.updated")[-1].details["changed"]
    assert changed == [
        "opens_days_ahead: 60 → 14",
        "closes_hours_before: 24 → 48",
        "book_series_together: False → True",
        "cancel_cascades: True → False",
        "call_centre_phone:  → 042-346-9500",
        "call_centre_hours:  → 平日 9:00〜17:00（土日祝も受付）",
    ]
    # Saving it again unchanged records nothing.
    as_admin.post("/console/planning/rules/policy/", POLICY)
    assert len(events(tenant_a, "booking_policy.updated")) == 1


def test_bad_rules_are_refused_in_japanese_and_change_nothing(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    for field, value, message in [
        ("opens_days_ahead", "0", "1以上の値を入力してください"),
        ("closes_hours_before", "-1", "0以上の値を入力してください"),
        ("call_centre_phone", "call us", "電話番号は数字とハイフンで入力してください"),
    ]:
        response = as_admin.post("/console/planning/rules/policy/", {**POLICY, field: value})
        assert response.status_code == 400, field
        assert message in response.content.decode()
    # A deadline as long as the window (1 day ahead, closing 24 hours before) or longer
    # leaves no slot that could ever be booked.
    for days, hours in (("1", "24"), ("1", "336"), ("13", "312")):
        response = as_admin.post(
            "/console/planning/rules/policy/",
            {**POLICY, "opens_days_ahead": days, "closes_hours_before": hours},
        )
        assert response.status_code == 400, (days, hours)
        assert "これではどの枠も予約できません" in response.content.decode()
    with in_a(tenant_a):
        assert BookingPolicy.current().opens_days_ahead == 60
    assert events(tenant_a, "booking_policy.updated") == []


def test_an_admin_adds_edits_and_removes_an_age_phase(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    response = as_admin.post(
        "/console/planning/rules/phases/new/",
        {
            "name": "5歳以上の方",
            "minimum_age": "5",
            "opens_on": "2026-05-20",
            "opens_time": "09:00",
        },
    )
    assert response.status_code == 302
    with in_a(tenant_a):
        phase = AgePhase.objects.get(name="5歳以上の方")
    assert phase.opens_at == datetime(2026, 5, 20, 9, 0, tzinfo=JAPAN)
    created = events(tenant_a, "age_phase.created")[-1]
    assert created.details == {
        "phase": "5歳以上の方",
        "minimum_age": 5,
        "opens_at": "2026-05-20T09:00+09:00",
    }
    page = as_admin.get("/console/planning/rules/").content.decode()
    assert "5歳以上の方" in page and "開始前" in page

    url = f"/console/planning/rules/phases/{phase.pk}/edit/"
    assert 'value="2026-05-20"' in as_admin.get(url).content.decode()
    as_admin.post(
        url,
        {
            "name": "5歳以上の方",
            "minimum_age": "6",
            "opens_on": "2026-05-20",
            "opens_time": "10:30",
        },
    )
    with in_a(tenant_a):
        phase.refresh_from_db()
    assert phase.minimum_age == 6 and phase.opens_at.astimezone(JAPAN).hour == 10
    assert events(tenant_a, "age_phase.updated")[-1].details["changed"] == [
        "minimum_age: 5 → 6",
        "opens_at: 2026-05-20T09:00+09:00 → 2026-05-20T10:30+09:00",
    ]

    # Removing a phase that has opened warns first.
    with in_a(tenant_a):
        opened = AgePhase.objects.get(name="12歳以上")
    confirm = as_admin.get(f"/console/planning/rules/phases/{opened.pk}/delete/")
    assert "すでに受付中です" in confirm.content.decode()
    assert as_admin.post(f"/console/planning/rules/phases/{opened.pk}/delete/").status_code == 302
    with in_a(tenant_a):
        assert not AgePhase.objects.filter(pk=opened.pk).exists()
    assert events(tenant_a, "age_phase.deleted")[-1].details["phase"] == "12歳以上"


def test_a_second_phase_of_the_same_age_is_refused_and_a_past_opening_is_told(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    new = "/console/planning/rules/phases/new/"
    twin = {
        "name": "12歳以上の方",
        "minimum_age": "12",
        "opens_on": "2027-01-05",
        "opens_time": "09:00",
    }
    refused = as_admin.post(new, twin)
    assert refused.status_code == 400
    assert "12歳以上の区分「12歳以上」（予約開始 " in refused.content.decode()
    with in_a(tenant_a):
        assert AgePhase.objects.count() == 1
        (opened,) = AgePhase.objects.all()
    # Editing a phase keeps its own age without being refused as its own twin.
    edit = as_admin.post(
        f"/console/planning/rules/phases/{opened.pk}/edit/", {**twin, "name": "12歳以上"}
    )
    assert edit.status_code == 302
    # A phase whose opening has passed takes bookings as soon as it is saved: said so.
    past = {
        "name": "70歳以上",
        "minimum_age": "70",
        "opens_on": "2020-01-01",
        "opens_time": "09:00",
    }
    assert as_admin.post(new, past).status_code == 302
    rules = as_admin.get("/console/planning/rules/").content.decode()
    assert (
        "予約開始日時が過ぎているため、区分「70歳以上」に当てはまる方は、いまから予約できます"
        in rules
    )
    # The page that deletes a phase says which one: its age, its opening, whether it is open.
    with in_a(tenant_a):
        seventy = AgePhase.objects.get(minimum_age=70)
    page = as_admin.get(f"/console/planning/rules/phases/{seventy.pk}/delete/").content.decode()
    assert "70歳以上" in page and "2020年1月1日 09:00（受付中）" in page


def test_a_phase_inside_another_is_refused_either_way_round(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """12歳以上 has opened: an 80歳以上 phase opening later would tell an 80-year-old, who may
    book already, to wait. And with 80歳以上 opening in June, a 65歳以上 phase opening in May
    would leave the June date on the top page wrong for them: both refused, saying which."""
    new = "/console/planning/rules/phases/new/"
    inside = {
        "name": "80歳以上",
        "minimum_age": "80",
        "opens_on": "2027-01-10",
        "opens_time": "09:00",
    }
    refused = as_admin.post(new, inside)
    assert refused.status_code == 400
    assert "区分「12歳以上」（12歳以上、予約開始 " in refused.content.decode()
    assert "すでに予約できる方に開始日を待つよう案内することになります" in refused.content.decode()

    with in_a(tenant_a):
        twelve = AgePhase.objects.get(minimum_age=12)
    later = {
        "name": "12歳以上",
        "minimum_age": "12",
        "opens_on": "2027-07-01",
        "opens_time": "09:00",
    }
    assert (
        as_admin.post(f"/console/planning/rules/phases/{twelve.pk}/edit/", later).status_code == 302
    )
    june = {
        "name": "80歳以上",
        "minimum_age": "80",
        "opens_on": "2027-06-01",
        "opens_time": "09:00",
    }
    assert as_admin.post(new, june).status_code == 302  # earlier than 12歳以上: it means something
    around = {
        "name": "65歳以上",
        "minimum_age": "65",
        "opens_on": "2027-05-01",
        "opens_time": "09:00",
    }
    refused = as_admin.post(new, around)
    assert refused.status_code == 400
    assert (
        "区分「80歳以上」（80歳以上、予約開始 2027年6月1日 09:00）の方は"
        in refused.content.decode()
    )
    assert "先に「80歳以上」を変更するか削除してください" in refused.content.decode()
    # Editing 80歳以上 itself to open earlier is no conflict with its own old self.
    with in_a(tenant_a):
        eighty = AgePhase.objects.get(minimum_age=80)
    earlier = {**june, "opens_on": "2027-04-01"}
    assert (
        as_admin.post(f"/console/planning/rules/phases/{eighty.pk}/edit/", earlier).status_code
        == 302
    )
    with in_a(tenant_a):
        assert sorted(AgePhase.objects.values_list("minimum_age", flat=True)) == [12, 80]


def test_a_phase_needs_a_date_and_time(as_admin: Client, world: World, tenant_a: Municipality):
    response = as_admin.post(
        "/console/planning/rules/phases/new/",
        {"name": "65歳以上", "minimum_age": "65", "opens_on": "2026-02-30", "opens_time": ""},
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert 'aria-invalid="true"' in text and "この項目を入力してください" in text
    with in_a(tenant_a):
        assert AgePhase.objects.count() == 1


def test_an_admin_registers_a_vaccine_and_its_code_is_fixed(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    assert as_admin.post("/console/planning/rules/vaccines/new/", VACCINE).status_code == 302
    with in_a(tenant_a):
        product = VaccineProduct.objects.get(code="novavax")
    assert (product.name, product.interval_days, product.active) == (
        "ノババックス社ワクチン",
        21,
        True,
    )
    assert events(tenant_a, "vaccine.created")[-1].details["interval_days"] == 21
    formula = as_admin.post(
        "/console/planning/rules/vaccines/new/", {**VACCINE, "code": "x1", "maker": "@SUM(1)"}
    )
    assert formula.status_code == 400 and "で始めずに入力してください" in formula.content.decode()
    odd = as_admin.post("/console/planning/rules/vaccines/new/", {**VACCINE, "code": "ファイザー"})
    assert "コードは半角の英数字とハイフンで入力してください" in odd.content.decode()
    again = as_admin.post("/console/planning/rules/vaccines/new/", VACCINE)
    assert again.status_code == 400
    assert "コード「novavax」のワクチンはすでに登録されています" in again.content.decode()

    url = f"/console/planning/rules/vaccines/{product.pk}/edit/"
    assert "disabled" in as_admin.get(url).content.decode()
    response = as_admin.post(url, {**VACCINE, "code": "other", "interval_days": "28"})
    assert response.status_code == 302
    with in_a(tenant_a):
        product.refresh_from_db()
    assert (product.code, product.interval_days) == ("novavax", 28)
    assert events(tenant_a, "vaccine.updated")[-1].details["changed"] == ["interval_days: 21 → 28"]


def test_a_vaccine_no_longer_offered_leaves_the_residents_pages_at_once(
    as_admin: Client, world: World, tenant_a: Municipality, django_capture_on_commit_callbacks
) -> None:
    day = MONDAY + timedelta(days=2)
    with in_a(tenant_a):
        make_slot(world.civic, world.moderna, at(day, 10))
        assert len(open_days("web", day, day, product="moderna")) == 1
    moderna = {**VACCINE, "code": "moderna", "name": "モデルナ社ワクチン", "interval_days": "28"}
    del moderna["active"]
    with django_capture_on_commit_callbacks() as committed:
        response = as_admin.post(
            f"/console/planning/rules/vaccines/{world.moderna.pk}/edit/", moderna
        )
    assert response.status_code == 302
    with in_a(tenant_a):
        _run(committed)
        assert open_days("web", day, day, product="moderna") == []
    assert "active: True → False" in events(tenant_a, "vaccine.updated")[-1].details["changed"]


def test_the_console_home_tells_the_admin_what_is_missing_before_an_opening(
    as_admin: Client, tenant_a: Municipality
) -> None:
    bare = as_admin.get("/console/").content.decode()
    section = bare.split('id="readiness-heading"')[1].split("</section>")[0]
    assert "このままでは住民は予約できません" in section
    assert section.count("<strong>未完了</strong>") == 6
    with in_a(tenant_a):
        world = build_world(tenant_a)
        make_slot(world.civic, world.pfizer, at(MONDAY, 10), web=4, line=2, call_centre=2)
        policy = BookingPolicy.current()
        policy.call_centre_phone = "042-346-9500"
        policy.save()
    ready = as_admin.get("/console/").content.decode()
    section = ready.split('id="readiness-heading"')[1].split("</section>")[0]
    assert "住民が予約できる状態です" in section and "未完了" not in section
    assert "空き：ウェブ 4・LINE 2・コールセンター 2" in section
    assert "有効な接種券 6件" in section and "受付中 2種類" in section
    # Before the first phase opens, all is set and the page says from when.
    with in_a(tenant_a):
        AgePhase.objects.update(opens_at=datetime(2026, 5, 12, 9, 0, tzinfo=JAPAN))
    waiting = as_admin.get("/console/").content.decode()
    assert "準備はできています。2026年5月12日（火）09:00から住民が予約できます。" in waiting


def test_only_admins_see_the_readiness(
    client_a: Client, operator_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    home = logged_in(client_a, operator_a, clock).get("/console/").content.decode()
    assert "予約受付の準備" not in home


def _shown_version(page: str) -> str:
    """The hidden version the edit form carries (the row as the form showed it)."""
    value = page.split('name="version"')[1].split(">")[0]
    return value.split('value="')[1].split('"')[0]


def test_a_save_over_another_admins_change_is_refused_not_written_back(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """Two admins with the same form open: the second save would write back the first's
    change unseen (a window of 60 days where the first made it 14). It is refused, said so,
    and nothing is written; opened again, the form shows the change and saves."""
    shown = _shown_version(as_admin.get("/console/planning/rules/policy/").content.decode())
    with in_a(tenant_a):  # the other admin's save, meanwhile
        BookingPolicy.objects.filter(pk=1).update(opens_days_ahead=14)
    before = len(events(tenant_a, "booking_policy.updated"))
    refused = as_admin.post(
        "/console/planning/rules/policy/", {**POLICY, "opens_days_ahead": "60", "version": shown}
    )
    assert refused.status_code == 400
    assert "ほかの職員がこの内容を変更しました。保存していません" in refused.content.decode()
    with in_a(tenant_a):
        assert BookingPolicy.current().opens_days_ahead == 14
    assert len(events(tenant_a, "booking_policy.updated")) == before
    again = _shown_version(as_admin.get("/console/planning/rules/policy/").content.decode())
    assert again != shown
    saved = as_admin.post("/console/planning/rules/policy/", {**POLICY, "version": again})
    assert saved.status_code == 302


def test_a_phase_or_vaccine_changed_meanwhile_is_not_saved_over(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        phase = AgePhase.objects.order_by("pk").first()
        assert phase is not None
        product = VaccineProduct.objects.get(code="pfizer")
    phase_url = f"/console/planning/rules/phases/{phase.pk}/edit/"
    vaccine_url = f"/console/planning/rules/vaccines/{product.pk}/edit/"
    phase_form = as_admin.get(phase_url).content.decode()
    vaccine_form = as_admin.get(vaccine_url).content.decode()
    with in_a(tenant_a):
        AgePhase.objects.filter(pk=phase.pk).update(name="75歳以上の方（変更）")
        VaccineProduct.objects.filter(pk=product.pk).update(interval_days=21)
    opens = phase.opens_at.astimezone(JAPAN)
    refused = as_admin.post(
        phase_url,
        {
            "name": phase.name,
            "minimum_age": str(phase.minimum_age),
            "opens_on": opens.date().isoformat(),
            "opens_time": opens.strftime("%H:%M"),
            "version": _shown_version(phase_form),
        },
    )
    assert refused.status_code == 400 and "保存していません" in refused.content.decode()
    refused = as_admin.post(
        vaccine_url,
        {
            **VACCINE,
            "code": "pfizer",
            "name": product.name,
            "interval_days": "19",
            "version": _shown_version(vaccine_form),
        },
    )
    assert refused.status_code == 400 and "保存していません" in refused.content.decode()
    with in_a(tenant_a):
        assert AgePhase.objects.get(pk=phase.pk).name == "75歳以上の方（変更）"
        assert VaccineProduct.objects.get(pk=product.pk).interval_days == 21


def test_a_phase_changed_meanwhile_is_not_deleted(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """The delete page showed one phase; another admin changed it since: what it has become
    was never confirmed for deletion, and stays."""
    with in_a(tenant_a):
        phase = AgePhase.objects.order_by("pk").first()
        assert phase is not None
    url = f"/console/planning/rules/phases/{phase.pk}/delete/"
    shown = _shown_version(as_admin.get(url).content.decode())
    with in_a(tenant_a):
        AgePhase.objects.filter(pk=phase.pk).update(name="40歳以上の方（変更）")
    refused = as_admin.post(url, {"version": shown})
    assert refused["Location"] == url
    assert "削除していません" in as_admin.get(url).content.decode()
    with in_a(tenant_a):
        assert AgePhase.objects.filter(pk=phase.pk).exists()
    deleted = as_admin.post(url, {"version": _shown_version(as_admin.get(url).content.decode())})
    assert deleted["Location"] == "/console/planning/rules/"
    with in_a(tenant_a):
        assert not AgePhase.objects.filter(pk=phase.pk).exists()


def test_an_admin_sets_the_time_new_days_open_and_residents_are_told(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    form = as_admin.get("/console/planning/rules/policy/").content.decode()
    assert 'name="opens_at_time"' in form and 'type="time"' in form
    # Seconds (a browser without a time picker) are dropped.
    response = as_admin.post(
        "/console/planning/rules/policy/", {**POLICY, "opens_at_time": "9:00:30"}
    )
    assert response.status_code == 302
    with in_a(tenant_a):
        assert BookingPolicy.current().opens_at_time == time(9)
    page = as_admin.get("/console/planning/rules/").content.decode()
    assert "毎日9:00（その日から14日後の日の枠を、まとめて受付開始）" in page
    changed = events(tenant_a, "booking_policy.updated")[-1].details["changed"]
    assert "opens_at_time:  → 09:00" in changed

    # Opening at 23:00, 1 day ahead, closing 11 hours before: the slots at 9:00 would open at
    # 23:00 the day before and close at 22:00, before they opened. Closing 9 hours before
    # leaves them an hour.
    with in_a(tenant_a):
        make_slot(world.civic, world.pfizer, at(MONDAY + timedelta(days=3), 9))
        make_slot(world.civic, world.pfizer, at(MONDAY + timedelta(days=3), 14))
    late = {
        **POLICY,
        "opens_days_ahead": "1",
        "closes_hours_before": "11",
        "opens_at_time": "23:00",
    }
    refused = as_admin.post("/console/planning/rules/policy/", late)
    assert refused.status_code == 400
    assert "9:00に始まる枠（いまある枠でいちばん早い時刻）を予約できる時間がありません" in (
        refused.content.decode()
    )
    fits = {**late, "closes_hours_before": "9"}
    assert as_admin.post("/console/planning/rules/policy/", fits).status_code == 302
    with in_a(tenant_a):
        assert BookingPolicy.current().opens_at_time == time(23)
    reset = as_admin.post("/console/planning/rules/policy/", {**POLICY, "opens_at_time": "9:00"})
    assert reset.status_code == 302
    for value, message in (("25:00", "時刻"), ("nine", "時刻")):
        bad = as_admin.post("/console/planning/rules/policy/", {**POLICY, "opens_at_time": value})
        assert bad.status_code == 400 and message in bad.content.decode(), value
    with in_a(tenant_a):
        assert BookingPolicy.current().opens_at_time == time(9)

    # Emptied again: each slot opens on its own, as before.
    assert as_admin.post("/console/planning/rules/policy/", POLICY).status_code == 302
    with in_a(tenant_a):
        assert BookingPolicy.current().opens_at_time is None
    page = as_admin.get("/console/planning/rules/").content.decode()
    assert "決めていません（枠ごとに、開始時刻の14日前から受付）" in page
