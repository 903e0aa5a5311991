"""Reading a municipality's registry CSV as a stream.

The file is never held in memory: a sample of the first bytes decides the encoding, then the
records are decoded and split as they are read. Each record carries the physical line number
it starts on, so messages can point at the line the operator sees in a text editor.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from booking.registry.errors import RegistryValueError
from booking.registry.fields import (
    FIELD_LABELS,
    HEADER_ALIASES,
    REQUIRED_FIELDS,
    field_for_label,
    normalize_header,
)

SAMPLE_SIZE = 64 * 1024
# An ASCII-only sample says nothing about the encoding; read on (up to this much) for the
# first non-ASCII byte.
_MAX_SAMPLE_SIZE = 1024 * 1024

# utf-8-sig is the codec of every UTF-8 file (with a BOM or without): named UTF-8.
ENCODING_LABELS = {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "cp932": "Shift_JIS"}
# What an operator may choose, and the codec it means. Shift_JIS files from Windows are CP932
# (it adds NEC and IBM characters such as ① and 髙), so every Shift_JIS name reads as CP932.
_ENCODING_CHOICES = {
    "utf-8": "utf-8-sig",  # utf-8-sig also reads a file without BOM; a stray BOM is dropped
    "utf8": "utf-8-sig",
    "utf-8-sig": "utf-8-sig",
    "cp932": "cp932",
    "ms932": "cp932",
    "windows-31j": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
}


# A byte the file's encoding cannot read is decoded as a lone surrogate (U+DC80-U+DCFF, the
# "surrogateescape" handler): the record it is in is refused with its line, the others are
# read on, and the error file writes the byte back as it came (errorrows.AS_SENT).
DECODE_ERRORS = "surrogateescape"
UNREADABLE = re.compile("[\udc80-\udcff]")
# Detection takes an encoding that leaves a few lines of the sample unreadable (a row pasted
# from another system, a character cut in two) when the other leaves more: at most this
# share of its lines, or a handful (and never half of them).
_UNREADABLE_LINES_SHARE = 0.02
_UNREADABLE_LINES_FEW = 5


class CsvFileError(RegistryValueError):
    """The file as a whole cannot be read (encoding, header, broken quoting)."""


class UploadRejected(CsvFileError):
    """Refused before parsing: too large, binary, or not a CSV."""


class HeaderError(CsvFileError):
    """The header row does not give the columns the import needs."""


class _BinaryReadable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One data record: ``values`` maps field names to the raw cell text.

    ``problem`` is set (Japanese) when the reader could not split the record properly; the
    values are then unreliable and the row must be reported, not imported.
    """

    line_number: int
    values: dict[str, str]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class HeaderMapping:
    """Which field each column holds (``None``: the column is not imported)."""

    columns: tuple[str | None, ...]
    ignored: tuple[str, ...]  # header texts of the columns that are not imported

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(field for field in self.columns if field is not None)


# ---------------------------------------------------------------------------------------------
# Encoding


def resolve_encoding(choice: str) -> str:
    """The codec for an operator's encoding choice (``"utf-8"``, ``"cp932"``, ``"shift_jis"``
    ...); raises :class:`CsvFileError` for anything else."""
    codec = _ENCODING_CHOICES.get(choice.strip().lower().replace("_", "-"))
    if codec is None:
        raise CsvFileError("文字コードは UTF-8 または Shift_JIS を指定してください")
    return codec


def _decodes(sample: bytes, encoding: str) -> bool:
    # Incremental, not final: the sample may end in the middle of a multi-byte character.
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _unreadable_lines(sample: bytes, encoding: str) -> int:
    """How many of the sample's lines hold a byte ``encoding`` cannot read."""
    decoder = codecs.getincrementaldecoder(encoding)(errors=DECODE_ERRORS)
    text = decoder.decode(sample, final=False)
    return sum(1 for line in text.split("\n") if UNREADABLE.search(line))


