"""The call centre acting for a resident on the phone (UX.md "The call-centre operator's path").

An operator finds the resident with one search box, sees them masked, reveals the full record
only with a stated reason, confirms the resident's identity (name, birth date and address read
back), and only then books, changes or cancels for them — through the one booking service with
the call centre's channel and capacity — resets their password, disables or re-enables their
web login, or lifts a login lock.

Every function here is for staff with the ``call_centre`` or ``admin`` role and checks it
itself, so a future caller cannot skip the check a view makes. Everything is audited, with ids
and codes only:

- ``callcentre.searched``: which key was used and which vouchers were listed (never the typed
  text);
- ``callcentre.resident_viewed``: the masked record was shown;
- ``callcentre.personal_data_revealed``: the full record was shown, with the reason code. The
  operator's free-text note may itself hold personal values ("called about her son ..."), so
  it never enters the trail in clear: it is sealed under the municipality's key
  (``note_sealed``, bound to ``note_id``) and only the trail pages open it again. Decommissioning
  the municipality destroys it with the key.
- ``callcentre.identity_confirmed`` / ``callcentre.identity_failed``: the checklist result,
  with who is on the phone (``asked_by``: the resident, or family or another on their behalf).
  The trail is also where the sensitive actions look the check up (:func:`identity_confirmed`):
  it is append-only and hash-chained, so a check cannot be forged afterwards by editing a row.
  The bookings, changes and cancellations of the call carry its ``asked_by``.
- ``callcentre.refused``: a sensitive action tried without a valid identity check.
"""

from __future__ import annotations

import base64
import secrets
import unicodedata
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit import record
from audit.chain import Actor
from audit.models import Event
from booking.models import Booking, Channel, ResidentCredential, Slot, StaffMember, Voucher
from booking.registry.dates import ERAS, parse_birth_date
from booking.registry.errors import RegistryValueError
from booking.registry.normalize import NormalizeError, normalize_kana, normalize_phone
from booking.registry.pipeline import VOUCHER_TABLE, kana_key
from booking.resident import throttle
from booking.resident.services import (
    CREDENTIAL_TABLE,
    normalize_login_email,
    resident_sessions_end,
    resident_web_login_set,
)
from booking.selectors.residents import booking_cancellation, booking_event, booking_events
from booking.services.booking import booking_cancel, booking_change, booking_create
from booking.services.registry_import import (
    CODE_ALPHABET,
    CODE_LENGTH,
    activation_code_hash,
    format_code,
)
from tenants.crypto import cipher_for
from tenants.db import current_municipality
from tenants.models import Municipality

Role = StaffMember.Role
CALL_CENTRE_ROLES = (Role.ADMIN, Role.CALL_CENTRE)
SEARCH_LIMIT = 20
# How long a confirmed identity opens the sensitive actions: one phone call.
IDENTITY_VALID = timedelta(minutes=15)
NOTE_MAX_LENGTH = 200
NOTE_TABLE = "audit_event"
NOTE_COLUMN = "reveal_note"
MASK = "＊"

SEARCHED = "callcentre.searched"
VIEWED = "callcentre.resident_viewed"
REVEALED = "callcentre.personal_data_revealed"
IDENTITY_CONFIRMED = "callcentre.identity_confirmed"
IDENTITY_FAILED = "callcentre.identity_failed"
REFUSED = "callcentre.refused"


class RevealReason(models.TextChoices):
    IDENTITY_CHECK = "identity_check", gettext_lazy("本人確認のため（読み上げと照合）")
    RESIDENT_INQUIRY = "resident_inquiry", gettext_lazy("ご本人からの登録内容の問い合わせ")
    CALLBACK = "callback", gettext_lazy("折り返しの連絡のため")
    OTHER = "other", gettext_lazy("その他（メモに記入）")


class AskedBy(models.TextChoices):
    """Who is on the phone: asked at the identity check and recorded with it and with each
    booking, change and cancellation made in the call, so a resident who later says they
    never asked can be told it was a family member's call, and when."""

    RESIDENT = "resident", gettext_lazy("ご本人")
    FAMILY = "family", gettext_lazy("ご家族・代理の方")


class CancelGivenReason(models.TextChoices):
    """Why the caller said they cancel, as far as they said (never required of them)."""

    SCHEDULE = "schedule", gettext_lazy("都合がつかなくなった")
    UNWELL = "unwell", gettext_lazy("体調がすぐれない")
    ELSEWHERE = "elsewhere", gettext_lazy("ほかの会場・医療機関で接種した（する）")
    DECLINED = "declined", gettext_lazy("接種を受けないことにした")
    NOT_SAID = "not_said", gettext_lazy("その他・伺っていない")


