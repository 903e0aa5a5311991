"""How the database pool checks a connection before handing it out (tenants.db.backend).

psycopg_pool's own check (``ConnectionPool.check_connection``, what Django installs for
``CONN_HEALTH_CHECKS``) sends the server an empty query every time: one round trip per request,
about one in fourteen of a booking's (on loopback too cheap to show in the booking rush; to a
database in another availability zone, a network round trip of every request's time). Here a
connection handed out a moment ago (``RECENTLY_SECONDS``) is checked without one: it worked
then, and a server that has let it go since (restarted, failed over, the backend terminated)
says so on the socket, with an error message or the end of the stream, which leaves it
readable. An idle connection has nothing to read: readable, or anything but idle, and it gets
the full check, which raises for a dead one (the pool then opens another). A server gone
without a word (a host lost, a network cut) is not caught by either: the empty query would
wait as long as the request's first one does.
"""

from __future__ import annotations

import select
import time
import weakref

from psycopg import Connection, pq
from psycopg_pool import ConnectionPool

RECENTLY_SECONDS = 5.0

# When each pooled connection last passed a check, by connection (gone with it).
_checked_at: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()


def _now() -> float:
    return time.monotonic()


def check_connection(conn: Connection) -> None:
    """The pool's ``check``: return quietly if ``conn`` can be used, else raise."""
    now = _now()
    checked_at = _checked_at.get(conn)
    if checked_at is not None and now - checked_at < RECENTLY_SECONDS and _quiet(conn):
        _checked_at[conn] = now
        return
    ConnectionPool.check_connection(conn)
    _checked_at[conn] = now


def _quiet(conn: Connection) -> bool:
    """Open, idle, and nothing from the server waiting to be read."""
    if conn.closed or conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    return not poller.poll(0)
