"""Reading back the records that start on given lines (the error file's rows) gives what the
csv module reads there, in every chunk the file is cut into."""

from __future__ import annotations

import csv
import io

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from booking.registry.errorrows import _rows_by_bytes, _rows_by_csv, rows_at_lines
from booking.registry.pipeline import Chunk, FileHead, chunk_file

HEADER = "接種券番号,氏名,住所\r\n"


def _record_starts(text: str) -> list[tuple[int, list[str]]]:
    """Each record's first physical line (the header is line 1) and its cells, as the
    csv module reads the whole file."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records = []
    for cells in reader:
        records.append((reader.line_num - sum(cell.count("\n") for cell in cells), cells))
    return records[1:]


def _read_back(data: bytes, lines: list[int], chunk_bytes: int) -> list[tuple[int, list[str]]]:
    head = FileHead(HEADER.encode("utf-8"), 1)
    stream = io.BytesIO(data[len(head.header_bytes) :])
    return list(
        rows_at_lines(head, b"", stream, encoding="utf-8", lines=lines, chunk_bytes=chunk_bytes)
    )


def _file(records: list[list[str]]) -> str:
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\r\n").writerows(records)
    return HEADER + text.getvalue()


_CELL = st.text(alphabet=st.sampled_from(["0", "あ", ",", '"', "\n", " "]), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(st.lists(_CELL, min_size=1, max_size=3), min_size=1, max_size=25),
    every=st.integers(1, 4),
    chunk_bytes=st.integers(8, 120),
)
def test_the_rows_asked_for_are_those_the_csv_module_reads(
    records: list[list[str]], every: int, chunk_bytes: int
) -> None:
    text = _file(records)
    starts = _record_starts(text)
    wanted = starts[::every]
    assert _read_back(text.encode("utf-8"), [line for line, _ in wanted], chunk_bytes) == wanted


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(
        st.text(alphabet=st.sampled_from(["0", "あ", ",", '"', " "]), max_size=8), max_size=20
    ),
    chunk_bytes=st.integers(8, 120),
)
def test_any_quoting_a_file_may_have_reads_back_as_the_csv_module_reads_each_chunk(
    body: list[str], chunk_bytes: int
) -> None:
    """Stray and unbalanced quotes too, as no CSV writer would write them. Where the file's
    quoting leaves its records in doubt, the parse read them chunk by chunk with the csv
    module, and so does the fallback: the rows must be those."""
    text = HEADER + "".join(line + "\r\n" for line in body)
    data = text.encode("utf-8")
    head = FileHead(HEADER.encode("utf-8"), 1)
    expected = []
    for chunk in chunk_file(
        head, b"", io.BytesIO(data[len(head.header_bytes) :]), chunk_bytes=chunk_bytes
    ):
        every_line = range(chunk.first_line, chunk.first_line + chunk.data.count(b"\n") + 1)
        expected += _rows_by_csv(chunk, list(every_line), "utf-8")
    assume(len({line for line, _cells in expected}) == len(expected))  # asked for once each
    assert _read_back(data, [line for line, _ in expected], chunk_bytes) == expected


def test_a_record_with_quoted_line_breaks_is_read_whole_without_the_csv_fallback() -> None:
    text = _file(
        [["1", "a", "小平市,\n1番"], ["2", "b", "c"], ["3", 'x"\ny', "z"], ["4", "d", "e"]]
    )
    chunk = Chunk(text[len(HEADER) :].encode("utf-8"), 2)
    found = _rows_by_bytes(chunk, [2, 4, 5, 7], "utf-8")
    assert found == [
        (2, ["1", "a", "小平市,\n1番"]),
        (4, ["2", "b", "c"]),
        (5, ["3", 'x"\ny', "z"]),
        (7, ["4", "d", "e"]),
    ]
    assert found == _rows_by_csv(chunk, [2, 4, 5, 7], "utf-8")


def test_a_stray_quote_in_an_unquoted_cell_falls_back_to_the_csv_module() -> None:
    # The csv module reads ``b"c`` as three characters; counting quotes would open a quoted
    # line break there and swallow the next line.
    data = b'b"c,1,2\r\n0000000002,x,y\r\nd"e,3,4\r\n'
    chunk = Chunk(data, 2)
    assert _rows_by_bytes(chunk, [3], "utf-8") is None
    assert _rows_by_csv(chunk, [3], "utf-8") == [(3, ["0000000002", "x", "y"])]
    head = FileHead(HEADER.encode("utf-8"), 1)
    got = rows_at_lines(head, b"", io.BytesIO(data), encoding="utf-8", lines=[2, 3, 4])
    assert [line for line, _cells in got] == [2, 3, 4]


def test_every_chunk_of_a_file_gives_back_its_first_line() -> None:
    text = _file([[f"{n:010d}", "名", "住所"] for n in range(1, 41)])
    data = text.encode("utf-8")
    head = FileHead(HEADER.encode("utf-8"), 1)
    chunks = list(chunk_file(head, b"", io.BytesIO(data[len(HEADER.encode()) :]), chunk_bytes=90))
    firsts = [chunk.first_line for chunk in chunks]
    assert len(firsts) > 10
    got = _read_back(data, firsts, 90)
    assert [line for line, _cells in got] == firsts
