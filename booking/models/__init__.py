"""Everything inside one municipality's schema, one concept per module."""

from booking.models.bookings import Booking, VaccinationRecord
from booking.models.eligibility import AgePhase, BookingPolicy
from booking.models.incident import ConsoleNetwork, Incident
from booking.models.notifications import (
    ContactPreference,
    Language,
    LineChannel,
    Notification,
    NotificationChannel,
    NotificationKind,
    NotificationSettings,
    NotificationTemplate,
)
from booking.models.registry import (
    RegistryColumnMapping,
    RegistryImport,
    RegistryImportCodes,
    RegistryImportError,
    RegistryImportRow,
)
from booking.models.residents import ResidentCredential, ResidentSession
from booking.models.staff import StaffInvitation, StaffMember, StaffSession
from booking.models.venues import BookedThrough, Channel, Slot, VaccineProduct, Venue
from booking.models.vouchers import Voucher

__all__ = [
    "AgePhase",
    "Booking",
    "BookingPolicy",
    "BookedThrough",
    "Channel",
    "ConsoleNetwork",
    "ContactPreference",
    "Incident",
    "Language",
    "LineChannel",
    "Notification",
    "NotificationChannel",
    "NotificationKind",
    "NotificationSettings",
    "NotificationTemplate",
    "RegistryColumnMapping",
    "RegistryImport",
    "RegistryImportCodes",
    "RegistryImportError",
    "RegistryImportRow",
    "ResidentCredential",
    "ResidentSession",
    "Slot",
    "StaffInvitation",
    "StaffMember",
    "StaffSession",
    "VaccinationRecord",
    "VaccineProduct",
    "Venue",
    "Voucher",
]
