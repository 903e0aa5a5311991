"""Cancelling a slot (中止): its bookings are cancelled through the one booking service, with
the call centre's channel and the staff member as actor, and each resident is sent a
``slot_cancelled`` message, in one transaction. Locks follow the booking service's order
(vouchers, bookings, slots): the vouchers of the slot's bookings are locked before the slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from audit.models import Event
from booking.models import (
    Booking,
    Channel,
    ContactPreference,
    Notification,
    Slot,
    Venue,
    Voucher,
)
from booking.models.bookings import booking_number_display
from booking.selectors.marks import bookings_marked
from booking.services.booking import BookingRefused, booking_cancel
from booking.services.planning.base import (
    PlanningRefused,
    check_slot,
    invalidate_on_commit,
    slot_day,
)
from booking.services.reception import day_bounds


@dataclass(frozen=True)
class SlotCancellation:
    slot: Slot
    bookings_cancelled: int
    linked_cancelled: int  # later doses booked together, cancelled with them (policy)
    notifications: int
    not_told: int = 0  # bookings whose resident registered no way to be told: to phone


def linked_active_bookings(booking_ids: Sequence[int]) -> list[int]:
    """Active bookings of later doses made together with these (the chain dose 2, 3, ...):
    the booking service cancels them too when the policy says so."""
    found: list[int] = []
    frontier = list(booking_ids)
    while frontier:
        frontier = list(
            Booking.objects.filter(
                linked_to_id__in=frontier, status=Booking.Status.ACTIVE
            ).values_list("pk", flat=True)
        )
        found += frontier
    return found


@dataclass(frozen=True)
class AffectedBooking:
    booking_number: str
    voucher_number: str
    dose: int
    channel: str
    checked_in: bool
    # Before: whether the resident registered a way to be told; after: whether they were.
    told: bool = False
    # After: one not told, since phoned by the call centre (when it was marked so) ...
    phoned_at: datetime | None = None
    # ... or booked that dose again meanwhile (nothing left to tell them).
    rebooked: bool = False
    pk: int | None = None
    voucher_id: int | None = None

    @property
    def to_phone(self) -> bool:
        return not self.told and self.phoned_at is None and not self.rebooked


@dataclass(frozen=True)
class LinkedBooking:
    booking_number: str
    dose: int
    starts_at: datetime
    venue_name: str


@dataclass(frozen=True)
class SlotCancelImpact:
    bookings: tuple[AffectedBooking, ...]
    linked: tuple[LinkedBooking, ...]

    @property
    def has_checked_in(self) -> bool:
        return any(b.checked_in for b in self.bookings)


def slot_cancel_impact(*, slot: Slot, actor: Actor, ip: str | None = None) -> SlotCancelImpact:
    """Who a cancellation would reach, by numbers only (booking and voucher numbers, never a
    name), for the confirmation page. Showing voucher numbers is a read of residents' data,
    so it is audited with the slot and how many were listed."""
    check_slot(slot)
    live = list(
        Booking.objects.filter(slot_id=slot.pk, status__in=Booking.LIVE_STATUSES)
        .order_by("pk")
        .values_list(
            "pk",
            "booking_number",
            "voucher__voucher_number",
            "dose",
            "channel",
            "status",
            "voucher_id",
        )
    )
    linked = (
        Booking.objects.filter(pk__in=linked_active_bookings([row[0] for row in live]))
        .order_by("slot__starts_at")
        .values_list("booking_number", "dose", "slot__starts_at", "slot__venue__name")
    )
    reachable = _reachable_vouchers({row[6] for row in live})
    impact = SlotCancelImpact(
        bookings=tuple(
            AffectedBooking(
                booking_number_display(number),
                voucher_number,
                dose,
                channel,
                status == Booking.Status.CHECKED_IN,
                voucher_id in reachable,
            )
            for _pk, number, voucher_number, dose, channel, status, voucher_id in live
        ),
        linked=tuple(
            LinkedBooking(booking_number_display(number), dose, starts_at, venue_name)
            for number, dose, starts_at, venue_name in linked
        ),
    )
    record(
        action="slot.cancel_viewed",
        actor=actor,
        target=slot,
        ip=ip,
        details={
            "bookings_listed": len(impact.bookings),
            "linked_listed": len(impact.linked),
            # Whose voucher numbers were shown, for the breach-scope report. The linked
            # bookings are those same residents' other doses.
            "vouchers": sorted({row[6] for row in live}),
        },
    )
    return impact


def _reachable_vouchers(voucher_ids: set[int]) -> set[int]:
    """Those of ``voucher_ids`` whose resident chose a channel with its address (nothing
    decrypted: whether they are set is enough)."""
    return {
        preference.voucher_id
        for preference in ContactPreference.objects.filter(voucher_id__in=voucher_ids)
        if preference.consented_channels()
    }


# The trail event of a slot's cancellation: it names the bookings it cancelled and those it
# could not tell, which the pages after it read (it is the record, and it is never changed).
SLOT_CANCELLED = "slot.cancelled"


def _cancellations_of(slot_ids: Sequence[int]) -> QuerySet[Event]:
    return Event.objects.filter(action=SLOT_CANCELLED, target_id__in=[str(pk) for pk in slot_ids])


def slots_cancelled_once(slot_ids: Sequence[int]) -> set[int]:
    """Those of ``slot_ids`` that were cancelled at least once (reopened since or not)."""
    return {
        int(target) for target in _cancellations_of(slot_ids).values_list("target_id", flat=True)
    }


# A resident the cancellation could not tell, phoned since by the call centre: marked so
# on the list (the trail keeps who and when; it is the record, never changed).
RESIDENT_PHONED = "slot.resident_phoned"
# A mark made by mistake (the wrong row), taken back: the resident is to phone again.
RESIDENT_PHONED_UNDONE = "slot.resident_phoned_undone"


def cancelled_slots_to_phone() -> list[tuple[Slot, int]]:
    """Slots still ahead whose cancellation could not tell some residents (no contact
    registered), each with how many are still to phone (not marked phoned, not booked
    again for that dose): the admin's console home lists them until the day has passed."""
    now = timezone.now()
    untold: dict[int, list[int]] = {}
    for target, details in (
        Event.objects.filter(action=SLOT_CANCELLED, details__not_told__isnull=False)
        .exclude(details__not_told=[])
        .order_by("seq")
        .values_list("target_id", "details")
    ):
        if target.isdigit() and isinstance(details, dict):
            untold[int(target)] = [int(pk) for pk in details.get("not_told") or []]
    # Reopened since or not: the bookings it cancelled stay cancelled.
    slots = list(
        Slot.objects.filter(pk__in=untold, starts_at__gt=now)
        .select_related("venue")
        .order_by("starts_at")
    )
    ids = [pk for slot in slots for pk in untold[slot.pk]]
    done = _phoned(ids).keys() | _rebooked(ids)
    counted = [(slot, sum(1 for pk in untold[slot.pk] if pk not in done)) for slot in slots]
    return [(slot, count) for slot, count in counted if count]


