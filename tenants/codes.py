"""全国地方公共団体コード: the six-digit code of a Japanese local government (JIS X 0402).

Five digits (two for the prefecture, three for the municipality) and a mod-11 check digit.
Validating it is what would have stopped municipality "000000" at the 2021
mass-vaccination centre.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_WEIGHTS = (6, 5, 4, 3, 2)
REFERENCE_CSV = Path(__file__).parent / "data" / "municipalities.csv"


def check_digit(first_five: str) -> int:
    remainder = sum(int(d) * w for d, w in zip(first_five, _WEIGHTS, strict=True)) % 11
    return (11 - remainder) % 10


def code_problem(code: str) -> str | None:
    """Return why ``code`` is not a municipality code, in the user's language, or None."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return _("市区町村コードは6桁の数字で入力してください。")
    prefecture = int(code[:2])
    if not 1 <= prefecture <= 47:
        return _("市区町村コードの先頭2桁（都道府県コード）は01〜47です。")
    if int(code[5]) != check_digit(code[:5]):
        return _("市区町村コードの検査数字（6桁目）が正しくありません。")
    return None


def validate_municipality_code(code: str) -> None:
    problem = code_problem(code)
    if problem:
        raise ValidationError(problem, code="invalid_municipality_code")


@dataclass(frozen=True, slots=True)
class ReferenceMunicipality:
    code: str
    prefecture: str
    name: str
    name_kana: str
    url: str


@cache
def reference_municipalities() -> dict[str, ReferenceMunicipality]:
    """All 1,741 municipalities (CC0, derived from code4fukui/localgovjp), by code."""
    with REFERENCE_CSV.open(encoding="utf-8", newline="") as handle:
        return {
            row["code"]: ReferenceMunicipality(
                code=row["code"],
                prefecture=row["prefecture"],
                name=row["name"],
                name_kana=row["name_kana"],
                url=row["url"],
            )
            for row in csv.DictReader(handle)
        }


def schema_name_for(code: str) -> str:
    return f"m{code}"
