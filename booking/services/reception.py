"""Reception at a venue (UX.md "The venue's path"): find the booking from its 予約番号 or the
QR code on the confirmation, show who the resident is, check them in, record the dose after
the shot, and mark the day's no-shows.

Who may act: admins at every venue, venue staff only at the venues they work at
(``StaffMember.venues``). Every refusal is audited (``reception.refused``), and so is every
read of a resident's name and birth date (``reception.viewed``): a leak report can say whose
data was seen, by whom, when. Audit details carry ids and codes, never personal values.

Lock order, the same as the booking service's so the two cannot deadlock: the voucher row,
then the booking row (then the audit chain's advisory lock, held until commit).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit import record
from audit.chain import Actor
from booking.models import (
    BookedThrough,
    Booking,
    Channel,
    NotificationKind,
    Slot,
    StaffMember,
    VaccinationRecord,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.models.bookings import (
    booking_number_display,
    booking_number_is_well_formed,
    booking_number_normalize,
    made_in_current_schema,
)
from booking.selectors.residents import next_dose
from booking.spreadsheet import starts_as_formula
from sesshu.outages import CACHE_DOWN, cache_down
from tenants.crypto import cipher_for
from tenants.db import current_municipality

JAPAN = ZoneInfo("Asia/Tokyo")
VOUCHER_TABLE = "booking_voucher"
RECORD_CONSTRAINT = "one_record_per_voucher_and_dose"


class ProductChangeReason:
    """Why the vaccine given differs from the slot's (chosen from a list: a free-text reason
    could carry health information, and the audit trail keeps only codes)."""

    STOCK = "stock"
    MEDICAL = "medical"
    RESIDENT = "resident"
    OTHER = "other"

    choices = [
        (STOCK, gettext_lazy("在庫・供給の都合")),
        (MEDICAL, gettext_lazy("医師の判断（医学的な理由）")),
        (RESIDENT, gettext_lazy("本人の希望（医師が了承）")),
        (OTHER, gettext_lazy("その他（医師の判断）")),
    ]
    values = frozenset(code for code, _label in choices)


# --- Refusals ---------------------------------------------------------------------------------

_REFUSAL_MESSAGES: dict[str, Any] = {
    "not_found": gettext_lazy(
        "この予約番号・接種券番号の予約は見つかりません。番号をもう一度確かめてください"
        "（予約番号は英数字10文字、接種券番号は数字10桁です。接種券のバーコードではなく、"
        "予約確認のQRコードを読み取ってください）。"
    ),
    "not_a_number": gettext_lazy(
        "受付では、予約番号（英数字10文字）か接種券番号（数字10桁）で探します。氏名では探せません。"
        "どちらもお持ちでない方は、コールセンターで予約を確かめてください。"
    ),
    "other_venue": gettext_lazy(
        "この予約は、あなたの担当会場の予約ではありません。予約した会場をご案内ください。"
    ),
    "no_venue": gettext_lazy("担当会場が設定されていません。管理者に連絡してください。"),
    "not_today": gettext_lazy("この予約は本日の予約ではないため、受付できません。"),
    "no_booking_today": gettext_lazy(
        "この接種券番号の方の本日の予約はありません。予約の日時は、ご本人の予約確認か"
        "コールセンターでお確かめください。"
    ),
    "too_many_lookups": gettext_lazy(
        "接種券番号での検索が短い間に多すぎるため、しばらく（10分ほど）止めています。"
        "予約確認のQRコードか予約番号で受付してください。"
    ),
    "already_checked_in": gettext_lazy("この予約は既に受付済みです。"),
    "booked_again": gettext_lazy(
        "この方は、来場なしのあとで同じ回を予約し直しています。新しい予約の予約番号か"
        "接種券番号で受付してください。"
    ),
    "not_active": gettext_lazy("この予約は受付できる状態ではありません（取消・来場なし等）。"),
    "voucher_withdrawn": gettext_lazy(
        "この接種券は対象外（転出・死亡等）になっています。受付せず、管理者に確認してください。"
    ),
    "not_checked_in": gettext_lazy("受付が済んでいないため、接種を記録できません。"),
    "not_checked_in_now": gettext_lazy("この予約は受付済みの状態ではありません。"),
    "already_recorded": gettext_lazy(
        "この方のこの回の接種は既に記録されています。二重に記録することはできません。"
    ),
    "future": gettext_lazy("これから始まる予約枠の接種は記録できません。"),
    "product_reason_required": gettext_lazy(
        "予約枠と異なるワクチンを記録するには、医師が理由を選んでください。"
    ),
    "lot_number_required": gettext_lazy("ロット番号を入力してください。"),
    "lot_number_invalid": gettext_lazy(
        "ロット番号は、バイアルの表示どおり英数字（とハイフン）で入力してください"
        "（日本語入力がオンになっていないか確かめてください）。"
    ),
    "doctor_invalid": gettext_lazy(
        "医師の氏名は、「=」「+」「-」「@」で始めずに入力してください。"
    ),
    "changed_meanwhile": gettext_lazy(
        "この画面を開いた後に、この接種記録が変更されました（ほかの職員の訂正・取消など）。"
        "訂正していません。記録をもう一度開いて、いまの内容を確かめてください。"
    ),
    "correction_reason_required": gettext_lazy("訂正の理由を入力してください。"),
    "nothing_to_correct": gettext_lazy("記録と同じ内容です。訂正する箇所を入力してください。"),
    "role": gettext_lazy("この操作を行う権限がありません。"),
    "void_reason_required": gettext_lazy("取り消す理由を入力してください。"),
    "deferral_undone_already": gettext_lazy(
        "この予約の接種見合わせは、すでに取り消されています（受付済みです）。"
    ),
    "not_deferred": gettext_lazy("この予約は、接種見合わせで終了した予約ではありません。"),
    "deferral_not_today": gettext_lazy(
        "接種見合わせを取り消せるのは、予約の当日だけです。あらためて予約していただいてください。"
    ),
    "booked_again_after_deferral": gettext_lazy(
        "この方は、接種見合わせのあとで同じ回を予約し直しています。新しい予約の予約番号か"
        "接種券番号で受付してください。"
    ),
    "slot_full_now": gettext_lazy(
        "この予約の枠は、接種見合わせで空いた席がほかの方の予約で埋まったため、元に戻せません。"
        "同じ日の別の枠の予約を、コールセンターの画面で取ってください。"
    ),
    "walk_in_unknown": gettext_lazy(
        "この接種券番号は、この市区町村の接種券にありません。接種券に印字された番号を"
        "もう一度確かめてください（転入されたばかりの方などは、市区町村の窓口にご案内ください）。"
    ),
    "staff_venues_changed": gettext_lazy(
        "この画面を開いた後に、ほかの職員がこの方の担当会場を変更しました。保存していません。"
        "いまの担当会場を確かめてから、もう一度選んでください。"
    ),
    "later_dose_recorded": gettext_lazy(
        "この方の次の回の接種が既に記録されています。先にその記録を取り消してください。"
    ),
}


class ReceptionRefused(Exception):
    """An action reception may not take, with a message for the staff member (Japanese).
    ``code`` is what the audit trail records; ``booking``, for ``other_venue``, the booking
    found at another venue (where and when to send the resident, or that it is no longer
    booked at all); for ``no_booking_today``, the voucher's next booking, if any."""

    def __init__(self, code: str, *, booking: Booking | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.booking = booking

    @property
    def message(self) -> str:
        if self.code == "other_venue" and self.booking is not None:
            return _other_venue_message(self.booking)
        if self.code == "no_booking_today" and self.booking is not None:
            slot = self.booking.slot
            return _(
                "この接種券番号の方の本日の予約はありません。次の予約は「%(venue)s」%(when)sです。"
                "予約の日時と会場をお伝えください。"
            ) % {
                "venue": slot.venue.name,
                "when": date_format(
                    timezone.localtime(slot.starts_at, JAPAN), _("Y年n月j日（D）H:i")
                ),
            }
        return refusal_message(self.code)


def _other_venue_message(booking: Booking) -> str:
    """What to tell a resident whose booking is at another venue: where and when, unless it
    is not booked any more (then nobody is to be sent anywhere)."""
    slot = booking.slot
    facts = {
        "venue": slot.venue.name,
        "when": date_format(timezone.localtime(slot.starts_at, JAPAN), _("Y年n月j日（D）H:i")),
    }
    if booking.status == Booking.Status.CANCELLED:
        return (
            _(
                "この予約は取り消されています（「%(venue)s」%(when)sの予約でした）。"
                "この予約番号では接種を受けられません。"
            )
            % facts
        )
    if booking.status == Booking.Status.VACCINATED:
        return _("この予約の接種は済んでいます（「%(venue)s」%(when)s）。") % facts
    if booking.status == Booking.Status.NO_SHOW:
        return (
            _("この予約は来場なしで終了しています（「%(venue)s」%(when)sの予約でした）。") % facts
        )
    if day_of(slot.starts_at) != today_in_japan():
        return (
            _(
                "この予約は「%(venue)s」%(when)sの予約です（あなたの担当会場ではなく、本日の予約でも"
                "ありません）。予約の日時と会場をお伝えください。"
            )
            % facts
        )
    starts = timezone.localtime(slot.starts_at, JAPAN).strftime("%H:%M")
    return _(
        "この予約は本日%(time)sからの「%(venue)s」の予約です（あなたの担当会場ではありません）。"
        "「%(venue)s」をご案内ください。"
    ) % {**facts, "time": starts}


def _refused(
    *,
    code: str,
    operation: str,
    staff: StaffMember,
    booking: Booking | None = None,
    venue: Venue | None = None,
    ip: str | None,
) -> ReceptionRefused:
    """Audit a refusal (outside any transaction that rolls back) and return it to raise."""
    details: dict[str, Any] = {"operation": operation, "reason": code}
    if venue is not None:
        details["venue"] = venue.pk
    record(
        action="reception.refused",
        actor=staff_actor(staff),
        target=booking,
        ip=ip,
        details=details,
    )
    if code == "other_venue" and booking is not None:
        return ReceptionRefused(code, booking=booking)
    return ReceptionRefused(code)


def staff_actor(staff: StaffMember) -> Actor:
    return Actor.staff(staff.user)


# --- Where a staff member works ---------------------------------------------------------------


def staff_venue_ids(staff: StaffMember) -> set[int] | None:
    """The venues ``staff`` may receive residents at; None for every venue (an admin)."""
    if staff.role == StaffMember.Role.ADMIN:
        return None
    if staff.role != StaffMember.Role.VENUE:
        return set()
    return set(staff.venues.values_list("id", flat=True))


def staff_works_at(staff: StaffMember, venue_id: int) -> bool:
    venue_ids = staff_venue_ids(staff)
    return venue_ids is None or venue_id in venue_ids


def reception_venues(staff: StaffMember) -> QuerySet[Venue]:
    venue_ids = staff_venue_ids(staff)
    venues = Venue.objects.all()
    if venue_ids is not None:
        venues = venues.filter(pk__in=venue_ids)
    return venues.order_by("area", "name")


def staff_venues_set(
    *,
    staff: StaffMember,
    venues: Collection[Venue],
    by: StaffMember,
    ip: str | None = None,
    seen: Collection[int] | None = None,
) -> StaffMember:
    """An admin sets the venues a venue staff member works at. ``seen``: the venues' ids as
    the form showed them; another admin's change in between is refused (``changed_meanwhile``),
    never written back over (a nurse would arrive on the day unable to check anyone in)."""
    if by.role != StaffMember.Role.ADMIN:
        raise _refused(code="role", operation="staff_venues", staff=by, ip=ip)
    for venue in venues:
        if venue.pk is None:
            raise ValueError("unsaved venue")
    with transaction.atomic():
        locked = StaffMember.objects.select_for_update().get(pk=staff.pk)
        before = set(locked.venues.values_list("id", flat=True))
        if seen is not None and set(seen) != before:
            raise ReceptionRefused("staff_venues_changed")
        after = {venue.pk for venue in venues}
        locked.venues.set(list(venues))
        record(
            action="staff.venues_set",
            actor=staff_actor(by),
            target=("auth.user", str(locked.user_id)),
            ip=ip,
            details={"added": sorted(after - before), "removed": sorted(before - after)},
        )
    return locked


# --- Days -------------------------------------------------------------------------------------


def today_in_japan() -> date:
    return timezone.localdate(timezone=JAPAN)


def day_of(moment: datetime) -> date:
    return moment.astimezone(JAPAN).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=JAPAN)
    return start, start + timedelta(days=1)


