"""The call centre's pages (UX.md "The call-centre operator's path").

Search → the resident (masked) → reveal with a reason and confirm identity → book, change,
cancel, reset the password, disable or re-enable web login, lift a login lock. Every write is
a POST to a service in ``booking.services.callcentre``; nothing personal is ever in a URL
(the search itself is a POST), and resident pages are ``no-store`` (the security headers
middleware).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from audit.chain import Actor
from audit.middleware import client_ip, referer_path
from booking.console.access import staff_required
from booking.console.callcentre.forms import (
    CancelForm,
    DayFilterForm,
    IdentityForm,
    RevealForm,
    SearchForm,
    SlotChoiceForm,
    WebLoginForm,
)
from booking.console.callcentre.pages import console_page
from booking.models import (
    Booking,
    BookingPolicy,
    Channel,
    Slot,
    StaffMember,
    VaccinationRecord,
    Voucher,
)
from booking.models.bookings import booking_number_display, booking_number_spoken
from booking.registry.dates import today_in_japan
from booking.resident.selectors import slot_cancellation_notice, slot_for_booking
from booking.resident.waiting_room import queue_now
from booking.selectors.availability import (
    availability_choices,
    availability_for_day,
    open_days,
    slots_on,
    venues_by_area,
)
from booking.selectors.residents import (
    NextDose,
    booking_of_voucher,
    bookings_linked_to,
    bookings_of,
    cancelled_together,
    next_dose,
    vaccinations_of,
)
from booking.selectors.slots import slot_with_venue_and_product
from booking.services.booking import (
    BookingRefused,
    SeriesTogether,
    booking_closes_at,
    bookings_out_of_step,
    next_dose_age_window,
    series_together_for,
    slot_refusal,
)
from booking.services.callcentre import (
    IDENTITY_VALID,
    ConfirmedIdentity,
    IdentityCheckRequired,
    IdentityIncomplete,
    PasswordResetNotApplicable,
    PersonalData,
    RevealRequired,
    SearchResult,
    booked_how,
    booking_moves,
    callcentre_book,
    callcentre_cancel,
    callcentre_change,
    callcentre_identity_record,
    callcentre_login_lock_lift,
    callcentre_password_reset,
    callcentre_personal_data_reveal,
    callcentre_personal_data_shown_again,
    callcentre_resident_view,
    callcentre_search,
    callcentre_search_shown_again,
    callcentre_web_login_set,
    cancelled_how,
    identity_confirmed,
    identity_failures_today,
    login_locked,
    password_reset_applies,
)
from booking.services.notifications import reminders_sent
from booking.services.planning import (
    bookings_cancelled_with_their_slot,
    cancellation_to_phone,
    cancelled_slots_to_phone,
    slot_cancellation_told,
)
from booking.services.reminder_calls import reminder_calls, reminder_calls_left, reminder_phoned

JAPAN = ZoneInfo("Asia/Tokyo")
CHANNEL = Channel.CALL_CENTRE.value
Role = StaffMember.Role
operators = staff_required(Role.CALL_CENTRE, Role.ADMIN)


def _staff(request: HttpRequest) -> StaffMember:
    return request.staff  # type: ignore[attr-defined,no-any-return]


def _voucher(voucher_id: int) -> Voucher:
    voucher = Voucher.objects.filter(pk=voucher_id).first()
    if voucher is None:
        raise Http404
    return voucher


def _booking(voucher: Voucher, booking_id: int) -> Booking:
    booking = booking_of_voucher(voucher, booking_id)
    if booking is None:
        raise Http404
    return booking


def _resident_url(voucher: Voucher) -> str:
    return reverse("console:callcentre:resident", args=[voucher.pk])


# --- Search -----------------------------------------------------------------------------------


# The latest search listing several residents, kept for a moment so that the list is a page
# of its own (a GET) the operator can come back to from a resident: ids, never what was typed.
_FOUND = "callcentre_found"
_FOUND_KEPT = timedelta(minutes=15)  # a phone call


@require_http_methods(["GET", "POST"])
@operators
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.POST or None)
    context: dict[str, Any] = {
        "form": form,
        # The web queue: a caller can be told that the phone does not wait.
        "waiting_room": queue_now(request.tenant),  # type: ignore[attr-defined]
        # Residents a cancelled slot could not tell, still to phone (counts only here).
        "to_phone": sum(count for _slot, count in cancelled_slots_to_phone()),
        # Tomorrow's bookings no reminder reaches, not phoned yet (a count).
        "reminder_calls": reminder_calls_left(_tomorrow()) if reminders_sent() else 0,
    }
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            result = callcentre_search(
                staff=_staff(request), query=form.cleaned_data["q"], ip=client_ip(request)
            )
        except ValidationError as invalid:
            form.add_error("q", invalid)
            status = 400
        else:
            if len(result.residents) == 1:
                return redirect(
                    "console:callcentre:resident", voucher_id=result.residents[0].voucher_id
                )
            if result.residents:
                return _found_page(request, result)
            # No one: the words typed stay in the box, selected, for the next ones.
            context["result"] = result
    elif request.method == "POST":
        status = 400
    elif "found" in request.GET:
        again = _found_again(request)
        if again is None:
            messages.info(request, _("前の検索結果は表示できません。もう一度検索してください。"))
            return redirect("console:callcentre:search")
        context["result"] = again
        # Two rows the operator cannot tell apart by what the list shows: say what to ask.
        shown = [(r.masked_name, r.birth_year) for r in again.residents]
        context["look_alike"] = len(set(shown)) < len(shown)
    return console_page(request, "booking/console/callcentre/search.html", context, status=status)


def _found_page(request: HttpRequest, result: SearchResult) -> HttpResponse:
    """Keep the residents found and send the operator to their list."""
    token = secrets.token_urlsafe(8)
    request.session[_FOUND] = {
        "token": token,
        "vouchers": [resident.voucher_id for resident in result.residents],
        "truncated": result.truncated,
        "at": timezone.now().timestamp(),
    }
    return redirect(f"{reverse('console:callcentre:search')}?found={token}")


def _found_again(request: HttpRequest) -> SearchResult | None:
    """The list of ``_found_page``, if it is this session's latest and still kept."""
    kept = request.session.get(_FOUND)
    if not isinstance(kept, dict) or kept.get("token") != request.GET.get("found"):
        return None
    at = kept.get("at")
    if not isinstance(at, float) or timezone.now().timestamp() - at > _FOUND_KEPT.total_seconds():
        return None
    vouchers = [each for each in kept.get("vouchers") or [] if isinstance(each, int)]
    return callcentre_search_shown_again(
        staff=_staff(request), voucher_ids=vouchers, truncated=bool(kept.get("truncated"))
    )


