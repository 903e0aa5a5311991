from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import Event
from booking.models import (
    Booking,
    RegistryImport,
    RegistryImportRow,
    Slot,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.services.registry_import import (
    RegistryImportRefused,
    activation_code_hash,
    registry_import_apply,
    registry_import_cancel,
    registry_import_codes_file,
    registry_import_confirm,
    registry_import_error_file,
    registry_import_parse,
    registry_import_progress,
)
from tenants.crypto import cipher_for
from tests.booking.registry_import.conftest import (
    ACTOR,
    csv_bytes,
    import_all,
    preview,
    row,
    upload,
)

ROOT = Path(__file__).resolve().parents[3]


def test_the_preview_writes_no_voucher_and_counts_every_kind(tenant) -> None:
    registry_import = preview(csv_bytes([row("0000000001"), row("0000000002"), row("12345")]))
    assert registry_import.status == RegistryImport.Status.PREVIEWED
    assert registry_import.counts == {
        "rows": 3,
        "new": 2,
        "changed": 0,
        "unchanged": 0,
        "invalid": 1,
        # The valid rows' addresses, read for the municipality they name: 小平市's own.
        "addresses_checked": 2,
        "addresses_elsewhere": 0,
        "places_elsewhere": [],
    }
    assert Voucher.objects.count() == 0
    error = registry_import.errors.get()
    assert (error.line_number, error.column) == (4, "接種券番号")
    assert "12345" not in error.masked_value and "10桁" in error.message
    assert Event.objects.filter(
        action="registry_import.previewed", target_id=str(registry_import.pk)
    )


def test_import_seals_personal_fields_and_indexes_kana_and_phone(tenant) -> None:
    import_all(csv_bytes([row("0000000001", kana="ｺﾀﾞｲﾗ ﾊﾅｺ", phone="０９０−１２３４−５６７８")]))
    voucher = Voucher.objects.get(voucher_number="0000000001")
    cipher = cipher_for(tenant)
    personal = cipher.open_record(
        bytes(voucher.personal), table="booking_voucher", row_id="0000000001"
    )
    assert personal["name_kana"] == "コダイラ ハナコ"
    assert personal["birth_date"] == "1948-04-01"
    assert personal["phone"] == "09012345678"
    assert b"\xe5\xb0\x8f\xe5\xb9\xb3" not in bytes(voucher.personal)  # 小平 in UTF-8
    assert bytes(voucher.kana_index) == cipher.blind_index("コダイラハナコ", purpose="name_kana")
    assert bytes(voucher.phone_index) == cipher.blind_index("09012345678", purpose="phone")


def test_the_call_centres_kana_or_phone_lookup_is_answered_by_the_hash_indexes(tenant) -> None:
    import_all(csv_bytes([row(f"{n:010d}", phone=f"0901234{n:04d}") for n in range(1, 41)]))
    cipher = cipher_for(tenant)
    lookup = Voucher.objects.filter(
        Q(kana_index=cipher.blind_index("コダイラハナコ", purpose="name_kana"))
        | Q(phone_index=cipher.blind_index("09012340007", purpose="phone"))
    )
    assert [v.voucher_number for v in lookup] == [f"{n:010d}" for n in range(1, 41)]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = lookup.explain()
    assert "voucher_kana_index" in plan and "voucher_phone_index" in plan, plan
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am am ON am.oid = c.relam WHERE c.relname IN"
            " ('voucher_kana_index', 'voucher_phone_index')"
            " AND c.relnamespace = to_regnamespace(current_schema())"
        )
        assert sorted(row[0] for row in cursor.fetchall()) == ["hash", "hash"]


def test_importing_the_same_file_twice_changes_nothing(tenant) -> None:
    data = csv_bytes([row("0000000001"), row("0000000002")])
    import_all(data)
    before = {v.voucher_number: (bytes(v.personal), v.updated_at) for v in Voucher.objects.all()}
    second = import_all(data)
    assert second.counts["unchanged"] == 2 and second.counts["new"] == 0
    after = {v.voucher_number: (bytes(v.personal), v.updated_at) for v in Voucher.objects.all()}
    assert after == before


