"""Keeping registry imports moving and their files short-lived: resuming an import whose run
died (a killed worker or command, a lost task), from a button, the command or the periodic
sweep; and, later in an import's life, deleting what no longer needs keeping.

The work itself is ``booking.services.registry_import``'s: a resumed parse starts over from
the file, a resumed apply continues from the last committed batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport
from booking.models.registry import STALE_AFTER
from booking.selectors.registry import registry_imports_at_work
from booking.services.registry_import import (
    RegistryImportRefused,
    audit_file_name,
    error_file_days,
    registry_import_cancel,
)
from booking.services.registry_import.state import _fail, _staging_reset
from tenants.queue import enqueue_on_commit

SWEEP_ACTOR = Actor.system("registry-import-sweep")
UPKEEP_ACTOR = Actor.system("registry-import-upkeep")
PREVIEW_DAYS = 7
# The sweep resumes an import this many times; after that a person decides (the button or
# the command still resume it).
MAX_AUTO_RESUMES = 3


def preview_days() -> int:
    return int(getattr(settings, "SESSHU_REGISTRY_PREVIEW_DAYS", PREVIEW_DAYS))


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
    at_work = registry_imports_at_work().first()
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
        if not registry_import.stalled:
            continue
        if registry_import.auto_resumes >= MAX_AUTO_RESUMES:
            _give_up(registry_import)
            return []
        RegistryImport.objects.filter(pk=registry_import.pk).update(
            auto_resumes=F("auto_resumes") + 1
        )
        registry_import_resume(registry_import=registry_import, actor=SWEEP_ACTOR)
        return [registry_import.pk]
    return []


def _give_up(registry_import: RegistryImport) -> None:
    """The sweep's last word on an import whose runs keep dying. A parse has written nothing
    yet: it fails, with a message saying so, and the next upload is taken. An apply has
    written part of the vouchers and cannot be undone: it stays 中断 for a person to resume
    once the cause is found; the trail says once that the sweep stopped."""
    if resumable_phase(registry_import) == "parse":
        _staging_reset(registry_import)
        _fail(
            registry_import,
            _(
                "確認の処理が%(count)d回続けて途中で止まったため、取込を終了しました。"
                "ファイルの大きさや形式を確かめて、もう一度アップロードしてください。"
            )
            % {"count": MAX_AUTO_RESUMES + 1},
        )
        return
    stopped = RegistryImport.objects.filter(
        pk=registry_import.pk, auto_resumes=MAX_AUTO_RESUMES
    ).update(auto_resumes=MAX_AUTO_RESUMES + 1)
    if stopped:
        record(
            action="registry_import.auto_resume_stopped",
            actor=SWEEP_ACTOR,
            target=registry_import,
            details={"phase": "apply", "file_name": audit_file_name(registry_import)},
        )


# --- Expiry: nothing personal stays in storage longer than it is of use -----------------------


def registry_imports_expire(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic upkeep of one municipality; every deletion is audited.

    - A preview nobody confirmed within ``SESSHU_REGISTRY_PREVIEW_DAYS`` is cancelled: its
      plaintext upload and staged rows go (an operator who still wants it uploads again).
    - An error file past its download period, and an activation-codes file nobody took in
      as long, are deleted from storage (the bucket's lifecycle rule would, on S3; local
      disk has none).
    - An upload left behind by a finished, failed or cancelled import is deleted.
    """
    now = now or timezone.now()
    done = {"previews_cancelled": 0, "error_files": 0, "codes_files": 0, "uploads": 0}
    expired_previews = RegistryImport.objects.filter(
        status=RegistryImport.Status.PREVIEWED,
        confirmed_at=None,
        parsed_at__lt=now - timedelta(days=preview_days()),
    )
    for registry_import in expired_previews:
        try:
            registry_import_cancel(
                registry_import=registry_import, actor=UPKEEP_ACTOR, reason="expired"
            )
        except RegistryImportRefused:
            continue  # confirmed in the meantime
        done["previews_cancelled"] += 1
    for registry_import in RegistryImport.objects.exclude(error_file="").filter(
        error_file_expires_at__lt=now
    ):
        _delete_file(registry_import, "error_file", "registry_import.error_file_deleted")
        done["error_files"] += 1
    for registry_import in RegistryImport.objects.exclude(codes_file="").filter(
        finished_at__lt=now - timedelta(days=error_file_days())
    ):
        _delete_file(registry_import, "codes_file", "registry_import.codes_file_deleted")
        done["codes_files"] += 1
    for registry_import in RegistryImport.objects.exclude(stored_file="").filter(
        status__in=[
            RegistryImport.Status.DONE,
            RegistryImport.Status.FAILED,
            RegistryImport.Status.CANCELLED,
        ]
    ):
        _delete_file(registry_import, "stored_file", "registry_import.upload_deleted")
        done["uploads"] += 1
    return done


def _delete_file(registry_import: RegistryImport, field: str, action: str) -> None:
    name = getattr(registry_import, field)
    default_storage.delete(name)
    RegistryImport.objects.filter(pk=registry_import.pk, **{field: name}).update(**{field: ""})
    record(
        action=action,
        actor=UPKEEP_ACTOR,
        target=registry_import,
        details={"file_name": audit_file_name(registry_import)},
    )
