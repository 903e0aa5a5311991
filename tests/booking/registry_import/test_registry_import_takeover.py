"""A run that was thought dead but was not: its heartbeat went stale, so the import was
cancelled or taken over by another run, and then it carried on. It must notice, write
nothing more and leave the import to whoever has it now — not turn a cancelled import back
into a preview, nor finish an import a second time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from booking.models import RegistryImport, RegistryImportRow, Voucher
from booking.models.registry import STALE_AFTER
from booking.services.registry_import import apply as apply_module
from booking.services.registry_import import (
    registry_import_apply,
    registry_import_cancel,
    registry_import_confirm,
    registry_import_parse,
)
from tests.booking.registry_import.conftest import ACTOR, csv_bytes, preview, row, upload

ROWS = [row(f"{n:010d}") for n in range(1, 41)]


@pytest.fixture
def small_chunks(settings) -> None:  # noqa: ANN001
    settings.SESSHU_REGISTRY_CHUNK_BYTES = 512  # a few rows per chunk: many chunks


def _gone_stale(registry_import: RegistryImport) -> None:
    """What another process sees of a run that stopped sending heartbeats."""
    RegistryImport.objects.filter(pk=registry_import.pk).update(
        heartbeat_at=timezone.now() - STALE_AFTER - timedelta(minutes=1)
    )


def _taken_over(registry_import: RegistryImport) -> None:
    """What another run's claim of the import leaves (a new claim time)."""
    RegistryImport.objects.filter(pk=registry_import.pk).update(
        phase_started_at=timezone.now() + timedelta(seconds=1), heartbeat_at=timezone.now()
    )


def _parse_interrupted_after_the_first_chunk(
    registry_import: RegistryImport, interrupt: Callable[[RegistryImport], None]
) -> list[int]:
    """Run the parse, doing ``interrupt`` (as another process would) once its first chunk is
    staged; the run must see it and stop, returning nothing. The chunks it reported."""
    chunks: list[int] = []

    def progress(current: RegistryImport) -> None:
        chunks.append(current.bytes_done)
        if len(chunks) == 1:
            interrupt(current)

    assert registry_import_parse(registry_import_id=registry_import.pk, progress=progress) is None
    return chunks


def test_a_parse_cancelled_while_it_streams_stops_and_stays_cancelled(tenant, small_chunks) -> None:
    registry_import = upload(csv_bytes(ROWS))

    def cancel(current: RegistryImport) -> None:
        _gone_stale(current)
        registry_import_cancel(registry_import=current, actor=ACTOR)

    chunks = _parse_interrupted_after_the_first_chunk(registry_import, cancel)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.CANCELLED
    assert len(chunks) == 1  # nothing after the cancellation
    assert not RegistryImportRow.objects.exists()
    assert not Event.objects.filter(action="registry_import.previewed").exists()
    assert not Event.objects.filter(action="registry_import.failed").exists()


def test_a_parse_taken_over_while_it_streams_leaves_the_preview_to_the_new_run(
    tenant, small_chunks
) -> None:
    registry_import = upload(csv_bytes(ROWS))
    chunks = _parse_interrupted_after_the_first_chunk(registry_import, _taken_over)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.PARSING  # the new run's
    assert len(chunks) == 1
    assert not Event.objects.filter(action="registry_import.previewed").exists()

    # The new run (here: after it too went quiet, a resume) does the whole preview.
    _gone_stale(registry_import)
    registry_import_parse(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.PREVIEWED
    assert registry_import.counts["new"] == len(ROWS)
    assert RegistryImportRow.objects.filter(registry_import=registry_import).count() == len(ROWS)


def test_an_apply_taken_over_before_it_finishes_is_finished_once_by_the_new_run(
    tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply_module, "APPLY_BATCH_LINES", 10)
    registry_import = preview(csv_bytes(ROWS))
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)

    def taken_over_after_the_last_batch(current: RegistryImport) -> None:
        if current.rows_applied == len(ROWS):
            _taken_over(current)

    assert (
        registry_import_apply(
            registry_import_id=registry_import.pk, progress=taken_over_after_the_last_batch
        )
        is None
    )
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.APPLYING
    assert registry_import.codes_file == ""  # not issued by the run that lost the import
    assert not Event.objects.filter(action="registry_import.applied").exists()
    assert Voucher.objects.count() == len(ROWS)  # its batches stand

    _gone_stale(registry_import)
    registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.DONE
    assert registry_import.counts["codes_issued"] == len(ROWS)
    assert registry_import.codes_file
    assert Event.objects.filter(action="registry_import.applied").count() == 1
    assert Voucher.objects.count() == len(ROWS)
