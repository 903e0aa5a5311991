from __future__ import annotations

import codecs
import io

import pytest

from booking.registry.csvfile import (
    SAMPLE_SIZE,
    CsvFileError,
    CsvRecord,
    HeaderError,
    UploadRejected,
    check_upload,
    detect_encoding,
    map_header,
    open_registry,
    resolve_encoding,
)
from booking.registry.fields import normalize_header

HEADER = "接種券番号,宛名番号,氏名,氏名カナ,生年月日,性別,郵便番号,住所,電話番号"
ROW_1 = (
    "0012345678,1001,山田　太郎,ヤマダ　タロウ,昭和23年4月1日,1,371-0026,前橋市大手町1-1,"
    "027-123-4567"
)
ROW_2 = "0012345679,1002,髙橋　花子,タカハシ　ハナコ,S30.1.2,2,371-0026,前橋市本町2-3,090-1234-5678"


def _file(lines: list[str], *, encoding: str = "utf-8", newline: str = "\r\n") -> io.BytesIO:
    return io.BytesIO(newline.join(lines).encode(encoding) + newline.encode())


def _records(
    data: io.BytesIO,
    *,
    encoding: str | None = None,
    column_mapping: dict[str, str | None] | None = None,
) -> list[CsvRecord]:
    with open_registry(data, encoding=encoding, column_mapping=column_mapping) as registry:
        return list(registry)


# --- encodings -----------------------------------------------------------------------------


def test_a_cp932_file_is_detected_and_read() -> None:
    data = _file([HEADER, ROW_1, ROW_2], encoding="cp932")
    with open_registry(data) as registry:
        records = list(registry)
        assert registry.encoding == "cp932"
        assert registry.encoding_label == "Shift_JIS"
    # 髙 exists in CP932 (an IBM extension) and not in plain Shift_JIS.
    assert records[1].values["name"] == "髙橋　花子"
    assert [record.line_number for record in records] == [2, 3]


def test_a_utf8_file_with_bom_is_read_without_the_bom_in_the_first_header() -> None:
    data = io.BytesIO(codecs.BOM_UTF8 + f"{HEADER}\r\n{ROW_1}\r\n".encode())
    with open_registry(data) as registry:
        records = list(registry)
        assert registry.encoding == "utf-8-sig"
    assert records[0].values["voucher_number"] == "0012345678"


def test_a_utf8_file_without_bom_is_read() -> None:
    with open_registry(_file([HEADER, ROW_1])) as registry:
        records = list(registry)
        assert registry.encoding == "utf-8"
    assert records[0].values["name_kana"] == "ヤマダ　タロウ"


@pytest.mark.parametrize(
    ("choice", "codec"),
    [
        ("cp932", "cp932"),
        ("Shift_JIS", "cp932"),
        ("sjis", "cp932"),
        ("UTF-8", "utf-8-sig"),
        ("utf8", "utf-8-sig"),
        ("utf-8-sig", "utf-8-sig"),
    ],
)
def test_operator_encoding_choices_map_to_codecs(choice: str, codec: str) -> None:
    assert resolve_encoding(choice) == codec


def test_an_unknown_encoding_choice_is_refused() -> None:
    with pytest.raises(CsvFileError, match="文字コード"):
        resolve_encoding("euc-jp")


def test_the_operator_override_wins_over_detection() -> None:
    # In CP932 "ﾃｽﾄｱ" is C3 BD C4 B1, which is also valid UTF-8 ("ýı"): detection alone
    # picks UTF-8, and only the operator can say it is Shift_JIS.
    content = "voucher_number,name,name_kana,birth_date\r\n0012345678,Yamada,ﾃｽﾄｱ,S23.4.1\r\n"
    raw = content.encode("cp932")
    assert detect_encoding(raw) == "utf-8"
    assert _records(io.BytesIO(raw))[0].values["name_kana"] == "ýı"
    override = _records(io.BytesIO(raw), encoding="shift_jis")
    assert override[0].values["name_kana"] == "ﾃｽﾄｱ"


def test_the_utf8_override_drops_a_bom() -> None:
    data = io.BytesIO(codecs.BOM_UTF8 + f"{HEADER}\n{ROW_1}\n".encode())
    assert _records(data, encoding="utf-8")[0].values["voucher_number"] == "0012345678"


def test_a_file_in_neither_encoding_is_refused() -> None:
    with pytest.raises(CsvFileError, match="文字コードを判別できません"):
        detect_encoding(b"\x81\x20\xff\xfe\x80\x80")


