"""The reports dashboard: one aggregate query per report, a chart and a table of the same numbers.

Every figure is a count grouped in SQL (``GROUP BY`` day, channel, venue); Python only lays the
few grouped rows out on the calendar. Nothing personal is read: bookings are counted, never
loaded.

- bookings: bookings made per day (when they were made, Asia/Tokyo), by the channel they
  were made through (``booked_through``: a web booking changed by phone stays a web one),
  whatever became of them later — as every report by channel counts;
- fill: places taken / places offered per venue and slot day, from the slots' counters
  (cancelled slots left out);
- cancellations: bookings cancelled per day (when cancelled), by the channel they were made in;
- no_shows: bookings marked 来場なし per slot day, by channel;
- deferrals: bookings ended at the venue because the dose was put off (接種見合わせ, the
  doctor's pre-screening), per slot day, by channel — not counted among cancellations;
- doses: vaccinations recorded per vaccination day, by dose;
- attendance: what became of each venue's bookings of a slot day (vaccinated, checked in
  only, put off, 来場なし, never received) — the no-show rate a municipality watches per
  venue, and the bookings a venue never recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import TypeVar

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Trunc, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from booking.console.planning.charts import (
    PALETTE,
    BarChart,
    HeatMap,
    Series,
    heat_map,
    stacked_bars,
)
from booking.console.planning.common import JAPAN
from booking.models import BookedThrough, Booking, Slot, VaccinationRecord

K = TypeVar("K", bound=Hashable)
REPORT_KEYS = (
    "bookings",
    "fill",
    "cancellations",
    "no_shows",
    "deferrals",
    "doses",
    "attendance",
)


@dataclass(frozen=True)
class Report:
    key: str
    title: str
    description: str
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    chart: BarChart | HeatMap

    @property
    def is_heat_map(self) -> bool:
        return isinstance(self.chart, HeatMap)


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(first, clock.min, tzinfo=JAPAN),
        datetime.combine(last + timedelta(days=1), clock.min, tzinfo=JAPAN),
    )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _label(day: date) -> str:
    return f"{day.month}/{day.day}"


def _channel_series() -> list[Series]:
    """How bookings were made: the channels, then the venue's desk (walk-ins)."""
    return [
        Series(channel, str(label), PALETTE[index])
        for index, (channel, label) in enumerate(BookedThrough.choices)
    ]


def _stacked(
    key: str,
    title: str,
    description: str,
    *,
    heading: str,
    categories: Sequence[tuple[K, str, str]],
    series: Sequence[Series],
    grouped: Mapping[tuple[K, str], int],
    empty_rows: bool = True,
) -> Report:
    """A report of counts per category (a day, a minute) and series (a channel, a dose): a
    stacked bar per category and a table with a row per category (``empty_rows``: those
    with no count too) and a total. ``categories``: (the key in ``grouped``, the table's
    label, the chart's label)."""
    values = [
        {s.key: grouped.get((group, s.key), 0) for s in series} for group, _r, _c in categories
    ]
    return Report(
        key=key,
        title=title,
        description=description,
        columns=(heading, *(s.label for s in series), _("合計")),
        rows=tuple(
            (row_label, *(row[s.key] for s in series), sum(row.values()))
            for (_group, row_label, _chart), row in zip(categories, values, strict=True)
            if empty_rows or any(row.values())
        ),
        chart=stacked_bars(
            categories=[chart_label for _g, _r, chart_label in categories],
            series=series,
            values=values,
        ),
    )


def _per_day(first: date, last: date) -> list[tuple[date, str, str]]:
    return [(day, day.isoformat(), _label(day)) for day in _days(first, last)]


def _per_day_by_channel(
    key: str,
    title: str,
    description: str,
    grouped: dict[tuple[date, str], int],
    first: date,
    last: date,
) -> Report:
    return _stacked(
        key,
        title,
        description,
        heading=_("日付"),
        categories=_per_day(first, last),
        series=_channel_series(),
        grouped=grouped,
    )


