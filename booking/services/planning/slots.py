"""Planning slots: a pattern (the generator) or rows (a CSV file) become slot specs, a preview
says what a run would create, and one statement writes the ones that do not exist yet.

Slots are written in bulk (``INSERT ... SELECT FROM unnest ... ON CONFLICT DO NOTHING``): a run
may plan thousands of slots, and the database's unique constraint (one slot per venue, vaccine
and start) is what makes a second run of the same plan write nothing. A planned slot that would
overlap an existing slot of the same venue and vaccine at another start time (a 20-minute
pattern over a 30-minute one) is skipped as well: more places are more capacity, not a second
row. Closing and reopening one slot are here too; cancelling is in ``cancel``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from holidays import country_holidays

from audit import record
from audit.chain import Actor
from booking.models import BookingPolicy, Channel, Slot, VaccineProduct, Venue
from booking.services.planning.base import (
    JAPAN,
    PlanningRefused,
    check_slot,
    invalidate_on_commit,
    slot_day,
)

MAX_PLANNED_SLOTS = 20_000
MAX_PLAN_DAYS = 366
SLOT_SOURCES = ("generator", "csv")


def _too_many() -> str:
    return _("一度に作成できる枠は%(slots)s件までです。期間を分けて作成してください。") % {
        "slots": f"{MAX_PLANNED_SLOTS:,}"
    }


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """One slot to create: the times are aware (Asia/Tokyo when planned here)."""

    venue_id: int
    product_id: int
    starts_at: datetime
    ends_at: datetime
    capacity_web: int
    capacity_line: int
    capacity_call_centre: int

    @property
    def day(self) -> date:
        return self.starts_at.astimezone(JAPAN).date()

    @property
    def capacity(self) -> int:
        return self.capacity_web + self.capacity_line + self.capacity_call_centre


@dataclass(frozen=True)
class SlotPattern:
    """What the generator form asks: days, opening hours, slot length, capacity split."""

    venue: Venue
    product: VaccineProduct
    first_day: date
    last_day: date
    weekdays: frozenset[int]  # date.weekday(): Monday 0 ... Sunday 6
    opens: time
    closes: time
    slot_minutes: int
    capacity_web: int
    capacity_line: int
    capacity_call_centre: int
    break_from: time | None = None
    break_to: time | None = None
    # No slots on national holidays and over the new year (12/29-1/3), when municipal
    # offices and most clinics are closed.
    skip_holidays: bool = False

    def days_left_out(self) -> list[tuple[date, str]]:
        """The days of the pattern's weekdays that ``skip_holidays`` leaves out, named."""
        if not self.skip_holidays:
            return []
        closed = closed_days(self.first_day, self.last_day)
        return [
            (day, name) for day, name in sorted(closed.items()) if day.weekday() in self.weekdays
        ]


# The new-year holidays of municipal offices (行政機関の休日に関する法律).
_NEW_YEAR = ((12, 29), (12, 30), (12, 31), (1, 1), (1, 2), (1, 3))


def closed_days(first: date, last: date) -> dict[date, str]:
    """Japan's national holidays from ``first`` to ``last`` (substitute holidays and
    citizens' holidays included), and the new-year days municipal offices close, each
    with its name in Japanese."""
    found = {
        day: str(name)
        for day, name in country_holidays(
            "JP", years=range(first.year, last.year + 1), language="ja"
        ).items()
        if first <= day <= last
    }
    for year in range(first.year, last.year + 1):
        for month, day_of_month in _NEW_YEAR:
            day = date(year, month, day_of_month)
            if first <= day <= last:
                found.setdefault(day, _("年末年始"))
    return found


