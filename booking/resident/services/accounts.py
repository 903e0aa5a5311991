"""Accounts and passwords: registration in the ``account`` mode and the first password.

Resets are the console's (``booking.services.callcentre``, ``booking.services.incident``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import ResidentCredential, Voucher
from booking.resident.services.login import (
    CREDENTIAL_TABLE,
    EMAIL_INDEX_PURPOSE,
    RegistrationRefused,
    has_account,
    normalize_login_email,
    voucher_target,
)
from tenants.crypto import cipher_for
from tenants.db import current_municipality


def validate_resident_password(password: str, *, voucher: Voucher) -> None:
    """Django's validators, with the voucher number as the "user attribute" a password
    must not resemble."""
    # An unsaved user, only to give the similarity validator something to compare with.
    password_validation.validate_password(
        password, get_user_model()(username=voucher.voucher_number)
    )


def resident_account_create(
    *, voucher: Voucher, email: str, password: str, ip: str | None
) -> ResidentCredential:
    """Step two: the account for a voucher checked in step one.

    Raises ``ValidationError`` keyed by field (``email``, ``password``) and
    :class:`RegistrationRefused` if the voucher got an account meanwhile.
    """
    municipality = current_municipality()
    address = normalize_login_email(email)
    errors: dict[str, list[ValidationError]] = {}
    try:
        validate_resident_password(password, voucher=voucher)
    except ValidationError as invalid:
        errors["password"] = list(invalid.error_list)
    if errors:
        raise ValidationError(errors)
    cipher = cipher_for(municipality)
    index = cipher.blind_index(address, purpose=EMAIL_INDEX_PURPOSE)
    sealed = cipher.encrypt_field(
        address, table=CREDENTIAL_TABLE, column="email", row_id=voucher.voucher_number
    )
    hashed = make_password(password)
    try:
        with transaction.atomic():
            locked = Voucher.objects.select_for_update().get(pk=voucher.pk)
            credential = ResidentCredential.objects.filter(voucher=locked).first()
            if has_account(credential):
                raise RegistrationRefused("already_registered")
            if credential is None:
                credential = ResidentCredential(voucher=locked)
            credential.email = sealed
            credential.email_index = index
            credential.password = hashed
            credential.password_set_at = timezone.now()
            credential.save()
            record(
                action="resident.registered",
                actor=Actor.resident(voucher.pk),
                target=voucher_target(voucher),
                ip=ip,
            )
    except IntegrityError:
        # Another account has this address. Said only to someone who has just proven a
        # voucher's birth date (throttled), so it is no cheap way to test addresses.
        raise ValidationError(
            {"email": [ValidationError(_("このメールアドレスは使えません。"), code="taken")]}
        ) from None
    return credential


# --- Passwords ----------------------------------------------------------------------------


class PasswordAlreadySet(Exception):
    """A password was set meanwhile (another session of the same first login)."""


def resident_password_set(*, voucher: Voucher, password: str, ip: str | None) -> ResidentCredential:
    """The first password of a voucher (after a birth-date or one-time-code login).

    Raises ``ValidationError`` (messages for the resident) for a weak password and
    :class:`PasswordAlreadySet` if one exists already: the first login may set it once.
    """
    validate_resident_password(password, voucher=voucher)
    hashed = make_password(password)
    with transaction.atomic():
        locked = Voucher.objects.select_for_update().get(pk=voucher.pk)
        credential = ResidentCredential.objects.filter(voucher=locked).first()
        if credential is not None and credential.has_password:
            raise PasswordAlreadySet
        if credential is None:
            credential = ResidentCredential(voucher=locked)
        credential.password = hashed
        credential.password_set_at = timezone.now()
        credential.save()
        record(
            action="resident.password_set",
            actor=Actor.resident(voucher.pk),
            target=voucher_target(voucher),
            ip=ip,
        )
    return credential
