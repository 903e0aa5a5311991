"""Municipal staff accounts: invitations, console login, console sessions.

Every function here runs inside one municipality's schema (the request's or a
``schema_context``) and writes that municipality's audit trail.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import record
from audit.chain import Actor
from booking.models import StaffInvitation, StaffMember, StaffSession
from sesshu import metrics
from sesshu.outages import CACHE_DOWN, ProcessCounters, cache_down
from tenants.db import current_schema

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

INVITATION_TTL = timedelta(days=3)

# Console login throttle (SECURITY.md "throttle before hashing"). Attempts are counted
# before the password hash is computed; a success gives its attempt back. The account limit
# keys on the typed address, so an unknown address is throttled exactly like a real one;
# from a browser that has signed in to the address before (sesshu.devices), on
# that browser's own token instead, so nobody can lock a staff member out at will.
LOGIN_ACCOUNT_LIMIT = 10
LOGIN_IP_LIMIT = 50
LOGIN_WINDOW_SECONDS = 15 * 60


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _target_user(user_id: Any) -> tuple[str, str]:
    return ("auth.user", str(user_id))


# --- Invitations --------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: StaffInvitation
    token: str  # shown once (in the link); only its hash is stored


def staff_invite(
    *,
    email: str,
    role: str,
    invited_by: object | None,
    actor: Actor,
    ip: str | None = None,
    ttl: timedelta = INVITATION_TTL,
) -> IssuedInvitation:
    if role not in StaffMember.Role.values:
        raise ValueError(f"unknown staff role {role!r}")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = StaffInvitation.objects.create(
            email=email.strip().lower(),
            role=role,
            token_hash=token_hash(token),
            invited_by=invited_by,  # type: ignore[misc]
            expires_at=timezone.now() + ttl,
        )
        record(
            action="staff.invited", actor=actor, target=invitation, ip=ip, details={"role": role}
        )
    return IssuedInvitation(invitation=invitation, token=token)


def staff_invitation_email(
    *, issued: IssuedInvitation, link: str, municipality_name: str, ip: str | None = None
) -> bool:
    """Send the invitation link to the invited address through Django's mail API (the
    configured ``EMAIL_BACKEND``; not the residents' notification outbox). Call after the
    invitation is committed. Returns whether the mail was handed over; a failure is audited
    and logged (without the address), and the admin still has the link on screen."""
    invitation = issued.invitation
    with translation.override("ja"):
        local = timezone.localtime(invitation.expires_at)
        expires = f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
        if invitation.resets_id:
            subject = _("【%(name)s】ワクチン接種予約システム 職員アカウントの再設定") % {
                "name": municipality_name
            }
            intro = _(
                "%(name)s のワクチン接種予約システムの職員アカウントを再設定するリンクです。\n"
                "役割：%(role)s\n\n"
                "次のリンクを開き、新しいパスワードと認証アプリを登録してください。\n"
            )
        else:
            subject = _("【%(name)s】ワクチン接種予約システム 職員アカウントへの招待") % {
                "name": municipality_name
            }
            intro = _(
                "%(name)s のワクチン接種予約システムの職員コンソールに招待されました。\n"
                "役割：%(role)s\n\n"
                "次のリンクを開き、パスワードと認証アプリを登録してください。\n"
            )
        body = (
            intro
            + _(
                "%(link)s\n\n"
                "このリンクは一度だけ使え、%(expires)s（日本時間）まで有効です。\n"
                "心当たりがない場合は、このメールを破棄してください。"
            )
        ) % {
            "name": municipality_name,
            "role": invitation.get_role_display(),
            "link": link,
            "expires": expires,
        }
    try:
        send_mail(subject, body, None, [invitation.email])
    except Exception:  # the mail server's failure must not lose the link shown to the admin
        # The schema too: the vendor's control plane sends reset links as well, outside
        # any municipality's request.
        logger.exception(
            "staff invitation %s in schema %s: the e-mail was not sent",
            invitation.pk,
            current_schema(),
        )
        sent = False
    else:
        sent = True
    record(
        action="staff.invitation_emailed",
        actor=Actor.system("municipal-console"),
        target=invitation,
        ip=ip,
        details={"sent": sent},
    )
    return sent


class StaffRefused(Exception):
    """An admin's action on staff accounts that the rules forbid; ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def _admin_only(by: StaffMember) -> None:
    if by.role != StaffMember.Role.ADMIN or not by.user.is_active:
        raise PermissionDenied("staff accounts are managed by the municipality's admins")