def slot_pattern_plan(
    pattern: SlotPattern, *, not_before: datetime | None = None
) -> list[SlotSpec]:
    """Every slot the pattern describes, in time order, leaving out those that start before
    ``not_before`` (now, for the console: a slot already started is never made). Pure:
    reads and writes nothing.

    A slot is ``slot_minutes`` long, starts at ``opens`` or where the previous one ended,
    ends no later than ``closes`` and does not overlap the break.
    """
    if pattern.last_day < pattern.first_day:
        raise PlanningRefused("range", _("終了日は開始日以降にしてください。"))
    if (pattern.last_day - pattern.first_day).days + 1 > MAX_PLAN_DAYS:
        raise PlanningRefused(
            "range", _("一度に作成できるのは%(days)s日分までです。") % {"days": MAX_PLAN_DAYS}
        )
    if pattern.slot_minutes <= 0:
        raise PlanningRefused("length", _("枠の長さは1分以上にしてください。"))
    length = timedelta(minutes=pattern.slot_minutes)
    specs: list[SlotSpec] = []
    left_out = {day for day, _name in pattern.days_left_out()}
    day = pattern.first_day
    while day <= pattern.last_day:
        if day.weekday() in pattern.weekdays and day not in left_out:
            start = datetime.combine(day, pattern.opens, tzinfo=JAPAN)
            closes = datetime.combine(day, pattern.closes, tzinfo=JAPAN)
            while start + length <= closes:
                end = start + length
                if pattern.break_from and pattern.break_to:
                    break_start = datetime.combine(day, pattern.break_from, tzinfo=JAPAN)
                    break_end = datetime.combine(day, pattern.break_to, tzinfo=JAPAN)
                    if start < break_end and end > break_start:
                        # Resume when the break is over.
                        start = max(break_end, start + length)
                        continue
                if not_before is not None and start < not_before:
                    start = end
                    continue
                specs.append(
                    SlotSpec(
                        venue_id=pattern.venue.pk,
                        product_id=pattern.product.pk,
                        starts_at=start,
                        ends_at=end,
                        capacity_web=pattern.capacity_web,
                        capacity_line=pattern.capacity_line,
                        capacity_call_centre=pattern.capacity_call_centre,
                    )
                )
                if len(specs) > MAX_PLANNED_SLOTS:
                    raise PlanningRefused("too_many", _too_many())
                start = end
        day += timedelta(days=1)
    return specs


@dataclass
class DayPlan:
    day: date
    slots: int = 0  # planned, created or not
    # The places of the slots that will be created (a skipped slot adds none).
    capacity_web: int = 0
    capacity_line: int = 0
    capacity_call_centre: int = 0
    existing: int = 0  # a slot of the same venue, vaccine and start exists: skipped
    overlapping: int = 0  # overlaps an existing slot at another start: skipped
    past_cut_off: int = 0  # made, but its booking cut-off has passed: nobody can book it

    @property
    def capacity(self) -> int:
        return self.capacity_web + self.capacity_line + self.capacity_call_centre

    @property
    def new(self) -> int:
        return self.slots - self.existing - self.overlapping


@dataclass
class SlotPlanPreview:
    days: list[DayPlan] = field(default_factory=list)
    digest: str = ""
    # The cut-off, in hours before the start, that ``past_cut_off`` was counted with.
    cut_off_hours: int = 0

    def _sum(self, name: str) -> int:
        return sum(int(getattr(day, name)) for day in self.days)

    @property
    def years_apart(self) -> bool:
        """Its days fall in more than one year (the days are then written with the year)."""
        return len({day.day.year for day in self.days}) > 1

    @property
    def slots(self) -> int:
        return self._sum("slots")

    @property
    def capacity_web(self) -> int:
        return self._sum("capacity_web")

    @property
    def capacity_line(self) -> int:
        return self._sum("capacity_line")

    @property
    def capacity_call_centre(self) -> int:
        return self._sum("capacity_call_centre")

    @property
    def capacity(self) -> int:
        return self._sum("capacity")

    @property
    def existing(self) -> int:
        return self._sum("existing")

    @property
    def overlapping(self) -> int:
        return self._sum("overlapping")

    @property
    def new(self) -> int:
        return self._sum("new")

    @property
    def past_cut_off(self) -> int:
        return self._sum("past_cut_off")


