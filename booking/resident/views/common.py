from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from booking.models import BookingPolicy
from tenants.models import Municipality


def municipality_of(request: HttpRequest) -> Municipality:
    return request.tenant  # type: ignore[attr-defined,no-any-return]


def page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HttpResponse:
    """Render a resident page with what every page shows: the municipality's name, the call
    centre's number, and the logout button when a resident is logged in."""
    municipality = municipality_of(request)
    phone = BookingPolicy.current().call_centre_phone
    base: dict[str, Any] = {
        "site_name": municipality.name,
        "municipality": municipality,
        "call_centre_phone": phone,
        "call_centre_tel": "".join(ch for ch in phone if ch.isdigit() or ch == "+"),
        "resident_logged_in": getattr(request, "voucher", None) is not None,
    }
    return render(request, template, {**base, **(context or {})}, status=status)
