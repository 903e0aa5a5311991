"""Free places for residents and operators: every venue for a date, and the days that have any.

What a resident sees first (UX.md "The resident's path" 3): pick a date, see every venue with
slots that day — not venue by venue (Kobe 2021) — filtered by area and vaccine, for one
channel, because each channel has its own capacity (the call centre sees only its own). Or
pick a venue first (the clinic they always go to) from every venue with places in the booking
window, and see its days: the same days and slots, filtered by that venue.

Places are shown only roughly (◎ ○ △ ×), so one cached answer serves everyone for a few
seconds. The cache is invalidated when a booking changes a slot's mark (not on every booking:
during an opening rush most bookings move no mark, and dropping the cache on each one would
send every page view to the database, Yokohama 2021). A mark can therefore lag by at most
``AVAILABILITY_CACHE_SECONDS`` for a change that does not cross a threshold; the booking
service, not this page, decides whether a place is left.

Reads go to the primary database explicitly: availability is never read from a replica.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import DEFAULT_DB_ALIAS
from django.db.models import F, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from booking.models import BookingPolicy, Channel, Slot, VaccineProduct, Venue
from sesshu.outages import CacheIfUp
from tenants.db import current_schema

JAPAN = ZoneInfo("Asia/Tokyo")
# Without Redis the database answers, once per process and key every few seconds (_recent),
# and a dropped invalidation is outlived by the answers it would have dropped (a few seconds;
# the booking service, not these marks, decides whether a place is left).
_cache = CacheIfUp("availability")
AVAILABILITY_CACHE_SECONDS = 5
# Generations outlive the answers they key; when one expires the next answer is simply new.
_GENERATION_SECONDS = 24 * 3600


class Mark(StrEnum):
    """Remaining places, roughly. Thresholds are fractions of the channel's capacity."""

    PLENTY = "◎"  # at least half left
    SOME = "○"  # at least a fifth left
    FEW = "△"  # at least one left
    NONE = "×"  # none left

    @property
    def label(self) -> str:
        """For screen readers and the legend: a symbol alone is read out as a symbol."""
        return str(MARK_LABELS[self])

    @property
    def bookable(self) -> bool:
        return self is not Mark.NONE


MARK_PLENTY_FROM = 0.5
MARK_SOME_FROM = 0.2
MARK_LABELS = {
    Mark.PLENTY: _("空きあり"),
    Mark.SOME: _("空きあり（残り少なめ）"),
    Mark.FEW: _("残りわずか"),
    Mark.NONE: _("空きなし"),
}


def mark_for(remaining: int, capacity: int) -> Mark:
    if capacity <= 0 or remaining <= 0:
        return Mark.NONE
    share = remaining / capacity
    if share >= MARK_PLENTY_FROM:
        return Mark.PLENTY
    if share >= MARK_SOME_FROM:
        return Mark.SOME
    return Mark.FEW


@dataclass(frozen=True, slots=True)
class SlotAvailability:
    slot_id: int
    starts_at: datetime
    ends_at: datetime
    product_code: str
    product_name: str
    mark: Mark


@dataclass(frozen=True, slots=True)
class VenueFacts:
    """What the residents' pages say about a venue (the template _venue_about.html)."""

    venue_id: int
    name: str
    area: str
    address: str
    access_notes: str
    accessibility: str
    map_url: str


# Each field of VenueFacts, and its column read through a slot.
_VENUE_FIELDS = {
    "venue_id": "venue_id",
    "name": "venue__name",
    "area": "venue__area",
    "address": "venue__address",
    "access_notes": "venue__access_notes",
    "accessibility": "venue__accessibility",
    "map_url": "venue__map_url",
}


@dataclass(frozen=True, slots=True)
class VenueAvailability(VenueFacts):
    slots: tuple[SlotAvailability, ...]

    @property
    def bookable(self) -> bool:
        return any(slot.mark.bookable for slot in self.slots)


@dataclass(frozen=True, slots=True)
class OpenDay:
    day: date
    mark: Mark


