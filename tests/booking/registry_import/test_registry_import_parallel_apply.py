"""The apply on several database connections at once: every row exactly once, and a batch
that fails on one connection leaves only whole batches behind for a rerun to complete.

These tests need committed rows that the apply's other connections can see, so they work
in a municipality of their own, provisioned outside the test transaction for this module and
decommissioned (key destroyed, schema and role dropped, row removed) at the end.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone
from django_tenants.utils import tenant_context

from booking.models import RegistryImport, RegistryImportCodes, RegistryImportRow, Voucher
from booking.models.registry import STALE_AFTER
from booking.services.bulk_reads import voucher_ranges_expand
from booking.services.registry_import import (
    activation_code_hash,
    registry_import_apply,
    registry_import_codes_file,
    registry_import_confirm,
)
from booking.services.registry_import import apply as apply_module
from tenants.crypto import cipher_for
from tenants.db.roles import owner_mode
from tenants.models import Municipality
from tenants.services import municipality_decommission, municipality_provision
from tests.booking.registry_import.conftest import ACTOR, csv_bytes, preview, row

ROWS = 120
BATCH_LINES = 10


@pytest.fixture(scope="module")
def municipality(django_db_setup: None, django_db_blocker) -> Iterator[Municipality]:
    with django_db_blocker.unblock():
        municipality = municipality_provision(
            code="132012",
            subdomain="hachioji-apply",
            admin_email="admin@hachioji-apply.example.jp",
            actor=ACTOR,
            login_mode=Municipality.LoginMode.VOUCHER_DOB,
        ).municipality
        connection.set_schema_to_public()
        try:
            yield municipality
        finally:
            connections.close_all()
            connection.set_schema_to_public()
            municipality_decommission(
                municipality=municipality, confirmation=municipality.code, actor=ACTOR
            )
            with owner_mode():
                Municipality.objects.filter(pk=municipality.pk).delete()
            connection.set_schema_to_public()


@pytest.fixture
def committed(
    municipality: Municipality, django_db_blocker, settings, tmp_path, monkeypatch
) -> Iterator[Municipality]:
    """The municipality's context, outside any transaction, with small batches over two
    connections; its vouchers and imports removed afterwards."""
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    settings.SESSHU_REGISTRY_APPLY_CONNECTIONS = 2
    monkeypatch.setattr(apply_module, "APPLY_BATCH_LINES", BATCH_LINES)
    with django_db_blocker.unblock(), tenant_context(municipality):
        assert not connection.in_atomic_block
        try:
            yield municipality
        finally:
            Voucher.objects.all().delete()
            RegistryImportRow.objects.all().delete()
            RegistryImport.objects.all().delete()
    connection.set_schema_to_public()


@pytest.fixture
def with_codes(municipality: Municipality) -> Iterator[Municipality]:
    """The municipality in the voucher_code login mode for one test (ask for it before
    ``committed``)."""

    def login_mode(mode: str) -> None:
        with owner_mode():
            Municipality.objects.filter(pk=municipality.pk).update(login_mode=mode)
        municipality.login_mode = mode

    login_mode(Municipality.LoginMode.VOUCHER_CODE)
    try:
        yield municipality
    finally:
        login_mode(Municipality.LoginMode.VOUCHER_DOB)


def confirmed(rows: int) -> RegistryImport:
    registry_import = preview(csv_bytes([row(f"{n:010d}") for n in range(1, rows + 1)]))
    assert registry_import.counts["new"] == rows
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)
    return registry_import


class BatchRecorder:
    """Which thread applied which batch; fails the ``fail_at``-th batch (counted from 1)
    as a connection lost half-way through would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int = 0) -> None:
        self.threads: set[str] = set()
        self.calls = 0
        self.fail_at = fail_at
        self._lock = threading.Lock()
        self._apply_batch = apply_module._apply_batch
        monkeypatch.setattr(apply_module, "_apply_batch", self)

    def __call__(self, registry_import_id: int, after: int, upto: int, **options: Any) -> None:
        with self._lock:
            self.calls += 1
            failing = self.calls == self.fail_at
            self.threads.add(threading.current_thread().name)
        if failing:
            raise ConnectionError("connection lost")
        self._apply_batch(registry_import_id, after, upto, **options)


