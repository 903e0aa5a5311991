"""A municipality whose files name the columns differently saves its header texts once;
every later import reads its files with them."""

from __future__ import annotations

import pytest

from audit.models import Event
from booking.models import RegistryImport, Voucher
from booking.services.registry_mapping import (
    RegistryColumnMappingInvalid,
    registry_column_mapping_get,
    registry_column_mapping_save,
)
from tests.booking.registry_import.conftest import ACTOR, import_all, preview, row

OWN_HEADER = "接種券No,宛名番号,漢字氏名,カナ氏名,誕生日,性別,郵便番号,住所,電話番号\r\n"


def own_file(*rows: str) -> bytes:
    return (OWN_HEADER + "".join(r + "\r\n" for r in rows)).encode("cp932")


def test_without_a_mapping_the_municipalitys_own_headers_are_refused(tenant) -> None:
    registry_import = preview(own_file(row("0000000001")))
    assert registry_import.status == RegistryImport.Status.FAILED
    assert "必須の列が見つかりません" in registry_import.message


def test_a_saved_mapping_is_used_by_every_later_import(tenant) -> None:
    saved = registry_column_mapping_save(
        headers={"voucher_number": " 接種券No ", "birth_date": "誕生日", "phone": ""},
        actor=ACTOR,
    )
    assert saved == {"voucher_number": "接種券No", "birth_date": "誕生日"}
    assert registry_column_mapping_get() == saved
    registry_import = import_all(own_file(row("0000000001"), row("0000000002")))
    assert registry_import.status == RegistryImport.Status.DONE
    assert registry_import.column_mapping == {"接種券No": "voucher_number", "誕生日": "birth_date"}
    assert Voucher.objects.count() == 2
    (event,) = Event.objects.filter(action="registry_import.mapping_saved")
    assert event.details == {"fields": ["birth_date", "voucher_number"]}


@pytest.mark.parametrize(
    ("headers", "field", "message"),
    [
        ({"voucher": "券番号"}, "", "不明な項目があります（voucher）"),
        ({"name": "氏名", "name_kana": " 氏名 "}, "name_kana", "「氏名」と同じ見出しです"),
        ({"name": "ＮＡＭＥ", "name_kana": "name"}, "name_kana", "「氏名」と同じ見出しです"),
        ({"address": "住" * 41}, "address", "40文字以内"),
        ({"address": "※"}, "address", "読み取れる文字がありません"),
    ],
)
def test_a_mapping_that_cannot_be_read_is_refused_in_japanese(
    tenant, headers: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(RegistryColumnMappingInvalid) as refused:
        registry_column_mapping_save(headers=headers, actor=ACTOR)
    assert message in " ".join(refused.value.errors[field])
    assert registry_column_mapping_get() == {}
    assert not Event.objects.filter(action="registry_import.mapping_saved").exists()


def test_a_mapping_does_not_refuse_a_file_with_the_standard_headers(tenant) -> None:
    """Saved for one system's files (誕生日), it leaves a standard file (生年月日) readable;
    a file with neither says which headers it read and where a mapping is set."""
    registry_column_mapping_save(headers={"birth_date": "誕生日"}, actor=ACTOR)
    standard = import_all(
        ("接種券番号,氏名,氏名カナ,生年月日\r\n" + row("0000000001") + "\r\n").encode("cp932")
    )
    assert standard.status == RegistryImport.Status.DONE
    neither = preview(
        "接種券番号,氏名,氏名カナ,生まれ\r\n0000000002,東 一,アズマ ハジメ,S24.4.1\r\n".encode(
            "cp932"
        )
    )
    assert neither.status == RegistryImport.Status.FAILED
    assert (
        "見出しとして読んだ行の列：「接種券番号」、「氏名」、「氏名カナ」、「生まれ」"
        in neither.message
    )
    assert "「列の対応付け」" in neither.message