def slot_plan_digest(specs: Sequence[SlotSpec]) -> str:
    """Names one plan: the generator writes only the plan its preview showed."""
    digest = hashlib.sha256()
    for spec in specs:
        digest.update(
            f"{spec.venue_id}|{spec.product_id}|{spec.starts_at.isoformat()}|"
            f"{spec.ends_at.isoformat()}|{spec.capacity_web}|{spec.capacity_line}|"
            f"{spec.capacity_call_centre}\n".encode()
        )
    return digest.hexdigest()[:32]


def _arrays(specs: Sequence[SlotSpec]) -> list[list[object]]:
    return [
        [s.venue_id for s in specs],
        [s.product_id for s in specs],
        [s.starts_at for s in specs],
        [s.ends_at for s in specs],
    ]


# Existing slots of the same venue and vaccine that a planned slot would duplicate (same start)
# or overlap (another start, times crossing; cancelled slots do not run, so do not count).
_CONFLICTS_SQL = """
SELECT t.i,
       EXISTS (SELECT 1 FROM booking_slot o
               WHERE o.venue_id = t.v AND o.product_id = t.p AND o.starts_at = t.s),
       EXISTS (SELECT 1 FROM booking_slot o
               WHERE o.venue_id = t.v AND o.product_id = t.p AND o.starts_at <> t.s
                 AND o.status <> 'cancelled' AND o.starts_at < t.e AND o.ends_at > t.s)
FROM unnest(%s::int[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[])
     AS t(i, v, p, s, e)
"""

_INSERT_SQL = """
INSERT INTO booking_slot (venue_id, product_id, starts_at, ends_at, status,
                          capacity_web, capacity_line, capacity_call_centre,
                          booked_web, booked_line, booked_call_centre, created_at)
SELECT t.v, t.p, t.s, t.e, 'open', t.cw, t.cl, t.cc, 0, 0, 0, now()
FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[],
            %s::int[], %s::int[], %s::int[]) AS t(v, p, s, e, cw, cl, cc)
WHERE NOT EXISTS (SELECT 1 FROM booking_slot o
                  WHERE o.venue_id = t.v AND o.product_id = t.p AND o.starts_at <> t.s
                    AND o.status <> 'cancelled' AND o.starts_at < t.e AND o.ends_at > t.s)
ON CONFLICT (venue_id, product_id, starts_at) DO NOTHING
RETURNING starts_at, capacity_web, capacity_line, capacity_call_centre
"""


def slot_conflicts(specs: Sequence[SlotSpec]) -> dict[int, str]:
    """Index in ``specs`` -> "existing" or "overlapping", for planned slots that would be
    skipped. One query; reads only."""
    if not specs:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_CONFLICTS_SQL, [list(range(len(specs))), *_arrays(specs)])
        rows = cursor.fetchall()
    conflicts: dict[int, str] = {}
    for index, same, overlap in rows:
        if same:
            conflicts[index] = "existing"
        elif overlap:
            conflicts[index] = "overlapping"
    return conflicts


def slot_plan_preview(specs: Sequence[SlotSpec]) -> SlotPlanPreview:
    """Per day: how many slots, the capacity per channel, and how many already exist.
    Writes nothing."""
    conflicts = slot_conflicts(specs)
    hours = BookingPolicy.current().closes_hours_before
    bookable_from = timezone.now() + timedelta(hours=hours)
    days: dict[date, DayPlan] = {}
    for index, spec in enumerate(specs):
        day = days.setdefault(spec.day, DayPlan(spec.day))
        day.slots += 1
        if spec.starts_at < bookable_from and index not in conflicts:
            day.past_cut_off += 1
        kind = conflicts.get(index)
        if kind == "existing":
            day.existing += 1
        elif kind == "overlapping":
            day.overlapping += 1
        else:
            day.capacity_web += spec.capacity_web
            day.capacity_line += spec.capacity_line
            day.capacity_call_centre += spec.capacity_call_centre
    return SlotPlanPreview(
        days=sorted(days.values(), key=lambda d: d.day),
        digest=slot_plan_digest(specs),
        cut_off_hours=hours,
    )


@dataclass(frozen=True)
class SlotCreation:
    planned: int
    created: int

    @property
    def skipped(self) -> int:
        return self.planned - self.created


