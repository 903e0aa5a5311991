"""Resident login, registration, passwords and sessions.

Every function runs inside one municipality's context (the request's, or ``tenant_context``)
and writes that municipality's audit trail. Each login path:

1. refuses at once if the site is closed (incident mode) or the path is not the
   municipality's mode;
2. counts the attempt (:mod:`booking.resident.throttle`) before anything is decrypted or
   hashed;
3. does the same work whether or not the voucher exists (a dummy decryption, keyed hash or
   argon2 check), so neither the answer nor its timing tells whether a voucher exists;
4. audits the attempt: ``resident.login_succeeded`` or ``resident.login_failed`` with a
   reason and the voucher when known — never a typed value.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.utils import timezone

from audit import record
from audit.chain import Actor
from booking.models import ResidentCredential, Voucher
from booking.registry.normalize import NormalizeError, normalize_kana
from booking.registry.pipeline import VOUCHER_TABLE, kana_key
from booking.resident import throttle
from booking.services.registry_import import activation_code_hash
from sesshu import metrics
from sesshu.rows import columns_of, fetch_one, keep_related
from tenants.crypto import DecryptionFailed, TenantCipher, cipher_for
from tenants.db import current_municipality
from tenants.models import Municipality

Mode = Municipality.LoginMode
CREDENTIAL_TABLE = "booking_residentcredential"
EMAIL_INDEX_PURPOSE = "resident.email"


class LoginRefused(Exception):
    """A login (or registration check) failed. ``reason`` goes to the audit trail; the page
    says one thing for every reason except a limit reached or the extra step asked for."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def throttled(self) -> bool:
        return self.reason == "throttled"

    @property
    def extra_step_required(self) -> bool:
        return self.reason == "extra_step_required"


class SiteClosed(LoginRefused):
    """The municipality's resident site takes no logins now (incident mode)."""


@dataclass(frozen=True)
class LoginResult:
    voucher: Voucher
    # The session may do nothing but set a password (first login in the password modes).
    password_required: bool
    method: str


# --- Dummy work, so a missing voucher costs what a real one does ------------------------------


_DUMMY_ROW = "0000000000"
_DUMMY_RECORD = {
    "name": "接種 太郎",
    "name_kana": "セッシュ タロウ",
    "birth_date": "1950-01-01",
    "sex": "1",
    "postal_code": "1000000",
    "address": "東京都千代田区千代田1-1",
    "phone": "0300000000",
    "email": None,
    "address_number": "000000000000000",
}
_dummy_sealed: dict[str, bytes] = {}


def _dummy_open(cipher: TenantCipher) -> None:
    sealed = _dummy_sealed.get(cipher.tenant_code)
    if sealed is None:
        sealed = cipher.seal_record(_DUMMY_RECORD, table=VOUCHER_TABLE, row_id=_DUMMY_ROW)
        _dummy_sealed[cipher.tenant_code] = sealed
    cipher.open_record(sealed, table=VOUCHER_TABLE, row_id=_DUMMY_ROW)


@cache
def _dummy_password_hash() -> str:
    # Made with the configured hasher, so checking against it costs a real check.
    return make_password(secrets.token_urlsafe(16))


# --- Helpers ------------------------------------------------------------------------------


def voucher_target(voucher: Voucher | None) -> Any:
    return ("booking.voucher", str(voucher.pk)) if voucher is not None else None


def _failed(
    *, reason: str, method: str, voucher: Voucher | None, ip: str | None, action: str
) -> LoginRefused:
    metrics.login_failed("resident")
    record(
        action=action,
        actor=Actor.anonymous(),
        target=voucher_target(voucher),
        ip=ip,
        details={"reason": reason, "method": method},
    )
    if reason == "site_closed":
        return SiteClosed(reason)
    return LoginRefused(reason)


def _open_municipality(
    modes: set[str],
    *,
    method: str,
    ip: str | None,
    action: str = "resident.login_failed",
    voucher_number: str | None = None,
) -> Municipality:
    """The municipality, when its site takes logins of ``method``. While it does not (an
    incident), the refusal names the voucher typed, if there is one: whose letter someone
    tries is what an incident's admin wants to know (nothing secret is checked)."""
    municipality: Municipality = current_municipality()
    if municipality.status != Municipality.Status.ACTIVE:
        tried = (
            Voucher.objects.filter(voucher_number=voucher_number).first()
            if voucher_number
            else None
        )
        raise _failed(reason="site_closed", method=method, voucher=tried, ip=ip, action=action)
    if municipality.login_mode not in modes:
        raise _failed(reason="wrong_mode", method=method, voucher=None, ip=ip, action=action)
    return municipality


