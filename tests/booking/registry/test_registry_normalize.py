from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking.registry.errors import RegistryValueError
from booking.registry.normalize import (
    NormalizeError,
    Sex,
    normalize_address,
    normalize_address_number,
    normalize_dose,
    normalize_email,
    normalize_kana,
    normalize_name,
    normalize_phone,
    normalize_postal_code,
    normalize_sex,
    normalize_text,
    normalize_voucher_number,
)

# --- text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("１２３ＡＢＣａｂｃ", "123ABCabc"),
        ("ｶﾞｯｺｳ ﾊﾟﾝ", "ガッコウ パン"),
        ("　山田　　太郎　", "山田 太郎"),
        ("山田\t\n太郎", "山田 太郎"),
        ("山\u200b田", "山田"),
        ("\ufeff山田", "山田"),
        ("plain text", "plain text"),
        ("  two  spaces ", "two spaces"),
        ("", ""),
    ],
)
def test_normalize_text_folds_width_and_spaces(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


# --- 氏名 / 氏名カナ -----------------------------------------------------------------------


def test_a_name_keeps_its_cjk_compatibility_ideograph() -> None:
    # U+FA19 (神) would become U+795E under plain NFKC: the person's name would change.
    name = "\ufa19田　ｈａｎａ"
    assert normalize_name(name) == "\ufa19田 hana"
    assert normalize_name("\u795e田") == "\u795e田"


def test_a_name_with_a_user_defined_character_is_refused() -> None:
    with pytest.raises(NormalizeError, match="外字"):
        normalize_name("山\ue000太郎")


def test_a_name_with_a_control_character_is_refused() -> None:
    with pytest.raises(NormalizeError, match="制御文字"):
        normalize_name("山田\x07太郎")


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://evil.example","x")', "＝1+1", "@SUM(1+1)", "+81", "-山田"]
)
def test_a_name_a_spreadsheet_would_run_is_refused(name: str) -> None:
    """The name goes into the error file, reception's lists and the VRS file, all opened in
    Excel: one starting as a formula (full width too, folded first) is no one's name."""
    with pytest.raises(NormalizeError, match="記号"):
        normalize_name(name)


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(NormalizeError, match="空"):
        normalize_name("　 \u200b")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ヤマダ　タロウ", "ヤマダ タロウ"),
        ("やまだ たろう", "ヤマダ タロウ"),
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ"),
        ("ｻﾄｳ ﾕｰｷ", "サトウ ユーキ"),
        ("ゆーき", "ユーキ"),
        ("ユ-キ", "ユーキ"),
        ("ユ−キ", "ユーキ"),
        ("ゔぃおら", "ヴィオラ"),
        ("スミス・ジョン", "スミス・ジョン"),
        ("  ヤマダ    タロウ ", "ヤマダ タロウ"),
        ("いすゞ", "イスヾ"),
    ],
)
def test_kana_is_normalised_to_full_width_katakana(raw: str, expected: str) -> None:
    assert normalize_kana(raw) == expected


@pytest.mark.parametrize(
    "raw", ["山田 タロウ", "YAMADA TARO", "ヤマダ1", "-ヤマダ", "ﾞ", "ヤマダ\x00"]
)
def test_kana_with_anything_but_kana_is_refused(raw: str) -> None:
    with pytest.raises(NormalizeError, match="カタカナ"):
        normalize_kana(raw)