def test_a_changed_row_is_updated(tenant) -> None:
    import_all(csv_bytes([row("0000000001"), row("0000000002")]))
    second = import_all(
        csv_bytes([row("0000000001", address="小平市学園東町2-2"), row("0000000002")])
    )
    assert (second.counts["changed"], second.counts["unchanged"]) == (1, 1)
    voucher = Voucher.objects.get(voucher_number="0000000001")
    personal = cipher_for(tenant).open_record(
        bytes(voucher.personal), table="booking_voucher", row_id="0000000001"
    )
    assert personal["address"] == "小平市学園東町2-2"


def _applied_with_statements(registry_import: RegistryImport) -> list[str]:
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)
    with CaptureQueriesContext(connection) as queries:
        registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.DONE
    return [query["sql"] for query in queries.captured_queries]


def _personal(tenant, voucher_number: str) -> dict:
    voucher = Voucher.objects.get(voucher_number=voucher_number)
    return cipher_for(tenant).open_record(
        bytes(voucher.personal), table="booking_voucher", row_id=voucher_number
    )


def test_a_first_list_is_inserted_without_looking_for_its_vouchers(tenant) -> None:
    registry_import = preview(csv_bytes([row("0000000001"), row("0000000002")]))
    assert registry_import.counts["new"] == 2
    statements = _applied_with_statements(registry_import)
    assert not [sql for sql in statements if "UPDATE booking_voucher " in sql]
    inserts = [sql for sql in statements if "INSERT INTO booking_voucher " in sql]
    assert len(inserts) == 1 and "NOT EXISTS" not in inserts[0]
    assert set(Voucher.objects.values_list("voucher_number", flat=True)) == {
        "0000000001",
        "0000000002",
    }


def test_a_list_naming_known_vouchers_updates_them_and_inserts_the_rest(tenant) -> None:
    import_all(csv_bytes([row("0000000001")]))
    registry_import = preview(
        csv_bytes([row("0000000001", address="小平市学園東町2-2"), row("0000000002")])
    )
    assert (registry_import.counts["changed"], registry_import.counts["new"]) == (1, 1)
    statements = _applied_with_statements(registry_import)
    assert [sql for sql in statements if "UPDATE booking_voucher " in sql]
    assert _personal(tenant, "0000000001")["address"] == "小平市学園東町2-2"
    assert Voucher.objects.filter(voucher_number="0000000002").exists()


def test_a_voucher_written_after_a_first_lists_preview_is_updated_not_skipped(tenant) -> None:
    """Nothing but an import writes vouchers, one at a time; should a voucher of the list
    appear between the preview (all new) and the apply all the same, the blind insert is
    refused by the unique voucher number and the batch goes the usual way."""
    registry_import = preview(csv_bytes([row("0000000001"), row("0000000002")]))
    assert registry_import.counts["new"] == 2
    Voucher.objects.create(voucher_number="0000000001", personal=b"old", content_hash=b"old")
    _applied_with_statements(registry_import)
    assert Voucher.objects.count() == 2
    assert _personal(tenant, "0000000001")["address"] == "小平市小川町1-1"
    assert registry_import.rows_applied == 2


def test_a_row_cut_short_never_empties_what_a_voucher_holds(tenant) -> None:
    import_all(csv_bytes([row("0000000001")]))
    cut = "0000000001,1234567,小平 花子,コダイラ ハナコ,昭和23年4月1日,2,187-0031"
    second = import_all(csv_bytes([cut]))
    assert (second.counts["invalid"], second.counts["changed"]) == (1, 0)
    (error,) = second.errors.all()
    assert "列の数が見出しより少なく" in error.message
    assert _personal(tenant, "0000000001")["address"] == "小平市小川町1-1"


def test_duplicate_voucher_numbers_are_an_error_for_both_rows(tenant) -> None:
    registry_import = import_all(
        csv_bytes([row("0000000001"), row("0000000002", name="別人 太郎"), row("0000000001")])
    )
    lines = sorted(registry_import.errors.values_list("line_number", flat=True))
    assert lines == [2, 4]
    assert registry_import.counts["invalid"] == 2
    assert list(Voucher.objects.values_list("voucher_number", flat=True)) == ["0000000002"]


