"""Rendering a console page with what the layout needs (shared by the call-centre, incident
and trail pages)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def console_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HttpResponse:
    municipality = request.tenant  # type: ignore[attr-defined]
    base: dict[str, Any] = {
        "site_name": municipality.name,
        "municipality": municipality,
        "staff": request.staff,  # type: ignore[attr-defined]
    }
    return render(request, template, {**base, **(context or {})}, status=status)
