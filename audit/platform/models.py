from __future__ import annotations

from django.db import models

from audit.chain import ChainedEvent, ChainSeal


class PlatformEvent(ChainedEvent):
    """An event of the control plane (in the public schema)."""

    class Meta(ChainedEvent.Meta):
        db_table = "audit_platform_event"


class PlatformEventSeal(ChainSeal):
    event = models.OneToOneField(PlatformEvent, on_delete=models.PROTECT, related_name="seal")

    class Meta(ChainSeal.Meta):
        db_table = "audit_platform_event_seal"
