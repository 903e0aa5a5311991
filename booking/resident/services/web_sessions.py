"""Which web sessions are a resident's: registered at login, ended by logout, by staff
(disabling web login) and by resets."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone

from audit import record
from audit.chain import Actor
from booking.models import ResidentSession, Voucher
from booking.resident.services.login import voucher_target
from sesshu.rows import columns_of, fetch_one, insert_of, table

# --- Sessions -----------------------------------------------------------------------------


def resident_session_register(*, voucher: Voucher, session_key: str) -> ResidentSession:
    """Record that ``session_key`` is ``voucher``'s session; drop rows of its sessions that
    have ended or expired since."""
    # On the path of every login in a rush: not compiled by the ORM (sesshu.rows).
    ended = (
        f"DELETE FROM {table(ResidentSession)} r WHERE r.voucher_id = %s AND NOT EXISTS"  # noqa: S608
        f" (SELECT 1 FROM {table(Session)} s WHERE s.session_key = r.session_key"
        " AND s.expire_date > %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(ended, [voucher.pk, timezone.now()])
    return insert_of(ResidentSession)(ResidentSession(session_key=session_key, voucher=voucher))


def resident_session_voucher(*, voucher_id: int, session_key: str | None) -> Voucher | None:
    """``voucher_id``'s voucher if the resident login registered ``session_key`` to it and
    nobody has ended the session since; else None. One query, on every resident page."""
    if not session_key:
        return None
    voucher = columns_of(Voucher, "v")
    row = fetch_one(
        f"{voucher.select} WHERE v.id = %s AND EXISTS"  # noqa: S608
        f" (SELECT 1 FROM {table(ResidentSession)} r"
        " WHERE r.session_key = %s AND r.voucher_id = v.id)",
        [voucher_id, session_key],
    )
    return None if row is None else voucher.load(row)


def resident_session_forget(*, session_key: str | None) -> None:
    if session_key:
        ResidentSession.objects.filter(session_key=session_key).delete()


def resident_logout_record(*, voucher_id: int, reason: str, ip: str | None) -> None:
    record(
        action="resident.logout",
        actor=Actor.resident(voucher_id),
        target=("booking.voucher", str(voucher_id)),
        ip=ip,
        details={"reason": reason},
    )


def resident_sessions_end(
    voucher: Voucher, *, actor: Actor | None = None, ip: str | None = None
) -> int:
    """End every web session of ``voucher`` (ASVS 7.4.2); return how many were live.

    Call it when staff disable the resident's web login (see :func:`resident_web_login_set`),
    after a password reset, or when the voucher is withdrawn.
    """
    with transaction.atomic():
        registered = ResidentSession.objects.filter(voucher_id=voucher.pk)
        keys = list(registered.values_list("session_key", flat=True))
        ended, _by_model = Session.objects.filter(
            session_key__in=keys, expire_date__gt=timezone.now()
        ).delete()
        Session.objects.filter(session_key__in=keys).delete()
        registered.delete()
        record(
            action="resident.sessions_ended",
            actor=actor or Actor.system("resident-sessions"),
            target=voucher_target(voucher),
            ip=ip,
            details={"sessions": ended},
        )
    return ended


def resident_sessions_end_all(*, voucher_ids: Sequence[int] | None = None) -> int:
    """End the web sessions of these vouchers (of every resident: None) at once, for an
    incident; return how many were live. The caller records what it did."""
    registered = ResidentSession.objects.all()
    if voucher_ids is not None:
        registered = registered.filter(voucher_id__in=voucher_ids)
    keys = registered.values("session_key")
    ended, _by_model = Session.objects.filter(
        session_key__in=keys, expire_date__gt=timezone.now()
    ).delete()
    Session.objects.filter(session_key__in=keys).delete()
    registered.delete()
    return ended


def resident_web_login_set(
    *, voucher: Voucher, disabled: bool, actor: Actor, ip: str | None = None
) -> Voucher:
    """Disable (or enable again) a resident's web login; disabling ends their sessions."""
    with transaction.atomic():
        stop = Voucher.WebLoginStop.STAFF if disabled else ""
        changed = (
            Voucher.objects.filter(pk=voucher.pk)
            .exclude(web_login_disabled=disabled)
            .update(web_login_disabled=disabled, web_login_stop=stop, updated_at=timezone.now())
        )
        voucher.web_login_disabled, voucher.web_login_stop = disabled, stop
        if changed:
            record(
                action="resident.web_login_disabled" if disabled else "resident.web_login_enabled",
                actor=actor,
                target=voucher_target(voucher),
                ip=ip,
            )
        if disabled:
            resident_sessions_end(voucher, actor=actor, ip=ip)
    return voucher
