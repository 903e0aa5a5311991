"""Booking, changing and cancelling: date → venues and slots that day → confirm → done; or
venue → its days → its slots that day → confirm → done.

Every booking is found through ``booking_of(voucher, number)`` (404 for anyone else's), and
every write goes through the one booking service with the request's channel: ``line`` in
LINE's browser or after the rich menu's entry, otherwise ``web``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext_lazy, pgettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from audit.middleware import client_ip
from booking.models import Booking, BookingPolicy, Slot, Venue, Voucher
from booking.models.bookings import booking_number_display
from booking.resident.access import resident_required
from booking.resident.forms import AvailabilityFilterForm
from booking.resident.qr import qr_data_uri
from booking.resident.selectors import (
    contact_status,
    slot_cancellation_notice,
    slot_for_booking,
)
from booking.resident.sessions import channel_for
from booking.resident.views.common import page
from booking.selectors.availability import (
    MARK_LABELS,
    Mark,
    SlotAvailability,
    VenueAvailability,
    availability_choices,
    availability_for_day,
    open_days,
    open_venues,
    slots_on,
)
from booking.selectors.residents import (
    NextDose,
    booking_of,
    bookings_linked_to,
    bookings_of,
    cancelled_together,
    live_booking_in_slot,
    next_dose,
)
from booking.services.booking import (
    BookingRefused,
    booking_cancel,
    booking_change,
    booking_closes_at,
    booking_create,
    booking_days,
    next_dose_age_window,
    product_age_refusal,
    resident_actor,
    series_together_for,
    slot_refusal,
)
from tenants.db import current_municipality

# What to bring (UX.md "The resident's path" 4).
TO_BRING = [
    gettext_lazy("接種券（せっしゅけん）"),
    gettext_lazy("予診票（よしんひょう）：記入してお持ちください"),
    gettext_lazy("本人確認書類（マイナンバーカード、運転免許証、資格確認書など）"),
]


@dataclass(frozen=True)
class BookingRow:
    booking: Booking
    number: str
    changeable: bool
    closes_at: datetime | None  # until when it may be changed or cancelled here


def _changeable(booking: Booking, policy: BookingPolicy) -> bool:
    return booking.status == Booking.Status.ACTIVE and timezone.now() < booking_closes_at(
        booking.slot, policy
    )


def booking_rows(bookings: list[Booking]) -> list[BookingRow]:
    policy = BookingPolicy.current()
    rows = []
    for booking in bookings:
        changeable = _changeable(booking, policy)
        closes_at = booking_closes_at(booking.slot, policy) if changeable else None
        rows.append(
            BookingRow(
                booking, booking_number_display(booking.booking_number), changeable, closes_at
            )
        )
    return rows


def map_url(venue: Any) -> str:
    """The venue's own map link, or a map search for its address (a link the resident
    follows, never a request this page makes)."""
    if venue.map_url:
        return str(venue.map_url)
    return "https://www.google.com/maps/search/?" + urlencode({"api": 1, "query": venue.address})


# What a booking number in a path may look like (as stored, or as printed, in any case or
# width); anything else is not found before it reaches the database.
_BOOKING_NUMBER_TYPED = re.compile(r"[0-9A-Za-z０-９Ａ-Ｚａ-ｚ\-ー－‐ ]{1,24}")


def _booking(request: HttpRequest, booking_number: str) -> Booking:
    """The logged-in resident's booking with this number; 404 for anyone else's."""
    if not _BOOKING_NUMBER_TYPED.fullmatch(booking_number):
        raise Http404
    return booking_of(request.voucher, booking_number)  # type: ignore[attr-defined]


def _own_booking(request: HttpRequest, booking_number: str | None) -> Booking | None:
    if booking_number is None:
        return None
    return _booking(request, booking_number)


def _changeable_or_redirect(
    request: HttpRequest, booking: Booking, policy: BookingPolicy | None = None
) -> HttpResponse | None:
    """None when the booking may be changed or cancelled here; otherwise its page, with why
    not: past the cut-off (then the call centre can), or no longer a booking to change
    (cancelled before — the browser's Back after cancelling —, received, or over)."""
    if _changeable(booking, policy if policy is not None else BookingPolicy.current()):
        return None
    if booking.status == Booking.Status.ACTIVE:
        messages.warning(
            request,
            _(
                "この予約は締切を過ぎたため、ここでは変更・取消できません。"
                "コールセンターにお電話ください。"
            ),
        )
    # Otherwise the booking's page itself says what became of it.
    return redirect("resident:booking_detail", booking_number=booking.booking_number)


def _not_active_notice(booking: Booking) -> str:
    """What a booking that is no longer booked means for the resident, and what to do."""
    if booking.called_off:
        told = slot_cancellation_notice(booking)
        return _(
            "%(municipality)sの都合により、この予約の枠は中止となり、予約は取り消されました。"
            "ご迷惑をおかけし、申し訳ございません。%(notice)s"
            "接種を希望される場合は、あらためてご予約ください。"
        ) % {
            "municipality": current_municipality().name,
            "notice": pgettext("before an aside", "（") + told + pgettext("after an aside", "）")
            if told
            else "",
        }
    if booking.deferred:
        return _(
            "会場での予診の結果、この予約の接種は見合わせとなりました。"
            "接種を希望される場合は、医師の指示に従って、あらためてご予約ください。"
        )
    if booking.status == Booking.Status.CANCELLED:
        return _(
            "この予約は取り消されています。この予約番号や確認票では接種を受けられません。"
            "接種を希望される場合は、あらためてご予約ください。"
        )
    if booking.status == Booking.Status.NO_SHOW:
        return _(
            "この予約の日時にご来場の記録がないため、予約は終了しました。"
            "接種を希望される場合は、あらためてご予約ください。"
        )
    if booking.status == Booking.Status.CHECKED_IN:
        return _("この予約は会場で受付済みです。変更・取消はできません。")
    return _("この予約の接種は済んでいます。接種の記録はマイページでご確認いただけます。")


def nothing_to_book(nxt: NextDose, policy: BookingPolicy) -> str:
    if nxt.series_complete:
        return _(
            "この接種券で予約できる回数の接種は、すでに済んでいるか予約済みです。"
            "追加の接種については市区町村のお知らせをご確認ください。"
        )
    if nxt.waits_for_pending(policy):
        return _(
            "すでにご予約があります。次の回は、いまの予約の接種が済んでからご予約ください。"
            "予約の変更はマイページからできます。"
        )
    return ""


@dataclass(frozen=True)
class _Flow:
    """What the venue, date, slot and confirm pages share: new booking or change, filters,
    dose."""

    changing: Booking | None
    channel: str
    filters: AvailabilityFilterForm
    area: str | None
    product: str | None
    venue: int | None
    dose: int
    earliest: date | None
    # Why nothing before ``earliest`` is shown: "interval" (after the previous dose) or "age"
    # (the resident's birthday, from which an age phase covers them).
    earliest_because: str
    # Read once per request: the pages and the series check use this one.
    policy: BookingPolicy
    # Booking the series together: the first dose's slot, chosen; these pages choose the next.
    first_slot: Slot | None = None
    # The vaccine the pages filter by until the resident chooses (the booked one when
    # changing, the next dose's): "" for none.
    preset_product: str = ""

    @property
    def changing_number(self) -> str:
        return booking_number_display(self.changing.booking_number) if self.changing else ""

    @property
    def first_dose(self) -> int:
        return self.dose - 1

    @property
    def query(self) -> str:
        """The filters chosen, for the links onward."""
        return self.query_for(self.venue)

    def query_for(self, venue: int | None) -> str:
        """The filters chosen, with ``venue`` instead of the one chosen (None: every venue)."""
        # "All vaccines" chosen over a preset is said as such (product=): a link without it
        # would bring the preset back.
        product = self.product or ("" if self.preset_product else None)
        chosen = [("area", self.area), ("product", product), ("venue", venue)]
        return urlencode([(key, value) for key, value in chosen if value is not None])

    @property
    def area_filter(self) -> str | None:
        """The area the slots are filtered by: none with a venue chosen, which is in its own
        (a venue of another area and that area together would show nothing). The area chosen
        stays in the links, for the venues list and every venue's days."""
        return None if self.venue is not None else self.area

    @property
    def venue_name(self) -> str:
        return next((name for pk, name, _area in self.filters.venues if pk == self.venue), "")

    def window(self) -> tuple[date, date]:
        """The first and last days that may be booked now in this flow."""
        return booking_days(self.policy, self.earliest)

    def url(self, name: str, **kwargs: Any) -> str:
        if self.first_slot is not None:
            kwargs["first_slot_id"] = self.first_slot.pk
            name = f"book_second_{name}"
        elif self.changing is not None:
            kwargs["booking_number"] = self.changing.booking_number
            name = f"change_{name}"
        else:
            name = f"book_{name}"
        return reverse(f"resident:{name}", kwargs=kwargs)


def _first_slot(request: HttpRequest, first_slot_id: int | None) -> Slot | None:
    if first_slot_id is None:
        return None
    slot = slot_for_booking(first_slot_id, channel=channel_for(request))
    if slot is None:
        raise Http404
    return slot


def _flow(
    request: HttpRequest,
    booking_number: str | None,
    first_slot_id: int | None = None,
    *,
    refused: bool = False,
    chosen: Slot | None = None,
    shown_slot_id: int | None = None,
) -> _Flow | HttpResponse:
    """The flow of the page asked for; or the page saying why there is nothing to book (409
    when it answers a booking the service ``refused``). ``chosen``: the slot a refused
    change was to, whose vaccine the day's other slots are then filtered by (the resident
    was choosing it, whatever the booking being changed has). ``shown_slot_id``: the slot
    of the confirmation asked for (the resident's own booking, back after booking it)."""
    voucher = request.voucher  # type: ignore[attr-defined]
    changing = _own_booking(request, booking_number)
    first_slot = _first_slot(request, first_slot_id)
    policy = BookingPolicy.current()
    choices = availability_choices()
    nxt = next_dose(voucher)
    if changing is not None:
        refusal = _changeable_or_redirect(request, changing, policy)
        if refusal is not None:
            return refusal
        preset = changing.slot.product.code
        dose, earliest, because = changing.dose, None, ""
    else:
        blocker = nothing_to_book(nxt, policy)
        age = next_dose_age_window(voucher, policy, nxt.earliest_day) if not blocker else None
        if age is not None and age.first_day is None:
            blocker = age.not_yet_message(policy.call_centre_phone)
        if blocker:
            # Which bookings are meant (a resident back on a page after booking, say).
            live = bookings_of(voucher, live_only=True)
            # The slot on screen is the resident's own booking (Back after booking it): said
            # so, not as if booking had failed.
            slot_ids = {chosen.pk if chosen is not None else None, shown_slot_id} - {None}
            here = next((b for b in live if b.slot_id in slot_ids), None)
            return page(
                request,
                "booking/resident/nothing_to_book.html",
                {
                    "message": blocker,
                    "live": [(b, booking_number_display(b.booking_number)) for b in live],
                    # Answering 予約する: what was pressed was not booked.
                    "refused": refused and here is None,
                    "booked_here": here,
                    "booked_here_number": booking_number_display(here.booking_number)
                    if here
                    else "",
                },
                status=409 if refused and here is None else 200,
            )
        preset = nxt.product.code if nxt.product is not None else ""
        dose, earliest, because = nxt.dose, nxt.earliest_day, "interval"
        assert age is not None and age.first_day is not None
        if earliest is None or age.first_day > earliest:
            earliest, because = age.first_day, "age"
    data = request.GET.copy()
    if first_slot is not None:
        series = series_together_for(voucher, first_slot, policy=policy)
        if series is None:
            # Nothing to book with it (the policy changed, or a dose was booked meanwhile).
            return redirect("resident:book_confirm", slot_id=first_slot.pk)
        dose, earliest, because = series.second_dose, series.earliest_day, "interval"
        # The series is of one vaccine: the second dose's slots are of the first's only.
        data["product"] = first_slot.product.code
    elif "product" not in data and chosen is not None and changing is not None:
        data["product"] = chosen.product.code
    elif "product" not in data and preset:
        data["product"] = preset  # the next dose is of the same vaccine
    filters = AvailabilityFilterForm(
        data, areas=choices.areas, products=choices.products, venues=choices.venues
    )
    area, product, venue = filters.filters()
    return _Flow(
        changing=changing,
        channel=channel_for(request),
        filters=filters,
        area=area,
        product=product,
        venue=venue,
        dose=dose,
        earliest=earliest,
        earliest_because=because,
        policy=policy,
        first_slot=first_slot,
        preset_product=preset,
    )


def _with_query(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


@require_http_methods(["GET", "HEAD"])
@resident_required
def choose_date(
    request: HttpRequest, booking_number: str | None = None, first_slot_id: int | None = None
) -> HttpResponse:
    flow = _flow(request, booking_number, first_slot_id)
    if isinstance(flow, HttpResponse):
        return flow
    today = timezone.localdate()
    first, last = flow.window()
    days = open_days(
        flow.channel, first, last, area=flow.area_filter, product=flow.product, venue=flow.venue
    )
    # Changing a booking: its day is marked ★ in the list, as its slot is on the day's page.
    changing_day = timezone.localdate(flow.changing.slot.starts_at) if flow.changing else None
    return page(
        request,
        "booking/resident/choose_date.html",
        {
            "flow": flow,
            "days": [
                {
                    "day": item.day,
                    "mark": item.mark.value,
                    "label": MARK_LABELS[item.mark],
                    "bookable": item.mark.bookable,
                    "url": _with_query(flow.url("slots", day=item.day.isoformat()), flow.query),
                    "current": item.day == changing_day,
                }
                for item in days
            ],
            "earliest": flow.earliest if flow.earliest and flow.earliest > today else None,
            "earliest_because": flow.earliest_because,
            # A venue chosen that does not give the vaccine filtered by: that, not "no day".
            "venue_lacks_product": not days
            and flow.venue is not None
            and flow.product is not None
            and not Venue.objects.filter(pk=flow.venue, products__code=flow.product).exists(),
            "filters_html": _filters_html(flow, flow.url("date")),
            "legend": _legend(),
            "venues_url": _with_query(flow.url("venues"), flow.query_for(None)),
            "all_venues_url": _with_query(flow.url("date"), flow.query_for(None)),
        },
    )


@require_http_methods(["GET", "HEAD"])
@resident_required
def choose_venue(
    request: HttpRequest, booking_number: str | None = None, first_slot_id: int | None = None
) -> HttpResponse:
    """Every venue with slots in the booking window, each leading to its own days: for the
    resident who wants the clinic they always go to (UX.md "The resident's path" 3)."""
    flow = _flow(request, booking_number, first_slot_id)
    if isinstance(flow, HttpResponse):
        return flow
    first, last = flow.window()
    venues = open_venues(flow.channel, first, last, area=flow.area, product=flow.product)
    return page(
        request,
        "booking/resident/choose_venue.html",
        {
            "flow": flow,
            "venues": [
                {
                    "venue": venue,
                    "map_url": map_url(venue),
                    "label": MARK_LABELS[venue.mark],
                    "url": _with_query(flow.url("date"), flow.query_for(venue.venue_id)),
                }
                for venue in venues
            ],
            "filters_html": _filters_html(flow, flow.url("venues"), with_venue=False),
            "dates_url": _with_query(flow.url("date"), flow.query_for(None)),
            "legend": _legend(),
        },
    )


def _filters_html(flow: _Flow, action: str, *, with_venue: bool = True) -> str:
    """The area, vaccine and (but on the venues page) venue filters, as HTML; with a venue
    chosen, no area (its own)."""
    filters = flow.filters
    with_area = not with_venue or flow.venue is None
    return _filters_made(
        filters.areas if with_area else None,
        filters.products,
        filters.venues if with_venue else None,
        filters["area"].value(),
        filters["product"].value(),
        filters["venue"].value() if with_venue else None,
        action,
        get_language(),
    )


@lru_cache(maxsize=128)
def _filters_made(
    areas: tuple[str, ...] | None,
    products: tuple[tuple[str, str], ...],
    venues: tuple[tuple[int, str, str], ...] | None,
    area: str | None,
    product: str | None,
    venue: str | None,
    action: str,
    language: str,
) -> str:
    """The filters made once per process for each choice of them: Django renders each
    option of a select through a template, about a millisecond of every date and slot page.
    Made from its arguments alone (the areas, vaccines and venues offered — no area or venue
    filter when None; an area chosen but not asked is kept in the form —, what the resident
    chose, the page, the language)."""
    with translation.override(language):
        filters = AvailabilityFilterForm(
            {"area": area or "", "product": product or "", "venue": venue or ""},
            areas=areas or (),
            products=products,
            venues=venues or (),
        )
        return render_to_string(
            "booking/resident/_filters.html",
            {
                "filters": filters,
                "form_action": action,
                "with_area": areas is not None,
                "area_kept": area if areas is None else None,
                "with_venue": venues is not None,
            },
        )


def _legend() -> list[tuple[str, str]]:
    return [(mark.value, str(MARK_LABELS[mark])) for mark in Mark]


def _parse_day(day: str) -> date:
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise Http404 from None


@require_http_methods(["GET", "HEAD"])
@resident_required
def choose_slot(
    request: HttpRequest,
    day: str,
    booking_number: str | None = None,
    first_slot_id: int | None = None,
) -> HttpResponse:
    flow = _flow(request, booking_number, first_slot_id)
    if isinstance(flow, HttpResponse):
        return flow
    return _slots_page(request, flow, _parse_day(day))


# Refusals that leave the resident to choose another slot: the answer is the day's slots.
_CHOOSE_AGAIN = frozenset({"full", "slot_closed", "below_product_age"})


def _slots_page(
    request: HttpRequest,
    flow: _Flow,
    chosen_day: date,
    *,
    error: str = "",
    refused_slot_id: int | None = None,
    status: int = 200,
) -> HttpResponse:
    """The day's venues and slots; with ``error`` (the booking service's refusal of
    ``refused_slot_id``, which is shown as full whatever the cached marks still say), the
    refusal above them: the resident chooses again on the same page."""
    # A day before the first this dose may be booked on (the interval after the previous
    # dose, or the age): its slots are not offered (they would be refused one by one).
    # A day gone by (a tab left open since, an old link) is said to be one, whatever else.
    passed = chosen_day < timezone.localdate()  # Japan: the site's time zone
    too_early = (
        flow.earliest if flow.earliest and chosen_day < flow.earliest and not passed else None
    )
    # A day whose booking has not opened yet (its address typed or kept): when it opens.
    not_open_yet = chosen_day > flow.policy.last_day_open(timezone.now()) and slots_on(
        flow.channel, chosen_day
    )
    venues = (
        []
        if too_early or passed or not_open_yet
        else availability_for_day(
            channel=flow.channel,
            day=chosen_day,
            area=flow.area_filter,
            product=flow.product,
            venue=flow.venue,
        )
    )
    if refused_slot_id is not None:
        venues = [_shown_full(venue, refused_slot_id) for venue in venues]
    return page(
        request,
        "booking/resident/choose_slot.html",
        {
            "flow": flow,
            "day": chosen_day,
            "error": error,
            "venues_html": _day_venues_html(
                tuple(venues),
                flow.url("confirm", slot_id=0),
                get_language(),
                timezone.get_current_timezone_name(),
                own_slot_id=flow.changing.slot_id if flow.changing is not None else None,
                query=flow.query,
            ),
            "filters_html": _filters_html(flow, flow.url("slots", day=chosen_day.isoformat())),
            "dates_url": _with_query(flow.url("date"), flow.query),
            "legend": _legend(),
            "too_early": too_early,
            "passed": passed,
            "not_open_yet": not_open_yet,
            "day_opens_at": flow.policy.day_opens_at(chosen_day),
            "day_opens_on": flow.policy.day_opens_on(chosen_day),
        },
        status=status,
    )


def _shown_full(venue: VenueAvailability, slot_id: int) -> VenueAvailability:
    if not any(slot.slot_id == slot_id for slot in venue.slots):
        return venue
    slots = tuple(
        replace(slot, mark=Mark.NONE) if slot.slot_id == slot_id else slot for slot in venue.slots
    )
    return replace(venue, slots=slots)


@lru_cache(maxsize=64)
def _day_venues_html(
    venues: tuple[VenueAvailability, ...],
    slot_zero_url: str,
    language: str,
    zone: str,
    *,
    own_slot_id: int | None = None,
    query: str = "",
) -> str:
    """The day's venues with their slots, as HTML: the same for everyone shown the same
    availability in the same flow, language and time zone, so made once per process until
    the availability changes — which in a rush is every few bookings, so making it is cheap
    too (:func:`_slot_items`). Made from its arguments alone: nothing of a request, a resident
    or a municipality that they do not hold.

    ``slot_zero_url`` is the flow's confirmation URL of slot 0; each slot's is made from it.
    ``own_slot_id``, when changing a booking, is its slot: shown as the booking, not as a
    place to choose. ``query``: the filters chosen, carried to each confirmation (its way
    back, and the day's slots after a refusal, show what the resident was choosing from)."""
    if not slot_zero_url.endswith("/0/"):
        raise ValueError(f"a confirmation URL that does not end with the slot: {slot_zero_url}")
    base = slot_zero_url.removesuffix("0/")
    with translation.override(language), timezone.override(zone):
        colon = pgettext("after a label", "：")
        labels = {mark: colon + str(MARK_LABELS[mark]) for mark in Mark}
        own = OwnSlot(own_slot_id, _("いまのご予約")) if own_slot_id is not None else None
        return render_to_string(
            "booking/resident/_day_venues.html",
            {
                "venues": [
                    {
                        "venue": venue,
                        "map_url": map_url(venue),
                        "slots_html": _slot_items(venue.slots, base, labels, own, query),
                    }
                    for venue in venues
                ],
                # Filters chosen (or set for the resident, as a change's vaccine): an empty
                # day says to change them, not only to pick another day.
                "filtered": bool(parse_qsl(query)),  # blank values (every vaccine) are none
            },
        )


_SLOT_BOOKABLE = (
    '<li><a class="slot" href="{}"><span class="mark" aria-hidden="true">{}</span> {}'
    ' <span class="slot-product"{}>{}</span><span class="visually-hidden">{}</span></a></li>'
)
_SLOT_TAKEN = (
    '<li><span class="slot full"><span class="mark" aria-hidden="true">{}</span> {}'
    ' <span class="slot-product"{}>{}</span><span class="visually-hidden">{}</span></span></li>'
)
_SLOT_OWN = (
    '<li><span class="slot own"><span class="mark" aria-hidden="true">★</span> {}'
    ' <span class="slot-product"{}>{}</span> <strong class="own-label">{}</strong></span></li>'
)


class OwnSlot(NamedTuple):
    """The slot of the booking being changed, and the words that say so."""

    slot_id: int
    label: str


def _slot_items(
    slots: tuple[SlotAvailability, ...],
    base: str,
    labels: dict[Mark, str],
    own: OwnSlot | None = None,
    query: str = "",
) -> str:
    """A venue's slots as list items, written here rather than in the template: through the
    template engine a busy day (160 slots) took some 14 ms of CPU, mostly formatting each
    slot's two times: four booking POSTs' worth (scripts/bench/README.md, "Stop 18")."""
    items = []
    dash = pgettext("between two times", "〜")
    # The vaccine's name is the municipality's, in Japanese (municipal_text.ja).
    lang = mark_safe("") if (get_language() or "ja").startswith("ja") else mark_safe(' lang="ja"')
    for slot in slots:
        times = (
            f"{timezone.localtime(slot.starts_at):%H:%M}{dash}"
            f"{timezone.localtime(slot.ends_at):%H:%M}"
        )
        mark = slot.mark
        if own is not None and slot.slot_id == own.slot_id:
            item = format_html(_SLOT_OWN, times, lang, slot.product_name, own.label)
        elif mark.bookable:
            url = f"{base}{slot.slot_id}/" + (f"?{query}" if query else "")
            item = format_html(
                _SLOT_BOOKABLE, url, mark.value, times, lang, slot.product_name, labels[mark]
            )
        else:
            item = format_html(
                _SLOT_TAKEN, mark.value, times, lang, slot.product_name, labels[mark]
            )
        items.append(item)
    # Each item is format_html's, every value in it escaped.
    return mark_safe("\n".join(items))  # noqa: S308


def _confirm_page(
    request: HttpRequest,
    flow: _Flow,
    slot: Slot,
    *,
    error: str = "",
    status: int = 200,
    pressed: bool = True,
    same_slot: bool = False,
    day_closed: bool = False,
) -> HttpResponse:
    """The confirmation; with ``error`` (the booking service's refusal), the refusal and the
    way on instead of the button: the same day's other slots, or another date. Pressing
    "予約する" again on a slot that has just filled up would only be refused again."""
    first = flow.first_slot
    day = timezone.localtime(slot.starts_at).date().isoformat()
    # The change and cancellation deadline, said before the booking is made; "soon" when
    # it falls within the day (a booking made today for tomorrow).
    closes_at = booking_closes_at(first or slot, BookingPolicy.current())
    changing = flow.changing
    return page(
        request,
        "booking/resident/confirm.html",
        {
            "flow": flow,
            "closes_at": closes_at,
            "closes_soon": closes_at - timezone.now() < timedelta(days=1),
            # A change to a slot of another vaccine: said, with what it means for the next dose.
            "product_changes": changing is not None and changing.slot.product_id != slot.product_id,
            "slot": slot,
            "venue": slot.venue,
            "map_url": map_url(slot.venue),
            "first_map_url": map_url(first.venue) if first is not None else "",
            # What to bring to a booking, not to a refusal.
            "to_bring": () if error else TO_BRING,
            "error": error,
            # The refusal of a booking asked for, or of one the page does not offer.
            "pressed": pressed,
            "same_slot": same_slot,
            # Refused for its cut-off: the day's earlier slots are past it too, so the way
            # on is another date, not the same day's list.
            "day_closed": day_closed,
            "slots_url": _with_query(flow.url("slots", day=day), flow.query) if error else "",
            "dates_url": _with_query(flow.url("date"), flow.query),
        },
        status=status,
    )


def _refusal_text(flow: _Flow, refused: BookingRefused) -> str:
    """Booking two doses at once, say which of them was refused."""
    return refused.message if flow.first_slot is None else refused.message_naming_dose


@require_http_methods(["GET", "POST"])
@resident_required(resume_post=True)
def confirm(
    request: HttpRequest,
    slot_id: int,
    booking_number: str | None = None,
    first_slot_id: int | None = None,
) -> HttpResponse:
    if request.method == "POST":
        booked = _book(request, slot_id, booking_number, first_slot_id)
        if booked is not None:
            return booked
    # The page; or a POST that goes no further than the page would (not changeable, the
    # series to choose first, a slot not open to this channel): nothing was booked.
    flow = _flow(request, booking_number, first_slot_id, shown_slot_id=slot_id)
    if isinstance(flow, HttpResponse):
        return flow
    slot = slot_for_booking(slot_id, channel=flow.channel)
    if slot is None:
        # Cancelled, stopped or its places for this channel taken away a moment ago (an old
        # link, a list shown before): said so, with the way back to the dates, not a page
        # not found. A slot that never was is not found.
        gone = Slot.objects.filter(pk=slot_id).values("status", "venue__is_open").first()
        if gone is None:
            raise Http404
        stopped = gone["status"] != Slot.Status.OPEN or not gone["venue__is_open"]
        if flow.changing is not None:
            back = reverse("resident:change_date", args=[flow.changing.booking_number])
        elif flow.first_slot is not None:
            back = reverse("resident:book_second_date", args=[flow.first_slot.pk])
        else:
            back = reverse("resident:book_date")
        return page(
            request,
            "booking/resident/slot_gone.html",
            # Open, with no place for this channel: its places went to the phone, say.
            {"back": back, "channel_closed": not stopped},
            status=410,
        )
    if _series_first(request, flow.changing, flow.first_slot, slot, flow.policy):
        # The municipality books the series together: the next dose's slot is chosen
        # before anything is booked (a POST here books nothing either).
        return redirect("resident:book_second_date", first_slot_id=slot.pk)
    if flow.changing is not None and flow.changing.slot_id == slot.pk:
        # The booking's own slot (or the page again after the change was made): nothing to
        # change, said as it is, not as a refusal.
        return _confirm_page(request, flow, slot, same_slot=True)
    # What the slot itself refuses now (past its cut-off, no place left for this channel:
    # an old tab, a link from yesterday), and a vaccine for older residents than this one:
    # said here, not after 予約する.
    refused = slot_refusal(slot, channel=flow.channel, policy=flow.policy) or product_age_refusal(
        request.voucher,  # type: ignore[attr-defined]
        slot,
    )
    error = "" if refused is None else _refusal_text(flow, refused)
    closed = refused is not None and refused.code == "window_closed"
    return _confirm_page(request, flow, slot, error=error, pressed=False, day_closed=closed)


def _series_first(
    request: HttpRequest,
    changing: Booking | None,
    first_slot: Slot | None,
    slot: Slot,
    policy: BookingPolicy,
) -> bool:
    """A new booking of the first dose, where the municipality books the series together."""
    if changing is not None or first_slot is not None:
        return False
    voucher = request.voucher  # type: ignore[attr-defined]
    return series_together_for(voucher, slot, policy=policy) is not None


def _book(
    request: HttpRequest, slot_id: int, booking_number: str | None, first_slot_id: int | None
) -> HttpResponse | None:
    """The confirmation's POST: book, change or book the series, and send the resident to
    the done page, or back to the confirmation with the service's refusal (409).

    None when the page itself would not offer the booking (the caller then answers as the
    page does). The booking service checks everything again under its locks, so only what
    the page decides before it is checked here: the pages' other questions (the next dose,
    the filters) are asked only when a refusal is shown. On the path of every booking in a
    rush (scripts/bench/README.md, "Stop 13").
    """
    voucher = request.voucher  # type: ignore[attr-defined]
    changing = _own_booking(request, booking_number)
    first_slot = _first_slot(request, first_slot_id)
    policy = BookingPolicy.current()
    channel = channel_for(request)
    if changing is not None and not _changeable(changing, policy):
        return None
    if first_slot is not None and series_together_for(voucher, first_slot, policy=policy) is None:
        return None
    slot = slot_for_booking(slot_id, channel=channel)
    if slot is None or _series_first(request, changing, first_slot, slot, policy):
        return None
    actor, ip = resident_actor(voucher), client_ip(request)
    # A slot already full as read for this request (most presses in a rush) is answered
    # without the booking service's transaction and its locks: the service would read the
    # same and refuse it the same way. Only a booking's own slot, and only "full".
    full = (
        slot_refusal(slot, channel=channel, policy=policy)
        if changing is None and first_slot is None and slot.remaining(channel) <= 0
        else None
    )
    try:
        if full is not None and full.code == "full":
            raise full
        if first_slot is not None:
            booking = booking_create(
                voucher=voucher,
                slot=first_slot,
                second_slot=slot,
                channel=channel,
                actor=actor,
                ip=ip,
            )
        elif changing is not None:
            # The slot the booking had when the confirmation was shown (another tab, or
            # the call centre, may have moved it since).
            shown = request.POST.get("from_slot", "")
            booking = booking_change(
                booking=changing,
                slot=slot,
                channel=channel,
                actor=actor,
                ip=ip,
                expected_slot_id=int(shown) if shown.isdigit() else None,
            )
        else:
            booking = booking_create(
                voucher=voucher, slot=slot, channel=channel, actor=actor, ip=ip
            )
    except BookingRefused as refused:
        sent_before = _booked_before(voucher, slot, refused, changing, first_slot)
        if sent_before is not None:
            return _done(sent_before)
        flow = _flow(request, booking_number, first_slot_id, refused=True, chosen=slot)
        if isinstance(flow, HttpResponse):
            return flow  # e.g. nothing left to book, or not yet: that page says why
        error = _refusal_text(flow, refused)
        if refused.code in _CHOOSE_AGAIN:
            # Taken (or closed) between the look and the press: the day's other slots at
            # once, rather than a page with a button to them. Of a series booked together,
            # those of the dose refused: the first dose's are chosen again from the start.
            refused_slot, choosing = slot, flow
            if first_slot is not None and refused.slot_id == first_slot.pk:
                refused_slot = first_slot
                first_flow = _flow(request, None, chosen=first_slot)
                if isinstance(first_flow, HttpResponse):
                    return first_flow
                choosing = first_flow
            day = timezone.localtime(refused_slot.starts_at).date()
            return _slots_page(
                request, choosing, day, error=error, refused_slot_id=refused_slot.pk, status=409
            )
        closed = refused.code == "window_closed"
        return _confirm_page(request, flow, slot, error=error, status=409, day_closed=closed)
    return _done(booking, changed=changing is not None)


def _booked_before(
    voucher: Voucher,
    slot: Slot,
    refused: BookingRefused,
    changing: Booking | None,
    first_slot: Slot | None,
) -> Booking | None:
    """The booking that the same confirmation sent before made (a double click, the form sent
    again from the browser's history): the resident is shown it, not a refusal that reads as
    if nothing had been booked."""
    if changing is not None or first_slot is not None:
        return None
    # "full": the slot the first press filled, answered as full before the service.
    if refused.code not in ("already_booked", "full"):
        return None
    return live_booking_in_slot(voucher, slot.pk)


def _done(booking: Booking, *, changed: bool = False) -> HttpResponse:
    done = reverse("resident:booking_done", kwargs={"booking_number": booking.booking_number})
    return redirect(done + ("?changed=1" if changed else ""))


@dataclass(frozen=True)
class LinkedRow:
    booking: Booking
    number: str


def _linked_rows(booking: Booking) -> list[LinkedRow]:
    return [
        LinkedRow(each, booking_number_display(each.booking_number))
        for each in bookings_linked_to(booking)
    ]


def _booking_context(booking: Booking) -> dict[str, Any]:
    policy = BookingPolicy.current()
    linked = _linked_rows(booking) if booking.status == Booking.Status.ACTIVE else []
    active = booking.status == Booking.Status.ACTIVE
    changeable = _changeable(booking, policy)
    return {
        "linked": linked,
        # What cancelling this booking cancels too (the policy's cascade).
        "cascade": linked if policy.cancel_cascades else [],
        "booking": booking,
        "number": booking_number_display(booking.booking_number),
        "slot": booking.slot,
        "venue": booking.slot.venue,
        "map_url": map_url(booking.slot.venue),
        # What to bring, and the confirmation sheet, are for a booking still to come.
        "active": active,
        "to_bring": TO_BRING if active else (),
        "not_active": "" if active else _not_active_notice(booking),
        "changeable": changeable,
        "closes_at": booking_closes_at(booking.slot, policy) if changeable else None,
    }


@require_http_methods(["GET", "HEAD"])
@resident_required
def booking_done(request: HttpRequest, booking_number: str) -> HttpResponse:
    booking = _booking(request, booking_number)
    if booking.status != Booking.Status.ACTIVE:  # e.g. the page again after cancelling
        return redirect("resident:booking_detail", booking_number=booking.booking_number)
    context = _booking_context(booking)
    context["changed"] = request.GET.get("changed") == "1"
    context["contact"] = contact_status(request.voucher)  # type: ignore[attr-defined]
    return page(request, "booking/resident/done.html", context)


@require_http_methods(["GET", "HEAD"])
@resident_required
def booking_detail(request: HttpRequest, booking_number: str) -> HttpResponse:
    booking = _booking(request, booking_number)
    return page(request, "booking/resident/booking_detail.html", _booking_context(booking))


@require_http_methods(["GET", "HEAD"])
@resident_required
def booking_print(request: HttpRequest, booking_number: str) -> HttpResponse:
    """The confirmation sheet of a booking still to come; a cancelled or past booking's
    page says what became of it instead (a sheet printed for it would be taken for valid)."""
    booking = _booking(request, booking_number)
    if booking.status != Booking.Status.ACTIVE:
        return redirect("resident:booking_detail", booking_number=booking.booking_number)
    context = _booking_context(booking)
    context["qr"] = qr_data_uri(booking.booking_number)
    context["voucher_number"] = request.voucher.voucher_number  # type: ignore[attr-defined]
    context["sheet"] = True  # its labels in Japanese too, for the venue (sheet_ja)
    return page(request, "booking/resident/print.html", context)


@require_http_methods(["GET", "POST"])
@resident_required
def booking_cancel_view(request: HttpRequest, booking_number: str) -> HttpResponse:
    voucher = request.voucher  # type: ignore[attr-defined]
    booking = _booking(request, booking_number)
    refusal = _changeable_or_redirect(request, booking)
    if refusal is not None:
        return refusal
    if request.method != "POST":
        return page(request, "booking/resident/cancel.html", _booking_context(booking))
    linked = bookings_linked_to(booking)
    shown = request.POST.get("from_slot", "")
    try:
        booking_cancel(
            booking=booking,
            channel=channel_for(request),
            actor=resident_actor(voucher),
            ip=client_ip(request),
            expected_slot_id=int(shown) if shown.isdigit() else None,
        )
    except BookingRefused as refused:
        booking.refresh_from_db()  # the page shows the booking as it is now
        context = _booking_context(booking)
        context["error"] = refused.message
        return page(request, "booking/resident/cancel.html", context, status=409)
    messages.success(request, cancelled_message(booking, linked))
    return redirect("resident:mypage")


def cancelled_message(booking: Booking, linked: list[Booking]) -> str:
    """What was cancelled: the booking, and the doses booked with it that went with it."""
    number = booking_number_display(booking.booking_number)
    with_it = cancelled_together(booking, linked)
    if not with_it:
        return _("予約（予約番号 %(number)s）を取り消しました。") % {"number": number}
    return _(
        "予約（予約番号 %(number)s）と、一緒に予約していた%(doses)s"
        "（予約番号 %(numbers)s）を取り消しました。"
    ) % {
        "number": number,
        "doses": "・".join(_("%(dose)s回目") % {"dose": each.dose} for each in with_it),
        "numbers": "、".join(booking_number_display(each.booking_number) for each in with_it),
    }
