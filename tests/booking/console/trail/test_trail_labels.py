"""The trail in the auditor's words: each event says what was done in Japanese (its code in
small print beside it, for the filter), and each detail says what it is; every action the
source can write to a municipality's trail has its words."""

from __future__ import annotations

import re
from pathlib import Path

import time_machine
from django.test import Client
from django_tenants.utils import schema_context

from audit import record
from audit.chain import Actor
from booking.console.trail.selectors import ACTION_AREAS, ACTION_LABELS, action_label
from booking.services.planning.exports import EXPORT_KINDS
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import signed_in
from tests.booking.console.conftest import StaffAccount

TRAIL = "/console/trail/"
ROOT = Path(__file__).resolve().parents[4]
SOURCES = ("booking", "audit", "tenants", "platform")
# The vendor's own chain (the public schema), never a municipality's trail.
PLATFORM_AREAS = {"controlplane", "municipality", "tenant", "tenant_key"}
ACTION_ARGUMENT = re.compile(r'action="([a-z_]+\.[a-z_]+)"')
# Actions also come from elsewhere than ``action="…"``: ``"a.x" if … else "a.y"``, module
# constants (``SEARCHED = "callcentre.searched"``), a helper's argument. Any string shaped
# like an action of a municipality's area counts — except for "booking.", whose other such
# strings are Celery task names and model labels (its actions are all ``action="…"``).
ACTION_SHAPED = re.compile(r'"([a-z_]+)\.([a-z_]+)"')
NOT_ACTIONS = {
    "demo.csv",  # a file name
    "slots.html",  # a template
    "resident.email",  # keyed-index purposes
    "resident.phone",
}


def actions_in_source() -> set[str]:
    found = {f"export.{kind}" for kind in EXPORT_KINDS}  # export_record: f"export.{kind}"
    for top in SOURCES:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            found.update(ACTION_ARGUMENT.findall(text))
            found.update(
                f"{area}.{name}"
                for area, name in ACTION_SHAPED.findall(text)
                if area in ACTION_AREAS and area != "booking"
            )
    return {
        action for action in found - NOT_ACTIONS if action.split(".", 1)[0] not in PLATFORM_AREAS
    }


def test_every_action_of_a_municipalitys_trail_has_its_words() -> None:
    actions = actions_in_source()
    # The scan does find the actions written in each way.
    assert {
        "booking.created",  # action="…"
        "callcentre.personal_data_revealed",  # a constant
        "reception.check_in_undone",  # "…" if … else "…"
        "registry_import.upload_deleted",  # a helper's argument
        "export.vrs",  # export_record's kinds
    } <= actions
    assert sorted(actions - set(ACTION_LABELS)) == []
    # …and no words for an action that does not exist (a typo in a code).
    assert sorted(set(ACTION_LABELS) - actions) == []


def test_an_unknown_action_falls_back_to_its_area() -> None:
    assert action_label("booking.created") == "予約の作成"
    assert action_label("callcentre.something_new") == "コールセンター"
    assert action_label("tests.filler") == ""


def _page(
    tenant: Municipality,
    client: Client,
    auditor: StaffAccount,
    clock: time_machine.Coordinates,
    action: str,
    details: dict[str, object],
) -> str:
    with schema_context(tenant.schema_name):
        record(action=action, actor=Actor.system("tests"), details=details)
    page = signed_in(client, auditor, clock).get(TRAIL, {"action": action})
    assert page.status_code == 200
    return page.content.decode()


def test_an_event_says_what_was_done_in_japanese_with_its_code_beside_it(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    page = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "booking.created",
        {"channel": "call_centre", "dose": 2, "slot": 41, "linked_to": None, "odd_key": "x"},
    )
    assert '予約の作成<br><small class="mono">booking.created</small>' in page
    assert "予約経路（channel）: コールセンター（call_centre）" in page
    assert "接種回数（dose）: 2<" in page and "予約枠（slot）: id 41<" in page
    assert "連動する予約（linked_to）: なし<" in page  # no JSON null before municipal staff
    assert "odd_key: x<" in page  # a key without words, as it is


def test_a_detail_reads_as_what_it_means_in_its_own_area(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    resent = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "notification.resent",
        {"channel": "email", "kind": "reminder", "previous_status": "failed"},
    )
    assert "お知らせの再送<br>" in resent
    assert "送信方法（channel）: メール（email）" in resent
    assert "お知らせの種類（kind）: 前日のお知らせ（reminder）" in resent
    assert "変更前の状態（previous_status）: 送信失敗（failed）" in resent

    reopened = _page(
        tenant_a, client_a, auditor_a, clock, "slot.reopened", {"previous_status": "cancelled"}
    )
    assert "予約枠の受付再開<br>" in reopened
    assert "変更前の状態（previous_status）: 中止（cancelled）" in reopened

    revealed = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "callcentre.personal_data_revealed",
        {"reason": "callback"},
    )
    assert "個人情報の表示（コールセンター）<br>" in revealed
    assert "理由（reason）: 折り返しの連絡のため（callback）" in revealed

    cancelled = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "booking.cancelled",
        {"channel": "call_centre", "asked_by": "family", "given_reason": "elsewhere"},
    )
    assert "お申し出の方（asked_by）: ご家族・代理の方（family）" in cancelled
    assert (
        "伺った理由（given_reason）: ほかの会場・医療機関で接種した（する）（elsewhere）"
        in cancelled
    )

    downloaded = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "registry_import.codes_downloaded",
        {"voucher_ranges": [[1, 191], [200, 200]]},
    )
    assert "対象の接種券（voucher_ranges）: id 1〜191、id 200<" in downloaded

    refused = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "console.access_refused",
        {"reason": "role", "required_roles": ["admin", "auditor"]},
    )
    assert "理由（reason）: role<" in refused  # a code of no known choice, as it is
    assert "必要な役割（required_roles）: 管理者（admin）、監査担当（auditor）" in refused