class IdentityCheckRequired(Exception):
    """A sensitive action without a confirmed identity check in this call. ``expired``: this
    operator did confirm it, longer ago than ``IDENTITY_VALID``."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("identity_required")
        self.expired = expired
        if expired:
            self.message = _(
                "本人確認から%(minutes)s分が過ぎたため、操作はしていません。"
                "もう一度本人確認をしてから、操作し直してください。"
            ) % {"minutes": int(IDENTITY_VALID.total_seconds() // 60)}
        else:
            self.message = _(
                "先に本人確認をしてください（氏名・生年月日などをご本人に読み上げていただき、"
                "照合します）。"
            )


class RevealRequired(Exception):
    """The identity checklist without the record shown first: nothing to compare against."""

    def __init__(self) -> None:
        super().__init__("reveal_required")
        self.message = _(
            "照合する前に、理由を選んで登録内容を表示してください（本人確認を始める）。"
        )


class IdentityIncomplete(Exception):
    """The button "all matched" sent with items left unticked (a stray Enter in the
    checklist), or without saying who is on the phone (``caller_missing``): nothing is
    recorded, neither a confirmation nor a failure; the operator finishes the check."""

    def __init__(self, *, caller_missing: bool = False) -> None:
        super().__init__("identity_incomplete")
        self.message = (
            _(
                "照合結果はまだ記録していません（お電話の方が選ばれていませんでした）。"
                "お電話の方（ご本人か、ご家族・代理の方か）を選んでから"
                "「すべて一致した」を押してください。"
            )
            if caller_missing
            else _(
                "照合結果はまだ記録していません（チェックのない項目がありました）。"
                "一致した項目にすべてチェックを入れてから「すべて一致した」を、"
                "一致しない項目があったときは「一致しない項目があった」を押してください。"
            )
        )


class PasswordResetNotApplicable(Exception):
    """The municipality's login mode has no resident passwords."""


# --- Who ------------------------------------------------------------------------------------


def _operator(staff: StaffMember) -> Actor:
    if staff.role not in CALL_CENTRE_ROLES:
        raise PermissionDenied("the call centre is for call-centre staff and admins")
    return Actor(Actor.STAFF, str(staff.user_id))


# --- Masking ----------------------------------------------------------------------------------


def mask_name(name: str | None) -> str:
    """``小平 花子`` -> ``小＊ ＊＊``: the first character only, the length kept roughly."""
    if not name:
        return ""
    parts = name.split()
    masked = [parts[0][0] + MASK * (len(parts[0]) - 1)]
    masked += [MASK * len(part) for part in parts[1:]]
    return " ".join(masked)


def _birth_year(birth_date: str | None) -> int | None:
    if not birth_date:
        return None
    return int(birth_date[:4])


def era_year(day: date | None) -> str:
    """``昭和31年`` for a day in 1956: many residents give their birth year this way."""
    if day is None:
        return ""
    for era in reversed(ERAS):
        if day >= era.start:
            year = day.year - era.offset
            return f"{era.name}{'元' if year == 1 else year}年"
    return ""


@dataclass(frozen=True)
class ResidentSummary:
    """What the call centre sees before revealing anything."""

    voucher_id: int
    voucher_number: str
    masked_name: str
    birth_year: int | None
    birth_era_year: str  # 昭和31年: the era year of the (unshown) birth date
    withdrawn: bool
    web_login_disabled: bool
    # Why (Voucher.WebLoginStop): "letters" — its letter may be in someone else's hands.
    web_login_stop: str = ""


@dataclass(frozen=True)
class PersonalData:
    """The full record, for the reveal page only."""

    voucher_number: str
    name: str
    name_kana: str
    birth_date: date | None
    birth_era_year: str
    sex: str
    postal_code: str
    address: str
    phone: str
    email: str
    # What the resident reads back for the identity check (see identity_items).
    identity_items: tuple[str, ...] = ()

    @property
    def postal_code_display(self) -> str:
        """〒187-0001 as letters print it (the registry keeps the seven digits)."""
        code = self.postal_code
        return f"{code[:3]}-{code[3:]}" if len(code) == 7 and code.isdigit() else code


# The identity check: the name, the birth date and the address, read back by the caller. A
# registry need not hold the address: then the phone number it holds, and failing both, the
# voucher number printed on the letter the resident holds.
IDENTITY_ITEMS = ("name", "birth_date", "address", "phone", "voucher_number")


def identity_items(personal: Mapping[str, str | None]) -> tuple[str, ...]:
    """The three items this resident's identity check asks for."""
    if personal.get("address"):
        third = "address"
    elif personal.get("phone"):
        third = "phone"
    else:
        third = "voucher_number"
    return ("name", "birth_date", third)


