"""``manage.py vouchers_import``: the same service as the screens, run in the foreground with
a progress bar; a dry run leaves nothing behind; an interrupted run is resumed by id."""

from __future__ import annotations

import importlib.util
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from audit.models import Event
from booking.models import RegistryImport, Voucher
from tenants.crypto import cipher_for
from tests.booking.registry_import.conftest import csv_bytes, preview, row, upload

ROOT = Path(__file__).resolve().parents[3]


def run(tenant, *args: str) -> tuple[str, str]:
    """Run the command as an operator does: from the public schema."""
    out, err = io.StringIO(), io.StringIO()
    with schema_context(get_public_schema_name()):
        call_command("vouchers_import", "--tenant", tenant.code, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path: Path, data: bytes, name: str = "meibo.csv") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def uploads(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]


def test_it_previews_then_imports_with_a_report_and_a_progress_bar(tenant, tmp_path) -> None:
    path = write(tmp_path, csv_bytes([row("0000000001"), row("0000000002"), row("12345")]))
    out, err = run(tenant, path)
    registry_import = RegistryImport.objects.get()
    assert registry_import.status == RegistryImport.Status.DONE
    assert registry_import.source == RegistryImport.Source.COMMAND
    assert registry_import.file_name == "meibo.csv"
    assert (
        f"Import {registry_import.pk} (確認待ち（まだ取り込んでいません）): rows 3, new 2," in out
    )
    assert f"Import {registry_import.pk} (取込完了): rows 3, new 2, changed 0" in out
    assert "  line 4 接種券番号:" in out and "10桁" in out
    assert "parsing [" in err and "applying [" in err and "100.0%" in err and "rows/s" in err
    assert sorted(Voucher.objects.values_list("voucher_number", flat=True)) == [
        "0000000001",
        "0000000002",
    ]
    assert not uploads(tmp_path)  # the plaintext upload is gone after the import


def test_a_dry_run_writes_nothing_and_leaves_no_upload_behind(tenant, tmp_path) -> None:
    path = write(tmp_path, csv_bytes([row("0000000001"), row("0000000002")]))
    out, _err = run(tenant, path, "--dry-run")
    registry_import = RegistryImport.objects.get()
    assert "new 2" in out and "Dry run: nothing was written" in out
    assert registry_import.status == RegistryImport.Status.CANCELLED
    assert registry_import.stored_file == "" and not uploads(tmp_path)
    assert not Voucher.objects.exists()
    cancelled = Event.objects.get(action="registry_import.cancelled")
    assert cancelled.details["reason"] == "dry_run"
    # Listed as the check it was, not as an import somebody cancelled.
    assert registry_import.status_label == "確認のみ（取り込んでいません）"
    run(tenant, path)  # a cancelled dry run blocks nothing
    assert Voucher.objects.count() == 2


def test_a_full_list_withdraws_the_vouchers_it_no_longer_lists(tenant, tmp_path) -> None:
    run(tenant, write(tmp_path, csv_bytes([row("0000000001"), row("0000000002")])))
    out, _err = run(tenant, write(tmp_path, csv_bytes([row("0000000001")])), "--full-list")
    assert "withdrawn 1" in out
    assert dict(Voucher.objects.values_list("voucher_number", "status")) == {
        "0000000001": Voucher.Status.ACTIVE,
        "0000000002": Voucher.Status.WITHDRAWN,
    }
    assert RegistryImport.objects.first().full_list


def test_a_cp932_file_with_the_encoding_given(tenant, tmp_path) -> None:
    data = csv_bytes([row("0000000001", name="髙橋 﨑子", kana="ﾀｶﾊｼ ｻｷｺ")], encoding="cp932")
    run(tenant, write(tmp_path, data), "--encoding", "cp932")
    registry_import = RegistryImport.objects.get()
    assert registry_import.encoding == "cp932"
    voucher = Voucher.objects.get()
    personal = cipher_for(tenant).open_record(
        bytes(voucher.personal), table="booking_voucher", row_id="0000000001"
    )
    assert (personal["name"], personal["name_kana"]) == ("髙橋 﨑子", "タカハシ サキコ")


def test_an_unknown_encoding_and_a_missing_file_are_refused(tenant, tmp_path) -> None:
    path = write(tmp_path, csv_bytes([row("0000000001")]))
    with pytest.raises(CommandError):
        run(tenant, path, "--encoding", "latin-9")
    with pytest.raises(CommandError, match="no such file"):
        run(tenant, str(tmp_path / "missing.csv"))
    with pytest.raises(CommandError, match="FILE, or --resume"):
        run(tenant)
    assert not Voucher.objects.exists()


