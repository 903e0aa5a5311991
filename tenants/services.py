"""Provisioning, suspending and decommissioning municipalities, and their waiting room's rate
(the control plane's writes).

Each is one function that the vendor console, the management commands and the tests call.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context, schema_exists
from psycopg import sql

from audit import record
from audit.chain import Actor
from tenants.codes import code_problem, reference_municipalities, schema_name_for
from tenants.db.roles import drop_schema_role, owner_mode, role_for_schema, schema_role_exists
from tenants.keys import forget_data_key, key_provider
from tenants.models import Domain, Municipality
from tenants.prefectures import prefecture_for
from tenants.storage import AREAS as STORAGE_AREAS
from tenants.storage import tenant_prefix

logger = logging.getLogger(__name__)

SUBDOMAIN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
RESERVED_SUBDOMAINS = frozenset(
    {
        "platform",
        "www",
        "api",
        "admin",
        "static",
        "media",
        "mail",
        "smtp",
        "console",
        "status",
        "line",
        "auth",
        "login",
        "sesshu",
    }
)


class ProvisioningError(Exception):
    """A request the control plane refuses, with a message for the operator."""


@dataclass(frozen=True)
class Provisioned:
    municipality: Municipality
    resident_url: str
    console_url: str
    admin_setup_url: str
    admin_email: str
    admin_setup_expires_at: datetime


def site_url(host: str, path: str = "/") -> str:
    scheme = "https" if settings.SESSHU_HTTPS else "http"
    port = f":{settings.SESSHU_PUBLIC_PORT}" if settings.SESSHU_PUBLIC_PORT else ""
    return f"{scheme}://{host}{port}{path}"


def _check_request(code: str, subdomain: str) -> None:
    problem = code_problem(code)
    if problem:
        raise ProvisioningError(problem)
    existing = Municipality.objects.filter(code=code).first()
    if existing is not None:
        raise ProvisioningError(
            _("市区町村コード %(code)s（%(name)s）は既に登録されています（状態: %(status)s）。")
            % {"code": code, "name": existing.name, "status": existing.get_status_display()}
        )
    if not SUBDOMAIN.match(subdomain) or "--" in subdomain:
        raise ProvisioningError(
            _("サブドメインは英小文字で始まる2〜32文字の英小文字・数字・ハイフンです。")
        )
    if subdomain in RESERVED_SUBDOMAINS:
        raise ProvisioningError(
            _("サブドメイン「%(sub)s」は予約されています。") % {"sub": subdomain}
        )
    if Domain.objects.filter(domain=f"{subdomain}.{settings.SESSHU_BASE_DOMAIN}").exists():
        raise ProvisioningError(_("サブドメイン「%(sub)s」は使用中です。") % {"sub": subdomain})
    # Refused here rather than truncated by PostgreSQL into another tenant's role name.
    try:
        role_for_schema(connection.settings_dict["NAME"], schema_name_for(code))
    except Exception as exc:
        raise ProvisioningError(str(exc)) from exc
    # Not the place of a municipality: provisioning would fail on it, and its clean-up must
    # never drop what it did not create.
    if schema_exists(schema_name_for(code)):
        raise ProvisioningError(
            _(
                "市区町村コード %(code)s のデータベース領域が既にあります（以前の登録が途中で"
                "止まった可能性があります）。運用手順書に従って確認してください。"
            )
            % {"code": code}
        )


def municipality_provision(
    *,
    code: str,
    subdomain: str,
    admin_email: str,
    actor: Actor,
    name: str | None = None,
    login_mode: str = Municipality.LoginMode.VOUCHER_CODE,
    ip: str | None = None,
) -> Provisioned:
    checked = municipality_provision_preview(
        code=code, subdomain=subdomain, admin_email=admin_email, name=name
    )
    with _provisioning(checked.code):
        # Checked again under the lock: a second request for the same code (a double click)
        # waited here for the first one, and finds it registered.
        _check_request(checked.code, checked.subdomain)
        return _provision(
            code=checked.code,
            subdomain=checked.subdomain,
            admin_email=checked.admin_email,
            actor=actor,
            name=checked.name,
            prefecture=checked.prefecture,
            login_mode=login_mode,
            ip=ip,
        )


def _admin_email(text: str) -> str:
    """The first admin's address, checked (the command line has no form to check it): the
    setup link's account signs in with it."""
    address = text.strip()
    try:
        validate_email(address)
    except ValidationError:
        raise ProvisioningError(
            _("管理者のメールアドレス「%(address)s」が正しくありません。") % {"address": address}
        ) from None
    return address