def test_detection_survives_a_sample_cut_inside_a_character() -> None:
    utf8 = "山田".encode()
    assert detect_encoding(utf8[:4]) == "utf-8"
    sjis = "接種券番号,氏名".encode("cp932")
    assert detect_encoding(sjis[:3]) == "cp932"


def test_a_later_undecodable_byte_refuses_its_row_alone_with_its_line() -> None:
    # 3.5 MB of ASCII first: more than detection samples, so detection says UTF-8.
    ascii_rows = [f"{index:010d},Taro,TARO,1950-01-01" for index in range(100_000)]
    head = "voucher_number,name,name_kana,birth_date\n" + "\n".join(ascii_rows) + "\n"
    tail = "0099999999,山田,ヤマダ,S23.4.1\n0099999998,Jiro,JIRO,1950-01-02\n".encode("cp932")
    records = _records(io.BytesIO(head.encode("ascii") + tail))
    assert len(records) == 100_002
    refused = records[-2]
    assert refused.line_number == 100_002 and refused.values == {}
    assert refused.problem is not None and "UTF-8として読めない文字があります" in refused.problem
    assert "文字コードを指定して" in refused.problem
    assert records[-1].problem is None and records[-1].values["name"] == "Jiro"


def test_a_shift_jis_file_with_one_unreadable_byte_is_still_shift_jis() -> None:
    rows = [ROW_1.replace("0012345678", f"00123456{n:02d}") for n in range(40)]
    data = bytearray(_file([HEADER, *rows], encoding="cp932").getvalue())
    # The 11th row's name broken: a lead byte followed by a space.
    start = data.index(b"0012345610")
    name = data.index("山田".encode("cp932"), start)
    data[name : name + 4] = b"\x82\x20"
    with open_registry(io.BytesIO(bytes(data))) as registry:
        records = list(registry)
        assert registry.encoding == "cp932"
    assert [record.line_number for record in records if record.problem] == [12]
    assert "Shift_JISとして読めない文字があります" in (records[10].problem or "")
    assert all(record.values["name"] == "山田　太郎" for record in records if not record.problem)
    assert len(records) == 40


def test_a_header_with_an_unreadable_byte_is_refused() -> None:
    data = HEADER.encode("cp932").replace("氏名カナ".encode("cp932"), b"\x81\x20") + b"\r\n"
    rows = "".join(f"{ROW_1}\r\n" for _ in range(60)).encode("cp932")
    with pytest.raises(CsvFileError, match="見出し行（1行目）の4列目にShift_JISとして読めない文字"):
        _records(io.BytesIO(data + rows))


def test_a_file_mostly_unreadable_in_both_encodings_is_refused() -> None:
    lines = [HEADER.encode("cp932"), *(b"\x81\x20,\xff\xfe\x80\x80" for _ in range(10))]
    with pytest.raises(CsvFileError, match="文字コードを判別できません"):
        detect_encoding(b"\r\n".join(lines))


# --- line endings, quoting, line numbers ---------------------------------------------------


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_every_line_ending_gives_the_same_records_and_lines(newline: str) -> None:
    records = _records(_file([HEADER, ROW_1, "", ROW_2], newline=newline))
    assert [record.line_number for record in records] == [2, 4]
    assert records[1].values["phone"] == "090-1234-5678"


def test_quoted_fields_keep_commas_and_line_breaks_and_lines_are_physical() -> None:
    content = (
        f"{HEADER}\r\n"
        '0012345678,1001,山田　太郎,ヤマダ　タロウ,S23.4.1,1,371-0026,"前橋市大手町1-1,\r\n'
        '2階 ""北""側",027-123-4567\r\n'
        f"{ROW_2}\r\n"
        '"0012345680",1003,"佐藤, 一郎",サトウ イチロウ,S40.5.5,1,,"前橋市\n本町\n3-3",\r\n'
        f"{ROW_1}\r\n"
    )
    records = _records(io.BytesIO(content.encode("cp932")))
    assert [record.line_number for record in records] == [2, 4, 5, 8]
    assert records[0].values["address"] == '前橋市大手町1-1,\r\n2階 "北"側'
    assert records[0].values["phone"] == "027-123-4567"
    assert records[2].values["name"] == "佐藤, 一郎"
    assert records[2].values["address"] == "前橋市\n本町\n3-3"
    assert records[2].values["voucher_number"] == "0012345680"


