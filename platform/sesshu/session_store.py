"""Django's database sessions (SESSION_ENGINE), with two round trips fewer around a login.

- Django draws a new session key and asks the database whether it is taken before inserting
  it. The insert refuses a taken key by itself (the key is the primary key:
  ``save(must_create=True)`` raises ``CreateError``) and ``create()`` then draws again, so the
  question is skipped.
- A login saves its new session itself (the resident's registration needs the key), and the
  session middleware saves it again at the end of the request because it was modified, with
  the same data. A store that has written exactly this data and expiry under this key does
  not write it again. Sessions whose expiry moves with every save (no explicit expiry) are
  always written.
- Every page a resident opens reads its session: that read is written once as SQL instead of
  compiled by the ORM each time (sesshu.rows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from django.utils.crypto import get_random_string

from sesshu.rows import columns_of, fetch_one


class SessionStore(DatabaseSessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._written: tuple[str, bytes, datetime] | None = None

    def _get_session_from_db(self) -> Any:
        """The live session row, or None (and no key: a new one is drawn when saving)."""
        columns = columns_of(self.model, "s")
        row = fetch_one(
            f"{columns.select} WHERE s.session_key = %s AND s.expire_date > %s",
            [self.session_key, timezone.now()],
        )
        if row is None:
            self._session_key = None
            return None
        return columns.load(row)

    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        # What Django's own save() writes (the private accessor is not in the type stubs).
        row = self._row(self._get_session(no_load=must_create))  # type: ignore[attr-defined]
        if not must_create and row == self._written:
            return
        super().save(must_create=must_create)
        self._written = row

    def _row(self, data: dict[str, Any]) -> tuple[str, bytes, datetime]:
        assert self.session_key is not None
        return (self.session_key, self.serializer().dumps(data), self.get_expiry_date())

    def delete(self, session_key: str | None = None) -> None:
        super().delete(session_key)
        self._written = None