def _open(voucher: Voucher) -> dict[str, str | None]:
    return cipher_for(current_municipality()).open_record(
        bytes(voucher.personal), table=VOUCHER_TABLE, row_id=voucher.voucher_number
    )


def _summary(voucher: Voucher) -> ResidentSummary:
    personal = _open(voucher)
    birth = personal.get("birth_date")
    return ResidentSummary(
        voucher_id=voucher.pk,
        voucher_number=voucher.voucher_number,
        masked_name=mask_name(personal.get("name")),
        birth_year=_birth_year(birth),
        birth_era_year=era_year(date.fromisoformat(birth) if birth else None),
        withdrawn=voucher.status == Voucher.Status.WITHDRAWN,
        web_login_disabled=voucher.web_login_disabled,
        web_login_stop=voucher.web_login_stop,
    )


# --- Search -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchTerms:
    voucher_number: str | None = None
    kana: str | None = None
    phone: str | None = None
    # With the kana name only: a caller without their letter or a phone on the registry
    # often knows their birth date.
    birth_date: date | None = None

    @property
    def kind(self) -> str:
        """For the audit trail: which keys, never their values."""
        if self.kana and self.birth_date:
            return "kana_and_birth_date"
        if self.kana and self.phone:
            return "kana_and_phone"
        if self.kana:
            return "kana"
        if self.voucher_number and self.phone:
            return "voucher_or_phone"
        return "voucher" if self.voucher_number else "phone"


_NUMBER_MARKS = "-‐‑‒–—―−－ー()（）+"


def _is_number_token(token: str) -> bool:
    stripped = "".join(ch for ch in token if ch not in _NUMBER_MARKS)
    return bool(stripped) and stripped.isdigit()


def search_terms_parse(query: str) -> SearchTerms:
    """What the operator typed, as search keys. Raises ValidationError with a message.

    Ten digits are a voucher number — and also a fixed-line phone number if they could be one,
    so both are searched. Eleven digits (or ten with hyphens or brackets) are a phone number.
    Katakana or hiragana is the name in kana (spaces ignored). Kana and a number together
    narrow to both. Kana and a birth date, written as the registry's files write them
    (1950-10-10, 19501010, S25.10.10, 昭和25年10月10日), narrow to that date. Kanji is not
    searchable: the registry holds only kana in a searchable form.
    """
    text = unicodedata.normalize("NFKC", query or "").strip()
    if not text:
        raise ValidationError(_("接種券番号、氏名（カナ）、電話番号のいずれかを入力してください。"))
    tokens, born = _birth_date_taken(text.split())
    if born is not None:
        kana_words = " ".join(tokens)
        if not kana_words or any(_is_number_token(token) for token in tokens):
            raise ValidationError(
                _(
                    "生年月日で検索するときは、氏名（カナ）と生年月日だけを入力してください"
                    "（例：コダイラ ハナコ 1948-04-01）。"
                )
            )
        try:
            name = kana_key(normalize_kana(kana_words))
        except NormalizeError:
            raise ValidationError(
                _("氏名はカタカナかひらがなで入力してください（漢字では検索できません）。")
            ) from None
        return SearchTerms(kana=name, birth_date=born)
    number = "".join(token for token in tokens if _is_number_token(token))
    words = " ".join(token for token in tokens if not _is_number_token(token))
    kana = phone = voucher_number = None
    if words:
        try:
            kana = kana_key(normalize_kana(words))
        except NormalizeError:
            raise ValidationError(
                _(
                    "氏名はカタカナかひらがなで入力してください（漢字では検索できません）。"
                    "電話番号・接種券番号は数字で入力してください。"
                )
            ) from None
    if number:
        digits = "".join(ch for ch in number if ch.isdigit())
        plain = number.isdigit()
        if plain and len(digits) == 10 and not kana:
            voucher_number = digits
        try:
            phone = normalize_phone(number)
        except NormalizeError:
            phone = None
        if voucher_number is None and phone is None and len(digits) == 10 and not kana:
            voucher_number = digits  # written with hyphens, as some letters print it
        if voucher_number is None and phone is None:
            raise ValidationError(_number_refused(digits, plain=plain, with_kana=bool(kana)))
    return SearchTerms(voucher_number=voucher_number, kana=kana, phone=phone)


def _birth_date_taken(tokens: list[str]) -> tuple[list[str], date | None]:
    """The tokens without the one that is a birth date (not a phone number), and the date."""
    for index, token in enumerate(tokens):
        if _is_number_token(token) and len("".join(filter(str.isdigit, token))) != 8:
            continue  # a voucher or phone number, never a date of 8 digits
        try:
            born = parse_birth_date(token)
        except RegistryValueError:
            continue
        return tokens[:index] + tokens[index + 1 :], born
    return tokens, None