def test_a_duplicate_of_an_invalid_row_is_not_imported_either(tenant) -> None:
    registry_import = import_all(
        csv_bytes(
            [
                row("0000000001"),
                row("0000000002"),
                row("0000000001", birth="昭和23年2月30日"),  # invalid, but its number is valid
                row("0000000003", birth="平成32年1月1日"),  # invalid, no valid twin
            ]
        )
    )
    assert list(Voucher.objects.values_list("voucher_number", flat=True)) == ["0000000002"]
    assert registry_import.counts["invalid"] == 3
    assert registry_import.counts["new"] == 1
    duplicate_messages = dict(
        registry_import.errors.filter(message__startswith="同じ接種券番号").values_list(
            "line_number", "message"
        )
    )
    assert duplicate_messages == {
        2: "同じ接種券番号が4行目にもあります（どちらも取り込みません）",
        4: "同じ接種券番号が2行目にもあります（どちらも取り込みません）",
    }
    # The invalid row keeps its own reason too.
    assert registry_import.errors.filter(line_number=4, message__contains="存在しない日付").exists()
    _name, content = registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    rows = list(csv.reader(io.StringIO(b"".join(content).decode("cp932"))))
    assert [r[0] for r in rows[1:]] == ["0000000001", "0000000001", "0000000003"]


def test_invalid_rows_never_block_valid_ones_and_come_back_in_the_same_format(tenant) -> None:
    data = csv_bytes(
        [
            row("0000000001"),
            row("0000000002", birth="平成32年1月1日"),
            row("0000000003", address="小平市,\n小川町"),
        ]
    )
    registry_import = import_all(data)
    assert Voucher.objects.count() == 2
    name, content = registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    assert name == "list_errors.csv"
    text = b"".join(content).decode("cp932")  # the municipality's own encoding
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["接種券番号", "宛名番号", "氏名"] and rows[0][-1] == "エラー内容"
    assert rows[1][0] == "0000000002" and "平成の年が範囲を超えています" in rows[1][-1]
    assert len(rows) == 2
    assert Event.objects.filter(action="registry_import.error_file_downloaded").exists()


def test_a_quoted_line_break_keeps_physical_line_numbers(tenant) -> None:
    data = csv_bytes([row("0000000001", address="小平市\n小川町"), row("12")])
    registry_import = preview(data)
    assert list(registry_import.errors.values_list("line_number", flat=True)) == [4]


def test_utf8_with_bom_and_lf_and_an_english_header(tenant) -> None:
    header = (
        "voucher_number,address_number,name,name_kana,birth_date,sex,postal_code,address,phone\n"
    )
    data = ("\ufeff" + header + row("0000000009", birth="S23.4.1") + "\n").encode("utf-8")
    registry_import = import_all(data)
    assert registry_import.detected_encoding == "utf-8-sig"
    assert Voucher.objects.filter(voucher_number="0000000009").exists()


def test_the_operator_can_override_the_encoding(tenant) -> None:
    data = csv_bytes([row("0000000001")], encoding="cp932")
    registry_import = preview(data, encoding="utf-8")
    assert registry_import.status == RegistryImport.Status.FAILED
    assert "UTF-8" in registry_import.message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04" + b"\x00" * 100, "Excel"),
        (b"\x00\x01\x02binary" * 50, ""),
    ],
)
def test_uploads_are_checked_before_parsing(tenant, data: bytes, message: str) -> None:
    with pytest.raises(RegistryImportRefused, match=message):
        upload(data)
    assert not RegistryImport.objects.exists()


def test_an_upload_over_the_size_limit_is_refused(tenant, settings) -> None:
    settings.SESSHU_REGISTRY_MAX_BYTES = 100
    with pytest.raises(RegistryImportRefused, match="大きすぎ|上限"):
        upload(csv_bytes([row(f"{n:010d}") for n in range(10)]))


