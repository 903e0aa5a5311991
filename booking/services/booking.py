"""The one booking service: web, LINE and the call centre book, change and cancel through it.

Every rule is enforced here, server-side, for every channel (ARCHITECTURE.md "Booking"; the
Tokyo 2021 call centre booked slots not open to it): the slot is open and gives the channel
capacity, the booking window, the voucher, the dose, the age phases, the interval after the
previous dose, the same vaccine for the series, one live booking per voucher and dose.

Capacity is claimed with one conditional UPDATE inside the booking transaction (SQL below), so
two residents can never take the last place twice; the slot's CHECK constraints and the
partial unique index on (voucher, dose) make overbooking and double bookings impossible even
for code that bypasses this module.

Lock order, the same in all three operations so they cannot deadlock with one another: the
voucher row, then the booking row, then slot rows in ascending id, then (last, held only until
commit) the audit chain's advisory lock.

Who may use which channel: a resident books through the web or LINE, only for their own
voucher (``resident_actor``); staff book through the call centre only, so an operator can
never spend the places kept for the web, nor a resident those kept for the phone; the system
(demo data, benchmarks, tasks) may use any. Anything else is a ``PermissionDenied`` (audited
by ``audit.middleware`` when it reaches a view).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import (
    AgePhase,
    Booking,
    BookingPolicy,
    Channel,
    Slot,
    VaccineProduct,
    Voucher,
)
from booking.models.bookings import booking_number_new, made_in_current_schema
from booking.selectors.availability import availability_invalidate, mark_for
from booking.selectors.residents import DoseHistory, DoseTaken, dose_history, series_size
from sesshu import metrics
from tenants.crypto import cipher_for
from tenants.db import current_municipality

logger = logging.getLogger("sesshu.booking")

JAPAN = ZoneInfo("Asia/Tokyo")
VOUCHER_TABLE = "booking_voucher"
LIVE_BOOKING_CONSTRAINT = "one_live_booking_per_voucher_and_dose"
_NUMBER_ATTEMPTS = 5

# --- Refusals ---------------------------------------------------------------------------------


REFUSAL_CODES = (
    "full",
    "channel_closed",
    "slot_closed",
    "window_not_open",
    "window_closed",
    "not_eligible_yet",
    "too_soon_after_previous_dose",
    "different_product",
    "series_complete",
    "already_booked",
    "voucher_withdrawn",
    "cutoff_passed",
)


def _call_centre(phone: str) -> str:
    if phone:
        return _("コールセンター（電話 %(phone)s）") % {"phone": phone}
    return _("コールセンター")


def _refusal_message(code: str, values: dict[str, Any]) -> str:
    """What the resident reads: what happened and what to do next (UX.md)."""
    centre = _call_centre(str(values.get("phone") or ""))
    if code == "full":
        return _(
            "申し訳ありません。この予約枠はちょうど満員になりました。"
            "ほかの日時・会場をお選びください。取消が出ると空きが表示されます。"
        )
    if code == "channel_closed":
        return _(
            "この予約枠は、この受付方法では予約できません。"
            "ほかの日時・会場をお選びいただくか、%(centre)sにお問い合わせください。"
        ) % {"centre": centre}
    if code == "slot_closed":
        return _("この予約枠は受付を停止しています。ほかの日時・会場をお選びください。")
    if code == "window_not_open":
        return (
            _(
                "この日の予約はまだ始まっていません。予約は接種日の%(days)s日前から受け付けます。"
                "%(opens)s以降にもう一度お試しいただくか、もっと近い日をお選びください。"
            )
            % values
        )
    if code == "window_closed":
        return (
            _(
                "この日時の予約受付は終了しました（接種開始の%(hours)s時間前まで）。"
                "ほかの日時をお選びください。"
            )
            % values
        )
    if code == "not_eligible_yet":
        return _(
            "現在はまだ予約の対象ではありません。対象となる年齢と予約開始日は、"
            "市区町村のお知らせでご確認のうえ、開始日以降にご予約ください。"
            "ご不明な点は%(centre)sへお問い合わせください。"
        ) % {"centre": centre}
    if code == "too_soon_after_previous_dose" and "latest" in values:
        return (
            _(
                "%(following)s回目の予約との間を%(days)s日以上あける必要があります。"
                "%(latest)s以前の日時をお選びいただくか、先に%(following)s回目の予約を変更してください。"
            )
            % values
        )
    if code == "too_soon_after_previous_dose":
        return (
            _(
                "%(dose)s回目は、前の接種から%(days)s日以上あける必要があります。"
                "%(earliest)s以降の日時をお選びください。"
            )
            % values
        )
    if code == "different_product":
        return (
            _(
                "%(dose)s回目は、前の接種と同じワクチン（%(product)s）で予約してください。"
                "ワクチンで絞り込むと選びやすくなります。"
            )
            % values
        )
    if code == "series_complete":
        return _(
            "この接種券で予約できる回数の接種は、すでに済んでいるか予約済みです。"
            "追加の接種については市区町村のお知らせをご確認ください。"
        )
    if code == "already_booked":
        return _(
            "すでにご予約があります。予約の確認・変更・取消は「予約の確認」からできます。"
            "次の回は、いまの予約の接種が済んでからご予約ください。"
        )
    if code == "voucher_withdrawn":
        return _(
            "この接種券ではご予約いただけません。お手数ですが%(centre)sにお問い合わせください。"
        ) % {"centre": centre}
    if code == "cutoff_passed":
        return _(
            "締切（接種開始の%(hours)s時間前）を過ぎたため、この予約はここでは変更・取消できません。"
            "%(centre)sにお電話ください。"
        ) % {"hours": values.get("hours", ""), "centre": centre}
    raise ValueError(f"unknown refusal code {code!r}")


class BookingRefused(Exception):
    """A booking rule said no. ``code`` is for programs, ``message`` for the resident.

    ``dose`` and ``slot_id`` say which booking was refused when two are made together.
    """

    def __init__(
        self, code: str, *, dose: int | None = None, slot_id: int | None = None, **values: Any
    ) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        self.code = code
        self.dose = dose
        self.slot_id = slot_id
        self.message = _refusal_message(code, {"dose": dose, **values})
        super().__init__(code)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- Who, through which channel ---------------------------------------------------------------


def resident_actor(voucher: Voucher) -> Actor:
    """The actor for a logged-in resident acting on their own voucher."""
    return Actor.resident(voucher.pk)


def _check_channel(channel: str) -> str:
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    return channel


def _check_actor(actor: Actor, channel: str, voucher_id: int) -> None:
    if actor.kind == Actor.RESIDENT:
        if channel not in (Channel.WEB, Channel.LINE):
            raise PermissionDenied("a resident books through the web or LINE")
        if actor.id != str(voucher_id):
            raise PermissionDenied("a resident acts on their own voucher only")
    elif actor.kind == Actor.STAFF:
        if channel != Channel.CALL_CENTRE:
            raise PermissionDenied("staff book with the call centre's capacity")
    elif actor.kind != Actor.SYSTEM:
        raise PermissionDenied(f"{actor.kind} may not book")


def _check_municipality(*instances: Any) -> None:
    for instance in instances:
        if instance is not None and not made_in_current_schema(instance):
            raise PermissionDenied(
                f"{type(instance).__name__} {instance.pk} is not of the current municipality"
            )


# --- Capacity ---------------------------------------------------------------------------------
# Column names come from this fixed table, never from input. Each claim is a single statement:
# the row lock it takes serialises concurrent claims on the slot, and the WHERE clause is
# re-checked against the committed row, so the last place goes to exactly one transaction.

_CLAIM_SQL = {
    channel: (
        f"UPDATE booking_slot SET booked_{channel} = booked_{channel} + 1 "  # noqa: S608
        f"WHERE id = %s AND status = 'open' AND booked_{channel} < capacity_{channel} "
        f"RETURNING booked_{channel}, capacity_{channel}"
    )
    for channel in Channel.values
}
_RELEASE_SQL = {
    channel: (
        f"UPDATE booking_slot SET booked_{channel} = booked_{channel} - 1 "  # noqa: S608
        f"WHERE id = %s AND booked_{channel} > 0 "
        f"RETURNING booked_{channel}, capacity_{channel}"
    )
    for channel in Channel.values
}


@dataclass
class _Marks:
    """Slots whose ◎○△× changed in this transaction: the cache to drop on commit."""

    changed: dict[str, set[date]] = field(default_factory=dict)

    def note(self, channel: str, slot: Slot, before: int, after: int, capacity: int) -> None:
        if mark_for(capacity - before, capacity) != mark_for(capacity - after, capacity):
            self.changed.setdefault(channel, set()).add(_day_of(slot.starts_at))

    def invalidate_on_commit(self) -> None:
        for channel, days in self.changed.items():
            transaction.on_commit(
                partial(availability_invalidate, channels=[channel], days=sorted(days))
            )


def slot_claim_capacity(*, slot: Slot, channel: str, marks: _Marks | None = None) -> bool:
    """Take one place of ``channel`` in ``slot``; False when none is left or it is not open.

    Call inside the booking transaction: a rollback gives the place back.
    """
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL[_check_channel(channel)], [slot.pk])
        row = cursor.fetchone()
    if row is None:
        return False
    booked, capacity = row
    setattr(slot, f"booked_{channel}", booked)
    if marks is not None:
        marks.note(channel, slot, booked - 1, booked, capacity)
    return True


def slot_release_capacity(*, slot: Slot, channel: str, marks: _Marks | None = None) -> None:
    """Give back one place of ``channel`` in ``slot``. Call inside the booking transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL[_check_channel(channel)], [slot.pk])
        row = cursor.fetchone()
    if row is None:
        # The counter is already 0: someone changed it by hand. The booking is released
        # anyway; the count cannot go below zero (CHECK) and the drift is logged.
        logger.error("slot %s: %s counter already 0 when releasing a booking", slot.pk, channel)
        return
    booked, capacity = row
    setattr(slot, f"booked_{channel}", booked)
    if marks is not None:
        marks.note(channel, slot, booked + 1, booked, capacity)


