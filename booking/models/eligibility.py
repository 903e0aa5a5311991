from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from sesshu.brief_cache import BriefCache
from tenants.db import current_schema

JAPAN = ZoneInfo("Asia/Tokyo")


class BookingPolicy(models.Model):
    """The municipality's booking rules (one row per schema)."""

    opens_days_ahead = models.PositiveSmallIntegerField(_("何日先まで予約できるか"), default=28)
    closes_hours_before = models.PositiveSmallIntegerField(
        _("予約・変更の締切（開始の何時間前）"), default=24
    )
    # None: each slot opens on its own, N days before it starts (a day's slots open one by
    # one through the day). A time: a day's slots open together, N days before the day at
    # that time (Japan): what residents are told ("every morning at 9:00, the day 28 days on").
    opens_at_time = models.TimeField(_("新しい日の予約の受付開始時刻"), null=True, blank=True)
    book_series_together = models.BooleanField(_("1回目と2回目をまとめて予約する"), default=False)
    cancel_cascades = models.BooleanField(_("1回目を取り消すと2回目も取り消す"), default=True)
    call_centre_phone = models.CharField(_("コールセンター電話番号"), max_length=20, blank=True)
    # Shown next to the number: a deadline may fall on a Sunday, and a resident should know
    # whether anyone answers then.
    call_centre_hours = models.CharField(
        _("コールセンターの受付時間"), max_length=60, blank=True, default="", db_default=""
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # ``current()`` reads row 1; a second row would be a policy nobody applies.
            models.CheckConstraint(condition=Q(id=1), name="booking_policy_single_row")
        ]

    def __str__(self) -> str:
        return "booking policy"

    def booking_opens_at(self, starts_at: datetime) -> datetime:
        """When booking a slot that starts at ``starts_at`` opens: ``opens_days_ahead`` days
        before it starts; with ``opens_at_time``, that many days before the slot's day, at
        that time in Japan (a day's slots open together)."""
        opens = self.day_opens_at(starts_at.astimezone(JAPAN).date())
        return opens if opens is not None else starts_at - timedelta(days=self.opens_days_ahead)

    def day_opens_on(self, day: date) -> date:
        """The day booking ``day``'s slots opens: ``opens_days_ahead`` days before it."""
        return day - timedelta(days=self.opens_days_ahead)

    def day_opens_at(self, day: date) -> datetime | None:
        """With ``opens_at_time``, when booking ``day``'s slots opens; None when each slot
        opens on its own (from ``opens_days_ahead`` days before that day, slot by slot)."""
        if self.opens_at_time is None:
            return None
        return datetime.combine(self.day_opens_on(day), self.opens_at_time, tzinfo=JAPAN)

    def last_day_open(self, now: datetime) -> date:
        """The last day (in Japan) with slots open to booking at ``now``: with
        ``opens_at_time``, the day before the usual one until that time of the day."""
        local = now.astimezone(JAPAN)
        last = local.date() + timedelta(days=self.opens_days_ahead)
        if self.opens_at_time is not None and local.time() < self.opens_at_time:
            return last - timedelta(days=1)
        return last

    def bookable_until(self, now: datetime) -> datetime:
        """The latest start of a slot open to booking at ``now`` (inclusive), as
        ``booking_opens_at`` decides."""
        if self.opens_at_time is None:
            return now + timedelta(days=self.opens_days_ahead)
        next_day = self.last_day_open(now) + timedelta(days=1)
        return datetime.combine(next_day, time.min, tzinfo=JAPAN) - timedelta(microseconds=1)

    @classmethod
    def current(cls) -> BookingPolicy:
        """This municipality's policy, created with the defaults on first use. Read on every
        resident page, so each process keeps it a few seconds (sesshu.brief_cache); saving
        it forgets it at once in the process that saves."""

        def load() -> BookingPolicy:
            policy, _created = cls.objects.get_or_create(pk=1)
            return policy

        policy = _policies.get(current_schema(), load)
        assert policy is not None
        return policy


_policies: BriefCache[BookingPolicy] = BriefCache()
_policies.forget_on_changes_to(BookingPolicy)


class AgePhase(models.Model):
    """Who may book from when: residents aged ``minimum_age`` or more (on the day of the
    appointment) from ``opens_at``. No phase that has opened covers them: not yet eligible."""

    name = models.CharField(_("名称"), max_length=60)
    minimum_age = models.PositiveSmallIntegerField(_("年齢（以上）"))
    opens_at = models.DateTimeField(_("予約開始日時"))

    class Meta:
        ordering = ["opens_at", "-minimum_age"]

    def __str__(self) -> str:
        return self.name

    @property
    def names_its_age(self) -> bool:
        """Its name already says the age (「65歳以上」): the pages do not say it twice."""
        return f"{self.minimum_age}歳" in self.name

    @classmethod
    def every(cls) -> tuple[AgePhase, ...]:
        """This municipality's phases, earliest first. A handful of rows read by every booking
        and the top page: kept like the policy (the tuple is shared; do not change its rows)."""
        phases = _phases.get(current_schema(), lambda: tuple(cls.objects.all()))
        assert phases is not None
        return phases

    @classmethod
    def covers(cls, *, age: int, at: datetime) -> bool:
        """Whether a phase that has opened by ``at`` includes residents of ``age``."""
        return any(phase.opens_at <= at and phase.minimum_age <= age for phase in cls.every())


_phases: BriefCache[tuple[AgePhase, ...]] = BriefCache()
_phases.forget_on_changes_to(AgePhase)