def staff_invitation_withdraw(
    *, invitation: StaffInvitation, by: StaffMember, ip: str | None = None
) -> None:
    """Withdraw a pending invitation: its link stops working at once (it is made to expire
    now; the trail says it was withdrawn rather than left to expire)."""
    _admin_only(by)
    with transaction.atomic():
        now = timezone.now()
        withdrawn = StaffInvitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, expires_at__gt=now
        ).update(expires_at=now)
        if withdrawn != 1:
            raise StaffRefused(
                "not_pending", _("この招待は既に使われたか、有効期限が切れています。")
            )
        record(
            action="staff.invitation_withdrawn",
            actor=Actor.staff(by.user),
            target=invitation,
            ip=ip,
            details={"role": invitation.role},
        )


class InvitationRefused(Exception):
    """The invitation cannot be used. ``reason`` is for the audit trail, never for the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _invitation_refused(
    *, reason: str, invitation: StaffInvitation | None, ip: str | None
) -> InvitationRefused:
    record(
        action="staff.invitation_refused",
        actor=Actor.anonymous(),
        target=invitation,
        ip=ip,
        details={"reason": reason},
    )
    return InvitationRefused(reason)


def _unusable_reason(invitation: StaffInvitation | None) -> str:
    if invitation is None:
        return "unknown"
    if invitation.accepted_at is not None:
        return "used"
    if invitation.expires_at <= timezone.now():
        return "expired"
    return ""


def staff_invitation_open(*, token: str, ip: str | None = None) -> StaffInvitation:
    """Return the usable invitation for ``token``, or audit the refusal and raise.

    Unknown, expired and used tokens raise the same exception; only the audit trail says which.
    """
    invitation = StaffInvitation.objects.filter(token_hash=token_hash(token)).first()
    reason = _unusable_reason(invitation)
    if reason:
        raise _invitation_refused(reason=reason, invitation=invitation, ip=ip)
    assert invitation is not None
    return invitation


def staff_invitation_accept(
    *, token: str, password_hash: str, totp_key: str, totp_last_t: int = -1, ip: str | None = None
) -> StaffMember:
    """Create the staff account for ``token``: user, confirmed TOTP device, role.

    ``password_hash`` comes from ``make_password`` (the plain password never reaches the
    session that carries the setup state); ``totp_key`` is the hex secret the person has just
    proven to hold. The invitation is claimed with one conditional UPDATE and nothing is
    checked before it, so of two tabs (or two people) finishing at once exactly one succeeds.
    """
    hashed = token_hash(token)
    user_model = get_user_model()
    try:
        with transaction.atomic():
            now = timezone.now()
            claimed = StaffInvitation.objects.filter(
                token_hash=hashed, accepted_at__isnull=True, expires_at__gt=now
            ).update(accepted_at=now)
            if claimed != 1:
                raise InvitationRefused("")
            invitation = StaffInvitation.objects.get(token_hash=hashed)
            if invitation.resets_id is not None:
                staff = _reset_account(invitation, password_hash, totp_key, totp_last_t, ip)
                user = staff.user
            else:
                if user_model.objects.filter(username=invitation.email).exists():
                    raise InvitationRefused("account_exists")
                user = user_model.objects.create(
                    username=invitation.email, email=invitation.email, password=password_hash
                )
                _authenticator(user, totp_key, totp_last_t)
                staff = StaffMember.objects.create(user=user, role=invitation.role)
            StaffInvitation.objects.filter(pk=invitation.pk).update(accepted_user=user)
            record(
                action="staff.invitation_accepted",
                actor=Actor.staff(user),
                target=invitation,
                ip=ip,
                details={
                    "role": invitation.role,
                    "user_id": user.pk,
                    "reset": invitation.resets_id is not None,
                },
            )
    except InvitationRefused as refused:
        # Rolled back; say why from what is committed now.
        current = StaffInvitation.objects.filter(token_hash=hashed).first()
        reason = refused.reason or _unusable_reason(current) or "used"
        raise _invitation_refused(reason=reason, invitation=current, ip=ip) from None
    return staff


def _authenticator(user: Any, totp_key: str, totp_last_t: int) -> None:
    TOTPDevice.objects.create(
        user=user, name="authenticator", key=totp_key, confirmed=True, last_t=totp_last_t
    )


def _reset_account(
    invitation: StaffInvitation, password_hash: str, totp_key: str, totp_last_t: int, ip: str | None
) -> StaffMember:
    """The account a reset link names, set up again: the new password and authenticator
    replace the old ones (a lost phone no longer signs in), the account is enabled, and any
    session left open ends."""
    assert invitation.resets_id is not None
    staff = StaffMember.objects.select_related("user").get(pk=invitation.resets_id)
    user = get_user_model().objects.select_for_update().get(pk=staff.user_id)
    if user.email != invitation.email:  # the address changed since the link was made
        raise InvitationRefused("account_changed")
    user.password = password_hash
    user.is_active = True
    user.save(update_fields=["password", "is_active"])
    TOTPDevice.objects.filter(user=user).delete()
    _authenticator(user, totp_key, totp_last_t)
    staff_sessions_end(staff=staff, actor=Actor.staff(user), ip=ip)
    staff.user = user
    return staff


def _resets_withdraw(staff: StaffMember) -> datetime:
    """The reset links of ``staff`` not yet used stop working now (returned)."""
    now = timezone.now()
    StaffInvitation.objects.filter(
        resets=staff, accepted_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)
    return now


# A reset link lives a day: it replaces the credentials of an account that exists.
RESET_TTL = timedelta(days=1)


def staff_reset_issue(
    *, staff: StaffMember, by: StaffMember, ip: str | None = None
) -> IssuedInvitation:
    """A single-use link with which a colleague sets their password and authenticator again
    (forgotten, lost, or an account disabled by mistake: completing it enables the account).
    Links issued for them before stop working. Their current password and authenticator keep
    working until the link is used (disable the account first if a phone was stolen)."""
    _admin_only(by)
    if staff.pk == by.pk:
        raise StaffRefused(
            "self", _("自分自身の再設定リンクは発行できません。ほかの管理者に依頼してください。")
        )
    return _reset_issue(staff, invited_by=by.user, actor=Actor.staff(by.user), ip=ip)


def staff_reset_issue_for_lone_admin(
    *, email: str, actor: Actor, ip: str | None = None
) -> IssuedInvitation:
    """A reset link for the municipality's admin with this address when no other admin can
    issue one (a lone admin who forgot the password or lost the phone), asked for by the
    vendor's operator on the municipality's request. The caller sends it to that address
    and shows it to nobody (``staff_invitation_email``): the operator never holds a way
    into the console. Refused (StaffRefused) for an address no admin has, or while another
    admin can sign in."""
    admins = StaffMember.objects.filter(role=StaffMember.Role.ADMIN).select_related("user")
    staff = admins.filter(user__email__iexact=email.strip()).first()
    if staff is None:
        raise StaffRefused(
            "unknown", _("この市区町村の管理者に、このメールアドレスのアカウントはありません。")
        )
    others = admins.filter(user__is_active=True).exclude(pk=staff.pk).count()
    if others:
        raise StaffRefused(
            "other_admins",
            _(
                "この市区町村には、ほかにログインできる管理者が%(count)d人います。"
                "再設定リンクは、その管理者が職員コンソールから発行します。"
            )
            % {"count": others},
        )
    return _reset_issue(staff, invited_by=None, actor=actor, ip=ip)


def _reset_issue(
    staff: StaffMember, *, invited_by: Any, actor: Actor, ip: str | None
) -> IssuedInvitation:
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        now = _resets_withdraw(staff)
        invitation = StaffInvitation.objects.create(
            email=staff.user.email,
            role=staff.role,
            token_hash=token_hash(token),
            invited_by=invited_by,
            expires_at=now + RESET_TTL,
            resets=staff,
        )
        record(
            action="staff.reset_issued",
            actor=actor,
            target=_target_user(staff.user_id),
            ip=ip,
            details={"role": staff.role, "invitation": invitation.pk},
        )
    return IssuedInvitation(invitation=invitation, token=token)


# --- Console login ------------------------------------------------------------------------


class LoginRefused(Exception):
    """Console login failed. ``reason`` goes to the audit trail; the page says one thing.
    A throttled attempt says which limit stopped it (``scope``: "account", "device" or
    "ip"), for the page's advice."""

    def __init__(self, reason: str, scope: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.scope = scope

    @property
    def throttled(self) -> bool:
        return self.reason == "throttled"


def _login_throttle_keys(
    email: str, ip: str | None, browser: str | None
) -> list[tuple[str, str, int]]:
    """(scope, cache key, limit) of each counter an attempt counts against."""
    if browser:
        keys = [("device", f"console-login:device:{browser}", LOGIN_ACCOUNT_LIMIT)]
    else:
        # Hashed, so the cache (Redis in production) holds nothing typed by a person.
        account = hashlib.sha256(email.encode()).hexdigest()
        keys = [("account", f"console-login:account:{account}", LOGIN_ACCOUNT_LIMIT)]
    if ip:
        keys.append(("ip", f"console-login:ip:{ip}", LOGIN_IP_LIMIT))
    return keys


# The console login's counters while Redis cannot be reached (sesshu.outages).
_process_counters = ProcessCounters()


def _throttle_take(keys: list[tuple[str, str, int]]) -> str:
    """Count one attempt against every key; the scope of the first one over its limit ("":
    none is). With the shared counters unreachable, in this process's
    (``sesshu.outages.ProcessCounters``)."""
    try:
        counts = _shared_throttle_take(keys)
    except CACHE_DOWN as error:
        cache_down("the console login's counters (counted in this process)", error)
        counts = [
            _process_counters.incr(key, window=LOGIN_WINDOW_SECONDS) for _scope, key, _ in keys
        ]
    over = [
        scope for count, (scope, _key, limit) in zip(counts, keys, strict=True) if count > limit
    ]
    return over[0] if over else ""


def _shared_throttle_take(keys: list[tuple[str, str, int]]) -> list[int]:
    counts = []
    for _scope, key, _limit in keys:
        cache.add(key, 0, timeout=LOGIN_WINDOW_SECONDS)
        try:
            counts.append(cache.incr(key))
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=LOGIN_WINDOW_SECONDS)
            counts.append(1)
    return counts


