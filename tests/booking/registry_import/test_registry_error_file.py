"""The error file is written and served a segment at a time: a file whose every row is
invalid makes an error file as large as itself, and nobody holds it whole. What comes out is
the same as ever: the invalid rows as sent, in the file's encoding, with what is wrong. The
activation codes file is written the same way, a batch of vouchers at a time."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import translation

from audit.models import Event
from booking.models import RegistryImport, RegistryImportCodes, Voucher
from booking.services.bulk_reads import voucher_ranges_expand
from booking.services.registry_import import (
    RegistryImportRefused,
    activation_code_hash,
    registry_import_codes_file,
    registry_import_error_file,
)
from booking.services.registry_import import apply as apply_module
from booking.services.registry_import import codes as codes_module
from booking.services.registry_import import error_file as error_file_module
from tenants.crypto import DecryptionFailed, cipher_for
from tenants.db import current_municipality
from tests.booking.registry_import.conftest import (
    ACTOR,
    HEADER,
    csv_bytes,
    import_all,
    preview,
    row,
)

BAD = "昭和23年2月30日"


def _downloaded(registry_import: RegistryImport, encoding: str = "cp932") -> list[list[str]]:
    _name, content = registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    return list(csv.reader(io.StringIO(b"".join(content).decode(encoding), newline="")))


def _segments_stored(registry_import: RegistryImport) -> int:
    with default_storage.open(registry_import.error_file, "rb") as stream:
        return sum(
            1
            for _segment in cipher_for(current_municipality()).open_segments(
                stream,
                table="registry_error_file",
                column="content",
                row_id=str(registry_import.pk),
            )
        )


def test_an_error_file_of_many_segments_holds_every_invalid_row_in_order(
    tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(error_file_module, "SEGMENT_BYTES", 300)
    monkeypatch.setattr(error_file_module, "_LINES_PER_QUERY", 3)  # many windows of lines
    rows = [
        row(f"{n:010d}", birth=BAD if n % 3 else "昭和23年4月1日", address=f"小平市,\n{n}番")
        for n in range(1, 41)
    ]
    invalid = [n for n in range(1, 41) if n % 3]
    registry_import = preview(csv_bytes(rows))
    assert registry_import.counts["invalid"] == len(invalid) == 27
    assert _segments_stored(registry_import) > 5
    got = _downloaded(registry_import)
    assert got[0][-1] == "エラー内容" and got[0][0] == "接種券番号"
    assert [line[0] for line in got[1:]] == [f"{n:010d}" for n in invalid]
    assert all(line[7] == f"小平市,\n{n}番" for line, n in zip(got[1:], invalid, strict=True))
    assert all("存在しない日付です（その月にない日です）" in line[-1] for line in got[1:])


def test_a_short_row_s_error_stands_under_the_error_column(tenant) -> None:
    """A row cut short (four cells of nine) is padded in the error file: what is wrong
    stands under エラー内容, not under a column of the municipality's."""
    registry_import = preview(
        csv_bytes([row("0000000001"), "0000000002,1234567,小平 太郎,コダイラ タロウ"])
    )
    got = _downloaded(registry_import)
    assert len(got[1]) == len(got[0]) and got[1][:4] == [
        "0000000002",
        "1234567",
        "小平 太郎",
        "コダイラ タロウ",
    ]
    assert got[1][4:-1] == [""] * (len(got[0]) - 5) and got[1][-1]


def test_a_long_row_s_error_stands_under_the_error_column_too(tenant) -> None:
    """A row with cells past the header's: its error stands under エラー内容 and the extra
    cells follow it, kept as sent."""
    long_row = row("0000000002") + ",余分な値,もう一つ"
    got = _downloaded(preview(csv_bytes([row("0000000001"), long_row])))
    width = len(got[0])
    assert got[0][-1] == "エラー内容"
    assert got[1][0] == "0000000002" and "列の数が見出しより多く" in got[1][width - 1]
    assert got[1][width:] == ["余分な値", "もう一つ"]


