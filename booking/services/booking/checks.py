"""The booking rules: the slot and its window, eligibility, the interval and vaccine of the
doses before and after, and which dose to book."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from booking.models import AgePhase, BookingPolicy, Slot, VaccineProduct, Voucher
from booking.selectors.residents import DoseHistory, DoseTaken, series_size
from booking.selectors.slots import slot_with_venue_and_product
from booking.services.booking.refusals import BookingRefused, not_eligible_yet_message
from sesshu.rows import columns_of, fetch_one
from tenants.crypto import cipher_for
from tenants.db import current_municipality

JAPAN = ZoneInfo("Asia/Tokyo")
VOUCHER_TABLE = "booking_voucher"


def _day_of(moment: datetime) -> date:
    return moment.astimezone(JAPAN).date()


def booking_closes_at(slot: Slot, policy: BookingPolicy) -> datetime:
    """Until when a booking of ``slot`` may be made, changed or cancelled online (the cut-off:
    the policy's hours before the start)."""
    return slot.starts_at - timedelta(hours=policy.closes_hours_before)


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
    """The voucher's row, locked until the transaction ends: one operation at a time per
    voucher (on the booking path of every resident in a rush: sesshu.rows)."""
    columns = columns_of(Voucher, "v", ("voucher_number", "status", "dose", "personal"))
    row = fetch_one(f"{columns.select} WHERE v.id = %s FOR UPDATE", [voucher_id])
    if row is None:
        raise Voucher.DoesNotExist(f"voucher {voucher_id} does not exist")
    return columns.load(row)


def _load_slot(slot_id: int) -> Slot:
    slot = slot_with_venue_and_product(slot_id)
    if slot is None:
        # Removed by staff while the resident was on the confirmation page.
        raise BookingRefused("slot_closed", slot_id=slot_id)
    return slot


def _check_slot(ctx: _Context, slot: Slot, dose: int) -> None:
    """The slot is open to this channel now (slot_closed, channel_closed, the window)."""
    _check_slot_at(ctx.now, ctx.policy, ctx.channel, slot, dose)


def slot_refusal(slot: Slot, *, channel: str, policy: BookingPolicy) -> BookingRefused | None:
    """What a booking of ``slot`` through ``channel`` would be refused for now as far as the
    slot alone decides (closed, no places for the channel, outside the window, no place
    left), for a confirmation to say before its button rather than after it. The booking
    service decides again, under its locks, when the button is pressed."""
    try:
        _check_slot_at(timezone.now(), policy, channel, slot, 1)
    except BookingRefused as refused:
        return refused
    if slot.remaining(channel) <= 0:
        return BookingRefused("full", slot_id=slot.pk, phone=policy.call_centre_phone)
    return None


def _check_slot_at_the_venue(ctx: _Context, slot: Slot, dose: int) -> None:
    """A resident at the venue's desk without a booking, given a free place of a slot of
    today there: open, of today and not yet over. The booking window does not apply (it
    closes hours before a slot, for planning; the resident is here), nor the channel: any
    place left is theirs (``walk_in_channels``)."""
    refusal = partial(BookingRefused, dose=dose, slot_id=slot.pk, phone=ctx.phone)
    if slot.status != Slot.Status.OPEN or not slot.venue.is_open or not slot.product.active:
        raise refusal("slot_closed")
    if _day_of(slot.starts_at) != _day_of(ctx.now):
        raise refusal("not_today_at_venue")
    if ctx.now >= slot.ends_at:
        raise refusal("slot_ended")


def _check_slot_at(
    now: datetime, policy: BookingPolicy, channel: str, slot: Slot, dose: int
) -> None:
    refusal = partial(BookingRefused, dose=dose, slot_id=slot.pk, phone=policy.call_centre_phone)
    if slot.status != Slot.Status.OPEN or not slot.venue.is_open or not slot.product.active:
        raise refusal("slot_closed")
    if slot.capacity(channel) <= 0:
        raise refusal("channel_closed")
    opens = policy.booking_opens_at(slot.starts_at)
    if now < opens:
        local = opens.astimezone(JAPAN)
        raise refusal(
            "window_not_open",
            days=policy.opens_days_ahead,
            opens=f"{_date_text(local.date())}{_clock_text(local.time())}",
            at=_clock_text(policy.opens_at_time) if policy.opens_at_time else "",
        )
    if now > booking_closes_at(slot, policy):
        raise refusal("window_closed", hours=policy.closes_hours_before)


def _clock_text(moment: time) -> str:
    return f"{moment.hour}:{moment.minute:02d}"  # 9:00, as residents read a time


def _date_text(day: date) -> str:
    return date_format(day, gettext("n月j日（D）"))


def _birth_date(voucher: Voucher) -> date | None:
    """The voucher's birth date, decrypted once per voucher object (a resident's page asks for
    it twice: the age window and the vaccine's minimum age). Keyed by the sealed bytes, so a
    row read again with other contents is decrypted again."""
    sealed = bytes(voucher.personal)
    kept = voucher.__dict__.get("_birth_date_of")
    if kept is not None and kept[0] == sealed:
        return kept[1]
    personal = cipher_for(current_municipality()).open_record(
        sealed, table=VOUCHER_TABLE, row_id=voucher.voucher_number
    )
    text = personal.get("birth_date")
    born = date.fromisoformat(text) if text else None
    voucher.__dict__["_birth_date_of"] = (sealed, born)
    return born


def age_on(birth_date: date, day: date) -> int:
    """Completed years on ``day``: the birthday itself counts."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def _birthdays(birth_date: date, after: date, until: date) -> list[date]:
    """The days in (``after``, ``until``] on which a resident born on ``birth_date`` is a year
    older, as ``age_on`` counts (born on 29 February: 1 March in other years)."""
    days = []
    for year in range(after.year, until.year + 1):
        try:
            birthday = birth_date.replace(year=year)
        except ValueError:
            birthday = date(year, 3, 1)
        if after < birthday <= until:
            days.append(birthday)
    return days


@dataclass(frozen=True)
class AgeWindow:
    """When a resident's age lets them book, by the same rule as ``_check_eligible``: the
    first day from ``first`` to ``last`` whose slots the age phases open to them now (None:
    none), and, when there is none, the opening of a later phase that will (None: none
    that the municipality has set)."""

    first_day: date | None
    phase_opens_at: datetime | None = None

    def not_yet_message(self, phone: str, *, for_staff: bool = False) -> str:
        """What the resident (or, ``for_staff``, the operator) is told when ``first_day`` is
        None (``not_eligible_yet_message``)."""
        return not_eligible_yet_message(self.phase_opens_at, phone, for_staff=for_staff)


def booking_days(policy: BookingPolicy, earliest: date | None = None) -> tuple[date, date]:
    """The first and last days whose slots may be booked now (from ``earliest`` at the
    soonest), in Japan."""
    now = timezone.now()
    today = _day_of(now)
    first = max(today, earliest) if earliest else today
    return first, policy.last_day_open(now)


def next_dose_age_window(
    voucher: Voucher, policy: BookingPolicy, earliest: date | None = None
) -> AgeWindow:
    """``age_window`` over the booking window as it stands now, from ``earliest`` (the end of
    the interval after the previous dose): what the resident's pages and the call centre's
    offer for the next dose."""
    first, last = booking_days(policy, earliest)
    return age_window(voucher, first, last, now=timezone.now())


def age_window(voucher: Voucher, first: date, last: date, *, now: datetime) -> AgeWindow:
    """What the pages tell a resident before they choose a slot that the booking service
    would refuse them for their age (UX.md: say which, and what to do next). A voucher
    without a birth date can book no day, as the service decides."""
    birth_date = _birth_date(voucher)
    if birth_date is None:
        return AgeWindow(None)
    for day in [first, *_birthdays(birth_date, first, last)]:
        if AgePhase.covers(age=age_on(birth_date, day), at=now):
            return AgeWindow(day)
    later = [
        phase.opens_at
        for phase in AgePhase.every()
        if phase.opens_at > now and phase.minimum_age <= age_on(birth_date, _day_of(phase.opens_at))
    ]
    return AgeWindow(None, min(later, default=None))


def product_age_refusal(voucher: Voucher, slot: Slot) -> BookingRefused | None:
    """The booking service's refusal of ``slot`` for the resident's age on its day when its
    vaccine is for older residents (a product for 18 and over, a resident of 15), for the
    confirmation to say before anything is pressed; None otherwise."""
    birth_date = _birth_date(voucher)
    if birth_date is None:
        return None
    return _below_product_age(age_on(birth_date, _day_of(slot.starts_at)), slot, None)


def _below_product_age(age: int, slot: Slot, dose: int | None) -> BookingRefused | None:
    if age >= slot.product.minimum_age:
        return None
    return BookingRefused(
        "below_product_age",
        dose=dose,
        slot_id=slot.pk,
        product=slot.product.name,
        age=slot.product.minimum_age,
    )


def _check_eligible(ctx: _Context, slot: Slot, dose: int, birth_date: date | None) -> None:
    """Old enough for the vaccine on the day, and inside an age phase that has opened."""
    refusal = partial(BookingRefused, "not_eligible_yet", dose=dose, slot_id=slot.pk)
    if birth_date is None:
        raise refusal(phone=ctx.phone)
    age = age_on(birth_date, _day_of(slot.starts_at))
    too_young = _below_product_age(age, slot, dose)
    if too_young is not None:
        raise too_young
    if not AgePhase.covers(age=age, at=ctx.now):
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