# --- Finding a booking ------------------------------------------------------------------------

_TOKEN = re.compile(r"[0-9A-Z]+(?:-[0-9A-Z]+)*")


def booking_number_from_text(text: str) -> str:
    """The booking number in what was typed or scanned, or "" if there is none.

    Accepts the number as typed (any width, case, hyphens and spaces: ``abcde-fghjk``) and
    whatever a QR scanner or a phone's camera app yields for the confirmation's code: the
    number alone, or inside a URL or a labelled text (the last number-shaped word wins).
    """
    typed = booking_number_normalize(text[:200])
    if booking_number_is_well_formed(typed):
        return typed
    folded = unicodedata.normalize("NFKC", text[:500]).upper()
    found = ""
    for token in _TOKEN.findall(folded):
        candidate = token.replace("-", "")
        if booking_number_is_well_formed(candidate):
            found = candidate
    return found


# Voucher numbers typed at reception, per member of staff: a desk receives a resident every
# half minute or so, most by the confirmation's QR code; more than this walks the registry.
VOUCHER_LOOKUPS_PER_WINDOW = 60
VOUCHER_LOOKUP_WINDOW_SECONDS = 10 * 60


def _voucher_lookup_allowed(staff: StaffMember) -> bool:
    """Count one voucher-number lookup of ``staff``; False past the window's allowance.
    With the counters unreachable, allowed (reception goes on; the trail has each lookup)."""
    window = int(timezone.now().timestamp() // VOUCHER_LOOKUP_WINDOW_SECONDS)
    key = f"reception:voucher-lookups:{current_municipality().schema_name}:{staff.user_id}:{window}"
    try:
        cache.add(key, 0, VOUCHER_LOOKUP_WINDOW_SECONDS + 60)
        return int(cache.incr(key)) <= VOUCHER_LOOKUPS_PER_WINDOW
    except CACHE_DOWN as error:
        cache_down("reception's voucher-number lookup count (allowed uncounted)", error)
        return True


def _booking_today_of_voucher(staff: StaffMember, voucher_number: str, ip: str | None) -> Booking:
    """The voucher's booking today, one at a venue ``staff`` works at first; refused
    ``no_booking_today`` when there is none (audited, with the voucher as the target: who
    was looked for), naming the next booking only where it is at a venue of ``staff``'s:
    nobody learns from this box where and when residents elsewhere will be. Refused
    ``too_many_lookups`` past ``VOUCHER_LOOKUPS_PER_WINDOW`` in the window."""
    if not _voucher_lookup_allowed(staff):
        raise _refused(code="too_many_lookups", operation="lookup", staff=staff, ip=ip)
    voucher = Voucher.objects.filter(voucher_number=voucher_number).first()
    if voucher is None:
        raise _refused(code="not_found", operation="lookup", staff=staff, ip=ip)
    start, end = day_bounds(today_in_japan())
    # Every booking of the day, a deferral or a cancellation too (the card says which).
    today = list(
        _booking_query().filter(
            voucher=voucher, slot__starts_at__gte=start, slot__starts_at__lt=end
        )
    )
    if not today:
        record(
            action="reception.refused",
            actor=staff_actor(staff),
            target=voucher,
            ip=ip,
            details={"operation": "lookup", "reason": "no_booking_today"},
        )
        later = _next_live_booking(voucher)
        here = later is not None and staff_works_at(staff, later.slot.venue_id)
        raise ReceptionRefused("no_booking_today", booking=later if here else None)
    venue_ids = staff_venue_ids(staff)  # read once, not once per booking ranked
    return min(today, key=lambda booking: _lookup_rank(venue_ids, booking))


def _lookup_rank(venue_ids: set[int] | None, booking: Booking) -> tuple[int, int, float]:
    """Which of a voucher's bookings today a voucher lookup opens: a live one first, even at
    another venue (a resident whose booking here ended, or who moved it, is sent where it
    is now), the earliest of them; then one vaccinated; then the latest of those that ended
    otherwise (a deferral just recorded before an earlier no-show). At each step, one at a
    venue the staff member works at (``venue_ids``, as ``staff_venue_ids`` gives) first."""
    moment = booking.slot.starts_at.timestamp()
    if booking.status in Booking.LIVE_STATUSES:
        status, when = 0, moment
    elif booking.status == Booking.Status.VACCINATED:
        status, when = 1, moment
    else:
        status, when = 2, -moment
    mine = venue_ids is None or booking.slot.venue_id in venue_ids
    return status, 0 if mine else 1, when


def _next_live_booking(voucher: Voucher, *, since: datetime | None = None) -> Booking | None:
    """The voucher's first live booking starting from ``since`` (now): where and when to send
    them."""
    return (
        _booking_query()
        .filter(
            voucher=voucher,
            status__in=Booking.LIVE_STATUSES,
            slot__starts_at__gte=since or timezone.now(),
        )
        .order_by("slot__starts_at")
        .first()
    )


def _booking_query() -> QuerySet[Booking]:
    return Booking.objects.select_related("slot__venue", "slot__product", "voucher")


_VOUCHER_NUMBER = re.compile(r"[0-9]{10}")


def reception_lookup(*, staff: StaffMember, text: str, ip: str | None = None) -> Booking:
    """The booking whose number was typed or scanned, at a venue ``staff`` works at; or, for
    a voucher number typed from the 接種券 a resident brought without the confirmation,
    that voucher's booking today.

    Raises ReceptionRefused ``not_found`` (``not_a_number`` for a name typed),
    ``no_booking_today`` or ``other_venue`` (audited). Another municipality's bookings are not
    in this schema: ``not_found``.
    """
    number = booking_number_from_text(text)
    booking = _booking_query().filter(booking_number=number).first() if number else None
    folded = unicodedata.normalize("NFKC", text[:100])
    if booking is None:
        typed = "".join(folded.split()).replace("-", "")
        if _VOUCHER_NUMBER.fullmatch(typed):
            booking = _booking_today_of_voucher(staff, typed, ip)
    if booking is None:
        # A name typed (in kana or kanji): this box finds numbers only; say so.
        code = "not_found" if folded.isascii() else "not_a_number"
        raise _refused(code=code, operation="lookup", staff=staff, ip=ip)
    if not staff_works_at(staff, booking.slot.venue_id):
        raise _refused(code="other_venue", operation="lookup", staff=staff, booking=booking, ip=ip)
    return booking


def reception_booking_get(*, staff: StaffMember, booking_id: int, ip: str | None = None) -> Booking:
    """A booking by id for a reception page; ``not_found`` and ``other_venue`` as above,
    except that another venue's booking opened by its id (an address typed or walked, not a
    number the resident holds) is refused without saying where, when or what became of it."""
    booking = _booking_query().filter(pk=booking_id).first()
    if booking is None:
        raise _refused(code="not_found", operation="open", staff=staff, ip=ip)
    if not staff_works_at(staff, booking.slot.venue_id):
        _refused(code="other_venue", operation="open", staff=staff, booking=booking, ip=ip)
        raise ReceptionRefused("other_venue")
    return booking


# --- The resident's identity, for the check against the 接種券 and an ID ---------------------


@dataclass(frozen=True)
class ReceptionCard:
    """What reception sees: the booking, and the resident's name and birth date only."""

    booking: Booking
    voucher_number: str
    voucher_withdrawn: bool
    name: str
    name_kana: str
    birth_date: date | None
    age: int | None
    is_today: bool
    # The slot's day is over: what happened that day can only be recorded after the fact.
    is_past: bool
    record: VaccinationRecord | None
    # Ended at the venue after the pre-vaccination check (接種見合わせ): when; None otherwise.
    deferred_at: datetime | None = None
    # A cancelled booking: the resident's booking that stands instead (changed to another
    # day, booked again), where and when to send them; None otherwise. Named only when it
    # is today or at a venue of the staff member's (as a voucher lookup names it); another
    # day elsewhere is only said to exist (``instead_elsewhere``).
    instead: Booking | None = None
    instead_elsewhere: bool = False

    @property
    def is_ahead(self) -> bool:
        """A booking of a day to come: its resident's name and birth date are not shown."""
        return not self.is_today and not self.is_past


@dataclass(frozen=True)
class _Identity:
    """What reception compares with the 接種券 and an ID: name, kana, birth date."""

    name: str = ""
    name_kana: str = ""
    birth_date: date | None = None


def _identity(voucher: Voucher) -> _Identity:
    """The voucher's name, kana and birth date, decrypted (the caller audits the read)."""
    personal = cipher_for(current_municipality()).open_record(
        bytes(voucher.personal), table=VOUCHER_TABLE, row_id=voucher.voucher_number
    )
    birth_text = personal.get("birth_date")
    return _Identity(
        name=personal.get("name") or "",
        name_kana=personal.get("name_kana") or "",
        birth_date=date.fromisoformat(birth_text) if birth_text else None,
    )


def _age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def reception_card_open(
    *, staff: StaffMember, booking: Booking, ip: str | None = None
) -> ReceptionCard:
    """Decrypt the resident's name and birth date for reception, and audit the read
    (``reception.viewed``: whose data — the voucher — was seen, by whom). A booking of a day
    to come shows neither: nobody is received for it before its day (a resident early is
    told the day), and a card opened by its address alone names nobody ahead of time."""
    if not made_in_current_schema(booking):
        raise ValueError("the booking is not of the current municipality")
    if not staff_works_at(staff, booking.slot.venue_id):
        raise _refused(code="other_venue", operation="view", staff=staff, booking=booking, ip=ip)
    voucher = booking.voucher
    today = today_in_japan()
    ahead = day_of(booking.slot.starts_at) > today
    who = _Identity() if ahead else _identity(voucher)
    birth_date = who.birth_date
    instead = (
        # Today's included: the booking may be later today, at another venue.
        _next_live_booking(voucher, since=datetime.combine(today, time.min, tzinfo=JAPAN))
        if booking.status == Booking.Status.CANCELLED
        else None
    )
    elsewhere = (
        instead is not None
        and day_of(instead.slot.starts_at) != today
        and not staff_works_at(staff, instead.slot.venue_id)
    )
    record(
        action="reception.viewed",
        actor=staff_actor(staff),
        target=booking,
        ip=ip,
        details={
            "voucher": voucher.pk,
            "fields": [] if ahead else ["name", "name_kana", "birth_date"],
        },
    )
    return ReceptionCard(
        booking=booking,
        voucher_number=voucher.voucher_number,
        voucher_withdrawn=voucher.status == Voucher.Status.WITHDRAWN,
        name=who.name,
        name_kana=who.name_kana,
        birth_date=birth_date,
        age=_age_on(birth_date, today) if birth_date else None,
        is_today=day_of(booking.slot.starts_at) == today,
        is_past=day_of(booking.slot.starts_at) < today,
        record=VaccinationRecord.objects.filter(booking=booking).select_related("product").first(),
        deferred_at=_deferred_at(booking),
        instead=None if elsewhere else instead,
        instead_elsewhere=elsewhere,
    )


# --- The day's list, on paper ----------------------------------------------------------------

# The bookings a venue's list names: those that came, or may still come. Not the cancelled
# ones, nor those put off at the venue (接種見合わせ ends the booking).
_ROSTER_STATUSES = (
    Booking.Status.ACTIVE,
    Booking.Status.CHECKED_IN,
    Booking.Status.VACCINATED,
    Booking.Status.NO_SHOW,
)


@dataclass(frozen=True)
class RosterLine:
    booking: Booking
    booking_number: str
    name: str
    name_kana: str
    birth_date: date | None
    age: int | None
    voucher_withdrawn: bool


@dataclass(frozen=True)
class RosterSlot:
    slot: Slot
    lines: list[RosterLine]


@dataclass(frozen=True)
class Roster:
    venue: Venue
    day: date
    slots: list[RosterSlot]
    made_at: datetime
    # The trail's record of this showing, printed on the sheet: a list found where it should
    # not be is traced to who showed it, when.
    trail_seq: int

    @property
    def count(self) -> int:
        return sum(len(each.lines) for each in self.slots)


def reception_roster_open(*, staff: StaffMember, venue: Venue, ip: str | None = None) -> Roster:
    """Today's bookings at one of ``staff``'s venues, slot by slot, each with the resident's
    name, kana and birth date: the list a venue prints in the morning, to tick residents off
    and to go on receiving them should the network fail. Today's only, as the card: nobody
    is named before their day. One read in the trail names every voucher on the list
    (``reception.roster_viewed``)."""
    if not staff_works_at(staff, venue.pk):
        raise _refused(code="other_venue", operation="roster", staff=staff, venue=venue, ip=ip)
    today = today_in_japan()
    start, end = day_bounds(today)
    bookings = (
        Booking.objects.filter(
            slot__venue=venue,
            slot__starts_at__gte=start,
            slot__starts_at__lt=end,
            status__in=_ROSTER_STATUSES,
        )
        .select_related("slot__product", "voucher")
        .order_by("slot__starts_at", "slot_id", "pk")
    )
    by_slot: dict[int, RosterSlot] = {}
    vouchers: set[int] = set()
    for booking in bookings:
        who = _identity(booking.voucher)
        vouchers.add(booking.voucher_id)
        line = RosterLine(
            booking=booking,
            booking_number=booking_number_display(booking.booking_number),
            name=who.name,
            name_kana=who.name_kana,
            birth_date=who.birth_date,
            age=_age_on(who.birth_date, today) if who.birth_date else None,
            voucher_withdrawn=booking.voucher.status == Voucher.Status.WITHDRAWN,
        )
        by_slot.setdefault(booking.slot_id, RosterSlot(booking.slot, [])).lines.append(line)
    slots = list(by_slot.values())
    for each in slots:
        each.lines.sort(key=lambda line: (line.name_kana, line.booking_number))
    event = record(
        action="reception.roster_viewed",
        actor=staff_actor(staff),
        target=venue,
        ip=ip,
        details={
            "day": today.isoformat(),
            "bookings_listed": sum(len(each.lines) for each in slots),
            "vouchers": sorted(vouchers),
            "fields": ["name", "name_kana", "birth_date"],
        },
    )
    return Roster(
        venue=venue,
        day=today,
        slots=slots,
        made_at=event.occurred_at,
        trail_seq=event.seq,
    )


def _deferred_at(booking: Booking) -> datetime | None:
    """When the booking was ended by a deferral at the venue."""
    return booking.cancelled_at if booking.deferred else None


# --- Check-in ---------------------------------------------------------------------------------


def _lock(booking: Booking) -> tuple[Voucher, Booking]:
    voucher = Voucher.objects.select_for_update().only("id", "status").get(pk=booking.voucher_id)
    locked = (
        Booking.objects.select_for_update(of=("self",))
        .select_related("slot__venue", "slot__product")
        .get(pk=booking.pk)
    )
    return voucher, locked


def _lock_at_own_venue(booking: Booking, staff: StaffMember) -> tuple[Voucher, Booking]:
    """``_lock``, refused ``other_venue`` unless ``staff`` works at the booking's venue (as it
    is now, under the lock)."""
    voucher, locked = _lock(booking)
    if not staff_works_at(staff, locked.slot.venue_id):
        raise ReceptionRefused("other_venue")
    return voucher, locked


def _check_own(booking: Booking) -> None:
    if not made_in_current_schema(booking):
        raise ValueError("the booking is not of the current municipality")


def booking_check_in(
    *, booking: Booking, staff: StaffMember, ip: str | None = None, after_the_day: bool = False
) -> Booking:
    """受付: an active booking of today, at a venue ``staff`` works at, becomes checked in.
    So does one of today marked 来場なし when the slot ended: the resident came late (its
    place was never given back), unless they have booked that dose again since.

    ``after_the_day``: a booking of a day gone by, active or marked 来場なし, checked in after
    the fact — the resident came and the venue did not record it (a paper list on a busy
    day, the system unreachable); the dose is then recorded for that day. Refused when the
    resident has booked that dose again, or has it recorded, since.

    Raises ReceptionRefused (audited) for anything else.
    """
    _check_own(booking)
    try:
        with transaction.atomic():
            voucher, locked = _lock_at_own_venue(booking, staff)
            if locked.status == Booking.Status.CHECKED_IN:
                raise ReceptionRefused("already_checked_in")
            if locked.status == Booking.Status.VACCINATED:
                raise ReceptionRefused("already_recorded")
            late = locked.status == Booking.Status.NO_SHOW
            if locked.status != Booking.Status.ACTIVE and not late:
                raise ReceptionRefused("not_active")
            day = day_of(locked.slot.starts_at)
            past = after_the_day and day < today_in_japan()
            if day != today_in_japan() and not past:
                raise ReceptionRefused("not_today")
            if voucher.status == Voucher.Status.WITHDRAWN:
                raise ReceptionRefused("voucher_withdrawn")
            if (
                late
                and voucher.bookings.filter(
                    dose=locked.dose, status__in=Booking.LIVE_STATUSES
                ).exists()
            ):
                raise ReceptionRefused("booked_again")
            if past and voucher.vaccinations.filter(dose=locked.dose).exists():
                raise ReceptionRefused("already_recorded")
            locked.status = Booking.Status.CHECKED_IN
            locked.save(update_fields=["status"])
            details: dict[str, Any] = {"venue": locked.slot.venue_id, "slot": locked.slot_id}
            if late:
                details["after_no_show"] = True
            if past:
                details["after_the_day"] = True
            record(
                action="reception.checked_in",
                actor=staff_actor(staff),
                target=locked,
                ip=ip,
                details=details,
            )
    except ReceptionRefused as refusal:
        raise _refused(
            code=refusal.code, operation="check_in", staff=staff, booking=booking, ip=ip
        ) from None
    return locked


# --- Checked in, and no dose given -----------------------------------------------------------


def booking_check_in_undo(
    *, booking: Booking, staff: StaffMember, deferred: bool, ip: str | None = None
) -> Booking:
    """A checked-in booking whose dose was not given: back to booked when it was checked in
    by mistake (``deferred`` False); or, when the doctor defers the vaccination after the
    pre-vaccination check (接種見合わせ), ended (cancelled, its place given back), so that
    the resident books again when they may. Refused once the dose is recorded."""
    _check_own(booking)
    operation = "defer" if deferred else "undo_check_in"
    try:
        with transaction.atomic():
            _voucher, locked = _lock_at_own_venue(booking, staff)
            if VaccinationRecord.objects.filter(booking_id=locked.pk).exists():
                raise ReceptionRefused("already_recorded")
            if locked.status != Booking.Status.CHECKED_IN:
                raise ReceptionRefused("not_checked_in_now")
            locked.status = Booking.Status.ACTIVE
            locked.save(update_fields=["status"])
            record(
                action="reception.deferred" if deferred else "reception.check_in_undone",
                actor=staff_actor(staff),
                target=locked,
                ip=ip,
                details={"venue": locked.slot.venue_id, "slot": locked.slot_id},
            )
            if not deferred and made_at_the_venue(locked):
                # A walk-in's check-in taken back: the booking existed only for it (made at
                # the desk, perhaps for a number typed wrong), so it goes too, its place back.
                from booking.services.booking import booking_cancel

                locked = booking_cancel(
                    booking=locked,
                    channel=Channel.CALL_CENTRE,
                    actor=staff_actor(staff),
                    ip=ip,
                )
            if deferred:
                # Ended as the booking service cancels (staff, past the cut-off): its place
                # back, a dose booked with it too where the municipality cascades, the
                # resident told.
                from booking.services.booking import booking_cancel

                locked = booking_cancel(
                    booking=locked,
                    channel=Channel.CALL_CENTRE,
                    actor=staff_actor(staff),
                    ip=ip,
                    reason=Booking.CancelReason.DEFERRED,
                )
    except ReceptionRefused as refusal:
        raise _refused(
            code=refusal.code, operation=operation, staff=staff, booking=booking, ip=ip
        ) from None
    return locked


@dataclass(frozen=True)
class DeferralUndone:
    """A deferral taken back: the booking checked in again, and the doses its deferral
    cancelled with it — booked again where their places were still free (``restored``),
    left cancelled where they were not (``lost``), to be booked again by the call centre."""

    booking: Booking
    restored: list[Booking]
    lost: list[Booking]


def booking_deferral_undo(
    *, booking: Booking, staff: StaffMember, ip: str | None = None
) -> DeferralUndone:
    """接種見合わせ recorded by mistake (the wrong radio button, the wrong resident's card),
    taken back the same day at the venue: the booking is checked in again, on its own place
    in its slot, claimed again for the channel it was booked through. The doses the deferral
    cancelled with it (a municipality whose cancellations cascade) are booked again too,
    each where its place is still free, and the resident is told of each one.

    Refused (audited) when it is not the slot's day, when the resident has booked that dose
    again or had it recorded since, when the voucher has been withdrawn, and when the slot
    has no place left for the booking's channel (or is no longer open)."""
    from booking.services.booking import SlotMarks, slot_claim_capacity
    from booking.services.notifications import notification_enqueue

    _check_own(booking)
    try:
        with transaction.atomic():
            voucher, locked = _lock_at_own_venue(booking, staff)
            if locked.status == Booking.Status.CHECKED_IN:
                raise ReceptionRefused("deferral_undone_already")
            if not locked.deferred:
                raise ReceptionRefused("not_deferred")
            if day_of(locked.slot.starts_at) != today_in_japan():
                raise ReceptionRefused("deferral_not_today")
            if voucher.status == Voucher.Status.WITHDRAWN:
                raise ReceptionRefused("voucher_withdrawn")
            if voucher.vaccinations.filter(dose=locked.dose).exists():
                raise ReceptionRefused("already_recorded")
            if voucher.bookings.filter(dose=locked.dose, status__in=Booking.LIVE_STATUSES).exists():
                raise ReceptionRefused("booked_again_after_deferral")
            # The doses cancelled with it: the same voucher, the same moment, no reason of
            # their own (booking_cancel gives the reason to the deferred booking alone).
            cascaded = list(
                Booking.objects.select_for_update(of=("self",))
                .select_related("slot__venue", "slot__product")
                .filter(
                    voucher_id=voucher.pk,
                    status=Booking.Status.CANCELLED,
                    cancelled_at=locked.cancelled_at,
                    cancel_reason="",
                )
                .exclude(pk=locked.pk)
                .order_by("slot_id")
            )
            marks = SlotMarks()
            if not slot_claim_capacity(slot=locked.slot, channel=locked.channel, marks=marks):
                raise ReceptionRefused("slot_full_now")
            locked.status = Booking.Status.CHECKED_IN
            locked.cancelled_at = None
            locked.cancel_reason = ""
            locked.save(update_fields=["status", "cancelled_at", "cancel_reason"])
            restored: list[Booking] = []
            lost: list[Booking] = []
            for each in cascaded:
                free = (
                    not voucher.bookings.filter(
                        dose=each.dose, status__in=Booking.LIVE_STATUSES
                    ).exists()
                    and each.slot.starts_at > timezone.now()
                    and slot_claim_capacity(slot=each.slot, channel=each.channel, marks=marks)
                )
                if not free:
                    lost.append(each)
                    continue
                each.status = Booking.Status.ACTIVE
                each.cancelled_at = None
                each.save(update_fields=["status", "cancelled_at"])
                notification_enqueue(kind=NotificationKind.BOOKING_CREATED, booking=each)
                restored.append(each)
            record(
                action="reception.deferral_undone",
                actor=staff_actor(staff),
                target=locked,
                ip=ip,
                details={
                    "venue": locked.slot.venue_id,
                    "slot": locked.slot_id,
                    "restored": [each.pk for each in restored],
                    "not_restored": [each.pk for each in lost],
                },
            )
            marks.invalidate_on_commit()
    except ReceptionRefused as refusal:
        raise _refused(
            code=refusal.code, operation="undo_deferral", staff=staff, booking=booking, ip=ip
        ) from None
    return DeferralUndone(locked, restored, lost)


# --- A resident without a booking ------------------------------------------------------------


def live_booking_of(voucher_number: str) -> Booking | None:
    """The voucher's earliest live booking (from today on, or before if not yet ended): the
    one a walk-in is refused for, named to the resident at the desk."""
    return (
        _booking_query()
        .filter(voucher__voucher_number=voucher_number, status__in=Booking.LIVE_STATUSES)
        .order_by("slot__starts_at")
        .first()
    )


def made_at_the_venue(booking: Booking) -> bool:
    """Whether the booking was made at the venue's desk for a resident without one (the
    booking says so; earlier ones were marked from their trail by migration 0029)."""
    return booking.booked_through == BookedThrough.AT_THE_VENUE


@dataclass(frozen=True)
class WalkInResident:
    """Who the voucher number typed at the desk is, to compare with the 接種券 and an ID
    before anything is booked."""

    voucher_number: str
    name: str
    name_kana: str
    birth_date: date | None
    age: int | None
    withdrawn: bool
    # The last dose given: (dose, day, vaccine); and, when the next cannot be given today,
    # from which day it can be (the interval after it), or that the series is complete.
    last_given: tuple[int, date, str] | None = None
    next_from: date | None = None
    series_complete: bool = False

    @property
    def dose_due_today(self) -> bool:
        """Whether the doses given leave one to give today (the booking service decides
        again, with every other rule, when the desk books)."""
        return self.next_from is None and not self.series_complete


def reception_walk_in_identify(
    *, staff: StaffMember, voucher_number: str, ip: str | None = None
) -> WalkInResident:
    """The voucher's holder, by name and birth date, for the desk to check against the
    resident in front of it (a mistyped number would book someone else). Counted with
    reception's voucher-number lookups and audited as a read of the record
    (``reception.viewed``, the voucher as its target). Refused ``walk_in_unknown``."""
    if not _voucher_lookup_allowed(staff):
        raise _refused(code="too_many_lookups", operation="walk_in", staff=staff, ip=ip)
    voucher = Voucher.objects.filter(voucher_number=voucher_number).first()
    if voucher is None:
        raise _refused(code="walk_in_unknown", operation="walk_in", staff=staff, ip=ip)
    who = _identity(voucher)
    record(
        action="reception.viewed",
        actor=staff_actor(staff),
        target=voucher,
        ip=ip,
        details={"voucher": voucher.pk, "fields": ["name", "name_kana", "birth_date"]},
    )
    born = who.birth_date
    today = today_in_japan()
    after = next_dose(voucher)
    given = after.previous if after.previous is not None and after.previous.given else None
    return WalkInResident(
        voucher_number=voucher.voucher_number,
        name=who.name,
        name_kana=who.name_kana,
        birth_date=born,
        age=_age_on(born, today) if born else None,
        withdrawn=voucher.status == Voucher.Status.WITHDRAWN,
        last_given=(
            (given.dose, given.day, after.product.name if after.product else "")
            if given is not None
            else None
        ),
        next_from=(
            after.earliest_day
            if given is not None and after.earliest_day and after.earliest_day > today
            else None
        ),
        series_complete=given is not None and after.series_complete,
    )


def reception_walk_in(
    *, staff: StaffMember, voucher_number: str, slot_id: int, ip: str | None = None
) -> Booking:
    """A resident at the desk without a booking (a dose left over at the end of the day, a
    booking lost on paper), given a free place in a slot of today at the venue and checked
    in, in one transaction: through the booking service (``at_the_venue``), so every rule
    of who may have which dose holds. Voucher numbers typed here count with reception's
    lookups (``too_many_lookups``). Raises ReceptionRefused (audited) or BookingRefused
    (the rule that said no; nothing written)."""
    from booking.services.booking import booking_create

    slot = Slot.objects.select_related("venue").filter(pk=slot_id).first()
    if slot is None:
        raise _refused(code="not_found", operation="walk_in", staff=staff, ip=ip)
    if not staff_works_at(staff, slot.venue_id):
        raise _refused(code="other_venue", operation="walk_in", staff=staff, ip=ip)
    if not _voucher_lookup_allowed(staff):
        raise _refused(code="too_many_lookups", operation="walk_in", staff=staff, ip=ip)
    voucher = Voucher.objects.filter(voucher_number=voucher_number).first()
    if voucher is None:
        raise _refused(code="walk_in_unknown", operation="walk_in", staff=staff, ip=ip)
    with transaction.atomic():
        booking = booking_create(
            voucher=voucher,
            slot=slot,
            channel=Channel.CALL_CENTRE,
            actor=staff_actor(staff),
            ip=ip,
            at_the_venue=True,
        )
        return booking_check_in(booking=booking, staff=staff, ip=ip)


# --- The dose given ---------------------------------------------------------------------------


def vaccination_correct(
    *,
    vaccination: VaccinationRecord,
    staff: StaffMember,
    lot_number: str,
    doctor: str,
    reason: str,
    ip: str | None = None,
    seen: tuple[str, str] | None = None,
) -> VaccinationRecord:
    """Correct a mistyped lot number or doctor's name, by the venue's staff or an admin,
    with the reason; the audit trail keeps what it said before. Dose, vaccine and date are
    not changed here (they decide the next dose's rules).

    ``seen``: the (lot number, doctor) the form showed; if the record changed since (another
    correction), refused rather than written back over it."""
    lot = lot_number_normalize(lot_number)
    doctor = " ".join(doctor.split())
    reason = " ".join(reason.split())
    problem = lot_number_problem(lot) or doctor_problem(doctor)
    if problem:
        raise ReceptionRefused(problem)
    if not reason:
        raise ReceptionRefused("correction_reason_required")
    try:
        with transaction.atomic():
            locked = (
                VaccinationRecord.objects.select_for_update(of=("self",))
                .select_related("booking__slot")
                .get(pk=vaccination.pk)
            )
            booking = locked.booking
            if booking is not None and not staff_works_at(staff, booking.slot.venue_id):
                raise ReceptionRefused("other_venue")
            if booking is None and staff.role != StaffMember.Role.ADMIN:
                raise ReceptionRefused("role")
            if seen is not None and seen != (locked.lot_number, locked.doctor):
                raise ReceptionRefused("changed_meanwhile")
            corrected = {"lot_number": lot[:30], "doctor": doctor[:60]}
            # What changes, as the trail keeps it: "before → after".
            changes = {
                field: f"{getattr(locked, field)} → {value}"
                for field, value in corrected.items()
                if getattr(locked, field) != value
            }
            if not changes:
                raise ReceptionRefused("nothing_to_correct")
            for field in changes:
                setattr(locked, field, corrected[field])
            locked.save(update_fields=list(changes))
            record(
                action="reception.vaccination_corrected",
                actor=staff_actor(staff),
                target=locked,
                ip=ip,
                details={**changes, "reason": reason[:200]},
            )
    except ReceptionRefused as refusal:
        raise _refused(
            code=refusal.code,
            operation="correct",
            staff=staff,
            booking=vaccination.booking,
            ip=ip,
        ) from None
    return locked


def vaccination_void(
    *, vaccination: VaccinationRecord, staff: StaffMember, reason: str, ip: str | None = None
) -> Booking | None:
    """Withdraw a dose recorded by mistake (the wrong vaccine chosen, or recorded for another
    resident), by an admin, with the reason. The record stops counting (kept, withdrawn: a
    VRS export may have held it; the trail keeps who and why); its booking goes back to
    checked in, so that the venue records the dose again as given, or undoes the check-in
    of a resident who was not vaccinated. Refused while a later dose is recorded: that
    record was allowed because of this one.

    Returns the booking, checked in again (None for a record without one)."""
    if not made_in_current_schema(vaccination):
        raise ValueError("the vaccination record is not of the current municipality")
    reason = " ".join(reason.split())
    try:
        if staff.role != StaffMember.Role.ADMIN:
            raise ReceptionRefused("role")
        if not reason:
            raise ReceptionRefused("void_reason_required")
        with transaction.atomic():
            booking = vaccination.booking
            locked_booking = _lock(booking)[1] if booking is not None else None
            locked = (
                VaccinationRecord.objects.select_for_update(of=("self",))
                .select_related("product")
                .get(pk=vaccination.pk)
            )
            if VaccinationRecord.objects.filter(
                voucher_id=locked.voucher_id, dose__gt=locked.dose
            ).exists():
                raise ReceptionRefused("later_dose_recorded")
            details = {
                "booking": locked.booking_id,
                "dose": locked.dose,
                "product": locked.product.code,
                "lot_number": locked.lot_number,
                "vaccinated_on": locked.vaccinated_on.isoformat(),
                "venue_name": locked.venue_name,
                "doctor": locked.doctor,
                "recorded_at": locked.recorded_at.isoformat(),
                "reason": reason[:200],
            }
            record(
                action="reception.vaccination_voided",
                actor=staff_actor(staff),
                target=locked,
                ip=ip,
                details=details,
            )
            # Kept, withdrawn (a VRS export may have held it); the booking is free for the
            # dose to be recorded again.
            locked.voided_at = timezone.now()
            locked.booking = None
            locked.save(update_fields=["voided_at", "booking"])
            if locked_booking is not None and locked_booking.status == Booking.Status.VACCINATED:
                locked_booking.status = Booking.Status.CHECKED_IN
                locked_booking.save(update_fields=["status"])
    except ReceptionRefused as refusal:
        raise _refused(
            code=refusal.code, operation="void", staff=staff, booking=vaccination.booking, ip=ip
        ) from None
    return locked_booking


def later_doses_booked(vaccination: VaccinationRecord) -> list[Booking]:
    """The resident's live bookings of later doses: booked while this dose stood recorded."""
    return list(
        Booking.objects.filter(
            voucher_id=vaccination.voucher_id,
            dose__gt=vaccination.dose,
            status__in=Booking.LIVE_STATUSES,
        )
        .select_related("slot__venue")
        .order_by("dose")
    )


def lot_number_normalize(text: str) -> str:
    """As printed on the vial, for the VRS: NFKC, upper case, no spaces (a lot number has
    none; "fa 1234" typed at reception is FA1234)."""
    return "".join(unicodedata.normalize("NFKC", text or "").upper().split())


# A lot number as vials print it: letters and digits, maybe a hyphen. Kana typed with the
# Japanese input still on (「ふぁ1234」) would reach the VRS as it is.
_LOT_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9-]*")