@dataclass(frozen=True, slots=True)
class OpenVenue(VenueFacts):
    """A venue with slots for the channel in the booking window, and how many are left."""

    products: tuple[str, ...]  # the names of the vaccines of its slots
    mark: Mark  # for the whole window
    first_day: date | None  # the first day with a place left

    @property
    def bookable(self) -> bool:
        return self.mark.bookable


@dataclass(frozen=True, slots=True)
class AvailabilityChoices:
    areas: tuple[str, ...]
    products: tuple[tuple[str, str], ...]  # (code, name)
    venues: tuple[tuple[int, str, str], ...] = ()  # (id, name, area) of the open venues


# --- Cache keys -------------------------------------------------------------------------------
# django-tenants' KEY_FUNCTION prefixes every key with the schema, so these are per
# municipality. Filters are hashed: an area name is free text.


def _generation_key(channel: str, scope: str) -> str:
    return f"booking:availability:generation:{channel}:{scope}"


def _generation(channel: str, scope: str) -> str:
    return str(_cache.get(_generation_key(channel, scope), "0"))


# The answers this process read or made lately, by schema and key, kept as long as Redis keeps
# them: a busy day's answer is some 160 slots, and unpickling it from Redis was about a
# millisecond of every slots page. A key names its generation, so a changed mark is never
# served from here.
_recent: dict[tuple[str, str], tuple[float, tuple[Any, ...]]] = {}
_RECENT_KEPT = 512


def _answer(key: str) -> tuple[Any, ...] | None:
    held = _recent.get((current_schema(), key))
    if held is not None and held[0] > time.monotonic():
        return held[1]
    value = _cache.get(key)
    if value is not None:
        _remember(key, value)
    return value


def _keep(key: str, value: tuple[Any, ...]) -> None:
    _cache.set(key, value, AVAILABILITY_CACHE_SECONDS)
    _remember(key, value)


def _remember(key: str, value: tuple[Any, ...]) -> None:
    if len(_recent) >= _RECENT_KEPT:
        _recent.clear()
    _recent[(current_schema(), key)] = (time.monotonic() + AVAILABILITY_CACHE_SECONDS, value)


def _digest(*parts: object) -> str:
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.blake2s(text.encode("utf-8"), digest_size=12).hexdigest()


def availability_invalidate(*, channels: Iterable[str] | None = None, days: Iterable[date]) -> None:
    """Forget cached availability of ``days`` (and the date picker) for ``channels`` (all if
    None). The booking service calls it on commit when a mark changed; call it too after
    editing slots or venues."""
    # Unique even when two invalidations read the same clock (a frozen one in tests, or two
    # processes in the same tick): an equal stamp would leave the answers it should drop.
    stamp = f"{time.time_ns():x}-{secrets.token_hex(4)}"
    keys = {}
    for channel in channels or Channel.values:
        keys[_generation_key(channel, "days")] = stamp
        for day in days:
            keys[_generation_key(channel, day.isoformat())] = stamp
    _cache.set_many(keys, timeout=_GENERATION_SECONDS)


# --- Queries ----------------------------------------------------------------------------------


def _check_channel(channel: str) -> str:
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    return channel


def _bookable_slots(
    channel: str,
    policy: BookingPolicy,
    now: datetime,
    *,
    area: str | None,
    product: str | None,
    venue: int | None = None,
) -> QuerySet[Slot]:
    """Open slots of open venues that ``channel`` may book at ``now``, inside the booking
    window."""
    slots = _open_slots(channel).filter(
        starts_at__gt=now + timedelta(hours=policy.closes_hours_before),
        starts_at__lte=policy.bookable_until(now),
    )
    if area:
        slots = slots.filter(venue__area=area)
    if product:
        slots = slots.filter(product__code=product)
    if venue is not None:
        slots = slots.filter(venue_id=venue)
    return slots


def slots_on(channel: str, day: date) -> bool:
    """Whether ``day`` has open slots with places for ``channel``, booking open or not yet:
    a day not open yet is said to open only when it has something to open."""
    start, end = _day_bounds(day, day)
    return (
        _open_slots(_check_channel(channel))
        .filter(starts_at__gte=start, starts_at__lt=end)
        .exists()
    )


