"""Sending one outbox row: claim, call the provider, mark — exactly once per message.

The claim is a conditional UPDATE that commits before the provider is called, so two
workers never send the same row at the same time, and a worker that dies leaves a trace
(``sending`` with a lease). What happens to that trace once the lease has run out depends on
the provider:

- one that honours an idempotency key (LINE's ``X-Line-Retry-Key``) is asked again with the
  same key: if the first call got through, LINE answers 409 "already accepted" and nothing
  is delivered twice; if it did not, this call delivers it. Either way the row ends ``sent``.
- one that does not (SES, SNS) is not asked again: the row becomes ``unconfirmed`` with its
  reason, shown to staff, who decide. A second copy is never sent on its own.

The same holds for a call that fails in a way that leaves the outcome in doubt (SES or SNS
timing out after the request went out, a dropped connection, a 5xx: ``AmbiguousSendError``):
the row becomes ``unconfirmed`` at once. Only failures known to have happened before the
provider accepted the message (throttling, no connection made) are retried with backoff.

Call outside any transaction (Celery tasks run in autocommit): each step must be durable
before the next one starts.
"""

from __future__ import annotations

import enum
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from booking.models import Booking, ContactPreference, Notification, NotificationSettings
from booking.notifications.line_channel import line_credentials
from booking.notifications.providers import (
    AmbiguousSendError,
    OutgoingMessage,
    PermanentSendError,
    Provider,
    SendError,
    TransientSendError,
    provider_for,
)
from booking.notifications.ratelimit import rate_limit_take
from booking.notifications.rendering import render_message
from booking.services.notifications import (
    BOOKING_STATE_KINDS,
    WITHDRAWN_CANCELLED,
    WITHDRAWN_CHANGED,
    contact_value,
    notifications_paused,
)
from tenants.crypto import cipher_for
from tenants.db import current_municipality

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
DEFAULT_CLAIM_SECONDS = 120  # longer than the slowest provider call with its own retries
SWEEP_GRACE = timedelta(minutes=2)
SWEEP_LIMIT = 5000
NOTIFIED_STATUSES = ("active", "incident")
_RECIPIENT_COLUMN = {"email": "email", "sms": "phone", "line": "line_user_id"}
_FINAL = (
    Notification.Status.SENT,
    Notification.Status.FAILED,
    Notification.Status.UNCONFIRMED,
    Notification.Status.SKIPPED,
)


class Outcome(enum.Enum):
    SENT = "sent"
    ALREADY_DONE = "already_done"
    CLAIMED_ELSEWHERE = "claimed_elsewhere"
    NOT_DUE = "not_due"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    PAUSED = "paused"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    countdown: float = 0.0


def claim_seconds() -> int:
    return int(getattr(settings, "SESSHU_NOTIFICATION_CLAIM_SECONDS", DEFAULT_CLAIM_SECONDS))


def backoff_seconds(attempts: int) -> float:
    """30 s, 1 min, 2 min, ... capped at an hour, with ±10 % jitter."""
    base = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)
    return float(base * random.uniform(0.9, 1.1))  # noqa: S311 - jitter, not security


def _provider(channel: str) -> Provider:
    credentials = line_credentials() if channel == "line" else None
    token = credentials.messaging_access_token if credentials else None
    return provider_for(channel, line_access_token=token)


def _claim(notification_id: int, provider: Provider, now: datetime) -> uuid.UUID | Delivery:
    token = uuid.uuid4()
    claim = {
        "status": Notification.Status.SENDING,
        "claim_token": token,
        "claimed_until": now + timedelta(seconds=claim_seconds()),
        "attempts": F("attempts") + 1,
        "provider": provider.name,
    }
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    rows = Notification.objects.filter(pk=notification_id)
    if rows.filter(due, status=Notification.Status.PENDING).update(**claim):
        return token
    # Not pending: the claim of a sender that stopped, once its lease has run out?
    expired = rows.filter(status=Notification.Status.SENDING, claimed_until__lt=now)
    if provider.honours_idempotency_key:
        if expired.update(**claim):
            logger.warning("notification %s: claim expired, resent with its key", notification_id)
            return token
    elif expired.update(
        status=Notification.Status.UNCONFIRMED,
        claim_token=None,
        last_error=(
            "claim.expired: the sender stopped after claiming; the provider may have "
            "accepted it. Not resent automatically."
        ),
    ):
        logger.warning("notification %s: claim expired, marked unconfirmed", notification_id)
        return Delivery(Outcome.UNCONFIRMED)
    state = rows.values_list("status", "not_before").first()
    if state is None or state[0] in _FINAL:
        return Delivery(Outcome.ALREADY_DONE)
    if state[0] == Notification.Status.PENDING and state[1] is not None:
        return Delivery(Outcome.NOT_DUE, countdown=max((state[1] - now).total_seconds(), 0))
    return Delivery(Outcome.CLAIMED_ELSEWHERE)