# --- Checks -----------------------------------------------------------------------------------


def _day_of(moment: datetime) -> date:
    return moment.astimezone(JAPAN).date()


def _closes_at(slot: Slot, policy: BookingPolicy) -> datetime:
    return slot.starts_at - timedelta(hours=policy.closes_hours_before)


def _opens_at(slot: Slot, policy: BookingPolicy) -> datetime:
    return slot.starts_at - timedelta(days=policy.opens_days_ahead)


@dataclass(frozen=True)
class _Context:
    """What every check of one operation needs, loaded once."""

    now: datetime
    policy: BookingPolicy
    channel: str
    voucher: Voucher

    @property
    def phone(self) -> str:
        return self.policy.call_centre_phone


def _lock_voucher(voucher_id: int) -> Voucher:
    return (
        Voucher.objects.select_for_update()
        .only("id", "voucher_number", "status", "dose", "personal")
        .get(pk=voucher_id)
    )


def _load_slot(slot_id: int) -> Slot:
    slot = Slot.objects.select_related("venue", "product").filter(pk=slot_id).first()
    if slot is None:
        # Removed by staff while the resident was on the confirmation page.
        raise BookingRefused("slot_closed", slot_id=slot_id)
    return slot


def _check_slot(ctx: _Context, slot: Slot, dose: int) -> None:
    """The slot is open to this channel now (slot_closed, channel_closed, the window)."""
    refusal = partial(BookingRefused, dose=dose, slot_id=slot.pk, phone=ctx.phone)
    if slot.status != Slot.Status.OPEN or not slot.venue.is_open or not slot.product.active:
        raise refusal("slot_closed")
    if slot.capacity(ctx.channel) <= 0:
        raise refusal("channel_closed")
    opens = _opens_at(slot, ctx.policy)
    if ctx.now < opens:
        raise refusal(
            "window_not_open",
            days=ctx.policy.opens_days_ahead,
            opens=_date_text(opens.astimezone(JAPAN).date()),
        )
    if ctx.now > _closes_at(slot, ctx.policy):
        raise refusal("window_closed", hours=ctx.policy.closes_hours_before)