@contextmanager
def _provisioning(code: str) -> Iterator[None]:
    """One provisioning at a time on the platform (a session-level advisory lock: the schema
    is created and migrated outside any one transaction). Without it, two requests for one
    code both passed the checks, the loser's clean-up dropped the schema and role of the
    winner, and a municipality was left registered with neither. If the lock cannot be
    released (the connection broken), the connection is closed, which releases it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [_PROVISIONING_LOCK])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [_PROVISIONING_LOCK])
        except Exception:
            logger.exception("releasing the provisioning lock after %s: closing", code)
            connection.close()


_PROVISIONING_LOCK = "sesshu.provisioning"


def _name_and_prefecture(code: str, name: str | None) -> tuple[str, str]:
    """The municipality's name (the national list's, or the one given for a code not in
    it) and prefecture; ProvisioningError for a name or code that does not fit the list."""
    reference = reference_municipalities().get(code)
    name = (name or "").strip() or (reference.name if reference else "")
    if reference is not None and _comparable(name) != _comparable(reference.name):
        raise ProvisioningError(
            _(
                "市区町村コード %(code)s は全国の一覧では「%(expected)s」です"
                "（入力された名称: 「%(name)s」）。名称を省略するか「%(expected)s」と"
                "入力してください。"
            )
            % {"code": code, "expected": reference.name, "name": name}
        )
    if reference is not None:
        name = reference.name
    if not name:
        raise ProvisioningError(
            _("市区町村コード %(code)s は全国の一覧にありません。名称を入力してください。")
            % {"code": code}
        )
    if reference is None:
        # A code not in the list (a new municipality, the demo's) with a listed one's name,
        # in the same prefecture, is a mistyped code: that municipality would be made twice.
        prefecture = prefecture_for(code)
        listed = next(
            (
                each
                for each in reference_municipalities().values()
                if each.prefecture == prefecture and _comparable(each.name) == _comparable(name)
            ),
            None,
        )
        if listed is not None:
            raise ProvisioningError(
                _(
                    "「%(name)s」の市区町村コードは %(listed)s です（入力されたコード: %(code)s）。"
                    "コードを確かめてください。"
                )
                % {"name": listed.name, "listed": listed.code, "code": code}
            )
    return name, reference.prefecture if reference else prefecture_for(code)


@dataclass(frozen=True)
class ProvisionPreview:
    """What registering would create, for the operator to read before confirming."""

    code: str
    name: str
    prefecture: str
    subdomain: str
    admin_email: str
    site_url: str
    console_url: str


def municipality_provision_preview(
    *, code: str, subdomain: str, admin_email: str, name: str | None = None
) -> ProvisionPreview:
    """The checks ``municipality_provision`` makes, without creating anything: raises
    ProvisioningError as it would (its own checks run again when it is asked)."""
    code = "".join(unicodedata.normalize("NFKC", code).split())
    subdomain = subdomain.strip().lower()
    admin_email = _admin_email(admin_email)
    _check_request(code, subdomain)
    name, prefecture = _name_and_prefecture(code, name)
    host = f"{subdomain}.{settings.SESSHU_BASE_DOMAIN}"
    return ProvisionPreview(
        code=code,
        name=name,
        prefecture=prefecture,
        subdomain=subdomain,
        admin_email=admin_email,
        site_url=site_url(host, "/"),
        console_url=site_url(host, "/console/"),
    )


def _provision(
    *,
    code: str,
    subdomain: str,
    admin_email: str,
    actor: Actor,
    name: str,
    prefecture: str,
    login_mode: str,
    ip: str | None,
) -> Provisioned:
    provider = key_provider()
    data_key = provider.generate_data_key(tenant_code=code)
    municipality = Municipality(
        code=code,
        schema_name=schema_name_for(code),
        name=name,
        prefecture=prefecture,
        login_mode=login_mode,
        key_provider=provider.name,
        wrapped_data_key=data_key.wrapped,
    )
    host = f"{subdomain}.{settings.SESSHU_BASE_DOMAIN}"
    with owner_mode():
        try:
            municipality.save(
                verbosity=0
            )  # creates the schema, runs its migrations, grants its role
            Domain.objects.create(domain=host, tenant=municipality, is_primary=True)
        except Exception:
            _drop_everything(municipality)
            raise
    record(
        action="municipality.provisioned",
        actor=actor,
        target=municipality,
        ip=ip,
        details={"code": code, "subdomain": subdomain, "key_provider": provider.name},
    )
    from booking.services.staff import staff_invite

    with schema_context(municipality.schema_name):
        invitation = staff_invite(
            email=admin_email, role="admin", invited_by=None, actor=actor, ip=ip
        )
    return Provisioned(
        municipality=municipality,
        resident_url=site_url(host, "/"),
        console_url=site_url(host, "/console/"),
        admin_setup_url=site_url(host, f"/console/setup/{invitation.token}/"),
        admin_email=admin_email,
        admin_setup_expires_at=invitation.invitation.expires_at,
    )


@dataclass(frozen=True)
class AdminInvitation:
    setup_url: str
    email: str
    expires_at: datetime


def municipality_has_admin(municipality: Municipality) -> bool:
    """Whether someone can sign in to the municipality's console as its admin."""
    from booking.models import StaffMember

    with schema_context(municipality.schema_name):
        return StaffMember.objects.filter(
            role=StaffMember.Role.ADMIN, user__is_active=True
        ).exists()