@require_http_methods(["GET"])
@operators
def to_phone(request: HttpRequest) -> HttpResponse:
    """The residents whose slot the municipality cancelled and who could not be told (no
    contact registered), slot by slot, until phoned or booked again: the call centre's
    list to work through. Reading it (voucher numbers) is audited per slot."""
    slots = [
        (
            slot,
            [
                row
                for row in slot_cancellation_told(
                    slot=slot, actor=Actor.staff(request.user), ip=client_ip(request)
                )
                if row.to_phone
            ],
        )
        for slot, _count in cancelled_slots_to_phone()
    ]
    day = _tomorrow()
    # Without reminders there is no list of whom they miss (it would be everyone booked).
    sent = reminders_sent()
    return console_page(
        request,
        "booking/console/callcentre/to_phone.html",
        {
            "slots": [(slot, rows) for slot, rows in slots if rows],
            "reminder_day": day,
            "reminders_sent": sent,
            "reminder_calls": reminder_calls(
                day=day, actor=Actor.staff(request.user), ip=client_ip(request)
            )
            if sent
            else [],
        },
    )


def _tomorrow() -> date:
    return today_in_japan() + timedelta(days=1)


@require_POST
@operators
def reminder_phoned_view(request: HttpRequest, booking_id: int) -> HttpResponse:
    """A resident no reminder reaches, marked phoned about tomorrow's booking (``undo``: a
    mistaken mark taken back)."""
    booking = get_object_or_404(Booking, pk=booking_id)
    undo = request.POST.get("undo") == "1"
    if reminder_phoned(
        booking=booking,
        day=_tomorrow(),
        actor=Actor.staff(request.user),
        ip=client_ip(request),
        undo=undo,
    ):
        messages.success(
            request,
            _("連絡済みの印を取り消しました。") if undo else _("電話で連絡済みにしました。"),
        )
    else:
        messages.info(request, _("この予約は一覧にないか、すでにその状態です。"))
    return redirect(reverse("console:callcentre:to_phone") + "#reminder-calls")