def _begin(
    subject: str,
    *,
    ip: str | None,
    method: str,
    birth_date_path: bool = False,
    name_given: bool = False,
    action: str = "resident.login_failed",
) -> throttle.Attempt:
    try:
        return throttle.attempt_begin(
            subject=subject, ip=ip, birth_date_path=birth_date_path, name_given=name_given
        )
    except throttle.ExtraStepRequired:
        # Nothing was checked or counted: the page asks for the name as well.
        record(
            action=action,
            actor=Actor.anonymous(),
            ip=ip,
            details={"reason": "extra_step_required", "method": method},
        )
        raise LoginRefused("extra_step_required") from None
    except throttle.Throttled as limit:
        metrics.login_failed("resident")
        record(
            action=action,
            actor=Actor.anonymous(),
            ip=ip,
            details={"reason": "throttled", "method": method, "limit": limit.scope},
        )
        raise LoginRefused("throttled") from None


def _voucher_for_login(voucher_number: str) -> Voucher | None:
    """The voucher with its credential, if any (``credential_of`` then runs no query).

    One query whatever exists: the credential comes along (or not) in the same join. On the
    path of every login in a rush: not compiled by the ORM (sesshu.rows)."""
    voucher_columns, credential = columns_of(Voucher, "v"), columns_of(ResidentCredential, "c")
    row = fetch_one(
        f"SELECT {voucher_columns.sql}, {credential.sql} FROM {voucher_columns.table} v"  # noqa: S608
        f" LEFT JOIN {credential.table} c ON c.voucher_id = v.id WHERE v.voucher_number = %s",
        [voucher_number],
    )
    if row is None:
        return None
    voucher = voucher_columns.load(row)
    at = voucher_columns.width  # the credential's id, NULL when the voucher has none
    keep_related(
        voucher, "resident_credential", None if row[at] is None else credential.load(row, at)
    )
    return voucher


def credential_of(voucher: Voucher | None) -> ResidentCredential | None:
    if voucher is None:
        return None
    try:
        return voucher.resident_credential
    except ResidentCredential.DoesNotExist:
        return None


def _unusable(voucher: Voucher) -> str:
    """Why this voucher may not log in, or ''."""
    if voucher.status != Voucher.Status.ACTIVE:
        return "voucher_withdrawn"
    if voucher.web_login_disabled:
        return "web_login_disabled"
    return ""