def municipality_admin_reinvite(
    *, municipality: Municipality, admin_email: str, actor: Actor, ip: str | None = None
) -> AdminInvitation:
    """A new setup link for the municipality's first admin, while it has no admin who can
    sign in (the link shown when it was provisioned was lost, or expired): only then, since
    afterwards its admins invite their colleagues themselves. The first-admin links issued
    before stop working."""
    from booking.models import StaffInvitation
    from booking.services.staff import staff_invite

    if municipality.status == Municipality.Status.DECOMMISSIONED:
        raise ProvisioningError(_("廃止された市区町村には操作できません。"))
    admin_email = _admin_email(admin_email)
    if municipality_has_admin(municipality):
        raise ProvisioningError(
            _(
                "この市区町村には既に管理者がいます。職員の招待は、その市区町村の"
                "職員コンソールから管理者が行います。"
            )
        )
    with schema_context(municipality.schema_name), transaction.atomic():
        now = timezone.now()
        StaffInvitation.objects.filter(
            role="admin", invited_by=None, accepted_at=None, expires_at__gt=now
        ).update(expires_at=now)
        issued = staff_invite(email=admin_email, role="admin", invited_by=None, actor=actor, ip=ip)
    record(
        action="municipality.admin_reinvited",
        actor=actor,
        target=municipality,
        ip=ip,
        details={"invitation": issued.invitation.pk},
    )
    domain = Domain.objects.get(tenant=municipality, is_primary=True)
    return AdminInvitation(
        setup_url=site_url(domain.domain, f"/console/setup/{issued.token}/"),
        email=issued.invitation.email,
        expires_at=issued.invitation.expires_at,
    )


def municipality_admin_recover(
    *, municipality: Municipality, admin_email: str, actor: Actor, ip: str | None = None
) -> bool:
    """A reset link e-mailed to the municipality's admin with this address, when no other
    admin can issue one (its only admin forgot the password or lost the phone). Asked for by
    the vendor's operator on the municipality's request; the link goes to the address the
    account has and is shown to nobody here. Returns whether the mail was handed over (if
    not, asking again issues a new link). Recorded in the platform's trail and the
    municipality's own."""
    from booking.services.staff import (
        StaffRefused,
        staff_invitation_email,
        staff_reset_issue_for_lone_admin,
    )

    if municipality.status == Municipality.Status.DECOMMISSIONED:
        raise ProvisioningError(_("廃止された市区町村には操作できません。"))
    domain = Domain.objects.get(tenant=municipality, is_primary=True)
    with schema_context(municipality.schema_name):
        try:
            issued = staff_reset_issue_for_lone_admin(email=admin_email, actor=actor, ip=ip)
        except StaffRefused as refused:
            raise ProvisioningError(refused.message) from None
        sent = staff_invitation_email(
            issued=issued,
            link=site_url(domain.domain, f"/console/setup/{issued.token}/"),
            municipality_name=municipality.name,
            ip=ip,
        )
    record(
        action="municipality.admin_reset_sent",
        actor=actor,
        target=municipality,
        ip=ip,
        details={"invitation": issued.invitation.pk, "sent": sent},
    )
    return sent


def _comparable(name: str) -> str:
    # Full-width and half-width forms and stray spaces are the same name; anything else is not.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))