def _finish(notification_id: int, token: uuid.UUID, **changes: object) -> bool:
    """Record a result, but only under our own claim: a sender whose lease ran out and was
    taken over must not overwrite what the newer claim records."""
    return bool(
        Notification.objects.filter(
            pk=notification_id, claim_token=token, status=Notification.Status.SENDING
        ).update(claim_token=None, claimed_until=None, **changes)
    )


def _stale_reason(row: Notification) -> str | None:
    """Why a message describing the booking (a confirmation, a reminder) is no longer true,
    or None. Checked under the claim, right before the provider call: the booking service
    withdraws pending rows when it cancels or moves a booking, but a row may already have
    been claimed (or queued by a reminder pass racing the cancellation)."""
    if row.kind not in BOOKING_STATE_KINDS or row.booking_id is None:
        return None
    booking = (
        Booking.objects.filter(pk=row.booking_id)
        .values_list("status", "slot_id", "slot__starts_at")
        .first()
    )
    if booking is None:
        return WITHDRAWN_CANCELLED
    status, slot_id, starts_at = booking
    if status == Booking.Status.CANCELLED:
        return WITHDRAWN_CANCELLED
    if status not in Booking.LIVE_STATUSES:
        return f"booking.{status}: the appointment is over; not sent"
    described_slot = row.context.get("slot_id")
    if described_slot is not None:
        moved = described_slot != slot_id
    else:
        # Rows written before the context named the slot: compare the appointment time.
        described_start = row.context.get("starts_at")
        moved = bool(described_start) and datetime.fromisoformat(described_start) != starts_at
    return WITHDRAWN_CHANGED if moved else None


def _message(row: Notification) -> OutgoingMessage | None:
    preference = (
        ContactPreference.objects.select_related("voucher")
        .filter(voucher_id=row.voucher_id)
        .first()
    )
    if preference is None or row.channel not in preference.consented_channels():
        return None
    recipient = contact_value(preference, _RECIPIENT_COLUMN[row.channel])
    if not recipient:
        return None
    municipality = current_municipality()
    rendered = render_message(
        kind=row.kind,
        channel=row.channel,
        language=preference.language,
        context=row.context,
        municipality_name=municipality.name,
    )
    if row.channel in ("sms", "line"):
        _refuse_personal_data(rendered.body, preference)
    settings_row = NotificationSettings.objects.filter(pk=NotificationSettings.SINGLETON_ID).first()
    if row.channel == "email":
        sender = (settings_row.email_from if settings_row else "") or str(
            getattr(settings, "SESSHU_NOTIFICATION_EMAIL_FROM", "")
        )
    else:
        sender = settings_row.sms_sender_id if settings_row and row.channel == "sms" else ""
    return OutgoingMessage(
        channel=row.channel,
        to=recipient,
        body=rendered.body,
        subject=rendered.subject,
        sender=sender,
        idempotency_key=str(row.idempotency_key),
    )