def _check_specs(specs: Sequence[SlotSpec]) -> None:
    if len(specs) > MAX_PLANNED_SLOTS:
        raise PlanningRefused("too_many", _too_many())
    for spec in specs:
        if spec.ends_at <= spec.starts_at:
            raise ValueError("a slot ends after it starts")
        if min(spec.capacity_web, spec.capacity_line, spec.capacity_call_centre) < 0:
            raise ValueError("capacities are not negative")
        if spec.capacity <= 0:
            raise ValueError("a slot has capacity in at least one channel")
        if spec.starts_at.tzinfo is None:
            raise ValueError("slot times are aware")


def slots_create(
    *, specs: Sequence[SlotSpec], source: str, actor: Actor, ip: str | None = None
) -> SlotCreation:
    """Create the planned slots that do not exist yet; running it twice creates nothing more.

    Venues must be open and offer the vaccine (when they list vaccines at all). Concurrent
    runs for the same venue take turns (a lock on the venue row), so their overlap checks
    see each other's slots.
    """
    if source not in SLOT_SOURCES:
        raise ValueError(f"unknown slot source {source!r}")
    _check_specs(specs)
    if not specs:
        return SlotCreation(planned=0, created=0)
    venue_ids = sorted({s.venue_id for s in specs})
    product_ids = sorted({s.product_id for s in specs})
    with transaction.atomic():
        venues = {
            v.pk: v
            for v in Venue.objects.select_for_update(no_key=True)
            .filter(pk__in=venue_ids)
            .order_by("pk")
        }
        offered = set(
            Venue.products.through.objects.filter(venue_id__in=venue_ids).values_list(
                "venue_id", "vaccineproduct_id"
            )
        )
        listing = {venue_id for venue_id, _product in offered}
        active = set(
            VaccineProduct.objects.filter(pk__in=product_ids, active=True).values_list(
                "pk", flat=True
            )
        )
        for spec in specs:
            venue = venues.get(spec.venue_id)
            if venue is None or not venue.is_open:
                raise PlanningRefused("venue_closed", _("受付中でない会場には枠を作成できません。"))
            if spec.product_id not in active:
                raise PlanningRefused("product_inactive", _("使用していないワクチンです。"))
            if spec.venue_id in listing and (spec.venue_id, spec.product_id) not in offered:
                raise PlanningRefused(
                    "product_not_offered", _("この会場では扱っていないワクチンです。")
                )
        arrays = _arrays(specs) + [
            [s.capacity_web for s in specs],
            [s.capacity_line for s in specs],
            [s.capacity_call_centre for s in specs],
        ]
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_SQL, arrays)
            created = cursor.fetchall()
        created_starts = [row[0] for row in created]
        days = sorted({s.day for s in specs})
        record(
            action="slots.created",
            actor=actor,
            ip=ip,
            details={
                "source": source,
                "planned": len(specs),
                "created": len(created_starts),
                "skipped": len(specs) - len(created_starts),
                "venues": venue_ids,
                "products": product_ids,
                "first_day": days[0].isoformat(),
                "last_day": days[-1].isoformat(),
                # The places added: of the slots created, not of those skipped.
                "capacity_web": sum(row[1] for row in created),
                "capacity_line": sum(row[2] for row in created),
                "capacity_call_centre": sum(row[3] for row in created),
            },
        )
        invalidate_on_commit(start.astimezone(JAPAN).date() for start in created_starts)
    return SlotCreation(planned=len(specs), created=len(created_starts))


def slot_close(*, slot: Slot, actor: Actor, ip: str | None = None) -> Slot:
    """受付停止: no new bookings; the bookings already made stay. Closing a closed slot is a
    no-op; a cancelled slot stays cancelled."""
    check_slot(slot)
    with transaction.atomic():
        current = Slot.objects.select_for_update().get(pk=slot.pk)
        if current.status == Slot.Status.CANCELLED:
            raise PlanningRefused("cancelled", _("中止した枠は受付停止にできません。"))
        if current.status == Slot.Status.OPEN:
            current.status = Slot.Status.CLOSED
            current.save(update_fields=["status"])
            record(
                action="slot.closed",
                actor=actor,
                target=current,
                ip=ip,
                details={"booked": _booked_total(current)},
            )
            invalidate_on_commit([slot_day(current)])
    return current


