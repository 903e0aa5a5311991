"""An import whose run died (killed worker or command, lost task) is shown as interrupted,
does not leave every later upload refused for ever without saying why, and is finished by a
resume: from a button, the command, or the periodic sweep."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.models import Event
from booking.models import RegistryImport, Voucher
from booking.models.registry import STALE_AFTER
from booking.services.registry_import import (
    RegistryImportBusy,
    RegistryImportRefused,
    RegistryImportStalled,
    registry_import_apply,
    registry_import_cancel,
    registry_import_confirm,
    registry_import_parse,
    registry_import_upload,
)
from booking.services.registry_upkeep import (
    MAX_AUTO_RESUMES,
    registry_import_resume,
    registry_imports_resume_stalled,
    resumable_phase,
)
from booking.tasks import registry_imports_resume_all
from tenants.models import Municipality
from tests.booking.registry_import.conftest import ACTOR, csv_bytes, preview, row, upload
from tests.redis_outage import broker_out_of_reach

LONG_AGO = timedelta(minutes=10)


def killed_while(registry_import: RegistryImport, status: str, *, ago: timedelta) -> None:
    """What a run killed in the middle of ``status`` leaves: the status, and a heartbeat
    that stopped ``ago``."""
    RegistryImport.objects.filter(pk=registry_import.pk).update(
        status=status, heartbeat_at=timezone.now() - ago, phase_started_at=timezone.now() - ago
    )
    registry_import.refresh_from_db()


def killed_apply(data: bytes, *, ago: timedelta = LONG_AGO) -> RegistryImport:
    registry_import = preview(data)
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)
    killed_while(registry_import, RegistryImport.Status.APPLYING, ago=ago)
    return registry_import


def test_a_live_import_refuses_uploads_as_running_not_as_interrupted(tenant) -> None:
    registry_import = upload(csv_bytes([row("0000000001")]))
    killed_while(registry_import, RegistryImport.Status.PARSING, ago=timedelta(seconds=10))
    assert not registry_import.stalled
    assert registry_import.status_label == "確認中"
    with pytest.raises(RegistryImportRefused, match="別の取込が進行中です") as refused:
        upload(csv_bytes([row("0000000002")]))
    assert not isinstance(refused.value, RegistryImportStalled)
    with pytest.raises(RegistryImportRefused, match="中断していない"):
        registry_import_resume(registry_import=registry_import, actor=ACTOR, enqueue=False)


def test_an_interrupted_parse_is_named_and_resumed_from_the_file(tenant) -> None:
    registry_import = upload(csv_bytes([row("0000000001"), row("12")]), name="meibo.csv")
    killed_while(registry_import, RegistryImport.Status.PARSING, ago=STALE_AFTER + LONG_AGO)
    assert registry_import.stalled and registry_import.status_label == "中断"
    with pytest.raises(RegistryImportStalled, match="中断した取込（meibo.csv）") as refused:
        upload(csv_bytes([row("0000000002")]))
    assert "取り消して" in str(refused.value)
    assert refused.value.registry_import.pk == registry_import.pk

    assert registry_import_resume(registry_import=registry_import, actor=ACTOR, enqueue=False)
    registry_import_parse(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.PREVIEWED
    assert (registry_import.counts["new"], registry_import.counts["invalid"]) == (1, 1)
    (resumed,) = Event.objects.filter(action="registry_import.resumed")
    assert resumed.details == {"phase": "parse", "file_name": "meibo.csv"}
    assert (resumed.actor_kind, resumed.actor_id) == ("system", "tests")
    upload(csv_bytes([row("0000000002")]))  # nothing at work now: uploads are taken again


def test_an_interrupted_parse_can_be_cancelled_and_an_interrupted_apply_cannot(tenant) -> None:
    parse = upload(csv_bytes([row("0000000001")]))
    killed_while(parse, RegistryImport.Status.PARSING, ago=LONG_AGO)
    registry_import_cancel(registry_import=parse, actor=ACTOR)
    assert parse.status == RegistryImport.Status.CANCELLED and not parse.stored_file

    applying = killed_apply(csv_bytes([row("0000000002")]))
    assert resumable_phase(applying) == "apply"
    with pytest.raises(RegistryImportRefused, match="取り消せません"):
        registry_import_cancel(registry_import=applying, actor=ACTOR)
    with pytest.raises(RegistryImportStalled, match="再開して終わらせて"):
        upload(csv_bytes([row("0000000003")]))
    assert registry_import_resume(registry_import=applying, actor=ACTOR, enqueue=False) == "apply"
    registry_import_apply(registry_import_id=applying.pk)
    applying.refresh_from_db()
    assert applying.status == RegistryImport.Status.DONE
    assert list(Voucher.objects.values_list("voucher_number", flat=True)) == ["0000000002"]


def test_a_confirmed_preview_whose_task_was_lost_is_resumed_as_an_apply(tenant) -> None:
    registry_import = preview(csv_bytes([row("0000000001")]))
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)
    assert not registry_import.stalled  # just confirmed: its task may be on its way
    RegistryImport.objects.filter(pk=registry_import.pk).update(
        confirmed_at=timezone.now() - LONG_AGO
    )
    registry_import.refresh_from_db()
    assert registry_import.stalled and resumable_phase(registry_import) == "apply"


@pytest.fixture
def two_tenants(
    tenant_a: Municipality, tenant_b: Municipality, settings, tmp_path
) -> Iterator[tuple[Municipality, Municipality]]:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    yield tenant_a, tenant_b


def test_the_beat_resumes_interrupted_imports_in_every_municipality(
    two_tenants, django_capture_on_commit_callbacks
) -> None:
    tenant_a, tenant_b = two_tenants
    with tenant_context(tenant_a):
        applying = killed_apply(csv_bytes([row("0000000001"), row("0000000002")]))
    with tenant_context(tenant_b):
        parsing = upload(csv_bytes([row("0000000003")]))
        killed_while(parsing, RegistryImport.Status.PARSING, ago=LONG_AGO)
    connection.set_schema_to_public()
    with django_capture_on_commit_callbacks(execute=True):
        assert registry_imports_resume_all() >= 2  # tasks run in-process without a broker
    with tenant_context(tenant_a):
        applying.refresh_from_db()
        assert applying.status == RegistryImport.Status.DONE
        assert Voucher.objects.count() == 2
        (resumed,) = Event.objects.filter(action="registry_import.resumed")
        assert (resumed.actor_kind, resumed.details["phase"]) == ("system", "apply")
    with tenant_context(tenant_b):
        parsing.refresh_from_db()
        # A preview waits for the operator: the sweep never confirms it.
        assert parsing.status == RegistryImport.Status.PREVIEWED and not parsing.confirmed_at
        assert not Voucher.objects.exists()


def test_the_beat_leaves_a_live_import_alone(tenant, django_capture_on_commit_callbacks) -> None:
    registry_import = upload(csv_bytes([row("0000000001")]))
    killed_while(registry_import, RegistryImport.Status.PARSING, ago=timedelta(seconds=30))
    connection.set_schema_to_public()
    with django_capture_on_commit_callbacks(execute=True):
        registry_imports_resume_all()
    with tenant_context(tenant):
        registry_import.refresh_from_db()
        assert registry_import.status == RegistryImport.Status.PARSING
        assert not Event.objects.filter(action="registry_import.resumed").exists()


def test_the_resume_sweep_is_on_the_beat_schedule() -> None:
    entries = {e["task"]: e for e in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries["booking.registry_imports_resume_all"]["schedule"] <= 600


def test_a_second_upload_waits_while_the_first_is_parsed(tenant) -> None:
    first = upload(csv_bytes([row("0000000001")]))
    second = upload(csv_bytes([row("0000000002")]))  # both queued before either is parsed
    killed_while(first, RegistryImport.Status.PARSING, ago=timedelta(seconds=5))
    with pytest.raises(RegistryImportBusy):
        registry_import_parse(registry_import_id=second.pk)
    second.refresh_from_db()
    assert second.status == RegistryImport.Status.UPLOADED  # taken up once the first is done


def _sweep(tenant: Municipality, capture) -> None:
    connection.set_schema_to_public()
    with capture(execute=False):  # the resumed run "dies" again: its task never runs
        registry_imports_resume_all()
    connection.set_tenant(tenant)


def test_the_sweep_gives_up_on_a_parse_that_keeps_dying(
    tenant, django_capture_on_commit_callbacks
) -> None:
    registry_import = upload(csv_bytes([row("0000000001")]), name="big.csv")
    for attempt in range(1, MAX_AUTO_RESUMES + 1):
        killed_while(registry_import, RegistryImport.Status.PARSING, ago=LONG_AGO)
        _sweep(tenant, django_capture_on_commit_callbacks)
        registry_import.refresh_from_db()
        assert registry_import.auto_resumes == attempt
        assert registry_import.status == RegistryImport.Status.PARSING
    killed_while(registry_import, RegistryImport.Status.PARSING, ago=LONG_AGO)
    _sweep(tenant, django_capture_on_commit_callbacks)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.FAILED
    assert "4回続けて途中で止まった" in registry_import.message
    assert not registry_import.stored_file  # the plaintext upload goes with it
    assert Event.objects.filter(action="registry_import.resumed").count() == MAX_AUTO_RESUMES
    assert Event.objects.filter(action="registry_import.failed").count() == 1
    upload(csv_bytes([row("0000000002")]))  # the next upload is taken


def test_the_sweep_stops_resuming_an_apply_that_keeps_dying_and_leaves_it_to_a_person(
    tenant, django_capture_on_commit_callbacks
) -> None:
    applying = killed_apply(csv_bytes([row("0000000001")]))
    RegistryImport.objects.filter(pk=applying.pk).update(auto_resumes=MAX_AUTO_RESUMES)
    for _ in range(2):
        killed_while(applying, RegistryImport.Status.APPLYING, ago=LONG_AGO)
        _sweep(tenant, django_capture_on_commit_callbacks)
    applying.refresh_from_db()
    # Part of it may be written: it is neither failed nor resumed, and the trail says so once.
    assert applying.status == RegistryImport.Status.APPLYING and applying.stalled
    assert not Event.objects.filter(action="registry_import.resumed").exists()
    (stopped,) = Event.objects.filter(action="registry_import.auto_resume_stopped")
    assert stopped.details["phase"] == "apply"
    # A person still can.
    assert registry_import_resume(registry_import=applying, actor=ACTOR, enqueue=False) == "apply"
    registry_import_apply(registry_import_id=applying.pk)
    applying.refresh_from_db()
    assert applying.status == RegistryImport.Status.DONE


def test_a_batch_found_applied_by_its_range_is_left_alone(tenant) -> None:
    """What a run that took over from one still alive meets: the other run's batch is in
    when its lock on the batch is granted."""
    from booking.services.registry_import import apply as apply_module

    registry_import = preview(csv_bytes([row(f"{n:010d}") for n in range(1, 6)]))
    apply_module._apply_batch(registry_import.pk, 1, 6)
    Voucher.objects.filter(voucher_number="0000000001").delete()
    apply_module._apply_batch(registry_import.pk, 1, 6)
    registry_import.refresh_from_db()
    assert registry_import.applied_lines == [[1, 6]]
    assert registry_import.rows_applied == 5
    assert Voucher.objects.count() == 4  # not written again


def test_an_apply_begun_before_ranges_were_recorded_continues_after_its_line(tenant) -> None:
    """An apply under way when migration 0014 ran has its lines through
    applied_through_line as its first range: the rerun applies only the lines after it."""
    registry_import = killed_apply(csv_bytes([row(f"{n:010d}") for n in range(1, 6)]))
    RegistryImport.objects.filter(pk=registry_import.pk).update(applied_lines=[[0, 3]])
    registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.DONE
    # Lines 2 and 3 count as applied already (they are not in the vouchers: this test's
    # earlier run never wrote them), lines 4 to 6 are applied now.
    assert sorted(Voucher.objects.values_list("voucher_number", flat=True)) == [
        "0000000003",
        "0000000004",
        "0000000005",
    ]


def test_an_upload_whose_parse_the_broker_did_not_take_is_shown_waiting_then_swept(
    tenant, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks
) -> None:
    """The upload commits, then its parse is queued: with the broker out of reach the
    operator is not shown an error page for a file that is safely stored. The import waits,
    and the sweep queues its parse once the broker is back."""
    with django_capture_on_commit_callbacks() as after_commit:
        registry_import = registry_import_upload(
            stream=io.BytesIO(csv_bytes([row("0000000001")])),
            file_name="meibo.csv",
            size=len(csv_bytes([row("0000000001")])),
            actor=ACTOR,
            source=RegistryImport.Source.COMMAND,
        )
    with broker_out_of_reach():
        for callback in after_commit:
            callback()  # raises nothing
    assert any("registry_import_parse" in r.getMessage() for r in caplog.records)
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.UPLOADED

    RegistryImport.objects.filter(pk=registry_import.pk).update(
        created_at=timezone.now() - STALE_AFTER - LONG_AGO
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert registry_imports_resume_stalled() == [registry_import.pk]
    registry_import.refresh_from_db()
    assert registry_import.status == RegistryImport.Status.PREVIEWED
