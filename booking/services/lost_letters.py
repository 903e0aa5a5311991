"""Voucher letters lost or stolen before they reached their residents (a box gone from the
post, a bag left on a train): what is printed on a letter may log in, so the municipality
closes that door for the vouchers it names, at once, without waiting for each resident to
call.

What a letter opens depends on the login mode, and only that is closed:

- ``voucher_code``: its one-time code, while unused. The code is replaced by a new one, in a
  codes file for the print vendor to mail again; web login stays open (the old letter no
  longer logs in, the new one will). A resident who has used the code has a password the
  letter does not hold.
- ``voucher_dob`` (number and birth date, both on the letter): web login is stopped.
- ``voucher_dob_then_password``: stopped where no password has been set yet.
- ``account``: stopped where no account has been registered for the voucher yet (the letter
  registers one).

A stopped voucher is marked as stopped for its letter (``Voucher.WebLoginStop.LETTERS``): the
call centre is told to check a caller by more than what the letter says, and web login opens
again for the vouchers named once new letters are on their way (or, one at a time, by the call
centre after such a check). Both actions are audited with the vouchers as id ranges.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport, ResidentCredential, StaffMember, Voucher
from booking.resident.services.web_sessions import resident_sessions_end_all
from booking.selectors.registry import registry_imports_at_work
from booking.services.bulk_reads import voucher_ranges
from booking.services.incident import IncidentRefused
from booking.services.incident_codes import codes_reissue
from tenants.db import current_municipality
from tenants.models import Municipality

Mode = Municipality.LoginMode
LETTERS = Voucher.WebLoginStop.LETTERS
# Vouchers one action may name (each gets its own event in the trail): a lost box of
# letters is hundreds; a whole mailing in doubt is an incident for incident mode.
MAX_VOUCHERS = 10_000
CODES_FILE_NAME = "認証コード再発行（郵送物の紛失・盗難）"
NOT_FOUND_SHOWN = 20

_SEPARATORS = re.compile(r"[\s,、，;；]+")
_RANGE = re.compile(r"^(\d{10})[-~〜～ー－](\d{10})$")
_RANGE_MARK = re.compile(r"\s*([-~〜～ー－])\s*")


def voucher_numbers_parse(text: str) -> list[str]:
    """The voucher numbers ``text`` names, in order, once each: ten-digit numbers and ranges
    (``1399980001-1399980050``), separated by line breaks, spaces or commas; full-width
    digits are read as such. Raises ValidationError saying what is wrong."""
    normalised = unicodedata.normalize("NFKC", text or "")
    # A range typed with spaces around its mark (1399980001 - 1399980050) is one range.
    normalised = _RANGE_MARK.sub(r"\1", normalised)
    tokens = [token for token in _SEPARATORS.split(normalised) if token]
    if not tokens:
        raise ValidationError(_("接種券番号を入力してください。"))
    numbers: dict[str, None] = {}
    for token in tokens:
        token = token.strip("-~〜")
        ranged = _RANGE.match(token)
        if ranged:
            first, last = int(ranged.group(1)), int(ranged.group(2))
            if last < first:
                raise ValidationError(
                    _("「%(range)s」は、始めの番号が終わりの番号より大きくなっています。")
                    % {"range": token}
                )
            if last - first + 1 > MAX_VOUCHERS:
                raise ValidationError(_("一度に扱える接種券は%(max)s件までです。") % _max())
            numbers.update(dict.fromkeys(f"{n:010d}" for n in range(first, last + 1)))
        elif token.isdigit() and len(token) == 10:
            numbers[token] = None
        else:
            raise ValidationError(
                _(
                    "「%(token)s」は接種券番号（10桁）でも、その範囲（例：1399980001-1399980050）"
                    "でもありません。"
                )
                % {"token": token[:30]}
            )
        if len(numbers) > MAX_VOUCHERS:
            raise ValidationError(_("一度に扱える接種券は%(max)s件までです。") % _max())
    return list(numbers)


def _max() -> dict[str, str]:
    return {"max": f"{MAX_VOUCHERS:,}"}


@dataclass
class LettersSecured:
    named: int = 0
    not_found: list[str] = field(default_factory=list)
    not_found_count: int = 0
    # Web login stopped now, and those stopped already (for their letter, or by staff).
    stopped: int = 0
    already: int = 0
    # Nothing the letter holds logs in any more (a password set, an account registered, the
    # code used): left as they are.
    not_exposed: int = 0
    # voucher_code: the unused codes replaced, in the codes file of ``reissue``.
    codes_replaced: int = 0
    sessions_ended: int = 0
    reissue: RegistryImport | None = None


def _admin(staff: StaffMember) -> Actor:
    if staff.role != StaffMember.Role.ADMIN:
        raise PermissionDenied("lost letters are handled by the municipality's admins")
    return Actor(Actor.STAFF, str(staff.user_id))


def _named(numbers: list[str], result: LettersSecured) -> list[Voucher]:
    vouchers = list(
        Voucher.objects.filter(voucher_number__in=numbers, status=Voucher.Status.ACTIVE)
    )
    found = {voucher.voucher_number for voucher in vouchers}
    missing = [number for number in numbers if number not in found]
    result.named = len(numbers)
    result.not_found_count = len(missing)
    result.not_found = missing[:NOT_FOUND_SHOWN]
    return vouchers


def lost_letters_secure(*, staff: StaffMember, text: str, ip: str | None) -> LettersSecured:
    """Close what the named vouchers' letters open (see the module's note). Vouchers that
    are not active (withdrawn) or unknown are counted, not touched."""
    actor = _admin(staff)
    numbers = voucher_numbers_parse(text)
    municipality: Municipality = current_municipality()
    result = LettersSecured()
    with transaction.atomic():
        vouchers = _named(numbers, result)
        ids = [voucher.pk for voucher in vouchers]
        if municipality.login_mode == Mode.VOUCHER_CODE:
            _replace_codes(ids, result, actor)
        else:
            exposed = set(ids) - _not_exposed(ids, municipality.login_mode)
            result.not_exposed = len(ids) - len(exposed)
            # Stopped already, for their letter or by staff for a reason of their own (kept:
            # opening the letters' vouchers again must not open those).
            already = set(
                Voucher.objects.filter(pk__in=exposed, web_login_disabled=True).values_list(
                    "pk", flat=True
                )
            )
            result.already = len(already)
            stopping = sorted(exposed - already)
            result.stopped = Voucher.objects.filter(pk__in=stopping).update(
                web_login_disabled=True, web_login_stop=LETTERS, updated_at=timezone.now()
            )
            result.sessions_ended = resident_sessions_end_all(voucher_ids=stopping)
            _record_each("resident.web_login_disabled", stopping, actor, ip)
            ids = stopping
        record(
            action="incident.letters_secured",
            actor=actor,
            ip=ip,
            target=result.reissue,
            details={
                "named": result.named,
                "not_found": result.not_found_count,
                "not_exposed": result.not_exposed,
                "stopped": result.stopped,
                "codes_voided": result.codes_replaced,
                "sessions_ended": result.sessions_ended,
                "voucher_ranges": voucher_ranges(ids),
            },
        )
    return result


def _not_exposed(ids: list[int], mode: str) -> set[int]:
    """Of these vouchers, those the letter no longer logs in as."""
    credentials = ResidentCredential.objects.filter(voucher_id__in=ids)
    if mode == Mode.VOUCHER_DOB_THEN_PASSWORD:
        return set(credentials.exclude(password="").values_list("voucher_id", flat=True))
    if mode == Mode.ACCOUNT:
        return set(credentials.filter(email__isnull=False).values_list("voucher_id", flat=True))
    return set()


def _replace_codes(ids: list[int], result: LettersSecured, actor: Actor) -> None:
    """voucher_code: the unused codes of ``ids`` replaced, through a codes file."""
    # The registry import's own lock: no import may apply (and issue codes) meanwhile.
    if registry_imports_at_work().select_for_update().exists():
        raise IncidentRefused(
            "import_at_work",
            _("名簿の取込を実行中のため、いまは扱えません。取込の完了後にお試しください。"),
        )
    unused = Voucher.objects.filter(
        pk__in=ids, activation_code_hash__isnull=False, activation_code_used_at__isnull=True
    )
    replacing = list(unused.values_list("pk", flat=True))
    result.not_exposed = len(ids) - len(replacing)
    voided = Voucher.objects.filter(pk__in=replacing).update(
        activation_code_hash=None, updated_at=timezone.now()
    )
    _record_each("resident.activation_code_replaced", replacing, actor, None)
    if voided:
        result.codes_replaced = voided
        result.reissue = codes_reissue(actor=actor, file_name=CODES_FILE_NAME, replaced=voided)


def lost_letters_release(*, staff: StaffMember, text: str, ip: str | None) -> LettersSecured:
    """Open web login again for the named vouchers stopped for their letter (new letters
    are on their way); a voucher stopped by staff for another reason stays stopped."""
    actor = _admin(staff)
    numbers = voucher_numbers_parse(text)
    result = LettersSecured()
    with transaction.atomic():
        vouchers = _named(numbers, result)
        releasing = sorted(
            voucher.pk
            for voucher in vouchers
            if voucher.web_login_disabled and voucher.web_login_stop == LETTERS
        )
        result.stopped = Voucher.objects.filter(pk__in=releasing).update(
            web_login_disabled=False, web_login_stop="", updated_at=timezone.now()
        )
        _record_each("resident.web_login_enabled", releasing, actor, ip)
        record(
            action="incident.letters_released",
            actor=actor,
            ip=ip,
            details={
                "named": result.named,
                "not_found": result.not_found_count,
                "released": result.stopped,
                "voucher_ranges": voucher_ranges(releasing),
            },
        )
    return result


def _record_each(action: str, voucher_ids: list[int], actor: Actor, ip: str | None) -> None:
    """An event on each voucher, as staff acting on one resident leave: whoever reads a
    resident's trail (after a complaint that they cannot log in) finds it there."""
    for voucher_id in voucher_ids:
        record(
            action=action,
            actor=actor,
            target=("booking.voucher", str(voucher_id)),
            ip=ip,
            details={"stop": LETTERS.value},
        )


@dataclass(frozen=True)
class LettersStopped:
    """The vouchers whose web login is stopped for their letters now: how many, and their
    numbers as runs (a lost box is one run, 1399980001〜1399980050), the first ``shown``."""

    count: int
    runs: list[tuple[str, str]]
    more_runs: int


def letters_stopped(*, shown: int = 30) -> LettersStopped:
    """What the incident page lists, for the admin who opens them again once new letters
    are sent. Numbers only (what the admin typed), never names."""
    numbers = sorted(
        Voucher.objects.filter(web_login_stop=LETTERS).values_list("voucher_number", flat=True)
    )
    runs: list[tuple[str, str]] = []
    for number in numbers:
        if (
            runs
            and number.isdigit()
            and runs[-1][1].isdigit()
            and (int(number) == int(runs[-1][1]) + 1 and len(number) == len(runs[-1][1]))
        ):
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return LettersStopped(
        count=len(numbers), runs=runs[:shown], more_runs=max(0, len(runs) - shown)
    )