def slot_reopen(*, slot: Slot, actor: Actor, ip: str | None = None) -> Slot:
    """Take bookings again in a closed or cancelled slot that has not started."""
    check_slot(slot)
    with transaction.atomic():
        current = Slot.objects.select_for_update().get(pk=slot.pk)
        if current.status == Slot.Status.OPEN:
            return current
        if current.starts_at <= timezone.now():
            raise PlanningRefused("started", _("開始時刻を過ぎた枠は再開できません。"))
        previous = current.status
        current.status = Slot.Status.OPEN
        current.save(update_fields=["status"])
        record(
            action="slot.reopened",
            actor=actor,
            target=current,
            ip=ip,
            details={"previous_status": previous},
        )
        invalidate_on_commit([slot_day(current)])
    return current


def slot_capacity_change(
    *,
    slot: Slot,
    capacities: dict[str, int],
    actor: Actor,
    ip: str | None = None,
    seen: dict[str, int] | None = None,
) -> Slot:
    """Set a slot's places for each channel (more vials arrived, fewer doctors came): never
    below the places already booked through that channel (the bookings stay; the database
    refuses a slot booked over its capacity anyway), and not for a slot that has started or
    was cancelled. The residents' availability shows the change at once.

    ``seen``: the places the admin saw when they began (a form opened earlier); if another
    change came in between, refused rather than written over it."""
    check_slot(slot)
    if set(capacities) != set(Channel.values) or min(capacities.values()) < 0:
        raise ValueError(f"a capacity for each channel, none negative: {capacities!r}")
    with transaction.atomic():
        current = Slot.objects.select_for_update().get(pk=slot.pk)
        if current.status == Slot.Status.CANCELLED:
            raise PlanningRefused("cancelled", _("中止した枠の定員は変更できません。"))
        if current.starts_at <= timezone.now():
            raise PlanningRefused("started", _("開始時刻を過ぎた枠の定員は変更できません。"))
        changed_meanwhile = [
            f"{Channel(channel).label} {seen[channel]} → {current.capacity(channel)}"
            for channel in Channel.values
            if seen is not None and seen[channel] != current.capacity(channel)
        ]
        if changed_meanwhile:
            raise PlanningRefused(
                "changed_meanwhile",
                _(
                    "この画面を開いた後に、ほかの職員がこの枠の定員を変更しました（%(changes)s）。"
                    "変更していません。いまの定員を確かめて、もう一度入力してください。"
                )
                % {"changes": pgettext("joining items", "、").join(changed_meanwhile)},
            )
        below = {
            channel: _("%(channel)sの定員は、予約済みの%(booked)s人より少なくできません。")
            % {"channel": Channel(channel).label, "booked": current.booked(channel)}
            for channel in Channel.values
            if capacities[channel] < current.booked(channel)
        }
        if below:
            raise PlanningRefused("below_booked", " ".join(below.values()), by_channel=below)
        if sum(capacities.values()) <= 0:
            raise PlanningRefused(
                "no_capacity",
                _(
                    "いずれかの受付方法に1人以上の定員を設定してください（枠を閉じるときは受付停止にしてください）。"
                ),
            )
        changes = {
            channel: f"{current.capacity(channel)} → {capacities[channel]}"
            for channel in Channel.values
            if capacities[channel] != current.capacity(channel)
        }
        if not changes:
            raise PlanningRefused("unchanged", _("定員が変わっていません。"))
        for channel in changes:
            setattr(current, f"capacity_{channel}", capacities[channel])
        current.save(update_fields=[f"capacity_{channel}" for channel in changes])
        record(action="slot.capacity_changed", actor=actor, target=current, ip=ip, details=changes)
        invalidate_on_commit([slot_day(current)])
    return current


def _booked_total(slot: Slot) -> int:
    return sum(slot.booked(channel) for channel in Channel.values)