def bookings_per_day(first: date, last: date) -> Report:
    start, end = _bounds(first, last)
    grouped = {
        (row["day"], row["booked_through"]): row["count"]
        for row in Booking.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=JAPAN))
        .values("day", "booked_through")
        .annotate(count=Count("id"))
        .order_by()
    }
    return _per_day_by_channel(
        "bookings",
        _("予約数（受付日別・受付方法別）"),
        _("その日に受け付けた予約の数です。後で取り消された予約も含みます。"),
        grouped,
        first,
        last,
    )


def cancellations_per_day(first: date, last: date) -> Report:
    start, end = _bounds(first, last)
    grouped = {
        (row["day"], row["booked_through"]): row["count"]
        for row in Booking.objects.filter(
            status=Booking.Status.CANCELLED, cancelled_at__gte=start, cancelled_at__lt=end
        )
        .exclude(cancel_reason=Booking.CancelReason.DEFERRED)
        .annotate(day=TruncDate("cancelled_at", tzinfo=JAPAN))
        .values("day", "booked_through")
        .annotate(count=Count("id"))
        .order_by()
    }
    return _per_day_by_channel(
        "cancellations",
        _("取消数（取消日別・予約したときの受付方法別）"),
        _(
            "その日に取り消された予約の数です（枠の中止による取消を含みます。"
            "会場での接種見合わせは含みません）。"
        ),
        grouped,
        first,
        last,
    )


def _per_slot_day(
    bookings: QuerySet[Booking], first: date, last: date
) -> dict[tuple[date, str], int]:
    start, end = _bounds(first, last)
    return {
        (row["day"], row["booked_through"]): row["count"]
        for row in bookings.filter(slot__starts_at__gte=start, slot__starts_at__lt=end)
        .annotate(day=TruncDate("slot__starts_at", tzinfo=JAPAN))
        .values("day", "booked_through")
        .annotate(count=Count("id"))
        .order_by()
    }


def no_shows_per_day(first: date, last: date) -> Report:
    return _per_day_by_channel(
        "no_shows",
        _("来場なし（接種予定日別・受付方法別）"),
        _("「来場なし」と記録された予約の数です。"),
        _per_slot_day(Booking.objects.filter(status=Booking.Status.NO_SHOW), first, last),
        first,
        last,
    )


def deferrals_per_day(first: date, last: date) -> Report:
    deferred = Booking.objects.filter(
        status=Booking.Status.CANCELLED, cancel_reason=Booking.CancelReason.DEFERRED
    )
    return _per_day_by_channel(
        "deferrals",
        _("接種見合わせ（接種予定日別・受付方法別）"),
        _(
            "会場で受付のあと、予診の結果などで接種を見合わせた予約の数です"
            "（取消数には含みません）。"
        ),
        _per_slot_day(deferred, first, last),
        first,
        last,
    )


def doses_per_day(first: date, last: date) -> Report:
    grouped: dict[tuple[date, str], int] = {}
    for row in (
        VaccinationRecord.objects.filter(vaccinated_on__gte=first, vaccinated_on__lte=last)
        .values("vaccinated_on", "dose")
        .annotate(count=Count("id"))
        .order_by()
    ):
        dose_key = str(min(int(row["dose"]), 3))
        key = (row["vaccinated_on"], dose_key)
        grouped[key] = grouped.get(key, 0) + int(row["count"])
    return _stacked(
        "doses",
        _("接種数（接種日別・回数別）"),
        _("接種記録の数です。"),
        heading=_("日付"),
        categories=_per_day(first, last),
        series=[
            Series("1", _("1回目"), PALETTE[0]),
            Series("2", _("2回目"), PALETTE[1]),
            Series("3", _("3回目以降"), PALETTE[2]),
        ],
        grouped=grouped,
    )


