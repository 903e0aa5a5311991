"""Planning writes for the municipal console: venues, slots (generated from a pattern or read
from a CSV file, closed, reopened, cancelled), and the exports' audit events.

One concept per module: ``venues``, ``slots``, ``cancel``, ``exports``; ``base`` holds what
they share. Callers import from here.
"""

from booking.services.planning.base import PlanningRefused
from booking.services.planning.cancel import (
    AffectedBooking,
    LinkedBooking,
    SlotCancelImpact,
    SlotCancellation,
    linked_active_bookings,
    slot_cancel,
    slot_cancel_impact,
)
from booking.services.planning.exports import EXPORT_KINDS, export_record
from booking.services.planning.slots import (
    MAX_PLAN_DAYS,
    MAX_PLANNED_SLOTS,
    SLOT_SOURCES,
    DayPlan,
    SlotCreation,
    SlotPattern,
    SlotPlanPreview,
    SlotSpec,
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
    "PlanningRefused",
    "SlotCancelImpact",
    "SlotCancellation",
    "SlotCreation",
    "SlotPattern",
    "SlotPlanPreview",
    "SlotSpec",
    "VenueDetails",
    "export_record",
    "linked_active_bookings",
    "slot_cancel",
    "slot_cancel_impact",
    "slot_close",
    "slot_conflicts",
    "slot_pattern_plan",
    "slot_plan_digest",
    "slot_plan_preview",
    "slot_reopen",
    "slots_create",
    "venue_close",
    "venue_create",
    "venue_reopen",
    "venue_update",
]