@pytest.mark.parametrize("chunk_bytes", [200, 333, 512])
def test_an_invalid_row_that_starts_a_chunk_is_in_the_error_file(
    tenant, settings, chunk_bytes
) -> None:
    """Chunks end on a record's newline: the line after it is the next chunk's first, and
    its row (invalid or not) is read there, not lost between the two."""
    settings.SESSHU_REGISTRY_CHUNK_BYTES = chunk_bytes  # a row or two per chunk
    rows = [
        row(f"{n:010d}", birth=BAD if n % 2 else "昭和23年4月1日", address=f"小平市{n}番")
        for n in range(1, 31)
    ]
    rows[6] = row("0000000007", birth=BAD, address="小平市,\n7番")  # a quoted line break
    invalid = [n for n in range(1, 31) if n % 2]
    registry_import = preview(csv_bytes(rows))
    got = _downloaded(registry_import)
    assert [line[0] for line in got[1:]] == [f"{n:010d}" for n in invalid]
    assert registry_import.counts["invalid"] == len(invalid)


def test_a_row_with_several_errors_and_a_duplicate_lists_them_all(
    tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(error_file_module, "_LINES_PER_QUERY", 1)
    registry_import = preview(
        csv_bytes([row("0000000001", birth=BAD, phone="12"), row("0000000001"), row("2")])
    )
    got = _downloaded(registry_import)
    assert [line[0] for line in got[1:]] == ["0000000001", "0000000001", "2"]
    first = got[1][-1].split(" / ")
    assert len(first) == 3 and any("同じ接種券番号が3行目にも" in text for text in first)
    # Each row says its own line in the file sent: the other line is found by it.
    assert first[0].startswith("2行目: ") and got[2][-1].startswith("3行目: ")
    assert "同じ接種券番号が2行目にも" in got[2][-1]


def test_a_utf8_file_with_a_bom_gets_one_bom_whatever_the_segments(
    tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(error_file_module, "SEGMENT_BYTES", 100)
    data = csv_bytes([row(f"{n:010d}", birth=BAD) for n in range(1, 11)], encoding="utf-8-sig")
    registry_import = preview(data)
    _name, content = registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    text = b"".join(content)
    assert text.startswith("\ufeff".encode()) and text.count("\ufeff".encode()) == 1
    assert len(list(csv.reader(io.StringIO(text.decode("utf-8-sig"))))) == 11


@pytest.mark.parametrize("chunk_bytes", [None, 300])
def test_a_row_with_an_unreadable_byte_is_refused_alone_and_sent_back_as_it_came(
    tenant, settings, chunk_bytes: int | None
) -> None:
    if chunk_bytes:  # many chunks: the broken row's is read apart from the others
        settings.SESSHU_REGISTRY_CHUNK_BYTES = chunk_bytes
    data = csv_bytes([row(f"{n:010d}", name=f"小平 花子{n}") for n in range(1, 21)])
    # A character cut in two (a lead byte before a space), as a file joined from two systems.
    name = "小平 花子7".encode("cp932")
    broken = b"\x8f\x20" + name[2:]
    data = data.replace(name, broken)
    registry_import = preview(data)
    assert registry_import.status == RegistryImport.Status.PREVIEWED
    assert registry_import.detected_encoding == "cp932"
    assert registry_import.counts["invalid"] == 1 and registry_import.counts["new"] == 19
    (error,) = registry_import.errors.all()
    assert error.line_number == 8 and "Shift_JISとして読めない文字があります" in error.message
    _name, content = registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    sent_back = b"".join(content)
    assert sent_back.split(b"\r\n")[1].startswith(b"0000000007,1234567," + broken + b",")
    import_all(data)
    assert Voucher.objects.count() == 19
    assert not Voucher.objects.filter(voucher_number="0000000007").exists()


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_the_error_file_keeps_the_line_ends_it_was_sent_with(tenant, line_end: bytes) -> None:
    data = csv_bytes([row(f"{n:010d}", birth=BAD) for n in range(1, 4)], encoding="utf-8")
    registry_import = preview(data.replace(b"\r\n", line_end))
    _name, content = registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    text = b"".join(content)
    assert text.count(line_end) == 4  # the header and three rows
    assert text.count(b"\r") == (4 if line_end == b"\r\n" else 0)


def test_an_error_file_written_whole_before_segments_still_downloads(tenant) -> None:
    registry_import = preview(csv_bytes([row("0000000001", birth=BAD)]))
    old = (HEADER.rstrip("\r\n") + ",エラー内容\r\n0000000001,古い形式\r\n").encode("cp932")
    sealed = cipher_for(current_municipality()).encrypt_field(
        old.decode("latin-1"),
        table="registry_error_file",
        column="content",
        row_id=str(registry_import.pk),
    )
    default_storage.delete(registry_import.error_file)
    name = default_storage.save(registry_import.error_file, ContentFile(sealed))
    RegistryImport.objects.filter(pk=registry_import.pk).update(error_file=name)
    registry_import.refresh_from_db()
    assert _downloaded(registry_import)[1] == ["0000000001", "古い形式"]


def test_a_damaged_error_file_is_refused_before_anything_is_audited(tenant) -> None:
    registry_import = preview(csv_bytes([row("0000000001", birth=BAD)]))
    with default_storage.open(registry_import.error_file, "rb") as stream:
        data = bytearray(stream.read())
    data[-1] ^= 1
    default_storage.delete(registry_import.error_file)
    default_storage.save(registry_import.error_file, ContentFile(bytes(data)))
    with pytest.raises(DecryptionFailed):
        registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    assert not Event.objects.filter(action="registry_import.error_file_downloaded").exists()


def test_activation_codes_go_once_each_into_a_segmented_file_in_file_order(
    tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes come from the apply's batches (their new vouchers) and, at the end, for active
    vouchers still without one (listed before the municipality used codes)."""
    monkeypatch.setattr(apply_module, "APPLY_BATCH_LINES", 3)
    monkeypatch.setattr(codes_module, "_ISSUE_BATCH", 2)
    earlier = [f"{n:010d}" for n in range(90, 95)]
    for number in earlier:
        Voucher.objects.create(voucher_number=number, personal=b"x", content_hash=b"x")
    numbers = [f"{n:010d}" for n in range(1, 12)]
    registry_import = import_all(csv_bytes([row(number) for number in numbers]))
    assert registry_import.counts["codes_issued"] == 16
    assert not RegistryImportCodes.objects.exists()
    with default_storage.open(registry_import.codes_file, "rb") as stream:
        segments = list(
            cipher_for(current_municipality()).open_segments(
                stream,
                table="registry_codes_file",
                column="content",
                row_id=str(registry_import.pk),
            )
        )
    # The header, four apply batches (lines 2-4, 5-7, 8-10, 11-12), three batches at the end.
    assert len(segments) == 8
    _name, content = registry_import_codes_file(registry_import=registry_import, actor=ACTOR)
    rows = list(csv.reader(io.StringIO(b"".join(content).decode("utf-8-sig"))))
    assert rows[0] == ["接種券番号", "認証コード"]
    assert [number for number, _code in rows[1:]] == numbers + earlier  # each once
    # The audit trail names every voucher in the file, read from its segments.
    scope = Event.objects.get(action="registry_import.codes_downloaded").details
    ids = sorted(
        Voucher.objects.filter(voucher_number__in=numbers + earlier).values_list("pk", flat=True)
    )
    assert scope["residents"] == len(ids) == len(rows) - 1
    assert voucher_ranges_expand(scope["voucher_ranges"]) == ids
    cipher = cipher_for(current_municipality())
    for number, code in rows[1:]:
        voucher = Voucher.objects.get(voucher_number=number)
        assert bytes(voucher.activation_code_hash) == activation_code_hash(cipher, code)


def test_the_codes_file_is_deleted_once_read_to_the_end(tenant) -> None:
    registry_import = import_all(csv_bytes([row("0000000001"), row("0000000002")]))
    stored = registry_import.codes_file
    _name, content = registry_import_codes_file(registry_import=registry_import, actor=ACTOR)
    # Claimed at once (no second download), the file itself read as the response goes out.
    registry_import.refresh_from_db()
    assert registry_import.codes_file == "" and registry_import.codes_downloaded_at
    assert default_storage.exists(stored)
    assert b"".join(content).startswith("\ufeff接種券番号,認証コード".encode())
    assert not default_storage.exists(stored)


def test_a_codes_download_cut_short_deletes_the_file_all_the_same(tenant) -> None:
    registry_import = import_all(csv_bytes([row("0000000001")]))
    stored = registry_import.codes_file
    _name, content = registry_import_codes_file(registry_import=registry_import, actor=ACTOR)
    next(content)
    content.close()  # what Django does when the client goes away mid-download
    assert not default_storage.exists(stored)
    with pytest.raises(RegistryImportRefused, match="一度だけ"):
        registry_import_codes_file(registry_import=registry_import, actor=ACTOR)


def test_a_damaged_codes_file_is_refused_and_stays_claimable(tenant) -> None:
    registry_import = import_all(csv_bytes([row("0000000001")]))
    stored = registry_import.codes_file
    with default_storage.open(stored, "rb") as stream:
        data = bytearray(stream.read())
    data[-1] ^= 1
    default_storage.delete(stored)
    default_storage.save(stored, ContentFile(bytes(data)))
    with pytest.raises(DecryptionFailed):
        registry_import_codes_file(registry_import=registry_import, actor=ACTOR)
    assert not Event.objects.filter(action="registry_import.codes_downloaded").exists()
    registry_import.refresh_from_db()
    assert registry_import.codes_file == stored and registry_import.codes_downloaded_at is None


def test_a_codes_file_written_whole_before_segments_still_downloads(tenant) -> None:
    registry_import = import_all(csv_bytes([row("0000000001")]))
    sealed = cipher_for(current_municipality()).encrypt_field(
        "接種券番号,認証コード\r\n0000000001,ABCD-EFGH\r\n",
        table="registry_codes_file",
        column="content",
        row_id=str(registry_import.pk),
    )
    default_storage.delete(registry_import.codes_file)
    default_storage.save(registry_import.codes_file, ContentFile(sealed))
    # Nor was the scope recorded then: the download reads it from the file.
    RegistryImport.objects.filter(pk=registry_import.pk).update(codes_scope={})
    registry_import.refresh_from_db()
    _name, content = registry_import_codes_file(registry_import=registry_import, actor=ACTOR)
    assert b"".join(content).decode("utf-8-sig").splitlines()[1] == "0000000001,ABCD-EFGH"
    voucher = Voucher.objects.get(voucher_number="0000000001")
    scope = Event.objects.get(action="registry_import.codes_downloaded").details
    assert (scope["voucher_ranges"], scope["residents"]) == ([[voucher.pk, voucher.pk]], 1)


def test_a_file_holding_its_list_twice_makes_every_row_an_error_naming_its_twin(tenant) -> None:
    rows = [row(f"{n:010d}") for n in range(1, 6)]
    registry_import = preview(csv_bytes(rows + rows))
    assert registry_import.counts["invalid"] == 10 and registry_import.counts["new"] == 0
    messages = dict(registry_import.errors.values_list("line_number", "message"))
    # Lines 2-6 are the first copy, 7-11 the second.
    assert messages[2] == "同じ接種券番号が7行目にもあります（どちらも取り込みません）"
    assert messages[11] == "同じ接種券番号が6行目にもあります（どちらも取り込みません）"
    masked = set(registry_import.errors.values_list("column", "masked_value"))
    assert masked == {("接種券番号", "＊" * 8 + f"0{n}") for n in range(1, 6)}


def test_a_number_on_many_lines_names_twenty_of_the_others(tenant) -> None:
    registry_import = preview(csv_bytes([row("0000000001")] * 30 + [row("0000000002")]))
    assert registry_import.counts["new"] == 1
    first = registry_import.errors.get(line_number=2).message
    others = "・".join(str(line) for line in range(3, 23))
    assert first == f"同じ接種券番号が{others}…行目にもあります（どちらも取り込みません）"
    assert registry_import.errors.get(line_number=31).message.startswith("同じ接種券番号が2・3・")
    assert (
        max(len(message) for message in registry_import.errors.values_list("message", flat=True))
        <= 300
    )


def test_the_duplicate_message_follows_the_language_of_the_preview(tenant) -> None:
    with translation.override("en"):
        registry_import = preview(csv_bytes([row("0000000001"), row("0000000001")]))
    message = registry_import.errors.get(line_number=2).message
    assert "3" in message and "同じ" not in message


def _broken(rows: int, broken: list[int]) -> bytes:
    """A CP932 registry whose rows of the given vouchers have a character cut in two."""
    data = bytearray(
        csv_bytes([row(f"{n:010d}", name=f"小平 花子{n}") for n in range(1, rows + 1)])
    )
    for n in broken:
        name = f"小平 花子{n}".encode("cp932")
        at = data.index(name, data.index(f"{n:010d}".encode()))
        data[at : at + 2] = b"\x8f\x20"
    return bytes(data)


def test_a_small_file_with_a_few_unreadable_rows_is_read_and_an_encoding_chosen_is_honoured(
    tenant,
) -> None:
    """30 rows, 2 broken: detected as Shift_JIS all the same. A third of them broken: not
    detected, but read as the operator says (each broken row refused with its line)."""
    detected = preview(_broken(30, [5, 20]))
    assert detected.detected_encoding == "cp932"
    assert sorted(detected.errors.values_list("line_number", flat=True)) == [6, 21]
    many = list(range(1, 31, 3))
    with pytest.raises(RegistryImportRefused, match="文字コードを判別できません"):
        preview(_broken(30, many))
    chosen = preview(_broken(30, many), encoding="cp932")
    assert chosen.status == RegistryImport.Status.PREVIEWED
    assert chosen.counts["invalid"] == len(many) and chosen.counts["new"] == 30 - len(many)


def test_a_name_typed_in_utf8_inside_a_shift_jis_file_is_refused_not_imported_garbled(
    tenant,
) -> None:
    """山田 in UTF-8 reads in CP932 as 螻ア逕ー, with no byte refused: imported, the call centre
    would read that. The row is refused with why, and comes back as sent."""
    data = csv_bytes([row(f"{n:010d}") for n in range(1, 6)])
    name = "小平 花子".encode("cp932")
    at = data.index(name, data.index(b"0000000003"))
    data = data[:at] + "山田".encode() + data[at + len(name) :]
    registry_import = preview(data)
    (error,) = registry_import.errors.all()
    assert error.line_number == 4 and error.column == "氏名"
    assert "文字が化けています" in error.message and error.voucher_number == "0000000003"
    assert registry_import.counts["new"] == 4
    _name, content = registry_import_error_file(registry_import=registry_import, actor=ACTOR)
    assert b",\xe5\xb1\xb1\xe7\x94\xb0," in b"".join(content)  # the bytes as sent


def test_a_generated_shift_jis_registry_has_no_name_taken_for_garbled(tenant, tmp_path) -> None:
    import subprocess
    import sys

    out = tmp_path / "registry.csv"
    subprocess.run(
        [
            sys.executable,
            "scripts/gen_registry.py",
            "--rows",
            "3000",
            "--out",
            str(out),
            "--bad-percent",
            "0",
            "--seed",
            "3",
        ],
        check=True,
        capture_output=True,
    )
    registry_import = preview(out.read_bytes())
    assert not registry_import.errors.filter(message__contains="文字が化けています").exists()
    assert registry_import.counts["invalid"] == 0
