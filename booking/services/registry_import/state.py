"""What every phase of an import shares: the refusals, taking the import into a phase (the
claim, with the heartbeat that lets a dead run's work be taken over), failing it, dropping its
staged rows and its uploaded file, and the details its audit events carry."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport
from booking.models.registry import STALE_AFTER
from tenants.queue import enqueue_on_commit


class RegistryImportRefused(Exception):
    """A request the import refuses, with a message for the operator (Japanese)."""


class RegistryImportStalled(RegistryImportRefused):
    """A new upload is refused because an earlier import stopped half-way: it must be
    resumed (or, before its preview is ready, cancelled) first — one import at work at a
    time, and an interrupted apply has already written part of its rows."""

    def __init__(self, registry_import: RegistryImport) -> None:
        self.registry_import = registry_import
        if registry_import.status == RegistryImport.Status.APPLYING:
            message = _(
                "中断した取込（%(file)s）があります。その取込を再開して終わらせてから、"
                "もう一度アップロードしてください。"
            )
        else:
            message = _(
                "中断した取込（%(file)s）があります。その取込を再開するか取り消してから、"
                "もう一度アップロードしてください。"
            )
        super().__init__(message % {"file": registry_import.file_name})


class RegistryImportBusy(Exception):
    """Another run is working on this import right now (its heartbeat is fresh)."""


class RegistryImportLost(Exception):
    """This run no longer holds the import: a run that took it over (this one's heartbeat
    had gone stale, though it was alive) or a cancellation has it now. The run stops and
    writes nothing more; the import is the other's to finish."""


def _held(registry_import: RegistryImport) -> Q:
    """The import as this run claimed it: its phase and the claim's time, which a takeover
    or a cancellation changes. Taken right after the claim."""
    return Q(
        pk=registry_import.pk,
        status=registry_import.status,
        phase_started_at=registry_import.phase_started_at,
    )


def _hold(held: Q) -> None:
    """Lock the import's row until the transaction ends, if this run still holds it: a
    takeover or a cancellation then waits, and finds the phase over. Raises
    RegistryImportLost otherwise."""
    if not RegistryImport.objects.select_for_update().filter(held).exists():
        raise RegistryImportLost()


# The uploaded file's own name goes into the audit trail (a file name, not a resident's
# data), cut to a length that keeps an event small.
AUDIT_FILE_NAME_CHARS = 100


def audit_file_name(registry_import: RegistryImport) -> str:
    return registry_import.file_name[:AUDIT_FILE_NAME_CHARS]


def _count_details(counts: dict[str, Any]) -> dict[str, Any]:
    # Counts, and the names of places a preview found (never an address).
    return {key: value if isinstance(value, list) else int(value) for key, value in counts.items()}


def _event_details(
    registry_import: RegistryImport, requested_by: str = "", counts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """File name and counts for the trail; ``requested_by`` ("kind:id") when the event's
    actor is the system working for someone (the preview for the uploader, the apply for
    whoever confirmed)."""
    details: dict[str, Any] = {
        "file_name": audit_file_name(registry_import),
        **_count_details(registry_import.counts if counts is None else counts),
    }
    if requested_by:
        details["requested_by"] = requested_by
    return details


def _enqueue(task_name: str, registry_import: RegistryImport) -> None:
    from booking import tasks

    enqueue_on_commit(getattr(tasks, task_name.rsplit(".", 1)[1]), registry_import.pk)


def _claim(registry_import_id: int, *, to: str, fresh: Q) -> RegistryImport | None:
    """Take the import into the ``to`` state: from a state matching ``fresh``, or from ``to``
    itself when the run that had it stopped sending heartbeats (it died). Returns None when
    the import is past this phase; raises RegistryImportBusy when a live run has it."""
    now = timezone.now()
    stale = Q(status=to, heartbeat_at__lt=now - STALE_AFTER) | Q(status=to, heartbeat_at=None)
    try:
        with transaction.atomic():
            claimed = RegistryImport.objects.filter(
                Q(pk=registry_import_id) & (fresh | stale)
            ).update(status=to, phase_started_at=now, heartbeat_at=now)
    except IntegrityError as exc:
        # Another import of the municipality is at work (one at a time): wait for it, as
        # for a live run of this one. Two uploads in quick succession end up here.
        raise RegistryImportBusy(registry_import_id) from exc
    if claimed == 1:
        return RegistryImport.objects.get(pk=registry_import_id)
    if RegistryImport.objects.filter(pk=registry_import_id, status=to).exists():
        raise RegistryImportBusy(registry_import_id)
    return None


def _no_commit_wait() -> None:
    """Batches of an import need not wait for their commit to reach the disk: a batch lost
    in a crash is lost with the progress it recorded, and the rerun does it again."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")


def _fail(registry_import: RegistryImport, message: str, *, phase: str = "parse") -> None:
    registry_import.status = RegistryImport.Status.FAILED
    registry_import.message = message
    registry_import.finished_at = timezone.now()
    registry_import.save(update_fields=["status", "message", "finished_at"])
    # A failed import is not taken up again (the operator uploads anew): its plaintext file
    # has no further use.
    _delete_upload(registry_import)
    record(
        action="registry_import.failed",
        actor=Actor.system("registry-import"),
        target=registry_import,
        details={
            "phase": phase,
            "file_name": audit_file_name(registry_import),
            "requested_by": registry_import.confirmed_by
            if phase == "apply" and registry_import.confirmed_by
            else registry_import.requested_by,
        },
    )


def _staging_reset(registry_import: RegistryImport) -> None:
    _staging_clear(registry_import)
    registry_import.errors.all().delete()


def _staging_clear(registry_import: RegistryImport) -> None:
    """The import's staged rows gone. When no other import has rows staged (one import is
    at work at a time, so nearly always), the table is truncated: a DELETE of a million rows
    takes about half a second here and leaves them on disk, dead, until a vacuum; TRUNCATE
    gives the space back at once. The lock, taken first, keeps any other import from staging
    rows between the check and the TRUNCATE."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE booking_registryimportrow IN ACCESS EXCLUSIVE MODE")
        # The two ends of the primary key (import, line): min() and max() are read from the
        # index whatever the table's statistics say, where an EXISTS planned on statistics
        # taken when the table was empty scanned a million rows.
        cursor.execute("SELECT min(import_id), max(import_id) FROM booking_registryimportrow")
        lowest, highest = cursor.fetchone()
        others = lowest is not None and (lowest != registry_import.pk or highest != lowest)
        if others:
            cursor.execute(
                "DELETE FROM booking_registryimportrow WHERE import_id = %s", [registry_import.pk]
            )
        else:
            cursor.execute("TRUNCATE booking_registryimportrow")


def _delete_upload(registry_import: RegistryImport) -> None:
    if registry_import.stored_file:
        default_storage.delete(registry_import.stored_file)
        RegistryImport.objects.filter(pk=registry_import.pk).update(stored_file="")
        registry_import.stored_file = ""