def _open_slots(channel: str) -> QuerySet[Slot]:
    """Slots open to ``channel`` (with places for it) at open venues, of vaccines offered,
    whatever their time."""
    return Slot.objects.using(DEFAULT_DB_ALIAS).filter(
        Q(**{f"capacity_{channel}__gt": 0}),
        status=Slot.Status.OPEN,
        venue__is_open=True,
        product__active=True,
    )


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime.combine(first, clock.min, tzinfo=JAPAN)
    end = datetime.combine(last + timedelta(days=1), clock.min, tzinfo=JAPAN)
    return start, end


def availability_for_day(
    *,
    channel: str,
    day: date,
    area: str | None = None,
    product: str | None = None,
    venue: int | None = None,
) -> list[VenueAvailability]:
    """Every venue with slots on ``day`` for ``channel`` (or the one ``venue``), each with its
    slots and marks.

    Two queries (the policy and the slots with their venue and vaccine), cached for a few
    seconds per municipality, channel, day and filters.
    """
    _check_channel(channel)
    policy, now = BookingPolicy.current(), timezone.now()
    key = "booking:availability:day:" + _digest(
        channel,
        day.isoformat(),
        area,
        product,
        venue,
        _generation(channel, day.isoformat()),
        # At a set opening time (opens_at_time) the new day is there at once, not after
        # the answers cached just before it have expired.
        policy.last_day_open(now),
    )
    cached = _answer(key)
    if cached is not None:
        return list(cached)
    start, end = _day_bounds(day, day)
    rows = (
        _bookable_slots(channel, policy, now, area=area, product=product, venue=venue)
        .filter(starts_at__gte=start, starts_at__lt=end)
        .order_by("venue__area", "venue__name", "venue_id", "starts_at", "product__code")
        .values_list(
            "id",
            "starts_at",
            "ends_at",
            f"capacity_{channel}",
            f"booked_{channel}",
            "product__code",
            "product__name",
            *_VENUE_FIELDS.values(),
        )
    )
    venues: list[VenueAvailability] = []
    current: list[SlotAvailability] = []
    head: tuple[Any, ...] | None = None
    for row in rows:
        slot_id, starts_at, ends_at, capacity, booked, code, name, *place = row
        if head is None or place[0] != head[0]:
            if head is not None:
                venues.append(_venue(head, current))
            head, current = tuple(place), []
        current.append(
            SlotAvailability(
                slot_id, starts_at, ends_at, code, name, mark_for(capacity - booked, capacity)
            )
        )
    if head is not None:
        venues.append(_venue(head, current))
    _keep(key, tuple(venues))
    return venues


def _venue(head: tuple[Any, ...], slots: list[SlotAvailability]) -> VenueAvailability:
    return VenueAvailability(**dict(zip(_VENUE_FIELDS, head, strict=True)), slots=tuple(slots))


def open_days(
    channel: str,
    from_date: date,
    to_date: date,
    *,
    area: str | None = None,
    product: str | None = None,
    venue: int | None = None,
) -> list[OpenDay]:
    """Days between ``from_date`` and ``to_date`` (inclusive) that have bookable slots for
    ``channel`` (at ``venue`` alone, if given), each with a mark for the whole day (× when
    every slot is taken). One query."""
    _check_channel(channel)
    if to_date < from_date:
        return []
    policy, now = BookingPolicy.current(), timezone.now()
    key = "booking:availability:days:" + _digest(
        channel,
        from_date,
        to_date,
        area,
        product,
        venue,
        _generation(channel, "days"),
        # At a set opening time (opens_at_time) the new day is there at once, not after
        # the answers cached just before it have expired.
        policy.last_day_open(now),
    )
    cached = _answer(key)
    if cached is not None:
        return list(cached)
    start, end = _day_bounds(from_date, to_date)
    rows = (
        _bookable_slots(channel, policy, now, area=area, product=product, venue=venue)
        .filter(starts_at__gte=start, starts_at__lt=end)
        .annotate(day=TruncDate("starts_at", tzinfo=JAPAN))
        .values("day")
        .annotate(
            day_capacity=Sum(F(f"capacity_{channel}")),
            day_booked=Sum(F(f"booked_{channel}")),
        )
        .order_by("day")
        .values_list("day", "day_capacity", "day_booked")
    )
    days = [
        OpenDay(day, mark_for(int(capacity) - int(booked), int(capacity)))
        for day, capacity, booked in rows
    ]
    _keep(key, tuple(days))
    return days


