"""The staging table between the preview and the apply: emptied when the import is done,
its disk given back when no other import has rows in it."""

from __future__ import annotations

from django.db import connection

from booking.models import RegistryImportRow
from booking.services.registry_import import registry_import_apply, registry_import_confirm
from tests.booking.registry_import.conftest import ACTOR, csv_bytes, import_all, preview, row


def _filenode() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_filenode('booking_registryimportrow')")
        (node,) = cursor.fetchone()
    return node


def _stage_a_row_of_another_import(import_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO booking_registryimportrow (import_id, line_number, voucher_number,"
            " personal, content_hash) VALUES (%s, 2, '0000000099', '\\x00', '\\x00')",
            [import_id],
        )


def test_a_finished_import_truncates_the_staging_table(tenant) -> None:
    staged = preview(csv_bytes([row(f"{n:010d}") for n in range(1, 30)]))
    assert RegistryImportRow.objects.filter(registry_import=staged).count() == 29
    before = _filenode()
    registry_import_confirm(registry_import=staged, actor=ACTOR, enqueue=False)
    registry_import_apply(registry_import_id=staged.pk)
    assert not RegistryImportRow.objects.exists()
    # TRUNCATE gives the table a new file (the old one, with its rows, is gone); a DELETE
    # would have left the rows dead in the same file.
    assert _filenode() != before


def test_another_imports_staged_rows_are_left_alone(tenant) -> None:
    first = import_all(csv_bytes([row("0000000001")]))
    _stage_a_row_of_another_import(first.pk + 1000)
    second = import_all(csv_bytes([row("0000000001"), row("0000000002")]))
    assert second.counts["new"] == 1
    assert list(RegistryImportRow.objects.values_list("registry_import_id", "line_number")) == [
        (first.pk + 1000, 2)
    ]


def test_the_preview_leaves_the_planner_settings_as_they_were(tenant) -> None:
    # The duplicate marking turns nested loops off for its own statements; the test runs in
    # a transaction, as a caller's code might.
    preview(csv_bytes([row("0000000001"), row("0000000001")]))
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_nestloop")
        assert cursor.fetchone() == ("on",)
