"""Django's database sessions (SESSION_ENGINE), less one query per new session.

Django draws a new session key and asks the database whether it is taken before inserting it.
The insert refuses a taken key by itself (the key is the primary key: ``save(must_create=True)``
raises ``CreateError``) and ``create()`` then draws again, so the question is one round trip
per login spent on a 32-character random key. This store skips it.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils.crypto import get_random_string


class SessionStore(DatabaseSessionStore):
    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)
