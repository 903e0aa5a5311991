"""The breach-scope report names the residents of bulk reads: the VRS export, the registry
import's error and activation-code files, and the slot-cancellation page's voucher list."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit import record
from audit.chain import Actor
from booking.models import Voucher
from booking.services import bulk_reads, incident
from booking.services.bulk_reads import voucher_ranges, voucher_ranges_expand
from booking.services.registry_import import (
    registry_import_apply,
    registry_import_codes_file,
    registry_import_confirm,
    registry_import_error_file,
    registry_import_parse,
)
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import csv_rows, signed_in
from tests.booking.console.conftest import StaffAccount, events
from tests.booking.console.planning.conftest import (  # noqa: F401  (fixtures)
    MONDAY,
    World,
    as_admin,
    at,
    make_slot,
    world,
)
from tests.booking.console.planning.test_vrs_export import give
from tests.booking.registry_import.conftest import csv_bytes, row
from tests.booking.registry_import.conftest import upload as registry_upload

TRAIL_REPORT = "/console/trail/report/"


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path) -> None:  # noqa: ANN001
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1


@pytest.fixture(params=["as shipped", "a resident at a time"])
def batches(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report reads residents and numbers in batches and spools itself to disk past a
    size: the smallest batches and a file on disk from the first byte give the same rows."""
    if request.param == "a resident at a time":
        monkeypatch.setattr(incident, "_RESIDENTS_PER_QUERY", 1)
        monkeypatch.setattr(incident, "_REPORT_IN_MEMORY_BYTES", 1)
        monkeypatch.setattr(bulk_reads, "_LOOKUP_BATCH", 1)