def _number_refused(digits: str, *, plain: bool, with_kana: bool) -> str:
    """Why a number typed in the search is neither a voucher number nor a phone number, in
    the words of what it looks like."""
    if len(digits) not in (10, 11):
        return _(
            "接種券番号は10桁、電話番号は市外局番から10桁または11桁で入力してください"
            "（%(count)d桁になっています）。"
        ) % {"count": len(digits)}
    if with_kana and plain and len(digits) == 10 and not digits.startswith("0"):
        return _(
            "氏名と一緒に検索できるのは電話番号です。接種券番号は、氏名を入れずに番号だけで"
            "検索してください。"
        )
    if not digits.startswith("0"):
        return _(
            "%(count)d桁の番号は電話番号として検索しますが、電話番号は0（市外局番）から"
            "始まります。接種券番号は10桁です。数字を確かめてください。"
        ) % {"count": len(digits)}
    return _("電話番号を市外局番から正しく入力してください。")


@dataclass(frozen=True)
class SearchResult:
    terms: SearchTerms
    residents: list[ResidentSummary]
    truncated: bool


# Namesakes of one kana name looked through for a birth date: far more than any name has in
# a municipality (the commonest have a few dozen).
BIRTH_DATE_CANDIDATES = 2000


def callcentre_search(*, staff: StaffMember, query: str, ip: str | None) -> SearchResult:
    """Find residents by voucher number, kana name or phone (exact match; blind indexes for
    the last two). Results are masked. Raises ValidationError for input that is none of them.
    """
    actor = _operator(staff)
    terms = search_terms_parse(query)
    cipher = cipher_for(current_municipality())
    condition = models.Q()
    if terms.kana:
        condition &= models.Q(kana_index=cipher.blind_index(terms.kana, purpose="name_kana"))
    if terms.phone and terms.kana:
        condition &= models.Q(phone_index=cipher.blind_index(terms.phone, purpose="phone"))
    elif terms.phone or terms.voucher_number:
        either = models.Q(pk__in=[])
        if terms.voucher_number:
            either |= models.Q(voucher_number=terms.voucher_number)
        if terms.phone:
            either |= models.Q(phone_index=cipher.blind_index(terms.phone, purpose="phone"))
        condition &= either
    candidates = (
        Voucher.objects.filter(condition)
        .only("id", "voucher_number", "personal", "status", "web_login_disabled", "web_login_stop")
        .order_by("voucher_number")
    )
    if terms.birth_date is not None:
        # The birth date has no blind index: the namesakes' records are opened here, and only
        # those born that day are shown (and recorded as shown).
        born = terms.birth_date.isoformat()
        found = [
            voucher
            for voucher in candidates[:BIRTH_DATE_CANDIDATES]
            if _open(voucher).get("birth_date") == born
        ][: SEARCH_LIMIT + 1]
    else:
        found = list(candidates[: SEARCH_LIMIT + 1])
    truncated = len(found) > SEARCH_LIMIT
    residents = [_summary(voucher) for voucher in found[:SEARCH_LIMIT]]
    record(
        action=SEARCHED,
        actor=actor,
        ip=ip,
        details={
            "by": terms.kind,
            "results": len(residents),
            "truncated": truncated,
            "vouchers": [resident.voucher_id for resident in residents],
        },
    )
    return SearchResult(terms=terms, residents=residents, truncated=truncated)


def callcentre_search_shown_again(
    *, staff: StaffMember, voucher_ids: Sequence[int], truncated: bool
) -> SearchResult:
    """The list of a search this operator made a moment ago (``callcentre_search``'s
    ``vouchers``, in its order), shown again when they come back to it from one of its
    residents: the same masked rows, not audited again (the search was). A voucher removed
    since is left out."""
    _operator(staff)
    found = Voucher.objects.filter(pk__in=voucher_ids).only(
        "id", "voucher_number", "personal", "status", "web_login_disabled", "web_login_stop"
    )
    by_id = {voucher.pk: voucher for voucher in found}
    residents = [_summary(by_id[each]) for each in voucher_ids if each in by_id]
    return SearchResult(terms=SearchTerms(), residents=residents, truncated=truncated)


def callcentre_resident_view(
    *, staff: StaffMember, voucher: Voucher, ip: str | None
) -> ResidentSummary:
    """The masked record of one resident, as the resident page shows it (audited)."""
    actor = _operator(staff)
    summary = _summary(voucher)
    record(action=VIEWED, actor=actor, target=voucher, ip=ip)
    return summary


# --- Reveal and identity check ------------------------------------------------------------


