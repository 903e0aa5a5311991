"""Reading back the records that start on given lines, for the error file.

The error file holds the invalid rows exactly as the municipality sent them. A registry of a
million rows has a few tens of thousands of them, so instead of splitting every record with
the csv module again, each chunk is cut into physical lines as bytes and only the wanted
records are decoded and split. The line numbers are those the parse reported: the chunks
are cut the same way (:func:`booking.registry.pipeline.chunk_file`).
"""

from __future__ import annotations

import codecs
import csv
import io
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from itertools import compress, count, repeat

from booking.registry.csvfile import DECODE_ERRORS, resolve_encoding
from booking.registry.pipeline import CHUNK_BYTES, Chunk, FileHead, Readable, chunk_file

# The encoding error handler that writes the rows back as they were sent: a byte the file's
# encoding could not read (decoded as a lone surrogate, DECODE_ERRORS) goes back as that
# byte; anything else the encoding has no code for (only ever in what the import adds, the
# messages) as "?".
AS_SENT = "sesshu-as-sent"


def _as_sent(error: UnicodeError) -> tuple[str | bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    if all("\udc80" <= character <= "\udcff" for character in text):
        return bytes(ord(character) - 0xDC00 for character in text), error.end
    return "?" * len(text), error.end


codecs.register_error(AS_SENT, _as_sent)


def header_cells(head: FileHead, *, encoding: str) -> list[str]:
    """The header record's cells (the first record with a non-blank cell)."""
    text = head.header_bytes.decode(resolve_encoding(encoding), errors=DECODE_ERRORS)
    for cells in csv.reader(io.StringIO(text, newline="")):
        if any(cell.strip() for cell in cells):
            return cells
    return []


def rows_at_lines(
    head: FileHead,
    rest: bytes,
    stream: Readable,
    *,
    encoding: str,
    lines: Iterable[int],
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` for every record of the file that starts on one of ``lines`` (in
    increasing order, each once: they are taken as the file is read, a chunk ahead at most),
    in file order. ``head``, ``rest`` and ``stream`` are as for ``chunk_file``."""
    codec = resolve_encoding(encoding)
    wanted = iter(lines)
    next_wanted = next(wanted, None)
    for chunk in chunk_file(head, rest, stream, chunk_bytes=chunk_bytes):
        if next_wanted is None:
            return
        # The chunk's records start on its lines up to the one after its last newline,
        # which is the next chunk's first line when the chunk ends on a newline.
        last_line = chunk.first_line + chunk.data.count(b"\n") - chunk.data.endswith(b"\n")
        in_chunk: list[int] = []
        while next_wanted is not None and next_wanted <= last_line:
            in_chunk.append(next_wanted)
            next_wanted = next(wanted, None)
        if in_chunk:
            yield from _chunk_rows(chunk, in_chunk, codec)


def _chunk_rows(chunk: Chunk, wanted: list[int], codec: str) -> Iterator[tuple[int, list[str]]]:
    found = _rows_by_bytes(chunk, wanted, codec)
    if found is None:
        found = _rows_by_csv(chunk, wanted, codec)
    yield from found


def _rows_by_bytes(
    chunk: Chunk, wanted: list[int], codec: str
) -> list[tuple[int, list[str]]] | None:
    """Records cut at the newlines outside quotes (an even number of ``"`` before them).
    None when that is not certain to match the csv module's reading: a lone CR (which the
    csv module counts as a line end), a quote left open at the chunk's end, a wanted line
    that the count puts inside another record, or a record that does not read, strictly, as
    exactly one row.

    A record spans several physical lines only between two lines of an odd number of
    quotes (the one that opens a quoted line break and the one that closes it): those lines
    are found by counting quotes line by line in C, and each wanted line is then placed
    among them, instead of walking every line of the chunk in Python."""
    data = chunk.data
    if data.count(b"\r") != data.count(b"\r\n"):
        return None
    physical = data.split(b"\n")
    odd = list(compress(count(), map((1).__and__, map(bytes.count, physical, repeat(b'"')))))
    if len(odd) % 2:
        return None
    found: list[tuple[int, list[str]]] = []
    for line in wanted:
        index = line - chunk.first_line
        if not 0 <= index < len(physical):
            continue
        opened = bisect_right(odd, index)  # odd lines up to this one
        if opened % 2 == 0 and not (opened and odd[opened - 1] == index):
            end = index
        elif opened % 2 == 1 and odd[opened - 1] == index:
            end = odd[opened]  # a record with quoted line breaks, up to the closing line
        else:
            # Within a quoted line break by this count, though the parse started a record
            # here: a quote the csv module took as a plain character (``a,b"c``).
            return None
        text = b"\n".join(physical[index : end + 1]).decode(codec, errors=DECODE_ERRORS)
        try:
            # Strictly: a quote the count took as a plain character may have left the
            # csv module inside a quoted cell at the end of the text.
            rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        except csv.Error:
            return None
        if len(rows) != 1:
            return None
        found.append((line, rows[0]))
    return found


def _rows_by_csv(chunk: Chunk, wanted: list[int], codec: str) -> list[tuple[int, list[str]]]:
    """The chunk read with the csv module (leniently: the file's own quoting, however odd,
    goes back as it came)."""
    targets = set(wanted)
    reader = csv.reader(io.StringIO(chunk.data.decode(codec, errors=DECODE_ERRORS), newline=""))
    found = []
    for cells in reader:
        start = chunk.first_line - 1 + reader.line_num - sum(cell.count("\n") for cell in cells)
        if start in targets:
            found.append((start, cells))
    return found
