"""Reads of the audit trail for the trail pages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from audit.chain import Actor
from audit.models import Event
from booking.services.callcentre import reveal_note_open
from tenants.crypto import DecryptionFailed

PAGE_SIZE = 100
_HIDDEN_DETAILS = ("note_id", "note_sealed")


@dataclass(frozen=True)
class TrailRow:
    event: Event
    actor_label: str
    details_text: str
    note: str


def _details_text(details: dict[str, Any]) -> str:
    shown = {key: value for key, value in details.items() if key not in _HIDDEN_DETAILS}
    return json.dumps(shown, ensure_ascii=False, sort_keys=True) if shown else ""


def _note(details: dict[str, Any]) -> str:
    try:
        return reveal_note_open(details)
    except DecryptionFailed:
        return _("（復号できません）")


def trail_page(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    action: str | None = None,
    actor_kind: str | None = None,
    actor_id: str | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[TrailRow], int | None]:
    """Newest first; returns the rows and the ``before`` value of the next (older) page."""
    events = Event.objects.all()
    if start is not None:
        events = events.filter(occurred_at__gte=start)
    if end is not None:
        events = events.filter(occurred_at__lt=end)
    if action:
        events = events.filter(action__startswith=action)
    if actor_kind:
        events = events.filter(actor_kind=actor_kind)
    if actor_id:
        events = events.filter(actor_id=actor_id)
    if before is not None:
        events = events.filter(seq__lt=before)
    page = list(events.order_by("-seq")[: limit + 1])
    more = page[limit - 1].seq if len(page) > limit else None
    page = page[:limit]
    staff_ids = {
        int(event.actor_id)
        for event in page
        if event.actor_kind == Actor.STAFF and event.actor_id.isdigit()
    }
    emails = dict(get_user_model().objects.filter(pk__in=staff_ids).values_list("pk", "email"))
    rows = []
    for event in page:
        label = f"{event.actor_kind}:{event.actor_id}" if event.actor_id else event.actor_kind
        if event.actor_kind == Actor.STAFF and event.actor_id.isdigit():
            email = emails.get(int(event.actor_id))
            if email:
                label = f"{label} ({email})"
        details = event.details if isinstance(event.details, dict) else {}
        rows.append(TrailRow(event, label, _details_text(details), _note(details)))
    return rows, more