def lot_number_problem(lot: str) -> str | None:
    """The refusal's code for a normalised lot number, or None when it reads as one."""
    if not lot:
        return "lot_number_required"
    return None if _LOT_NUMBER.fullmatch(lot) else "lot_number_invalid"


def doctor_problem(doctor: str) -> str | None:
    """The refusal's code for a doctor's name, or None."""
    # What a spreadsheet runs as a formula (the VRS file is opened in Excel too), full
    # width too (「＝」): no name starts so.
    folded = unicodedata.normalize("NFKC", doctor)
    return "doctor_invalid" if starts_as_formula(folded) else None


def vaccination_record(
    *,
    booking: Booking,
    staff: StaffMember,
    product: VaccineProduct,
    lot_number: str,
    doctor: str,
    product_reason: str = "",
    ip: str | None = None,
) -> VaccinationRecord:
    """Record the dose given for a checked-in booking, and mark the booking vaccinated.

    The record (dose, vaccine, date) is what the booking service reads for the next dose's
    interval and vaccine. The vaccine must be the slot's, unless the doctor gives a reason
    (a ``ProductChangeReason`` code): then the vaccine actually given is recorded. The dose
    is the booking's, the date the slot's day, the venue the slot's venue.
    """
    _check_own(booking)
    lot = lot_number_normalize(lot_number)
    if product_reason and product_reason not in ProductChangeReason.values:
        raise ValueError(f"unknown product change reason {product_reason!r}")
    try:
        with transaction.atomic():
            _voucher, locked = _lock(booking)
            slot = locked.slot
            if not staff_works_at(staff, slot.venue_id):
                raise ReceptionRefused("other_venue")
            if locked.status == Booking.Status.VACCINATED:  # a second tab's stale form
                raise ReceptionRefused("already_recorded")
            if locked.status != Booking.Status.CHECKED_IN:
                raise ReceptionRefused("not_checked_in")
            if day_of(slot.starts_at) > today_in_japan():
                raise ReceptionRefused("future")
            if product.pk != slot.product_id and not product_reason:
                raise ReceptionRefused("product_reason_required")
            problem = lot_number_problem(lot) or doctor_problem(" ".join(doctor.split()))
            if problem:
                raise ReceptionRefused(problem)
            if VaccinationRecord.objects.filter(
                voucher_id=locked.voucher_id, dose=locked.dose
            ).exists():
                raise ReceptionRefused("already_recorded")
            try:
                with transaction.atomic():
                    vaccination = VaccinationRecord.objects.create(
                        voucher_id=locked.voucher_id,
                        booking=locked,
                        dose=locked.dose,
                        product=product,
                        lot_number=lot[:30],
                        vaccinated_on=day_of(slot.starts_at),
                        venue_name=slot.venue.name,
                        doctor=doctor.strip()[:60],
                        actor_kind=Actor.STAFF,
                        actor_id=str(staff.user_id),
                    )
            except IntegrityError as exc:
                if RECORD_CONSTRAINT in str(exc):
                    raise ReceptionRefused("already_recorded") from None
                raise
            locked.status = Booking.Status.VACCINATED
            locked.save(update_fields=["status"])
            record(
                action="reception.vaccination_recorded",
                actor=staff_actor(staff),
                target=vaccination,
                ip=ip,
                details={
                    "booking": locked.pk,
                    "dose": locked.dose,
                    "product": product.code,
                    "slot_product": slot.product.code,
                    "product_reason": product_reason if product.pk != slot.product_id else "",
                },
            )
    except ReceptionRefused as refusal:
        raise _refused(
            code=refusal.code, operation="vaccination", staff=staff, booking=booking, ip=ip
        ) from None
    return vaccination


