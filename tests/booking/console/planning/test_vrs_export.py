"""The VRS export: its columns, its range, streamed, admin only, audited without values."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils import timezone

from booking.console.planning.vrs import VRS_COLUMNS
from booking.models import VaccinationRecord
from tenants.models import Municipality

from ..conftest import StaffAccount, events, make_staff
from .conftest import JAPAN, World, in_a, logged_in

URL = "/console/planning/vrs/"


def give(world: World, index: int, dose: int, day: date, **extra: str) -> VaccinationRecord:
    record = VaccinationRecord.objects.create(
        voucher=world.residents[index],
        dose=dose,
        product=extra.pop("product", None) or world.pfizer,
        lot_number=extra.pop("lot", "FA1234"),
        vaccinated_on=day,
        venue_name="小平市役所",
        doctor=extra.pop("doctor", "小平 一郎"),
        actor_kind="staff",
        actor_id="1",
    )
    recorded = datetime(day.year, day.month, day.day, 17, 5, 9, tzinfo=JAPAN)
    VaccinationRecord.objects.filter(pk=record.pk).update(recorded_at=recorded)
    return record


@pytest.fixture
def records(world: World, tenant_a: Municipality) -> World:
    with in_a(tenant_a):
        give(world, 0, 1, date(2026, 5, 1))
        give(world, 0, 2, date(2026, 5, 8), lot="FB5678")
        give(world, 1, 1, date(2026, 5, 8), product=world.moderna, doctor="")  # type: ignore[arg-type]
        give(world, 2, 1, date(2026, 4, 30))  # before the range
    return world


def export(client: Client, **data: str) -> StreamingHttpResponse:
    form = {
        "first_day": "2026-05-01",
        "last_day": "2026-05-08",
        "basis": "vaccinated_on",
        "encoding": "utf-8",
    }
    response = client.post(URL, {**form, **data})
    assert response.status_code == 200, response.content.decode()[:2000]
    assert isinstance(response, StreamingHttpResponse)
    return response


def rows_of(response: StreamingHttpResponse, encoding: str = "utf-8") -> list[list[str]]:
    body = b"".join(response.streaming_content).decode(encoding)
    return list(csv.reader(io.StringIO(body)))


def test_the_export_has_the_vrs_columns_one_row_per_dose(as_admin: Client, records: World) -> None:
    response = export(as_admin)
    assert response["Cache-Control"] == "no-store"
    assert (
        response["Content-Disposition"] == 'attachment; filename="vrs_132110_20260501_20260508.csv"'
    )
    rows = rows_of(response)
    assert (
        rows[0]
        == list(VRS_COLUMNS)
        == [
            "宛名番号",
            "登録日時",
            "接種日",
            "接種券番号",
            "市区町村コード",
            "接種会場",
            "医師名",
            "ワクチンメーカー",
            "ロット番号",
            "接種回数",
        ]
    )
    assert rows[1:] == [
        [
            "A000000001",
            "20260501170509",
            "20260501",
            "1000000001",
            "132110",
            "小平市役所",
            "小平 一郎",
            "ファイザー",
            "FA1234",
            "1",
        ],
        [
            "A000000001",
            "20260508170509",
            "20260508",
            "1000000001",
            "132110",
            "小平市役所",
            "小平 一郎",
            "ファイザー",
            "FB5678",
            "2",
        ],
        [
            "A000000002",
            "20260508170509",
            "20260508",
            "1000000002",
            "132110",
            "小平市役所",
            "",
            "武田/モデルナ",
            "FA1234",
            "1",
        ],
    ]


def test_every_export_is_audited_with_range_and_counts_only(
    as_admin: Client, records: World, tenant_a: Municipality
) -> None:
    rows_of(export(as_admin))
    exported = events(tenant_a, "export.vrs")
    assert len(exported) == 1
    details = exported[0].details
    assert exported[0].actor_kind == "staff"
    assert details["as_of"].endswith("+09:00")  # in Japan's time, as the trail shows rows
    assert {k: v for k, v in details.items() if k != "as_of"} == {
        "first_day": "2026-05-01",
        "last_day": "2026-05-08",
        "basis": "vaccinated_on",
        "rows": 3,
        "vouchers": 2,
        "encoding": "utf-8",
    }
    flat = str(details)
    for value in ("A000000001", "1000000001", "小平 一郎", "FA1234"):
        assert value not in flat


def test_the_recorded_date_range_and_shift_jis(as_admin: Client, records: World) -> None:
    response = export(
        as_admin,
        basis="recorded_at",
        first_day="2026-04-30",
        last_day="2026-04-30",
        encoding="cp932",
    )
    rows = rows_of(response, "cp932")
    assert [row[3] for row in rows[1:]] == ["1000000003"]
    assert rows[1][5] == "小平市役所"


def test_a_shift_jis_export_that_would_lose_a_name_is_refused_saying_which(
    as_admin: Client, records: World, tenant_a: Municipality
) -> None:
    """𠮷 has no Shift_JIS code: the file would carry "?" for it without a word. Refused,
    naming the name, and nothing is exported (nor recorded as exported); UTF-8 writes it."""
    with in_a(tenant_a):
        give(records, 3, 1, date(2026, 5, 2), doctor="𠮷田 一郎")
    refused = as_admin.post(
        URL,
        {
            "first_day": "2026-05-01",
            "last_day": "2026-05-08",
            "basis": "vaccinated_on",
            "encoding": "cp932",
        },
    )
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "Shift_JIS（CP932）では書けない文字を含む名前があります：𠮷田 一郎。" in text
    assert events(tenant_a, "export.vrs") == []
    rows = rows_of(export(as_admin))
    assert any(row[6] == "𠮷田 一郎" for row in rows[1:])


def test_a_large_export_is_read_in_batches(
    as_admin: Client, world: World, tenant_a: Municipality, monkeypatch: pytest.MonkeyPatch
) -> None:
    import booking.console.planning.vrs as vrs

    monkeypatch.setattr(vrs, "BATCH", 2)
    with in_a(tenant_a):
        for index in range(5):
            give(world, index, 1, date(2026, 5, 2))
    response = export(as_admin)
    chunks = list(response.streaming_content)
    assert len(chunks) == 1 + 3  # the header, then 2 + 2 + 1 rows
    assert len(rows_of_chunks(chunks)) == 6


def rows_of_chunks(chunks: list[bytes]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode())))


@pytest.mark.parametrize("role", ["call_centre", "venue", "auditor"])
def test_only_an_admin_may_export(
    client_a: Client,
    records: World,
    tenant_a: Municipality,
    clock: time_machine.Coordinates,
    role: str,
) -> None:
    account: StaffAccount = make_staff(tenant_a, f"{role}@kodaira.example.jp", role)
    logged_in(client_a, account, clock)
    response = client_a.post(
        URL,
        {
            "first_day": "2026-05-01",
            "last_day": "2026-05-08",
            "basis": "vaccinated_on",
            "encoding": "utf-8",
        },
    )
    assert response.status_code == 403
    assert b"1000000001" not in response.content
    assert events(tenant_a, "export.vrs") == []
    assert events(tenant_a, "console.access_refused")[-1].details["path"] == URL


def test_a_bad_range_is_explained(as_admin: Client, records: World, tenant_a) -> None:
    response = as_admin.post(
        URL,
        {
            "first_day": "2026-05-08",
            "last_day": "2026-05-01",
            "basis": "vaccinated_on",
            "encoding": "utf-8",
        },
    )
    assert response.status_code == 400
    assert "終了日は開始日以降にしてください" in response.content.decode()
    assert events(tenant_a, "export.vrs") == []


def test_the_form_starts_on_the_basis_its_help_recommends(as_admin: Client) -> None:
    import re

    form = as_admin.get("/console/planning/vrs/").content.decode()
    assert "毎日の登録には「登録日」が確実です" in form
    assert re.search(r'<input[^>]*value="recorded_at"[^>]*checked', form)
    assert not re.search(r'<input[^>]*value="vaccinated_on"[^>]*checked', form)


def test_records_corrected_or_withdrawn_after_an_export_held_them_are_listed_until_fixed(
    as_admin: Client,
    records: World,
    tenant_a: Municipality,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """An export holds a record as it was; a correction keeps its 登録日, so no later export
    by that date carries it again. The page lists what changed after an export held it, with
    the voucher numbers (that read audited with the vouchers) — whatever else is exported
    meanwhile — until the admin says it is corrected in the VRS."""
    from booking.models import StaffMember
    from booking.services.reception import vaccination_correct, vaccination_void

    assert 'id="vrs-changes"' not in as_admin.get(URL).content.decode()  # never exported
    rows_of(export(as_admin))
    clock.shift(60)  # the reception's changes come after the export
    with in_a(tenant_a):
        admin = StaffMember.objects.get(pk=admin_a.staff_id)
        first, second = VaccinationRecord.objects.filter(voucher=records.residents[0])
        vaccination_correct(
            vaccination=first, staff=admin, lot_number="FA1235", doctor="小平 一郎", reason="表示"
        )
        vaccination_void(vaccination=second, staff=admin, reason="別の方の記録")
        # A record made after the export and corrected: the next export carries it as it is.
        late = give(records, 3, 1, date(2026, 5, 8))
        later = timezone.now() + timedelta(minutes=1)
        VaccinationRecord.objects.filter(pk=late.pk).update(recorded_at=later)
        late.refresh_from_db()
        vaccination_correct(
            vaccination=late, staff=admin, lot_number="FA9999", doctor="小平 一郎", reason="表示"
        )
    # Another export meanwhile, of days that hold none of them, clears nothing.
    rows_of(export(as_admin, first_day="2026-04-01", last_day="2026-04-02"))
    page = as_admin.get(URL).content.decode()
    listed = page.split('id="vrs-changes"')[1].split("</section>")[0]
    number = records.residents[0].voucher_number
    assert listed.count(number) == 2
    assert records.residents[3].voucher_number not in listed
    assert "ロット番号 FA1234 → FA1235" in listed and "取消（誤登録）：VRSで削除" in listed
    (viewed,) = events(tenant_a, "export.vrs_changes_viewed")
    assert viewed.details == {"vouchers": [records.residents[0].pk]}
    # Corrected in the VRS by hand: the admin says so, and the list starts after them.
    through = re.search(r'name="through_seq" value="(\d+)"', listed)
    assert through is not None
    done = as_admin.post(URL, {"action": "changes_done", "through_seq": through.group(1)})
    assert done.status_code == 302
    assert 'id="vrs-changes"' not in as_admin.get(done["Location"]).content.decode()
    assert events(tenant_a, "export.vrs_changes_done")[0].details == {
        "through_seq": int(through.group(1))
    }