def detect_encoding(sample: bytes) -> str:
    """``"utf-8-sig"`` (BOM), ``"utf-8"`` or ``"cp932"`` for the first bytes of a file.

    UTF-8 is tried before CP932: Japanese text in CP932 is practically never valid UTF-8, the
    other way round it often decodes (to nonsense). A sample neither reads whole is taken in
    the one that leaves a few lines unreadable (those rows are refused, each with its line);
    one that leaves many is in neither."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if _decodes(sample, "utf-8"):
        return "utf-8"
    if _decodes(sample, "cp932"):
        return "cp932"
    unreadable, encoding = min(
        ((_unreadable_lines(sample, name), name) for name in ("utf-8", "cp932")),
        key=lambda counted: counted[0],  # a tie: UTF-8, as above
    )
    lines = sample.count(b"\n") + 1
    few = max(_UNREADABLE_LINES_FEW, int(lines * _UNREADABLE_LINES_SHARE))
    if unreadable <= few and 2 * unreadable < lines:
        return encoding
    raise CsvFileError(
        "文字コードを判別できません。UTF-8 または Shift_JIS で保存したCSVファイルを選んでください"
    )


class _PrefixedStream(io.RawIOBase):
    """The bytes already read for the sample, then the rest of the source stream."""

    def __init__(self, prefix: bytes, rest: _BinaryReadable) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(buffer)
        if self._prefix:
            count = min(size, len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        data = self._rest.read(size)
        buffer[: len(data)] = data
        return len(data)


def _read_sample(stream: _BinaryReadable) -> bytes:
    sample = stream.read(SAMPLE_SIZE)
    while sample.isascii() and len(sample) < _MAX_SAMPLE_SIZE:
        more = stream.read(SAMPLE_SIZE)
        if not more:
            break
        sample += more
    return sample


# ---------------------------------------------------------------------------------------------
# Header

# Three digits in a row: a number, a date, a postal code or a phone number — a resident's
# data, not a column's name (名前2, 住所1 have one digit at most).
_DATA_DIGITS = re.compile(r"[0-9]{3}")


def map_header(
    cells: Sequence[str], column_mapping: Mapping[str, str | None] | None = None
) -> HeaderMapping:
    """Match header cells to fields.

    ``column_mapping`` (a municipality's saved mapping, header text -> field name or Japanese
    label, or ``None`` to skip the column) is consulted first; a field it assigns to a header
    this file has is no longer matched by the built-in names (a file without that header is
    read by the built-in names as before: a mapping saved for one system's files does not
    refuse the standard ones). Raises :class:`HeaderError` naming missing required columns,
    with the headers found, or a field given twice."""
    custom: dict[str, str | None] = {}
    for header, target in (column_mapping or {}).items():
        field = None
        if target:
            field = field_for_label(target)
            if field is None:
                raise HeaderError(f"列の対応付けに不明な項目があります（{target}）")
        custom[normalize_header(header)] = field
    present = {normalize_header(cell) for cell in cells}
    assigned_by_custom = {
        field for key, field in custom.items() if field is not None and key in present
    }

    columns: list[str | None] = []
    ignored: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        key = normalize_header(cell)
        if key in custom:
            field = custom[key]
        else:
            field = HEADER_ALIASES.get(key)
            if field in assigned_by_custom:
                field = None
        if field is None:
            if key:
                ignored.append(cell.strip())
            columns.append(None)
            continue
        if field in seen:
            raise HeaderError(
                f"「{FIELD_LABELS[field]}」の列が2つあります"
                f"（{seen[field] + 1}列目と{index + 1}列目）。どちらか一方にしてください"
            )
        seen[field] = index
        columns.append(field)

    missing = [FIELD_LABELS[field] for field in REQUIRED_FIELDS if field not in seen]
    if missing:
        names = "、".join(f"「{label}」" for label in missing)
        found = [cell.strip() for cell in cells if cell.strip()]
        if any(_DATA_DIGITS.search(unicodedata.normalize("NFKC", cell)) for cell in found):
            # A resident's row where the header should be (a file saved without one): its
            # cells are personal data, never repeated in a message the control plane shows.
            raise HeaderError(
                f"必須の列が見つかりません: {names}。"
                "見出し行があるはずの行に、見出しではなくデータ（番号や日付）が入っています"
                "（住民の情報のため、その内容はここに表示しません）。"
                "ファイルの先頭に見出し行（接種券番号,氏名,氏名カナ,生年月日,…）があるかを"
                "確認してください"
            )
        shown = "、".join(f"「{cell[:20]}」" for cell in found[:12]) + (
            "…" if len(found) > 12 else ""
        )
        raise HeaderError(
            f"必須の列が見つかりません: {names}。"
            f"見出しとして読んだ行の列：{shown or 'なし'}。"
            "1行目が見出し行になっているか、列名が正しいかを確認してください"
            "（列名が違うときは「列の対応付け」で設定できます）"
        )
    return HeaderMapping(columns=tuple(columns), ignored=tuple(ignored))


# ---------------------------------------------------------------------------------------------
# Records


def _csv_problem(error: csv.Error) -> str:
    text = str(error)
    if "expected after" in text:
        return '引用符（"）の使い方が正しくありません。"で囲んだ項目の中の"は""と2つ重ねてください'
    return "この行をCSVとして読み取れません"


class RegistryFile:
    """A registry CSV opened for streaming; iterate it for :class:`CsvRecord` objects.

    Use :func:`open_registry`. ``encoding`` is the codec in use (detected or chosen),
    ``header`` the column mapping.
    """

    def __init__(
        self,
        stream: _BinaryReadable,
        *,
        encoding: str | None = None,
        column_mapping: Mapping[str, str | None] | None = None,
    ) -> None:
        sample = _read_sample(stream)
        if encoding is None:
            self.encoding = detect_encoding(sample)
        else:
            self.encoding = resolve_encoding(encoding)
        raw = io.BufferedReader(_PrefixedStream(sample, stream), buffer_size=SAMPLE_SIZE)
        # newline="": the csv module sees line endings as they are, so quoted fields keep
        # their line breaks, and each of \r\n, \n, \r ends one physical line.
        self._start(
            io.TextIOWrapper(raw, encoding=self.encoding, errors=DECODE_ERRORS, newline=""),
            column_mapping,
            unreadable=True,
        )

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        encoding: str,
        column_mapping: Mapping[str, str | None] | None = None,
        unreadable: bool = False,
    ) -> RegistryFile:
        """A registry already decoded as a whole (a chunk of a file: the header record and
        whole records). ``encoding`` is the codec it was decoded with; ``unreadable``: with
        DECODE_ERRORS, and bytes it could not read (their records are refused)."""
        registry = cls.__new__(cls)
        registry.encoding = encoding
        # StringIO with newline="" splits lines exactly as TextIOWrapper(newline="") does.
        registry._start(io.StringIO(text, newline=""), column_mapping, unreadable=unreadable)
        return registry

    def _start(
        self,
        text: io.TextIOBase,
        column_mapping: Mapping[str, str | None] | None,
        *,
        unreadable: bool,
    ) -> None:
        # Whether a record may hold an unreadable byte: each record is then looked at for one.
        self._unreadable = unreadable
        # The voucher-number cell of each row rows() refuses whole (its line: the cell as
        # read): the voucher stays named by the file (a full list does not withdraw it, and a
        # duplicate of its number is found), though nothing else of the row is used.
        self.problem_vouchers: dict[int, str] = {}
        self._text = text
        self._reader = csv.reader(self._text, strict=True)
        self._finished = False
        self.header_line_number = 0
        self.header = self._read_header(column_mapping)

    @property
    def encoding_label(self) -> str:
        return ENCODING_LABELS.get(self.encoding, self.encoding)

    def _next_cells(self) -> tuple[int, list[str] | str] | None:
        """(start line, cells) or (start line, problem); None at the end of the file."""
        start = self._reader.line_num + 1
        try:
            return start, next(self._reader)
        except StopIteration:
            return None
        except csv.Error as error:
            return start, self._refused(start, error)

    @property
    def _unreadable_problem(self) -> str:
        return (
            f"{self.encoding_label}として読めない文字があります。この行の文字を確かめて直して"
            "ください（ファイル全体の文字コードが違うときは、文字コードを指定して取り込み直して"
            "ください）"
        )

    def _refused(self, start: int, error: csv.Error) -> str:
        """The problem with the record starting on line ``start`` that the reader refused;
        raises :class:`CsvFileError` when the error means the file cannot be read on."""
        if "field larger than field limit" in str(error):
            # An unclosed quote (the rows after it read into one cell), or a cell that long.
            raise CsvFileError(
                f"{start}行目から始まる項目が長すぎます（{csv.field_size_limit():,}文字を超えて"
                'います）。引用符（"）が閉じられていないか、1つの項目に長すぎる内容が'
                "入っていないかを確かめてください"
            ) from None
        if "unexpected end of data" in str(error):
            # Every row after the quote was read into one cell: refusing that row alone
            # would drop them unseen (and a full list would withdraw their vouchers).
            raise CsvFileError(
                f'{start}行目から始まる項目の引用符（"）が閉じられないまま、ファイルが終わって'
                "います。この行より後の行を読み取れないため、ファイル全体を取り込みません。"
                "引用符を閉じてから取り込み直してください"
            ) from None
        if "NUL" in str(error):
            raise CsvFileError(
                f"{start}行目にNUL文字があります。CSVファイルではないようです"
            ) from None
        return _csv_problem(error)

    def _read_header(self, column_mapping: Mapping[str, str | None] | None) -> HeaderMapping:
        while True:
            item = self._next_cells()
            if item is None:
                raise HeaderError("見出し行がありません（ファイルが空です）")
            line_number, cells = item
            if isinstance(cells, str):
                raise HeaderError(f"見出し行（{line_number}行目）を読み取れません: {cells}")
            broken = [n for n, cell in enumerate(cells, 1) if UNREADABLE.search(cell)]
            if self._unreadable and broken:
                raise HeaderError(
                    f"見出し行（{line_number}行目）の{'、'.join(map(str, broken))}列目に"
                    f"{self.encoding_label}として読めない文字があります。ファイルの文字コードが"
                    "違うときは文字コードを指定して、見出しの文字が壊れているときは見出しを"
                    "直してから、取り込み直してください"
                )
            if any(cell.strip() for cell in cells):
                self.header_line_number = line_number
                return map_header(cells, column_mapping)

    def rows(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        """``(line number, cells, None)`` for each data record, or ``(line number, None,
        problem)`` for one the reader could not split properly, or that lacks cells of the
        columns imported (a row cut short: importing it would empty the values of a voucher
        already held). ``cells`` are in file order (see ``header.columns``); a row short of
        columns not imported only is not padded. Blank rows are skipped.

        :meth:`__iter__` gives the same records as :class:`CsvRecord`; a bulk import reads
        this instead and spares a dictionary per row."""
        if self._finished:
            return
        width = len(self.header.columns)
        # The cells a row must have: up to the last column imported.
        needed = max((i + 1 for i, field in enumerate(self.header.columns) if field), default=0)
        reader = self._reader
        unreadable = self._unreadable
        voucher_at = self.header.columns.index("voucher_number")
        kept = self.problem_vouchers
        # The reader is iterated directly (a record starts on the line after the one the
        # previous record ended on); a record it refuses is worded by _refused, and reading
        # goes on after it.
        start = reader.line_num + 1
        while True:
            try:
                for cells in reader:
                    line_number, start = start, reader.line_num + 1
                    first = cells[0] if cells else ""
                    # A blank line, or a row of empty cells as spreadsheets leave: skipped.
                    # (A first cell with text is the common case, and decides at once.)
                    if (not first or first.isspace()) and not "".join(cells).strip():
                        continue
                    count = len(cells)
                    if count > width and any(cell.strip() for cell in cells[width:]):
                        kept[line_number] = cells[voucher_at]
                        yield (
                            line_number,
                            None,
                            f"列の数が見出しより多くなっています（見出し{width}列、この行{count}列）。"
                            '住所などにカンマを含む項目は"で囲んでください',
                        )
                        continue
                    if unreadable and UNREADABLE.search("".join(cells)):
                        kept[line_number] = cells[voucher_at] if voucher_at < count else ""
                        yield line_number, None, self._unreadable_problem
                        continue
                    if count < needed:
                        kept[line_number] = cells[voucher_at] if voucher_at < count else ""
                        yield (
                            line_number,
                            None,
                            f"列の数が見出しより少なくなっています（見出し{width}列、この行{count}列）。"
                            "空欄の項目もカンマで区切って残してください（欠けた列の登録内容を"
                            "消してしまわないよう、この行は取り込みません）",
                        )
                        continue
                    yield line_number, cells, None
                break
            except csv.Error as error:
                problem = self._refused(start, error)
            yield start, None, problem
            start = reader.line_num + 1
        self._finished = True

    def __iter__(self) -> Iterator[CsvRecord]:
        indexed = [(index, field) for index, field in enumerate(self.header.columns) if field]
        for line_number, cells, problem in self.rows():
            if cells is None:
                yield CsvRecord(line_number, {}, problem)
                continue
            count = len(cells)
            # Short only of columns not imported (rows() refuses the others).
            values = {field: cells[index] for index, field in indexed if index < count}
            yield CsvRecord(line_number, values)

    def close(self) -> None:
        """Release the decoding buffers; the caller's stream stays open."""
        self._text.close()

    def __enter__(self) -> RegistryFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_registry(
    stream: _BinaryReadable,
    *,
    encoding: str | None = None,
    column_mapping: Mapping[str, str | None] | None = None,
) -> RegistryFile:
    """Open a registry CSV from a binary stream (an upload, an S3 body, an open file).

    ``encoding`` overrides detection (``"utf-8"``, ``"cp932"``/``"shift_jis"``);
    ``column_mapping`` is the municipality's saved header -> field mapping. Reads the header
    at once, so :class:`HeaderError` and encoding errors come from here; the records are read
    as the result is iterated. The caller keeps ownership of ``stream`` and closes it."""
    return RegistryFile(stream, encoding=encoding, column_mapping=column_mapping)