def test_blank_lines_and_rows_of_empty_cells_are_skipped() -> None:
    records = _records(_file([HEADER, "", ROW_1, ",,,,,,,,", " , ", ROW_2, ",,,,"]))
    assert [record.line_number for record in records] == [3, 6]


def test_blank_lines_before_the_header_are_allowed() -> None:
    with open_registry(_file(["", "", HEADER, ROW_1])) as registry:
        assert registry.header_line_number == 3
        assert [record.line_number for record in registry] == [4]


def test_a_row_with_extra_cells_is_a_problem_not_shifted_values() -> None:
    bad = "0012345678,1001,山田,ヤマダ,S23.4.1,1,371-0026,前橋市大手町1-1,2階,027-123-4567"
    records = _records(_file([HEADER, bad, ROW_2]))
    assert records[0].problem is not None
    assert "列の数" in records[0].problem
    assert records[0].values == {}
    assert records[1].problem is None


def test_trailing_empty_cells_are_not_extra_columns() -> None:
    records = _records(_file([HEADER, ROW_1 + ",,,"]))
    assert records[0].problem is None


def test_a_row_cut_short_is_a_problem_not_empty_values() -> None:
    """Importing it would empty the address and phone a voucher already has."""
    records = _records(_file([HEADER, "0012345678,1001,山田,ヤマダ,S23.4.1", ROW_2]))
    assert records[0].problem is not None and "列の数が見出しより少なく" in records[0].problem
    assert records[1].problem is None  # reading goes on


def test_text_after_a_closing_quote_is_a_problem_and_reading_goes_on() -> None:
    bad = '0012345678,1001,"山田"太郎,ヤマダ,S23.4.1,1,,,'
    records = _records(_file([HEADER, bad, ROW_2]))
    assert records[0].line_number == 2
    assert records[0].problem is not None
    assert "引用符" in records[0].problem
    assert records[1].line_number == 3
    assert records[1].values["name"] == "髙橋　花子"


def test_reading_goes_on_after_refused_records_one_after_another_with_their_lines() -> None:
    bad = '0012345678,1001,"山田"太郎,ヤマダ,S23.4.1,1,,,'
    quoted = '0012345680,1003,佐藤,サトウ,S23.4.1,1,,"前橋市\n本町",'
    records = _records(_file([HEADER, bad, bad, quoted, bad, ROW_2]))
    assert [(record.line_number, record.problem is None) for record in records] == [
        (2, False),
        (3, False),
        (4, True),
        (6, False),
        (7, True),
    ]
    assert records[2].values["address"] == "前橋市\n本町"


def test_an_unclosed_quote_refuses_the_file_rather_than_the_rows_it_swallowed() -> None:
    """Every line after the quote is read into its cell: refusing that one row would drop
    the residents after it unseen (and a full list would withdraw them)."""
    swallowed = [ROW_2.replace("0012345679", f"00123457{n:02d}") for n in range(7)]
    data = _file([HEADER, ROW_1, '0012345679,1002,"山田,ヤマダ,S23.4.1', *swallowed])
    with pytest.raises(CsvFileError, match="3行目から始まる項目の引用符") as caught:
        _records(data)
    assert "ファイル全体を取り込みません" in caught.value.message


def test_an_unclosed_quote_swallowing_the_file_stops_with_its_line() -> None:
    rows = [ROW_1] * 5000
    data = _file([HEADER, '0012345679,1002,"山田,ヤマダ,S23.4.1', *rows])
    with pytest.raises(CsvFileError, match="2行目から始まる項目が長すぎます") as caught:
        _records(data)
    assert '引用符（"）が閉じられていないか' in caught.value.message


def test_a_cell_too_long_without_any_quote_is_said_to_be_too_long() -> None:
    data = _file([HEADER, ROW_1.replace("0012345678,", "0012345678," + "長" * 200_000 + ",", 1)])
    with pytest.raises(CsvFileError, match="2行目から始まる項目が長すぎます") as caught:
        _records(data)
    assert "1つの項目に長すぎる内容" in caught.value.message


# --- header --------------------------------------------------------------------------------


def test_english_headers_are_accepted() -> None:
    header = (
        "voucher_number,address_number,name,name_kana,birth_date,sex,postal_code,address,"
        "phone,email,dose"
    )
    row = (
        "0012345678,1,Yamada Taro,ヤマダ タロウ,1948-04-01,M,3710026,Maebashi,0271234567,"
        "t@example.jp,3"
    )
    records = _records(_file([header, row]))
    assert records[0].values["email"] == "t@example.jp"
    assert records[0].values["dose"] == "3"


