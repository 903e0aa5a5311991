"""A slot with its venue and vaccine, and a booking with its slot: read by every booking POST
(twice: the page's check and the booking service's, inside its transaction) and every done
page, so their SQL is written once (sesshu.rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection

from booking.models import Booking, Channel, Slot, VaccineProduct, Venue
from sesshu.rows import Columns, column, columns_of, fetch_one, keep_related


@dataclass(frozen=True)
class _SlotTree:
    """A slot's columns with its venue's and vaccine's (aliases s, v and p)."""

    slot: Columns[Slot]
    venue: Columns[Venue]
    product: Columns[VaccineProduct]

    @property
    def sql(self) -> str:
        return f"{self.slot.sql}, {self.venue.sql}, {self.product.sql}"

    @property
    def joins(self) -> str:
        """The venue and the vaccine joined to ``s``."""
        return (
            f" JOIN {self.venue.table} v ON v.id = s.venue_id"
            f" JOIN {self.product.table} p ON p.id = s.product_id"
        )

    def load(self, row: Sequence[Any], start: int = 0) -> Slot:
        slot = self.slot.load(row, start)
        start += self.slot.width
        keep_related(slot, "venue", self.venue.load(row, start))
        keep_related(slot, "product", self.product.load(row, start + self.venue.width))
        return slot


@cache
def _slot_tree() -> _SlotTree:
    return _SlotTree(columns_of(Slot, "s"), columns_of(Venue, "v"), columns_of(VaccineProduct, "p"))


@cache
def _slot_query() -> str:
    tree = _slot_tree()
    # Names from the models' metadata only; values are parameters.
    return f"SELECT {tree.sql} FROM {tree.slot.table} s{tree.joins} WHERE s.id = %s"  # noqa: S608


@cache
def _open_to(channel: str) -> str:
    return f" AND s.{column(Slot, f'capacity_{channel}')} > 0 AND s.status = %s AND v.is_open"


def slot_with_venue_and_product(slot_id: int, *, open_to: str | None = None) -> Slot | None:
    """The slot, its venue and vaccine in one query (``slot.venue`` and ``slot.product`` need
    none), or None. ``open_to``: only if the slot is open, at an open venue, with places for
    that channel at all."""
    sql = _slot_query()
    params: list[object] = [slot_id]
    if open_to is not None:
        if open_to not in Channel.values:
            raise ValueError(f"unknown channel {open_to!r}")
        sql += _open_to(open_to)
        params.append(Slot.Status.OPEN.value)
    row = fetch_one(sql, params)
    return None if row is None else _slot_tree().load(row)


@cache
def _booking_query() -> tuple[str, Columns[Booking]]:
    booking, tree = columns_of(Booking, "b"), _slot_tree()
    sql = (
        f"SELECT {booking.sql}, {tree.sql} FROM {booking.table} b"  # noqa: S608
        f" JOIN {tree.slot.table} s ON s.id = b.slot_id{tree.joins}"
    )
    return sql, booking


def bookings_with_slots(where: str, params: Sequence[Any], *, then: str = "") -> list[Booking]:
    """Bookings (alias ``b``) with their slot, venue and vaccine loaded, as
    ``select_related("slot__venue", "slot__product")`` leaves them. ``where`` and ``then``
    (ORDER BY, FOR UPDATE …) are SQL written by the caller, never from input; values go in
    ``params``."""
    sql, booking_columns = _booking_query()
    tree = _slot_tree()
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} WHERE {where} {then}", params)
        rows = cursor.fetchall()
    found = []
    for row in rows:
        booking = booking_columns.load(row)
        keep_related(booking, "slot", tree.load(row, booking_columns.width))
        found.append(booking)
    return found
