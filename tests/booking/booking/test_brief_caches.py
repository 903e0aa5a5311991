"""The booking policy and age phases each process keeps for a few seconds (sesshu.brief_cache)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from booking.models import AgePhase, BookingPolicy, eligibility
from tenants.models import Municipality


@pytest.fixture
def remembering(settings: object) -> Iterator[None]:
    settings.SESSHU_TENANT_CACHE_SECONDS = 5  # type: ignore[attr-defined]
    eligibility._policies.forget()
    eligibility._phases.forget()
    yield
    eligibility._policies.forget()
    eligibility._phases.forget()


def _policy_reads(queries: CaptureQueriesContext) -> int:
    return sum('"booking_bookingpolicy"' in query["sql"] for query in queries.captured_queries)


def test_the_policy_is_read_once_and_saving_it_is_seen_at_once(
    tenant_a: Municipality, remembering: None
) -> None:
    with schema_context(tenant_a.schema_name):
        BookingPolicy.current()  # the row exists (made with the defaults on first use)
        eligibility._policies.forget()
        with CaptureQueriesContext(connection) as queries:
            first = BookingPolicy.current()
            again = BookingPolicy.current()
        assert _policy_reads(queries) == 1
        assert again is not first  # each caller its own copy
        again.opens_days_ahead = 3  # unsaved: nobody else sees it
        assert BookingPolicy.current().opens_days_ahead == first.opens_days_ahead
        again.save()
        assert BookingPolicy.current().opens_days_ahead == 3


def test_each_municipality_has_its_own(
    tenant_a: Municipality, tenant_b: Municipality, remembering: None
) -> None:
    with schema_context(tenant_a.schema_name):
        policy = BookingPolicy.current()
        policy.call_centre_phone = "0120-000-111"
        policy.save()
        assert BookingPolicy.current().call_centre_phone == "0120-000-111"
    with schema_context(tenant_b.schema_name):
        assert BookingPolicy.current().call_centre_phone != "0120-000-111"
    with schema_context(tenant_a.schema_name):
        assert BookingPolicy.current().call_centre_phone == "0120-000-111"


def test_age_phases_are_read_once_and_a_new_phase_is_seen_at_once(
    tenant_a: Municipality, remembering: None
) -> None:
    eligibility._phases.forget()
    with schema_context(tenant_a.schema_name):
        AgePhase.objects.all().delete()
        opened = timezone.now() - timedelta(days=1)
        AgePhase.objects.create(name="65歳以上", minimum_age=65, opens_at=opened)
        with CaptureQueriesContext(connection) as queries:
            assert AgePhase.covers(age=70, at=timezone.now())
            assert not AgePhase.covers(age=40, at=timezone.now())
        assert sum('"booking_agephase"' in q["sql"] for q in queries.captured_queries) == 1
        AgePhase.objects.create(name="12歳以上", minimum_age=12, opens_at=opened)
        assert AgePhase.covers(age=40, at=timezone.now())
        # Not yet open at the moment asked about.
        assert not AgePhase.covers(age=40, at=opened - timedelta(seconds=1))
