"""The database session store: no question before the insert, no second write of the same data
(sesshu.session_store)."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import ANY

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from sesshu import session_store
from sesshu.session_store import SessionStore
from tenants.models import Municipality


def test_it_is_the_engine_in_use() -> None:
    assert settings.SESSION_ENGINE == "sesshu.session_store"


def test_a_new_session_is_one_insert_and_no_question(tenant_a: Municipality) -> None:
    with tenant_context(tenant_a):
        session = SessionStore()
        session["x"] = 1
        with CaptureQueriesContext(connection) as queries:
            session.save()
        statements = [q["sql"] for q in queries.captured_queries]
        assert not any(s.startswith("SELECT") for s in statements), statements
        assert sum(s.startswith('INSERT INTO "django_session"') for s in statements) == 1
        assert SessionStore(session.session_key).load() == {"x": 1}


def test_a_key_already_taken_is_drawn_again(
    tenant_a: Municipality, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant_context(tenant_a):
        first = SessionStore()
        first["owner"] = "first"
        first.save()
        taken = first.session_key
        draws = iter([taken, "k" * 32])
        monkeypatch.setattr(session_store, "get_random_string", lambda *args: next(draws))
        second = SessionStore()
        second["owner"] = "second"
        second.save()
        assert second.session_key == "k" * 32
        # The first resident's session is untouched.
        assert SessionStore(taken).load() == {"owner": "first"}
        assert Session.objects.filter(session_key__in=[taken, "k" * 32]).count() == 2


def test_saving_the_same_data_again_writes_nothing_but_a_change_is_written(
    tenant_a: Municipality,
) -> None:
    with tenant_context(tenant_a):
        session = SessionStore()
        session["x"] = 1
        session.set_expiry(timezone.now() + timedelta(hours=1))
        session.save()

        def writes() -> int:
            with CaptureQueriesContext(connection) as queries:
                session.save()
            return sum(q["sql"].startswith("UPDATE") for q in queries.captured_queries)

        assert writes() == 0
        session["x"] = 2
        assert writes() == 1
        assert SessionStore(session.session_key).load() == {"x": 2, "_session_expiry": ANY}
        session.set_expiry(timezone.now() + timedelta(hours=2))
        assert writes() == 1


def test_a_session_with_the_default_expiry_is_always_written(tenant_a: Municipality) -> None:
    with tenant_context(tenant_a):
        session = SessionStore()
        session["x"] = 1
        session.save()
        with CaptureQueriesContext(connection) as queries:
            session.save()
        assert sum(q["sql"].startswith("UPDATE") for q in queries.captured_queries) == 1
