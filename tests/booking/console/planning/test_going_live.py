"""A municipality goes live through its console alone, from nothing: vaccines, an age phase,
the booking window, a venue, a week of slots, the voucher registry; then a resident logs in
with a voucher from that registry and books, from a venue first. No fixture but the staff
account: what the product offers is all a municipality has."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from booking.models import Booking, Slot, VaccineProduct, Venue
from tenants.models import Municipality
from tests.booking.registry_import.conftest import csv_bytes, row
from tests.booking.resident.conftest import set_mode
from tests.conftest import host_of

from .conftest import MONDAY, in_a

PLAN = re.compile(r'name="plan" value="([0-9a-f]+)"')


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1


def _readiness(client: Client) -> str:
    home = client.get("/console/").content.decode()
    return home.split('id="readiness-heading"')[1].split("</section>")[0]


def test_a_municipality_goes_live_through_its_console_and_a_resident_books(
    as_admin: Client, tenant_a: Municipality, django_capture_on_commit_callbacks
) -> None:
    assert "このままでは住民は予約できません" in _readiness(as_admin)

    def posted(path: str, data: dict[str, object]) -> str:
        response = as_admin.post(path, data)
        assert response.status_code == 302, response.content.decode()[:3000]
        return str(response["Location"])

    posted(
        "/console/planning/rules/vaccines/new/",
        {
            "code": "pfizer",
            "name": "ファイザー社ワクチン",
            "maker": "ファイザー",
            "doses_in_series": "2",
            "interval_days": "19",
            "minimum_age": "12",
            "active": "on",
        },
    )
    posted(
        "/console/planning/rules/phases/new/",
        {
            "name": "65歳以上の方",
            "minimum_age": "65",
            "opens_on": "2026-05-11",
            "opens_time": "09:00",
        },
    )
    posted(
        "/console/planning/rules/policy/",
        {
            "opens_days_ahead": "28",
            "closes_hours_before": "24",
            "call_centre_phone": "042-346-9500",
        },
    )
    with in_a(tenant_a):
        pfizer = VaccineProduct.objects.get(code="pfizer")
    posted(
        "/console/planning/venues/new/",
        {
            "name": "小平市民総合体育館",
            "area": "南地区",
            "address": "東京都小平市津田町1-1-1",
            "products": [pfizer.pk],
        },
    )
    with in_a(tenant_a):
        venue = Venue.objects.get()
    week = {
        "venue": venue.pk,
        "product": pfizer.pk,
        "first_day": MONDAY.isoformat(),
        "last_day": "2026-05-22",
        "weekdays": ["0", "1", "2", "3", "4"],
        "opens": "09:00",
        "closes": "11:00",
        "slot_minutes": "30",
        "capacity_web": "4",
        "capacity_line": "1",
        "capacity_call_centre": "1",
    }
    preview = as_admin.post("/console/planning/slots/generate/", {**week, "action": "preview"})
    plan = PLAN.search(preview.content.decode())
    assert plan is not None
    posted(
        "/console/planning/slots/generate/", {**week, "plan": plan.group(1), "action": "generate"}
    )
    registry = csv_bytes([row("1321100001", birth="昭和23年4月1日")])
    with django_capture_on_commit_callbacks(execute=True):
        location = posted(
            "/console/imports/",
            {
                "file": SimpleUploadedFile("meibo.csv", registry, content_type="text/csv"),
                "encoding": "",
            },
        )
    with django_capture_on_commit_callbacks(execute=True):
        posted(f"{location}decide/", {"decision": "confirm"})
    readiness = _readiness(as_admin)
    assert "住民が予約できる状態です" in readiness and "未完了" not in readiness
    assert "20枠" in readiness  # four 30-minute slots a day, Monday to Friday

    set_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB)
    resident = Client(HTTP_HOST=host_of(tenant_a))
    top = resident.get("/").content.decode()
    assert "65歳以上の方" in top and "042-346-9500" in top
    login = resident.post(
        "/login/",
        {
            "voucher_number": "1321100001",
            "birth_date_year": "1948",
            "birth_date_month": "4",
            "birth_date_day": "1",
        },
    )
    assert login.status_code == 302 and login["Location"] == "/mypage/"
    venues = resident.get("/book/venues/").content.decode()
    assert "小平市民総合体育館" in venues
    days = resident.get(f"/book/?venue={venue.pk}").content.decode()
    first_day = re.search(r'href="(/book/\d{4}-\d{2}-\d{2}/\?venue=\d+)"', days)
    assert first_day is not None
    slots = resident.get(first_day.group(1)).content.decode()
    slot_path = re.search(r'href="(/book/slot/(\d+)/)(?:\?[^"]*)?"', slots)
    assert slot_path is not None
    booked = resident.post(slot_path.group(1))
    assert booked.status_code == 302 and "/done/" in booked["Location"]
    with in_a(tenant_a):
        booking = Booking.objects.get()
        assert booking.slot_id == int(slot_path.group(2))
        assert Slot.objects.get(pk=booking.slot_id).venue_id == venue.pk