def _seal_note(note: str) -> dict[str, str]:
    note_id = uuid.uuid4().hex
    sealed = cipher_for(current_municipality()).encrypt_field(
        note, table=NOTE_TABLE, column=NOTE_COLUMN, row_id=note_id
    )
    return {"note_id": note_id, "note_sealed": base64.b64encode(sealed).decode("ascii")}


def reveal_note_open(details: dict[str, object]) -> str:
    """The operator's note of a reveal event, for the trail pages ("" if none)."""
    note_id, sealed = details.get("note_id"), details.get("note_sealed")
    if not isinstance(note_id, str) or not isinstance(sealed, str):
        return ""
    return cipher_for(current_municipality()).decrypt_field(
        base64.b64decode(sealed), table=NOTE_TABLE, column=NOTE_COLUMN, row_id=note_id
    )


def callcentre_personal_data_reveal(
    *, staff: StaffMember, voucher: Voucher, reason: str, note: str, ip: str | None
) -> PersonalData:
    """The full record of ``voucher``, for a stated reason. Raises ValidationError without a
    known reason, or with "other" and no note."""
    actor = _operator(staff)
    if reason not in RevealReason.values:
        raise ValidationError(_("表示する理由を選んでください。"))
    note = " ".join((note or "").split())[:NOTE_MAX_LENGTH]
    if reason == RevealReason.OTHER and not note:
        raise ValidationError(_("「その他」の場合は、理由をメモに記入してください。"))
    personal = _open(voucher)
    details: dict[str, object] = {"reason": reason}
    if note:
        details.update(_seal_note(note))
    record(action=REVEALED, actor=actor, target=voucher, ip=ip, details=details)
    return _personal_data(voucher, personal)


def callcentre_personal_data_shown_again(
    *, staff: StaffMember, voucher: Voucher, ip: str | None
) -> PersonalData:
    """The record shown again in the same identity check: the checklist came back
    unfinished (``IdentityIncomplete``) and the operator finishes it without stating a
    reason again. Audited as a reveal, for the reason of the reveal it continues, marked
    ``shown_again``. Raises :class:`RevealRequired` once that reveal has lapsed."""
    latest = _latest_events(staff, voucher, [REVEALED], since=timezone.now() - IDENTITY_VALID)
    if not latest:
        raise RevealRequired
    personal = _open(voucher)
    record(
        action=REVEALED,
        actor=_operator(staff),
        target=voucher,
        ip=ip,
        details={"reason": latest[0].details.get("reason", ""), "shown_again": True},
    )
    return _personal_data(voucher, personal)


def _personal_data(voucher: Voucher, personal: dict[str, str | None]) -> PersonalData:
    birth = personal.get("birth_date")
    birth_date = date.fromisoformat(birth) if birth else None
    sex = {"1": _("男"), "2": _("女")}.get(personal.get("sex") or "", "")
    return PersonalData(
        voucher_number=voucher.voucher_number,
        name=personal.get("name") or "",
        name_kana=personal.get("name_kana") or "",
        birth_date=birth_date,
        birth_era_year=era_year(birth_date),
        sex=sex,
        postal_code=personal.get("postal_code") or "",
        address=personal.get("address") or "",
        phone=personal.get("phone") or "",
        email=personal.get("email") or "",
        identity_items=identity_items(personal),
    )


def callcentre_identity_record(
    *,
    staff: StaffMember,
    voucher: Voucher,
    matched: Collection[str],
    ip: str | None,
    asked_by: str = "",
    mismatch: bool = False,
) -> bool:
    """Record the identity checklist: confirmed only when each of the resident's three items
    (``identity_items``, decided here from the record, not by the form) was read back right
    and the operator said who is on the phone (``asked_by``, an ``AskedBy``); failed when the
    operator says an item did not match (``mismatch``; who called, if said, is kept too).

    Returns whether the identity is confirmed. A failed check also closes any earlier
    confirmation of the same operator for the same resident. Raises :class:`RevealRequired`
    unless this operator revealed the record within ``IDENTITY_VALID``: a tick without the
    registered values on screen compares nothing; and :class:`IdentityIncomplete`, recording
    nothing, when "all matched" comes with an item unticked or without ``asked_by``.
    """
    actor = _operator(staff)
    if asked_by and asked_by not in AskedBy.values:
        raise ValueError("asked_by takes AskedBy's values")
    if not _latest_events(staff, voucher, [REVEALED], since=timezone.now() - IDENTITY_VALID):
        raise RevealRequired
    checked = {item: item in matched for item in identity_items(_open(voucher))}
    confirmed = all(checked.values()) and not mismatch
    if not confirmed and not mismatch:
        raise IdentityIncomplete
    if confirmed and not asked_by:
        raise IdentityIncomplete(caller_missing=True)
    record(
        action=IDENTITY_CONFIRMED if confirmed else IDENTITY_FAILED,
        actor=actor,
        target=voucher,
        ip=ip,
        # Which items matched (booleans), never what was read back; and who called.
        details={
            "matched": [item for item, ok in checked.items() if ok],
            **({"asked_by": asked_by} if asked_by else {}),
        },
    )
    return confirmed


