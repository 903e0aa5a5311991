"""A full list withdraws what it does not name: confirmed only as previewed (another import
since makes the counts be taken again), never with no row to import, and with the number
acknowledged when it withdraws many."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from booking.models import RegistryImport, Voucher
from booking.services.registry_import import (
    WITHDRAWALS_NEVER_ASKED,
    RegistryImportRefused,
    registry_import_apply,
    registry_import_confirm,
    withdrawals_to_acknowledge,
)
from tenants.models import Municipality
from tests.booking.registry_import.conftest import (
    ACTOR,
    HEADER,
    csv_bytes,
    import_all,
    preview,
    row,
)
from tests.booking.registry_import.test_vouchers_import_command import run

TOWN = 100


def _numbers(first: int, count: int) -> list[str]:
    return [row(f"{number:010d}") for number in range(first, first + count)]


def _active() -> int:
    return Voucher.objects.filter(status=Voucher.Status.ACTIVE).count()


def _apply(registry_import: RegistryImport, **kwargs: int) -> RegistryImport:
    registry_import_confirm(registry_import=registry_import, actor=ACTOR, enqueue=False, **kwargs)
    registry_import_apply(registry_import_id=registry_import.pk)
    registry_import.refresh_from_db()
    return registry_import


def test_a_preview_made_before_another_import_is_counted_again_before_it_applies(
    tenant: Municipality,
) -> None:
    import_all(csv_bytes(_numbers(1, TOWN)))
    older = preview(csv_bytes(_numbers(1, 98)), full_list=True)
    assert older.counts["withdrawn"] == 2
    import_all(csv_bytes(_numbers(1001, 2)))  # two new vouchers, after that preview
    with pytest.raises(RegistryImportRefused, match="件数を計算し直しました"):
        registry_import_confirm(registry_import=older, actor=ACTOR, enqueue=False)
    older.refresh_from_db()
    assert older.counts["withdrawn"] == 4 and older.confirmed_at is None
    assert _active() == TOWN + 2  # nothing withdrawn yet
    done = _apply(older)  # read, then confirmed again: as now shown
    assert done.counts["withdrawn"] == 4 and _active() == 98


def test_a_preview_is_not_confirmed_while_another_import_applies(tenant: Municipality) -> None:
    import_all(csv_bytes(_numbers(1, 3)))
    applying = preview(csv_bytes(_numbers(10, 2)))
    registry_import_confirm(registry_import=applying, actor=ACTOR, enqueue=False)
    waiting = preview(csv_bytes(_numbers(1, 3)), full_list=True)
    with pytest.raises(RegistryImportRefused, match="別の取込を実行中です"):
        registry_import_confirm(registry_import=waiting, actor=ACTOR, enqueue=False)


def test_a_full_list_with_no_row_to_import_withdraws_nothing(tenant: Municipality) -> None:
    import_all(csv_bytes(_numbers(1, 3)))
    header_alone = HEADER.removesuffix("\r\n").encode("cp932")  # saved with no line break
    for data in (csv_bytes([]), header_alone, csv_bytes([row("0000000009", birth="2月30日")])):
        empty = preview(data, full_list=True)  # empty, the header alone, or nothing valid
        assert empty.status == "previewed" and empty.rows_total <= 1
        assert empty.counts["withdrawn"] == 3
        with pytest.raises(RegistryImportRefused, match="取り込める行が1件もない"):
            registry_import_confirm(registry_import=empty, actor=ACTOR, enqueue=False)
    assert _active() == 3


def test_withdrawing_many_needs_their_number_acknowledged(tenant: Municipality) -> None:
    import_all(csv_bytes(_numbers(1, TOWN * 10)))
    few = preview(csv_bytes(_numbers(1, TOWN * 10 - WITHDRAWALS_NEVER_ASKED)), full_list=True)
    assert withdrawals_to_acknowledge(few) == 0  # 2 %: residents who moved out
    few.status = RegistryImport.Status.CANCELLED
    few.save()
    cut_short = preview(csv_bytes(_numbers(1, 600)), full_list=True)
    assert withdrawals_to_acknowledge(cut_short) == 400
    for acknowledged in (0, 399):
        with pytest.raises(RegistryImportRefused, match="400件と多いため"):
            registry_import_confirm(
                registry_import=cut_short,
                actor=ACTOR,
                enqueue=False,
                withdrawals_acknowledged=acknowledged,
            )
    assert _active() == TOWN * 10
    assert _apply(cut_short, withdrawals_acknowledged=400).counts["withdrawn"] == 400


def test_the_command_stops_before_withdrawing_many_and_says_how_to_go_on(
    tenant: Municipality, tmp_path
) -> None:
    import_all(csv_bytes(_numbers(1, TOWN)))
    path = tmp_path / "short.csv"
    path.write_bytes(csv_bytes(_numbers(1, 50)))
    with pytest.raises(CommandError, match="--confirm-withdrawals 50") as stopped:
        run(tenant, str(path), "--full-list")
    assert "チェック" not in str(stopped.value)  # the screen's words, not the command's
    with pytest.raises(CommandError, match="--confirm-withdrawals 5 does not match"):
        run(tenant, str(path), "--full-list", "--confirm-withdrawals", "5")
    assert _active() == TOWN
    assert RegistryImport.objects.order_by("pk").last().status == RegistryImport.Status.CANCELLED
    run(tenant, str(path), "--full-list", "--confirm-withdrawals", "50")
    assert _active() == 50


def test_a_small_municipality_is_asked_when_most_of_its_vouchers_would_go(
    tenant: Municipality,
) -> None:
    import_all(csv_bytes(_numbers(1, 9)))
    one_row = preview(csv_bytes(_numbers(1, 1)), full_list=True)
    assert withdrawals_to_acknowledge(one_row) == 8  # 8 of 9, though fewer than 20
    one_row.status = RegistryImport.Status.CANCELLED
    one_row.save()
    two_gone = preview(csv_bytes(_numbers(1, 7)), full_list=True)
    assert withdrawals_to_acknowledge(two_gone) == 0  # a few, and not most


def test_a_row_refused_whole_still_names_its_voucher_for_a_full_list_and_for_duplicates(
    tenant: Municipality,
) -> None:
    """A row with a broken byte or a wrong number of cells is refused, but it still names a
    voucher: a full list does not withdraw that voucher (its resident is in the file), and
    a second row of its number makes both duplicates."""
    import_all(csv_bytes(_numbers(1, 10)))
    rows = _numbers(1, 10)
    data = bytearray(csv_bytes(rows))
    name = "小平 花子".encode("cp932")
    third = data.index(b"0000000003")
    at = data.index(name, third)
    data[at : at + 2] = b"\x8f\x20"  # voucher 3: a character cut in two
    short = b"0000000005,1234567\r\n"  # voucher 5 again, cut short
    registry_import = preview(bytes(data) + short, full_list=True)
    counts = registry_import.counts
    assert counts["withdrawn"] == 0  # both residents are in the file
    numbers = dict(registry_import.errors.values_list("line_number", "voucher_number"))
    assert numbers[4] == "0000000003" and numbers[12] == "0000000005"
    duplicates = registry_import.errors.filter(message__startswith="同じ接種券番号")
    assert sorted(duplicates.values_list("line_number", flat=True)) == [6, 12]
    done = _apply(registry_import)
    assert done.counts["withdrawn"] == 0 and _active() == 10