def tenant_files_delete(schema_name: str, *, storage: Storage | None = None) -> int:
    """Delete every stored file of the tenant, in every storage area; how many.

    The folders are the ones the tenant storage itself writes under ("<area>/<tenant
    prefix>/", read in the tenant's context), so this follows the storage's layout. Only the
    storage's own listdir and delete are used: a local folder and an S3 bucket work alike. No
    database query runs while the tenant's schema is current, so its role is never used.
    """
    if schema_name == get_public_schema_name():
        raise ValueError("tenant_files_delete is for a municipality's schema, not public")
    storage = default_storage if storage is None else storage
    with schema_context(schema_name):
        files: list[str] = []
        folders: list[str] = []
        pending = [f"{area}/{tenant_prefix()}/" for area in STORAGE_AREAS]
        while pending:
            folder = pending.pop()
            try:
                subfolders, names = storage.listdir(folder)
            except FileNotFoundError:  # a local folder never written to
                continue
            folders.append(folder)
            files += [folder + name for name in names]
            pending += [f"{folder}{sub}/" for sub in subfolders]
        for name in files:
            storage.delete(name)
        if isinstance(storage, FileSystemStorage):  # S3 has no folders to remove
            for folder in sorted(folders, key=lambda f: f.count("/"), reverse=True):
                storage.delete(folder)  # empty by now: rmdir
    return len(files)


def _drop_schema(schema_name: str) -> None:
    with owner_mode(), connection.cursor() as cursor:
        # Deferred foreign-key checks still pending in this transaction would block the drop.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema_name))
        )


def _drop_everything(municipality: Municipality) -> None:
    _drop_schema(municipality.schema_name)
    drop_schema_role(connection, municipality.schema_name)
    if municipality.pk:
        Domain.objects.filter(tenant=municipality).delete()
        Municipality.objects.filter(pk=municipality.pk).delete()


def _set_status(
    municipality: Municipality,
    status: str | None,
    *,
    action: str,
    actor: Actor,
    ip: str | None,
    allowed_from: tuple[str, ...],
    reason: str = "",
) -> Municipality:
    """Move the municipality to ``status`` (None: back to the status it had before its
    suspension), keeping what a suspension remembers."""
    S = Municipality.Status
    with transaction.atomic():
        locked = Municipality.objects.select_for_update().get(pk=municipality.pk)
        if locked.status not in allowed_from:
            raise ProvisioningError(
                _("%(name)s は現在「%(status)s」のため、この操作はできません。")
                % {"name": locked.name, "status": locked.get_status_display()}
            )
        previous = locked.status
        if status is None:
            status = locked.suspended_from or S.ACTIVE
        locked.status = status
        if status == S.SUSPENDED:
            locked.suspended_from = previous
            locked.suspension_reason = reason[:200]
            locked.suspended_at = timezone.now()
        else:
            locked.suspended_from, locked.suspension_reason, locked.suspended_at = "", "", None
        locked.save(
            update_fields=[
                "status",
                "suspended_from",
                "suspension_reason",
                "suspended_at",
                "updated_at",
            ]
        )
        record(
            action=action,
            actor=actor,
            target=locked,
            ip=ip,
            details={"from": previous, "to": status, "reason": reason[:200]},
        )
    return locked


def municipality_suspend(
    *, municipality: Municipality, actor: Actor, reason: str = "", ip: str | None = None
) -> Municipality:
    S = Municipality.Status
    return _set_status(
        municipality,
        S.SUSPENDED,
        action="municipality.suspended",
        actor=actor,
        ip=ip,
        allowed_from=(S.ACTIVE, S.INCIDENT),
        reason=reason,
    )


def municipality_resume(
    *, municipality: Municipality, actor: Actor, ip: str | None = None
) -> Municipality:
    """Back to the status before the suspension: active, or still in incident mode (the
    resident site stays closed until the municipality itself ends its incident)."""
    S = Municipality.Status
    return _set_status(
        municipality,
        None,
        action="municipality.resumed",
        actor=actor,
        ip=ip,
        allowed_from=(S.SUSPENDED,),
    )


# A rate past this is no waiting room at all (some 1,700 newcomers a second to one
# municipality): to turn the room off, set 0.
WAITING_ROOM_MOST_PER_MINUTE = 100_000


