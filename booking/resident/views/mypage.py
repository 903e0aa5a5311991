"""My page (voucher number, bookings, doses) and contact details for reminders."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from audit.chain import Actor
from audit.middleware import client_ip
from booking.models import Booking, BookingPolicy
from booking.models.bookings import booking_number_display
from booking.resident.access import resident_required
from booking.resident.forms import ContactForm, ContactLanguageForm
from booking.resident.selectors import (
    ContactStatus,
    cancelled_by_staff,
    contact_status,
    slot_cancellation_notice,
)
from booking.resident.views.booking import booking_rows, nothing_to_book
from booking.resident.views.common import page
from booking.selectors.residents import (
    bookings_of,
    next_dose,
    vaccinations_of,
)
from booking.services.booking import bookings_out_of_step, next_dose_age_window
from booking.services.notifications import contact_language_update, contact_preferences_update

STAFF_CANCELLATIONS_SHOWN = timedelta(days=30)


@require_http_methods(["GET", "HEAD"])
@resident_required
def mypage(request: HttpRequest) -> HttpResponse:
    voucher = request.voucher  # type: ignore[attr-defined]
    bookings = bookings_of(voucher)
    live = [b for b in bookings if b.status in (Booking.Status.ACTIVE, Booking.Status.CHECKED_IN)]
    # Appointments still ahead that the municipality called off, for a dose not booked again
    # since (a booking made after it, even one cancelled later, means the resident knows):
    # the resident may have missed the message, and would otherwise only see "no booking".
    now = timezone.now()
    called_off = [
        b
        for b in bookings
        if b.called_off
        and b.slot.starts_at > now
        and not any(
            other.dose == b.dose and (other in live or other.created_at > b.created_at)
            for other in bookings
            if other is not b
        )
    ]
    # Cancelled in the last weeks by the call centre (for a caller who may not have been the
    # resident), for an appointment still ahead and a dose not booked again: said, with when.
    recently = now - STAFF_CANCELLATIONS_SHOWN
    by_staff = [
        b
        for b in bookings
        if b.status == Booking.Status.CANCELLED
        and not b.called_off
        and not b.deferred
        and b.cancelled_at is not None
        and b.cancelled_at > recently
        and b.slot.starts_at > now
        and not any(other.dose == b.dose for other in live)
        and cancelled_by_staff(b)
    ]
    records = list(vaccinations_of(voucher))
    nxt = next_dose(voucher)
    policy = BookingPolicy.current()
    can_book = not nothing_to_book(nxt, policy)
    not_yet = ""
    if can_book:
        age = next_dose_age_window(voucher, policy, nxt.earliest_day)
        if age.first_day is None:
            can_book, not_yet = False, age.not_yet_message(policy.call_centre_phone)
    return page(
        request,
        "booking/resident/mypage.html",
        {
            "voucher_number": voucher.voucher_number,
            "bookings": booking_rows(live),
            "called_off": [
                (
                    booking,
                    booking_number_display(booking.booking_number),
                    slot_cancellation_notice(booking),
                )
                for booking in called_off
            ],
            "by_staff": [
                (booking, booking_number_display(booking.booking_number)) for booking in by_staff
            ],
            "next": nxt,
            "can_book": can_book,
            "not_yet": not_yet,
            "vaccinations": records,
            "out_of_step": bookings_out_of_step(voucher, live=live, records=records),
            "contact": contact_status(voucher),
        },
    )


@sensitive_post_parameters("email", "phone")
@require_http_methods(["GET", "POST"])
@resident_required
def contact(request: HttpRequest) -> HttpResponse:
    """Every field entered again; what is registered is shown only as registered or not. The
    language of the messages is a form of its own (``language_only``): changing it does not
    ask for the addresses again."""
    voucher = request.voucher  # type: ignore[attr-defined]
    status = contact_status(voucher)
    form = ContactForm(initial={"channels": status.channels}, line_linked=status.line_linked)
    language_form = ContactLanguageForm(initial={"language": status.language})
    if request.method == "POST" and "language_only" in request.POST:
        language_form = ContactLanguageForm(request.POST)
        if language_form.is_valid():
            contact_language_update(
                voucher=voucher,
                language=language_form.cleaned_data["language"],
                actor=Actor.resident(voucher.pk),
                ip=client_ip(request),
            )
            messages.success(request, _("お知らせの言語を保存しました。"))
            return redirect("resident:mypage")
    elif request.method == "POST":
        form = ContactForm(request.POST, line_linked=status.line_linked)
        if form.is_valid():
            data = form.cleaned_data
            try:
                contact_preferences_update(
                    voucher=voucher,
                    email=data["email"] or None,
                    phone=data["phone"] or None,
                    channels=data["channels"],
                    language=status.language,
                    actor=Actor.resident(voucher.pk),
                    ip=client_ip(request),
                )
            except ValidationError as invalid:
                for field, errors in invalid.error_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                messages.success(request, _saved_saying(status, contact_status(voucher)))
                return redirect("resident:mypage")
    return page(
        request,
        "booking/resident/contact.html",
        {"form": form, "language_form": language_form, "contact": status},
        status=400 if request.method == "POST" else 200,
    )


def _saved_saying(before: ContactStatus, after: ContactStatus) -> str:
    """What is registered now, and what the form removed: every field is entered again, so
    an address left empty is an address deleted (it would otherwise go unnoticed)."""
    registered = pgettext("contact details", "登録あり")
    not_registered = pgettext("contact details", "登録なし")
    said = [
        _("お知らせの受け取り方を保存しました。"),
        _("メールアドレス：%(email)s／携帯電話番号：%(phone)s")
        % {
            "email": registered if after.email_registered else not_registered,
            "phone": registered if after.phone_registered else not_registered,
        },
    ]
    removed = []
    if before.email_registered and not after.email_registered:
        removed.append(pgettext("an item removed", "メールアドレス"))
    if before.phone_registered and not after.phone_registered:
        removed.append(pgettext("an item removed", "携帯電話番号"))
    if removed:
        said.append(
            _("（空欄にした%(items)sは削除しました）")
            % {"items": pgettext("joining items", "・").join(map(str, removed))}
        )
    return " ".join(map(str, said))