@pytest.mark.parametrize(
    ("cell", "field"),
    [
        ("接種券番号", "voucher_number"),
        ("接種券 番号", "voucher_number"),
        ("　接種券番号　", "voucher_number"),
        ("※接種券番号（必須）", "voucher_number"),
        ("Voucher-Number", "voucher_number"),
        ("ＶＯＵＣＨＥＲ＿ＮＵＭＢＥＲ", "voucher_number"),
        ("氏名（カナ）", "name_kana"),
        ("ﾌﾘｶﾞﾅ", "name_kana"),
        ("生年月日", "birth_date"),
        ("Birth Date", "birth_date"),
        ("メールアドレス", "email"),
        ("E-mail", "email"),
        ("接種回数", "dose"),
        ("券種", "dose"),
    ],
)
def test_header_cells_are_normalised_before_matching(cell: str, field: str) -> None:
    from booking.registry.fields import HEADER_ALIASES

    assert HEADER_ALIASES[normalize_header(cell)] == field


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(HeaderError) as caught:
        map_header(["宛名番号", "氏名", "生年月日", "電話番号"])
    missing, found = caught.value.message.split("見出しとして読んだ行の列：")
    assert "「接種券番号」" in missing
    assert "「氏名カナ」" in missing
    assert "「氏名」" not in missing
    assert "電話番号" not in missing
    # The headers it did read, for the official to compare with the file.
    assert found.startswith("「宛名番号」、「氏名」、「生年月日」、「電話番号」。")


@pytest.mark.parametrize(
    "first_row",
    [
        ["0012345678", "山田 太郎", "ヤマダ タロウ", "S23.4.1"],
        ["山田 太郎", "ヤマダ タロウ", "１９４８／４／１"],  # full-width: a date all the same
        ["山田 太郎", "ヤマダ タロウ", "090-1234-5678"],
    ],
)
def test_a_residents_row_read_as_the_header_is_not_repeated(first_row: list[str]) -> None:
    with pytest.raises(HeaderError) as caught:
        map_header(first_row)
    message = caught.value.message
    assert "見出しではなくデータ（番号や日付）が入っています" in message
    assert "山田" not in message and "ヤマダ" not in message and "1234" not in message


def test_a_file_with_a_bad_header_fails_when_opened() -> None:
    with pytest.raises(HeaderError, match="氏名カナ"):
        open_registry(_file(["接種券番号,氏名,生年月日", "0012345678,山田,S23.4.1"]))


def test_an_empty_file_has_no_header() -> None:
    with pytest.raises(HeaderError, match="見出し行がありません"):
        open_registry(io.BytesIO(b"\r\n\r\n"))


def test_a_field_given_twice_is_refused() -> None:
    with pytest.raises(HeaderError, match="「氏名」の列が2つあります（2列目と4列目）"):
        map_header(["接種券番号", "氏名", "氏名カナ", "名前", "生年月日"])


def test_unknown_columns_are_ignored_and_listed() -> None:
    mapping = map_header(["接種券番号", "備考", "氏名", "氏名カナ", "", "生年月日"])
    assert mapping.columns == (
        "voucher_number",
        None,
        "name",
        "name_kana",
        None,
        "birth_date",
    )
    assert mapping.ignored == ("備考",)
    assert mapping.fields == {"voucher_number", "name", "name_kana", "birth_date"}


def test_a_saved_mapping_overrides_the_built_in_names() -> None:
    cells = ["券No", "氏名", "漢字氏名", "ﾌﾘｶﾞﾅ", "誕生日", "電話"]
    mapping = map_header(
        cells,
        {
            "券No": "voucher_number",
            "漢字氏名": "氏名",  # a Japanese label works as the target too
            "誕生日": "birth_date",
            "電話": None,  # not imported
        },
    )
    # 氏名 would match "name" on its own; the saved mapping gave "name" to 漢字氏名.
    assert mapping.columns == ("voucher_number", None, "name", "name_kana", "birth_date", None)


def test_a_saved_mapping_keys_are_normalised_like_headers() -> None:
    mapping = map_header(["ｹﾝ番号", "氏名", "カナ", "生年月日"], {"ケン 番号": "voucher_number"})
    assert mapping.columns[0] == "voucher_number"


