"""The booking service counts what it did, by channel, once the booking has committed."""

from __future__ import annotations

from prometheus_client import REGISTRY

from audit.chain import Actor
from booking.services.booking import booking_cancel, booking_change, booking_create
from tests.booking.booking.conftest import World


def counted(what: str, channel: str, world: World) -> float:
    labels = {"channel": channel, "tenant": world.municipality.code}
    return REGISTRY.get_sample_value(f"sesshu_bookings_{what}_total", labels) or 0.0


def test_create_change_and_cancel_are_counted_through_the_channel_used(
    world: World, staff: Actor, django_capture_on_commit_callbacks
) -> None:
    before = {
        what: counted(what, channel, world)
        for what, channel in [("created", "line"), ("changed", "call_centre"), ("cancelled", "web")]
    }
    first, second = world.slot(days=3), world.slot(days=4)
    with django_capture_on_commit_callbacks(execute=True):
        booking = booking_create(
            voucher=world.resident, slot=first, channel="line", actor=world.resident_actor()
        )
    assert counted("created", "line", world) == before["created"] + 1
    with django_capture_on_commit_callbacks(execute=True):
        booking = booking_change(booking=booking, slot=second, channel="call_centre", actor=staff)
    assert counted("changed", "call_centre", world) == before["changed"] + 1
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking=booking, channel="web", actor=world.resident_actor())
    assert counted("cancelled", "web", world) == before["cancelled"] + 1
