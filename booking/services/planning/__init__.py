"""Planning writes for the municipal console: the booking rules (window and options, age
phases, vaccines), venues, slots (generated from a pattern or read from a CSV file, closed,
reopened, cancelled), and the exports' audit events.

One concept per module: ``rules``, ``venues``, ``slots``, ``cancel``, ``exports``; ``base``
holds what they share. Callers import from here.
"""

from booking.services.planning.base import PlanningRefused
from booking.services.planning.cancel import (
    AffectedBooking,
    LinkedBooking,
    SlotCancelImpact,
    SlotCancellation,
    bookings_cancelled_with_their_slot,
    linked_active_bookings,
    slot_cancel,
    slot_cancel_impact,
    slot_cancellation_told,
    slots_cancelled_once,
)
from booking.services.planning.exports import EXPORT_KINDS, export_record
from booking.services.planning.rules import (
    PhaseDetails,
    PolicyDetails,
    VaccineDetails,
    age_phase_create,
    age_phase_delete,
    age_phase_update,
    booking_policy_update,
    vaccine_create,
    vaccine_update,
)
from booking.services.planning.slots import (
    MAX_PLAN_DAYS,
    MAX_PLANNED_SLOTS,
    SLOT_SOURCES,
    DayPlan,
    SlotCreation,
    SlotPattern,
    SlotPlanPreview,
    SlotSpec,
    slot_capacity_change,
    slot_close,
    slot_conflicts,
    slot_pattern_plan,
    slot_plan_digest,
    slot_plan_preview,
    slot_reopen,
    slots_create,
)
from booking.services.planning.venues import (
    VenueDetails,
    venue_close,
    venue_create,
    venue_reopen,
    venue_update,
)

__all__ = [
    "EXPORT_KINDS",
    "MAX_PLANNED_SLOTS",
    "MAX_PLAN_DAYS",
    "SLOT_SOURCES",
    "AffectedBooking",
    "DayPlan",
    "LinkedBooking",
    "PhaseDetails",
    "PlanningRefused",
    "PolicyDetails",
    "SlotCancelImpact",
    "SlotCancellation",
    "SlotCreation",
    "SlotPattern",
    "SlotPlanPreview",
    "SlotSpec",
    "VaccineDetails",
    "VenueDetails",
    "age_phase_create",
    "age_phase_delete",
    "age_phase_update",
    "booking_policy_update",
    "bookings_cancelled_with_their_slot",
    "export_record",
    "linked_active_bookings",
    "slot_cancel",
    "slot_cancel_impact",
    "slot_cancellation_told",
    "slot_capacity_change",
    "slot_close",
    "slot_conflicts",
    "slot_pattern_plan",
    "slot_plan_digest",
    "slot_plan_preview",
    "slot_reopen",
    "slots_cancelled_once",
    "slots_create",
    "venue_close",
    "venue_create",
    "venue_reopen",
    "vaccine_create",
    "vaccine_update",
    "venue_update",
]
