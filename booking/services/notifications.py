"""Notifications: writing the outbox, the resident's contact preferences, the pause switch.

Sending itself (claim, provider call, mark) is in ``booking.notifications.delivery``; the
day-before reminders in ``booking.notifications.reminders``. Everything here runs inside one
municipality's schema (``tenant_context``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import (
    Booking,
    ContactPreference,
    Language,
    LineChannel,
    Notification,
    NotificationChannel,
    NotificationKind,
    NotificationSettings,
    Voucher,
)
from booking.selectors.residents import contact_preference_of
from sesshu.observability import PERSONAL_FIELD_NAMES
from sesshu.outages import NOT_PUBLISHED, broker_down
from tenants.crypto import cipher_for
from tenants.db import current_municipality, tenant_connection

JAPAN = ZoneInfo("Asia/Tokyo")
MOBILE_PREFIXES = ("70", "80", "90")  # 070/080/090: the numbers that receive SMS in Japan
# Context keys that are never accepted in an outbox row, on top of the scrubber's list.
_FORBIDDEN_CONTEXT_KEYS = PERSONAL_FIELD_NAMES | {
    "voucher",
    "voucher_number",
    "address_number",
    "line_user_id",
    "sex",
}


# --- The outbox ------------------------------------------------------------------------------


def booking_message_context(booking: Booking) -> dict[str, Any]:
    """What a message about ``booking`` may say: booking number, venue, dose, times.

    Nothing about the resident: no name, birth date or voucher number ever reaches a template.
    """
    slot = booking.slot
    venue = slot.venue
    return {
        "booking_number": booking.booking_number,
        # Which slot the text describes: the sender checks the booking is still there.
        "slot_id": slot.pk,
        "dose": booking.dose,
        "venue_name": venue.name,
        "venue_address": venue.address,
        "venue_map_url": venue.map_url,
        "product_name": slot.product.name,
        "starts_at": slot.starts_at.astimezone(JAPAN).isoformat(),
        "ends_at": slot.ends_at.astimezone(JAPAN).isoformat(),
    }


def _check_extra(extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if key.lower() in _FORBIDDEN_CONTEXT_KEYS:
            raise ValueError(f"notification context must not hold personal values ({key!r})")
        if not isinstance(value, str | int | float | bool | type(None)):
            raise TypeError(f"notification context {key!r} must be a plain value")
    return extra


def notification_enqueue(
    *, kind: str, booking: Booking, extra: dict[str, Any] | None = None
) -> list[Notification]:
    """Write one outbox row per channel the booking's resident consented to (none if none).

    Call inside the transaction that makes the change (the booking service's): the rows
    commit or roll back with it, and the sender is scheduled only once they are committed.
    ``extra`` adds plain, non-personal values for the template (e.g. ``previous_starts_at``
    for a change, ``notice`` for an incident).
    """
    if kind not in NotificationKind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    preference = contact_preference_of(booking.voucher_id)
    channels = preference.consented_channels() if preference else []
    if not channels:
        return []
    context = booking_message_context(booking) | _check_extra(dict(extra or {}))
    rows = [
        Notification(
            kind=kind,
            channel=channel,
            voucher_id=booking.voucher_id,
            booking=booking,
            context=context,
            dedupe_key=reminder_dedupe_key(booking, channel) if kind == "reminder" else None,
        )
        for channel in channels
    ]
    with transaction.atomic():
        if kind == NotificationKind.REMINDER:
            # A reminder exists once per booking, date and channel, whoever queues it.
            Notification.objects.bulk_create(rows, ignore_conflicts=True)
            keys = [row.dedupe_key for row in rows]
            rows = list(Notification.objects.filter(dedupe_key__in=keys).order_by("pk"))
        else:
            Notification.objects.bulk_create(rows)
    notifications_dispatch_on_commit([row.pk for row in rows if row.status == "pending"])
    return rows


# Messages that describe the booking as it is now (where and when): stale once it is
# cancelled or moved. A cancellation or slot-cancelled message stays true and is kept.
BOOKING_STATE_KINDS = (
    NotificationKind.BOOKING_CREATED.value,
    NotificationKind.BOOKING_CHANGED.value,
    NotificationKind.REMINDER.value,
)
WITHDRAWN_CANCELLED = "booking.cancelled: the booking was cancelled before this was sent"
WITHDRAWN_CHANGED = "booking.changed: the booking moved to another slot before this was sent"


def notifications_withdraw_for_booking(*, booking: Booking, reason: str) -> int:
    """Skip the still-pending messages that describe ``booking`` as it no longer is.

    Call inside the transaction that cancels or moves it. A row a sender has already claimed
    is left to the sender, which checks the booking again before calling the provider. A
    withdrawn reminder gives up its ``dedupe_key``, so a booking moved to another time on the
    same day gets a reminder for its new slot from the next reminder pass.
    """
    return Notification.objects.filter(
        booking=booking, kind__in=BOOKING_STATE_KINDS, status=Notification.Status.PENDING
    ).update(
        status=Notification.Status.SKIPPED,
        last_error=reason,
        dedupe_key=None,
        not_before=None,
        updated_at=timezone.now(),
    )


def reminder_dedupe_key(booking: Booking, channel: str) -> str:
    day = booking.slot.starts_at.astimezone(JAPAN).date().isoformat()
    return f"reminder:{booking.pk}:{day}:{channel}"


def notifications_dispatch_on_commit(notification_ids: Sequence[int]) -> None:
    """Schedule the sender for these rows once the current transaction commits.

    The task is published in the municipality that wrote the rows, even if the caller
    leaves its context before the commit. A publish that never happens (a process killed
    right after the commit, the broker unreachable) is caught by the sweeper: no row depends
    on this call alone, and the change that wrote them stands — a booking made is never
    answered with an error page because its confirmation could not be queued at once.
    """
    if not notification_ids:
        return
    schema_name = str(tenant_connection().schema_name)
    transaction.on_commit(partial(_dispatch, schema_name, list(notification_ids)))


def _dispatch(schema_name: str, notification_ids: list[int]) -> None:
    from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

    from booking.tasks_notifications import dispatch_ids
    from tenants.models import Municipality

    tenant = tenant_connection().tenant
    if not isinstance(tenant, Municipality) or tenant.schema_name != schema_name:
        # Written under a bare schema_context: the row is needed for the tenant's key.
        with schema_context(get_public_schema_name()):
            tenant = Municipality.objects.get(schema_name=schema_name)
    with tenant_context(tenant):
        try:
            dispatch_ids(notification_ids)
        except NOT_PUBLISHED as error:
            broker_down("notifications (the sweeper queues them within a minute)", error)


# --- The resident's contact preferences ------------------------------------------------------


def normalize_mobile_phone(raw: str) -> str:
    """A Japanese mobile number (070/080/090) in E.164, from how residents type it."""
    text = unicodedata.normalize("NFKC", raw).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("+"):
        if not digits.startswith("81"):
            raise ValidationError(_("日本の携帯電話番号を入力してください。"), code="phone_country")
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        raise ValidationError(_("携帯電話番号を0から入力してください。"), code="phone_format")
    if len(national) != 10 or not national.startswith(MOBILE_PREFIXES):
        raise ValidationError(
            _("SMSを受け取れる携帯電話番号（070・080・090で始まる11桁）を入力してください。"),
            code="phone_format",
        )
    return f"+81{national}"


def _normalize_email(raw: str) -> str:
    value = unicodedata.normalize("NFKC", raw).strip()
    if len(value) > 254:
        raise ValidationError(_("メールアドレスが長すぎます。"), code="email_length")
    validate_email(value)
    return value


def _encrypt(preference_voucher: Voucher, column: str, value: str | None) -> bytes | None:
    if value is None:
        return None
    cipher = cipher_for(current_municipality())
    return cipher.encrypt_field(
        value,
        table=ContactPreference.TABLE,
        column=column,
        row_id=preference_voucher.voucher_number,
    )


def contact_value(preference: ContactPreference, column: str) -> str | None:
    """Decrypt one of ``email``, ``phone``, ``line_user_id``: for sending, never for display."""
    blob = getattr(preference, column)
    if blob is None:
        return None
    cipher = cipher_for(current_municipality())
    return cipher.decrypt_field(
        bytes(blob),
        table=ContactPreference.TABLE,
        column=column,
        row_id=preference.voucher.voucher_number,
    )


def contact_preferences_get(*, voucher: Voucher) -> ContactPreference:
    """The voucher's preferences row, created empty (nothing consented) on first use."""
    preference, _created = ContactPreference.objects.get_or_create(voucher=voucher)
    preference.voucher = voucher
    return preference


def contact_preferences_update(
    *,
    voucher: Voucher,
    email: str | None,
    phone: str | None,
    channels: Iterable[str],
    language: str,
    actor: Actor,
    ip: str | None,
) -> ContactPreference:
    """Replace the resident's contact details and channel choice (my page).

    Every field is re-entered: ``None`` or "" clears an address, and the old values are
    never read back to the page. A channel needs its address (LINE: a linked account);
    consenting to a channel stamps the time, as does giving it a new address; a channel left
    out withdraws its consent. Raises ``ValidationError`` keyed by field, with messages for
    the resident. Audited with which channels and fields, never the values.
    """
    chosen = set(channels)
    unknown = chosen - set(NotificationChannel.values)
    errors: dict[str, list[ValidationError]] = {}
    if unknown:
        errors.setdefault("channels", []).append(
            ValidationError(_("選べない通知方法です。"), code="channel")
        )
    if language not in Language.values:
        errors.setdefault("language", []).append(
            ValidationError(_("選べない言語です。"), code="language")
        )
    new_email = new_phone = None
    try:
        new_email = _normalize_email(email) if email and email.strip() else None
    except ValidationError as exc:
        errors.setdefault("email", []).append(
            ValidationError(_("メールアドレスの形式が正しくありません。"), code="email")
            if exc.code == "invalid"
            else exc
        )
    try:
        new_phone = normalize_mobile_phone(phone) if phone and phone.strip() else None
    except ValidationError as exc:
        errors.setdefault("phone", []).append(exc)
    if "email" in chosen and new_email is None and "email" not in errors:
        errors.setdefault("email", []).append(
            ValidationError(
                _("メールで受け取るにはメールアドレスを入力してください。"), code="required"
            )
        )
    if "sms" in chosen and new_phone is None and "phone" not in errors:
        errors.setdefault("phone", []).append(
            ValidationError(_("SMSで受け取るには携帯電話番号を入力してください。"), code="required")
        )
    # An address given for a way not chosen would be kept and never used: the resident
    # would believe they are told (UX.md: no confirmation sent was a 2021 failure).
    unchosen = (
        (
            new_email,
            "email",
            "email",
            _(
                "メールアドレスを入力したときは「メール」にチェックを入れてください"
                "（チェックがないと、お知らせは送られません）。"
            ),
        ),
        (
            new_phone,
            "sms",
            "phone",
            _(
                "携帯電話番号を入力したときは「SMS」にチェックを入れてください"
                "（チェックがないと、お知らせは送られません）。"
            ),
        ),
    )
    for address, channel, field, message in unchosen:
        if address is not None and channel not in chosen and field not in errors:
            errors.setdefault("channels", []).append(
                ValidationError(message, code=f"{channel}_not_chosen")
            )
    with transaction.atomic():
        preference = _preference_locked(voucher)
        preference.voucher = voucher
        if "line" in chosen and preference.line_user_id is None:
            errors.setdefault("channels", []).append(
                ValidationError(
                    _("LINEで受け取るには、先にLINEアカウントを連携してください。"),
                    code="line_not_linked",
                )
            )
        if errors:
            raise ValidationError(errors)
        now = timezone.now()
        email_changed = new_email != contact_value(preference, "email")
        phone_changed = new_phone != contact_value(preference, "phone")
        preference.email = _encrypt(voucher, "email", new_email)
        preference.phone = _encrypt(voucher, "phone", new_phone)
        preference.email_consented_at = _consent(
            preference.email_consented_at, "email" in chosen, email_changed, now
        )
        preference.sms_consented_at = _consent(
            preference.sms_consented_at, "sms" in chosen, phone_changed, now
        )
        preference.line_consented_at = _consent(
            preference.line_consented_at, "line" in chosen, False, now
        )
        preference.language = language
        preference.save()
        record(
            action="notification.preferences_updated",
            actor=actor,
            target=voucher,
            ip=ip,
            details={
                "channels": sorted(chosen),
                "language": language,
                "email_given": new_email is not None,
                "phone_given": new_phone is not None,
                "email_changed": email_changed,
                "phone_changed": phone_changed,
            },
        )
    return preference


def _preference_locked(voucher: Voucher) -> ContactPreference:
    """The resident's preferences, locked for the change (made, empty, on the first)."""
    return (
        ContactPreference.objects.select_for_update().filter(voucher=voucher).first()
    ) or ContactPreference.objects.create(voucher=voucher)


def contact_language_update(
    *, voucher: Voucher, language: str, actor: Actor, ip: str | None
) -> ContactPreference:
    """The language of the resident's messages alone: chosen without entering the addresses
    again (they stay as registered, unread)."""
    if language not in Language.values:
        raise ValidationError({"language": [ValidationError(_("選べない言語です。"))]})
    with transaction.atomic():
        preference = _preference_locked(voucher)
        if preference.language != language:
            preference.language = language
            preference.save(update_fields=["language", "updated_at"])
            record(
                action="notification.language_updated",
                actor=actor,
                target=voucher,
                ip=ip,
                details={"language": language},
            )
    return preference


def _consent(
    previous: datetime | None, chosen: bool, address_changed: bool, now: datetime
) -> datetime | None:
    if not chosen:
        return None
    if previous is None or address_changed:
        return now
    return previous


# --- The municipality's pause switch ------------------------------------------------------------


def notification_settings_get() -> NotificationSettings:
    settings_row, _created = NotificationSettings.objects.get_or_create(
        pk=NotificationSettings.SINGLETON_ID
    )
    return settings_row


def reminders_sent() -> bool:
    """Whether the municipality sends reminders the day before (on unless its admin has
    switched them off)."""
    return notification_settings_get().reminders_enabled


def notification_settings_lock() -> NotificationSettings:
    """The settings row, created if missing, locked until the transaction ends. Call inside
    ``transaction.atomic()``."""
    notification_settings_get()
    return NotificationSettings.objects.select_for_update().get(
        pk=NotificationSettings.SINGLETON_ID
    )


def notifications_pause_set(*, paused: bool, actor: Actor, ip: str | None) -> NotificationSettings:
    """Stop (or resume) every send of this municipality. Messages wait; none is dropped.

    Resuming schedules what waited.
    """
    with transaction.atomic():
        row = notification_settings_lock()
        changed = row.paused != paused
        row.paused = paused
        row.paused_at = timezone.now() if paused else None
        row.save(update_fields=["paused", "paused_at", "updated_at"])
        if changed:
            record(
                action="notification.paused" if paused else "notification.resumed",
                actor=actor,
                target=row,
                ip=ip,
            )
            if not paused:
                waiting = Notification.objects.filter(status=Notification.Status.PENDING)
                notifications_dispatch_on_commit(list(waiting.values_list("pk", flat=True)))
    return row


def notifications_paused() -> bool:
    return NotificationSettings.objects.filter(
        pk=NotificationSettings.SINGLETON_ID, paused=True
    ).exists()


# --- LINE: the municipality's channel, and residents' linked accounts ---------------------------


def line_channel_configure(
    *,
    login_channel_id: str,
    login_channel_secret: str,
    messaging_access_token: str,
    actor: Actor,
    ip: str | None,
) -> LineChannel:
    """Store the municipality's LINE Login channel and Messaging API token (encrypted)."""
    from booking.notifications.line_channel import seal_line_secret

    channel_id = login_channel_id.strip()
    if not channel_id.isdigit():
        raise ValidationError({"login_channel_id": _("チャネルIDは数字です。")})
    if not login_channel_secret.strip() or not messaging_access_token.strip():
        raise ValidationError(_("チャネルシークレットとアクセストークンを入力してください。"))
    with transaction.atomic():
        row, _created = LineChannel.objects.update_or_create(
            pk=LineChannel.SINGLETON_ID,
            defaults={
                "login_channel_id": channel_id,
                "login_channel_secret": seal_line_secret(
                    login_channel_secret.strip(), column="login_channel_secret"
                ),
                "messaging_access_token": seal_line_secret(
                    messaging_access_token.strip(), column="messaging_access_token"
                ),
                "enabled": True,
            },
        )
        record(
            action="notification.line_channel_configured",
            actor=actor,
            target=row,
            ip=ip,
            details={"login_channel_id": channel_id},
        )
    return row


class LineLinkRefused(Exception):
    """Linking did not happen; ``code`` says why (for the audit trail and the page)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def line_account_link(
    *,
    voucher: Voucher,
    code: str,
    redirect_uri: str,
    nonce: str,
    actor: Actor,
    ip: str | None,
) -> ContactPreference:
    """Finish LINE Login: exchange ``code``, verify the ID token, store the user id.

    The caller has already checked the ``state`` it kept in the session; ``nonce`` is the
    one kept with it. Linking from my page is the resident's consent to LINE messages (the
    button says so); unlinking, or leaving LINE out on the preferences form, withdraws it.
    """
    from booking.notifications.line_channel import line_credentials
    from booking.notifications.line_login import (
        IdTokenInvalid,
        LineLoginFailed,
        line_code_exchange,
        verify_line_id_token,
    )

    credentials = line_credentials()
    if credentials is None:
        raise LineLinkRefused("line.not_configured")
    try:
        id_token = line_code_exchange(
            code=code,
            redirect_uri=redirect_uri,
            channel_id=credentials.login_channel_id,
            channel_secret=credentials.login_channel_secret,
        )
        line_user_id = verify_line_id_token(
            id_token,
            channel_id=credentials.login_channel_id,
            channel_secret=credentials.login_channel_secret,
            nonce=nonce,
        )
    except (IdTokenInvalid, LineLoginFailed) as exc:
        record(
            action="notification.line_link_refused",
            actor=actor,
            target=voucher,
            ip=ip,
            details={"reason": exc.code},
        )
        raise LineLinkRefused(exc.code) from None
    now = timezone.now()
    with transaction.atomic():
        preference = contact_preferences_get(voucher=voucher)
        preference = ContactPreference.objects.select_for_update().get(pk=preference.pk)
        preference.voucher = voucher
        preference.line_user_id = _encrypt(voucher, "line_user_id", line_user_id)
        preference.line_linked_at = now
        preference.line_consented_at = now
        preference.save(
            update_fields=["line_user_id", "line_linked_at", "line_consented_at", "updated_at"]
        )
        record(action="notification.line_linked", actor=actor, target=voucher, ip=ip)
    return preference


def line_account_unlink(*, voucher: Voucher, actor: Actor, ip: str | None) -> None:
    """Forget the resident's LINE user id (and with it the LINE channel's consent)."""
    with transaction.atomic():
        updated = ContactPreference.objects.filter(
            voucher=voucher, line_user_id__isnull=False
        ).update(
            line_user_id=None,
            line_linked_at=None,
            line_consented_at=None,
            updated_at=timezone.now(),
        )
        if updated:
            record(action="notification.line_unlinked", actor=actor, target=voucher, ip=ip)


# --- Staff: sending again what failed or is in doubt ---------------------------------------------


def notification_resend(*, notification_id: int, actor: Actor, ip: str | None) -> Notification:
    """Queue a failed, unconfirmed or skipped message again (a person decided to).

    It keeps its idempotency key, so where the provider honours one (LINE) a copy it had
    accepted is still not delivered twice; for an ``unconfirmed`` email or SMS, the person
    accepts that the resident may get it twice. Audited.
    """
    resendable = ["failed", "unconfirmed", "skipped"]
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update()
            .filter(pk=notification_id, status__in=resendable)
            .first()
        )
        if row is None:
            raise ValidationError(_("このお知らせは再送できません。"), code="not_resendable")
        previous = row.status
        row.status = Notification.Status.PENDING
        row.attempts = 0
        row.not_before = None
        row.claim_token = None
        row.claimed_until = None
        row.save(
            update_fields=[
                "status",
                "attempts",
                "not_before",
                "claim_token",
                "claimed_until",
                "updated_at",
            ]
        )
        record(
            action="notification.resent",
            actor=actor,
            target=row,
            ip=ip,
            details={"previous_status": previous, "channel": row.channel, "kind": row.kind},
        )
        notifications_dispatch_on_commit([row.pk])
    return row