def test_an_events_target_reads_as_the_number_staff_use(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    from booking.models import Voucher
    from tests.booking.console.reception.conftest import make_voucher

    with schema_context(tenant_a.schema_name):
        voucher = make_voucher(tenant_a, "2000000077")
        record(action="callcentre.resident_viewed", actor=Actor.system("tests"), target=voucher)
        assert Voucher.objects.filter(pk=voucher.pk).exists()
    page = signed_in(client_a, auditor_a, clock).get(TRAIL, {"action": "callcentre."})
    text = page.content.decode()
    assert f'接種券 2000000077<br><small class="mono">booking.voucher:{voucher.pk}</small>' in text


def test_a_staff_events_target_reads_as_the_address_the_admin_knows(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    from booking.services.staff import staff_invite

    with schema_context(tenant_a.schema_name):
        issued = staff_invite(
            email="new.venue@kodaira.example.jp",
            role="venue",
            invited_by=None,
            actor=Actor.system("tests"),
        )
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(pk=auditor_a.user_id)
        record(action="staff.sessions_ended", actor=Actor.system("tests"), target=user)
    page = signed_in(client_a, auditor_a, clock).get(TRAIL, {"action": "staff."})
    text = page.content.decode()
    pk = issued.invitation.pk
    code = f'<small class="mono">booking.staffinvitation:{pk}</small>'
    assert f"招待 new.venue@kodaira.example.jp<br>{code}" in text
    assert f"職員 {auditor_a.email}<br>" in text


def test_a_details_ids_and_vaccine_codes_read_as_numbers_and_names(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    from booking.models import VaccineProduct
    from tests.booking.console.reception.conftest import make_voucher

    with schema_context(tenant_a.schema_name):
        voucher = make_voucher(tenant_a, "2000000078")
        VaccineProduct.objects.create(code="trailvax", name="試験用ワクチン", interval_days=21)
        record(
            action="reception.vaccination_recorded",
            actor=Actor.system("tests"),
            details={"vouchers": [voucher.pk], "product": "trailvax", "product_reason": "stock"},
        )
    text = signed_in(client_a, auditor_a, clock).get(TRAIL, {"action": "reception."}).content
    page = text.decode()
    assert f"接種券（vouchers）: 接種券 2000000078（id {voucher.pk}）" in page
    assert "ワクチン（product）: 試験用ワクチン（trailvax）" in page
    assert "在庫・供給の都合（stock）" in page


def test_a_change_names_the_slot_it_left_as_it_names_the_new_one(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    from tests.booking.console.planning.conftest import MONDAY, at, build_world, make_slot

    with schema_context(tenant_a.schema_name):
        world = build_world(tenant_a)
        left = make_slot(world.civic, world.pfizer, at(MONDAY, 9))
        taken = make_slot(world.north, world.pfizer, at(MONDAY, 14))
        record(
            action="booking.changed",
            actor=Actor.system("tests"),
            details={"channel": "call_centre", "slot": taken.pk, "previous_slot": left.pk},
        )
    page = signed_in(client_a, auditor_a, clock).get(TRAIL, {"action": "booking."})
    text = page.content.decode()
    left_line = text.split("（previous_slot）: ")[1].split("<")[0]
    taken_line = text.split("（slot）: ")[1].split("<")[0]
    assert world.civic.name in left_line and f"id {left.pk}" in left_line
    assert world.north.name in taken_line


def test_residents_and_receptions_codes_and_moments_read_in_japanese(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """What an auditor meets after a complaint: no English codes, no UTC, no JSON."""
    refused = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "resident.login_failed",
        {"reason": "wrong_birth_date", "method": "birth_date", "fields": ["birth_date"]},
    )
    assert "生年月日の誤り（wrong_birth_date）" in refused
    assert "接種券番号と生年月日（birth_date）" in refused
    assert "生年月日（birth_date）<" in refused
    reception = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "reception.refused",
        {"operation": "lookup", "reason": "no_booking_today"},
    )
    assert (
        "予約の検索（lookup）" in reception and "本日の予約がない（no_booking_today）" in reception
    )
    corrected = _page(
        tenant_a,
        client_a,
        auditor_a,
        clock,
        "reception.vaccination_corrected",
        {"recorded_at": "2026-12-07T09:11:06.732463+00:00", "after_no_show": True},
    )
    assert "2026年12月7日 18:11:06" in corrected and "+00:00" not in corrected
    assert ": はい<" in corrected and "true" not in corrected


def test_a_vendors_operator_is_named_as_the_vendors(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    with schema_context(tenant_a.schema_name):
        record(action="registry_import.uploaded", actor=Actor(Actor.VENDOR, "7"))
    page = signed_in(client_a, auditor_a, clock).get(TRAIL, {"action": "registry_import."})
    assert "vendor:7 (運営事業者の担当者)" in page.content.decode()
