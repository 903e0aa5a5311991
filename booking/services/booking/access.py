"""Who may book, through which channel, for which municipality."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from audit.chain import Actor
from booking.models import Channel, Voucher
from booking.models.bookings import made_in_current_schema


def resident_actor(voucher: Voucher) -> Actor:
    """The actor for a logged-in resident acting on their own voucher."""
    return Actor.resident(voucher.pk)


def _check_channel(channel: str) -> str:
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    return channel


def _check_actor(actor: Actor, channel: str, voucher_id: int) -> None:
    if actor.kind == Actor.RESIDENT:
        if channel not in (Channel.WEB, Channel.LINE):
            raise PermissionDenied("a resident books through the web or LINE")
        if actor.id != str(voucher_id):
            raise PermissionDenied("a resident acts on their own voucher only")
    elif actor.kind == Actor.STAFF:
        if channel != Channel.CALL_CENTRE:
            raise PermissionDenied("staff book with the call centre's capacity")
    elif actor.kind != Actor.SYSTEM:
        raise PermissionDenied(f"{actor.kind} may not book")


def _check_municipality(*instances: Any) -> None:
    for instance in instances:
        if instance is not None and not made_in_current_schema(instance):
            raise PermissionDenied(
                f"{type(instance).__name__} {instance.pk} is not of the current municipality"
            )
