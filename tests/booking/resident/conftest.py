"""Residents' site fixtures: vouchers sealed as the registry import seals them, login helpers,
a small booking world (venues, slots, an open age phase), a frozen clock when needed.

Tests switch the cast's municipality A between login modes inside the test transaction; the
tenant middleware loads the municipality afresh on every request, so the change is seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.models import Event
from booking.models import AgePhase, BookingPolicy, Slot, VaccineProduct, Venue, Voucher
from booking.services.registry_import import activation_code_hash
from sesshu.passwords import SizedArgon2PasswordHasher
from tenants.crypto import cipher_for
from tenants.models import Municipality
from tests.conftest import host_of

JAPAN = ZoneInfo("Asia/Tokyo")
CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
PASSWORD = "kodaira-sesshu-2026"


def today() -> date:
    return timezone.localdate(timezone=JAPAN)


def at(days: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(today() + timedelta(days=days), time(hour, minute), tzinfo=JAPAN)


@dataclass(frozen=True)
class Resident:
    municipality: Municipality
    voucher: Voucher
    number: str
    born: date
    kana: str
    code: str | None

    @property
    def pk(self) -> int:
        return int(self.voucher.pk)


def make_resident(
    municipality: Municipality,
    number: str,
    *,
    born: date = date(1950, 4, 1),
    kana: str = "コダイラ ハナコ",
    code: str | None = None,
    status: str = Voucher.Status.ACTIVE,
    web_login_disabled: bool = False,
) -> Resident:
    """A voucher exactly as the registry import leaves it: personal fields sealed together
    under the municipality's key, bound to the table and the voucher number."""
    with tenant_context(municipality):
        cipher = cipher_for(municipality)
        values = {
            "name": "小平 花子",
            "name_kana": kana,
            "birth_date": born.isoformat(),
            "sex": "2",
            "postal_code": "1878701",
            "address": "東京都小平市小川町2-1333",
            "phone": "0423411211",
            "email": "hanako@example.jp",
            "address_number": "000123456",
        }
        voucher = Voucher.objects.create(
            voucher_number=number,
            personal=cipher.seal_record(values, table="booking_voucher", row_id=number),
            content_hash=cipher.blind_index(number, purpose="tests"),
            status=status,
            web_login_disabled=web_login_disabled,
            activation_code_hash=activation_code_hash(cipher, code) if code else None,
        )
    return Resident(municipality, voucher, number, born, kana, code)


def set_mode(municipality: Municipality, mode: str) -> None:
    Municipality.objects.filter(pk=municipality.pk).update(login_mode=mode)
    municipality.login_mode = mode


def set_status(municipality: Municipality, status: str) -> None:
    Municipality.objects.filter(pk=municipality.pk).update(status=status)
    municipality.status = status


def birth_fields(born: date) -> dict[str, str]:
    return {
        "birth_date_year": str(born.year),
        "birth_date_month": str(born.month),
        "birth_date_day": str(born.day),
    }


def login_dob(client: Client, resident: Resident, **overrides: Any) -> Any:
    data = {"voucher_number": resident.number, **birth_fields(resident.born)}
    data.update(overrides)
    return client.post("/login/", data)


def login_code(client: Client, resident: Resident, **overrides: Any) -> Any:
    data = {"voucher_number": resident.number, "code": resident.code or ""}
    data.update(overrides)
    return client.post("/login/", data)


def login_password(client: Client, resident: Resident, password: str = PASSWORD) -> Any:
    return client.post(
        "/login/password/", {"voucher_number": resident.number, "password": password}
    )


def set_password(client: Client, password: str = PASSWORD) -> Any:
    return client.post("/password/", {"password1": password, "password2": password})


def events(municipality: Municipality, action: str) -> list[Event]:
    with tenant_context(municipality):
        return list(Event.objects.filter(action=action).order_by("seq"))


def same_page(body: bytes) -> str:
    """The page without its per-response CSRF token values."""
    return CSRF_VALUE.sub('name="csrfmiddlewaretoken" value=""', body.decode())


