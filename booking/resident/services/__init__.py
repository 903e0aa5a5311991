"""Resident login, registration, passwords and sessions (writes; views call these).

- :mod:`~booking.resident.services.login`: every way in, throttled and answered alike;
- :mod:`~booking.resident.services.accounts`: registration and the first password;
- :mod:`~booking.resident.services.web_sessions`: which sessions are a resident's, and
  ending them (``resident_sessions_end``, ``resident_web_login_set``).
"""

from booking.resident.services.accounts import (
    PasswordAlreadySet,
    resident_account_create,
    resident_password_set,
    validate_resident_password,
)
from booking.resident.services.login import (
    CREDENTIAL_TABLE,
    EMAIL_INDEX_PURPOSE,
    LoginRefused,
    LoginResult,
    RegistrationRefused,
    SiteClosed,
    credential_of,
    normalize_login_email,
    resident_login_account,
    resident_login_birth_date,
    resident_login_code,
    resident_login_malformed,
    resident_login_password,
    resident_registration_check,
)
from booking.resident.services.web_sessions import (
    resident_logout_record,
    resident_session_forget,
    resident_session_register,
    resident_session_voucher,
    resident_sessions_end,
    resident_web_login_set,
)

__all__ = [
    "CREDENTIAL_TABLE",
    "EMAIL_INDEX_PURPOSE",
    "LoginRefused",
    "LoginResult",
    "PasswordAlreadySet",
    "RegistrationRefused",
    "SiteClosed",
    "credential_of",
    "normalize_login_email",
    "resident_account_create",
    "resident_login_account",
    "resident_login_birth_date",
    "resident_login_code",
    "resident_login_malformed",
    "resident_login_password",
    "resident_logout_record",
    "resident_password_set",
    "resident_registration_check",
    "resident_session_forget",
    "resident_session_register",
    "resident_session_voucher",
    "resident_sessions_end",
    "resident_web_login_set",
    "validate_resident_password",
]
