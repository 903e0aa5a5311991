"""Keeping registry imports moving and their files short-lived: resuming an import whose run
died (a killed worker or command, a lost task), from a button, the command or the periodic
sweep; and, later in an import's life, deleting what no longer needs keeping.

The work itself is ``booking.services.registry_import``'s: a resumed parse starts over from
the file, a resumed apply continues from the last committed batch.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport
from booking.models.registry import STALE_AFTER
from booking.services.registry_import import RegistryImportRefused, audit_file_name
from tenants.queue import enqueue_on_commit

SWEEP_ACTOR = Actor.system("registry-import-sweep")


def resumable_phase(registry_import: RegistryImport) -> str | None:
    """The phase a resumed run does for a stalled import ("parse" or "apply"), else None."""
    if not registry_import.stalled:
        return None
    if registry_import.status in (RegistryImport.Status.UPLOADED, RegistryImport.Status.PARSING):
        return "parse"
    return "apply"


def registry_import_resume(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None, enqueue: bool = True
) -> str:
    """Queue (or, with ``enqueue=False``, leave to the caller) the phase a stalled import
    still needs; audited. Returns the phase. A run that is alive is never doubled: the
    claim in the service refuses it."""
    registry_import.refresh_from_db()
    phase = resumable_phase(registry_import)
    if phase is None:
        raise RegistryImportRefused(_("この取込は中断していないため、再開できません。"))
    record(
        action="registry_import.resumed",
        actor=actor,
        target=registry_import,
        ip=ip,
        details={"phase": phase, "file_name": audit_file_name(registry_import)},
    )
    if enqueue:
        from booking import tasks

        task = tasks.registry_import_parse if phase == "parse" else tasks.registry_import_apply
        enqueue_on_commit(task, registry_import.pk)
    return phase


def registry_imports_resume_stalled() -> list[int]:
    """The periodic sweep of one municipality: resume the stalled import, if any.

    One at most: the import at work if its run died, else the oldest import whose queued
    task never came (an upload waiting for its preview, a confirmed preview waiting for its
    apply). Queueing a second one while one is at work would only trip over the one-at-work
    constraint."""
    at_work = RegistryImport.objects.filter(
        status__in=[RegistryImport.Status.PARSING, RegistryImport.Status.APPLYING]
    ).first()
    if at_work is not None:
        candidates = [at_work]
    else:
        stale_before = timezone.now() - STALE_AFTER
        candidates = list(
            RegistryImport.objects.filter(
                status=RegistryImport.Status.UPLOADED, created_at__lt=stale_before
            ).order_by("created_at")[:1]
        ) + list(
            RegistryImport.objects.filter(
                status=RegistryImport.Status.PREVIEWED, confirmed_at__lt=stale_before
            ).order_by("confirmed_at")[:1]
        )
    for registry_import in candidates:
        if registry_import.stalled:
            registry_import_resume(registry_import=registry_import, actor=SWEEP_ACTOR)
            return [registry_import.pk]
    return []