def fill_rate(first: date, last: date) -> Report:
    start, end = _bounds(first, last)
    capacity = F("capacity_web") + F("capacity_line") + F("capacity_call_centre")
    booked = F("booked_web") + F("booked_line") + F("booked_call_centre")
    held = ~Q(status=Slot.Status.CANCELLED)
    grouped = list(
        Slot.objects.filter(starts_at__gte=start, starts_at__lt=end)
        .annotate(day=TruncDate("starts_at", tzinfo=JAPAN))
        .values("venue_id", "venue__area", "venue__name", "day")
        .annotate(
            places=Coalesce(Sum(capacity, filter=held), 0),
            taken=Coalesce(Sum(booked, filter=held), 0),
            # A day called off (a typhoon) stays in the report: its slots are counted.
            cancelled=Count("id", filter=~held),
        )
        .order_by("venue__area", "venue__name", "venue_id", "day")
    )
    venues: list[tuple[int, str]] = []
    for row in grouped:
        if not venues or venues[-1][0] != row["venue_id"]:
            venues.append((row["venue_id"], row["venue__name"]))
    venue_index = {venue_id: index for index, (venue_id, _name) in enumerate(venues)}
    days = _days(first, last)
    day_index = {day: index for index, day in enumerate(days)}
    rates = {
        (venue_index[row["venue_id"]], day_index[row["day"]]): (
            int(row["taken"]),
            int(row["places"]),
        )
        for row in grouped
        if row["places"]
    }
    rows = tuple(
        (
            row["day"].isoformat(),
            row["venue__area"],
            row["venue__name"],
            int(row["places"]),
            int(row["taken"]),
            _percent(int(row["taken"]), int(row["places"])),
            int(row["cancelled"]),
        )
        for row in sorted(grouped, key=lambda r: (r["day"], r["venue__area"], r["venue__name"]))
    )
    return Report(
        key="fill",
        title=_("充足率（会場別・接種日別）"),
        description=_(
            "予約済みの人数を定員で割った割合です（中止した枠を除き、中止した枠の数は"
            "別の列に示します）。色が濃いほど埋まっています。白は枠がない日です。"
        ),
        columns=(
            _("日付"),
            _("地区"),
            _("会場"),
            _("定員"),
            _("予約済み"),
            _("充足率（%）"),
            _("中止した枠"),
        ),
        rows=rows,
        chart=heat_map(
            rows=[name for _id, name in venues], columns=[_label(d) for d in days], rates=rates
        ),
    )


def _outcome_series() -> list[Series]:
    return [
        Series("vaccinated", _("接種済み"), PALETTE[1]),
        Series("checked_in", _("受付のみ"), PALETTE[5]),
        Series("deferred", _("接種見合わせ"), PALETTE[4]),
        Series("no_show", _("来場なし"), PALETTE[2]),
        Series("active", _("未受付"), PALETTE[3]),
    ]


def attendance(first: date, last: date) -> Report:
    """Per venue and slot day, the bookings the slots held (those cancelled before the day
    left out, those put off at the venue in) by what became of them."""
    start, end = _bounds(first, last)
    outcome = {
        "vaccinated": Q(status=Booking.Status.VACCINATED),
        "checked_in": Q(status=Booking.Status.CHECKED_IN),
        "deferred": Q(status=Booking.Status.CANCELLED, cancel_reason=Booking.CancelReason.DEFERRED),
        "no_show": Q(status=Booking.Status.NO_SHOW),
        "active": Q(status=Booking.Status.ACTIVE),
    }
    grouped = list(
        Booking.objects.filter(slot__starts_at__gte=start, slot__starts_at__lt=end)
        .filter(~Q(status=Booking.Status.CANCELLED) | outcome["deferred"])
        .annotate(day=TruncDate("slot__starts_at", tzinfo=JAPAN))
        .values("day", "slot__venue_id", "slot__venue__area", "slot__venue__name")
        .annotate(**{key: Count("id", filter=where) for key, where in outcome.items()})
        .order_by("day", "slot__venue__area", "slot__venue__name", "slot__venue_id")
    )
    series = _outcome_series()
    per_day: dict[date, dict[str, int]] = {}
    for row in grouped:
        day = per_day.setdefault(row["day"], dict.fromkeys(outcome, 0))
        for key in outcome:
            day[key] += int(row[key])
    days = _days(first, last)
    empty = dict.fromkeys(outcome, 0)
    # A day not over yet has no attendance rate: its bookings are still to come.
    today = timezone.localdate(timezone=JAPAN)
    rows = []
    for row in grouped:
        counts = [int(row[s.key]) for s in series]
        booked = sum(counts)
        came = booked - int(row["no_show"]) - int(row["active"])
        rows.append(
            (
                row["day"].isoformat(),
                row["slot__venue__area"],
                row["slot__venue__name"],
                booked,
                *counts,
                _percent(came, booked) if row["day"] < today else "",
            )
        )
    return Report(
        key="attendance",
        title=_("来場状況（会場別・接種日別）"),
        description=_(
            "その日の枠の予約が、会場でどうなったかの数です（前もって取り消された予約は"
            "含みません）。来場率は、予約のうち会場で受付をした割合です（その日が終わってから"
            "出します）。「未受付」は"
            "受付も来場なしの記録もない予約で、日が過ぎても残っていれば記録漏れの"
            "おそれがあります。"
        ),
        columns=(
            _("日付"),
            _("地区"),
            _("会場"),
            _("予約"),
            *(s.label for s in series),
            _("来場率（%）"),
        ),
        rows=tuple(rows),
        chart=stacked_bars(
            categories=[_label(day) for day in days],
            series=series,
            values=[per_day.get(day, empty) for day in days],
        ),
    )