def report(auditor: StaffAccount, clock: time_machine.Coordinates) -> list[list[str]]:
    client = signed_in(Client(HTTP_HOST="kodaira.localhost"), auditor, clock)
    now = timezone.localtime()
    response = client.post(
        TRAIL_REPORT,
        {
            "report-start": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "report-end": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 200
    rows = csv_rows(b"".join(response.streaming_content))
    assert rows[0][9] == "備考"
    assert rows[0][-4:] == ["閲覧者のメールアドレス", "理由の説明", "メモ", "対象"]
    return rows[1:]


def of_action(rows: list[list[str]], action: str) -> list[tuple[str, str, str, str]]:
    """(actor id, voucher id, voucher number, note) of each row of ``action``."""
    return [(row[3], row[4], row[5], row[9]) for row in rows if row[1] == action]


def test_id_ranges_round_trip() -> None:
    assert voucher_ranges([7, 1, 2, 3, 3, 9]) == [[1, 3], [7, 7], [9, 9]]
    assert voucher_ranges_expand([[1, 3], [7, 7], [9, 9]]) == [1, 2, 3, 7, 9]
    assert voucher_ranges_expand("nonsense") == [] and voucher_ranges([]) == []


def test_the_report_names_every_resident_of_a_vrs_export(
    tenant_a: Municipality,
    as_admin: Client,  # noqa: F811
    admin_a: StaffAccount,
    auditor_a: StaffAccount,
    world: World,  # noqa: F811
    clock: time_machine.Coordinates,
) -> None:
    with tenant_context(tenant_a):
        give(world, 0, 1, date(2026, 5, 1))
        give(world, 0, 2, date(2026, 5, 8))
        give(world, 1, 1, date(2026, 5, 8))
        give(world, 2, 1, date(2026, 4, 30))  # before the range: not in the file
    response = as_admin.post(
        "/console/planning/vrs/",
        {
            "first_day": "2026-05-01",
            "last_day": "2026-05-08",
            "basis": "vaccinated_on",
            "encoding": "utf-8",
        },
    )
    assert response.status_code == 200
    b"".join(response.streaming_content)  # type: ignore[attr-defined]
    # A record entered after the export started was not in the file.
    clock.shift(60)
    with tenant_context(tenant_a):
        give(world, 3, 1, date(2026, 5, 2))
        from booking.models import VaccinationRecord

        VaccinationRecord.objects.filter(voucher=world.residents[3]).update(
            recorded_at=timezone.now()
        )

    listed = of_action(report(auditor_a, clock), "export.vrs")
    admin = str(admin_a.user_id)
    assert listed == [
        (admin, str(world.residents[0].pk), "1000000001", ""),
        (admin, str(world.residents[1].pk), "1000000002", ""),
    ]


def test_the_report_names_the_residents_shown_on_the_slot_cancel_page(
    tenant_a: Municipality,
    as_admin: Client,  # noqa: F811
    admin_a: StaffAccount,
    auditor_a: StaffAccount,
    world: World,  # noqa: F811
    clock: time_machine.Coordinates,
) -> None:
    with tenant_context(tenant_a):
        slot = make_slot(world.civic, world.pfizer, at(MONDAY, 10))
        world.book(slot, world.residents[0])
        world.book(slot, world.residents[4], channel="line")
    assert as_admin.get(f"/console/planning/slots/{slot.pk}/cancel/").status_code == 200
    listed = of_action(report(auditor_a, clock), "slot.cancel_viewed")
    admin = str(admin_a.user_id)
    assert listed == [
        (admin, str(world.residents[0].pk), "1000000001", ""),
        (admin, str(world.residents[4].pk), "1000000005", ""),
    ]


def test_the_report_names_the_residents_of_a_downloaded_codes_file(
    tenant_a: Municipality,
    batches: None,
    admin_a: StaffAccount,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    Municipality.objects.filter(pk=tenant_a.pk).update(
        login_mode=Municipality.LoginMode.VOUCHER_CODE
    )
    tenant_a.refresh_from_db()
    staff = Actor(Actor.STAFF, str(admin_a.user_id))
    with tenant_context(tenant_a):
        registry_import = registry_upload(
            csv_bytes([row(f"000000000{index}") for index in range(1, 4)])
        )
        registry_import_parse(registry_import_id=registry_import.pk)
        registry_import.refresh_from_db()
        registry_import_confirm(registry_import=registry_import, actor=staff, enqueue=False)
        registry_import_apply(registry_import_id=registry_import.pk)
        registry_import.refresh_from_db()
        registry_import_codes_file(registry_import=registry_import, actor=staff)
        vouchers = list(Voucher.objects.order_by("pk").values_list("pk", "voucher_number"))
    (downloaded,) = events(tenant_a, "registry_import.codes_downloaded")
    assert downloaded.details["voucher_ranges"] == [[vouchers[0][0], vouchers[-1][0]]]
    assert downloaded.details["residents"] == 3
    assert "認証コード" not in str(downloaded.details)

    listed = of_action(report(auditor_a, clock), "registry_import.codes_downloaded")
    admin = str(admin_a.user_id)
    assert listed == [(admin, str(pk), number, "") for pk, number in vouchers]


def test_the_report_names_the_rows_of_a_downloaded_error_file(
    tenant_a: Municipality,
    batches: None,
    admin_a: StaffAccount,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    staff = Actor(Actor.STAFF, str(admin_a.user_id))
    with tenant_context(tenant_a):
        first = registry_upload(csv_bytes([row("0000000001")]))
        registry_import_parse(registry_import_id=first.pk)
        first.refresh_from_db()
        registry_import_confirm(registry_import=first, actor=staff, enqueue=False)
        registry_import_apply(registry_import_id=first.pk)
        existing = Voucher.objects.get(voucher_number="0000000001")
        # A second list: a bad birth date for a known voucher and for a new one, a row
        # whose voucher number itself is wrong, and two people under one number (one of
        # them mistyped): the report says the number's two lines may be two people.
        second = registry_upload(
            csv_bytes(
                [
                    row("0000000001", birth="昭和23年2月30日"),
                    row("0000000002", birth="昭和23年2月30日"),
                    row("12345", name="番号 誤り"),
                    row("0000000003", name="田中 健二"),
                    row("0000000003", name="鈴木 節子"),
                ]
            )
        )
        registry_import_parse(registry_import_id=second.pk)
        second.refresh_from_db()
        registry_import_error_file(registry_import=second, actor=staff)

    listed = of_action(report(auditor_a, clock), "registry_import.error_file_downloaded")
    admin = str(admin_a.user_id)
    assert listed == [
        (admin, str(existing.pk), "0000000001", ""),
        (admin, "", "0000000002", "未登録の接種券番号"),
        (
            admin,
            "",
            "0000000003",
            "未登録の接種券番号、この番号の行 2行（別の方の行を含むことがあります）",
        ),
        (admin, "", "", f"接種券番号のない行 1行（取込 {second.pk} のエラーファイル）"),
    ]
    (downloaded,) = events(tenant_a, "trail.report_downloaded")
    assert downloaded.details["residents"] == 3


def test_a_codes_download_recorded_before_the_vouchers_were_named_is_still_listed(
    tenant_a: Municipality,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    with tenant_context(tenant_a):
        record(
            action="registry_import.codes_downloaded",
            actor=Actor(Actor.STAFF, "99"),
            details={"codes": 1200},
        )
    listed = of_action(report(auditor_a, clock), "registry_import.codes_downloaded")
    assert listed == [("99", "", "", "認証コード 1200件（対象の接種券は記録されていません）")]


def test_the_report_never_hands_excel_a_formula(
    tenant_a: Municipality,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """A reason typed as a formula (staff write theirs in words) is in the report as text:
    opened in Excel by the auditor, it shows, never runs."""
    formula = '=HYPERLINK("http://evil.example","x")'
    with tenant_context(tenant_a):
        record(
            action="registry_import.codes_downloaded",
            actor=Actor(Actor.STAFF, "99"),
            details={"codes": 1, "reason": formula},
        )
    [row] = [
        row for row in report(auditor_a, clock) if row[1] == "registry_import.codes_downloaded"
    ]
    assert row[6] == row[12] == "'" + formula
    assert row[3] == "99"


def test_the_report_counts_each_resident_once_however_its_rows_come() -> None:
    written = io.BytesIO()
    rows = [
        ["t", "a", "staff", "1", voucher_id, number, "", "", 1, note]
        for voucher_id, number, note in [
            (3, "0000000003", ""),
            (4, "0000000004", ""),
            (5, "0000000005", ""),
            (3, "0000000003", ""),  # again, after others
            (10, "0000000010", ""),
            ("", "0000000099", "未登録の接種券番号"),
            ("", "0000000099", "未登録の接種券番号"),
            ("", "", "接種券番号のない行 2行"),
        ]
    ]
    assert incident._write_report(written, rows) == (8, 5)
    text = written.getvalue().decode("utf-8")
    assert text.startswith("\ufeff日時,") and text.count("\r\n") == 9


def test_the_trail_of_one_resident_shows_the_searches_and_files_that_held_them(
    tenant_a: Municipality,
    as_admin: Client,  # noqa: F811
    admin_a: StaffAccount,
    world: World,  # noqa: F811
    clock: time_machine.Coordinates,
) -> None:
    """An auditor asking who read one resident's data, on the trail page itself: besides
    what was done to the voucher, the call centre's searches that listed it, the codes file
    and the VRS export that held it, and the error file with its number (a number never
    imported has its error file alone). Reads that held others only are not shown."""
    from booking.console.trail.selectors import trail_page

    staff = Actor(Actor.STAFF, str(admin_a.user_id))
    hanako, other = world.residents[0], world.residents[1]
    with tenant_context(tenant_a):
        give(world, 0, 1, date(2026, 5, 1))
        give(world, 1, 1, date(2026, 5, 20))
    exported = as_admin.post(
        "/console/planning/vrs/",
        {
            "first_day": "2026-05-01",
            "last_day": "2026-05-08",
            "basis": "vaccinated_on",
            "encoding": "utf-8",
        },
    )
    b"".join(exported.streaming_content)  # type: ignore[attr-defined]
    with tenant_context(tenant_a):
        listed = record(
            action="callcentre.searched",
            actor=staff,
            details={"by": "kana", "vouchers": [other.pk, hanako.pk]},
        )
        elsewhere = record(
            action="callcentre.searched",
            actor=staff,
            details={"by": "kana", "vouchers": [other.pk]},
        )
        codes = record(
            action="registry_import.codes_downloaded",
            actor=staff,
            details={"voucher_ranges": [[hanako.pk, hanako.pk]]},
        )
        record(
            action="registry_import.codes_downloaded",
            actor=staff,
            details={"voucher_ranges": [[other.pk, other.pk]]},
        )
        errors = registry_upload(
            csv_bytes(
                [
                    row(hanako.voucher_number, birth="昭和23年2月30日"),
                    row("0000000077", birth="昭和23年2月30日"),
                ]
            )
        )
        registry_import_parse(registry_import_id=errors.pk)
        errors.refresh_from_db()
        registry_import_error_file(registry_import=errors, actor=staff)
        error_file = events(tenant_a, "registry_import.error_file_downloaded")[-1]
        [vrs] = events(tenant_a, "export.vrs")

        shown = {row.event.seq for row in trail_page(target=hanako.voucher_number)[0]}
        assert {listed.seq, codes.seq, error_file.seq, vrs.seq} <= shown
        assert elsewhere.seq not in shown
        assert not any(
            row.event.action == "registry_import.codes_downloaded" and row.event.seq != codes.seq
            for row in trail_page(target=hanako.voucher_number)[0]
        )
        # The other resident's dose was after the export's days: not in it.
        assert vrs.seq not in {row.event.seq for row in trail_page(target=other.voucher_number)[0]}
        never = {row.event.seq for row in trail_page(target="0000000077")[0]}
        assert never == {error_file.seq}
