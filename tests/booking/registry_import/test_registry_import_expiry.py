"""Nothing of an import stays in storage longer than it is of use: the plaintext upload
goes when the import fails, when its preview is never confirmed, and the error and
activation-code files when their period is over — each deletion in the trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.models import Event
from booking.models import RegistryImport, RegistryImportRow
from booking.services.registry_import import (
    RegistryImportRefused,
    registry_import_error_file,
    registry_import_parse,
)
from booking.services.registry_upkeep import registry_imports_expire
from booking.tasks import registry_imports_upkeep_all
from tenants.models import Municipality
from tests.booking.registry_import.conftest import (
    ACTOR,
    csv_bytes,
    import_all,
    preview,
    row,
    upload,
)

BAD_BIRTH = row("0000000002", birth="昭和23年2月30日")


def test_a_failed_import_deletes_its_upload(tenant) -> None:
    registry_import = upload("氏名,住所\r\n小平 花子,小平市\r\n".encode("cp932"))
    stored = registry_import.stored_file
    assert default_storage.exists(stored)
    registry_import_parse(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.FAILED
    assert registry_import.stored_file == "" and not default_storage.exists(stored)


def test_a_preview_nobody_confirms_is_cancelled_after_the_set_days(tenant, settings) -> None:
    settings.SESSHU_REGISTRY_PREVIEW_DAYS = 3
    registry_import = preview(csv_bytes([row("0000000001")]), name="meibo.csv")
    stored = registry_import.stored_file
    parsed = registry_import.parsed_at
    assert (
        registry_imports_expire(now=parsed + timedelta(days=2, hours=23))["previews_cancelled"] == 0
    )
    assert registry_imports_expire(now=parsed + timedelta(days=3, minutes=1)) == {
        "previews_cancelled": 1,
        "error_files": 0,
        "codes_files": 0,
        "uploads": 0,
    }
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.CANCELLED
    assert registry_import.stored_file == "" and not default_storage.exists(stored)
    assert not RegistryImportRow.objects.filter(registry_import=registry_import).exists()
    (cancelled,) = Event.objects.filter(action="registry_import.cancelled")
    assert (cancelled.actor_kind, cancelled.actor_id) == ("system", "registry-import-upkeep")
    assert cancelled.details == {"file_name": "meibo.csv", "reason": "expired"}


def test_a_confirmed_preview_is_never_expired(tenant) -> None:
    registry_import = import_all(csv_bytes([row("0000000001")]))
    assert (
        registry_imports_expire(now=timezone.now() + timedelta(days=8))["previews_cancelled"] == 0
    )
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.DONE


def test_an_error_file_is_refused_then_deleted_after_its_period(tenant) -> None:
    registry_import = import_all(csv_bytes([row("0000000001"), BAD_BIRTH]), name="meibo.csv")
    error_file = registry_import.error_file
    assert registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    later = registry_import.error_file_expires_at + timedelta(minutes=1)
    RegistryImport.objects.filter(pk=registry_import.pk).update(
        error_file_expires_at=timezone.now() - timedelta(minutes=1)
    )
    registry_import.refresh_from_db()
    with pytest.raises(RegistryImportRefused, match="保存期間が過ぎた"):
        registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    assert default_storage.exists(error_file)  # refused at once; deleted by the upkeep
    assert registry_imports_expire(now=later)["error_files"] == 1
    registry_import.refresh_from_db()
    assert registry_import.error_file == "" and not default_storage.exists(error_file)
    with pytest.raises(RegistryImportRefused, match="保存期間が過ぎた"):
        registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    (deleted,) = Event.objects.filter(action="registry_import.error_file_deleted")
    assert deleted.details == {"file_name": "meibo.csv"}
    assert registry_imports_expire(now=later)["error_files"] == 0  # once


def test_an_error_file_within_its_period_is_kept(tenant) -> None:
    registry_import = import_all(csv_bytes([row("0000000001"), BAD_BIRTH]))
    assert registry_imports_expire(now=timezone.now() + timedelta(days=13))["error_files"] == 0
    assert default_storage.exists(registry_import.error_file)


def test_an_activation_codes_file_nobody_took_is_deleted_after_the_period(tenant) -> None:
    assert tenant.login_mode == tenant.LoginMode.VOUCHER_CODE
    registry_import = import_all(csv_bytes([row("0000000001")]))
    codes_file = registry_import.codes_file
    assert codes_file and default_storage.exists(codes_file)
    assert registry_imports_expire(now=timezone.now() + timedelta(days=13))["codes_files"] == 0
    assert registry_imports_expire(now=timezone.now() + timedelta(days=15))["codes_files"] == 1
    registry_import.refresh_from_db()
    assert registry_import.codes_file == "" and not default_storage.exists(codes_file)
    assert Event.objects.filter(action="registry_import.codes_file_deleted").exists()


def test_the_upkeep_runs_in_every_municipality_from_the_beat(
    tenant_a: Municipality, tenant_b: Municipality, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    made = {}
    for municipality in (tenant_a, tenant_b):
        with tenant_context(municipality):
            registry_import = preview(csv_bytes([row("0000000001")]))
            RegistryImport.objects.filter(pk=registry_import.pk).update(
                parsed_at=timezone.now() - timedelta(days=8)
            )
            made[municipality.pk] = registry_import.pk
    connection.set_schema_to_public()
    assert registry_imports_upkeep_all() >= 2  # tasks run in-process without a broker
    for municipality in (tenant_a, tenant_b):
        with tenant_context(municipality):
            assert RegistryImport.objects.get(pk=made[municipality.pk]).status == "cancelled"
    entries = {e["task"]: e for e in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert "booking.registry_imports_upkeep_all" in entries
