"""A slot with its venue and vaccine: read on every booking POST, twice (the page's check and
the booking service's, inside its transaction), so its SQL is written once (sesshu.rows)."""

from __future__ import annotations

from functools import cache

from booking.models import Channel, Slot, VaccineProduct, Venue
from sesshu.rows import Columns, column, fetch_one, keep_related


@cache
def _query() -> tuple[str, Columns[Slot], Columns[Venue], Columns[VaccineProduct]]:
    slot, venue, product = Columns(Slot, "s"), Columns(Venue, "v"), Columns(VaccineProduct, "p")
    # Names from the models' metadata only; the slot id is a parameter.
    sql = (
        f"SELECT {slot.sql}, {venue.sql}, {product.sql} FROM {slot.table} s"  # noqa: S608
        f" JOIN {venue.table} v ON v.id = s.venue_id"
        f" JOIN {product.table} p ON p.id = s.product_id"
        " WHERE s.id = %s"
    )
    return sql, slot, venue, product


@cache
def _open_to(channel: str) -> str:
    return f" AND s.{column(Slot, f'capacity_{channel}')} > 0 AND s.status = %s AND v.is_open"


def slot_with_venue_and_product(slot_id: int, *, open_to: str | None = None) -> Slot | None:
    """The slot, its venue and vaccine in one query (``slot.venue`` and ``slot.product`` need
    none), or None. ``open_to``: only if the slot is open, at an open venue, with places for
    that channel at all."""
    sql, slot_columns, venue_columns, product_columns = _query()
    params: list[object] = [slot_id]
    if open_to is not None:
        if open_to not in Channel.values:
            raise ValueError(f"unknown channel {open_to!r}")
        sql += _open_to(open_to)
        params.append(Slot.Status.OPEN.value)
    row = fetch_one(sql, params)
    if row is None:
        return None
    slot = slot_columns.load(row)
    keep_related(slot, "venue", venue_columns.load(row, slot_columns.width))
    keep_related(
        slot, "product", product_columns.load(row, slot_columns.width + venue_columns.width)
    )
    return slot
