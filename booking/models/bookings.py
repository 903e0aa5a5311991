from __future__ import annotations

import secrets
import unicodedata
from typing import Any

from django.db import connection, models
from django.db.models import Q
from django.db.models.signals import post_init
from django.utils.translation import gettext_lazy as _

from booking.models.venues import BookedThrough, Channel, Slot, VaccineProduct
from booking.models.vouchers import Voucher

# 予約番号: read aloud over the phone and typed at reception, so no 0/O or 1/I to confuse.
# 32 symbols, 10 of them: 50 random bits, so a number cannot be guessed from another.
BOOKING_NUMBER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
BOOKING_NUMBER_LENGTH = 10
_BOOKING_NUMBER_SET = frozenset(BOOKING_NUMBER_ALPHABET)


def booking_number_new() -> str:
    return "".join(secrets.choice(BOOKING_NUMBER_ALPHABET) for _ in range(BOOKING_NUMBER_LENGTH))


def booking_number_normalize(text: str) -> str:
    """What a resident or operator typed, as stored: full-width folded, upper case, without
    the hyphen and spaces of the printed form (``booking_number_display``)."""
    folded = unicodedata.normalize("NFKC", text or "").upper()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in _DASHES)


# Whatever a keyboard gives for the printed hyphen: ASCII, the Japanese long vowel mark, and
# the dashes and minus an IME in full-width mode types (a Mac's gives U+2212).
_DASHES = "-ー‐‑‒–—―−－"


def booking_number_is_well_formed(number: str) -> bool:
    """Ten characters of the booking-number alphabet: anything else is not worth a query
    (and a stray NUL from a pasted text would not even reach the database)."""
    return len(number) == BOOKING_NUMBER_LENGTH and set(number) <= _BOOKING_NUMBER_SET


def booking_number_display(number: str) -> str:
    """``ABCDE-FGHJK``: two groups of five are easier to read back than ten in a row."""
    half = len(number) // 2
    return f"{number[:half]}-{number[half:]}" if len(number) > 5 else number


# How each character of a booking number is said on the phone: letters that sound alike in
# Japanese (B/D/E/G/P/T/V/Z, M/N) are told apart by a word that starts with them — and where
# Japanese hears the same sound for two letters (L and R: ラ行; B and V: バ行), by words that
# do not both start with it (LサイズのL, VサインのV, as every caller knows them).
_SPOKEN = {
    **dict(
        zip("23456789", ["に", "さん", "よん", "ご", "ろく", "なな", "はち", "きゅう"], strict=True)
    ),
    "A": "エー（アップルのA）",
    "B": "ビー（ベースボールのB）",
    "C": "シー（シティのC）",
    "D": "ディー（ドッグのD）",
    "E": "イー（エッグのE）",
    "F": "エフ（フラワーのF）",
    "G": "ジー（ゴルフのG）",
    "H": "エイチ（ホテルのH）",
    "J": "ジェー（ジャパンのJ）",
    "K": "ケー（キングのK）",
    "L": "エル（LサイズのL）",
    "M": "エム（マウンテンのM）",
    "N": "エヌ（ニッポンのN）",
    "P": "ピー（ピアノのP）",
    "Q": "キュー（クイーンのQ）",
    "R": "アール（ラジオのR）",
    "S": "エス（サンのS）",
    "T": "ティー（タイガーのT）",
    "U": "ユー（ユニフォームのU）",
    "V": "ブイ（VサインのV）",
    "W": "ダブリュー（ウォーターのW）",
    "X": "エックス（エックス線のX）",
    "Y": "ワイ（ヨットのY）",
    "Z": "ゼット（ゼブラのZ）",
}


def booking_number_spoken(number: str) -> list[str]:
    """The number's characters as an operator reads them out, one per item."""
    return [_SPOKEN.get(character, character) for character in number]