def test_a_saved_mapping_to_an_unknown_field_is_refused() -> None:
    with pytest.raises(HeaderError, match="不明な項目"):
        map_header(["a"], {"a": "shoe_size"})


def test_records_carry_field_names_from_a_saved_mapping() -> None:
    data = _file(["No,お名前,カナ,誕生日", "0012345678,山田,ヤマダ,S23.4.1"])
    records = _records(
        data,
        column_mapping={
            "No": "voucher_number",
            "お名前": "name",
            "カナ": "name_kana",
            "誕生日": "birth_date",
        },
    )
    assert records[0].values == {
        "voucher_number": "0012345678",
        "name": "山田",
        "name_kana": "ヤマダ",
        "birth_date": "S23.4.1",
    }


# --- streaming -----------------------------------------------------------------------------


class _CountingStream:
    """A 200,000-row registry (about 12 MB) made as it is read, counting what was read."""

    def __init__(self, rows: int = 200_000) -> None:
        self._rows = rows
        self.consumed = 0
        self.largest_read = 0
        self._buffer = (HEADER + "\r\n").encode("cp932")
        self._row = 0

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "the reader must never ask for the whole stream"
        while len(self._buffer) < size and self._row < self._rows:
            self._row += 1
            self._buffer += (
                f"{self._row:010d},{self._row},山田　太郎,ヤマダ　タロウ,S23.4.1,1,,,\r\n"
            ).encode("cp932")
        chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        self.consumed += len(chunk)
        self.largest_read = max(self.largest_read, size)
        return chunk


def test_the_file_is_read_as_a_stream() -> None:
    stream = _CountingStream()
    registry = open_registry(stream)
    records = iter(registry)
    for expected_line in range(2, 20_002):
        assert next(records).line_number == expected_line
    # 20,000 rows are about 1.2 MB of the 12; only a few chunks beyond them have been read.
    assert stream.consumed < 1_400_000 + 4 * SAMPLE_SIZE
    assert stream.largest_read <= SAMPLE_SIZE
    registry.close()


# --- upload guard --------------------------------------------------------------------------

LIMIT = 10 * 1024 * 1024


def test_a_plain_csv_upload_passes() -> None:
    check_upload(f"{HEADER}\r\n{ROW_1}\r\n".encode("cp932"), 2000, LIMIT)
    check_upload(codecs.BOM_UTF8 + f"{HEADER}\n{ROW_1}\n".encode(), 2000, LIMIT)


def test_a_file_over_the_limit_is_refused_with_both_sizes() -> None:
    with pytest.raises(UploadRejected) as caught:
        check_upload(HEADER.encode(), 12 * 1024 * 1024, LIMIT)
    assert "上限10.0MB" in caught.value.message
    assert "12.0MB" in caught.value.message


@pytest.mark.parametrize(
    ("first_bytes", "size", "message"),
    [
        (b"", 0, "空"),
        (b"\r\n\r\n", 4, "空"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100, 5000, ".xlsx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, 5000, ".xls"),
        (b"%PDF-1.7\n", 5000, "PDF"),
        ("接種券番号,氏名".encode("utf-16"), 5000, "UTF-16"),
        (b"voucher_number,name\x00\x00", 5000, "NUL"),
        (bytes(range(1, 32)) * 10 + b",a\n", 5000, "制御文字"),
        ("接種券番号\t氏名\t氏名カナ\n".encode(), 5000, "タブ区切り"),
        ("これは接種券の一覧です。\n".encode("cp932"), 5000, "CSVファイル（カンマ区切り）ではない"),
        (b"<!DOCTYPE html><html>", 5000, "HTML"),
        (b"\x81\x20\xff\xfe\x80,\x80", 5000, "文字コード"),
        ("接種券番号,氏名\r0000000001,小平\r".encode("cp932"), 5000, "改行コードがCRだけ"),
    ],
)
def test_uploads_that_are_not_csv_are_refused(first_bytes: bytes, size: int, message: str) -> None:
    with pytest.raises(UploadRejected) as caught:
        check_upload(first_bytes, size, LIMIT)
    assert message in caught.value.message


def test_a_sample_cut_inside_a_character_still_passes() -> None:
    content = f"{HEADER}\r\n{ROW_1}\r\n".encode("cp932")
    for cut in range(len(HEADER.encode("cp932")) + 2, len(content)):
        check_upload(content[:cut], 100_000, LIMIT)
