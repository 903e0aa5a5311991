"""The registry's columns: internal field names, Japanese labels and accepted headers."""

from __future__ import annotations

import unicodedata

# Internal field name -> the Japanese column name used in messages (in file order).
FIELD_LABELS: dict[str, str] = {
    "voucher_number": "接種券番号",
    "address_number": "宛名番号",
    "name": "氏名",
    "name_kana": "氏名カナ",
    "birth_date": "生年月日",
    "sex": "性別",
    "postal_code": "郵便番号",
    "address": "住所",
    "phone": "電話番号",
    "email": "メールアドレス",
    "dose": "接種回数",
}

REQUIRED_FIELDS: tuple[str, ...] = ("voucher_number", "name", "name_kana", "birth_date")
# The optional columns that tell who a caller is (the call centre's identity check).
IDENTITY_COLUMNS: tuple[str, ...] = ("address", "phone", "postal_code")

# Header texts in their normalised form (see normalize_header) -> field. The first entry of
# each field is its canonical Japanese header; the rest are variants seen in municipal files
# and the English aliases.
_ALIASES: dict[str, tuple[str, ...]] = {
    "voucher_number": ("接種券番号", "券番号", "voucher_number", "voucher_no", "vouchernumber"),
    "address_number": ("宛名番号", "address_number", "addressnumber"),
    "name": ("氏名", "氏名(漢字)", "漢字氏名", "名前", "name"),
    "name_kana": (
        "氏名カナ",
        "氏名(カナ)",
        "カナ氏名",
        "氏名フリガナ",
        "フリガナ",
        "ふりがな",
        "カナ",
        "name_kana",
        "namekana",
        "kana",
    ),
    "birth_date": ("生年月日", "birth_date", "birthdate", "date_of_birth"),
    "sex": ("性別", "sex", "gender"),
    "postal_code": ("郵便番号", "〒", "postal_code", "postalcode", "zip", "zipcode", "postcode"),
    "address": ("住所", "address"),
    "phone": ("電話番号", "電話", "phone", "phone_number", "tel"),
    "email": ("メールアドレス", "メール", "eメール", "email", "e_mail", "mail"),
    "dose": ("接種回数", "券種", "接種回数/券種", "回数", "dose"),
}

HEADER_ALIASES: dict[str, str] = {
    alias: field for field, aliases in _ALIASES.items() for alias in aliases
}

_HEADER_MARKS = str.maketrans({"※": None, "*": None, "\ufeff": None, "-": "_"})
_HEADER_SUFFIXES = ("(必須)", "(任意)")


def normalize_header(cell: str) -> str:
    """Fold a header cell to the form the alias table uses.

    NFKC (full-width to half-width), every space removed, English lower-cased, required/optional
    marks dropped: ``"※ 接種券 番号（必須）"`` and ``"Voucher-Number"`` both match.
    """
    text = "".join(unicodedata.normalize("NFKC", cell).split()).translate(_HEADER_MARKS)
    for suffix in _HEADER_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    return text.lower()


def field_for_label(text: str) -> str | None:
    """The field a saved mapping names, whether by field name or by Japanese label."""
    if text in FIELD_LABELS:
        return text
    return HEADER_ALIASES.get(normalize_header(text))
