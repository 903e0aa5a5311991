from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    """Where a booking comes from. Each slot gives each channel its own capacity."""

    WEB = "web", _("ウェブ")
    LINE = "line", _("LINE")
    CALL_CENTRE = "call_centre", _("コールセンター")


class BookedThrough(models.TextChoices):
    """How a booking was made, as the reports count it: through a channel, or at the venue's
    desk for a resident without one (whichever channel's place it took: ``Booking.channel``)."""

    WEB = Channel.WEB.value, Channel.WEB.label
    LINE = Channel.LINE.value, Channel.LINE.label
    CALL_CENTRE = Channel.CALL_CENTRE.value, Channel.CALL_CENTRE.label
    AT_THE_VENUE = "venue", _("会場の受付（予約なしで来場）")


class VaccineProduct(models.Model):
    """A vaccine the municipality offers, with the rules that go with it."""

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(_("ワクチン名"), max_length=60)
    maker = models.CharField(_("製造販売業者"), max_length=60, blank=True)
    doses_in_series = models.PositiveSmallIntegerField(_("接種回数（初回シリーズ）"), default=2)
    # Minimum days from the previous dose, e.g. 19 after a first Pfizer dose, 28 Moderna.
    interval_days = models.PositiveSmallIntegerField(_("接種間隔（日）"))
    minimum_age = models.PositiveSmallIntegerField(_("対象年齢（下限）"), default=12)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Venue(models.Model):
    name = models.CharField(_("会場名"), max_length=100)
    area = models.CharField(_("地区"), max_length=40, db_index=True)
    address = models.CharField(_("住所"), max_length=200)
    access_notes = models.CharField(_("交通案内"), max_length=300, blank=True)
    accessibility = models.CharField(_("バリアフリー情報"), max_length=300, blank=True)
    map_url = models.URLField(_("地図のURL"), blank=True)
    products = models.ManyToManyField(VaccineProduct, related_name="venues", blank=True)
    is_open = models.BooleanField(_("受付中"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["area", "name"]

    def __str__(self) -> str:
        return self.name


class Slot(models.Model):
    """予約枠: one venue, one time, one vaccine, and a capacity for each channel.

    The booked counters are claimed by one conditional UPDATE inside the booking transaction
    (``booking.services.booking``); the CHECK constraints make overbooking impossible even
    for a statement that forgot the condition.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("受付中")
        CLOSED = "closed", _("受付停止")
        CANCELLED = "cancelled", _("中止")

    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="slots")
    product = models.ForeignKey(VaccineProduct, on_delete=models.PROTECT, related_name="slots")
    starts_at = models.DateTimeField(_("開始"))
    ends_at = models.DateTimeField(_("終了"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    capacity_web = models.PositiveIntegerField(_("ウェブ枠"), default=0)
    capacity_line = models.PositiveIntegerField(_("LINE枠"), default=0)
    capacity_call_centre = models.PositiveIntegerField(_("コールセンター枠"), default=0)
    booked_web = models.PositiveIntegerField(default=0)
    booked_line = models.PositiveIntegerField(default=0)
    booked_call_centre = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "venue_id"]
        indexes = [models.Index(fields=["starts_at", "status"], name="slot_start_status")]
        constraints = [
            # One row per venue, vaccine and time: more places are more capacity, not a twin
            # row (and generating slots twice, e.g. the demo data, stays idempotent).
            models.UniqueConstraint(
                fields=["venue", "product", "starts_at"], name="one_slot_per_venue_product_time"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="slot_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(booked_web__lte=F("capacity_web")), name="slot_web_not_overbooked"
            ),
            models.CheckConstraint(
                condition=Q(booked_line__lte=F("capacity_line")), name="slot_line_not_overbooked"
            ),
            models.CheckConstraint(
                condition=Q(booked_call_centre__lte=F("capacity_call_centre")),
                name="slot_call_centre_not_overbooked",
            ),
        ]

    def __str__(self) -> str:
        return f"slot {self.pk} at venue {self.venue_id}"

    def capacity(self, channel: str) -> int:
        return int(getattr(self, f"capacity_{channel}"))

    def booked(self, channel: str) -> int:
        return int(getattr(self, f"booked_{channel}"))

    def remaining(self, channel: str) -> int:
        return self.capacity(channel) - self.booked(channel)