def test_the_batches_run_on_two_connections_and_apply_every_row_once(
    committed, monkeypatch
) -> None:
    recorder = BatchRecorder(monkeypatch)
    reported: list[int] = []
    registry_import = confirmed(ROWS)
    registry_import_apply(
        registry_import_id=registry_import.pk,
        progress=lambda state: reported.append(state.rows_applied),
    )
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.DONE
    assert recorder.threads == {"registry-apply-0", "registry-apply-1"}
    # Lines 2..121: twelve batches of ten lines, each applied and marked once.
    assert recorder.calls == 12
    assert sorted(map(tuple, registry_import.applied_lines)) == [
        (1 + 10 * n, 11 + 10 * n) for n in range(12)
    ]
    assert registry_import.rows_applied == ROWS
    assert Voucher.objects.count() == ROWS
    assert reported == sorted(reported) and reported[-1] == ROWS


def test_a_batch_failing_on_one_connection_is_finished_by_a_rerun(committed, monkeypatch) -> None:
    recorder = BatchRecorder(monkeypatch, fail_at=5)
    registry_import = confirmed(ROWS)
    with pytest.raises(ConnectionError):
        registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.APPLYING
    # Whole batches only: the vouchers written are exactly the lines marked applied.
    applied = registry_import.applied_lines
    marked_rows = sum(upto - after for after, upto in applied)
    assert 0 < marked_rows < ROWS
    assert Voucher.objects.count() == marked_rows == registry_import.rows_applied

    RegistryImport.objects.filter(pk=registry_import.pk).update(
        heartbeat_at=timezone.now() - STALE_AFTER - timedelta(seconds=1)
    )
    recorder.fail_at = 0
    calls_before = recorder.calls
    registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.DONE
    # The rerun did only the batches not marked, and every row is in once.
    assert recorder.calls - calls_before == 12 - len(applied)
    assert registry_import.rows_applied == ROWS
    assert Voucher.objects.count() == ROWS
    assert sorted(Voucher.objects.values_list("voucher_number", flat=True)) == [
        f"{n:010d}" for n in range(1, ROWS + 1)
    ]


def test_codes_issued_by_batches_on_two_connections_survive_a_failed_batch(
    with_codes, committed, monkeypatch
) -> None:
    """voucher_code: each batch inserts its new vouchers with their codes' hashes and keeps
    the codes, sealed, in its own transaction; a rerun after a failed batch issues the rest,
    and the codes file holds every voucher's code once."""
    recorder = BatchRecorder(monkeypatch, fail_at=5)
    registry_import = confirmed(ROWS)
    with pytest.raises(ConnectionError):
        registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    applied = len(registry_import.applied_lines)
    assert RegistryImportCodes.objects.filter(registry_import=registry_import).count() == applied
    assert not Voucher.objects.filter(activation_code_hash=None).exists()
    RegistryImport.objects.filter(pk=registry_import.pk).update(
        heartbeat_at=timezone.now() - STALE_AFTER - timedelta(seconds=1)
    )
    recorder.fail_at = 0
    registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.DONE
    assert registry_import.counts["codes_issued"] == ROWS
    assert recorder.threads == {"registry-apply-0", "registry-apply-1"}
    assert not RegistryImportCodes.objects.exists()  # all in the codes file now

    _name, content = registry_import_codes_file(registry_import=registry_import, actor=ACTOR)
    rows = list(csv.reader(io.StringIO(b"".join(content).decode("utf-8-sig"))))[1:]
    assert sorted(number for number, _code in rows) == [f"{n:010d}" for n in range(1, ROWS + 1)]
    cipher = cipher_for(committed)
    hashes = dict(Voucher.objects.values_list("voucher_number", "activation_code_hash"))
    assert all(bytes(hashes[number]) == activation_code_hash(cipher, code) for number, code in rows)
    # Recorded batch by batch (a batch failed and was rerun): the vouchers, each once.
    assert voucher_ranges_expand(registry_import.codes_scope["voucher_ranges"]) == sorted(
        Voucher.objects.values_list("pk", flat=True)
    )
    assert registry_import.codes_scope["residents"] == ROWS
