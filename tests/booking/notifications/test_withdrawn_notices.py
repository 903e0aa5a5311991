"""A reminder or confirmation never goes out for a booking that was cancelled or moved since it
was queued: the booking service withdraws what is still pending, and the sender checks again
under its claim for what it had already taken."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from booking.models import Booking, Notification
from booking.notifications.delivery import Outcome, notification_deliver
from booking.notifications.reminders import reminders_queue_for_day
from booking.services.booking import booking_cancel, booking_change, booking_create
from booking.services.notifications import (
    WITHDRAWN_CANCELLED,
    WITHDRAWN_CHANGED,
    notification_enqueue,
)
from tenants.models import Municipality
from tests.booking.booking.conftest import JAPAN, World, build_world
from tests.booking.notifications.conftest import LINE_USER
from tests.booking.notifications.factories import Resident, set_contacts
from tests.booking.notifications.line_fake import LineFake

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant_a: Municipality) -> Iterator[World]:
    with tenant_context(tenant_a):
        world = build_world(tenant_a)
        set_contacts(Resident(world.resident, "", ""), line_user_id=LINE_USER)
        yield world


def _book(world: World, **slot: int) -> Booking:
    return booking_create(
        voucher=world.resident, slot=world.slot(**slot), channel="web", actor=world.resident_actor()
    )


def _rows(booking: Booking) -> dict[str, Notification]:
    return {row.kind: row for row in Notification.objects.filter(booking=booking)}


def _claimed_by_a_sender_that_stopped(row: Notification) -> None:
    """What a LINE sender leaves if it stopped after claiming: the next one takes it over."""
    Notification.objects.filter(pk=row.pk).update(
        status="sending", attempts=1, claimed_until=timezone.now() - timedelta(seconds=1)
    )


def test_cancelling_withdraws_the_pending_reminder_and_says_why(
    world: World, providers: LineFake, line_channel_a: None
) -> None:
    booking = _book(world)
    (reminder,) = notification_enqueue(kind="reminder", booking=booking)
    booking_cancel(booking=booking, channel="web", actor=world.resident_actor())

    rows = _rows(booking)
    for kind in ("reminder", "booking_created"):
        assert (rows[kind].status, rows[kind].last_error) == ("skipped", WITHDRAWN_CANCELLED)
    assert rows["reminder"].dedupe_key is None
    assert notification_deliver(notification_id=reminder.pk).outcome == Outcome.ALREADY_DONE
    # The cancellation itself is true and goes out.
    assert rows["booking_cancelled"].status == "pending"
    sent = notification_deliver(notification_id=rows["booking_cancelled"].pk)
    assert sent.outcome == Outcome.SENT
    (push,) = providers.delivered
    assert "取り消しました" in push.texts[0]
    assert not any("明日" in text for push in providers.delivered for text in push.texts)


def test_a_reminder_already_claimed_when_the_booking_was_cancelled_is_not_sent(
    world: World, providers: LineFake, line_channel_a: None
) -> None:
    booking = _book(world)
    (reminder,) = notification_enqueue(kind="reminder", booking=booking)
    _claimed_by_a_sender_that_stopped(reminder)
    booking_cancel(booking=booking, channel="web", actor=world.resident_actor())
    assert Notification.objects.get(pk=reminder.pk).status == "sending"  # not the service's

    assert notification_deliver(notification_id=reminder.pk).outcome == Outcome.SKIPPED
    reminder.refresh_from_db()
    assert (reminder.status, reminder.last_error) == ("skipped", WITHDRAWN_CANCELLED)
    assert providers.requests == []


def test_a_reminder_for_a_booking_moved_elsewhere_is_not_sent(
    world: World, providers: LineFake, line_channel_a: None
) -> None:
    booking = _book(world, days=3, hour=10)
    (reminder,) = notification_enqueue(kind="reminder", booking=booking)
    _claimed_by_a_sender_that_stopped(reminder)
    booking_change(
        booking=booking, slot=world.slot(days=4), channel="web", actor=world.resident_actor()
    )
    assert notification_deliver(notification_id=reminder.pk).outcome == Outcome.SKIPPED
    reminder.refresh_from_db()
    assert (reminder.status, reminder.last_error) == ("skipped", WITHDRAWN_CHANGED)
    assert providers.requests == []


def test_a_move_on_the_same_day_withdraws_the_old_reminder_and_queues_one_for_the_new_time(
    world: World, providers: LineFake, line_channel_a: None
) -> None:
    booking = _book(world, days=2, hour=10)
    day = booking.slot.starts_at.astimezone(JAPAN).date()
    assert reminders_queue_for_day(day=day).queued == 1
    old = _rows(booking)["reminder"]

    later = world.slot(days=2, hour=15)
    booking_change(booking=booking, slot=later, channel="web", actor=world.resident_actor())
    old.refresh_from_db()
    assert (old.status, old.last_error, old.dedupe_key) == ("skipped", WITHDRAWN_CHANGED, None)
    created = Notification.objects.get(booking=booking, kind="booking_created")
    assert (created.status, created.last_error) == ("skipped", WITHDRAWN_CHANGED)

    # The next reminder pass of the day queues the reminder for the slot it is now in.
    assert reminders_queue_for_day(day=day).queued == 1
    new = Notification.objects.get(booking=booking, kind="reminder", status="pending")
    assert new.context["slot_id"] == later.pk
    assert notification_deliver(notification_id=new.pk).outcome == Outcome.SENT
    changed = Notification.objects.get(booking=booking, kind="booking_changed")
    assert notification_deliver(notification_id=changed.pk).outcome == Outcome.SENT
    assert len(providers.delivered) == 2
    assert all("15:00" in push.texts[0] for push in providers.delivered)


def _legacy_reminder(booking: Booking) -> Notification:
    """A reminder queued before the context named its slot (only its time)."""
    (row,) = notification_enqueue(kind="reminder", booking=booking)
    context = {key: value for key, value in row.context.items() if key != "slot_id"}
    Notification.objects.filter(pk=row.pk).update(context=context)
    return row


def test_a_reminder_queued_before_the_context_named_its_slot_is_checked_by_its_time(
    world: World, providers: LineFake, line_channel_a: None
) -> None:
    set_contacts(Resident(world.neighbour, "", ""), line_user_id=LINE_USER)
    stays = _legacy_reminder(_book(world, days=3, hour=10))
    moving = booking_create(
        voucher=world.neighbour,
        slot=world.slot(days=3, hour=11),
        channel="web",
        actor=world.resident_actor(world.neighbour),
    )
    moves = _legacy_reminder(moving)
    _claimed_by_a_sender_that_stopped(moves)
    booking_change(
        booking=moving,
        slot=world.slot(days=4),
        channel="web",
        actor=world.resident_actor(world.neighbour),
    )
    assert notification_deliver(notification_id=stays.pk).outcome == Outcome.SENT
    assert notification_deliver(notification_id=moves.pk).outcome == Outcome.SKIPPED
    moves.refresh_from_db()
    assert moves.last_error == WITHDRAWN_CHANGED
    assert len(providers.delivered) == 1