# ---------------------------------------------------------------------------------------------
# Upload guard

_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D, 0x1A} | {0x7F}
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (
        b"PK\x03\x04",
        "Excelファイル（.xlsx）またはZIPファイルのようです。CSV形式で保存し直してください",
    ),
    (b"\xd0\xcf\x11\xe0", "Excelファイル（.xls）のようです。CSV形式で保存し直してください"),
    (b"%PDF", "PDFファイルのようです。CSVファイルを選んでください"),
    (
        b"\xff\xfe",
        "UTF-16 のファイルは取り込めません。UTF-8 または Shift_JIS のCSVで保存し直してください",
    ),
    (
        b"\xfe\xff",
        "UTF-16 のファイルは取り込めません。UTF-8 または Shift_JIS のCSVで保存し直してください",
    ),
)


def _format_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}MB"
    if size >= 1024:
        return f"{size / 1024:.1f}KB"
    return f"{size}バイト"


def check_upload(first_bytes: bytes, size: int, limit: int, *, encoding: str | None = None) -> None:
    """Refuse an upload before parsing it: over ``limit`` bytes, empty, binary, or not a CSV.

    ``first_bytes`` is the start of the file (a few KB is enough), ``size`` its full size;
    ``encoding``, a codec the operator chose (then not detected: the rows it cannot read are
    refused one by one, as the preview says). Raises :class:`UploadRejected` with a Japanese
    message; returns None when the file may be parsed."""
    if size <= 0 or not first_bytes.strip():
        raise UploadRejected("ファイルが空です")
    if size > limit:
        raise UploadRejected(
            f"ファイルが大きすぎます（上限{_format_size(limit)}、このファイルは{_format_size(size)}）。"
            "ファイルを分けて取り込んでください"
        )
    for magic, message in _MAGIC:
        if first_bytes.startswith(magic):
            raise UploadRejected(message)
    if b"\x00" in first_bytes:
        raise UploadRejected(
            "バイナリファイルのようです（NUL文字を含みます）。CSVファイルを選んでください"
        )
    controls = sum(1 for byte in first_bytes[:SAMPLE_SIZE] if byte in _CONTROL_BYTES)
    if controls > max(8, len(first_bytes[:SAMPLE_SIZE]) // 100):
        raise UploadRejected(
            "バイナリファイルのようです（制御文字が多く含まれます）。CSVファイルを選んでください"
        )
    if b"\r" in first_bytes and b"\n" not in first_bytes:
        # Lines ended by CR alone (an old Mac's files): records are cut at LF.
        raise UploadRejected(
            "改行コードがCRだけのファイルです（古いMacの形式）。改行コードをCRLFまたはLFに"
            "して保存し直してください"
        )
    try:
        encoding = encoding or detect_encoding(first_bytes)
    except CsvFileError as error:
        raise UploadRejected(error.message) from None
    text = first_bytes.decode(encoding, errors="ignore")
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    lowered = first_line.lstrip().lower()
    if lowered.startswith(("<!doctype", "<html", "<?xml")):
        raise UploadRejected("HTMLまたはXMLのファイルのようです。CSVファイルを選んでください")
    if "," not in first_line:
        if "\t" in first_line:
            raise UploadRejected(
                "タブ区切りのファイルのようです。カンマ区切り（CSV）で保存し直してください"
            )
        raise UploadRejected("CSVファイル（カンマ区切り）ではないようです。1行目に見出しが必要です")