@dataclass(frozen=True)
class ConfirmedIdentity:
    """An identity check that still holds: when it was made, until when it holds, and who
    is on the phone (an ``AskedBy`` value; "" for a check recorded before it was asked)."""

    at: datetime
    asked_by: str

    @property
    def until(self) -> datetime:
        return self.at + IDENTITY_VALID

    @property
    def asked_by_label(self) -> str:
        return str(AskedBy(self.asked_by).label) if self.asked_by in AskedBy.values else ""


def identity_confirmed(*, staff: StaffMember, voucher: Voucher) -> ConfirmedIdentity | None:
    """This operator's check of this resident's identity, if it still holds: the latest
    checklist result is a confirmation made within ``IDENTITY_VALID``."""
    latest = _latest_events(staff, voucher, [IDENTITY_CONFIRMED, IDENTITY_FAILED])
    if not latest or latest[0].action != IDENTITY_CONFIRMED:
        return None
    if latest[0].occurred_at < timezone.now() - IDENTITY_VALID:
        return None
    asked_by = latest[0].details.get("asked_by")
    return ConfirmedIdentity(latest[0].occurred_at, asked_by if isinstance(asked_by, str) else "")


@dataclass(frozen=True)
class IdentityFailures:
    count: int
    latest: datetime | None


def identity_failures_today(voucher: Voucher) -> IdentityFailures:
    """The identity checks of this resident that failed today (Japan), by any operator,
    since the last one that succeeded: a caller who tries again and again (with details
    read off a letter, or guessed) is seen by whoever takes the next call."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    events = Event.objects.filter(
        action__in=[IDENTITY_CONFIRMED, IDENTITY_FAILED],
        target_type="booking.voucher",
        target_id=str(voucher.pk),
        occurred_at__gte=start,
    ).order_by("-seq")
    count, latest = 0, None
    for action, occurred_at in events.values_list("action", "occurred_at"):
        if action == IDENTITY_CONFIRMED:
            break
        count += 1
        latest = latest or occurred_at
    return IdentityFailures(count, latest)


@dataclass(frozen=True)
class _Recorded:
    action: str
    occurred_at: datetime
    details: Mapping[str, Any]


def _latest_events(
    staff: StaffMember, voucher: Voucher, actions: list[str], *, since: datetime | None = None
) -> list[_Recorded]:
    """The newest of this operator's ``actions`` on this voucher (none or one)."""
    events = Event.objects.filter(
        action__in=actions,
        actor_kind=Actor.STAFF,
        actor_id=str(staff.user_id),
        target_type="booking.voucher",
        target_id=str(voucher.pk),
    )
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    return [
        _Recorded(action, occurred_at, details if isinstance(details, dict) else {})
        for action, occurred_at, details in events.order_by("-seq").values_list(
            "action", "occurred_at", "details"
        )[:1]
    ]


def _require_identity(
    staff: StaffMember, voucher: Voucher, *, operation: str, ip: str | None
) -> tuple[Actor, ConfirmedIdentity]:
    actor = _operator(staff)
    confirmed = identity_confirmed(staff=staff, voucher=voucher)
    if confirmed is None:
        record(
            action=REFUSED,
            actor=actor,
            target=voucher,
            ip=ip,
            details={"operation": operation, "reason": "identity_not_confirmed"},
        )
        latest = _latest_events(staff, voucher, [IDENTITY_CONFIRMED, IDENTITY_FAILED])
        raise IdentityCheckRequired(expired=bool(latest) and latest[0].action == IDENTITY_CONFIRMED)
    return actor, confirmed


def _told(confirmed: ConfirmedIdentity) -> dict[str, str]:
    """What the call's identity check says of the caller, for the trail of what they ask."""
    return {"asked_by": confirmed.asked_by} if confirmed.asked_by else {}


# --- Booking on the resident's behalf -----------------------------------------------------


def _own_booking(voucher: Voucher, booking: Booking) -> None:
    if booking.voucher_id != voucher.pk:
        raise PermissionDenied("the booking is not this resident's")


def callcentre_book(
    *,
    staff: StaffMember,
    voucher: Voucher,
    slot: Slot,
    ip: str | None,
    second_slot: Slot | None = None,
) -> Booking:
    """Book the resident's next dose with the call centre's capacity (BookingRefused as the
    booking service raises it); ``second_slot`` books the following dose with it, linked,
    where the municipality books the series together."""
    actor, confirmed = _require_identity(staff, voucher, operation="book", ip=ip)
    return booking_create(
        voucher=voucher,
        slot=slot,
        channel=Channel.CALL_CENTRE,
        actor=actor,
        ip=ip,
        second_slot=second_slot,
        told=_told(confirmed),
    )