def _throttle_give_back(keys: list[tuple[str, str, int]]) -> None:
    try:
        for _scope, key, _limit in keys:
            try:
                cache.decr(key)
            except ValueError:
                pass
    except CACHE_DOWN as error:
        cache_down("the console login's counters (counted in this process)", error)
    for _scope, key, _limit in keys:
        _process_counters.decr(key)


def _login_failed(*, reason: str, user_id: Any, ip: str | None, scope: str = "") -> LoginRefused:
    record(
        action="console.login_failed",
        actor=Actor.anonymous(),
        target=_target_user(user_id) if user_id is not None else None,
        ip=ip,
        details={"reason": reason, **({"limit": scope} if scope else {})},
    )
    metrics.login_failed("console")
    return LoginRefused(reason, scope)


def staff_authenticate(
    *, email: str, password: str, code: str, ip: str | None = None, browser: str | None = None
) -> tuple[User, TOTPDevice]:
    """Check a console login (address, password, TOTP code) and audit it.

    Raises :class:`LoginRefused` for every failure. The throttle is consulted before the
    password hash is computed; an unknown address still costs one hash (Django's model
    backend hashes for it), so timing does not tell whether an account exists. ``browser``
    is the token of a browser that has signed in to this address before
    (``sesshu.devices``): its attempts count against the token, not the address.
    """
    email = email.strip().lower()
    keys = _login_throttle_keys(email, ip, browser)
    if over := _throttle_take(keys):
        raise _login_failed(reason="throttled", user_id=None, ip=ip, scope=over)
    user_model = get_user_model()
    known = user_model.objects.filter(username=email).values_list("pk", "is_active").first()
    user = authenticate(None, username=email, password=password)
    if user is None:
        if known is None:
            raise _login_failed(reason="unknown_account", user_id=None, ip=ip)
        reason = "wrong_password" if known[1] else "inactive"
        raise _login_failed(reason=reason, user_id=known[0], ip=ip)
    staff = StaffMember.objects.filter(user=user).first()
    if staff is None:
        raise _login_failed(reason="not_staff", user_id=user.pk, ip=ip)
    with transaction.atomic():
        # Locked, so two requests cannot both spend the same code (django-otp keeps last_t).
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        verified = device is not None and device.verify_token(code)
    if device is None:
        raise _login_failed(reason="no_device", user_id=user.pk, ip=ip)
    if not verified:
        raise _login_failed(reason="wrong_code", user_id=user.pk, ip=ip)
    _throttle_give_back(keys)
    record(
        action="console.login_succeeded",
        actor=Actor.staff(user),
        target=_target_user(user.pk),
        ip=ip,
        details={"role": staff.role},
    )
    return user, device


