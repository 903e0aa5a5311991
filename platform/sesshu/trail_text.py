"""Free text that the audit trail keeps for good (a reason for suspending a municipality or
withdrawing a record): refused when it holds what looks like a resident's identifier.

The trail is append-only and hash-chained: a value written into it cannot be taken out, and
SECURITY.md keeps personal values out of logs. A person writes such texts in a hurry ("通報が
あった住民 0000000001 の件"), so the form says no before it is kept. A guard against slips,
not a filter of every way to name someone: numbers of ten digits or more, in a row or in
groups joined by hyphens (a voucher number, a phone number), and e-mail addresses."""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Ten digits or more, in a row or in groups joined by hyphens (090-1234-5678): a voucher
# number, a phone number. Dates and times (2026-12-07 10:30) have fewer digits per run.
_LONG_NUMBER = re.compile(r"\d(?:[-‐‑–—―ー]?\d){9,}")
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")

MESSAGE = _(
    "接種券番号・電話番号・メールアドレスのような、個人を特定できる情報は書かないでください"
    "（この文は監査記録に残り、あとから消せません）。"
)


def refuse_identifiers(text: str) -> None:
    """Raise ``ValidationError`` if ``text`` holds what looks like a personal identifier."""
    folded = unicodedata.normalize("NFKC", text)
    if _LONG_NUMBER.search(folded) or _EMAIL.search(folded):
        raise ValidationError(MESSAGE, code="identifier")