def callcentre_change(
    *,
    staff: StaffMember,
    voucher: Voucher,
    booking: Booking,
    slot: Slot,
    ip: str | None,
    expected_slot_id: int | None = None,
) -> Booking:
    """``expected_slot_id``: the booking's slot when the operator's page was shown (see
    ``booking_change``)."""
    actor, confirmed = _require_identity(staff, voucher, operation="change", ip=ip)
    _own_booking(voucher, booking)
    return booking_change(
        booking=booking,
        slot=slot,
        channel=Channel.CALL_CENTRE,
        actor=actor,
        ip=ip,
        expected_slot_id=expected_slot_id,
        told=_told(confirmed),
    )


def callcentre_cancel(
    *,
    staff: StaffMember,
    voucher: Voucher,
    booking: Booking,
    ip: str | None,
    asked_by: str,
    given_reason: str = CancelGivenReason.NOT_SAID,
    expected_slot_id: int | None = None,
) -> Booking:
    """``asked_by`` (``AskedBy``) and ``given_reason`` (``CancelGivenReason``): who
    asked and why, recorded with the cancellation. ``expected_slot_id``: the booking's slot
    when the operator's page was shown (see ``booking_cancel``)."""
    if asked_by not in AskedBy.values or given_reason not in CancelGivenReason.values:
        raise ValueError("asked_by and given_reason take their choices' values")
    actor, _confirmed = _require_identity(staff, voucher, operation="cancel", ip=ip)
    _own_booking(voucher, booking)
    return booking_cancel(
        booking=booking,
        channel=Channel.CALL_CENTRE,
        actor=actor,
        ip=ip,
        expected_slot_id=expected_slot_id,
        told={"asked_by": asked_by, "given_reason": given_reason},
    )


def cancelled_how(booking: Booking) -> str:
    """Who ended a cancelled booking, as an operator tells a caller who asks ("" for a
    booking not cancelled): read from its ``booking.cancelled`` event."""
    if booking.status != Booking.Status.CANCELLED:
        return ""
    if booking.called_off:
        return _("市区町村が予約枠を中止したため")
    if booking.deferred:
        return _("会場での予診の結果、接種見合わせ")
    cancellation = booking_cancellation(booking)
    if cancellation is None:
        return ""
    actor_kind, details = cancellation
    if details.get("cascade_of"):
        return _("一緒に予約した回の取消にあわせて")
    return _by_whom(actor_kind, details)


def booked_how(booking: Booking) -> str:
    """Who made the booking, as an operator tells a caller who asks ("" when its
    ``booking.created`` event cannot be found)."""
    creation = booking_event(booking, "booking.created")
    return "" if creation is None else _by_whom(*creation)


@dataclass(frozen=True)
class BookingMove:
    """One change of a booking to another slot: when, from which slot, and who made it."""

    at: datetime
    previous: Slot | None
    how: str


def booking_moves(booking: Booking) -> list[BookingMove]:
    """The booking's changes, oldest first, as a caller asks "what was it before?" (from its
    ``booking.changed`` events; a slot deleted since shows as None)."""
    events = list(
        booking_events(booking, "booking.changed")
        .order_by("seq")
        .values_list("occurred_at", "actor_kind", "details")
    )
    details_of = [details if isinstance(details, dict) else {} for _at, _kind, details in events]
    slot_ids = {
        d.get("previous_slot") for d in details_of if isinstance(d.get("previous_slot"), int)
    }
    slots = Slot.objects.select_related("venue").in_bulk(slot_ids)
    return [
        BookingMove(
            at=at, previous=slots.get(details.get("previous_slot")), how=_by_whom(kind, details)
        )
        for (at, kind, _raw), details in zip(events, details_of, strict=True)
    ]


def _by_whom(actor_kind: str, details: Mapping[str, Any]) -> str:
    if actor_kind == Actor.RESIDENT:
        if details.get("channel") == Channel.LINE:
            return _("ご本人がLINEから")
        return _("ご本人がウェブから")
    if actor_kind == Actor.STAFF:
        if details.get("at_the_venue"):
            return _("会場の受付で、予約のない方として")
        return _asked(details) or _("コールセンター・市区町村の職員が")
    return _("システムが")