# --- Console sessions ---------------------------------------------------------------------


def staff_session_register(*, user: Any, session_key: str) -> StaffSession:
    """Record that the session ``session_key`` is ``user``'s console session.

    Rows of this user's sessions that have since ended or expired are cleared here, so the
    table stays as small as the live sessions.
    """
    live = Session.objects.filter(expire_date__gt=timezone.now()).values("session_key")
    StaffSession.objects.filter(user=user).exclude(session_key__in=live).delete()
    return StaffSession.objects.create(session_key=session_key, user=user)


def staff_session_is_registered(*, user: Any, session_key: str | None) -> bool:
    if not session_key:
        return False
    return StaffSession.objects.filter(session_key=session_key, user_id=user.pk).exists()


def staff_session_forget(*, session_key: str | None) -> None:
    """Drop the registration of a session that is being ended (logout, timeout)."""
    if session_key:
        StaffSession.objects.filter(session_key=session_key).delete()


def staff_logout_record(*, user: Any, ip: str | None = None) -> None:
    record(
        action="console.logout",
        actor=Actor.staff(user),
        target=_target_user(user.pk),
        ip=ip,
    )


def staff_sessions_end(*, staff: StaffMember, actor: Actor, ip: str | None = None) -> int:
    """End every console session of ``staff`` (ASVS 7.4.5); return how many were live."""
    with transaction.atomic():
        registered = StaffSession.objects.filter(user_id=staff.user_id)
        keys = list(registered.values_list("session_key", flat=True))
        ended, _by_model = Session.objects.filter(
            session_key__in=keys, expire_date__gt=timezone.now()
        ).delete()
        Session.objects.filter(session_key__in=keys).delete()
        registered.delete()
        record(
            action="staff.sessions_ended",
            actor=actor,
            target=_target_user(staff.user_id),
            ip=ip,
            details={"sessions": ended},
        )
    return ended