def _date_text(day: date) -> str:
    weekdays = "月火水木金土日"
    return f"{day.month}月{day.day}日（{weekdays[day.weekday()]}）"


def _birth_date(voucher: Voucher) -> date | None:
    personal = cipher_for(current_municipality()).open_record(
        bytes(voucher.personal), table=VOUCHER_TABLE, row_id=voucher.voucher_number
    )
    text = personal.get("birth_date")
    return date.fromisoformat(text) if text else None


def age_on(birth_date: date, day: date) -> int:
    """Completed years on ``day``: the birthday itself counts."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def _check_eligible(ctx: _Context, slot: Slot, dose: int, birth_date: date | None) -> None:
    """Old enough for the vaccine on the day, and inside an age phase that has opened."""
    refusal = partial(BookingRefused, "not_eligible_yet", dose=dose, slot_id=slot.pk)
    if birth_date is None:
        raise refusal(phone=ctx.phone)
    age = age_on(birth_date, _day_of(slot.starts_at))
    if age < slot.product.minimum_age:
        raise refusal(phone=ctx.phone)
    if not AgePhase.objects.filter(opens_at__lte=ctx.now, minimum_age__lte=age).exists():
        raise refusal(phone=ctx.phone)


def _check_follows(
    slot: Slot, dose: int, previous: DoseTaken | None, *, previous_product: VaccineProduct
) -> None:
    """Same vaccine as the dose before, and far enough after it."""
    if previous is None:
        return
    if slot.product_id != previous.product_id:
        raise BookingRefused(
            "different_product", dose=dose, slot_id=slot.pk, product=previous_product.name
        )
    earliest = previous.day + timedelta(days=previous_product.interval_days)
    if _day_of(slot.starts_at) < earliest:
        raise BookingRefused(
            "too_soon_after_previous_dose",
            dose=dose,
            slot_id=slot.pk,
            days=previous_product.interval_days,
            earliest=_date_text(earliest),
        )


def _check_precedes(slot: Slot, dose: int, following: DoseTaken | None) -> None:
    """Moving a dose must leave the next, already booked, dose far enough after it."""
    if following is None:
        return
    if slot.product_id != following.product_id:
        product = _product(following.product_id, slot)
        raise BookingRefused("different_product", dose=dose, slot_id=slot.pk, product=product.name)
    latest = following.day - timedelta(days=slot.product.interval_days)
    if _day_of(slot.starts_at) > latest:
        raise BookingRefused(
            "too_soon_after_previous_dose",
            dose=dose,
            slot_id=slot.pk,
            days=slot.product.interval_days,
            following=dose + 1,
            latest=_date_text(latest),
        )


def _product(product_id: int, *candidates: Slot) -> VaccineProduct:
    for slot in candidates:
        if slot.product_id == product_id:
            return slot.product
    return VaccineProduct.objects.get(pk=product_id)


def _choose_dose(ctx: _Context, history: DoseHistory, requested: int | None, slot: Slot) -> int:
    """The dose to book: the next one, refusing a second live booking and a done series."""
    dose = history.next_dose
    if requested is not None and requested != dose:
        if requested in history.doses or requested < history.first_dose:
            raise BookingRefused("already_booked", dose=requested, phone=ctx.phone)
        raise BookingRefused("not_eligible_yet", dose=requested, phone=ctx.phone)
    # One booking at a time: the next dose is booked once the previous one was given, unless
    # the municipality books the series together (then its date counts as the previous dose).
    if history.pending and not ctx.policy.book_series_together:
        raise BookingRefused("already_booked", dose=dose, phone=ctx.phone)
    previous = history.previous
    product = _product(previous.product_id, slot) if previous is not None else slot.product
    if dose > series_size(product, history):
        raise BookingRefused("series_complete", dose=dose, phone=ctx.phone)
    return dose


# --- The series booked together --------------------------------------------------------------


@dataclass(frozen=True)
class SeriesTogether:
    """The dose booked with the first one when the municipality books the series together:
    which dose, of which vaccine, and the first day it may be (the vaccine's interval after
    the first slot's day). The booking service checks it all again when both are booked."""

    first_dose: int
    second_dose: int
    product: VaccineProduct
    earliest_day: date


def series_together_for(voucher: Voucher, first_slot: Slot) -> SeriesTogether | None:
    """What to book with ``first_slot`` as the voucher's next dose, or None when it is booked
    alone: the policy books one dose at a time, the next dose is not the first of the
    voucher's series, or the vaccine has no further dose."""
    if not BookingPolicy.current().book_series_together:
        return None
    history = dose_history(voucher)
    if history.doses:
        return None
    dose = history.next_dose
    if dose + 1 > series_size(first_slot.product, history):
        return None
    return SeriesTogether(
        first_dose=dose,
        second_dose=dose + 1,
        product=first_slot.product,
        earliest_day=_day_of(first_slot.starts_at)
        + timedelta(days=first_slot.product.interval_days),
    )


# --- Booking ----------------------------------------------------------------------------------


def _notify(kind: str, booking: Booking, extra: dict[str, Any] | None = None) -> None:
    """The one call into notifications: an outbox row in this transaction (sent on commit)."""
    from booking.services.notifications import notification_enqueue

    notification_enqueue(kind=kind, booking=booking, extra=extra)


def _withdraw_notices(booking: Booking, *, because: str) -> None:
    """Pending confirmations and reminders that describe the booking as it no longer is."""
    from booking.services.notifications import (
        WITHDRAWN_CANCELLED,
        WITHDRAWN_CHANGED,
        notifications_withdraw_for_booking,
    )

    reason = WITHDRAWN_CANCELLED if because == "cancelled" else WITHDRAWN_CHANGED
    notifications_withdraw_for_booking(booking=booking, reason=reason)


def _constraint_name(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _with_fresh_number(operation: Callable[[], Booking]) -> Booking:
    """Run ``operation`` in its own transaction; retry it when a new booking number was
    already taken (50 random bits: it will not happen twice)."""
    for _attempt in range(_NUMBER_ATTEMPTS):
        try:
            with transaction.atomic():
                return operation()
        except IntegrityError as exc:
            constraint = _constraint_name(exc)
            if constraint == LIVE_BOOKING_CONSTRAINT:
                # Another transaction booked this dose in between (the voucher lock makes
                # that rare; code outside this service does not take it).
                raise BookingRefused("already_booked") from exc
            if constraint is None or "booking_number" not in constraint:
                raise
    raise RuntimeError("could not draw an unused booking number")


def _insert_booking(
    *,
    voucher: Voucher,
    slot: Slot,
    dose: int,
    channel: str,
    actor: Actor,
    linked_to_id: int | None,
) -> Booking:
    booking = Booking(
        booking_number=booking_number_new(),
        voucher=voucher,
        slot=slot,
        dose=dose,
        channel=channel,
        status=Booking.Status.ACTIVE,
        linked_to_id=linked_to_id,
        actor_kind=actor.kind,
        actor_id=actor.id,
    )
    booking.save(force_insert=True)
    return booking


def booking_create(
    *,
    voucher: Voucher,
    slot: Slot,
    channel: str,
    actor: Actor,
    ip: str | None = None,
    dose: int | None = None,
    second_slot: Slot | None = None,
) -> Booking:
    """Book the voucher's next dose in ``slot`` with ``channel``'s capacity.

    ``second_slot`` books the following dose too, in the same transaction, when the policy
    books the series together (the returned booking's ``linked`` holds it). ``dose`` is for
    the call centre's checks: it must be the next dose. Raises BookingRefused.
    """
    channel = _check_channel(channel)
    _check_actor(actor, channel, voucher.pk)
    _check_municipality(voucher, slot, second_slot)

    def create() -> Booking:
        ctx = _Context(timezone.now(), BookingPolicy.current(), channel, _lock_voucher(voucher.pk))
        if ctx.voucher.status == Voucher.Status.WITHDRAWN:
            raise BookingRefused("voucher_withdrawn", phone=ctx.phone)
        first = _load_slot(slot.pk)
        history = dose_history(ctx.voucher)
        first_dose = _choose_dose(ctx, history, dose, first)
        birth_date = _birth_date(ctx.voucher)
        plan: list[tuple[Slot, int]] = [(first, first_dose)]
        _check_eligible(ctx, first, first_dose, birth_date)
        _check_slot(ctx, first, first_dose)
        previous = history.previous
        if previous is not None:
            _check_follows(
                first, first_dose, previous, previous_product=_product(previous.product_id, first)
            )
        if second_slot is not None:
            second_dose = first_dose + 1
            if not ctx.policy.book_series_together:
                raise ValueError("second_slot is for municipalities that book the series together")
            if second_dose > series_size(first.product, history):
                raise ValueError("the vaccine's series has no further dose to book together")
            second = _load_slot(second_slot.pk)
            _check_slot(ctx, second, second_dose)
            _check_eligible(ctx, second, second_dose, birth_date)
            stand_in = DoseTaken(first_dose, first.product_id, _day_of(first.starts_at), False)
            _check_follows(second, second_dose, stand_in, previous_product=first.product)
            plan.append((second, second_dose))

        # Booked together, a dose follows the live booking of the dose before it even when
        # booked later on its own (after cancelling just that dose): cancelling the first
        # then cancels it too, instead of leaving it behind and making the next dose the 3rd.
        follows_booking_id = (
            previous.booking_id
            if ctx.policy.book_series_together and previous is not None and not previous.given
            else None
        )
        marks = _Marks()
        for claimed, claimed_dose in sorted(plan, key=lambda item: item[0].pk):
            if not slot_claim_capacity(slot=claimed, channel=channel, marks=marks):
                raise _refusal_after_failed_claim(ctx, claimed, claimed_dose)
        bookings: list[Booking] = []
        for planned, planned_dose in plan:
            bookings.append(
                _insert_booking(
                    voucher=ctx.voucher,
                    slot=planned,
                    dose=planned_dose,
                    channel=channel,
                    actor=actor,
                    linked_to_id=bookings[-1].pk if bookings else follows_booking_id,
                )
            )
        for booking in bookings:
            _notify("booking_created", booking)
        metrics.booking_created(channel, len(bookings))
        for booking in bookings:
            record(
                action="booking.created",
                actor=actor,
                target=booking,
                ip=ip,
                details={
                    "channel": channel,
                    "dose": booking.dose,
                    "slot": booking.slot_id,
                    "linked_to": booking.linked_to_id,
                },
            )
        marks.invalidate_on_commit()
        return bookings[0]

    return _with_fresh_number(create)


def _refusal_after_failed_claim(ctx: _Context, slot: Slot, dose: int) -> BookingRefused:
    """The claim found no place: full, unless the slot was closed in the meantime."""
    status = Slot.objects.filter(pk=slot.pk).values_list("status", flat=True).first()
    code = "full" if status == Slot.Status.OPEN else "slot_closed"
    return BookingRefused(code, dose=dose, slot_id=slot.pk, phone=ctx.phone)


# --- Change -----------------------------------------------------------------------------------


def _lock_booking(booking_id: int) -> Booking:
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("slot__venue", "slot__product")
        .get(pk=booking_id)
    )


def _check_same_voucher(booking: Booking, voucher: Voucher) -> None:
    if booking.voucher_id != voucher.pk:
        raise PermissionDenied("the booking changed hands while it was being loaded")


def _check_changeable(ctx: _Context, booking: Booking, actor: Actor, *, late_allowed: bool) -> None:
    if booking.status != Booking.Status.ACTIVE:
        raise BookingRefused(
            "cutoff_passed",
            dose=booking.dose,
            hours=ctx.policy.closes_hours_before,
            phone=ctx.phone,
        )
    if ctx.now > _closes_at(booking.slot, ctx.policy) and not late_allowed:
        raise BookingRefused(
            "cutoff_passed",
            dose=booking.dose,
            slot_id=booking.slot_id,
            hours=ctx.policy.closes_hours_before,
            phone=ctx.phone,
        )


def booking_change(
    *, booking: Booking, slot: Slot, channel: str, actor: Actor, ip: str | None = None
) -> Booking:
    """Move a live booking to ``slot``; all or nothing, and the 予約番号 stays the same.

    The booking row is moved rather than replaced: the resident keeps the number they wrote
    down, and the one-live-booking-per-dose constraint holds throughout because the row never
    stops being live. The new place is claimed (from ``channel``) and the old one released
    (to the channel it was booked through) in the same transaction, so if the new slot is
    gone the old booking is untouched. Refused after the cut-off, for everyone: the call
    centre can cancel late and book anew. The previous slot stays in the audit trail.
    """
    channel = _check_channel(channel)
    _check_actor(actor, channel, booking.voucher_id)
    _check_municipality(booking, slot)

    def change() -> Booking:
        ctx = _Context(
            timezone.now(), BookingPolicy.current(), channel, _lock_voucher(booking.voucher_id)
        )
        current = _lock_booking(booking.pk)
        _check_same_voucher(current, ctx.voucher)
        _check_changeable(ctx, current, actor, late_allowed=False)
        if ctx.voucher.status == Voucher.Status.WITHDRAWN:
            raise BookingRefused("voucher_withdrawn", phone=ctx.phone)
        if current.slot_id == slot.pk and current.channel == channel:
            return current
        target = _load_slot(slot.pk)
        _check_eligible(ctx, target, current.dose, _birth_date(ctx.voucher))
        _check_slot(ctx, target, current.dose)
        history = dose_history(ctx.voucher)
        previous = history.doses.get(current.dose - 1)
        if previous is not None:
            _check_follows(
                target,
                current.dose,
                previous,
                previous_product=_product(previous.product_id, target, current.slot),
            )
        _check_precedes(target, current.dose, history.doses.get(current.dose + 1))

        marks = _Marks()
        old_slot, old_channel = current.slot, current.channel
        steps: list[tuple[int, Callable[[], None]]] = [
            (target.pk, partial(_claim_or_refuse, ctx, target, current.dose, marks)),
            (
                old_slot.pk,
                partial(slot_release_capacity, slot=old_slot, channel=old_channel, marks=marks),
            ),
        ]
        # Slot rows in id order (see the module's lock order); a failed claim rolls back a
        # release already made, so the order does not change the outcome.
        for _slot_id, step in sorted(steps, key=lambda item: item[0]):
            step()
        previous_starts_at = old_slot.starts_at
        current.slot = target
        current.channel = channel
        current.changed_at = ctx.now
        current.save(update_fields=["slot", "channel", "changed_at"])
        metrics.booking_changed(channel)
        _withdraw_notices(current, because="changed")
        _notify(
            "booking_changed",
            current,
            extra={"previous_starts_at": previous_starts_at.astimezone(JAPAN).isoformat()},
        )
        record(
            action="booking.changed",
            actor=actor,
            target=current,
            ip=ip,
            details={
                "channel": channel,
                "dose": current.dose,
                "slot": target.pk,
                "previous_slot": old_slot.pk,
                "previous_channel": old_channel,
            },
        )
        marks.invalidate_on_commit()
        return current

    with transaction.atomic():
        return change()


def _claim_or_refuse(ctx: _Context, slot: Slot, dose: int, marks: _Marks) -> None:
    if not slot_claim_capacity(slot=slot, channel=ctx.channel, marks=marks):
        raise _refusal_after_failed_claim(ctx, slot, dose)


# --- Cancel -----------------------------------------------------------------------------------


def booking_cancel(
    *,
    booking: Booking,
    channel: str,
    actor: Actor,
    ip: str | None = None,
    notification_kind: str = "booking_cancelled",
    notification_extra: dict[str, Any] | None = None,
) -> Booking:
    """Cancel a live booking and give its place back to the channel it was booked through.

    Residents cannot cancel after the cut-off; the call centre and staff can (an elderly
    resident phoning on the morning of the appointment). With ``policy.cancel_cascades``
    the doses booked together with it (``linked``) are cancelled too. Cancelling a cancelled
    booking returns it unchanged.

    The resident is told with a ``notification_kind`` message about ``booking`` (a slot
    cancelled by the municipality says so, and why, instead of a plain 予約取消) and a
    ``booking_cancelled`` one about each dose cancelled with it.
    """
    channel = _check_channel(channel)
    _check_actor(actor, channel, booking.voucher_id)
    _check_municipality(booking)

    def cancel() -> Booking:
        ctx = _Context(
            timezone.now(), BookingPolicy.current(), channel, _lock_voucher(booking.voucher_id)
        )
        current = _lock_booking(booking.pk)
        _check_same_voucher(current, ctx.voucher)
        if current.status == Booking.Status.CANCELLED:
            return current
        _check_changeable(ctx, current, actor, late_allowed=actor.kind != Actor.RESIDENT)
        marks = _Marks()
        cancelled = [current]
        if ctx.policy.cancel_cascades:
            cancelled += _linked_live(current)
        for each in sorted(cancelled, key=lambda b: b.slot_id):
            slot_release_capacity(slot=each.slot, channel=each.channel, marks=marks)
        for each in cancelled:
            each.status = Booking.Status.CANCELLED
            each.cancelled_at = ctx.now
            each.save(update_fields=["status", "cancelled_at"])
        for each in cancelled:
            _withdraw_notices(each, because="cancelled")
            if each is current:
                _notify(notification_kind, each, notification_extra)
            else:
                _notify("booking_cancelled", each)
        metrics.booking_cancelled(channel, len(cancelled))
        for each in cancelled:
            record(
                action="booking.cancelled",
                actor=actor,
                target=each,
                ip=ip,
                details={
                    "channel": channel,
                    "dose": each.dose,
                    "slot": each.slot_id,
                    "booked_channel": each.channel,
                    "cascade_of": None if each is current else current.pk,
                },
            )
        marks.invalidate_on_commit()
        return current

    with transaction.atomic():
        return cancel()


def _linked_live(first: Booking) -> list[Booking]:
    """Active bookings made together with ``first``, following the chain (dose 2, 3, ...)."""
    found: list[Booking] = []
    frontier: Iterable[int] = [first.pk]
    while frontier:
        batch = list(
            Booking.objects.select_for_update(of=("self",))
            .select_related("slot__venue", "slot__product")
            .filter(linked_to_id__in=list(frontier), status=Booking.Status.ACTIVE)
            .order_by("dose")
        )
        found += batch
        frontier = [b.pk for b in batch]
    return found