def _refuse_personal_data(body: str, preference: ContactPreference) -> None:
    """SMS and LINE carry the minimum: no name, birth date or voucher number, even if a
    municipality's own template were written to include them."""
    voucher = preference.voucher
    personal = cipher_for(current_municipality()).open_record(
        bytes(voucher.personal), table="booking_voucher", row_id=voucher.voucher_number
    )
    compact = "".join(body.split())
    needles = {voucher.voucher_number}
    for key in ("name", "name_kana"):
        value = personal.get(key)
        if value:
            needles.add("".join(value.split()))
    birth_date = personal.get("birth_date")
    if birth_date:
        year, month, day = birth_date.split("-")
        needles |= {
            birth_date,
            birth_date.replace("-", "/"),
            f"{int(year)}年{int(month)}月{int(day)}日",
        }
    if any(needle and needle in compact for needle in needles):
        raise PermanentSendError("content.personal_data", "the text names the resident")


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> Delivery:
    """Send one outbox row if it is due, and record the result. Safe to call any number of
    times, from any number of workers, for the same row."""
    now = now or timezone.now()
    if notifications_paused() or current_municipality().status not in NOTIFIED_STATUSES:
        return Delivery(Outcome.PAUSED)
    row = Notification.objects.filter(pk=notification_id).only("channel", "status").first()
    if row is None or row.status in _FINAL:
        return Delivery(Outcome.ALREADY_DONE)
    try:
        provider = _provider(row.channel)
    except PermanentSendError as exc:
        # No LINE channel configured: nothing to claim, the row fails with the reason.
        Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING).update(
            status=Notification.Status.FAILED, last_error=exc.reason
        )
        return Delivery(Outcome.FAILED)
    wait = rate_limit_take(provider.name)
    if wait:
        return Delivery(Outcome.RATE_LIMITED, countdown=wait)
    claimed = _claim(notification_id, provider, now)
    if isinstance(claimed, Delivery):
        return claimed
    token = claimed
    row = Notification.objects.select_related("voucher").get(pk=notification_id)
    try:
        stale = _stale_reason(row)
        if stale is not None:
            # dedupe_key released: a reminder pass may queue one for the booking's new slot.
            _finish(
                notification_id,
                token,
                status=Notification.Status.SKIPPED,
                last_error=stale,
                dedupe_key=None,
            )
            return Delivery(Outcome.SKIPPED)
        message = _message(row)
        if message is None:
            _finish(
                notification_id,
                token,
                status=Notification.Status.SKIPPED,
                last_error="consent.withdrawn: no consent or address for this channel",
            )
            return Delivery(Outcome.SKIPPED)
        result = provider.send(message)
    except TransientSendError as exc:
        return _after_transient_error(row, token, exc)
    except AmbiguousSendError as exc:
        _finish(
            notification_id, token, status=Notification.Status.UNCONFIRMED, last_error=exc.reason
        )
        logger.warning("notification %s: outcome unknown (%s), not resent", notification_id, exc)
        return Delivery(Outcome.UNCONFIRMED)
    except SendError as exc:
        _finish(notification_id, token, status=Notification.Status.FAILED, last_error=exc.reason)
        return Delivery(Outcome.FAILED)
    marked = _finish(
        notification_id,
        token,
        status=Notification.Status.SENT,
        sent_at=timezone.now(),
        provider_message_id=result.provider_message_id[:120],
        last_error="",
    )
    if not marked:
        # Our lease ran out mid-call and another sender took over: it records the result.
        logger.warning("notification %s: sent but the claim had moved on", notification_id)
    return Delivery(Outcome.SENT)


def _after_transient_error(row: Notification, token: uuid.UUID, exc: SendError) -> Delivery:
    if row.attempts >= MAX_ATTEMPTS:
        _finish(
            row.pk,
            token,
            status=Notification.Status.FAILED,
            last_error=f"attempts.exhausted after {row.attempts}: {exc.reason}"[:300],
        )
        return Delivery(Outcome.FAILED)
    countdown = backoff_seconds(row.attempts)
    _finish(
        row.pk,
        token,
        status=Notification.Status.PENDING,
        not_before=timezone.now() + timedelta(seconds=countdown),
        last_error=exc.reason,
    )
    return Delivery(Outcome.RETRY, countdown=countdown)


def notifications_defer(*, notification_ids: list[int], seconds: float) -> None:
    """Tell the sweeper these pending rows are handled by a delayed task."""
    Notification.objects.filter(pk__in=notification_ids, status=Notification.Status.PENDING).update(
        not_before=timezone.now() + timedelta(seconds=seconds)
    )


def notifications_due(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> list[int]:
    """Rows no task is known to be handling: pending and overdue by the grace period (a
    publish lost after commit, a retry task lost with its worker), or claimed with an
    expired lease (a sender that died)."""
    now = now or timezone.now()
    overdue = Q(status=Notification.Status.PENDING) & Q(due_at__lte=now - SWEEP_GRACE)
    stale = Q(status=Notification.Status.SENDING, claimed_until__lt=now)
    return list(
        Notification.objects.filter(status__in=["pending", "sending"])
        .annotate(due_at=Coalesce("not_before", "created_at"))
        .filter(overdue | stale)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