def _asked(details: Mapping[str, Any]) -> str:
    """A call-centre booking's or cancellation's who (and why), as recorded ("" for one
    before they were)."""
    asked_by, reason = details.get("asked_by"), details.get("given_reason")
    if asked_by not in AskedBy.values:
        return ""
    if reason in CancelGivenReason.values and reason != CancelGivenReason.NOT_SAID:
        return _("コールセンターで、%(who)sの「%(reason)s」とのお申し出により") % {
            "who": AskedBy(asked_by).label,
            "reason": CancelGivenReason(reason).label,
        }
    return _("コールセンターで、%(who)sのお申し出により") % {"who": AskedBy(asked_by).label}


# --- The resident's web login -------------------------------------------------------------


@dataclass(frozen=True)
class PasswordReset:
    mode: str
    # voucher_code mode: the new one-time code to read out, shown once and stored hashed.
    new_code: str | None
    sessions_ended: int


def password_reset_applies(municipality: Municipality) -> bool:
    return municipality.login_mode != Municipality.LoginMode.VOUCHER_DOB


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def callcentre_password_reset(
    *, staff: StaffMember, voucher: Voucher, ip: str | None
) -> PasswordReset:
    """Forget the resident's password; they set a new one at their next login.

    How they get back in depends on the municipality's login mode:

    - ``voucher_dob_then_password``: the birth date logs in again once, then asks for a
      password;
    - ``voucher_code``: the code on the letter is spent, so a new one-time code is issued
      here and returned (only its keyed hash is kept) for the operator to read out;
    - ``account``: the account (e-mail and password) is removed and the resident registers
      again with voucher number and birth date;
    - ``voucher_dob`` has no passwords: :class:`PasswordResetNotApplicable`.

    Their web sessions end.
    """
    actor, confirmed = _require_identity(staff, voucher, operation="password_reset", ip=ip)
    municipality = current_municipality()
    mode = municipality.login_mode
    if not password_reset_applies(municipality):
        raise PasswordResetNotApplicable
    code = None
    with transaction.atomic():
        locked = Voucher.objects.select_for_update().get(pk=voucher.pk)
        credentials = ResidentCredential.objects.filter(voucher=locked)
        had_password = credentials.exclude(password="").exists()
        if mode == Municipality.LoginMode.ACCOUNT:
            credentials.delete()
        else:
            credentials.update(password="", password_set_at=None, updated_at=timezone.now())
        if mode == Municipality.LoginMode.VOUCHER_CODE:
            code = _new_code()
            Voucher.objects.filter(pk=locked.pk).update(
                activation_code_hash=activation_code_hash(cipher_for(municipality), code),
                activation_code_used_at=None,
                updated_at=timezone.now(),
            )
        record(
            action="callcentre.password_reset",
            actor=actor,
            target=locked,
            ip=ip,
            details={
                "mode": mode,
                "had_password": had_password,
                "code_issued": code is not None,
                **_told(confirmed),
            },
        )
        ended = resident_sessions_end(locked, actor=actor, ip=ip)
    return PasswordReset(
        mode=mode, new_code=format_code(code) if code else None, sessions_ended=ended
    )


def callcentre_web_login_set(
    *, staff: StaffMember, voucher: Voucher, disabled: bool, ip: str | None
) -> Voucher:
    """Disable (ending their sessions) or re-enable the resident's web login."""
    operation = "web_login_disable" if disabled else "web_login_enable"
    actor, _confirmed = _require_identity(staff, voucher, operation=operation, ip=ip)
    return resident_web_login_set(voucher=voucher, disabled=disabled, actor=actor, ip=ip)


def login_locked(voucher: Voucher) -> bool | None:
    """Whether the resident's web login is locked for failed attempts now (None: unknown,
    the counters cannot be read). The lock on an account's e-mail address is not asked."""
    return throttle.subject_locked(throttle.subject_for_voucher(voucher.voucher_number))


def callcentre_login_lock_lift(*, staff: StaffMember, voucher: Voucher, ip: str | None) -> None:
    """Lift the per-voucher login lock (five failures in fifteen minutes) — and, in the
    ``account`` mode, the lock on the account's e-mail address."""
    actor, confirmed = _require_identity(staff, voucher, operation="login_lock_lift", ip=ip)
    throttle.throttle_forget_subject(throttle.subject_for_voucher(voucher.voucher_number))
    credential = ResidentCredential.objects.filter(voucher=voucher, email__isnull=False).first()
    if credential is not None and credential.email is not None:
        address = cipher_for(current_municipality()).decrypt_field(
            bytes(credential.email),
            table=CREDENTIAL_TABLE,
            column="email",
            row_id=voucher.voucher_number,
        )
        throttle.throttle_forget_subject(throttle.subject_for_email(normalize_login_email(address)))
    record(
        action="callcentre.login_lock_lifted",
        actor=actor,
        target=voucher,
        ip=ip,
        details=_told(confirmed),
    )
