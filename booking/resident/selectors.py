"""Reads for the residents' pages that the booking selectors do not cover.

Nothing here decrypts: the pages show only the voucher number, bookings, doses, and whether
a contact address is registered (ARCHITECTURE.md: every other field is masked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.translation import get_language

from audit.chain import Actor
from audit.models import Event
from booking.models import (
    AgePhase,
    Booking,
    Incident,
    Notification,
    Slot,
    Voucher,
)
from booking.models.notifications import Language, NotificationKind
from booking.notifications.line_channel import line_offered
from booking.selectors.residents import booking_cancellation, contact_preference_of
from booking.selectors.slots import slot_with_venue_and_product
from booking.services.notifications import reminders_sent


@dataclass(frozen=True)
class Phases:
    """Who may book now (phases that have opened) and who comes next."""

    open: list[AgePhase]
    upcoming: list[AgePhase]


def age_phases(now: datetime | None = None) -> Phases:
    moment = now or timezone.now()
    phases = AgePhase.every()
    return Phases(
        open=[phase for phase in phases if phase.opens_at <= moment],
        upcoming=[phase for phase in phases if phase.opens_at > moment],
    )


@dataclass(frozen=True)
class ContactStatus:
    email_registered: bool
    phone_registered: bool
    line_linked: bool
    channels: list[str]
    language: str  # Language
    # The municipality sends notices by LINE: linking is offered (an account linked before
    # the municipality stopped can still be unlinked).
    line_offered: bool
    # The municipality sends reminders the day before (its admin can switch them off).
    reminders: bool = True

    @property
    def line_shown(self) -> bool:
        return self.line_offered or self.line_linked


def contact_status(voucher: Voucher) -> ContactStatus:
    """Registered or not, and the channels chosen — never the addresses themselves."""
    offered = line_offered()
    reminders = reminders_sent()
    preference = contact_preference_of(voucher.pk)
    if preference is None:
        # Nothing chosen yet: messages in the language the resident reads the site in.
        language = Language.EN if (get_language() or "").startswith("en") else Language.JA
        return ContactStatus(False, False, False, [], language, offered, reminders)
    return ContactStatus(
        email_registered=preference.email is not None,
        phone_registered=preference.phone is not None,
        line_linked=preference.line_user_id is not None,
        channels=preference.consented_channels(),
        language=preference.language,
        line_offered=offered,
        reminders=reminders,
    )


def slot_for_booking(slot_id: int, *, channel: str) -> Slot | None:
    """An open slot with its venue and vaccine, if ``channel`` has places in it at all.

    Slots are public (venue, time, vaccine); whether the resident may book it is the booking
    service's decision, made again when they confirm.
    """
    return slot_with_venue_and_product(slot_id, open_to=channel)


def incident_notice() -> str:
    """The municipality's own words while in incident mode ("" if it gave none)."""
    return Incident.current_notice()


def slot_cancellation_notice(booking: Booking) -> str:
    """What the municipality wrote to the residents of a slot it cancelled, as this
    booking's resident was sent it, or, for a resident it could not be sent to (no contact
    registered), as the cancellation recorded it; "" if it wrote nothing."""
    context = (
        Notification.objects.filter(booking_id=booking.pk, kind=NotificationKind.SLOT_CANCELLED)
        .order_by("pk")
        .values_list("context", flat=True)
        .first()
    )
    notice = context.get("notice") if isinstance(context, dict) else None
    if isinstance(notice, str):
        return notice
    from booking.services.planning.cancel import SLOT_CANCELLED  # the record it keeps

    for details in (
        Event.objects.filter(action=SLOT_CANCELLED, target_id=str(booking.slot_id))
        .order_by("-seq")
        .values_list("details", flat=True)
    ):
        if isinstance(details, dict) and booking.pk in (details.get("bookings") or []):
            text = details.get("notice_text")
            return text if isinstance(text, str) else ""
    return ""


def cancelled_by_staff(booking: Booking) -> bool:
    """Whether the booking's cancellation was made by the municipality's staff (the call
    centre, for a caller who may not be the resident), read from its ``booking.cancelled``
    event: the resident is told, as a cancellation they did not make themselves."""
    cancellation = booking_cancellation(booking)
    return cancellation is not None and cancellation[0] == Actor.STAFF