def test_empty_kana_is_refused() -> None:
    with pytest.raises(NormalizeError, match="空"):
        normalize_kana("　")


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("03-1234-5678", "0312345678"),
        ("090-1234-5678", "09012345678"),
        ("09012345678", "09012345678"),
        ("０９０－１２３４－５６７８", "09012345678"),
        ("０９０ー１２３４ー５６７８", "09012345678"),
        ("090ｰ1234ｰ5678", "09012345678"),
        ("090\u20101234\u20115678", "09012345678"),
        ("090\u20131234\u20145678", "09012345678"),
        ("090\u20151234\u22125678", "09012345678"),
        ("(03)1234-5678", "0312345678"),
        ("03 1234 5678", "0312345678"),
        ("+81 90-1234-5678", "09012345678"),
        ("0120-123-456", "0120123456"),
        ("0800-123-4567", "08001234567"),
        ("050-1234-5678", "05012345678"),
        ("0166-12-3456", "0166123456"),
    ],
)
def test_phone_numbers_lose_hyphens_and_width(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("090-1234-56", "9桁"),
        ("090-1234-56789", "12桁"),
        ("090-1234-567", "携帯電話・IP電話の番号は11桁"),
        ("050-123-4567", "携帯電話・IP電話の番号は11桁"),
        ("03-1234-56789", "固定電話の番号は市外局番から10桁"),
        ("0120-123-4567", "固定電話の番号は市外局番から10桁"),
        ("90-1234-5678", "0から始まる"),
        ("03-1234-567a", "数字"),
        ("", "空"),
    ],
)
def test_bad_phone_numbers_are_refused(raw: str, message: str) -> None:
    with pytest.raises(NormalizeError, match=message):
        normalize_phone(raw)


@pytest.mark.parametrize(
    "raw", ["160-0023", "1600023", "〒160-0023", "〒 160-0023", "１６０－００２３", "160ー0023"]
)
def test_postal_codes_become_seven_digits(raw: str) -> None:
    assert normalize_postal_code(raw) == "1600023"


@pytest.mark.parametrize(
    ("raw", "message"), [("160-002", "6桁"), ("160-00234", "8桁"), ("16O-0023", "数字")]
)
def test_bad_postal_codes_are_refused(raw: str, message: str) -> None:
    with pytest.raises(NormalizeError, match=message):
        normalize_postal_code(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0012345678", "0012345678"),
        ("0000000000", "0000000000"),
        ("００１２３４５６７８", "0012345678"),
        (" 0012345678 ", "0012345678"),
    ],
)
def test_voucher_numbers_keep_their_leading_zeros(raw: str, expected: str) -> None:
    assert normalize_voucher_number(raw) == expected


def test_a_nine_digit_voucher_number_hints_at_the_lost_zero() -> None:
    with pytest.raises(NormalizeError) as caught:
        normalize_voucher_number("012345678")
    assert "9桁" in caught.value.message
    assert "先頭の0" in caught.value.message


@pytest.mark.parametrize(
    "raw", ["12345678901", "12345-67890", "1.23457E+09", "abcdefghij", "１２３"]
)
def test_voucher_numbers_other_than_ten_digits_are_refused(raw: str) -> None:
    with pytest.raises(NormalizeError, match="接種券番号"):
        normalize_voucher_number(raw)


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", "1"), ("000123", "000123"), ("１２３", "123"), ("9" * 15, "9" * 15)]
)
def test_address_numbers_are_one_to_fifteen_digits(raw: str, expected: str) -> None:
    assert normalize_address_number(raw) == expected


@pytest.mark.parametrize("raw", ["9" * 16, "12-34", "A123", ""])
def test_bad_address_numbers_are_refused(raw: str) -> None:
    with pytest.raises(NormalizeError, match="宛名番号"):
        normalize_address_number(raw)


# --- 性別 / email / dose -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", Sex.MALE),
        ("１", Sex.MALE),
        ("男", Sex.MALE),
        ("男性", Sex.MALE),
        ("M", Sex.MALE),
        ("m", Sex.MALE),
        ("Ｍ", Sex.MALE),
        (" 男 ", Sex.MALE),
        ("2", Sex.FEMALE),
        ("女", Sex.FEMALE),
        ("女性", Sex.FEMALE),
        ("F", Sex.FEMALE),
        ("ｆ", Sex.FEMALE),
    ],
)
def test_sex_is_read_from_every_usual_form(raw: str, expected: Sex) -> None:
    assert normalize_sex(raw) is expected


def test_sex_codes_are_the_resident_register_codes() -> None:
    assert (Sex.MALE.value, Sex.FEMALE.value) == ("1", "2")
    assert (Sex.MALE.label, Sex.FEMALE.label) == ("男", "女")


