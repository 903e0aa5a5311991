"""Venues: list, create, edit, close and reopen (admin only)."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from booking.console.access import staff_required
from booking.console.planning.common import ADMIN, actor_of, ip_of, page
from booking.console.planning.forms import VenueForm
from booking.models import Booking, Slot, Venue
from booking.services.planning import (
    PlanningRefused,
    venue_close,
    venue_create,
    venue_reopen,
    venue_update,
)


@require_GET
@staff_required(ADMIN)
def venue_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    venues = (
        Venue.objects.prefetch_related("products")
        .annotate(
            upcoming_slots=Count(
                "slots",
                filter=Q(slots__starts_at__gte=now) & ~Q(slots__status=Slot.Status.CANCELLED),
            )
        )
        .order_by("-is_open", "area", "name")
    )
    return page(request, "venues.html", {"venues": venues})


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def venue_new(request: HttpRequest) -> HttpResponse:
    form = VenueForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        venue = venue_create(details=form.details(), actor=actor_of(request), ip=ip_of(request))
        messages.success(request, _("会場「%(name)s」を登録しました。") % {"name": venue.name})
        return redirect("console:planning:venues")
    status = 400 if request.method == "POST" else 200
    return page(request, "venue_form.html", {"form": form, "venue": None}, status=status)


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def venue_edit(request: HttpRequest, venue_id: int) -> HttpResponse:
    venue = get_object_or_404(Venue, pk=venue_id)
    if request.method == "POST":
        form = VenueForm(request.POST, venue=venue)
        if form.is_valid():
            try:
                venue_update(
                    venue=venue,
                    details=form.details(),
                    actor=actor_of(request),
                    ip=ip_of(request),
                    seen_version=form.cleaned_data["version"],
                )
            except PlanningRefused as refused:
                form.add_error(
                    None if refused.code == "changed_meanwhile" else "products", refused.message
                )
            else:
                messages.success(request, _("会場の情報を更新しました。"))
                return redirect("console:planning:venues")
        return page(request, "venue_form.html", {"form": form, "venue": venue}, status=400)
    form = VenueForm(initial=VenueForm.initial_for(venue))
    return page(request, "venue_form.html", {"form": form, "venue": venue})


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def venue_close_view(request: HttpRequest, venue_id: int) -> HttpResponse:
    venue = get_object_or_404(Venue, pk=venue_id)
    if request.method == "POST":
        venue_close(venue=venue, actor=actor_of(request), ip=ip_of(request))
        messages.success(
            request, _("会場「%(name)s」の受付を停止しました。") % {"name": venue.name}
        )
        return redirect("console:planning:venues")
    now = timezone.now()
    impact = {
        "slots": Slot.objects.filter(
            venue=venue, starts_at__gte=now, status=Slot.Status.OPEN
        ).count(),
        "bookings": Booking.objects.filter(
            slot__venue=venue, slot__starts_at__gte=now, status__in=Booking.LIVE_STATUSES
        ).count(),
    }
    return page(request, "venue_close.html", {"venue": venue, "impact": impact})


@require_POST
@staff_required(ADMIN)
def venue_reopen_view(request: HttpRequest, venue_id: int) -> HttpResponse:
    venue = get_object_or_404(Venue, pk=venue_id)
    venue_reopen(venue=venue, actor=actor_of(request), ip=ip_of(request))
    messages.success(request, _("会場「%(name)s」の受付を再開しました。") % {"name": venue.name})
    return redirect("console:planning:venues")
