"""Reception at a venue: look up, identify, check in, record the dose, mark no-shows.

Venue staff (at the venues they work at) and admins (everywhere). The booking number never
travels in a URL: the lookup is a POST, and pages address a booking by its id.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.middleware import client_ip
from booking.console.access import staff_required
from booking.console.reception.forms import (
    LookupForm,
    NoShowForm,
    StaffVenuesForm,
    VaccinationCorrectionForm,
    VaccinationForm,
    VaccinationVoidForm,
    WalkInForm,
)
from booking.console.reception.selectors import (
    AHEAD_DAYS,
    bookings_ahead,
    reception_day,
    vaccinations_today,
    walk_in_slots,
)
from booking.models import Booking, StaffMember, VaccinationRecord, Venue
from booking.models.bookings import booking_number_display
from booking.registry.dates import ERAS
from booking.selectors.residents import next_dose
from booking.services.booking import BookingRefused, bookings_out_of_step
from booking.services.reception import (
    ReceptionRefused,
    WalkInResident,
    booking_check_in,
    booking_check_in_undo,
    booking_deferral_undo,
    checked_in_unrecorded,
    day_of,
    later_doses_booked,
    live_booking_of,
    made_at_the_venue,
    no_shows_due,
    no_shows_mark,
    reception_booking_get,
    reception_card_open,
    reception_lookup,
    reception_roster_open,
    reception_venues,
    reception_walk_in,
    reception_walk_in_identify,
    staff_venue_ids,
    staff_venues_set,
    today_in_japan,
    vaccination_correct,
    vaccination_record,
    vaccination_void,
)

Admin = StaffMember.Role.ADMIN
Venue_ = StaffMember.Role.VENUE


def era_label(day: date) -> str:
    """``昭和23年``: the 接種券 and many IDs print the birth date in the Japanese era."""
    for era in reversed(ERAS):
        if day >= era.start:
            year = day.year - era.offset
            return f"{era.name}{'元' if year == 1 else year}年"
    return ""


def _staff(request: HttpRequest) -> StaffMember:
    return request.staff  # type: ignore[attr-defined,no-any-return]


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "site_name": request.tenant.name,  # type: ignore[attr-defined]
        "staff": _staff(request),
        **extra,
    }


def _lookup_page(
    request: HttpRequest, *, form: LookupForm | None = None, error: str = "", status: int = 200
) -> HttpResponse:
    staff = _staff(request)
    days = reception_day(staff)
    if staff.role == Admin:
        days = [day for day in days if day.total]
    return render(
        request,
        "booking/console/reception/lookup.html",
        _context(
            request,
            form=form or LookupForm(),
            lookup_error=error,
            days=days,
            no_venue=staff_venue_ids(staff) == set(),
            today=today_in_japan(),
        ),
        status=status,
    )


# What a refused lookup answers with: found elsewhere (403), too many voucher numbers (429);
# anything else is not found here (404).
_LOOKUP_STATUS = {"other_venue": 403, "too_many_lookups": 429}


@require_http_methods(["GET", "POST"])
@staff_required(Admin, Venue_)
def lookup(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _lookup_page(request)
    form = LookupForm(request.POST)
    if not form.is_valid():
        return _lookup_page(request, form=form, status=400)
    try:
        booking = reception_lookup(
            staff=_staff(request), text=form.cleaned_data["number"], ip=client_ip(request)
        )
    except ReceptionRefused as refusal:
        # An empty box again, ready for the next scan; the message says what went wrong,
        # and a number not found is repeated, so that a typo typed by hand can be seen.
        status = _LOOKUP_STATUS.get(refusal.code, 404)
        error = refusal.message
        if refusal.code in ("not_found", "no_booking_today"):
            error += _("（入力された番号：%(typed)s）") % {"typed": form.cleaned_data["number"]}
        return _lookup_page(request, error=error, status=status)
    return redirect("console:reception:booking", booking_id=booking.pk)


_LAST_DOCTOR = "reception_last_doctor"

# Checking in this long before the slot starts shows a warning first (a wrong-day or a
# family member's confirmation), not a refusal: venues take early arrivals.
EARLY_ARRIVAL = timedelta(hours=1)


def _lookup_form(vaccination_form: VaccinationForm | None) -> LookupForm:
    """The next resident's box, with the focus unless a refused record has it (the form puts
    it on its first wrong box)."""
    lookup = LookupForm()
    if vaccination_form is not None and vaccination_form.errors:
        lookup.fields["number"].widget.attrs.pop("autofocus", None)
    return lookup


def _card_page(
    request: HttpRequest,
    booking: Booking,
    *,
    vaccination_form: VaccinationForm | None = None,
    status: int = 200,
) -> HttpResponse:
    card = reception_card_open(staff=_staff(request), booking=booking, ip=client_ip(request))
    # A resident marked 来場なし who comes late, the same day, is checked in as well.
    can_check_in = (
        booking.status in (Booking.Status.ACTIVE, Booking.Status.NO_SHOW)
        and card.is_today
        and not card.voucher_withdrawn
    )
    # A day gone by: what the venue did not record that day can be, after the fact.
    can_check_in_after = (
        booking.status in (Booking.Status.ACTIVE, Booking.Status.NO_SHOW)
        and card.is_past
        and not card.voucher_withdrawn
    )
    can_record = booking.status == Booking.Status.CHECKED_IN and card.record is None
    # Back again the same day: the dose is recorded, or reception has the resident.
    recorded_today = card.record is not None and card.record.vaccinated_on == today_in_japan()
    # 接種見合わせ chosen by mistake: taken back the same day, the resident still there.
    can_undo_deferral = booking.deferred and card.is_today and not card.voucher_withdrawn
    if can_record and vaccination_form is None:
        # The doctor of this staff member's last record (a venue's doctor sees resident
        # after resident): filled in, to be changed when another doctor takes over.
        vaccination_form = VaccinationForm(
            slot=booking.slot, initial={"doctor": request.session.get(_LAST_DOCTOR, "")}
        )
    return render(
        request,
        "booking/console/reception/card.html",
        _context(
            request,
            card=card,
            booking=booking,
            number=booking_number_display(booking.booking_number),
            instead_number=(
                booking_number_display(card.instead.booking_number) if card.instead else ""
            ),
            era_label=era_label(card.birth_date) if card.birth_date else "",
            # The focus stays in the box for the next resident's number, at the top: a
            # scanner types a code and an Enter wherever the focus is, and on the check-in
            # button or in the lot number that Enter would check in or record the resident
            # on screen. Checking in and recording are a tap each, on purpose. (A record
            # refused for what was typed puts the focus on its first wrong box instead.)
            lookup_form=_lookup_form(vaccination_form),
            # Much before the slot: a confirmation of another day or person, perhaps.
            early=can_check_in and booking.slot.starts_at - timezone.now() > EARLY_ARRIVAL,
            recorded_today=recorded_today,
            can_check_in=can_check_in,
            can_check_in_after=can_check_in_after,
            can_record=can_record,
            can_undo_deferral=can_undo_deferral,
            # Its check-in taken back cancels a walk-in's booking: the choice says so.
            walk_in=can_record and made_at_the_venue(booking),
            # Recorded today: what to tell the resident about the next dose before they go.
            next_dose=_next_dose_words(card.record) if card.record and recorded_today else "",
            vaccination_form=vaccination_form if can_record else None,
        ),
        status=status,
    )


def _next_dose_words(record: VaccinationRecord) -> str:
    """What the resident is told about the next dose as they leave: the booking they hold
    for it, or from when it can be booked, or that the series is complete."""
    later = later_doses_booked(record)
    if later:
        nearest = later[0]
        return _("%(dose)s回目の予約があります（%(when)s）。当日は予約確認をお持ちください。") % {
            "dose": nearest.dose,
            "when": _slot_words(nearest),
        }
    upcoming = next_dose(record.voucher)
    if upcoming.series_complete:
        return _("予定の回数の接種は、これで済みました。")
    if upcoming.earliest_day is None:
        return ""
    return _(
        "%(dose)s回目は、%(day)s以降の日で予約できます（同じワクチン：%(product)s）。"
        "ウェブ・LINE・コールセンターでご予約いただくようお伝えください。"
    ) % {
        "dose": upcoming.dose,
        "day": date_format(upcoming.earliest_day, _("Y年n月j日（D）")),
        "product": upcoming.product.name if upcoming.product else record.product.name,
    }


def _open(request: HttpRequest, booking_id: int) -> Booking | HttpResponse:
    try:
        return reception_booking_get(
            staff=_staff(request), booking_id=booking_id, ip=client_ip(request)
        )
    except ReceptionRefused as refusal:
        status = 403 if refusal.code == "other_venue" else 404
        return _lookup_page(request, error=refusal.message, status=status)


@require_GET
@staff_required(Admin, Venue_)
def booking(request: HttpRequest, booking_id: int) -> HttpResponse:
    opened = _open(request, booking_id)
    if isinstance(opened, HttpResponse):
        return opened
    return _card_page(request, opened)


@require_POST
@staff_required(Admin, Venue_)
def check_in(request: HttpRequest, booking_id: int) -> HttpResponse:
    opened = _open(request, booking_id)
    if isinstance(opened, HttpResponse):
        return opened
    number = booking_number_display(opened.booking_number)
    after_the_day = request.POST.get("after_the_day") == "1"
    if after_the_day and not request.POST.get("confirm"):
        messages.error(request, _("確認のチェックを入れてから押してください。"))
        return redirect("console:reception:booking", booking_id=opened.pk)
    try:
        booking_check_in(
            booking=opened,
            staff=_staff(request),
            ip=client_ip(request),
            after_the_day=after_the_day,
        )
    except ReceptionRefused as refusal:
        messages.error(request, refusal.message)
    else:
        if after_the_day:
            messages.success(
                request,
                _(
                    "予約番号 %(number)s を、%(day)sの受付として記録しました。"
                    "続けて接種を記録してください。"
                )
                % {
                    "number": number,
                    "day": date_format(day_of(opened.slot.starts_at), _("n月j日")),
                },
            )
        else:
            messages.success(
                request, _("予約番号 %(number)s を受付しました。") % {"number": number}
            )
    return redirect("console:reception:booking", booking_id=opened.pk)


@require_POST
@staff_required(Admin, Venue_)
def vaccinate(request: HttpRequest, booking_id: int) -> HttpResponse:
    opened = _open(request, booking_id)
    if isinstance(opened, HttpResponse):
        return opened
    form = VaccinationForm(request.POST, slot=opened.slot)
    if not form.is_valid():
        return _card_page(request, opened, vaccination_form=form, status=400)
    try:
        vaccination_record(
            booking=opened,
            staff=_staff(request),
            product=form.cleaned_data["product"],
            lot_number=form.cleaned_data["lot_number"],
            doctor=form.cleaned_data["doctor"],
            product_reason=form.cleaned_data["product_reason"],
            ip=client_ip(request),
        )
    except ReceptionRefused as refusal:
        messages.error(request, refusal.message)
    else:
        request.session[_LAST_DOCTOR] = form.cleaned_data["doctor"]
        messages.success(
            request,
            _("予約番号 %(number)s の接種を記録しました。")
            % {"number": booking_number_display(opened.booking_number)},
        )
        for later in bookings_out_of_step(opened.voucher):
            # The vaccine given (or its day) no longer fits a dose booked after it.
            messages.warning(
                request,
                _(
                    "この方の%(dose)s回目の予約（予約番号 %(number)s）は、いま記録した接種"
                    "（%(product)s）と合いません。コールセンターで予約を変更してください。"
                )
                % {
                    "dose": later.booking.dose,
                    "number": later.number,
                    "product": later.given_product,
                },
            )
    return redirect("console:reception:booking", booking_id=opened.pk)


@require_POST
@staff_required(Admin, Venue_)
def not_given(request: HttpRequest, booking_id: int) -> HttpResponse:
    """A checked-in booking whose dose is not given: checked in by mistake (back to booked),
    or deferred by the doctor (ended: the resident books again later)."""
    opened = _open(request, booking_id)
    if isinstance(opened, HttpResponse):
        return opened
    outcome = request.POST.get("outcome")
    if outcome not in ("undo", "deferred") or not request.POST.get("confirm"):
        messages.error(request, _("内容を選び、確認のチェックを入れてから押してください。"))
        return redirect("console:reception:booking", booking_id=opened.pk)
    number = booking_number_display(opened.booking_number)
    try:
        left = booking_check_in_undo(
            booking=opened,
            staff=_staff(request),
            deferred=outcome == "deferred",
            ip=client_ip(request),
        )
    except ReceptionRefused as refusal:
        opened.refresh_from_db(fields=["status"])
        if refusal.code == "not_checked_in_now" and outcome == _OUTCOME_DONE.get(opened.status):
            # A second press: the first one did it. Said as done, not as an error.
            messages.info(request, _("この操作はすでに記録されています。"))
        else:
            messages.error(request, refusal.message)
    else:
        done = (
            _(
                "予約番号 %(number)s の接種を見合わせ、予約を終了しました。"
                "接種できるようになったら、あらためて予約するようお伝えください。"
            )
            if outcome == "deferred"
            else _(
                "予約番号 %(number)s の受付を取り消しました。予約のない方として受付で作った"
                "予約のため、予約も取り消しました（席は空きに戻りました）。"
            )
            if left.status == Booking.Status.CANCELLED
            else _("予約番号 %(number)s の受付を取り消しました（予約中に戻しました）。")
        )
        messages.success(request, done % {"number": number})
    return redirect("console:reception:booking", booking_id=opened.pk)


@require_POST
@staff_required(Admin, Venue_)
def undo_deferral(request: HttpRequest, booking_id: int) -> HttpResponse:
    """接種見合わせ recorded by mistake, taken back the same day: checked in again."""
    opened = _open(request, booking_id)
    if isinstance(opened, HttpResponse):
        return opened
    if not request.POST.get("confirm"):
        messages.error(request, _("確認のチェックを入れてから押してください。"))
        return redirect("console:reception:booking", booking_id=opened.pk)
    try:
        undone = booking_deferral_undo(booking=opened, staff=_staff(request), ip=client_ip(request))
    except ReceptionRefused as refusal:
        if refusal.code == "deferral_undone_already":
            # A second press: the first one did it. Said as done, not as an error.
            messages.info(request, _("この操作はすでに記録されています。"))
        else:
            messages.error(request, refusal.message)
        return redirect("console:reception:booking", booking_id=opened.pk)
    messages.success(
        request,
        _(
            "予約番号 %(number)s の接種見合わせを取り消し、受付済みに戻しました。"
            "接種のあとは記録してください。"
        )
        % {"number": booking_number_display(opened.booking_number)},
    )
    for each in undone.restored:
        messages.info(
            request,
            _(
                "見合わせと一緒に取り消されていた%(dose)s回目の予約（%(when)s）も、"
                "元に戻しました。ご本人にお知らせを送ります。"
            )
            % {"dose": each.dose, "when": _slot_words(each)},
        )
    for each in undone.lost:
        messages.warning(
            request,
            _(
                "見合わせと一緒に取り消された%(dose)s回目の予約（%(when)s）は、枠が埋まった"
                "などのため戻せませんでした。コールセンターで予約し直すようお伝えください。"
            )
            % {"dose": each.dose, "when": _slot_words(each)},
        )
    return redirect("console:reception:booking", booking_id=opened.pk)


def _slot_words(booking: Booking) -> str:
    """``12月8日（火）10:00 市民総合体育館``: a slot as the desk reads it out."""
    starts = timezone.localtime(booking.slot.starts_at)
    return f"{date_format(starts, _('n月j日（D）H:i'))} {booking.slot.venue.name}"


@require_GET
@staff_required(Admin, Venue_)
def today(request: HttpRequest) -> HttpResponse:
    """Today's doses at the staff member's venues, by vaccine and lot and one by one: what
    the venue reconciles its vials and its paper list with at the end of the day."""
    return render(
        request,
        "booking/console/reception/today.html",
        _context(request, venues=vaccinations_today(_staff(request)), day=today_in_japan()),
    )


@require_GET
@staff_required(Admin, Venue_)
def ahead(request: HttpRequest) -> HttpResponse:
    """The days to come at the staff member's venues, in numbers: what to prepare."""
    return render(
        request,
        "booking/console/reception/ahead.html",
        _context(
            request, venues=bookings_ahead(_staff(request)), days=AHEAD_DAYS, now=timezone.now()
        ),
    )


