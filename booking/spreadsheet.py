"""Cells for CSV files a municipality opens in a spreadsheet."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# A cell that starts like a formula is run by a spreadsheet (CSV injection): published lists,
# reports and the trail are opened in Excel, and some of their cells hold what a resident
# typed (a voucher number tried at login, a memo), so such text is prefixed with an
# apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def starts_as_formula(text: str) -> bool:
    """Whether a spreadsheet would take ``text`` for a formula (a number aside)."""
    return text.startswith(_FORMULA_START) and not _is_number(text)


def safe_cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs (a negative number
    stays a number)."""
    text = "" if value is None else str(value)
    return "'" + text if starts_as_formula(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def refuse_formula_start(value: str) -> None:
    """A form field's validator for names that go into files staff open in a spreadsheet
    as they are (the VRS file: a venue's, a vaccine's, its maker's): refused, not changed."""
    if starts_as_formula(str(value).strip()):
        raise ValidationError(
            _("「=」「+」「-」「@」で始めずに入力してください。"), code="formula_start"
        )