# --- No-shows ---------------------------------------------------------------------------------


def no_shows_due(*, venue: Venue, now: datetime | None = None) -> QuerySet[Booking]:
    """The bookings at ``venue`` whose slot has ended and that are still active: nobody
    came. Today's, and those of earlier days left unmarked (a venue that forgot one evening):
    until marked they count as booked, and the resident cannot book that dose again. Booking
    numbers and times only reach the page, no names."""
    now = now or timezone.now()
    return (
        Booking.objects.filter(
            slot__venue=venue,
            slot__ends_at__lte=now,
            status=Booking.Status.ACTIVE,
        )
        .select_related("slot__product")
        .order_by("slot__starts_at", "booking_number")
    )


def checked_in_unrecorded(*, venue: Venue, now: datetime | None = None) -> QuerySet[Booking]:
    """Bookings at ``venue`` whose slot has ended (today's at closing, and earlier days')
    that were checked in and never went further: the dose neither recorded nor the check-in
    undone or deferred. Until someone does, they count as booked and the resident cannot
    book that dose again; the reception card of each offers what to do."""
    return (
        Booking.objects.filter(
            slot__venue=venue,
            slot__ends_at__lte=now or timezone.now(),
            status=Booking.Status.CHECKED_IN,
        )
        .select_related("slot__product")
        .order_by("slot__starts_at", "booking_number")
    )