class CountingArgon2Hasher(SizedArgon2PasswordHasher):
    """The configured argon2id hasher, counting how often a password is checked."""

    verified = 0

    def verify(self, password: str, encoded: str) -> bool:
        type(self).verified += 1
        return bool(super().verify(password, encoded))


@pytest.fixture
def counting_hasher(settings: Any) -> Iterator[type[CountingArgon2Hasher]]:
    from booking.resident.services import login as services

    settings.PASSWORD_HASHERS = ["tests.booking.resident.conftest.CountingArgon2Hasher"]
    CountingArgon2Hasher.verified = 0
    services._dummy_password_hash.cache_clear()
    yield CountingArgon2Hasher
    services._dummy_password_hash.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client_a(tenant_a: Municipality) -> Client:
    return Client(HTTP_HOST=host_of(tenant_a))


@pytest.fixture
def client_b(tenant_b: Municipality) -> Client:
    return Client(HTTP_HOST=host_of(tenant_b))


@pytest.fixture
def resident_a(tenant_a: Municipality) -> Resident:
    return make_resident(tenant_a, "1000000001", code="AB3DEF7H")


@pytest.fixture
def neighbour_a(tenant_a: Municipality) -> Resident:
    """Another resident of the same municipality."""
    return make_resident(
        tenant_a, "1000000002", born=date(1948, 7, 7), kana="コダイラ タロウ", code="XY4ZW9KM"
    )


@pytest.fixture
def resident_b(tenant_b: Municipality) -> Resident:
    return make_resident(tenant_b, "1000000001", born=date(1952, 1, 2), kana="チヨダ ハルコ")


@pytest.fixture
def dob_mode(tenant_a: Municipality) -> Municipality:
    set_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB)
    return tenant_a


# --- A small booking world ------------------------------------------------------------------


@dataclass
class World:
    municipality: Municipality
    policy: BookingPolicy
    pfizer: VaccineProduct
    civic: Venue
    north: Venue

    def slot(self, days: int = 3, hour: int = 10, *, venue: Venue | None = None, **kw: Any) -> Slot:
        starts_at = at(days, hour, kw.pop("minute", 0))
        with tenant_context(self.municipality):
            return Slot.objects.create(
                venue=venue or self.civic,
                product=kw.pop("product", self.pfizer),
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=30),
                capacity_web=kw.pop("web", 5),
                capacity_line=kw.pop("line", 2),
                capacity_call_centre=kw.pop("call_centre", 2),
                **kw,
            )


def build_world(municipality: Municipality) -> World:
    with tenant_context(municipality):
        policy = BookingPolicy.current()
        policy.opens_days_ahead = 28
        policy.closes_hours_before = 24
        policy.call_centre_phone = "042-000-0000"
        policy.save()
        now = timezone.now()
        AgePhase.objects.create(name="65歳以上", minimum_age=65, opens_at=now - timedelta(days=1))
        AgePhase.objects.create(name="12歳以上", minimum_age=12, opens_at=now + timedelta(days=30))
        pfizer = VaccineProduct.objects.create(
            code="pfizer", name="ファイザー社ワクチン", interval_days=19, doses_in_series=2
        )
        civic = Venue.objects.create(
            name="小平市役所", area="中央地区", address="東京都小平市小川町2-1333"
        )
        north = Venue.objects.create(
            name="北部集会所", area="北地区", address="東京都小平市上水本町1-1"
        )
        civic.products.add(pfizer)
        north.products.add(pfizer)
    return World(municipality, policy, pfizer, civic, north)


@pytest.fixture
def world_a(tenant_a: Municipality) -> World:
    return build_world(tenant_a)


@pytest.fixture
def world_b(tenant_b: Municipality) -> World:
    return build_world(tenant_b)


def logged_in(client: Client, resident: Resident) -> Client:
    """Log ``resident`` in through the birth-date page (switching A or B to voucher_dob)."""
    set_mode(resident.municipality, Municipality.LoginMode.VOUCHER_DOB)
    response = login_dob(client, resident)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/mypage/"
    return client