def test_a_full_list_withdraws_unlisted_vouchers_and_keeps_their_bookings(tenant) -> None:
    import_all(csv_bytes([row("0000000001"), row("0000000002"), row("0000000003")]))
    gone = Voucher.objects.get(voucher_number="0000000003")
    typo = Voucher.objects.get(voucher_number="0000000002")
    product = VaccineProduct.objects.create(code="p", name="P", interval_days=21)
    venue = Venue.objects.create(name="会場", area="小川", address="小平市")
    start = timezone.now() + timedelta(days=3)
    slot = Slot.objects.create(
        venue=venue,
        product=product,
        starts_at=start,
        ends_at=start + timedelta(minutes=30),
        capacity_web=5,
        booked_web=1,
    )
    booking = Booking.objects.create(
        booking_number="B1",
        voucher=gone,
        slot=slot,
        dose=1,
        channel="web",
        booked_through="web",
        actor_kind="resident",
    )
    # Voucher 2's row is present but invalid: it must not be withdrawn for that.
    listed = csv_bytes([row("0000000001"), row("0000000002", birth="2月30日")])
    # The preview says it before confirming: one voucher withdrawn, and it holds a booking.
    shown = preview(listed, full_list=True)
    assert (shown.counts["withdrawn"], shown.counts["withdrawn_with_booking"]) == (1, 1)
    registry_import_cancel(registry_import=shown, actor=ACTOR)
    registry_import = import_all(listed, full_list=True)
    assert registry_import.counts["withdrawn"] == 1
    assert registry_import.counts["withdrawn_with_booking"] == 1
    gone.refresh_from_db()
    typo.refresh_from_db()
    assert gone.status == Voucher.Status.WITHDRAWN and gone.withdrawn_by == registry_import
    assert typo.status == Voucher.Status.ACTIVE
    booking.refresh_from_db()
    assert booking.status == Booking.Status.ACTIVE  # never silently cancelled
    # Listed again later: active again.
    again = import_all(csv_bytes([row("0000000003")]))
    assert again.counts["changed"] == 1
    gone.refresh_from_db()
    assert gone.status == Voucher.Status.ACTIVE


def test_activation_codes_are_issued_once_hashed_and_downloadable_once(tenant) -> None:
    assert tenant.login_mode == tenant.LoginMode.VOUCHER_CODE
    registry_import = import_all(csv_bytes([row("0000000001"), row("0000000002")]))
    assert registry_import.counts["codes_issued"] == 2
    name, content = registry_import_codes_file(registry_import=registry_import, actor=ACTOR)
    rows = list(csv.reader(io.StringIO(b"".join(content).decode("utf-8-sig"))))
    assert rows[0] == ["接種券番号", "認証コード"]
    codes = dict(rows[1:])
    cipher = cipher_for(tenant)
    for number, code in codes.items():
        assert len(code) == 9 and code[4] == "-" and not set(code) & set("01OI")
        voucher = Voucher.objects.get(voucher_number=number)
        assert bytes(voucher.activation_code_hash) == activation_code_hash(cipher, code)
    with pytest.raises(RegistryImportRefused, match="一度だけ"):
        registry_import_codes_file(registry_import=registry_import, actor=ACTOR)
    assert Event.objects.filter(action="registry_import.codes_downloaded").count() == 1
    # A re-import issues no new code for vouchers that have one.
    assert import_all(csv_bytes([row("0000000001")])).counts["codes_issued"] == 0


def test_nothing_is_applied_before_confirmation_and_a_preview_can_be_cancelled(tenant) -> None:
    registry_import = preview(csv_bytes([row("0000000001")]))
    assert registry_import_apply(registry_import_id=registry_import.pk) is None
    assert Voucher.objects.count() == 0
    registry_import_cancel(registry_import=registry_import, actor=ACTOR)
    with pytest.raises(RegistryImportRefused):
        registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)
    assert not RegistryImportRow.objects.exists()


def test_the_uploaded_file_is_deleted_after_the_import(tenant) -> None:
    registry_import = upload(csv_bytes([row("0000000001")]))
    stored = registry_import.stored_file
    assert default_storage.exists(stored)
    assert stored.startswith(f"uploads/tenants/{tenant.schema_name}/registry-imports/")
    registry_import_parse(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)
    registry_import_apply(registry_import_id=registry_import.pk)
    assert not default_storage.exists(stored)