def no_shows_mark(
    *,
    venue: Venue,
    booking_ids: Collection[int],
    staff: StaffMember,
    ip: str | None = None,
) -> list[int]:
    """Mark as no-show the listed bookings that are still due (``no_shows_due``), in one
    action. Only what staff saw listed is marked: a booking that became due after the list
    was shown waits for the next list, and one checked in meanwhile is left alone.

    Returns the ids marked.
    """
    if not staff_works_at(staff, venue.pk):
        raise _refused(code="other_venue", operation="no_shows", staff=staff, venue=venue, ip=ip)
    wanted = {int(booking_id) for booking_id in booking_ids}
    with transaction.atomic():
        marked = list(
            no_shows_due(venue=venue)
            .filter(pk__in=wanted)
            .select_for_update(of=("self",))
            .values_list("id", flat=True)
        )
        if not marked:
            return []  # nothing left to mark (a second press): nothing done, nothing recorded
        Booking.objects.filter(pk__in=marked, status=Booking.Status.ACTIVE).update(
            status=Booking.Status.NO_SHOW
        )
        record(
            action="reception.no_shows_marked",
            actor=staff_actor(staff),
            target=venue,
            ip=ip,
            details={"count": len(marked), "bookings": sorted(marked)},
        )
    return sorted(marked)


def refusal_message(code: str) -> str:
    return str(_REFUSAL_MESSAGES.get(code, _("この操作はできません。")))