def _phoned(booking_ids: Sequence[int]) -> dict[int, datetime]:
    """When each of these cancelled bookings' residents was marked phoned (if they were,
    and the mark was not taken back since)."""
    return bookings_marked(
        mark=RESIDENT_PHONED, undone=RESIDENT_PHONED_UNDONE, booking_ids=booking_ids
    )


def _rebooked(booking_ids: Sequence[int]) -> set[int]:
    """Those of these cancelled bookings whose resident has a live booking of that dose."""
    cancelled = list(
        Booking.objects.filter(pk__in=booking_ids).values_list("pk", "voucher_id", "dose")
    )
    live = set(
        Booking.objects.filter(
            voucher_id__in={voucher for _pk, voucher, _dose in cancelled},
            status__in=Booking.LIVE_STATUSES,
        ).values_list("voucher_id", "dose")
    )
    return {pk for pk, voucher, dose in cancelled if (voucher, dose) in live}


def cancellation_to_phone(booking: Booking) -> bool:
    """Whether this booking's slot was cancelled without its resident told (no contact
    registered), and nobody has phoned them since nor have they booked that dose again."""
    if not booking.called_off or booking.pk not in _not_told(booking.slot_id):
        return False
    return not _phoned([booking.pk]) and not _rebooked([booking.pk])


def _not_told(slot_id: int) -> list[int]:
    """The bookings the slot's (latest) cancellation could not tell their residents of."""
    cancelled = (
        _cancellations_of([slot_id]).order_by("-seq").values_list("details", flat=True).first()
    )
    return list((cancelled or {}).get("not_told") or [])


def slot_cancellation_phoned(
    *, slot: Slot, booking_id: int, actor: Actor, ip: str | None = None, undo: bool = False
) -> bool:
    """Mark a resident the slot's cancellation could not tell as phoned (``undo``: take a
    mistaken mark back); False when the booking is not one of those, or is so already."""
    check_slot(slot)
    if booking_id not in _not_told(slot.pk) or bool(_phoned([booking_id])) != undo:
        return False
    record(
        action=RESIDENT_PHONED_UNDONE if undo else RESIDENT_PHONED,
        actor=actor,
        target=Booking.objects.get(pk=booking_id),
        ip=ip,
        details={"slot": slot.pk},
    )
    return True


