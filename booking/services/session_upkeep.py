"""Ended sessions leave the database.

Django's database sessions stay in their table after they expire (Django leaves their
deletion to ``clearsessions``): the morning booking opens would leave hundreds of thousands
of rows behind in a municipality's schema, each saying whose session it was, and so would
the rows that tie a session to a resident (``ResidentSession``) or to a staff member
(``StaffSession``) once it has ended. The beat clears them every hour, in every municipality
and in the platform's own schema (the control plane's sessions), a batch per transaction so
that no statement holds many rows at once.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from booking.models import ResidentSession, StaffSession
from sesshu.rows import column, table
from tenants.db import current_schema

BATCH = 5_000


def sessions_clear_ended(*, now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Delete the current schema's expired sessions and, in a municipality's schema, the
    resident and staff rows of sessions that have ended. Returns how many of each."""
    now = now or timezone.now()
    sessions = table(Session)
    key, expiry = column(Session, "session_key"), column(Session, "expire_date")
    cleared = {
        "sessions": _delete_in_batches(
            f"DELETE FROM {sessions} WHERE {key} IN"  # noqa: S608
            f" (SELECT {key} FROM {sessions} WHERE {expiry} <= %s LIMIT %s)",
            [now, batch],
            batch,
        )
    }
    if current_schema() == get_public_schema_name():
        return cleared
    for name, model in (("resident_sessions", ResidentSession), ("staff_sessions", StaffSession)):
        cleared[name] = _delete_in_batches(_ended_rows_sql(model), [now, batch], batch)
    return cleared


def _ended_rows_sql(model: type[Model]) -> str:
    """A batch of ``model``'s rows (keyed by session key) whose session has ended: deleted at
    logout or by staff, or expired. A login writes its session before this row, so a row is
    never taken for ended while its session is being made."""
    rows, key = table(model), column(model, "session_key")
    session_key, expiry = column(Session, "session_key"), column(Session, "expire_date")
    return (
        f"DELETE FROM {rows} WHERE {key} IN (SELECT r.{key} FROM {rows} r"  # noqa: S608
        f" WHERE NOT EXISTS (SELECT 1 FROM {table(Session)} s"
        f" WHERE s.{session_key} = r.{key} AND s.{expiry} > %s) LIMIT %s)"
    )


def _delete_in_batches(sql: str, params: list[datetime | int], batch: int) -> int:
    """Run a DELETE of at most ``batch`` rows until it deletes fewer; each its own
    transaction (autocommit)."""
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = cursor.rowcount
        deleted += count
        if count < batch:
            return deleted
