from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from booking.models import BookingPolicy
from booking.resident.call_centre import call_centre_context
from booking.resident.sessions import LINE_USER_AGENT_MARK
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
    policy = BookingPolicy.current()
    base: dict[str, Any] = {
        "site_name": municipality.name,
        "municipality": municipality,
        **call_centre_context(policy.call_centre_phone, policy.call_centre_hours),
        "resident_logged_in": getattr(request, "voucher", None) is not None,
        "idle_seconds": settings.SESSHU_SESSION_IDLE_SECONDS,
        # LINE's in-app browser does not print: pages say to save a screenshot there.
        "in_line_app": LINE_USER_AGENT_MARK in request.META.get("HTTP_USER_AGENT", ""),
    }
    return render(request, template, {**base, **(context or {})}, status=status)
