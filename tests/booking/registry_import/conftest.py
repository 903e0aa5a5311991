from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import RegistryImport
from booking.services.registry_import import (
    registry_import_apply,
    registry_import_confirm,
    registry_import_parse,
    registry_import_upload,
)
from tenants.models import Municipality

HEADER = "接種券番号,宛名番号,氏名,氏名カナ,生年月日,性別,郵便番号,住所,電話番号\r\n"
ACTOR = Actor.system("tests")


def csv_bytes(rows: list[str], *, encoding: str = "cp932", header: str = HEADER) -> bytes:
    return (header + "".join(row + "\r\n" for row in rows)).encode(encoding)


def row(
    voucher: str,
    *,
    name: str = "小平 花子",
    kana: str = "コダイラ ハナコ",
    birth: str = "昭和23年4月1日",
    phone: str = "090-1234-5678",
    address: str = "小平市小川町1-1",
) -> str:
    return f'{voucher},1234567,{name},{kana},{birth},2,187-0031,"{address}",{phone}'


@pytest.fixture
def tenant(tenant_a: Municipality, settings, tmp_path) -> Iterator[Municipality]:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    with tenant_context(tenant_a):
        yield tenant_a


def upload(
    data: bytes,
    *,
    full_list: bool = False,
    encoding: str = "",
    name: str = "list.csv",
    actor: Actor = ACTOR,
    source: str = RegistryImport.Source.COMMAND,
) -> RegistryImport:
    return registry_import_upload(
        stream=io.BytesIO(data),
        file_name=name,
        size=len(data),
        actor=actor,
        source=source,
        full_list=full_list,
        encoding=encoding,
        enqueue=False,
    )


def preview(data: bytes, **kwargs: object) -> RegistryImport:
    registry_import = upload(data, **kwargs)  # type: ignore[arg-type]
    registry_import_parse(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    return registry_import


def import_all(data: bytes, **kwargs: object) -> RegistryImport:
    registry_import = preview(data, **kwargs)
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False)
    registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    return registry_import
