"""Console fixtures: staff accounts of the cast's municipalities, a frozen clock, TOTP codes."""

from __future__ import annotations

import re
from binascii import unhexlify
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.test import Client
from django_otp.oath import totp
from django_tenants.utils import schema_context

from audit.chain import Actor
from audit.models import Event
from booking.console.totp import new_totp_key
from booking.models import StaffMember
from booking.services.staff import staff_invitation_accept, staff_invite
from tenants.models import Municipality
from tests.conftest import host_of

PASSWORD = "kodaira-vaccine-2026"
START = datetime(2026, 5, 11, 0, 30, tzinfo=UTC)  # 09:30 in Tokyo, a Monday
CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


@dataclass(frozen=True)
class StaffAccount:
    tenant: Municipality
    email: str
    password: str
    key: str  # the TOTP secret (hex), as the authenticator app holds it
    user_id: int
    staff_id: int


def code_for(key: str) -> str:
    """The code the person's authenticator app shows now."""
    return f"{totp(unhexlify(key), step=30, t0=0, digits=6):06d}"


def make_staff(tenant: Municipality, email: str, role: str) -> StaffAccount:
    """A staff account made the way the setup page makes one (invite, then accept)."""
    with schema_context(tenant.schema_name):
        issued = staff_invite(email=email, role=role, invited_by=None, actor=Actor.system("tests"))
        key = new_totp_key()
        staff = staff_invitation_accept(
            token=issued.token, password_hash=make_password(PASSWORD), totp_key=key
        )
    return StaffAccount(tenant, email, PASSWORD, key, staff.user_id, staff.pk)


def make_plain_user(tenant: Municipality, email: str) -> Any:
    with schema_context(tenant.schema_name):
        return get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)


def events(tenant: Municipality, action: str) -> list[Event]:
    with schema_context(tenant.schema_name):
        return list(Event.objects.filter(action=action).order_by("seq"))


def same_page(body: bytes) -> str:
    """The page without its per-response CSRF token values."""
    return CSRF_VALUE.sub('name="csrfmiddlewaretoken" value=""', body.decode())


def login(client: Client, account: StaffAccount, **overrides: str) -> Any:
    data = {"email": account.email, "password": account.password, "code": code_for(account.key)}
    data.update(overrides)
    return client.post("/console/login/", data)


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def client_a(tenant_a: Municipality) -> Client:
    return Client(HTTP_HOST=host_of(tenant_a))


@pytest.fixture
def client_b(tenant_b: Municipality) -> Client:
    return Client(HTTP_HOST=host_of(tenant_b))


@pytest.fixture
def admin_a(tenant_a: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_a, "kanri@kodaira.example.jp", StaffMember.Role.ADMIN)


@pytest.fixture
def operator_a(tenant_a: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_a, "call@kodaira.example.jp", StaffMember.Role.CALL_CENTRE)


@pytest.fixture
def admin_b(tenant_b: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_b, "kanri@chiyoda.example.jp", StaffMember.Role.ADMIN)