class Booking(models.Model):
    """A reservation of one dose in one slot for one voucher.

    Database constraints, not only the service, make two active bookings for the same voucher
    and dose impossible.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("予約中")
        CANCELLED = "cancelled", _("取消")
        CHECKED_IN = "checked_in", _("受付済み")
        VACCINATED = "vaccinated", _("接種済み")
        NO_SHOW = "no_show", _("来場なし")

    class CancelReason(models.TextChoices):
        """Why a booking was ended other than by its resident or the call centre: kept on
        the booking (``cancel_reason``), the reports count it apart from cancellations, and
        the trail records it with the cancellation."""

        DEFERRED = "deferred", _("接種の見合わせ（会場での予診の結果など）")
        SLOT_CANCELLED = "slot_cancelled", _("予約枠の中止（市区町村の都合）")

    booking_number = models.CharField(_("予約番号"), max_length=12, unique=True)
    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="bookings")
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="bookings")
    dose = models.PositiveSmallIntegerField(_("接種回数"))
    # The channel whose places the booking holds: a change moves it to the channel it was
    # changed through (a web booking changed by phone holds the call centre's places).
    channel = models.CharField(_("予約経路"), max_length=12, choices=Channel.choices)
    # The channel it was made through (or the venue's desk), never changed: what the reports
    # count it by.
    booked_through = models.CharField(
        _("予約したときの受付方法"), max_length=12, choices=BookedThrough.choices
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    # Set when this booking was made together with the previous dose's booking.
    linked_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="linked"
    )
    actor_kind = models.CharField(max_length=20)
    actor_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A change moves the booking to another slot and keeps its number (booking_change).
    changed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Empty for a booking cancelled by its resident, the call centre or a cancelled slot.
    cancel_reason = models.CharField(
        _("取消の理由"),
        max_length=20,
        choices=CancelReason.choices,
        blank=True,
        default="",
        db_default="",
    )

    LIVE_STATUSES = (Status.ACTIVE, Status.CHECKED_IN)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["voucher", "dose"],
                condition=Q(status__in=["active", "checked_in"]),
                name="one_live_booking_per_voucher_and_dose",
            ),
            models.CheckConstraint(
                condition=Q(booked_through__in=BookedThrough.values),
                name="booking_booked_through_known",
            ),
        ]
        indexes = [models.Index(fields=["slot", "status"], name="booking_slot_status")]

    def __str__(self) -> str:
        return f"booking {self.booking_number}"

    @property
    def deferred(self) -> bool:
        """Ended at the venue: the doctor's pre-screening put the dose off."""
        return (
            self.status == self.Status.CANCELLED
            and self.cancel_reason == self.CancelReason.DEFERRED
        )

    @property
    def called_off(self) -> bool:
        """Cancelled because the municipality cancelled its slot, not by anyone's choice."""
        return (
            self.status == self.Status.CANCELLED
            and self.cancel_reason == self.CancelReason.SLOT_CANCELLED
        )

    @property
    def status_label(self) -> str:
        """The status as staff and residents read it: a deferral is not a cancellation."""
        return str(_("接種見合わせ")) if self.deferred else self.get_status_display()


class StandingRecords(models.Manager["VaccinationRecord"]):
    """The records that stand: not withdrawn as a mistake."""

    def get_queryset(self) -> models.QuerySet[VaccinationRecord]:
        return super().get_queryset().filter(voided_at__isnull=True)


class VaccinationRecord(models.Model):
    """A dose given (接種記録): what drives eligibility for the next one, and VRS exports.

    A record made by mistake is withdrawn (``voided_at``), never deleted: a VRS export made
    before then held it, and the breach-scope report asks the export's query again later
    (``booking.selectors.vaccinations``). ``objects`` are the records that stand;
    ``every_record`` includes the withdrawn ones."""

    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="vaccinations")
    booking = models.OneToOneField(
        Booking, null=True, blank=True, on_delete=models.SET_NULL, related_name="vaccination"
    )
    dose = models.PositiveSmallIntegerField(_("接種回数"))
    product = models.ForeignKey(VaccineProduct, on_delete=models.PROTECT, related_name="+")
    lot_number = models.CharField(_("ロット番号"), max_length=30)
    vaccinated_on = models.DateField(_("接種日"))
    venue_name = models.CharField(_("接種会場"), max_length=100)
    doctor = models.CharField(_("医師名"), max_length=60, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)
    actor_kind = models.CharField(max_length=20)
    actor_id = models.CharField(max_length=64, blank=True)
    # Withdrawn as recorded by mistake (the trail says by whom and why); its booking is
    # unlinked, to be recorded again.
    voided_at = models.DateTimeField(null=True, blank=True)

    every_record = models.Manager()
    objects = StandingRecords()

    class Meta:
        ordering = ["voucher_id", "dose"]
        default_manager_name = "objects"
        base_manager_name = "every_record"
        constraints = [
            # One standing record per dose (the name kept from before records could be
            # withdrawn: the previous release's code recognises it).
            models.UniqueConstraint(
                fields=["voucher", "dose"],
                condition=Q(voided_at__isnull=True),
                name="one_record_per_voucher_and_dose",
            )
        ]

    def __str__(self) -> str:
        return f"dose {self.dose} of voucher {self.voucher_id}"


# --- Which municipality an object came from -------------------------------------------------
# Primary keys repeat across municipalities' schemas: voucher 17 of B is a different person
# from voucher 17 of A. An object loaded (or built) under one municipality and handed to code
# running under another would silently address the other municipality's row with the same id.
# Each instance remembers the schema it was made in; services and selectors compare it with
# the connection's before they use it (``made_in_current_schema``).

_SCHEMA_ATTRIBUTE = "_sesshu_schema"


def _remember_schema(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    instance.__dict__[_SCHEMA_ATTRIBUTE] = getattr(connection, "schema_name", None)


def made_in_current_schema(instance: models.Model) -> bool:
    schema = instance.__dict__.get(_SCHEMA_ATTRIBUTE)
    return schema is not None and schema == getattr(connection, "schema_name", None)


for _model in (Voucher, Slot, Booking, VaccinationRecord):
    post_init.connect(_remember_schema, sender=_model, weak=False, dispatch_uid=f"schema:{_model}")
