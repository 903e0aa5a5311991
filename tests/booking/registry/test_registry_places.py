"""Which municipality an address names: another municipality's file is told by its rows."""

from __future__ import annotations

import pytest

from booking.registry.places import PlaceReader

KODAIRA = PlaceReader("東京都", "小平市")


@pytest.mark.parametrize(
    ("address", "named"),
    [
        ("東京都小平市小川町1-1", None),
        ("小平市小川町１丁目１", None),
        ("東京都 小平市 小川町1-1", None),
        # The street alone names no municipality: 小川町 is also a town of Saitama.
        ("小川町1-1", None),
        ("", None),
        (None, None),
        ("北海道旭川市4条通8丁目", "北海道旭川市"),
        ("旭川市4条通8丁目", "旭川市"),
        ("東京都立川市曙町2-1", "東京都立川市"),
        ("立川市曙町2-1", "東京都立川市"),
        ("東京都西多摩郡瑞穂町箱根ケ崎2335", "東京都瑞穂町"),
        ("群馬県どこか1-1", "群馬県"),
        # This municipality's name under another prefecture is another place all the same.
        ("北海道小平市1-1", "北海道小平市"),
    ],
)
def test_an_address_names_the_municipality_it_starts_with(
    address: str | None, named: str | None
) -> None:
    assert KODAIRA.elsewhere(address) == named


def test_a_designated_citys_wards_and_a_districts_towns_are_its_own() -> None:
    assert PlaceReader("神奈川県", "横浜市").elsewhere("神奈川県横浜市中区日本大通1") is None
    assert PlaceReader("神奈川県", "横浜市").elsewhere("横浜市中区日本大通1") is None
    yoshioka = PlaceReader("群馬県", "吉岡町")
    assert yoshioka.elsewhere("群馬県北群馬郡吉岡町大字下野田560") is None
    assert yoshioka.elsewhere("北群馬郡吉岡町大字下野田560") is None
    assert yoshioka.elsewhere("群馬県前橋市大手町1-1") == "群馬県前橋市"