def _percent(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}" if whole else ""


REPORTS: dict[str, Callable[[date, date], Report]] = {
    "bookings": bookings_per_day,
    "fill": fill_rate,
    "cancellations": cancellations_per_day,
    "no_shows": no_shows_per_day,
    "deferrals": deferrals_per_day,
    "doses": doses_per_day,
    "attendance": attendance,
}


@dataclass(frozen=True)
class Headline:
    bookings_last_hour: int
    bookings_today: int
    places_next_week: int
    booked_next_week: int

    @property
    def fill_next_week(self) -> str:
        return _percent(self.booked_next_week, self.places_next_week)


def bookings_last_hour(now: datetime | None = None) -> Report:
    """Bookings made in each of the last sixty minutes, by channel: what an admin watches on
    the morning booking opens (UX.md "The admin's path"). One aggregate query; the table
    lists the minutes that had any."""
    now = timezone.now() if now is None else now
    last = now.astimezone(JAPAN).replace(second=0, microsecond=0)
    minutes = [last - timedelta(minutes=offset) for offset in range(59, -1, -1)]
    grouped = {
        (row["minute"], row["booked_through"]): row["count"]
        for row in Booking.objects.filter(created_at__gte=minutes[0])
        .annotate(minute=Trunc("created_at", "minute", tzinfo=JAPAN))
        .values("minute", "booked_through")
        .annotate(count=Count("id"))
        .order_by()
    }
    return _stacked(
        "last_hour",
        _("直近1時間の予約（1分ごと・受付方法別）"),
        _("1分ごとに受け付けた予約の数です。ページを再読み込みすると最新になります。"),
        heading=_("時刻"),
        categories=[(minute, f"{minute:%H:%M}", f"{minute:%H:%M}") for minute in minutes],
        series=_channel_series(),
        grouped=grouped,
        empty_rows=False,
    )


def headline() -> Headline:
    """What an admin watches on the day: bookings in the last hour and today, and how full
    the coming seven days are. Three aggregate queries."""
    now = timezone.now()
    today = timezone.localdate(timezone=JAPAN)
    start_of_day, _end = _bounds(today, today)
    last_hour = Booking.objects.filter(created_at__gte=now - timedelta(hours=1)).count()
    today_count = Booking.objects.filter(created_at__gte=start_of_day).count()
    week = (
        Slot.objects.filter(starts_at__gte=now, starts_at__lt=now + timedelta(days=7))
        .exclude(status=Slot.Status.CANCELLED)
        .aggregate(
            places=Sum(F("capacity_web") + F("capacity_line") + F("capacity_call_centre")),
            taken=Sum(F("booked_web") + F("booked_line") + F("booked_call_centre")),
        )
    )
    return Headline(last_hour, today_count, int(week["places"] or 0), int(week["taken"] or 0))
