"""Pages that only read: the planning index, free slots (and their CSV), reports (and theirs)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from booking.console.access import staff_required
from booking.console.planning.common import (
    ADMIN,
    AUDITOR,
    CALL_CENTRE,
    VENUE,
    actor_of,
    by_day,
    csv_response,
    ip_of,
    page,
    staff_of,
)
from booking.console.planning.forms import DateRangeForm, FreeSlotFilterForm
from booking.console.planning.free_slots import (
    FREE_SLOT_CSV_HEADER,
    FREE_SLOT_PAGE,
    FreeSlotQuery,
    channels_for,
    free_slot_csv_rows,
    free_slot_rows,
    venues_for,
)
from booking.console.planning.reports import (
    REPORT_KEYS,
    REPORTS,
    bookings_last_hour,
    headline,
)
from booking.models import Channel
from booking.resident.waiting_room import queue_now
from booking.services.planning import export_record


@require_GET
@staff_required()
def index(request: HttpRequest) -> HttpResponse:
    return page(request, "index.html", {"role": staff_of(request).role})


def _free_slot_query(request: HttpRequest) -> tuple[FreeSlotFilterForm, FreeSlotQuery]:
    staff = staff_of(request)
    channels = channels_for(staff)
    form = FreeSlotFilterForm(request.GET or None, venues=venues_for(staff), channels=channels)
    first, last = form.range()
    data = form.cleaned_data if form.is_valid() else {}
    query = FreeSlotQuery(
        first_day=first,
        last_day=last,
        area=data.get("area") or "",
        product=data.get("product") or "",
        venue_id=data.get("venue"),
        channel=data.get("channel") or "",
    )
    return form, query


@require_GET
@staff_required(ADMIN, CALL_CENTRE, VENUE, AUDITOR)
def free_slots(request: HttpRequest) -> HttpResponse:
    form, query = _free_slot_query(request)
    staff = staff_of(request)
    rows = free_slot_rows(staff=staff, query=query)
    paginator = Paginator(rows, FREE_SLOT_PAGE)
    slot_page = paginator.get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    channels = channels_for(staff)
    return page(
        request,
        "free_slots.html",
        {
            "form": form,
            "query": query,
            "slot_page": slot_page,
            "days": by_day(slot_page.object_list, lambda row: row.day),
            "params": params.urlencode(),
            "channels": [(value, label) for value, label in Channel.choices if value in channels],
            "show_total": len(channels) > 1,
            "can_download": staff.role == ADMIN,
            "no_venues": staff.role == VENUE and not venues_for(staff).exists(),
        },
        status=200 if form.is_bound is False or form.is_valid() else 400,
    )


@require_GET
@staff_required(ADMIN)
def free_slots_csv(request: HttpRequest) -> HttpResponse:
    form, query = _free_slot_query(request)
    rows = free_slot_rows(staff=staff_of(request), query=query)
    export_record(
        kind="free_slots",
        actor=actor_of(request),
        ip=ip_of(request),
        details={
            "first_day": query.first_day.isoformat(),
            "last_day": query.last_day.isoformat(),
            "rows": len(rows),
        },
    )
    filename = f"free_slots_{query.first_day:%Y%m%d}_{query.last_day:%Y%m%d}.csv"
    return csv_response(
        filename=filename, header=FREE_SLOT_CSV_HEADER, rows=free_slot_csv_rows(rows)
    )


@require_GET
@staff_required(ADMIN, AUDITOR)
def reports(request: HttpRequest) -> HttpResponse:
    form = DateRangeForm(request.GET or None)
    first, last = form.range()
    if not form.is_bound:  # the boxes show the period the page shows
        form = DateRangeForm(initial={"first_day": first, "last_day": last})
    return page(
        request,
        "reports.html",
        {
            "form": form,
            "first_day": first,
            "last_day": last,
            "headline": headline(),
            "last_hour": bookings_last_hour(),
            "waiting_room": queue_now(request.tenant),  # type: ignore[attr-defined]
            "reports": [REPORTS[key](first, last) for key in REPORT_KEYS],
            "range_query": urlencode(
                {"first_day": first.isoformat(), "last_day": last.isoformat()}
            ),
        },
        status=200 if form.is_bound is False or form.is_valid() else 400,
    )


@require_GET
@staff_required(ADMIN, AUDITOR)
def report_csv(request: HttpRequest, key: str) -> HttpResponse:
    if key not in REPORTS:
        raise Http404("no such report")
    form = DateRangeForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        # Not another period's figures under a name that looks right: the page, which says
        # what is wrong with the period asked.
        return redirect(reverse("console:planning:reports") + "?" + request.GET.urlencode())
    first, last = form.range()
    report = REPORTS[key](first, last)
    export_record(
        kind="report",
        actor=actor_of(request),
        ip=ip_of(request),
        details={
            "report": key,
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "rows": len(report.rows),
        },
    )
    return csv_response(
        filename=f"report_{key}_{first:%Y%m%d}_{last:%Y%m%d}.csv",
        header=report.columns,
        rows=report.rows,
    )
