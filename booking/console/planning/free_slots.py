"""Free places across every venue, for staff and for the published list (Kobe 2021 made it by
hand): open slots of open venues, by date, area, vaccine and channel. Nothing personal: a slot
row holds no resident, and only counts leave this module.

Staff see exact numbers, not the residents' ◎○△×. The call centre sees only its own
capacity (what it can book); venue staff see only the venues they work at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from booking.console.planning.common import CALL_CENTRE, JAPAN, VENUE, weekday_of
from booking.models import BookingPolicy, Channel, Slot, StaffMember, Venue

FREE_SLOT_PAGE = 300


@dataclass(frozen=True)
class FreeSlotQuery:
    first_day: date
    last_day: date
    area: str = ""
    product: str = ""  # vaccine code
    venue_id: int | None = None
    channel: str = ""  # only slots with places left in this channel ("" any)


@dataclass(frozen=True)
class FreeSlotRow:
    day: date
    starts_at: datetime
    ends_at: datetime
    area: str
    venue_name: str
    venue_address: str
    product_name: str
    remaining_web: int
    remaining_line: int
    remaining_call_centre: int

    @property
    def weekday(self) -> str:
        return weekday_of(self.day)

    @property
    def remaining(self) -> int:
        return self.remaining_web + self.remaining_line + self.remaining_call_centre


def venues_for(staff: StaffMember) -> QuerySet[Venue]:
    """Open venues whose free places ``staff`` may see."""
    venues = Venue.objects.filter(is_open=True)
    if staff.role == VENUE:
        venues = venues.filter(pk__in=staff.venues.values("pk"))
    return venues.order_by("area", "name")


def channels_for(staff: StaffMember) -> tuple[str, ...]:
    if staff.role == CALL_CENTRE:
        return (Channel.CALL_CENTRE,)
    return tuple(Channel.values)


def free_slots(*, staff: StaffMember, query: FreeSlotQuery) -> QuerySet[Any]:
    """Open slots that may still be booked (their cut-off not passed), with the places left
    per channel (SQL columns ``remaining_<channel>``), in time order. Read from the primary:
    places move.

    Typed ``QuerySet[Any]``: the annotated columns are not fields of ``Slot``."""
    start = datetime.combine(query.first_day, clock.min, tzinfo=JAPAN)
    end = datetime.combine(query.last_day + timedelta(days=1), clock.min, tzinfo=JAPAN)
    channels = channels_for(staff)
    cut_off = timedelta(hours=BookingPolicy.current().closes_hours_before)
    slots = Slot.objects.using(DEFAULT_DB_ALIAS).filter(
        status=Slot.Status.OPEN,
        product__active=True,
        venue__in=venues_for(staff),
        starts_at__gte=max(start, timezone.now() + cut_off),
        starts_at__lt=end,
    )
    if query.area:
        slots = slots.filter(venue__area=query.area)
    if query.product:
        slots = slots.filter(product__code=query.product)
    if query.venue_id:
        slots = slots.filter(venue_id=query.venue_id)
    slots = slots.annotate(
        remaining_web=F("capacity_web") - F("booked_web"),
        remaining_line=F("capacity_line") - F("booked_line"),
        remaining_call_centre=F("capacity_call_centre") - F("booked_call_centre"),
    )
    wanted = [query.channel] if query.channel in channels else list(channels)
    has_place = Q()
    for channel in wanted:
        has_place |= Q(**{f"remaining_{channel}__gt": 0})
    return slots.filter(has_place).order_by("starts_at", "venue__area", "venue__name", "pk")


def free_slot_rows(*, staff: StaffMember, query: FreeSlotQuery) -> list[FreeSlotRow]:
    channels = channels_for(staff)
    rows = free_slots(staff=staff, query=query).values_list(
        "starts_at",
        "ends_at",
        "venue__area",
        "venue__name",
        "venue__address",
        "product__name",
        "remaining_web",
        "remaining_line",
        "remaining_call_centre",
    )
    result = []
    for starts_at, ends_at, area, name, address, product, web, line, call in rows:
        result.append(
            FreeSlotRow(
                day=starts_at.astimezone(JAPAN).date(),
                starts_at=starts_at.astimezone(JAPAN),
                ends_at=ends_at.astimezone(JAPAN),
                area=area,
                venue_name=name,
                venue_address=address,
                product_name=product,
                # A channel the role does not book through is not shown to it (zero).
                remaining_web=web if Channel.WEB in channels else 0,
                remaining_line=line if Channel.LINE in channels else 0,
                remaining_call_centre=call if Channel.CALL_CENTRE in channels else 0,
            )
        )
    return result


FREE_SLOT_CSV_HEADER = (
    "日付",
    "曜日",
    "開始",
    "終了",
    "地区",
    "会場",
    "住所",
    "ワクチン",
    "空き（ウェブ）",
    "空き（LINE）",
    "空き（コールセンター）",
    "空き（合計）",
)


def free_slot_csv_rows(rows: list[FreeSlotRow]) -> list[tuple[object, ...]]:
    return [
        (
            row.day.isoformat(),
            row.weekday,
            row.starts_at.strftime("%H:%M"),
            row.ends_at.strftime("%H:%M"),
            row.area,
            row.venue_name,
            row.venue_address,
            row.product_name,
            row.remaining_web,
            row.remaining_line,
            row.remaining_call_centre,
            row.remaining,
        )
        for row in rows
    ]
