"""What every planning page shares: roles, rendering, the actor, CSV responses."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from itertools import groupby
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from audit.chain import Actor
from audit.middleware import client_ip
from booking.models import StaffMember
from booking.spreadsheet import safe_cell

T = TypeVar("T")
JAPAN = ZoneInfo("Asia/Tokyo")
ADMIN = StaffMember.Role.ADMIN
CALL_CENTRE = StaffMember.Role.CALL_CENTRE
VENUE = StaffMember.Role.VENUE
AUDITOR = StaffMember.Role.AUDITOR
WEEKDAYS = (
    pgettext_lazy("weekday", "月"),
    pgettext_lazy("weekday", "火"),
    pgettext_lazy("weekday", "水"),
    pgettext_lazy("weekday", "木"),
    pgettext_lazy("weekday", "金"),
    pgettext_lazy("weekday", "土"),
    pgettext_lazy("weekday", "日"),
)


def today() -> date:
    return timezone.localdate(timezone=JAPAN)


def staff_of(request: HttpRequest) -> StaffMember:
    return request.staff  # type: ignore[attr-defined,no-any-return]


def actor_of(request: HttpRequest) -> Actor:
    return Actor.staff(request.user)


def ip_of(request: HttpRequest) -> str | None:
    return client_ip(request)


def page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    staff = staff_of(request)
    base = {
        "site_name": request.tenant.name,  # type: ignore[attr-defined]
        "staff": staff,
        "is_admin": staff.role == ADMIN,
    }
    return render(request, f"booking/console/planning/{template}", base | context, status=status)


def weekday_of(day: date) -> str:
    return str(WEEKDAYS[day.weekday()])


def by_day(items: Iterable[T], day_of: Callable[[T], date]) -> list[tuple[date, list[T]]]:
    """Items already in time order, under one heading per day (a long table reads badly)."""
    return [(day, list(group)) for day, group in groupby(items, key=day_of)]


def csv_response(
    *, filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> HttpResponse:
    """A small CSV download, UTF-8 with a BOM so Excel reads the Japanese right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    response = HttpResponse(
        buffer.getvalue().encode("utf-8-sig"), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