@require_GET
@staff_required(Admin, Venue_)
def roster(request: HttpRequest) -> HttpResponse:
    """Today's list of a venue, with names, to print: chosen from the staff member's venues
    (``?venue=``); each showing is one read in the trail."""
    staff = _staff(request)
    chosen = request.GET.get("venue", "")
    venue = Venue.objects.filter(pk=int(chosen)).first() if chosen.isdigit() else None
    roster = None
    status = 200
    if chosen:
        try:
            if venue is None:
                raise ReceptionRefused("not_found")
            roster = reception_roster_open(staff=staff, venue=venue, ip=client_ip(request))
        except ReceptionRefused as refusal:
            status = 403 if refusal.code == "other_venue" else 404
    return render(
        request,
        "booking/console/reception/roster.html",
        _context(
            request,
            venues=reception_venues(staff),
            chosen=venue.pk if venue is not None else None,
            roster=roster,
            venue_refused=status != 200,
            day=today_in_japan(),
        ),
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_required(Admin, Venue_)
def walk_in(request: HttpRequest) -> HttpResponse:
    """A resident without a booking, given a free place today at the venue and checked in
    (a dose left over at the end of the day, a booking lost on paper)."""
    free = walk_in_slots(_staff(request))
    choices = [
        (
            each.slot.pk,
            _("%(time)s %(venue)s（%(product)s）残り%(places)s人")
            % {
                "time": f"{timezone.localtime(each.slot.starts_at):%H:%M}",
                "venue": each.slot.venue.name,
                "product": each.slot.product.name,
                "places": each.places,
            },
        )
        for each in free
    ]
    form = WalkInForm(request.POST if request.method == "POST" else None, choices=choices)
    resident = None
    chosen = None
    if request.method == "POST" and form.is_valid():
        staff, ip = _staff(request), client_ip(request)
        number = form.cleaned_data["voucher_number"]
        booking_asked = request.POST.get("step") == "book"
        try:
            # First who the number is, to compare with the resident (a mistyped number
            # would book someone else); then, confirmed, the booking and the check-in.
            if booking_asked and form.cleaned_data["confirm"]:
                booking = reception_walk_in(
                    staff=staff, voucher_number=number, slot_id=form.cleaned_data["slot"], ip=ip
                )
                messages.success(
                    request,
                    _(
                        "予約のない方を、本日の空き枠で予約し受付しました（予約番号 "
                        "%(number)s）。接種のあとは記録してください。"
                    )
                    % {"number": booking_number_display(booking.booking_number)},
                )
                return redirect("console:reception:booking", booking_id=booking.pk)
            if booking_asked:
                form.add_error("confirm", _("確認のチェックを入れてください。"))
            # The holder shown to check, or again after a refusal of the booking.
            resident = reception_walk_in_identify(staff=staff, voucher_number=number, ip=ip)
        except BookingRefused as refused:
            form.add_error(None, _walk_in_refusal(refused, number))
            resident = _walk_in_holder(form, staff=staff, voucher_number=number, ip=ip)
        except ReceptionRefused as refusal:
            _walk_in_refused(form, refusal)
        chosen = next(
            (each for each in free if each.slot.pk == form.cleaned_data.get("slot")), None
        )
    return render(
        request,
        "booking/console/reception/walk_in.html",
        _context(
            request,
            form=form,
            free=free,
            resident=resident,
            era_label=era_label(resident.birth_date) if resident and resident.birth_date else "",
            chosen=chosen,
        ),
        status=400 if request.method == "POST" and form.errors else 200,
    )


def _walk_in_holder(
    form: WalkInForm, *, staff: StaffMember, voucher_number: str, ip: str | None
) -> WalkInResident | None:
    """The voucher's holder shown again with the booking's refusal (None if refused too)."""
    try:
        return reception_walk_in_identify(staff=staff, voucher_number=voucher_number, ip=ip)
    except ReceptionRefused as refusal:
        _walk_in_refused(form, refusal)
        return None


def _walk_in_refused(form: WalkInForm, refusal: ReceptionRefused) -> None:
    """An unknown number said at its box; anything else above the form."""
    form.add_error("voucher_number" if refusal.code == "walk_in_unknown" else None, refusal.message)


def _walk_in_refusal(refused: BookingRefused, voucher_number: str) -> str:
    """The booking service's refusal in the desk's words: the call centre's would send
    venue staff to screens they do not have."""
    if refused.code == "full":
        return _("この枠は、いま空きがなくなりました。ほかの枠を選んでください。")
    if refused.code == "already_booked":
        booked = live_booking_of(voucher_number)
        if booked is not None and day_of(booked.slot.starts_at) == today_in_japan():
            return _(
                "この方には本日の予約（%(time)s %(venue)s、予約番号 %(number)s）があります。"
                "その予約で受付してください。"
            ) % {
                "time": f"{timezone.localtime(booked.slot.starts_at):%H:%M}",
                "venue": booked.slot.venue.name,
                "number": booking_number_display(booked.booking_number),
            }
        if booked is not None:
            return _(
                "この方には、%(when)s %(venue)s の%(dose)s回目の予約（予約番号 %(number)s）が"
                "あります。その予約の日に来ていただくか、本日受け付けるときは、コールセンターに"
                "その予約の取消を頼んでから、もう一度この画面で受付してください。"
            ) % {
                "when": date_format(timezone.localtime(booked.slot.starts_at), _("n月j日（D）H:i")),
                "venue": booked.slot.venue.name,
                "dose": booked.dose,
                "number": booking_number_display(booked.booking_number),
            }
    return refused.staff_message


# The status a booking is left in by each outcome of ``not_given``.
_OUTCOME_DONE: dict[str, str] = {
    Booking.Status.CANCELLED: "deferred",
    Booking.Status.ACTIVE: "undo",
}


def _record_gone(request: HttpRequest, booking: Booking) -> HttpResponse:
    """The correction or void of a record withdrawn meanwhile (by an admin, in another
    tab): said so on the booking's card, where what it holds now is shown."""
    messages.error(
        request,
        _(
            "この予約の接種記録は、ほかの操作で取り消されたため、ありません。"
            "訂正・取消はしていません。予約の状態を確かめてください。"
        ),
    )
    return redirect("console:reception:booking", booking_id=booking.pk)


@require_http_methods(["GET", "POST"])
@staff_required(Admin, Venue_)
def correct_vaccination(request: HttpRequest, booking_id: int) -> HttpResponse:
    """The recorded dose's lot number or doctor corrected, with the reason (a typo noticed
    before the VRS export, or after it: then corrected in the VRS too)."""
    opened = _open(request, booking_id)
    if isinstance(opened, HttpResponse):
        return opened
    recorded = VaccinationRecord.objects.filter(booking_id=opened.pk).first()
    if recorded is None:
        return _record_gone(request, opened)
    form = VaccinationCorrectionForm(
        request.POST if request.method == "POST" else None,
        initial={
            "lot_number": recorded.lot_number,
            "doctor": recorded.doctor,
            "seen_lot_number": recorded.lot_number,
            "seen_doctor": recorded.doctor,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            vaccination_correct(
                vaccination=recorded,
                staff=_staff(request),
                lot_number=form.cleaned_data["lot_number"],
                doctor=form.cleaned_data["doctor"],
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
                seen=form.seen(),
            )
        except ReceptionRefused as refusal:
            form.add_error(None, refusal.message)
        else:
            messages.success(
                request,
                _(
                    "接種記録を訂正しました。VRS用に出力済みの記録なら、管理者の"
                    "「VRS用の接種記録CSV」の画面に、VRSでも訂正する記録として表示されます。"
                ),
            )
            return redirect("console:reception:booking", booking_id=opened.pk)
    return render(
        request,
        "booking/console/reception/correct.html",
        _context(
            request,
            booking=opened,
            number=booking_number_display(opened.booking_number),
            recorded=recorded,
            form=form,
        ),
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
@staff_required(Admin)
def void_vaccination(request: HttpRequest, booking_id: int) -> HttpResponse:
    """A dose recorded by mistake (the wrong vaccine chosen, another resident's booking)
    withdrawn by an admin: the booking is checked in again, to be recorded as given or its
    check-in undone."""
    opened = _open(request, booking_id)
    if isinstance(opened, HttpResponse):
        return opened
    recorded = (
        VaccinationRecord.objects.filter(booking_id=opened.pk).select_related("product").first()
    )
    if recorded is None:
        return _record_gone(request, opened)
    form = VaccinationVoidForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            vaccination_void(
                vaccination=recorded,
                staff=_staff(request),
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except ReceptionRefused as refusal:
            form.add_error(None, refusal.message)
        else:
            messages.success(
                request,
                _(
                    "接種記録を取り消しました。予約は「受付済み」に戻りました。正しい内容で"
                    "記録し直すか、接種しなかった場合は受付を取り消してください。VRSに登録済み"
                    "の場合は、VRSでも取り消してください。"
                ),
            )
            return redirect("console:reception:booking", booking_id=opened.pk)
    return render(
        request,
        "booking/console/reception/void.html",
        _context(
            request,
            booking=opened,
            number=booking_number_display(opened.booking_number),
            recorded=recorded,
            later=[
                (booking_number_display(later.booking_number), later)
                for later in later_doses_booked(recorded)
            ],
            form=form,
        ),
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
@staff_required(Admin, Venue_)
def no_shows(request: HttpRequest) -> HttpResponse:
    staff = _staff(request)
    venues = reception_venues(staff)
    form = NoShowForm(request.POST or request.GET or None, venues=venues)
    if request.method == "POST":
        if form.is_valid():
            venue = form.cleaned_data["venue"]
            try:
                marked = no_shows_mark(
                    venue=venue,
                    booking_ids=form.cleaned_data["booking_ids"],
                    staff=staff,
                    ip=client_ip(request),
                )
            except ReceptionRefused as refusal:
                messages.error(request, refusal.message)
            else:
                if marked:
                    messages.success(
                        request,
                        _("%(venue)s の %(count)d 件を「来場なし」にしました。")
                        % {"venue": venue.name, "count": len(marked)},
                    )
                else:  # a second press, or marked meanwhile from another screen
                    messages.info(
                        request, _("一覧の予約は、すでに「来場なし」か受付済みになっています。")
                    )
            return redirect(f"{request.path}?venue={venue.pk}")
        return render(
            request,
            "booking/console/reception/no_shows.html",
            _context(request, form=form, venues=venues, venue=None, due=[]),
            status=400,
        )
    venue = None
    if form.is_bound and form.is_valid():
        venue = form.cleaned_data["venue"]
    elif not form.is_bound and venues.count() == 1:
        venue = venues.first()
    due = list(no_shows_due(venue=venue)) if venue is not None else []
    stuck = list(checked_in_unrecorded(venue=venue)) if venue is not None else []
    return render(
        request,
        "booking/console/reception/no_shows.html",
        _context(
            request,
            venues=venues,
            venue=venue,
            due=[(item, booking_number_display(item.booking_number)) for item in due],
            stuck=[(item, booking_number_display(item.booking_number)) for item in stuck],
            now=timezone.now(),
            today_iso=today_in_japan().isoformat(),
            # A venue asked for that is not one of this staff member's (an address typed or
            # kept from another account): said, instead of an empty page.
            venue_refused=form.is_bound and venue is None,
        ),
        status=200 if venue is not None or not form.is_bound else 400,
    )


@require_http_methods(["GET", "POST"])
@staff_required(Admin)
def staff_venues(request: HttpRequest) -> HttpResponse:
    # Disabled accounts are left out (their venues stay, for when they are enabled again).
    members = list(
        StaffMember.objects.filter(role=StaffMember.Role.VENUE, user__is_active=True)
        .select_related("user")
        .prefetch_related("venues")
        .order_by("user__email")
    )
    status = 200
    forms = []
    for member in members:
        bound = request.method == "POST" and request.POST.get("member") == str(member.pk)
        form = StaffVenuesForm(request.POST if bound else None, member=member)
        if bound:
            if form.is_valid():
                try:
                    staff_venues_set(
                        staff=member,
                        venues=list(form.cleaned_data["venues"]),
                        by=_staff(request),
                        ip=client_ip(request),
                        seen=form.seen_ids(),
                    )
                except ReceptionRefused as refusal:
                    form.add_error(None, refusal.message)
                else:
                    messages.success(
                        request,
                        _("%(email)s の担当会場を保存しました。") % {"email": member.user.email},
                    )
                    return redirect("console:reception:staff_venues")
            status = 400
        forms.append((member, form))
    if request.method == "POST" and status == 200:
        status = 400  # a member that is not (or no longer) venue staff
        messages.error(request, _("対象の職員が見つかりません。"))
    return render(
        request,
        "booking/console/reception/staff_venues.html",
        _context(request, forms=forms),
        status=status,
    )