def bookings_cancelled_with_their_slot(
    booking_ids: Sequence[int], slot_ids: Sequence[int]
) -> set[int]:
    """Those of ``booking_ids`` that a cancellation of their slot cancelled (the
    ``slot.cancelled`` events of ``slot_ids`` name them): told apart from a resident's own
    cancellation, also after the slot was reopened."""
    wanted = set(booking_ids)
    found: set[int] = set()
    for details in _cancellations_of(slot_ids).values_list("details", flat=True):
        if isinstance(details, dict):
            found.update(pk for pk in details.get("bookings", []) if pk in wanted)
    return found


def slot_cancellation_told(
    *, slot: Slot, actor: Actor, ip: str | None = None
) -> tuple[AffectedBooking, ...]:
    """The bookings the slot's cancellation cancelled (as its audit event lists them), each
    with whether its resident was sent the message: those who were not, the call centre
    phones. Numbers only, audited as a read like the list before cancelling."""
    check_slot(slot)
    cancelled = (
        _cancellations_of([slot.pk]).order_by("-seq").values_list("details", flat=True).first()
    )
    ids = [int(pk) for pk in (cancelled or {}).get("bookings", [])]
    told = set(
        Notification.objects.filter(booking_id__in=ids, kind="slot_cancelled").values_list(
            "booking_id", flat=True
        )
    )
    phoned = _phoned(ids)
    rebooked = _rebooked(ids)
    rows = list(
        Booking.objects.filter(pk__in=ids)
        .order_by("pk")
        .values_list(
            "pk", "booking_number", "voucher__voucher_number", "dose", "channel", "voucher_id"
        )
    )
    if rows:
        record(
            action="slot.cancellation_list_viewed",
            actor=actor,
            target=slot,
            ip=ip,
            details={"bookings_listed": len(rows), "vouchers": sorted({row[5] for row in rows})},
        )
    return tuple(
        AffectedBooking(
            booking_number_display(number),
            voucher_number,
            dose,
            channel,
            False,
            pk in told,
            phoned_at=phoned.get(pk),
            rebooked=pk in rebooked,
            pk=pk,
            voucher_id=voucher_id,
        )
        for pk, number, voucher_number, dose, channel, voucher_id in rows
    )


