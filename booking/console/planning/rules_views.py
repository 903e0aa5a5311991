"""The booking rules (admin only): the booking window and options, age phases, vaccines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from booking.console.access import staff_required
from booking.console.planning.common import ADMIN, actor_of, ip_of, page
from booking.console.planning.forms import AgePhaseForm, BookingPolicyForm, VaccineForm
from booking.models import AgePhase, BookingPolicy, VaccineProduct
from booking.services.planning import (
    PhaseDetails,
    PlanningRefused,
    age_phase_create,
    age_phase_delete,
    age_phase_update,
    booking_policy_update,
    rules_version,
    vaccine_create,
    vaccine_update,
)

_RULES = "console:planning:rules"
_Saved = TypeVar("_Saved")


def _saved(
    request: HttpRequest, form: Any, service: Callable[..., _Saved], **target: Any
) -> _Saved | None:
    """The rules' row saved through ``service`` from a valid ``form`` (its details, and the
    version the form showed); None, with the refusal on the form (another admin's change in
    between, say) or the form's own errors, when nothing was written."""
    if not form.is_valid():
        return None
    try:
        return service(
            details=form.details(),
            actor=actor_of(request),
            ip=ip_of(request),
            seen_version=form.cleaned_data["version"],
            **target,
        )
    except PlanningRefused as refused:
        form.add_error(None, refused.message)
        return None


@require_GET
@staff_required(ADMIN)
def rules(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    phases = AgePhase.every()
    return page(
        request,
        "rules.html",
        {
            "policy": BookingPolicy.current(),
            "phases": [(phase, phase.opens_at <= now) for phase in phases],
            "vaccines": VaccineProduct.objects.order_by("-active", "name"),
        },
    )


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def policy_edit(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = BookingPolicyForm(request.POST)
        saved = _saved(request, form, booking_policy_update)
        if saved is not None:
            messages.success(request, _("予約の受付条件を保存しました。"))
            return redirect(_RULES)
        return page(request, "policy_form.html", {"form": form}, status=400)
    form = BookingPolicyForm(initial=BookingPolicyForm.initial_for(BookingPolicy.current()))
    return page(request, "policy_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def phase_new(request: HttpRequest) -> HttpResponse:
    form = AgePhaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        phase = age_phase_create(details=form.details(), actor=actor_of(request), ip=ip_of(request))
        messages.success(request, _("「%(name)s」を登録しました。") % {"name": phase.name})
        _say_if_open(request, phase)
        return redirect(_RULES)
    status = 400 if request.method == "POST" else 200
    return page(request, "phase_form.html", {"form": form, "phase": None}, status=status)


def _say_if_open(request: HttpRequest, phase: AgePhase) -> None:
    """A phase saved with an opening already past takes bookings at once: say so."""
    if phase.opens_at <= timezone.now():
        messages.warning(
            request,
            _(
                "予約開始日時が過ぎているため、区分「%(name)s」に当てはまる方は、いまから予約できます。"
                "開始を先にする場合は、区分を変更してください。"
            )
            % {"name": phase.name},
        )


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def phase_edit(request: HttpRequest, phase_id: int) -> HttpResponse:
    phase = get_object_or_404(AgePhase, pk=phase_id)
    if request.method == "POST":
        form = AgePhaseForm(request.POST, editing=phase)
        was_open = phase.opens_at <= timezone.now()
        updated = _saved(request, form, age_phase_update, phase=phase)
        if updated is not None:
            messages.success(request, _("「%(name)s」を更新しました。") % {"name": updated.name})
            if not was_open:
                _say_if_open(request, updated)
            return redirect(_RULES)
        return page(request, "phase_form.html", {"form": form, "phase": phase}, status=400)
    form = AgePhaseForm(initial=AgePhaseForm.initial_for(phase))
    return page(request, "phase_form.html", {"form": form, "phase": phase})


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def phase_delete(request: HttpRequest, phase_id: int) -> HttpResponse:
    phase = get_object_or_404(AgePhase, pk=phase_id)
    if request.method == "POST":
        try:
            age_phase_delete(
                phase=phase,
                actor=actor_of(request),
                ip=ip_of(request),
                seen_version=request.POST.get("version", ""),
            )
        except PlanningRefused as refused:
            messages.error(request, refused.message)
            return redirect("console:planning:phase_delete", phase_id=phase.pk)
        messages.success(request, _("「%(name)s」を削除しました。") % {"name": phase.name})
        return redirect(_RULES)
    return page(
        request,
        "phase_delete.html",
        {
            "phase": phase,
            "opened": phase.opens_at <= timezone.now(),
            "version": rules_version(phase, PhaseDetails),
        },
    )


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def vaccine_new(request: HttpRequest) -> HttpResponse:
    form = VaccineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            product = vaccine_create(
                details=form.details(), actor=actor_of(request), ip=ip_of(request)
            )
        except PlanningRefused as refused:
            form.add_error("code", refused.message)
        else:
            messages.success(request, _("「%(name)s」を登録しました。") % {"name": product.name})
            return redirect(_RULES)
    status = 400 if request.method == "POST" else 200
    return page(request, "vaccine_form.html", {"form": form, "product": None}, status=status)


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def vaccine_edit(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(VaccineProduct, pk=product_id)
    if request.method == "POST":
        form = VaccineForm(request.POST, product=product)
        saved_product = _saved(request, form, vaccine_update, product=product)
        if saved_product is not None:
            messages.success(
                request, _("「%(name)s」を更新しました。") % {"name": saved_product.name}
            )
            return redirect(_RULES)
        return page(request, "vaccine_form.html", {"form": form, "product": product}, status=400)
    form = VaccineForm(initial=VaccineForm.initial_for(product), product=product)
    return page(request, "vaccine_form.html", {"form": form, "product": product})