def open_venues(
    channel: str,
    from_date: date,
    to_date: date,
    *,
    area: str | None = None,
    product: str | None = None,
) -> list[OpenVenue]:
    """Venues with slots for ``channel`` between ``from_date`` and ``to_date`` (inclusive),
    by area and name, each with a mark for the whole period, its first day with a place
    left and its vaccines: the venue-first way in (UX.md "The resident's path" 3). A venue
    whose every slot is taken is listed too, marked ×: a resident looking for their own
    clinic learns it is full rather than wondering where it went. One query, cached like
    the days."""
    _check_channel(channel)
    if to_date < from_date:
        return []
    policy, now = BookingPolicy.current(), timezone.now()
    key = "booking:availability:venues:" + _digest(
        channel,
        from_date,
        to_date,
        area,
        product,
        _generation(channel, "days"),
        policy.last_day_open(now),
    )
    cached = _answer(key)
    if cached is not None:
        return list(cached)
    start, end = _day_bounds(from_date, to_date)
    capacity, booked = f"capacity_{channel}", f"booked_{channel}"
    rows = (
        _bookable_slots(channel, policy, now, area=area, product=product)
        .filter(starts_at__gte=start, starts_at__lt=end)
        .values(*_VENUE_FIELDS.values())
        .annotate(
            venue_capacity=Sum(capacity),
            venue_booked=Sum(booked),
            first_free=Min("starts_at", filter=Q(**{f"{booked}__lt": F(capacity)})),
            product_names=ArrayAgg("product__name", distinct=True, order_by="product__name"),
        )
        .order_by("venue__area", "venue__name", "venue_id")
    )
    venues = [
        OpenVenue(
            **{field: row[column] for field, column in _VENUE_FIELDS.items()},
            products=tuple(row["product_names"]),
            mark=mark_for(
                int(row["venue_capacity"]) - int(row["venue_booked"]), int(row["venue_capacity"])
            ),
            first_day=row["first_free"].astimezone(JAPAN).date() if row["first_free"] else None,
        )
        for row in rows
    ]
    _keep(key, tuple(venues))
    return venues


def venues_by_area(
    venues: Iterable[tuple[int, str, str]],
) -> list[tuple[str, list[tuple[int, str]]]]:
    """``AvailabilityChoices.venues`` (id, name, area), as a venue select groups them: under
    each area, in the order given."""
    grouped: dict[str, list[tuple[int, str]]] = {}
    for venue_id, name, area in venues:
        grouped.setdefault(area, []).append((venue_id, name))
    return list(grouped.items())


def availability_choices() -> AvailabilityChoices:
    """The filters to offer: areas and venues that are open and have slots to come (a venue
    just made, without slots yet, would lead a resident to an empty list), and active
    vaccines (cached briefly)."""
    key = "booking:availability:choices:3"
    cached = _cache.get(key)
    if cached is not None:
        return AvailabilityChoices(*cached)
    opened = Venue.objects.using(DEFAULT_DB_ALIAS).filter(
        is_open=True,
        pk__in=Slot.objects.using(DEFAULT_DB_ALIAS)
        .filter(status=Slot.Status.OPEN, starts_at__gte=timezone.now())
        .values("venue_id"),
    )
    venues = tuple(opened.order_by("area", "name", "id").values_list("id", "name", "area"))
    areas = tuple(dict.fromkeys(area for _id, _name, area in venues))
    products = tuple(
        (code, name)
        for code, name in VaccineProduct.objects.using(DEFAULT_DB_ALIAS)
        .filter(active=True)
        .order_by("name")
        .values_list("code", "name")
    )
    _cache.set(key, (areas, products, venues), 60)
    return AvailabilityChoices(areas, products, venues)
