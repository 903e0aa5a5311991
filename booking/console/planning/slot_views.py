"""Slots: list, generator (preview, then write), CSV upload, close, reopen, cancel (admin)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from booking.console.access import staff_required
from booking.console.planning.common import (
    ADMIN,
    JAPAN,
    actor_of,
    by_day,
    ip_of,
    page,
    today,
)
from booking.console.planning.forms import (
    DayCancelForm,
    SlotCancelForm,
    SlotCapacityForm,
    SlotFilterForm,
    SlotGeneratorForm,
    SlotUploadForm,
)
from booking.console.planning.slot_csv import ERRORS_SHOWN, read_slot_file, template_csv
from booking.models import Booking, BookingPolicy, Channel, Slot, StaffMember, Venue
from booking.services.booking import booking_days
from booking.services.planning import (
    PlanningRefused,
    SlotCreation,
    SlotPlanPreview,
    SlotSpec,
    day_cancel,
    day_slots,
    slot_cancel,
    slot_cancel_impact,
    slot_cancellation_phoned,
    slot_cancellation_told,
    slot_capacity_change,
    slot_close,
    slot_pattern_plan,
    slot_plan_preview,
    slot_reopen,
    slots_cancelled_once,
    slots_create,
)
from booking.services.reception import day_bounds

SLOTS_PER_PAGE = 100


@require_GET
@staff_required(ADMIN)
def slot_list(request: HttpRequest) -> HttpResponse:
    form = SlotFilterForm(request.GET or None)
    slots = Slot.objects.select_related("venue", "product")
    first = today()
    last = None
    venue = None
    if form.is_valid():
        data = form.cleaned_data
        if data.get("venue"):
            venue = data["venue"]
            slots = slots.filter(venue=venue)
        if data.get("status"):
            slots = slots.filter(status=data["status"])
        first = data.get("first_day") or first
        last = data.get("last_day")
    slots = slots.filter(starts_at__gte=datetime.combine(first, clock.min, tzinfo=JAPAN))
    if last is not None:
        end = datetime.combine(last + timedelta(days=1), clock.min, tzinfo=JAPAN)
        slots = slots.filter(starts_at__lt=end)
    paginator = Paginator(
        slots.order_by("starts_at", "venue__area", "venue__name", "pk"), SLOTS_PER_PAGE
    )
    slot_page = paginator.get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return page(
        request,
        "slots.html",
        {
            "form": form,
            "slot_page": slot_page,
            "days": by_day(slot_page.object_list, lambda s: s.starts_at.astimezone(JAPAN).date()),
            "query": params.urlencode(),
            "back": request.get_full_path(),
            # A slot that has started is past changing or cancelling: not offered.
            "now": timezone.now(),
            "today": today(),
            # A day's slots are cancelled together at the venue chosen, or at all.
            "venue_filter": venue,
            # Slots a cancellation cancelled bookings of, reopened since or not: their list of
            # those to phone is offered.
            "cancelled_once": slots_cancelled_once([slot.pk for slot in slot_page.object_list]),
        },
    )


def _back_to_list(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("back", "")
    if target.startswith(reverse("console:planning:slots")):
        return redirect(target)
    return redirect("console:planning:slots")


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def slot_generate(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST "preview": the plan, nothing written. POST "generate": writes the
    plan, but only the one the preview showed (else it shows the new preview)."""
    if request.method == "GET":
        return page(request, "slot_generate.html", {"form": SlotGeneratorForm()})
    form = SlotGeneratorForm(request.POST)
    if not form.is_valid():
        return page(request, "slot_generate.html", {"form": form}, status=400)
    try:
        specs = slot_pattern_plan(form.pattern(), not_before=timezone.now())
    except PlanningRefused as refused:
        form.add_error(None, refused.message)
        return page(request, "slot_generate.html", {"form": form}, status=400)
    preview = slot_plan_preview(specs)
    wants_write = request.POST.get("action") == "generate"
    previewed = form.cleaned_data.get("plan") == preview.digest
    if wants_write and previewed and preview.new == 0:
        messages.info(request, _("新しく作成する枠はありません（すべて作成済みです）。"))
    elif wants_write and previewed:
        try:
            created = slots_create(
                specs=specs, source="generator", actor=actor_of(request), ip=ip_of(request)
            )
        except PlanningRefused as refused:
            form.add_error(None, refused.message)
            return page(request, "slot_generate.html", {"form": form}, status=400)
        _say_created(request, created, preview)
        venue = form.cleaned_data["venue"]
        first = form.cleaned_data["first_day"]
        last = form.cleaned_data["last_day"]
        query = urlencode(
            {"venue": str(venue.pk), "first_day": first.isoformat(), "last_day": last.isoformat()}
        )
        return redirect(reverse("console:planning:slots") + "?" + query)
    elif wants_write:
        messages.warning(
            request, _("入力内容が確認画面と異なります。内容を確認してから作成してください。")
        )
    data = request.POST.copy()
    data["plan"] = preview.digest
    form = SlotGeneratorForm(data)
    form.is_valid()
    pattern = form.pattern()
    policy = BookingPolicy.current()
    _first, bookable_until = booking_days(policy)
    planned_days = {spec.starts_at.astimezone(JAPAN).date() for spec in specs}
    return page(
        request,
        "slot_generate.html",
        {
            "form": form,
            "preview": preview,
            "pattern": pattern,
            "left_out": pattern.days_left_out(),
            # A day called off at this venue (a typhoon): new slots would take bookings again.
            "called_off_days": sorted(
                day
                for _venue, day in _called_off({(pattern.venue.pk, day) for day in planned_days})
            ),
            # Slots after it are made now but offered to residents only as the window moves.
            "bookable_until": bookable_until if pattern.last_day > bookable_until else None,
            "opens_days_ahead": policy.opens_days_ahead,
        },
    )


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def slot_upload(request: HttpRequest) -> HttpResponse:
    form = SlotUploadForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"form": form, "errors_shown": ERRORS_SHOWN}
    if request.method == "GET":
        return page(request, "slot_upload.html", context)
    if not form.is_valid():
        return page(request, "slot_upload.html", context, status=400)
    parsed = read_slot_file(form.cleaned_data["file"].read())
    context["parsed"] = parsed
    context["errors"] = parsed.errors[:ERRORS_SHOWN]
    if not parsed.valid:
        return page(request, "slot_upload.html", context, status=400)
    if not parsed.specs:
        form.add_error("file", _("登録する行がありません。"))
        return page(request, "slot_upload.html", context, status=400)
    preview = slot_plan_preview(parsed.specs)
    context["preview"] = preview
    called_off = _called_off_in_file(parsed.specs)
    context["called_off"] = called_off
    if form.cleaned_data["check_only"]:
        return page(request, "slot_upload.html", context)
    try:
        created = slots_create(
            specs=parsed.specs, source="csv", actor=actor_of(request), ip=ip_of(request)
        )
    except PlanningRefused as refused:
        form.add_error(None, refused.message)
        return page(request, "slot_upload.html", context, status=400)
    _say_created(request, created, preview)
    if called_off:
        messages.warning(
            request,
            _(
                "次の日には、その会場で中止した予約枠があります。作成した枠で、その日にまた"
                "予約を受け付けます。誤りであれば、その枠を中止してください：%(days)s"
            )
            % {
                "days": pgettext("joining items", "、").join(
                    f"{name} {date_format(day, _('n月j日（D）'))}" for name, day in called_off
                )
            },
        )
    # The list opens on the file's days (and its venue, when it has one only), where the
    # new slots are.
    days = [timezone.localdate(spec.starts_at) for spec in parsed.specs]
    venues = {spec.venue_id for spec in parsed.specs}
    query = {"first_day": min(days).isoformat(), "last_day": max(days).isoformat()}
    if len(venues) == 1:
        query["venue"] = str(venues.pop())
    return redirect(reverse("console:planning:slots") + "?" + urlencode(query))


