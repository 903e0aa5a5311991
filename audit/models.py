from __future__ import annotations

from django.db import models

from audit.chain import Actor, ChainedEvent, ChainSeal

__all__ = ["Actor", "Event", "EventSeal"]


class Event(ChainedEvent):
    """One municipality's audit event (in the municipality's schema)."""

    class Meta(ChainedEvent.Meta):
        db_table = "audit_event"


class EventSeal(ChainSeal):
    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="seal")

    class Meta(ChainSeal.Meta):
        db_table = "audit_event_seal"
