from __future__ import annotations

import csv

import pytest
from django.core.exceptions import ValidationError

from tenants.codes import (
    REFERENCE_CSV,
    code_problem,
    reference_municipalities,
    validate_municipality_code,
)


def test_every_municipality_in_the_national_list_passes() -> None:
    with REFERENCE_CSV.open(encoding="utf-8") as handle:
        codes = [row["code"] for row in csv.DictReader(handle)]
    assert len(codes) == 1741
    assert [code for code in codes if code_problem(code)] == []
    assert reference_municipalities()["132110"].name == "小平市"


@pytest.mark.parametrize("code", ["000000", "132111", "13211", "1321100", "１３２１１０", "99999x"])
def test_it_refuses_codes_that_are_not_municipality_codes(code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_municipality_code(code)
    assert "市区町村コード" in caught.value.messages[0]


def test_it_explains_a_wrong_check_digit() -> None:
    assert code_problem("132112") == "市区町村コードの検査数字（6桁目）が正しくありません。"


def test_every_wrong_check_digit_of_a_real_code_is_refused() -> None:
    wrong = [f"13211{d}" for d in range(10) if d != 0]
    assert all(code_problem(code) for code in wrong)
    assert code_problem("132110") is None