def slot_cancel(
    *, slot: Slot, actor: Actor, ip: str | None = None, notice: str = ""
) -> SlotCancellation:
    """中止: the slot takes no bookings, every active booking in it is cancelled through the
    booking service (call centre channel, staff actor: allowed after the residents' cut-off)
    and each resident is sent a ``slot_cancelled`` message (``notice``, optional, is added
    to it and must name nobody). All in one transaction; nothing happens if one part fails.

    Refused for a slot that has ended or has checked-in residents (they are at the venue).
    Cancelling a cancelled slot returns it unchanged.
    """
    check_slot(slot)
    if actor.kind != Actor.STAFF:
        raise PermissionDenied("slots are cancelled by staff")
    with transaction.atomic():
        voucher_ids = sorted(
            set(
                Booking.objects.filter(
                    slot_id=slot.pk, status__in=Booking.LIVE_STATUSES
                ).values_list("voucher_id", flat=True)
            )
        )
        locked = set(
            Voucher.objects.select_for_update()
            .filter(pk__in=voucher_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        current = (
            Slot.objects.select_for_update().select_related("venue", "product").get(pk=slot.pk)
        )
        if current.status == Slot.Status.CANCELLED:
            return SlotCancellation(current, 0, 0, 0)
        if current.ends_at <= timezone.now():
            raise PlanningRefused("ended", _("終了した枠は中止できません。"))
        live = list(
            Booking.objects.filter(slot_id=current.pk, status__in=Booking.LIVE_STATUSES)
            .select_related("slot__venue", "slot__product")
            .order_by("pk")
        )
        if any(b.status == Booking.Status.CHECKED_IN for b in live):
            raise PlanningRefused(
                "checked_in",
                _("受付済みの方がいるため、この枠は中止できません。受付停止にしてください。"),
            )
        late = sorted({b.voucher_id for b in live} - locked)
        if late:  # booked between the first read and the slot lock
            list(Voucher.objects.select_for_update().filter(pk__in=late).order_by("pk"))
        current.status = Slot.Status.CANCELLED
        current.save(update_fields=["status"])
        high_water = Notification.objects.aggregate(top=Max("pk"))["top"] or 0
        ids = [b.pk for b in live]
        linked_ids = linked_active_bookings(ids)
        extra = {"notice": notice} if notice else None
        for booking in live:
            try:
                booking_cancel(
                    booking=booking,
                    channel=Channel.CALL_CENTRE,
                    actor=actor,
                    ip=ip,
                    notification_kind="slot_cancelled",
                    notification_extra=extra,
                    reason=Booking.CancelReason.SLOT_CANCELLED,
                )
            except BookingRefused as refused:  # rolls the whole cancellation back
                raise PlanningRefused(refused.code, refused.message) from refused
        linked = Booking.objects.filter(pk__in=linked_ids, status=Booking.Status.CANCELLED).count()
        sent = Notification.objects.filter(
            pk__gt=high_water, booking_id__in=ids, kind="slot_cancelled"
        ).values_list("booking_id", flat=True)
        notifications = len(sent)
        not_told = sorted(set(ids) - set(sent))
        record(
            action=SLOT_CANCELLED,
            actor=actor,
            target=current,
            ip=ip,
            details={
                "bookings_cancelled": len(live),
                "linked_cancelled": linked,
                "notifications": notifications,
                "notice": bool(notice),
                # Its words (they name nobody), for the pages of residents it could not tell.
                "notice_text": notice,
                # Which, for the list of those to phone (slot_cancellation_told).
                "bookings": ids,
                "not_told": not_told,
            },
        )
        invalidate_on_commit([slot_day(current)])
    current.refresh_from_db()
    return SlotCancellation(current, len(live), linked, notifications, len(not_told))


@dataclass(frozen=True)
class DaySlot:
    """A slot of the day to cancel, as the confirmation lists it (counts only)."""

    slot: Slot
    bookings: int
    not_reachable: int  # of them, residents with no contact registered: to phone
    checked_in: bool  # someone is at the venue: not cancelled (受付停止 instead)


def day_slots(*, day: date, venue: Venue | None = None) -> list[DaySlot]:
    """The slots of ``day`` (at ``venue``, or at every venue) that a day's cancellation
    would cancel: not cancelled yet and not ended; each with its live bookings counted."""
    start, end = day_bounds(day)
    found = Slot.objects.filter(
        starts_at__gte=start,
        starts_at__lt=end,
        ends_at__gt=timezone.now(),
    ).exclude(status=Slot.Status.CANCELLED)
    if venue is not None:
        found = found.filter(venue=venue)
    slots = list(found.select_related("venue", "product").order_by("venue__name", "starts_at"))
    live = list(
        Booking.objects.filter(
            slot_id__in=[slot.pk for slot in slots], status__in=Booking.LIVE_STATUSES
        ).values_list("slot_id", "voucher_id", "status")
    )
    reachable = _reachable_vouchers({voucher_id for _slot, voucher_id, _status in live})
    rows = []
    for slot in slots:
        mine = [(voucher_id, status) for slot_id, voucher_id, status in live if slot_id == slot.pk]
        rows.append(
            DaySlot(
                slot=slot,
                bookings=len(mine),
                not_reachable=sum(1 for voucher_id, _s in mine if voucher_id not in reachable),
                checked_in=any(status == Booking.Status.CHECKED_IN for _v, status in mine),
            )
        )
    return rows


@dataclass(frozen=True)
class DayCancellation:
    cancelled: tuple[SlotCancellation, ...]
    skipped: tuple[Slot, ...]  # residents checked in (at the venue): left as they are

    @property
    def bookings_cancelled(self) -> int:
        return sum(each.bookings_cancelled for each in self.cancelled)

    @property
    def notifications(self) -> int:
        return sum(each.notifications for each in self.cancelled)

    @property
    def not_told(self) -> int:
        return sum(each.not_told for each in self.cancelled)


def day_cancel(
    *, day: date, venue: Venue | None = None, actor: Actor, ip: str | None = None, notice: str = ""
) -> DayCancellation:
    """中止 of a whole day (a typhoon, a closed building): every slot ``day_slots`` lists is
    cancelled as ``slot_cancel`` cancels one, with the one ``notice``. Slots with residents
    checked in are left (they are at the venue). Each slot commits on its own, so a slot
    refused on the way (booked at that moment, ended meanwhile) leaves the others cancelled
    and listed; asking again cancels what is left."""
    if actor.kind != Actor.STAFF:
        raise PermissionDenied("slots are cancelled by staff")
    cancelled: list[SlotCancellation] = []
    skipped: list[Slot] = []
    for row in day_slots(day=day, venue=venue):
        if row.checked_in:
            skipped.append(row.slot)
            continue
        try:
            cancelled.append(slot_cancel(slot=row.slot, actor=actor, ip=ip, notice=notice))
        except PlanningRefused:
            skipped.append(row.slot)
    result = DayCancellation(tuple(cancelled), tuple(skipped))
    record(
        action="slot.day_cancelled",
        actor=actor,
        target=venue,
        ip=ip,
        details={
            "day": day.isoformat(),
            "slots": [each.slot.pk for each in cancelled],
            "skipped": [slot.pk for slot in skipped],
            "bookings_cancelled": result.bookings_cancelled,
            "notifications": result.notifications,
            "notice": bool(notice),
        },
    )
    return result
