"""Normalise and validate single registry values.

Every function takes the raw cell text, returns the normalised value and raises
:class:`NormalizeError` (with a Japanese message) when the value cannot be accepted. They are
called once per cell of a registry that may have a million rows, so the common case (a short,
already clean value) takes a fast path.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from booking.registry.errors import RegistryValueError


class NormalizeError(RegistryValueError):
    """A value that cannot be normalised into a valid field."""


class Sex(StrEnum):
    """性別 as the resident register codes it (住民基本台帳: 1 男, 2 女)."""

    MALE = "1"
    FEMALE = "2"

    @property
    def label(self) -> str:
        return "男" if self is Sex.MALE else "女"


# Characters that stand for a hyphen in phone numbers, postal codes and dates: ASCII hyphen,
# the Unicode dashes, the minus sign, and the katakana long vowel mark that IMEs produce when
# a resident types "-" in kana mode (ｰ is folded to ー by NFKC).
HYPHENS = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe63\uff0d\u30fc\uff70"
_HYPHEN_CLASS = "[" + re.escape(HYPHENS) + "]"

# Invisible characters pasted from web pages and Word; removed rather than refused.
_INVISIBLE_CHARS = "\u200b\u200c\u200d\u2060\ufeff"
# What a spreadsheet takes for the start of a formula (booking.spreadsheet): the name goes
# into the error file, the reception lists and the VRS file, all opened in Excel.
_FORMULA_START = "=+-@"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Private-use code points: CP932 user-defined characters (外字) decode to these.
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_UNACCEPTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ue000-\uf8ff]")
# CJK compatibility ideographs: NFKC would replace them with their unified forms, which changes
# how a person's name is written (U+FA19 -> U+795E, both 神), so names keep them as written.
_CJK_COMPAT = re.compile("([\uf900-\ufaff\U0002f800-\U0002fa1f])")

_NUMBER_JUNK = re.compile(r"[\s()" + re.escape(HYPHENS) + _INVISIBLE_CHARS + "]")
_DIGITS = re.compile(r"[0-9]+")


def normalize_text(value: str) -> str:
    """Invisible characters removed, NFKC, every run of spaces (full-width too) folded to one
    ASCII space, and stripped. Never raises."""
    if value.isascii():
        text = value
    else:
        if _INVISIBLE.search(value):
            value = _INVISIBLE.sub("", value)
        text = unicodedata.normalize("NFKC", value)
    if text and (text[0].isspace() or text[-1].isspace() or "  " in text or not text.isprintable()):
        text = " ".join(text.split())
    return text


def _nfkc_keeping_compat_ideographs(value: str) -> str:
    if not _CJK_COMPAT.search(value):
        return unicodedata.normalize("NFKC", value)
    # Odd indexes of the split are the compatibility ideographs themselves.
    parts = _CJK_COMPAT.split(value)
    return "".join(
        part if index % 2 else unicodedata.normalize("NFKC", part)
        for index, part in enumerate(parts)
    )


def _check_characters(text: str, label: str) -> None:
    if not _UNACCEPTABLE.search(text):
        return
    if _CONTROL.search(text):
        raise NormalizeError(f"{label}に使用できない文字（制御文字）が含まれています")
    if _PRIVATE_USE.search(text):
        raise NormalizeError(
            f"{label}に外字（機種依存の文字）が含まれています。標準の文字に置き換えてください"
        )


def normalize_name(value: str, *, max_length: int = 100) -> str:
    """氏名: width and spaces normalised, CJK compatibility ideographs kept as written."""
    if value.isascii():
        text = value
    else:
        if _INVISIBLE.search(value):
            value = _INVISIBLE.sub("", value)
        text = _nfkc_keeping_compat_ideographs(value)
    text = " ".join(text.split())
    if not text:
        raise NormalizeError("氏名が空です")
    if text[0] in _FORMULA_START:  # no name starts so; a spreadsheet would run it
        raise NormalizeError("氏名が記号（=、+、-、@）で始まっています")
    _check_characters(text, "氏名")
    if len(text) > max_length:
        raise NormalizeError(f"氏名が長すぎます（{max_length}文字まで）")
    return text


_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in range(0x3041, 0x3097)} | {
    0x309D: 0x30FD,  # ゝ -> ヽ
    0x309E: 0x30FE,  # ゞ -> ヾ
}
# Katakana letters, ・ (foreign names), ー, ヽ ヾ, and single spaces between words.
_KATAKANA_NAME = re.compile(r"[\u30a1-\u30fe]+(?: [\u30a1-\u30fe]+)*")
# A hyphen typed after a kana letter is a long vowel mark: "ユ-キ" -> "ユーキ".
_HYPHEN_AFTER_KANA = re.compile(
    r"(?<=[\u30a1-\u30fa\u30fc])[-\u2010\u2011\u2012\u2013\u2014\u2015\u2212]"
)


def normalize_kana(value: str, *, max_length: int = 100) -> str:
    """氏名カナ: full-width katakana only (half-width katakana and hiragana are converted,
    ー is kept)."""
    text = unicodedata.normalize("NFKC", value)
    if not _KATAKANA_NAME.fullmatch(text):
        text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", value))
        text = text.translate(_HIRAGANA_TO_KATAKANA)
        text = _HYPHEN_AFTER_KANA.sub("ー", " ".join(text.split()))
        if not text:
            raise NormalizeError("氏名カナが空です")
        if not _KATAKANA_NAME.fullmatch(text):
            raise NormalizeError(
                "氏名カナはカタカナで入力してください（ひらがなは自動で変換します）"
            )
    if len(text) > max_length:
        raise NormalizeError(f"氏名カナが長すぎます（{max_length}文字まで）")
    return text


def _digits_only(value: str) -> str:
    """NFKC, then hyphens, spaces and brackets removed: what is left of a number."""
    if value.isascii():
        value = value.replace("-", "")
        if value.isdigit():
            return value
    else:
        value = unicodedata.normalize("NFKC", _INVISIBLE.sub("", value))
    return _NUMBER_JUNK.sub("", value)


def normalize_phone(value: str) -> str:
    """電話番号: 10 or 11 digits starting with 0, as the numbering plan wants for the prefix;
    hyphens, spaces and brackets removed, +81 turned into 0."""
    digits = _digits_only(value)
    if digits.startswith("+81"):
        digits = "0" + digits[3:]
    if not digits:
        raise NormalizeError("電話番号が空です")
    if not _DIGITS.fullmatch(digits):
        raise NormalizeError("電話番号は数字とハイフンで入力してください")
    if not digits.startswith("0"):
        raise NormalizeError("電話番号は0から始まる番号で入力してください（市外局番から）")
    if len(digits) not in (10, 11):
        raise NormalizeError(f"電話番号は10桁または11桁です（{len(digits)}桁になっています）")
    # The numbering plan fixes the length: 0X0 numbers (X = 2..9: mobile 070/080/090, IP 050,
    # 020, 0800) have 11 digits; fixed lines and 0120/0570/0990 have 10.
    if digits[2] == "0" and digits[1] != "1" and digits[1] != "0":
        if len(digits) != 11:
            raise NormalizeError(
                f"携帯電話・IP電話の番号は11桁です（{len(digits)}桁になっています）"
            )
    elif len(digits) != 10:
        raise NormalizeError(
            f"固定電話の番号は市外局番から10桁です（{len(digits)}桁になっています）"
        )
    return digits


def normalize_postal_code(value: str) -> str:
    """郵便番号: 7 digits, 〒 and hyphens removed (``"〒160-0023"`` -> ``"1600023"``)."""
    digits = _digits_only(value).removeprefix("〒")
    if not digits:
        raise NormalizeError("郵便番号が空です")
    if not _DIGITS.fullmatch(digits):
        raise NormalizeError("郵便番号は数字7桁で入力してください")
    if len(digits) != 7:
        raise NormalizeError(f"郵便番号は7桁です（{len(digits)}桁になっています）")
    return digits


def normalize_voucher_number(value: str) -> str:
    """接種券番号: exactly 10 digits. Leading zeros are part of the number and are never
    stripped; a 9-digit value usually means a spreadsheet dropped one."""
    text = value if value.isascii() else normalize_text(value)
    text = text.strip()
    if len(text) == 10 and text.isascii() and text.isdigit():
        return text
    if not text:
        raise NormalizeError("接種券番号が空です")
    if not (text.isascii() and text.isdigit()):
        raise NormalizeError("接種券番号は数字10桁で入力してください")
    if len(text) < 10:
        raise NormalizeError(
            f"接種券番号は10桁です（{len(text)}桁になっています。"
            "表計算ソフトで先頭の0が消えていないか確認してください）"
        )
    raise NormalizeError(f"接種券番号は10桁です（{len(text)}桁になっています）")


def normalize_address_number(value: str) -> str:
    """宛名番号: 1 to 15 digits, kept as written (leading zeros included)."""
    text = value if value.isascii() else normalize_text(value)
    text = text.strip()
    if not text:
        raise NormalizeError("宛名番号が空です")
    if not (text.isascii() and text.isdigit()):
        raise NormalizeError("宛名番号は数字で入力してください")
    if len(text) > 15:
        raise NormalizeError(f"宛名番号は15桁までです（{len(text)}桁になっています）")
    return text


_SEX_CODES: dict[str, Sex] = {
    "1": Sex.MALE,
    "男": Sex.MALE,
    "男性": Sex.MALE,
    "M": Sex.MALE,
    "MALE": Sex.MALE,
    "2": Sex.FEMALE,
    "女": Sex.FEMALE,
    "女性": Sex.FEMALE,
    "F": Sex.FEMALE,
    "FEMALE": Sex.FEMALE,
}


def normalize_sex(value: str) -> Sex:
    """性別: 1/2, 男/女, 男性/女性, M/F (any width or case) -> :class:`Sex`."""
    code = _SEX_CODES.get(value)
    if code is None:
        code = _SEX_CODES.get(normalize_text(value).upper())
    if code is None:
        raise NormalizeError("性別は 1（男）・2（女）・男・女・M・F のいずれかで入力してください")
    return code


_ADDRESS_HYPHEN = re.compile(r"(?<=[0-9])" + _HYPHEN_CLASS + r"(?=[0-9])")


def normalize_address(value: str, *, max_length: int = 200) -> str:
    """住所: text normalised, a dash between two digits made an ASCII hyphen (2ー3 -> 2-3)."""
    text = normalize_text(value)
    if not text.isascii():
        text = _ADDRESS_HYPHEN.sub("-", text)
    if not text:
        raise NormalizeError("住所が空です")
    _check_characters(text, "住所")
    if len(text) > max_length:
        raise NormalizeError(f"住所が長すぎます（{max_length}文字まで）")
    return text


# Local part: lenient on purpose. Japanese carriers long allowed addresses such as
# "taro..yamada.@docomo.ne.jp" that RFC 5322 forbids, and residents still use them.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
    r"@(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def normalize_email(value: str) -> str:
    """メールアドレス: one address, local@domain with a dotted domain; the domain is
    lower-cased, the local part kept as written."""
    text = normalize_text(value)
    if not text:
        raise NormalizeError("メールアドレスが空です")
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise NormalizeError("メールアドレスの形式が正しくありません")
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


_DOSE = re.compile(r"第?([0-9]{1,2})回?目?")
_DOSE_DIGITS = {str(dose): dose for dose in range(1, 10)}


def normalize_dose(value: str) -> int:
    """接種回数/券種: 1-9, also written 1回目 or 第1回."""
    dose = _DOSE_DIGITS.get(value)
    if dose is not None:
        return dose
    match = _DOSE.fullmatch(normalize_text(value).replace(" ", ""))
    if match is None or not 1 <= int(match.group(1)) <= 9:
        raise NormalizeError("接種回数は1〜9の数字で入力してください")
    return int(match.group(1))
