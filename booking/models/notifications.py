"""Notifications: the resident's contact preferences, the outbox, and per-municipality settings.

Everything here lives in the municipality's schema. Addresses (email, phone, LINE user id)
and the LINE channel's secrets are encrypted field by field under the municipality's key,
bound to this table, the row's stable id and the column. The outbox never holds an address:
the sender resolves it from the preferences at send time, so a withdrawn consent stops a
message that was still queued, and the outbox can be shown to staff as it is.
"""

from __future__ import annotations

import uuid
from datetime import time

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from booking.models.bookings import Booking
from booking.models.vouchers import Voucher


class NotificationChannel(models.TextChoices):
    EMAIL = "email", _("メール")
    SMS = "sms", _("SMS")
    LINE = "line", _("LINE")


class NotificationKind(models.TextChoices):
    BOOKING_CREATED = "booking_created", _("予約完了")
    BOOKING_CHANGED = "booking_changed", _("予約変更")
    BOOKING_CANCELLED = "booking_cancelled", _("予約取消")
    REMINDER = "reminder", _("前日のお知らせ")
    SLOT_CANCELLED = "slot_cancelled", _("予約枠の中止")
    INCIDENT_NOTICE = "incident_notice", _("重要なお知らせ")


class Language(models.TextChoices):
    JA = "ja", "日本語"
    EN = "en", "English"


class ContactPreference(models.Model):
    """How one voucher holder wants to be told: channels consented, addresses, language.

    A channel is in use only with both its consent timestamp and its address present. The
    encrypted columns are bound to the voucher number (``row_id``), which never changes.
    """

    holds_personal_data = True
    TABLE = "booking_contactpreference"

    voucher = models.OneToOneField(
        Voucher, on_delete=models.CASCADE, related_name="contact_preference"
    )
    email = models.BinaryField(null=True)
    phone = models.BinaryField(null=True)  # E.164, e.g. +819012345678
    line_user_id = models.BinaryField(null=True)
    email_consented_at = models.DateTimeField(null=True, blank=True)
    sms_consented_at = models.DateTimeField(null=True, blank=True)
    line_consented_at = models.DateTimeField(null=True, blank=True)
    line_linked_at = models.DateTimeField(null=True, blank=True)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.JA)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"contact preference of voucher {self.voucher_id}"

    @staticmethod
    def reachable() -> models.Q:
        """The preferences with at least one channel that may be used now (the rule of
        ``consented_channels``, as a query)."""
        return (
            models.Q(email_consented_at__isnull=False, email__isnull=False)
            | models.Q(sms_consented_at__isnull=False, phone__isnull=False)
            | models.Q(line_consented_at__isnull=False, line_user_id__isnull=False)
        )

    def consented_channels(self) -> list[str]:
        """Channels that may be used now, in a fixed order."""
        channels = []
        if self.email_consented_at and self.email:
            channels.append(NotificationChannel.EMAIL.value)
        if self.sms_consented_at and self.phone:
            channels.append(NotificationChannel.SMS.value)
        if self.line_consented_at and self.line_user_id:
            channels.append(NotificationChannel.LINE.value)
        return channels


class Notification(models.Model):
    """One message on one channel: the transactional outbox.

    Written inside the transaction that causes it (booking, change, cancellation), so it
    exists exactly when that change does. Sending follows a claim-then-send protocol:

    ``pending`` --claim--> ``sending`` --provider accepted--> ``sent``
                              |--transient error--> ``pending`` (``not_before`` = backoff)
                              |--outcome unknown (SES/SNS timeout, 5xx)--> ``unconfirmed``
                              |--permanent error / attempts used up--> ``failed``
                              '--claim expired--> resent with the same ``idempotency_key``
                                 where the provider honours one (LINE), else ``unconfirmed``

    ``unconfirmed`` means the provider may or may not have accepted it, and a provider
    without an idempotency key (SES, SNS) would deliver a second copy if asked again: a
    worker stopped after claiming and before recording the result, or the call failed after
    the request went out (a read timeout, a dropped connection, a 5xx). Staff see it in the
    console and decide; it is never resent on its own.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("送信待ち")
        SENDING = "sending", _("送信中")
        SENT = "sent", _("送信済み")
        FAILED = "failed", _("送信失敗")
        UNCONFIRMED = "unconfirmed", _("送信結果不明")
        SKIPPED = "skipped", _("送信せず")

    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices)
    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="notifications")
    booking = models.ForeignKey(
        Booking, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications"
    )
    # Set where a message must exist at most once (a reminder: once per booking, appointment
    # date and channel); the unique constraint makes re-queuing a day's reminders harmless.
    dedupe_key = models.CharField(max_length=80, null=True, blank=True, unique=True)
    # What the template needs, nothing personal: booking number, venue, times, extras.
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # Sent to the provider where it honours one (LINE's X-Line-Retry-Key), and in any case
    # the identity of this message across retries and workers.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    provider_message_id = models.CharField(max_length=120, blank=True)
    # Why it failed or was skipped, for staff: a code and a short text, never an address.
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["status", "not_before"],
                name="notification_due",
                condition=Q(status__in=["pending", "sending"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="notification_sent_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"notification {self.pk} ({self.kind}, {self.channel})"


class NotificationSettings(models.Model):
    """The municipality's notification switches: one row per schema (``pk`` = 1)."""

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID)
    # Local time (Asia/Tokyo) the day before an appointment at which reminders go out.
    reminder_time = models.TimeField(_("前日通知の時刻"), default=time(9, 0))
    reminders_enabled = models.BooleanField(_("前日通知を送る"), default=True)
    # The pause switch: nothing is sent while on; messages wait (they are not dropped).
    paused = models.BooleanField(_("送信を一時停止"), default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    email_from = models.EmailField(_("送信元メールアドレス"), blank=True)
    sms_sender_id = models.CharField(_("SMS送信者ID"), max_length=11, blank=True)
    contact_phone = models.CharField(_("問い合わせ電話番号"), max_length=20, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="notification_settings_singleton")
        ]

    def __str__(self) -> str:
        return "notification settings"


class LineChannel(models.Model):
    """The municipality's LINE channels: Login (to link accounts) and Messaging API (push).

    Both must belong to the same LINE provider, so that a user id seen at login is the one
    the Messaging API pushes to. The secret and the access token are encrypted (bound to this
    table, row 1 and their column); the Login channel id is public (it is in the login URL).
    """

    SINGLETON_ID = 1
    TABLE = "booking_linechannel"

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID)
    login_channel_id = models.CharField(_("LINEログインのチャネルID"), max_length=20)
    login_channel_secret = models.BinaryField()
    messaging_access_token = models.BinaryField()
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="line_channel_singleton")]

    def __str__(self) -> str:
        return f"LINE channel {self.login_channel_id}"


class NotificationTemplate(models.Model):
    """A municipality's own wording for one kind, channel and language.

    Without one, the packaged template (booking/templates/booking/notifications/) is used.
    Rendered with the same minimal context as the packaged one, autoescaped for email HTML
    never: every message is plain text.
    """

    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices)
    language = models.CharField(max_length=2, choices=Language.choices)
    subject = models.CharField(_("件名（メールのみ）"), max_length=200, blank=True)
    body = models.TextField(_("本文"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "channel", "language"], name="one_template_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"template {self.kind}/{self.channel}/{self.language}"