def municipality_waiting_room_set(
    *, municipality: Municipality, per_minute: int | None, actor: Actor, ip: str | None = None
) -> Municipality:
    """Set how many newcomers a minute the waiting room lets into the municipality's resident
    pages: None for the platform's rate, 0 for no waiting room. It reaches the residents
    already waiting, and the other web processes within ``SESSHU_TENANT_CACHE_SECONDS``."""
    if per_minute is not None and not 0 <= per_minute <= WAITING_ROOM_MOST_PER_MINUTE:
        raise ProvisioningError(
            _("待合室の受け入れ数は0から%(most)sまでの整数で入力してください。")
            % {"most": f"{WAITING_ROOM_MOST_PER_MINUTE:,}"}
        )
    with transaction.atomic():
        locked = Municipality.objects.select_for_update().get(pk=municipality.pk)
        if locked.status == Municipality.Status.DECOMMISSIONED:
            raise ProvisioningError(_("廃止された市区町村には操作できません。"))
        previous = locked.waiting_room_per_minute
        if previous == per_minute:
            return locked
        locked.waiting_room_per_minute = per_minute
        locked.save(update_fields=["waiting_room_per_minute", "updated_at"])
        record(
            action="municipality.waiting_room_changed",
            actor=actor,
            target=locked,
            ip=ip,
            details={"from": previous, "to": per_minute},
        )
    return locked


def decommission_unfinished(municipality: Municipality) -> bool:
    """Decommissioned (its key destroyed) but its schema or its role still there: a run that
    stopped half-way, its storage or database unavailable. What is left is ciphertext nobody
    can read; running the decommission again deletes it."""
    if municipality.status != Municipality.Status.DECOMMISSIONED:
        return False
    return schema_exists(municipality.schema_name) or schema_role_exists(
        connection, municipality.schema_name
    )


def municipality_decommission(
    *, municipality: Municipality, confirmation: str, actor: Actor, ip: str | None = None
) -> Municipality:
    """Destroy the municipality's key (crypto-shredding), delete its stored files, then drop
    its schema and role.

    The key goes first: if anything after it fails, what remains in the database is
    ciphertext nobody can read, and the operator is told to run the decommission again,
    which deletes what is left (every step after the key's is idempotent). The
    Municipality row stays (status and dates only) so the platform trail can refer to it.
    """
    if confirmation.strip() != municipality.code:
        raise ProvisioningError(
            _("確認のため市区町村コード（%(code)s）を正しく入力してください。")
            % {"code": municipality.code}
        )
    if municipality.status == Municipality.Status.DECOMMISSIONED and not decommission_unfinished(
        municipality
    ):
        raise ProvisioningError(
            _("%(name)s は既に廃止されています。") % {"name": municipality.name}
        )
    with transaction.atomic():
        locked = Municipality.objects.select_for_update().get(pk=municipality.pk)
        resumed = locked.status == Municipality.Status.DECOMMISSIONED
        if not resumed:
            locked.wrapped_data_key = b""
            locked.key_destroyed_at = timezone.now()
            locked.status = Municipality.Status.DECOMMISSIONED
            locked.updated_at = timezone.now()
            # An UPDATE, not save(): django-tenants' save() of a municipality whose schema
            # is missing (a provisioning killed half-way) would try to create it.
            Municipality.objects.filter(pk=locked.pk).update(
                wrapped_data_key=locked.wrapped_data_key,
                key_destroyed_at=locked.key_destroyed_at,
                status=locked.status,
                updated_at=locked.updated_at,
            )
            Domain.objects.filter(tenant=locked).delete()
            record(
                action="tenant_key.destroyed",
                actor=actor,
                target=locked,
                ip=ip,
                details={"key_provider": locked.key_provider},
            )
    forget_data_key(locked.code)
    try:
        # Stored files (registry uploads, exports) are not under the data key: delete them.
        files_deleted = tenant_files_delete(locked.schema_name)
        _drop_schema(locked.schema_name)
        drop_schema_role(connection, locked.schema_name)
    except Exception as exc:
        logger.exception("decommissioning %s stopped after its key was destroyed", locked.code)
        raise ProvisioningError(
            _(
                "%(name)s の暗号鍵は破棄しましたが、データの削除が途中で止まりました。"
                "残っているデータは誰にも読めません。しばらくしてから、もう一度廃止を実行して"
                "削除を終えてください。"
            )
            % {"name": locked.name}
        ) from exc
    record(
        action="municipality.decommissioned",
        actor=actor,
        target=locked,
        ip=ip,
        details={"code": locked.code, "files_deleted": files_deleted, "resumed": resumed},
    )
    return locked