def _say_created(request: HttpRequest, created: SlotCreation, preview: SlotPlanPreview) -> None:
    messages.success(
        request,
        _(
            "予約枠を%(created)s件作成しました（既にあった、または重なる%(skipped)s件は作成していません）。"
        )
        % {"created": created.created, "skipped": created.skipped},
    )
    if preview.past_cut_off:
        messages.warning(
            request,
            _(
                "このうち%(count)s件は、予約の締切（接種開始の%(hours)s時間前）を過ぎているため、"
                "住民もコールセンターも予約できません。日付を確かめてください。"
            )
            % {"count": preview.past_cut_off, "hours": preview.cut_off_hours},
        )


@require_GET
@staff_required(ADMIN)
def slot_upload_template(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(template_csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="slots_template.csv"'
    return response


@require_POST
@staff_required(ADMIN)
def slot_close_view(request: HttpRequest, slot_id: int) -> HttpResponse:
    slot = get_object_or_404(Slot, pk=slot_id)
    try:
        slot_close(slot=slot, actor=actor_of(request), ip=ip_of(request))
    except PlanningRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, _("予約枠の受付を停止しました。既存の予約はそのままです。"))
    return _back_to_list(request)


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def slot_reopen_view(request: HttpRequest, slot_id: int) -> HttpResponse:
    """A closed slot reopens at a press; a cancelled one only once confirmed (GET: the
    confirmation): its residents were told it is cancelled, and their bookings stay so."""
    slot = get_object_or_404(Slot.objects.select_related("venue", "product"), pk=slot_id)
    cancelled = slot.status == Slot.Status.CANCELLED
    if request.method == "GET" and not cancelled:
        return redirect(reverse("console:planning:slots") + "?" + _slot_query(slot))
    if cancelled and not request.POST.get("confirm"):
        return page(
            request,
            "slot_reopen.html",
            {
                "slot": slot,
                "cancelled_bookings": Booking.objects.filter(
                    slot=slot, status=Booking.Status.CANCELLED
                ).count(),
                "unconfirmed": request.method == "POST",
            },
            status=400 if request.method == "POST" else 200,
        )
    try:
        slot_reopen(slot=slot, actor=actor_of(request), ip=ip_of(request))
    except PlanningRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, _("予約枠の受付を再開しました。"))
    if cancelled:  # from its confirmation page: back to the slot's venue and day
        return redirect(reverse("console:planning:slots") + "?" + _slot_query(slot))
    return _back_to_list(request)