def normalize_login_email(value: str) -> str:
    """What identifies an account: the address as typed, full-width folded, lower-cased."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def _kana_matches(typed: str | None, registered: str | None) -> bool:
    if not typed or not registered:
        return False
    try:
        normalized = normalize_kana(typed)
    except NormalizeError:
        return False
    return hmac.compare_digest(
        kana_key(normalized).encode("utf-8"), kana_key(registered).encode("utf-8")
    )


def _check_identity(
    cipher: TenantCipher,
    voucher_number: str,
    *,
    birth_date: date,
    name_kana: str | None,
    name_required: bool,
) -> tuple[Voucher | None, str]:
    """The voucher and '' if birth date (and name, when asked for) match; else why not."""
    voucher = _voucher_for_login(voucher_number)
    if voucher is None:
        _dummy_open(cipher)
        return None, "unknown_voucher"
    try:
        personal = cipher.open_record(
            bytes(voucher.personal), table=VOUCHER_TABLE, row_id=voucher.voucher_number
        )
    except DecryptionFailed:
        return voucher, "undecryptable"
    birth_ok = hmac.compare_digest(
        (personal.get("birth_date") or "").encode(), birth_date.isoformat().encode()
    )
    name_ok = True
    if name_required or name_kana:
        name_ok = _kana_matches(name_kana, personal.get("name_kana"))
    reason = _unusable(voucher)
    if not reason and not birth_ok:
        reason = "wrong_birth_date"
    if not reason and not name_ok:
        reason = "wrong_name"
    return voucher, reason


def _succeeded(*, attempt: throttle.Attempt, voucher: Voucher, method: str, ip: str | None) -> None:
    throttle.attempt_succeeded(attempt)
    record(
        action="resident.login_succeeded",
        actor=Actor.resident(voucher.pk),
        target=voucher_target(voucher),
        ip=ip,
        details={"method": method},
    )


# --- Login, one function per path ---------------------------------------------------------


def resident_login_birth_date(
    *, voucher_number: str, birth_date: date, name_kana: str | None = None, ip: str | None
) -> LoginResult:
    """``voucher_dob``, and the first login of ``voucher_dob_then_password`` (which then
    requires a password; once one is set, the birth date no longer logs in)."""
    method = "birth_date"
    municipality = _open_municipality(
        {Mode.VOUCHER_DOB, Mode.VOUCHER_DOB_THEN_PASSWORD},
        method=method,
        ip=ip,
        voucher_number=voucher_number,
    )
    attempt = _begin(
        throttle.subject_for_voucher(voucher_number),
        ip=ip,
        method=method,
        birth_date_path=True,
        name_given=bool(name_kana),
    )
    voucher, reason = _check_identity(
        cipher_for(municipality),
        voucher_number,
        birth_date=birth_date,
        name_kana=name_kana,
        name_required=attempt.under_attack,
    )
    then_password = municipality.login_mode == Mode.VOUCHER_DOB_THEN_PASSWORD
    credential = credential_of(voucher)
    if not reason and then_password and credential is not None and credential.has_password:
        reason = "password_set"
    if reason:
        raise _failed(
            reason=reason, method=method, voucher=voucher, ip=ip, action="resident.login_failed"
        )
    assert voucher is not None
    _succeeded(attempt=attempt, voucher=voucher, method=method, ip=ip)
    return LoginResult(voucher=voucher, password_required=then_password, method=method)


_DUMMY_CODE_HASH = bytes(16)


def resident_login_code(*, voucher_number: str, code: str, ip: str | None) -> LoginResult:
    """``voucher_code`` first login: the one-time code from the letter, spent here (one
    conditional UPDATE, so two sessions cannot both use it); a password must follow."""
    method = "code"
    municipality = _open_municipality(
        {Mode.VOUCHER_CODE}, method=method, ip=ip, voucher_number=voucher_number
    )
    attempt = _begin(throttle.subject_for_voucher(voucher_number), ip=ip, method=method)
    typed = activation_code_hash(cipher_for(municipality), code)
    voucher = _voucher_for_login(voucher_number)
    stored = _DUMMY_CODE_HASH
    if voucher is not None and voucher.activation_code_hash is not None:
        stored = bytes(voucher.activation_code_hash)
    matches = hmac.compare_digest(typed, stored)
    reason = ""
    if voucher is None:
        reason = "unknown_voucher"
    else:
        reason = _unusable(voucher)
        if not reason and voucher.activation_code_hash is None:
            reason = "no_code"
        if not reason and not matches:
            reason = "wrong_code"
        if not reason and voucher.activation_code_used_at is not None:
            reason = "code_used"
        if not reason:
            claimed = Voucher.objects.filter(
                pk=voucher.pk, activation_code_used_at__isnull=True
            ).update(activation_code_used_at=timezone.now())
            if claimed != 1:
                reason = "code_used"
    if reason:
        raise _failed(
            reason=reason, method=method, voucher=voucher, ip=ip, action="resident.login_failed"
        )
    assert voucher is not None
    _succeeded(attempt=attempt, voucher=voucher, method=method, ip=ip)
    return LoginResult(voucher=voucher, password_required=True, method=method)


def _password_matches(credential: ResidentCredential | None, password: str) -> bool:
    if credential is None or not credential.has_password:
        check_password(password, _dummy_password_hash())
        return False

    def upgrade(raw: str) -> None:
        # The hasher's parameters changed since this hash was made: store a fresh one.
        ResidentCredential.objects.filter(pk=credential.pk).update(
            password=make_password(raw), updated_at=timezone.now()
        )

    return check_password(password, credential.password, setter=upgrade)


def resident_login_password(*, voucher_number: str, password: str, ip: str | None) -> LoginResult:
    """Voucher number and password, once set (``voucher_dob_then_password``,
    ``voucher_code``)."""
    method = "password"
    _open_municipality(
        {Mode.VOUCHER_DOB_THEN_PASSWORD, Mode.VOUCHER_CODE},
        method=method,
        ip=ip,
        voucher_number=voucher_number,
    )
    attempt = _begin(throttle.subject_for_voucher(voucher_number), ip=ip, method=method)
    voucher = _voucher_for_login(voucher_number)
    credential = credential_of(voucher)
    matches = _password_matches(credential, password)
    reason = ""
    if voucher is None:
        reason = "unknown_voucher"
    else:
        reason = _unusable(voucher)
        if not reason and (credential is None or not credential.has_password):
            reason = "no_password"
        if not reason and not matches:
            reason = "wrong_password"
    if reason:
        raise _failed(
            reason=reason, method=method, voucher=voucher, ip=ip, action="resident.login_failed"
        )
    assert voucher is not None
    _succeeded(attempt=attempt, voucher=voucher, method=method, ip=ip)
    return LoginResult(voucher=voucher, password_required=False, method=method)


def resident_login_account(*, email: str, password: str, ip: str | None) -> LoginResult:
    """``account`` mode: e-mail address and password of an account registered for a voucher."""
    method = "account"
    municipality = _open_municipality({Mode.ACCOUNT}, method=method, ip=ip)
    address = normalize_login_email(email)
    attempt = _begin(throttle.subject_for_email(address), ip=ip, method=method)
    index = cipher_for(municipality).blind_index(address, purpose=EMAIL_INDEX_PURPOSE)
    credential = (
        ResidentCredential.objects.select_related("voucher").filter(email_index=index).first()
    )
    matches = _password_matches(credential, password)
    voucher = credential.voucher if credential is not None else None
    reason = ""
    if credential is None or voucher is None:
        reason = "unknown_account"
    else:
        reason = _unusable(voucher)
        if not reason and not credential.has_password:
            reason = "no_password"
        if not reason and not matches:
            reason = "wrong_password"
    if reason:
        raise _failed(
            reason=reason, method=method, voucher=voucher, ip=ip, action="resident.login_failed"
        )
    assert voucher is not None
    _succeeded(attempt=attempt, voucher=voucher, method=method, ip=ip)
    return LoginResult(voucher=voucher, password_required=False, method=method)


def resident_login_malformed(
    *, method: str, fields: list[str], ip: str | None, action: str = "resident.login_failed"
) -> None:
    """Audit a submission that did not get as far as an attempt (a field left empty, a
    voucher number that is not 10 digits): which fields, never what was typed."""
    record(
        action=action,
        actor=Actor.anonymous(),
        ip=ip,
        details={"reason": "malformed", "method": method, "fields": fields},
    )


def has_account(credential: ResidentCredential | None) -> bool:
    """An account that can log in; one whose password was reset may be registered again."""
    return credential is not None and credential.email_index is not None and credential.has_password


# --- Registration (``account`` mode) ------------------------------------------------------


class RegistrationRefused(Exception):
    """The identity was confirmed but an account cannot be made (one exists already)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def resident_registration_check(
    *, voucher_number: str, birth_date: date, name_kana: str | None = None, ip: str | None
) -> Voucher:
    """Step one of registering: the voucher exists, is active, and the birth date matches.

    Throttled and answered exactly like a birth-date login (it is one, for an attacker), and
    audited as ``resident.registration_failed`` / ``resident.registration_checked``.
    """
    method = "registration"
    action = "resident.registration_failed"
    municipality = _open_municipality({Mode.ACCOUNT}, method=method, ip=ip, action=action)
    attempt = _begin(
        throttle.subject_for_voucher(voucher_number),
        ip=ip,
        method=method,
        birth_date_path=True,
        name_given=bool(name_kana),
        action=action,
    )
    voucher, reason = _check_identity(
        cipher_for(municipality),
        voucher_number,
        birth_date=birth_date,
        name_kana=name_kana,
        name_required=attempt.under_attack,
    )
    if reason:
        raise _failed(reason=reason, method=method, voucher=voucher, ip=ip, action=action)
    assert voucher is not None
    throttle.attempt_succeeded(attempt)
    credential = credential_of(voucher)
    already = has_account(credential)
    record(
        action="resident.registration_checked",
        actor=Actor.resident(voucher.pk),
        target=voucher_target(voucher),
        ip=ip,
        details={"already_registered": already},
    )
    if already:
        raise RegistrationRefused("already_registered")
    return voucher
