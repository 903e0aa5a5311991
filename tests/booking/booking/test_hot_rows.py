"""The booking path's rows read and written without the ORM's compiler (sesshu.rows): the
same instances and the same rows as the ORM's, and the same answers as the queries they
replaced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import Event
from audit.services import audit_record
from booking.models import Booking, ContactPreference, ResidentSession, Slot, Voucher
from booking.resident.services.web_sessions import resident_session_voucher
from booking.selectors.residents import contact_preference_of
from booking.selectors.slots import slot_with_venue_and_product
from booking.services.booking.checks import _lock_voucher
from sesshu.rows import Columns, Insert, fetch_one
from sesshu.session_store import SessionStore
from tests.booking.booking.conftest import SYSTEM, World


def _fields(instance: Model) -> dict[str, object]:
    """Every concrete field as Python holds it (memoryview as bytes)."""
    values = {}
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        values[field.attname] = bytes(value) if isinstance(value, memoryview) else value
    return values


def _loaded(model: type[Model], pk: object) -> Model:
    columns = Columns(model, "t")
    row = fetch_one(
        f"SELECT {columns.sql} FROM {columns.table} t WHERE t.{model._meta.pk.column} = %s", [pk]
    )  # noqa: E501, S608
    assert row is not None
    return columns.load(row)


def test_rows_load_as_the_orm_loads_them(world: World) -> None:
    slot = world.slot()
    preference = ContactPreference.objects.create(
        voucher=world.resident, email=b"sealed", email_consented_at=timezone.now()
    )
    event = audit_record(
        action="tests.rows", actor=SYSTEM, ip="192.0.2.7", details={"n": 1, "list": ["a"]}
    )
    for model, pk in [
        (Slot, slot.pk),
        (Voucher, world.resident.pk),
        (ContactPreference, preference.pk),
        (Event, event.pk),
    ]:
        loaded = _loaded(model, pk)
        assert type(loaded) is model
        assert not loaded._state.adding and loaded._state.db == "default"
        assert _fields(loaded) == _fields(model.objects.get(pk=pk)), model


def test_only_some_columns_defer_the_rest_and_the_key_is_always_read(world: World) -> None:
    columns = Columns(Voucher, "v", only=("status",))
    row = fetch_one(
        f"SELECT {columns.sql} FROM booking_voucher v WHERE v.id = %s", [world.resident.pk]
    )  # noqa: E501, S608
    assert row is not None and len(row) == 2
    voucher = columns.load(row)
    assert voucher.pk == world.resident.pk and voucher.status == Voucher.Status.ACTIVE
    assert voucher.get_deferred_fields() >= {"voucher_number", "personal"}
    assert voucher.voucher_number == world.resident.voucher_number  # read when asked for
    with pytest.raises(ValueError, match="no concrete fields"):
        Columns(Voucher, "v", only=("nonsense",))


def test_an_insert_writes_the_row_the_orm_writes(world: World) -> None:
    slot = world.slot()
    made = Insert(Booking)(
        Booking(
            booking_number="ABCDEFGHJK",
            voucher=world.resident,
            slot=slot,
            dose=1,
            channel="web",
            booked_through="web",
            status=Booking.Status.ACTIVE,
            actor_kind="resident",
            actor_id=str(world.resident.pk),
        )
    )
    assert made.pk is not None and not made._state.adding
    stored = Booking.objects.get(pk=made.pk)
    assert stored.created_at is not None  # auto_now_add, as save() sets it
    assert _fields(stored) == _fields(made)
    event = Insert(Event)(
        Event(
            occurred_at=timezone.now(),
            actor_kind="system",
            actor_id="tests",
            action="tests.insert",
            ip="2001:db8::1",
            details={"dose": 1, "names": ["a", "b"], "none": None},
        )
    )
    stored_event = Event.objects.get(pk=event.pk)
    assert stored_event.details == {"dose": 1, "names": ["a", "b"], "none": None}
    assert stored_event.ip == "2001:db8::1"
    with pytest.raises(ValueError, match="inserted, once"):
        Insert(Event)(stored_event)
    with pytest.raises(ValueError, match="gets its primary key from the database"):
        Insert(Event)(Event(seq=10**9, occurred_at=timezone.now(), action="tests.x"))
    # A key the caller chooses is written as given.
    registered = Insert(ResidentSession)(
        ResidentSession(session_key="k" * 32, voucher=world.resident)
    )
    assert not registered._state.adding
    stored_session = ResidentSession.objects.get(session_key="k" * 32)
    assert stored_session.voucher_id == world.resident.pk and stored_session.created_at
    with pytest.raises(ValueError, match="needs its primary key"):
        Insert(ResidentSession)(ResidentSession(voucher=world.resident))


def test_a_slot_comes_with_its_venue_and_vaccine_in_one_query(world: World) -> None:
    slot = world.slot()
    with CaptureQueriesContext(connection) as queries:
        found = slot_with_venue_and_product(slot.pk, open_to="web")
        assert found is not None
        assert (found.pk, found.venue.name, found.product.code) == (slot.pk, "小平市役所", "pfizer")
    assert len(queries) == 1


def test_a_slot_open_to_a_channel_is_open_has_places_for_it_and_an_open_venue(
    world: World,
) -> None:
    slot = world.slot(line=0)
    assert slot_with_venue_and_product(slot.pk, open_to="web") is not None
    assert slot_with_venue_and_product(slot.pk, open_to="line") is None
    assert slot_with_venue_and_product(slot.pk) is not None  # whatever its state
    Slot.objects.filter(pk=slot.pk).update(status=Slot.Status.CLOSED)
    assert slot_with_venue_and_product(slot.pk, open_to="web") is None
    assert slot_with_venue_and_product(slot.pk) is not None
    Slot.objects.filter(pk=slot.pk).update(status=Slot.Status.OPEN)
    world.civic.is_open = False
    world.civic.save()
    assert slot_with_venue_and_product(slot.pk, open_to="web") is None
    assert slot_with_venue_and_product(slot.pk + 1000) is None
    with pytest.raises(ValueError, match="unknown channel"):
        slot_with_venue_and_product(slot.pk, open_to="fax")


def test_the_voucher_lock_holds_the_row_and_knows_no_stranger(world: World) -> None:
    with transaction.atomic():
        voucher = _lock_voucher(world.resident.pk)
        assert (voucher.pk, voucher.voucher_number) == (world.resident.pk, "1000000001")
        locked = fetch_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'tuple' OR mode = 'RowShareLock'", []
        )
        assert locked is not None and locked[0] >= 1
    with transaction.atomic(), pytest.raises(Voucher.DoesNotExist):
        _lock_voucher(world.resident.pk + 1000)


def test_a_session_names_its_voucher_only_while_registered_to_it(world: World) -> None:
    key = "s" * 32
    assert resident_session_voucher(voucher_id=world.resident.pk, session_key=key) is None
    ResidentSession.objects.create(session_key=key, voucher=world.resident)
    found = resident_session_voucher(voucher_id=world.resident.pk, session_key=key)
    assert found is not None and _fields(found) == _fields(world.resident)
    assert resident_session_voucher(voucher_id=world.neighbour.pk, session_key=key) is None
    assert resident_session_voucher(voucher_id=world.resident.pk, session_key="") is None


def test_a_contact_preference_is_read_for_its_voucher_only(world: World) -> None:
    assert contact_preference_of(world.resident.pk) is None
    made = ContactPreference.objects.create(voucher=world.resident, phone=b"sealed")
    found = contact_preference_of(world.resident.pk)
    assert found is not None and found.pk == made.pk and bytes(found.phone) == b"sealed"
    assert contact_preference_of(world.neighbour.pk) is None


def test_an_expired_session_is_not_loaded_and_gets_a_new_key(world: World) -> None:
    session = SessionStore()
    session["v"] = 1
    session.save()
    assert SessionStore(session.session_key).load() == {"v": 1}
    Session.objects.filter(session_key=session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    stale = SessionStore(session.session_key)
    assert stale.load() == {}
    assert stale.session_key is None