# --- Leaving staff ------------------------------------------------------------------------


def staff_role_change(
    *, staff: StaffMember, role: str, by: StaffMember, ip: str | None = None
) -> StaffMember:
    """Give a colleague another role (moved from the call centre to a venue, made an admin).
    Not one's own role: an admin who gave theirs up could not undo it. Venues assigned to a
    venue staff member are cleared when they stop being one (reception reads them). The new
    role holds from their next click; unchanged, nothing is recorded."""
    _admin_only(by)
    if role not in StaffMember.Role.values:
        raise ValueError(f"unknown staff role {role!r}")
    if staff.pk == by.pk:
        raise StaffRefused(
            "self", _("自分自身の役割は変更できません。ほかの管理者に依頼してください。")
        )
    with transaction.atomic():
        current = StaffMember.objects.select_for_update().select_related("user").get(pk=staff.pk)
        if current.role == role:
            return current
        previous = current.role
        current.role = role
        current.save(update_fields=["role"])
        cleared = 0
        if previous == StaffMember.Role.VENUE:
            cleared = current.venues.count()
            current.venues.clear()
        record(
            action="staff.role_changed",
            actor=Actor.staff(by.user),
            target=_target_user(current.user_id),
            ip=ip,
            details={"previous_role": previous, "role": role, "venues_cleared": cleared},
        )
    return current


def staff_deactivate(*, staff: StaffMember, by: StaffMember, ip: str | None = None) -> int:
    """A staff member leaves: their account can no longer log in and every console session
    of theirs ends (returns how many). An admin cannot deactivate themselves, nor the last
    active admin: the municipality would be left with nobody to manage its console."""
    _admin_only(by)
    if staff.pk == by.pk:
        raise StaffRefused("self", _("自分自身のアカウントを無効にすることはできません。"))
    user_model = get_user_model()
    with transaction.atomic():
        # Admins locked in one order, so two admins deactivating each other at once cannot
        # both succeed and leave none.
        admins = list(
            user_model.objects.select_for_update()
            .filter(staff__role=StaffMember.Role.ADMIN, is_active=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        user = user_model.objects.select_for_update().get(pk=staff.user_id)
        if not user.is_active:
            raise StaffRefused("inactive", _("このアカウントは既に無効です。"))
        if staff.role == StaffMember.Role.ADMIN and set(admins) <= {user.pk}:
            raise StaffRefused("last_admin", _("最後の管理者のアカウントは無効にできません。"))
        if by.user_id not in admins:  # deactivated meanwhile, by another admin
            raise PermissionDenied("the acting admin is no longer active")
        user.is_active = False
        user.save(update_fields=["is_active"])
        # A reset link issued before would enable the account again: it stops working.
        _resets_withdraw(staff)
        ended = staff_sessions_end(staff=staff, actor=Actor.staff(by.user), ip=ip)
        record(
            action="staff.deactivated",
            actor=Actor.staff(by.user),
            target=_target_user(staff.user_id),
            ip=ip,
            details={"role": staff.role, "sessions": ended},
        )
    return ended