def test_a_generated_registry_imports_every_valid_row(tenant, tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("gen_registry", ROOT / "scripts/gen_registry.py")
    assert spec and spec.loader
    gen_registry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_registry)
    path = tmp_path / "generated.csv"
    with path.open("w", encoding="cp932", newline="") as out:
        gen_registry.write_registry(out, rows=300, bad_percent=5, seed=3, today=date(2026, 12, 1))
    out, _err = run(tenant, str(path), "--encoding", "cp932")
    registry_import = RegistryImport.objects.get()
    counts = registry_import.counts
    assert counts["rows"] == 300 and counts["invalid"] > 0
    assert counts["new"] + counts["invalid"] == 300
    assert Voucher.objects.count() == counts["new"]
    assert f"invalid {counts['invalid']}" in out


def test_an_interrupted_run_is_named_and_finished_with_resume(tenant, tmp_path) -> None:
    # A run killed while parsing leaves its import parsing, with a heartbeat that stopped.
    killed = upload(csv_bytes([row("0000000003")]), name="second.csv")
    RegistryImport.objects.filter(pk=killed.pk).update(
        status=RegistryImport.Status.PARSING, heartbeat_at=timezone.now() - timedelta(minutes=9)
    )
    with pytest.raises(CommandError, match=f"--resume {killed.pk}") as refused:
        run(tenant, write(tmp_path, csv_bytes([row("0000000001")])))
    assert "中断した取込（second.csv）" in str(refused.value)
    assert f"--cancel {killed.pk}" in str(refused.value)
    out, _err = run(tenant, "--resume", str(killed.pk))
    assert f"Resuming import {killed.pk} (second.csv): parse." in out
    killed.refresh_from_db()
    assert killed.status == RegistryImport.Status.DONE  # a command's import goes on to apply
    assert list(Voucher.objects.values_list("voucher_number", flat=True)) == ["0000000003"]
    with pytest.raises(CommandError, match="中断していない"):
        run(tenant, "--resume", str(killed.pk))


def test_an_interrupted_apply_is_resumed_and_an_interrupted_parse_cancelled(tenant) -> None:
    applying = preview(csv_bytes([row("0000000001")]))
    RegistryImport.objects.filter(pk=applying.pk).update(
        status=RegistryImport.Status.APPLYING,
        confirmed_at=timezone.now(),
        heartbeat_at=timezone.now() - timedelta(minutes=9),
    )
    with pytest.raises(CommandError, match="取り消せません"):
        run(tenant, "--cancel", str(applying.pk))
    out, _err = run(tenant, "--resume", str(applying.pk))
    assert "apply." in out and "(取込完了)" in out
    assert Voucher.objects.count() == 1

    parsing = upload(csv_bytes([row("0000000002")]))
    stored = parsing.stored_file
    RegistryImport.objects.filter(pk=parsing.pk).update(
        status=RegistryImport.Status.PARSING, heartbeat_at=None
    )
    out, _err = run(tenant, "--cancel", str(parsing.pk))
    parsing.refresh_from_db()
    assert parsing.status == RegistryImport.Status.CANCELLED and "(取消)" in out
    assert parsing.stored_file == "" and not default_storage.exists(stored)
    assert Voucher.objects.count() == 1


def test_the_command_reads_the_file_with_the_saved_column_mapping(tenant, tmp_path) -> None:
    from booking.services.registry_mapping import registry_column_mapping_save
    from tests.booking.registry_import.conftest import ACTOR

    registry_column_mapping_save(headers={"voucher_number": "券No"}, actor=ACTOR)
    header = "券No,氏名,氏名カナ,生年月日\r\n"
    data = (header + "0000000001,小平 花子,コダイラ ハナコ,S23.4.1\r\n").encode("cp932")
    out, _err = run(tenant, write(tmp_path, data))
    assert "(取込完了): rows 1, new 1" in out
    assert Voucher.objects.get().voucher_number == "0000000001"


def test_a_dry_run_of_another_municipalitys_list_warns_of_its_addresses(tenant, tmp_path) -> None:
    rows = [row(f"{n:010d}", address=f"北海道旭川市{n}条通") for n in range(1, 6)]
    out, err = run(tenant, write(tmp_path, csv_bytes(rows)), "--dry-run")
    assert "Warning: 5 of the 5 addresses read name another municipality (北海道旭川市)" in err
    assert "北海道旭川市1条通" not in out + err
    _out, err = run(tenant, write(tmp_path, csv_bytes([row("0000000001")]), "own.csv"), "--dry-run")
    assert "Warning:" not in err