def test_a_run_that_died_half_way_is_finished_by_a_rerun_without_duplicates(
    tenant, settings
) -> None:
    settings.SESSHU_REGISTRY_PROCESSES = 1
    from booking.services import registry_import as service
    from booking.services.registry_import import apply as apply_module

    rows_ = [row(f"{n:010d}") for n in range(1, 251)]
    registry_import = preview(csv_bytes(rows_))
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)

    class Killed(Exception):
        pass

    def die_after_first_batch(state: RegistryImport) -> None:
        raise Killed

    original = apply_module.APPLY_BATCH_LINES
    apply_module.APPLY_BATCH_LINES = 100
    try:
        with pytest.raises(Killed):
            registry_import_apply(
                registry_import_id=registry_import.pk, progress=die_after_first_batch
            )
        registry_import.refresh_from_db()
        assert registry_import.status == RegistryImport.Status.APPLYING
        assert (registry_import.rows_applied, Voucher.objects.count()) == (100, 100)
        # A live run holds it: a second worker backs off instead of applying twice.
        with pytest.raises(service.RegistryImportBusy):
            registry_import_apply(registry_import_id=registry_import.pk)
        RegistryImport.objects.filter(pk=registry_import.pk).update(
            heartbeat_at=timezone.now() - service.STALE_AFTER - timedelta(seconds=1)
        )
        registry_import_apply(registry_import_id=registry_import.pk)
    finally:
        apply_module.APPLY_BATCH_LINES = original
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.DONE
    assert registry_import.rows_applied == 250
    assert Voucher.objects.count() == 250


def test_many_chunks_in_two_processes_give_the_same_result_as_one(
    tenant, settings, tmp_path
) -> None:
    out = tmp_path / "registry.csv"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gen_registry.py"),
            "--rows",
            "3000",
            "--out",
            str(out),
            "--seed",
            "7",
            "--bad-percent",
            "3",
        ],
        check=True,
        capture_output=True,
    )
    data = out.read_bytes()
    settings.SESSHU_REGISTRY_CHUNK_BYTES = 16 * 1024
    settings.SESSHU_REGISTRY_PROCESSES = 1
    one = preview(data)
    settings.SESSHU_REGISTRY_PROCESSES = 2
    two = preview(data)
    assert one.counts == two.counts and one.counts["rows"] == 3000
    lines_one = list(one.errors.values_list("line_number", "column", "message"))
    lines_two = list(two.errors.values_list("line_number", "column", "message"))
    assert sorted(lines_one) == sorted(lines_two)
    assert 0 < one.counts["invalid"] < 300


def test_progress_reports_rate_and_fraction(tenant) -> None:
    registry_import = preview(csv_bytes([row(f"{n:010d}") for n in range(1, 50)]))
    report = registry_import_progress(registry_import)
    assert report.fraction == 1.0 and report.rows_done == 49


def test_lost_staging_rows_fail_the_apply_instead_of_finishing_short(tenant) -> None:
    registry_import = preview(csv_bytes([row("0000000001"), row("0000000002")]))
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)
    # What a database crash does to an unlogged table.
    RegistryImportRow.objects.filter(registry_import=registry_import).delete()
    registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.FAILED
    assert "もう一度アップロード" in registry_import.message
    assert Voucher.objects.count() == 0


def test_the_staging_table_writes_no_wal(tenant) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relpersistence FROM pg_class WHERE oid = 'booking_registryimportrow'::regclass"
        )
        assert cursor.fetchone()[0] == "u"


def test_vouchers_an_import_inserts_cost_no_withdrawn_by_index_entry_or_check(tenant) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = 'booking_voucher' AND indexdef LIKE '%%withdrawn_by_id%%'"
        )
        assert [row[0].split(" WHERE ")[1] for row in cursor.fetchall()] == [
            "(withdrawn_by_id IS NOT NULL)"
        ]
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid = 'booking_voucher'::regclass"
        )
        assert cursor.fetchone()[0] == 0
