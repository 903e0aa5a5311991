"""New activation codes after an incident, for the ``voucher_code`` login mode.

Incident mode forgets every resident password (``booking.services.incident``). In the
``voucher_code`` mode a resident who had already used the one-time code on their letter then
has no way back in but the call centre, one resident at a time. :func:`incident_codes_reissue`
gives each of them a new code in one action, through the registry import's own codes file:
the same code generator, a file sealed under the municipality's key, downloadable once by an
admin from the imports page (and audited, with the vouchers it names, as
``registry_import.codes_downloaded``) for the print vendor to mail.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import Incident, RegistryImport, StaffMember, Voucher
from booking.selectors.registry import registry_imports_at_work
from booking.services.incident import IncidentRefused
from booking.services.registry_import import activation_codes_issue
from tenants.db import current_municipality
from tenants.models import Municipality

REISSUE_FILE_NAME = "認証コード再発行（インシデント対応）"


def incident_codes_reissue(*, staff: StaffMember, ip: str | None) -> RegistryImport:
    """New one-time codes for every active voucher whose code was spent; returns the
    (import-like) record whose codes file the admin downloads once.

    Only in the ``voucher_code`` mode and once an incident has been started. The vouchers'
    spent codes are replaced; vouchers whose code is unused keep it (their letter still
    works). Refused while a registry import is at work: it issues codes itself.
    """
    if staff.role != StaffMember.Role.ADMIN:
        raise PermissionDenied("incident response is for the municipality's admins")
    municipality: Municipality = current_municipality()
    if municipality.login_mode != Municipality.LoginMode.VOUCHER_CODE:
        raise IncidentRefused(
            "not_voucher_code",
            _("認証コードの再発行は、ログイン方式が認証コード方式の場合だけです。"),
        )
    if not Incident.objects.exists():
        raise IncidentRefused("no_incident", _("インシデントモードを開始した後に再発行できます。"))
    with transaction.atomic():
        # The registry import's own lock: no import may apply (and issue codes) meanwhile.
        busy = registry_imports_at_work().select_for_update()
        if busy.exists():
            raise IncidentRefused(
                "import_at_work",
                _("名簿の取込を実行中のため、再発行できません。取込の完了後にお試しください。"),
            )
        pending = Voucher.objects.filter(status=Voucher.Status.ACTIVE).filter(
            Q(activation_code_used_at__isnull=False) | Q(activation_code_hash__isnull=True)
        )
        if not pending.exists():
            raise IncidentRefused("nothing_to_reissue", _("再発行の対象となる接種券はありません。"))
        spent = Voucher.objects.filter(
            status=Voucher.Status.ACTIVE, activation_code_used_at__isnull=False
        ).update(activation_code_hash=None, activation_code_used_at=None, updated_at=timezone.now())
        actor = Actor(Actor.STAFF, str(staff.user_id))
        reissue = codes_reissue(actor=actor, file_name=REISSUE_FILE_NAME, replaced=spent)
        record(
            action="incident.codes_reissued",
            actor=actor,
            target=reissue,
            ip=ip,
            details={"codes_issued": reissue.counts["codes_issued"], "codes_replaced": spent},
        )
    return reissue


def codes_reissue(*, actor: Actor, file_name: str, replaced: int) -> RegistryImport:
    """A code for every active voucher without one (those whose code was just cleared, and
    any that never had one: the mode chosen after their import), in the codes file of an
    import-like record named ``file_name``, which an admin downloads once. Inside the
    caller's transaction, under the registry import's lock (``registry_imports_at_work``)."""
    now = timezone.now()
    reissue = RegistryImport.objects.create(
        status=RegistryImport.Status.DONE,
        source=RegistryImport.Source.CONSOLE,
        file_name=file_name,
        size=0,
        sha256="",
        actor_kind=actor.kind,
        actor_id=actor.id,
        confirmed_at=now,
        finished_at=now,
    )
    reissue.codes_file, issued = activation_codes_issue(reissue)
    # The import page's count table reads the usual keys: nothing was imported.
    nothing = dict.fromkeys(("rows", "new", "changed", "unchanged", "invalid"), 0)
    reissue.counts = {**nothing, "codes_issued": issued, "codes_replaced": replaced}
    reissue.save(update_fields=["codes_file", "codes_scope", "counts"])
    return reissue
