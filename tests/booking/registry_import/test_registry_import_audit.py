"""Every import, preview and file download is in the trail: who, when (the event's time),
which file (its name as sent) and the counts. The preview and the apply are the system's
work, done for someone: their events say for whom."""

from __future__ import annotations

from audit.chain import Actor
from audit.models import Event
from booking.models import RegistryImport
from booking.services.registry_import import (
    AUDIT_FILE_NAME_CHARS,
    registry_import_apply,
    registry_import_codes_file,
    registry_import_confirm,
    registry_import_error_file,
)
from tests.booking.registry_import.conftest import csv_bytes, preview, row

UPLOADER = Actor("staff", "41")
CONFIRMER = Actor("vendor", "7")
COUNTS = {
    "rows": 2,
    "new": 1,
    "changed": 0,
    "unchanged": 0,
    "invalid": 1,
    "addresses_checked": 1,
    "addresses_elsewhere": 0,
    "places_elsewhere": [],
}


def _event(action: str, registry_import: RegistryImport) -> Event:
    return Event.objects.get(action=action, target_id=str(registry_import.pk))


def _import(name: str = "令和8年度_接種券名簿.csv") -> RegistryImport:
    data = csv_bytes([row("0000000001"), row("0000000002", birth="昭和23年2月30日")])
    registry_import = preview(data, name=name, actor=UPLOADER, source=RegistryImport.Source.CONSOLE)
    registry_import_confirm(registry_import=registry_import, actor=CONFIRMER, enqueue=False)
    registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    return registry_import


def test_each_step_names_the_file_and_its_counts_and_for_whom_the_system_worked(
    tenant,
) -> None:
    registry_import = _import()
    name = "令和8年度_接種券名簿.csv"

    uploaded = _event("registry_import.uploaded", registry_import)
    assert (uploaded.actor_kind, uploaded.actor_id) == ("staff", "41")
    assert uploaded.details == {
        "file_name": name,
        "size": registry_import.size,
        "full_list": False,
        "source": "console",
    }

    previewed = _event("registry_import.previewed", registry_import)
    assert previewed.actor_kind == "system"
    assert previewed.details == {"file_name": name, **COUNTS, "requested_by": "staff:41"}

    confirmed = _event("registry_import.confirmed", registry_import)
    assert (confirmed.actor_kind, confirmed.actor_id) == ("vendor", "7")
    assert confirmed.details == {"file_name": name, **COUNTS}
    assert registry_import.confirmed_by == "vendor:7"

    applied = _event("registry_import.applied", registry_import)
    assert applied.actor_kind == "system"
    assert applied.details == {
        "file_name": name,
        **COUNTS,
        "codes_issued": 1,
        "requested_by": "vendor:7",
    }


def test_downloads_name_the_file_they_came_from(tenant) -> None:
    registry_import = _import("meibo.csv")
    registry_import_error_file(registry_import=registry_import, actor=UPLOADER)
    registry_import_codes_file(registry_import=registry_import, actor=UPLOADER)
    errors = _event("registry_import.error_file_downloaded", registry_import)
    assert errors.details == {"file_name": "meibo.csv", "invalid": 1}
    codes = _event("registry_import.codes_downloaded", registry_import)
    assert codes.details["file_name"] == "meibo.csv" and codes.details["codes"] == 1
    assert (codes.actor_kind, codes.actor_id) == ("staff", "41")


def test_a_long_file_name_is_cut_in_the_trail(tenant) -> None:
    long_name = "接" * 150 + ".csv"
    registry_import = _import(long_name)
    details = _event("registry_import.applied", registry_import).details
    assert details["file_name"] == long_name[:AUDIT_FILE_NAME_CHARS]
    assert len(details["file_name"]) == AUDIT_FILE_NAME_CHARS == 100


def test_a_failed_preview_says_whose_upload_it_was(tenant) -> None:
    data = "氏名,住所\r\n小平 花子,小平市\r\n".encode("cp932")
    registry_import = preview(
        data, name="bad.csv", actor=UPLOADER, source=RegistryImport.Source.CONSOLE
    )
    failed = _event("registry_import.failed", registry_import)
    assert failed.details == {"phase": "parse", "file_name": "bad.csv", "requested_by": "staff:41"}