def _capacities_now(slot: Slot) -> dict[str, int]:
    """The capacity form's values from the slot: its places, and the same as seen."""
    return {
        f"{prefix}_{channel}": slot.capacity(channel)
        for channel in Channel.values
        for prefix in ("capacity", "seen")
    }


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def slot_capacity_view(request: HttpRequest, slot_id: int) -> HttpResponse:
    """A slot's places for each channel, changed: never below what is booked through it."""
    slot = get_object_or_404(Slot.objects.select_related("venue", "product"), pk=slot_id)
    form = SlotCapacityForm(request.POST or None, initial=_capacities_now(slot))
    if request.method == "POST" and form.is_valid():
        try:
            slot_capacity_change(
                slot=slot,
                capacities=form.capacities(),
                seen=form.seen(),
                actor=actor_of(request),
                ip=ip_of(request),
            )
        except PlanningRefused as refused:
            if refused.code == "changed_meanwhile":
                # The form again from the places as they are now, the other change named.
                slot.refresh_from_db()
                form = SlotCapacityForm(initial=_capacities_now(slot))
                messages.error(request, refused.message)
            elif refused.by_channel:
                # Each at its box (below what is booked through that channel).
                for channel, message in refused.by_channel.items():
                    form.add_error(f"capacity_{channel}", message)
            else:
                form.add_error(None, refused.message)
        else:
            messages.success(request, _("予約枠の定員を変更しました。"))
            return redirect(reverse("console:planning:slots") + "?" + _slot_query(slot))
    channels = [
        (Channel(channel).label, slot.booked(channel), slot.capacity(channel))
        for channel in Channel.values
    ]
    status = 400 if request.method == "POST" else 200
    return page(
        request,
        "slot_capacity.html",
        {
            "slot": slot,
            "form": form,
            "channels": channels,
            "started": slot.starts_at <= timezone.now(),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def slot_cancel_view(request: HttpRequest, slot_id: int) -> HttpResponse:
    slot = get_object_or_404(Slot.objects.select_related("venue", "product"), pk=slot_id)
    form = SlotCancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        already = slot.status == Slot.Status.CANCELLED
        try:
            result = slot_cancel(
                slot=slot,
                actor=actor_of(request),
                ip=ip_of(request),
                notice=form.cleaned_data["notice"].strip(),
            )
        except PlanningRefused as refused:
            form.add_error(None, refused.message)
        else:
            if already:
                messages.info(request, _("この枠は、すでに中止してあります。"))
                return redirect("console:planning:slot_cancel", slot_id=slot.pk)
            messages.success(
                request,
                _(
                    "予約枠を中止し、予約%(bookings)s件を取り消しました（お知らせ%(sent)s件を送信予定）。"
                )
                % {"bookings": result.bookings_cancelled, "sent": result.notifications},
            )
            if result.not_told:
                # The list of those to phone is this page, now the slot's cancellation.
                _say_not_told(request, result.not_told)
                return redirect("console:planning:slot_cancel", slot_id=slot.pk)
            return redirect(reverse("console:planning:slots") + "?" + _slot_query(slot))
    status = 400 if request.method == "POST" else 200
    # Those an earlier cancellation of the slot cancelled, with whether each was told: kept
    # after the slot is reopened (the call centre may still be phoning them).
    told = slot_cancellation_told(slot=slot, actor=actor_of(request), ip=ip_of(request))
    if slot.status == Slot.Status.CANCELLED:
        return page(request, "slot_cancel.html", {"slot": slot, "told": told}, status=status)
    impact = slot_cancel_impact(slot=slot, actor=actor_of(request), ip=ip_of(request))
    return page(
        request,
        "slot_cancel.html",
        {"slot": slot, "form": form, "impact": impact, "told": told},
        status=status,
    )


def _called_off(venue_days: set[tuple[int, date]]) -> set[tuple[int, date]]:
    """Of these (venue id, day) pairs, those on which the venue has cancelled slots (a day
    called off for a typhoon, say): new slots there would take bookings again."""
    if not venue_days:
        return set()
    start, _end = day_bounds(min(day for _venue, day in venue_days))
    _start, end = day_bounds(max(day for _venue, day in venue_days))
    cancelled = Slot.objects.filter(
        venue_id__in={venue for venue, _day in venue_days},
        status=Slot.Status.CANCELLED,
        starts_at__gte=start,
        starts_at__lt=end,
    ).values_list("venue_id", "starts_at")
    return venue_days & {(venue, moment.astimezone(JAPAN).date()) for venue, moment in cancelled}


def _called_off_in_file(specs: list[SlotSpec]) -> list[tuple[str, date]]:
    """The file's (venue name, day) pairs on a day its venue called off, in day order."""
    pairs = _called_off({(spec.venue_id, spec.day) for spec in specs})
    names = dict(
        Venue.objects.filter(pk__in={venue for venue, _day in pairs}).values_list("pk", "name")
    )
    return sorted(
        ((names[venue], day) for venue, day in pairs), key=lambda pair: (pair[1], pair[0])
    )


def _say_not_told(request: HttpRequest, count: int) -> None:
    """After a cancellation: how many residents it could not tell, and who phones them."""
    messages.warning(
        request,
        _(
            "連絡先の登録がない%(count)s件の方には、お知らせが届きません。"
            "下の一覧の方に、コールセンターから電話でお知らせしてください。"
        )
        % {"count": count},
    )


def _slot_query(slot: Slot) -> str:
    day = slot.starts_at.astimezone(JAPAN).date().isoformat()
    return urlencode({"venue": str(slot.venue_id), "first_day": day, "last_day": day})


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def day_cancel_view(request: HttpRequest, day: str) -> HttpResponse:
    """中止 of a whole day, at one venue (``?venue=``) or at all: a typhoon, a closed
    building. Lists the slots and how many bookings each holds, takes one notice, and after
    it lists, slot by slot, the residents the call centre must phone."""
    try:
        chosen = date.fromisoformat(day)
    except ValueError:
        raise Http404("no such day") from None
    venue_id = request.GET.get("venue", "")
    venue = get_object_or_404(Venue, pk=venue_id) if venue_id.isdigit() else None
    form = DayCancelForm(request.POST or None)
    here = request.get_full_path()
    if request.method == "POST" and form.is_valid():
        result = day_cancel(
            day=chosen,
            venue=venue,
            actor=actor_of(request),
            ip=ip_of(request),
            notice=form.cleaned_data["notice"].strip(),
        )
        if not result.cancelled and not result.skipped:
            # Pressed again, or in a second tab: done already.
            messages.info(request, _("この日の予約枠は、すでに中止してあります。"))
            return redirect(here)
        messages.success(
            request,
            _(
                "予約枠%(slots)s件を中止し、予約%(bookings)s件を取り消しました"
                "（お知らせ%(sent)s件を送信予定）。"
            )
            % {
                "slots": len(result.cancelled),
                "bookings": result.bookings_cancelled,
                "sent": result.notifications,
            },
        )
        if result.not_told:
            _say_not_told(request, result.not_told)
        if result.skipped:
            messages.error(
                request,
                _(
                    "%(count)s件の予約枠は中止していません（受付済みの方がいる、または"
                    "中止できない状態になったため）。下の一覧で確かめてください。"
                )
                % {"count": len(result.skipped)},
            )
        return redirect(here)
    rows = day_slots(day=chosen, venue=venue)
    start, end = day_bounds(chosen)
    cancelled = Slot.objects.filter(
        starts_at__gte=start,
        starts_at__lt=end,
        status=Slot.Status.CANCELLED,
        **({"venue": venue} if venue is not None else {}),
    ).select_related("venue", "product")
    told = [
        (slot, slot_cancellation_told(slot=slot, actor=actor_of(request), ip=ip_of(request)))
        for slot in cancelled.order_by("venue__name", "starts_at")
    ]
    return page(
        request,
        "day_cancel.html",
        {
            "day": chosen,
            "venue": venue,
            "rows": rows,
            "cancellable": [row for row in rows if not row.checked_in],
            "bookings": sum(row.bookings for row in rows if not row.checked_in),
            "not_reachable": sum(row.not_reachable for row in rows if not row.checked_in),
            "form": form,
            "told": [(slot, rows_told) for slot, rows_told in told if rows_told],
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@staff_required(ADMIN, StaffMember.Role.CALL_CENTRE)
def slot_phoned_view(request: HttpRequest, slot_id: int, booking_id: int) -> HttpResponse:
    """A resident the slot's cancellation could not tell, marked phoned (by the operator who
    phoned them, or an admin); back to the list or page it was marked on."""
    slot = get_object_or_404(Slot, pk=slot_id)
    undo = request.POST.get("undo") == "1"
    if slot_cancellation_phoned(
        slot=slot, booking_id=booking_id, actor=actor_of(request), ip=ip_of(request), undo=undo
    ):
        messages.success(
            request,
            _("連絡済みの印を取り消しました。") if undo else _("電話で連絡済みにしました。"),
        )
    back = request.POST.get("back", "")
    if back.startswith(
        ("/console/planning/", "/console/callcentre/")
    ) and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("console:planning:slot_cancel", slot_id=slot.pk)
