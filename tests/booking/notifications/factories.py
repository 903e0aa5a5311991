"""Residents, venues, slots and bookings for notification tests, made directly in a schema.

The booking service belongs to another part of the code; these rows are what it would leave
behind. Personal fields are sealed exactly as the registry import seals them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from booking.models import Booking, Slot, VaccineProduct, Venue, Voucher
from tenants.crypto import cipher_for
from tenants.db import current_municipality

RESIDENT_NAME = "小平 花子"
RESIDENT_KANA = "コダイラ ハナコ"
RESIDENT_BIRTH_DATE = "1948-03-15"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Resident:
    voucher: Voucher
    name: str
    birth_date: str


def make_voucher(number: str | None = None) -> Resident:
    voucher_number = number or f"90{next(_numbers):08d}"
    cipher = cipher_for(current_municipality())
    personal = cipher.seal_record(
        {
            "name": RESIDENT_NAME,
            "name_kana": RESIDENT_KANA,
            "birth_date": RESIDENT_BIRTH_DATE,
            "sex": "2",
            "postal_code": "1878701",
            "address": "東京都小平市小川町2-1333",
            "phone": "0423411211",
            "email": None,
            "address_number": "000123456",
        },
        table="booking_voucher",
        row_id=voucher_number,
    )
    voucher = Voucher.objects.create(
        voucher_number=voucher_number, personal=personal, content_hash=b"x" * 32, dose=0
    )
    return Resident(voucher=voucher, name=RESIDENT_NAME, birth_date=RESIDENT_BIRTH_DATE)


def make_slot(starts_at: datetime | None = None, *, venue: Venue | None = None) -> Slot:
    product, _ = VaccineProduct.objects.get_or_create(
        code="comirnaty", defaults={"name": "コミナティ", "interval_days": 21}
    )
    venue = venue or Venue.objects.create(
        name="小平市役所 健康センター", area="小川", address="東京都小平市小川町2-1333"
    )
    starts_at = starts_at or timezone.now() + timedelta(days=3)
    return Slot.objects.create(
        venue=venue,
        product=product,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        capacity_web=100,
        capacity_line=10,
        capacity_call_centre=10,
    )


def make_booking(resident: Resident, slot: Slot, *, dose: int = 1) -> Booking:
    return Booking.objects.create(
        booking_number=f"R{next(_numbers):09d}",
        voucher=resident.voucher,
        slot=slot,
        dose=dose,
        channel="web",
        booked_through="web",
        actor_kind="resident",
        actor_id=str(resident.voucher.pk),
    )


def set_contacts(
    resident: Resident,
    *,
    email: str | None = None,
    phone: str | None = None,
    line_user_id: str | None = None,
    language: str = "ja",
) -> None:
    """Give the resident the channels asked for, as my page and LINE Login would."""
    from audit.chain import Actor
    from booking.models import ContactPreference
    from booking.services.notifications import contact_preferences_update

    if line_user_id:
        # What line_account_link stores once the ID token is verified.
        cipher = cipher_for(current_municipality())
        preference, _ = ContactPreference.objects.get_or_create(voucher=resident.voucher)
        preference.line_user_id = cipher.encrypt_field(
            line_user_id,
            table=ContactPreference.TABLE,
            column="line_user_id",
            row_id=resident.voucher.voucher_number,
        )
        preference.line_linked_at = timezone.now()
        preference.save()
    channels = [
        name for name, value in (("email", email), ("sms", phone), ("line", line_user_id)) if value
    ]
    contact_preferences_update(
        voucher=resident.voucher,
        email=email,
        phone=phone,
        channels=channels,
        language=language,
        actor=Actor.resident(str(resident.voucher.pk)),
        ip=None,
    )