# --- The resident -------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingRow:
    booking: Booking
    number: str
    live: bool
    # Cancelled by the call centre until the slot, moved only until the cut-off (the
    # booking service's rule: after it, cancel and book anew).
    changeable: bool
    movable: bool
    # The vaccine given, where the venue recorded another than the slot's.
    given_product: str = ""
    # Cancelled by a cancellation of its slot (reopened since or not), not by anyone's choice.
    cancelled_with_slot: bool = False
    # Who cancelled it otherwise (a caller asks why their booking is gone).
    cancelled_how: str = ""


def _booking_rows(bookings: list[Booking], records: list[VaccinationRecord]) -> list[BookingRow]:
    """The resident's bookings (``bookings_of``) with what the call centre may do with each,
    and the vaccine given where it differs from the slot's (``records``: vaccinations_of)."""
    policy = BookingPolicy.current()
    now = timezone.now()
    given = {record.booking_id: record.product for record in records}
    cancelled = [b for b in bookings if b.status == Booking.Status.CANCELLED]
    with_slot = (
        bookings_cancelled_with_their_slot(
            [b.pk for b in cancelled], [b.slot_id for b in cancelled]
        )
        if cancelled
        else set()
    )
    rows = []
    for booking in bookings:
        product = given.get(booking.pk)
        live = booking.status in Booking.LIVE_STATUSES
        active = booking.status == Booking.Status.ACTIVE
        rows.append(
            BookingRow(
                booking=booking,
                number=booking_number_display(booking.booking_number),
                live=live,
                changeable=active,
                movable=active and now < booking_closes_at(booking.slot, policy),
                given_product=product.name
                if product is not None and product.pk != booking.slot.product_id
                else "",
                cancelled_with_slot=booking.pk in with_slot,
                cancelled_how=""
                if booking.pk in with_slot or booking.deferred
                else cancelled_how(booking),
            )
        )
    return rows


def _identity(request: HttpRequest, voucher: Voucher) -> ConfirmedIdentity | None:
    return identity_confirmed(staff=_staff(request), voucher=voucher)