@pytest.mark.parametrize("raw", ["0", "3", "9", "不明", "X", "男女"])
def test_unknown_sex_values_are_refused(raw: str) -> None:
    with pytest.raises(NormalizeError, match="性別"):
        normalize_sex(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("taro@example.jp", "taro@example.jp"),
        ("Taro.Yamada+vax@Example.CO.JP", "Taro.Yamada+vax@example.co.jp"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp"),
        # Old Japanese carrier addresses break RFC 5322 but are real.
        ("taro..yamada.@docomo.ne.jp", "taro..yamada.@docomo.ne.jp"),
        (" hanako_1@mail.example.org ", "hanako_1@mail.example.org"),
    ],
)
def test_reasonable_email_addresses_are_accepted(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "taro",
        "taro@",
        "@example.jp",
        "taro@example",
        "taro@@example.jp",
        "taro yamada@example.jp",
        "taro@-example.jp",
        "taro@example..jp",
        "a,b@example.jp",
        "taro@example.jp, hanako@example.jp",
        "山田@example.jp",
        "x" * 65 + "@example.jp",
    ],
)
def test_malformed_email_addresses_are_refused(raw: str) -> None:
    with pytest.raises(NormalizeError, match="メールアドレス"):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "expected"), [("3", 3), ("３", 3), ("3回目", 3), ("第2回", 2), ("1回", 1)]
)
def test_doses_are_read_as_numbers(raw: str, expected: int) -> None:
    assert normalize_dose(raw) == expected


@pytest.mark.parametrize("raw", ["0", "10", "追加", "3.5"])
def test_bad_doses_are_refused(raw: str) -> None:
    with pytest.raises(NormalizeError, match="接種回数"):
        normalize_dose(raw)


def test_addresses_get_ascii_hyphens_between_digits_only() -> None:
    assert normalize_address("東京都新宿区西新宿２ー８ー１　センター ビル") == (
        "東京都新宿区西新宿2-8-1 センター ビル"
    )
    assert normalize_address("前橋市大手町1丁目1‐1") == "前橋市大手町1丁目1-1"


# --- properties ----------------------------------------------------------------------------

NORMALIZERS: list[Callable[[str], object]] = [
    normalize_name,
    normalize_kana,
    normalize_phone,
    normalize_postal_code,
    normalize_voucher_number,
    normalize_address_number,
    normalize_sex,
    normalize_address,
    normalize_email,
    normalize_dose,
]


@pytest.mark.parametrize("normalizer", NORMALIZERS, ids=lambda function: function.__name__)
@given(text=st.text(max_size=60))
def test_normalizers_return_or_refuse_any_text(
    normalizer: Callable[[str], object], text: str
) -> None:
    try:
        normalizer(text)
    except NormalizeError as error:
        assert error.message
        assert isinstance(error, RegistryValueError)


IDEMPOTENT: list[Callable[[str], str]] = [
    normalize_text,
    normalize_name,
    normalize_kana,
    normalize_phone,
    normalize_postal_code,
    normalize_voucher_number,
    normalize_address,
    normalize_email,
]


@pytest.mark.parametrize("normalizer", IDEMPOTENT, ids=lambda function: function.__name__)
@given(text=st.text(max_size=40))
def test_normalising_a_normalised_value_changes_nothing(
    normalizer: Callable[[str], str], text: str
) -> None:
    try:
        once = normalizer(text)
    except NormalizeError:
        return
    assert normalizer(once) == once


@given(text=st.text(max_size=60))
def test_normalized_text_has_no_outer_or_double_spaces(text: str) -> None:
    result = normalize_text(text)
    assert result == result.strip()
    assert "  " not in result
    assert "\u3000" not in result


@given(
    kana=st.text(
        alphabet=st.characters(min_codepoint=0x3041, max_codepoint=0x3096), min_size=1, max_size=20
    )
)
def test_any_hiragana_becomes_katakana(kana: str) -> None:
    result = normalize_kana(kana)
    assert all("\u30a1" <= char <= "\u30fe" for char in result)
    assert len(result) <= len(kana)


@given(digits=st.from_regex(r"0[2-9]0[0-9]{8}|0[1-9][1-9][0-9]{7}|0120[0-9]{6}", fullmatch=True))
def test_any_number_the_numbering_plan_allows_is_a_phone_number(digits: str) -> None:
    hyphenated = f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    assert normalize_phone(hyphenated) == digits
    full_width = hyphenated.translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
    assert normalize_phone(full_width) == digits