def _resident_page(
    request: HttpRequest,
    voucher: Voucher,
    *,
    reveal_form: RevealForm | None = None,
    status: int = 200,
) -> HttpResponse:
    staff = _staff(request)
    summary = callcentre_resident_view(staff=staff, voucher=voucher, ip=client_ip(request))
    municipality = request.tenant  # type: ignore[attr-defined]
    nxt = next_dose(voucher)
    policy = BookingPolicy.current()
    waits = nxt.waits_for_pending(policy)
    # Too young for any phase opened yet: said here, before the operator offers to book.
    not_yet = ""
    if not waits and not nxt.series_complete:
        _first_day, not_yet = _age_window(voucher, nxt, policy)
    # Read once: the rows and the bookings out of step both need them.
    bookings = bookings_of(voucher)
    records = list(vaccinations_of(voucher))
    return console_page(
        request,
        "booking/console/callcentre/resident.html",
        {
            "voucher": voucher,
            "summary": summary,
            "bookings": _booking_rows(bookings, records),
            "out_of_step": bookings_out_of_step(
                voucher,
                live=[b for b in bookings if b.status in Booking.LIVE_STATUSES],
                records=records,
            ),
            "next": nxt,
            # One booking at a time, unless the municipality books the series together.
            "waits_for_dose": waits,
            "not_yet": not_yet,
            "identity": _identity(request, voucher),
            "identity_failures": identity_failures_today(voucher),
            "identity_minutes": int(IDENTITY_VALID.total_seconds() // 60),
            "reveal_form": reveal_form or RevealForm(),
            "password_reset_applies": password_reset_applies(municipality),
            "login_locked": login_locked(voucher),
            "login_mode": municipality.get_login_mode_display(),
        },
        status=status,
    )


@require_http_methods(["GET"])
@operators
def resident(request: HttpRequest, voucher_id: int) -> HttpResponse:
    return _resident_page(request, _voucher(voucher_id))


@require_POST
@operators
def reveal(request: HttpRequest, voucher_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    form = RevealForm(request.POST)
    if not form.is_valid():
        return _resident_page(request, voucher, reveal_form=form, status=400)
    try:
        personal = callcentre_personal_data_reveal(
            staff=_staff(request),
            voucher=voucher,
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
            ip=client_ip(request),
        )
    except ValidationError as invalid:
        form.add_error(None, invalid)
        return _resident_page(request, voucher, reveal_form=form, status=400)
    return _reveal_page(request, voucher, personal, IdentityForm(items=personal.identity_items))


def _reveal_page(
    request: HttpRequest,
    voucher: Voucher,
    personal: PersonalData,
    identity_form: IdentityForm,
    *,
    error: str = "",
) -> HttpResponse:
    return console_page(
        request,
        "booking/console/callcentre/reveal.html",
        {
            "voucher": voucher,
            "personal": personal,
            "identity_form": identity_form,
            "identity_error": error,
        },
        status=400 if error else 200,
    )


@require_POST
@operators
def identity(request: HttpRequest, voucher_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    form = IdentityForm(request.POST)
    form.is_valid()  # optional checkboxes: always valid
    try:
        confirmed = callcentre_identity_record(
            staff=_staff(request),
            voucher=voucher,
            matched=form.matched(),
            asked_by=form.caller(),
            # Only its own button says an item did not match: Enter sends "all matched".
            mismatch=request.POST.get("result") == "mismatch",
            ip=client_ip(request),
        )
    except IdentityIncomplete as unfinished:
        # The record again, with what was ticked and the caller kept, to finish the check
        # (not the reveal's reason asked again).
        try:
            personal = callcentre_personal_data_shown_again(
                staff=_staff(request), voucher=voucher, ip=client_ip(request)
            )
        except RevealRequired as lapsed:
            messages.error(request, lapsed.message)
            return redirect(_resident_url(voucher))
        return _reveal_page(
            request,
            voucher,
            personal,
            IdentityForm(request.POST, items=personal.identity_items),
            error=unfinished.message,
        )
    except RevealRequired as refused:
        messages.error(request, refused.message)
        return redirect(_resident_url(voucher))
    if confirmed:
        messages.success(
            request,
            _("本人確認を記録しました。%(minutes)d分間、予約やアカウントの操作ができます。")
            % {"minutes": int(IDENTITY_VALID.total_seconds() // 60)},
        )
        back = _back_after_identity(request, voucher)
        if back is not None:  # the page the operator was on, the day and filters chosen
            return redirect(back)
    else:
        messages.error(
            request,
            _(
                "一致しない項目があったため、本人確認できなかったことを記録しました。"
                "予約やアカウントの操作はできません。同じ名前の別の方かもしれません。"
                "もう一度検索して生まれた年などを確かめるか、お手元の接種券の接種券番号で"
                "検索し直してください。"
            ),
        )
    return redirect(_resident_url(voucher))


# The page of this resident the operator was on when the identity check was found missing
# (a slot chosen on the booking page, say): the check, once recorded, returns there.
_BACK = "callcentre_back_after_identity"


def _identity_refused(
    request: HttpRequest, voucher: Voucher, refused: IdentityCheckRequired
) -> HttpResponse:
    messages.error(request, refused.message)
    back = referer_path(request)
    own = _resident_url(voucher)
    if back.startswith(own):
        request.session[_BACK] = {"voucher": voucher.pk, "url": back[:1000]}
    return redirect(own)


def _back_after_identity(request: HttpRequest, voucher: Voucher) -> str | None:
    kept = request.session.pop(_BACK, None)
    if isinstance(kept, dict) and kept.get("voucher") == voucher.pk:
        url = kept.get("url")
        if isinstance(url, str) and url.startswith(_resident_url(voucher)):
            return url
    return None


# --- Booking on the resident's behalf -----------------------------------------------------


def _slot(form: SlotChoiceForm) -> Slot:
    slot = (
        Slot.objects.select_related("venue", "product").filter(pk=form.cleaned_data["slot"]).first()
        if form.is_valid()
        else None
    )
    if slot is None:
        raise Http404
    return slot


def _today() -> date:
    return timezone.localdate(timezone=JAPAN)


def _slot_picker(
    request: HttpRequest,
    *,
    preset_product: str | None = None,
    series: SeriesTogether | None = None,
    earliest: date | None = None,
) -> dict[str, Any]:
    """The same choices the resident sees (every venue for a day, or one venue's days), with
    the call centre's capacity only, from ``earliest`` (the interval after the previous dose,
    or the birthday from which an age phase covers the resident). For the second dose booked
    together: its vaccine only, from the first day its interval allows."""
    data = request.GET.copy()
    if series is not None:
        data["product"] = series.product.code
    elif "product" not in data and preset_product:
        data["product"] = preset_product
    filters = DayFilterForm(data)
    area = filters.value("area")
    product = filters.value("product")
    choices = availability_choices()
    chosen_venue = filters.value("venue")
    # Not an open venue: no filter.
    venue = next((pk for pk, _name, _area in choices.venues if pk == chosen_venue), None)
    policy = BookingPolicy.current()
    today = _today()
    if series is not None:
        earliest = series.earliest_day
    first = max(today, earliest) if earliest is not None else today
    days = open_days(
        CHANNEL,
        first,
        policy.last_day_open(timezone.now()),
        area=str(area) if area else None,
        product=str(product) if product else None,
        venue=venue,
    )
    chosen = filters.value("day")
    if isinstance(chosen, date) and chosen < first:
        chosen = None
    if not isinstance(chosen, date):
        chosen = next((day.day for day in days if day.mark.bookable), None)
    venues = (
        availability_for_day(
            channel=CHANNEL,
            day=chosen,
            area=str(area) if area else None,
            product=str(product) if product else None,
            venue=venue,
        )
        if chosen
        else []
    )
    last_open = policy.last_day_open(timezone.now())
    return {
        "days": days,
        "chosen_day": chosen,
        # A day whose booking has not opened yet (asked for by its date): when it opens.
        "not_open_yet": isinstance(chosen, date)
        and chosen > last_open
        and slots_on(CHANNEL, chosen),
        "day_opens_at": policy.day_opens_at(chosen) if isinstance(chosen, date) else None,
        "day_opens_on": policy.day_opens_on(chosen) if isinstance(chosen, date) else None,
        "policy": policy,
        "venues": venues,
        "choices": choices,
        "venue_groups": venues_by_area(choices.venues),
        "area": area or "",
        "product": product or "",
        "venue": venue or "",
    }


def _age_window(voucher: Voucher, nxt: NextDose, policy: BookingPolicy) -> tuple[date | None, str]:
    """The first day the caller's age lets them book the next dose; with none, what the
    operator tells them instead (when their age group opens, where it is set)."""
    age = next_dose_age_window(voucher, policy, nxt.earliest_day)
    if age.first_day is None:
        return None, age.not_yet_message(policy.call_centre_phone, for_staff=True)
    return age.first_day, ""


def _booking_page_saying(
    request: HttpRequest, voucher: Voucher, booking: Booking, say: Callable[..., None]
) -> HttpResponse:
    """A booking no longer live (cancelled or received, perhaps a moment ago by someone
    else): its own page, which says what it is now, with ``say`` (a ``messages`` level)."""
    say(request, BookingRefused("no_longer_booked").staff_message)
    return redirect("console:callcentre:booking", voucher_id=voucher.pk, booking_id=booking.pk)


def _book_page(
    request: HttpRequest,
    voucher: Voucher,
    *,
    changing: Booking | None = None,
    first_slot: Slot | None = None,
    series: SeriesTogether | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    preset = changing.slot.product.code if changing is not None else None
    nxt = next_dose(voucher)
    # What the resident's own pages say (not yet, and from when) and the days they offer:
    # from the interval's end, or the birthday, whichever is later (the window's first day).
    not_yet, earliest = "", None
    policy = BookingPolicy.current()
    # One booking at a time, unless the municipality books the series together: the next
    # dose waits for the booked one to be given (the service would refuse it).
    waits = changing is None and nxt.waits_for_pending(policy)
    if changing is None and not waits:
        earliest, not_yet = _age_window(voucher, nxt, policy)
    context = {
        "voucher": voucher,
        "changing": changing,
        "changing_number": booking_number_display(changing.booking_number) if changing else "",
        "next": nxt,
        "not_yet": not_yet,
        "waits_for_dose": waits,
        "identity": _identity(request, voucher),
        "error": error,
        "closes_hours_before": policy.closes_hours_before,
        "first_slot": first_slot if series is not None else None,
        "series": series,
        **_slot_picker(request, preset_product=preset, series=series, earliest=earliest),
    }
    # What books or moves: asked first, read back to the caller, then done (a slot's button
    # among a dozen alike only opens its confirmation). Choosing a series' first dose books
    # nothing yet, so it goes straight on to the second.
    context["confirm_first"] = (
        changing is not None or series is not None or not policy.book_series_together
    )
    if context["confirm_first"] and not error:
        context["confirming"] = _confirming(request, context["venues"])
        # A confirmation asked for (a reload, a link kept) whose slot is no longer free.
        context["confirm_gone"] = (
            context["confirming"] is None and request.GET.get("confirm", "").isdigit()
        )
        if context["confirm_gone"]:
            context["confirm_gone_reason"] = _gone_reason(voucher, int(request.GET["confirm"]))
    return console_page(request, "booking/console/callcentre/book.html", context, status=status)


def _gone_reason(voucher: Voucher, slot_id: int) -> str:
    """Why a slot asked for by its id is not offered: the caller holds it already (the
    confirmation opened again after booking, by Back), or what the slot alone says (not open
    yet, stopped, no places for the phone, past the cut-off); "" when neither says."""
    held = (
        Booking.objects.filter(voucher=voucher, slot_id=slot_id, status__in=Booking.LIVE_STATUSES)
        .only("booking_number")
        .first()
    )
    if held is not None:
        return _(
            "この方は、この枠をすでに予約しています（予約番号 %(number)s）。"
            "予約の内容は、この方のページで確かめられます。"
        ) % {"number": booking_number_display(held.booking_number)}
    slot = slot_with_venue_and_product(slot_id)
    if slot is None:
        return ""
    refused = slot_refusal(slot, channel=CHANNEL, policy=BookingPolicy.current())
    return refused.staff_message if refused is not None else ""


def _confirming(request: HttpRequest, venues: Any) -> tuple[Any, Any] | None:
    """The (venue, slot) of the day's list that ``?confirm=`` names, if it is bookable."""
    wanted = request.GET.get("confirm", "")
    if not wanted.isdigit():
        return None
    for venue in venues:
        for slot in venue.slots:
            if slot.slot_id == int(wanted) and slot.mark.bookable:
                return venue, slot
    return None


def _series_slot(slot_id: int | None) -> Slot | None:
    """A slot chosen for a series booked together, of either dose (404 when it is gone)."""
    if slot_id is None:
        return None
    slot = slot_for_booking(slot_id, channel=CHANNEL)
    if slot is None:
        raise Http404
    return slot


def _book_page_for(request: HttpRequest, voucher: Voucher) -> HttpResponse:
    first = _series_slot(DayFilterForm(request.GET).first_slot_id())
    if first is None:
        return _book_page(request, voucher)
    series = series_together_for(voucher, first)
    if series is None:
        # Nothing to book with it any more (the policy changed, or a dose was booked).
        return redirect("console:callcentre:book", voucher_id=voucher.pk)
    return _book_page(request, voucher, first_slot=first, series=series)


def _second_dose_url(voucher: Voucher, first: Slot) -> str:
    return reverse("console:callcentre:book", args=[voucher.pk]) + f"?first={first.pk}"


@require_http_methods(["GET", "POST"])
@operators
def book(request: HttpRequest, voucher_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    if request.method == "GET":
        return _book_page_for(request, voucher)
    form = SlotChoiceForm(request.POST)
    slot = _slot(form)
    series = series_together_for(voucher, slot)
    second_id = form.cleaned_data.get("second_slot")
    if second_id is None and series is not None:
        # The municipality books the series together: the operator chooses the next dose's
        # slot before anything is booked.
        return redirect(_second_dose_url(voucher, slot))
    second = _series_slot(second_id)
    if second is not None and series is None:
        return _book_page(
            request,
            voucher,
            error=_(
                "この住民の予約は、いまは2回分をまとめて予約できません"
                "（設定が変わったか、ほかの予約が入りました）。枠を選び直してください。"
            ),
            status=409,
        )
    try:
        booking = callcentre_book(
            staff=_staff(request),
            voucher=voucher,
            slot=slot,
            second_slot=second,
            ip=client_ip(request),
        )
    except IdentityCheckRequired as refused:
        return _identity_refused(request, voucher, refused)
    except BookingRefused as refused:
        if second is None:
            return _book_page(request, voucher, error=refused.staff_message, status=409)
        return _book_page(
            request,
            voucher,
            first_slot=slot,
            series=series,
            error=refused.staff_message_naming_dose,
            status=409,
        )
    if second is not None:
        messages.success(
            request,
            _("%(first)s回目と%(second)s回目を予約しました。2つの予約番号をお伝えください。")
            % {"first": booking.dose, "second": booking.dose + 1},
        )
    else:
        messages.success(request, _("予約しました。予約番号をお伝えください。"))
    return redirect("console:callcentre:booking", voucher_id=voucher.pk, booking_id=booking.pk)


@require_http_methods(["GET", "POST"])
@operators
def change(request: HttpRequest, voucher_id: int, booking_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    current = _booking(voucher, booking_id)
    if current.status != Booking.Status.ACTIVE:
        return _booking_page_saying(request, voucher, current, messages.error)
    if request.method == "GET":
        return _book_page(request, voucher, changing=current)
    choice = SlotChoiceForm(request.POST)
    slot = _slot(choice)
    try:
        changed = callcentre_change(
            staff=_staff(request),
            voucher=voucher,
            booking=current,
            slot=slot,
            ip=client_ip(request),
            expected_slot_id=choice.cleaned_data.get("from_slot"),
        )
    except IdentityCheckRequired as refused:
        return _identity_refused(request, voucher, refused)
    except BookingRefused as refused:
        if refused.code == "no_longer_booked":
            return _booking_page_saying(request, voucher, current, messages.error)
        current.refresh_from_db()  # the page shows the booking as it is now
        return _book_page(
            request, voucher, changing=current, error=refused.staff_message, status=409
        )
    if (changed.slot_id, changed.channel) == (current.slot_id, current.channel):
        # The booking's own slot chosen again (a stale page, a second click): nothing moved.
        messages.info(request, _("いまの予約と同じ枠です。予約は変更していません。"))
    else:
        messages.success(request, _("予約を変更しました。予約番号は変わりません。"))
    return redirect("console:callcentre:booking", voucher_id=voucher.pk, booking_id=changed.pk)


@require_http_methods(["GET", "POST"])
@operators
def cancel(request: HttpRequest, voucher_id: int, booking_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    current = _booking(voucher, booking_id)
    if current.status != Booking.Status.ACTIVE:
        # Back after cancelling, another operator, the resident: nothing to offer.
        return _booking_page_saying(request, voucher, current, messages.info)
    linked = bookings_linked_to(current)
    cascade = linked if BookingPolicy.current().cancel_cascades else []
    context: dict[str, Any] = {
        "voucher": voucher,
        "booking": current,
        "number": booking_number_display(current.booking_number),
        "identity": _identity(request, voucher),
        "cascade": [(each, booking_number_display(each.booking_number)) for each in cascade],
    }
    if request.method == "GET":
        # Who is on the phone, as the identity check said; the operator may change it.
        identity = context["identity"]
        asked_by = {"asked_by": identity.asked_by} if identity and identity.asked_by else {}
        context["form"] = CancelForm(initial={"from_slot": current.slot_id, **asked_by})
        return console_page(request, "booking/console/callcentre/cancel.html", context)
    form = context["form"] = CancelForm(request.POST)
    if not form.is_valid():
        return console_page(request, "booking/console/callcentre/cancel.html", context, status=400)
    try:
        callcentre_cancel(
            staff=_staff(request),
            voucher=voucher,
            booking=current,
            ip=client_ip(request),
            asked_by=form.cleaned_data["asked_by"],
            given_reason=form.cleaned_data["given_reason"],
            expected_slot_id=form.cleaned_data["from_slot"],
        )
    except IdentityCheckRequired as refused:
        return _identity_refused(request, voucher, refused)
    except BookingRefused as refused:
        current.refresh_from_db()  # the page shows the booking as it is now
        context["error"] = refused.staff_message
        # What was chosen stays; the slot is the one the page now shows.
        context["form"] = CancelForm(initial={**form.cleaned_data, "from_slot": current.slot_id})
        return console_page(request, "booking/console/callcentre/cancel.html", context, status=409)
    with_it = cancelled_together(current, linked)
    if with_it:
        messages.success(
            request,
            _(
                "予約を取り消しました。"
                "一緒に予約していた%(doses)s（予約番号 %(numbers)s）も取り消しました。"
            )
            % {
                "doses": "・".join(_("%(dose)s回目") % {"dose": each.dose} for each in with_it),
                "numbers": "、".join(
                    booking_number_display(each.booking_number) for each in with_it
                ),
            },
        )
    else:
        messages.success(request, _("予約を取り消しました。"))
    return redirect("console:callcentre:booking", voucher_id=voucher.pk, booking_id=current.pk)


@require_http_methods(["GET"])
@operators
def booking_detail(request: HttpRequest, voucher_id: int, booking_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    current = _booking(voucher, booking_id)
    return console_page(
        request,
        "booking/console/callcentre/booking.html",
        {
            "voucher": voucher,
            "booking": current,
            "number": booking_number_display(current.booking_number),
            "spoken": booking_number_spoken(current.booking_number),
            "live": current.status in Booking.LIVE_STATUSES,
            "booked_how": booked_how(current),
            "moves": booking_moves(current),
            "cancelled_how": cancelled_how(current),
            # A slot the municipality cancelled: its words, and whether the caller was told.
            "called_off_notice": slot_cancellation_notice(current) if current.called_off else "",
            "to_phone": cancellation_to_phone(current),
            "identity": _identity(request, voucher),
            "linked": [
                (each, booking_number_display(each.booking_number))
                for each in bookings_linked_to(current)
            ],
        },
    )


# --- The resident's web login -------------------------------------------------------------


@require_POST
@operators
def password_reset(request: HttpRequest, voucher_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    try:
        result = callcentre_password_reset(
            staff=_staff(request), voucher=voucher, ip=client_ip(request)
        )
    except IdentityCheckRequired as refused:
        return _identity_refused(request, voucher, refused)
    except PasswordResetNotApplicable:
        messages.error(request, _("この市区町村のログイン方式には、パスワードがありません。"))
        return redirect(_resident_url(voucher))
    # Rendered, not redirected: a new one-time code is shown once and kept nowhere.
    return console_page(
        request,
        "booking/console/callcentre/password_reset.html",
        {"voucher": voucher, "result": result},
    )


@require_POST
@operators
def web_login(request: HttpRequest, voucher_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    form = WebLoginForm(request.POST)
    if not form.is_valid():
        for error in form.non_field_errors():
            messages.error(request, str(error))
        return redirect(_resident_url(voucher))
    disabled = bool(form.cleaned_data["disabled"])
    try:
        callcentre_web_login_set(
            staff=_staff(request), voucher=voucher, disabled=disabled, ip=client_ip(request)
        )
    except IdentityCheckRequired as refused:
        return _identity_refused(request, voucher, refused)
    if disabled:
        messages.success(
            request, _("ウェブでのログインを停止し、ログイン中のセッションを終了しました。")
        )
    else:
        messages.success(request, _("ウェブでのログインを再開しました。"))
    return redirect(_resident_url(voucher))


@require_POST
@operators
def lock_lift(request: HttpRequest, voucher_id: int) -> HttpResponse:
    voucher = _voucher(voucher_id)
    try:
        callcentre_login_lock_lift(staff=_staff(request), voucher=voucher, ip=client_ip(request))
    except IdentityCheckRequired as refused:
        return _identity_refused(request, voucher, refused)
    messages.success(
        request,
        _("ログインの試行制限を解除しました。すぐにもう一度ログインしていただけます。"),
    )
    return redirect(_resident_url(voucher))
