"""The CPU-bound half of a registry import: from raw CSV bytes to rows ready for COPY.

A file is cut into chunks at record boundaries (:func:`chunk_file`); each chunk is parsed,
validated, sealed and indexed on its own (:func:`process_chunk`), in as many processes as
there are cores. Nothing here touches the database or Django: a chunk goes in as bytes and
comes out as binary COPY tuples plus the rows' errors, so the work moves between processes
cheaply.

A chunk's rows are validated a column at a time (:class:`booking.registry.columns.
ColumnParser`); a row it leaves in doubt goes through the row validator (:func:`_fast_parser`)
and, if that refuses it too, through :func:`booking.registry.rows.parse_row`, which words
every error. All three give the same values for a row they accept.

One cipher operation per row: every personal field of a row is sealed together
(``TenantCipher.seal_record``); two blind indexes (kana name, phone) and a keyed hash of the
whole normalised row, which tells "changed" from "unchanged" without decrypting anything.
"""

from __future__ import annotations

import io
import operator
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import chain, compress, repeat

from booking.registry.columns import SEPARATOR, ColumnParser, Values
from booking.registry.csvfile import (
    DECODE_ERRORS,
    RegistryFile,
    open_registry,
    resolve_encoding,
)
from booking.registry.dates import parse_birth_date
from booking.registry.errors import RegistryValueError
from booking.registry.fields import FIELD_LABELS, REQUIRED_FIELDS
from booking.registry.normalize import (
    Sex,
    normalize_address,
    normalize_address_number,
    normalize_dose,
    normalize_email,
    normalize_kana,
    normalize_name,
    normalize_phone,
    normalize_postal_code,
    normalize_sex,
    normalize_voucher_number,
)
from booking.registry.places import PlaceReader
from booking.registry.rows import RegistryRecord, RowError, mask_value, parse_row
from tenants.crypto import BLIND_INDEX_BYTES, Readable, RecordEncoder, TenantCipher

VOUCHER_TABLE = "booking_voucher"
CHUNK_BYTES = 2 * 1024 * 1024
_READ_BYTES = 1024 * 1024
PERSONAL_FIELDS = (
    "name",
    "name_kana",
    "birth_date",
    "sex",
    "postal_code",
    "address",
    "phone",
    "email",
    "address_number",
)
COPY_COLUMNS = (
    "import_id",
    "line_number",
    "voucher_number",
    "personal",
    "kana_index",
    "phone_index",
    "content_hash",
    "dose",
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes holding whole records, and the physical line number of the first one."""

    data: bytes
    first_line: int


@dataclass(frozen=True, slots=True)
class FileHead:
    """What every chunk needs to be read on its own: the header record's bytes. And the
    fields the header's columns were read as (None: a column not imported), in file order."""

    header_bytes: bytes
    header_lines: int
    fields: tuple[str | None, ...] = ()


def split_head(
    stream: Readable, *, encoding: str | None, column_mapping: Mapping[str, str | None] | None
) -> tuple[FileHead, str, bytes]:
    """Read the header (validating it) and return it, the encoding, and what follows it.

    The header ends at the first newline outside quotes after the header's last cell.
    """
    sample = stream.read(_READ_BYTES)
    registry = open_registry(io.BytesIO(sample), encoding=encoding, column_mapping=column_mapping)
    encoding_used = registry.encoding
    header_line = registry.header_line_number
    fields = tuple(registry.header.columns)
    registry.close()
    # The header is on physical line ``header_line``; it never spans lines in practice, but a
    # quoted header cell with a line break would: find the end honouring quotes.
    end = _nth_record_end(sample, header_line)
    head = FileHead(sample[:end], sample[:end].count(b"\n"), fields)
    return head, encoding_used, sample[end:]


def _nth_record_end(data: bytes, line: int) -> int:
    """Offset just after the newline that ends physical line ``line`` outside quotes; the
    end of ``data`` when that line is the last, with no newline after it (a file that is a
    header alone, saved without a final line break)."""
    position = -1
    for _ in range(line):
        position = data.find(b"\n", position + 1)
        while position >= 0 and data.count(b'"', 0, position) % 2:
            position = data.find(b"\n", position + 1)
        if position < 0:
            return len(data)
    return position + 1


def chunk_file(
    head: FileHead, rest: bytes, stream: Readable, *, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Chunk]:
    """Cut the records after the header into chunks that end on a record boundary.

    A newline ends a record exactly when the number of double quotes before it is even
    (an escaped quote is doubled, so it never changes the parity). Neither ``"`` nor ``\\n``
    can be the second byte of a CP932 character, so this holds for CP932 as for UTF-8.
    """
    buffer = rest
    next_line = head.header_lines + 1
    finished = False
    while not finished:
        while len(buffer) < chunk_bytes:
            more = stream.read(_READ_BYTES)
            if not more:
                finished = True
                break
            buffer += more
        if finished:
            cut = len(buffer)
        else:
            cut = _record_boundary(buffer, chunk_bytes)
            if cut == 0:  # one record larger than a chunk: take more
                more = stream.read(_READ_BYTES)
                if not more:
                    cut = len(buffer)
                    finished = True
                else:
                    buffer += more
                    continue
        if cut:
            piece = buffer[:cut]
            yield Chunk(piece, next_line)
            next_line += piece.count(b"\n")
        buffer = buffer[cut:]
    if buffer:
        yield Chunk(buffer, next_line)


def _record_boundary(buffer: bytes, around: int) -> int:
    """The largest offset ≤ ``around`` (or the first after it) just past a record end."""
    position = buffer.rfind(b"\n", 0, around)
    quotes = buffer.count(b'"', 0, position) if position >= 0 else 0
    while position >= 0 and quotes % 2:
        previous = buffer.rfind(b"\n", 0, position)
        quotes -= buffer.count(b'"', previous + 1 if previous >= 0 else 0, position)
        position = previous
    return position + 1 if position >= 0 else 0


@dataclass(slots=True)
class ChunkResult:
    # The valid rows as PostgreSQL binary COPY tuples (no header, no trailer: see copy_binary).
    copy_data: bytes
    rows: int
    valid: int
    # Each error with the row's voucher number when that much of the row is valid ("" if not).
    errors: list[tuple[RowError, str]] = field(default_factory=list)
    bytes_done: int = 0
    # Of the first valid rows' addresses (ADDRESS_SAMPLE), how many were read, and the other
    # municipalities they named, with how many each.
    addresses_checked: int = 0
    elsewhere: dict[str, int] = field(default_factory=dict)


COPY_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_BINARY_TRAILER = struct.pack(">h", -1)


def copy_binary(*pieces: bytes) -> Iterator[bytes]:
    """Chunk results' ``copy_data`` framed as one ``COPY ... (FORMAT binary)`` stream."""
    yield COPY_BINARY_HEADER
    yield from pieces
    yield COPY_BINARY_TRAILER


def _valid_voucher_number(raw: str) -> str:
    try:
        return normalize_voucher_number(raw) if raw else ""
    except RegistryValueError:
        return ""


def kana_key(kana: str) -> str:
    """What staff type and what the registry holds compare equal: no spaces at all."""
    return kana.replace(" ", "").replace("\u3000", "")


_FINGERPRINT_PURPOSE = "registry-row"

# What the fingerprint appends to the payload, for every dose normalize_dose returns.
_DOSE_SUFFIX: dict[int | None, bytes] = {
    dose: b"\x00" + (str(dose).encode() if dose is not None else b"") for dose in (None, *range(10))
}


_ENCODER = RecordEncoder(PERSONAL_FIELDS)


def _values_of(record: RegistryRecord) -> Values:
    return (
        record.name,
        record.name_kana,
        record.birth_date.isoformat(),
        record.sex.value if record.sex is not None else None,
        record.postal_code,
        record.address,
        record.phone,
        record.email,
        record.address_number,
        record.voucher_number,
        record.dose,
    )


def _fast_parser(
    columns: Sequence[str | None], today: date
) -> Callable[[list[str]], Values | None]:
    """A validator for the common row, in which every value is present and valid.

    It calls the same normalisers as :func:`booking.registry.rows.parse_row`, in straight
    code over the cells instead of a loop over dictionaries; on anything unusual (a missing
    required value, a value a normaliser refuses) it returns None and the row goes through
    ``parse_row``, which decides, and words every error, exactly as before.
    """
    where = {name: index for index, name in enumerate(columns) if name is not None}
    # -1: the column is not in the file. Required columns always are (map_header checks).
    i_voucher, i_name, i_kana, i_birth = (where[name] for name in REQUIRED_FIELDS)
    i_number, i_sex, i_postal, i_address, i_phone, i_email, i_dose = (
        where.get(name, -1)
        for name in (
            "address_number",
            "sex",
            "postal_code",
            "address",
            "phone",
            "email",
            "dose",
        )
    )
    width = max(where.values()) + 1

    # Optional columns the file does not have read as an empty cell.
    has_number, has_sex, has_postal, has_address, has_phone, has_email, has_dose = (
        index >= 0 for index in (i_number, i_sex, i_postal, i_address, i_phone, i_email, i_dose)
    )
    sex_value = {member: member.value for member in Sex}

    def parse(cells: list[str]) -> Values | None:
        if len(cells) < width:
            return None  # a short row: the general path knows what is missing
        voucher = cells[i_voucher]
        name = cells[i_name]
        kana = cells[i_kana]
        birth = cells[i_birth]
        if (
            not voucher
            or not name
            or not kana
            or not birth
            or voucher.isspace()
            or name.isspace()
            or kana.isspace()
            or birth.isspace()
        ):
            return None
        # An optional value that is empty or blank is absent (None), as in parse_row.
        try:
            born = parse_birth_date(birth, today=today)
            raw = cells[i_number] if has_number else ""
            number = normalize_address_number(raw) if raw and not raw.isspace() else None
            raw = cells[i_sex] if has_sex else ""
            sex = sex_value[normalize_sex(raw)] if raw and not raw.isspace() else None
            raw = cells[i_postal] if has_postal else ""
            postal = normalize_postal_code(raw) if raw and not raw.isspace() else None
            raw = cells[i_address] if has_address else ""
            address = normalize_address(raw) if raw and not raw.isspace() else None
            raw = cells[i_phone] if has_phone else ""
            phone = normalize_phone(raw) if raw and not raw.isspace() else None
            raw = cells[i_email] if has_email else ""
            email = normalize_email(raw) if raw and not raw.isspace() else None
            raw = cells[i_dose] if has_dose else ""
            dose = normalize_dose(raw) if raw and not raw.isspace() else None
            return (
                normalize_name(name),
                normalize_kana(kana),
                born.isoformat(),
                sex,
                postal,
                address,
                phone,
                email,
                number,
                normalize_voucher_number(voucher),
                dose,
            )
        except RegistryValueError:
            return None

    return parse


# Binary COPY tuple parts (see COPY_COLUMNS): a field count, then each field's length and
# bytes (length -1: NULL). import_id is int8, line_number int4, dose int2.
_ROW_HEAD = struct.Struct(">hiqiii")
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)
_INDEX_LENGTH = _LENGTH.pack(BLIND_INDEX_BYTES)
_DOSE_FIELD: dict[int | None, bytes] = {
    None: _NULL,
    **{dose: _LENGTH.pack(2) + struct.pack(">h", dose) for dose in range(10)},
}


# Addresses read per chunk for the municipality they name: enough to tell another
# municipality's file (every row of it names that one), at no cost per row worth counting.
ADDRESS_SAMPLE = 50
_ADDRESS_AT = 5  # in Values


def process_chunk(
    chunk: Chunk,
    *,
    head: FileHead,
    encoding: str,
    column_mapping: Mapping[str, str | None] | None,
    tenant_code: str,
    data_key: bytes,
    import_id: int,
    today: date,
    home: tuple[str, str] | None = None,
) -> ChunkResult:
    """``home``: the municipality's prefecture and name, which its rows' addresses are
    checked against (see booking.registry.places)."""
    cipher = TenantCipher(tenant_code, data_key)
    registry = _open_chunk(chunk, head=head, encoding=encoding, column_mapping=column_mapping)
    offset = chunk.first_line - head.header_lines - 1
    errors: list[tuple[RowError, str]] = []
    lines: list[int] = []
    valid_rows: list[Values] = []
    rows = 0
    columns = registry.header.columns
    fast = _fast_parser(columns, today)
    indexed = [(index, name) for index, name in enumerate(columns) if name is not None]
    voucher_at = columns.index("voucher_number")
    with registry:
        records = list(registry.rows())
    # Rows as wide as the header are validated a column at a time; a row that leaves in
    # doubt (and every narrower row) goes through the row parsers below.
    width = max(index for index, _name in indexed) + 1
    wide = [
        cells for _line, cells, _problem in records if cells is not None and len(cells) >= width
    ]
    garbled = _garbled(wide, columns, encoding)
    decided = iter(ColumnParser(columns, today).values(wide))
    at = -1  # the row's index in ``wide``
    for line_number, cells, problem in records:
        rows += 1
        is_wide = cells is not None and len(cells) >= width
        at += is_wide
        values = next(decided) if is_wide else None
        if garbled and is_wide and at in garbled:
            assert cells is not None
            found = RowError(line_number + offset, *garbled[at])
            errors.append((found, _valid_voucher_number(cells[voucher_at])))
            continue
        if values is None and cells is not None:
            values = fast(cells)
        if values is None:
            if cells is None:
                result: RegistryRecord | list[RowError] = [
                    RowError(line_number, None, "", problem or "")
                ]
                raw_voucher = registry.problem_vouchers.get(line_number, "")
            else:
                count = len(cells)
                raw = {name: cells[index] for index, name in indexed if index < count}
                raw_voucher = raw.get("voucher_number", "")
                result = parse_row(raw, line_number, today=today)
            if isinstance(result, list):
                voucher = _valid_voucher_number(raw_voucher)
                errors.extend(
                    (RowError(e.line_number + offset, e.column, e.value, e.message), voucher)
                    for e in result
                )
                continue
            values = _values_of(result)
        valid_rows.append(values)
        lines.append(line_number + offset)
    if not valid_rows:
        return ChunkResult(b"", rows, 0, errors, len(chunk.data))
    checked, elsewhere = _places(valid_rows[:ADDRESS_SAMPLE], home)
    return ChunkResult(
        _copy_tuples(cipher, valid_rows, lines, import_id),
        rows,
        len(valid_rows),
        errors,
        len(chunk.data),
        checked,
        elsewhere,
    )


def _places(rows: list[Values], home: tuple[str, str] | None) -> tuple[int, dict[str, int]]:
    """How many of ``rows`` have an address, and the other municipalities those name."""
    if home is None:
        return 0, {}
    reader = PlaceReader(*home)
    addresses = [str(values[_ADDRESS_AT]) for values in rows if values[_ADDRESS_AT]]
    return len(addresses), Counter(filter(None, map(reader.elsewhere, addresses)))


# Text columns where UTF-8 pasted into a Shift_JIS file reads as other kanji (山田 as 螻ア逕ー)
# with no byte refused: the cell's bytes, as sent, are valid UTF-8 (real Shift_JIS text of
# kanji and kana practically never is).
_GARBLED_COLUMNS = ("name", "address")


def _garbled(
    wide: list[list[str]], columns: Sequence[str | None], encoding: str
) -> dict[int, tuple[str, str, str]]:
    """For a CP932 file, the rows of ``wide`` (by their index) with a text cell that is
    UTF-8 read as CP932: (column label, masked value, message). A column at a time, in C:
    its cells joined, encoded back and decoded as UTF-8 once (the separator is ASCII, so no
    cell's bytes run into another's); a cell that decodes without a replacement, and is not
    ASCII, is one. (Rows narrower than the header, short of columns not imported only, are
    rare and not looked at.)"""
    if resolve_encoding(encoding) != "cp932":
        return {}
    found: dict[int, tuple[str, str, str]] = {}
    for index, name in enumerate(columns):
        if name not in _GARBLED_COLUMNS:
            continue
        texts = list(map(operator.itemgetter(index), wide))
        joined = SEPARATOR.join(texts)
        if joined.isascii():
            continue
        read = joined.encode("cp932", "replace").decode("utf-8", "replace").split(SEPARATOR)
        if len(read) != len(texts):
            continue
        whole = map(operator.not_, map(operator.contains, read, repeat("\ufffd")))
        for at in compress(range(len(texts)), whole):
            cell = texts[at]
            if not cell.isascii():
                label = FIELD_LABELS[name]
                found.setdefault(
                    at,
                    (
                        label,
                        mask_value(cell),
                        f"{label}の文字が化けています（UTF-8で書かれた文字が、Shift_JISの"
                        "ファイルに混じっているようです）。この行の文字を直してください",
                    ),
                )
    return found


def _copy_tuples(
    cipher: TenantCipher, valid_rows: list[Values], lines: list[int], import_id: int
) -> bytes:
    """The rows as binary COPY tuples, built a column at a time: one AES-GCM seal of the
    personal fields, the two blind indexes and the fingerprint per row, and the framing,
    through C-level maps over the columns rather than a Python loop over the rows."""
    columns = list(zip(*valid_rows, strict=True))
    payloads = _ENCODER.encode_columns(columns[:9])
    vouchers, doses = columns[9], columns[10]
    sealed = cipher.seal_encoded_records(payloads, table=VOUCHER_TABLE, row_ids=vouchers)
    voucher_bytes = list(map(str.encode, vouchers))
    heads = map(
        _ROW_HEAD.pack,
        repeat(len(COPY_COLUMNS)),
        repeat(8),
        repeat(import_id),
        repeat(4),
        lines,
        map(len, voucher_bytes),
    )
    kana_indexes = map(cipher.blind_indexer("name_kana"), map(str.encode, _kana_keys(columns[1])))
    index_phone = cipher.blind_indexer("phone")
    phone_fields = [
        _NULL if phone is None else _INDEX_LENGTH + index_phone(phone.encode())
        for phone in columns[6]
    ]
    fingerprints = map(
        cipher.blind_indexer(_FINGERPRINT_PURPOSE),
        map(operator.add, payloads, map(_DOSE_SUFFIX.__getitem__, doses)),
    )
    fields = zip(
        heads,
        voucher_bytes,
        map(_LENGTH.pack, map(len, sealed)),
        sealed,
        repeat(_INDEX_LENGTH),
        kana_indexes,
        phone_fields,
        repeat(_INDEX_LENGTH),
        fingerprints,
        map(_DOSE_FIELD.__getitem__, doses),
    )
    return b"".join(chain.from_iterable(fields))


def _kana_keys(kanas: Sequence[str]) -> list[str]:
    """``kana_key`` of each name, applied once to the whole column."""
    keys = kana_key("\x00".join(kanas)).split("\x00")
    return keys if len(keys) == len(kanas) else list(map(kana_key, kanas))


def _open_chunk(
    chunk: Chunk,
    *,
    head: FileHead,
    encoding: str,
    column_mapping: Mapping[str, str | None] | None,
) -> RegistryFile:
    """The chunk (after the file's header record) opened as a registry of its own, decoded
    in one go. A chunk with bytes its encoding cannot read is decoded keeping them (their
    records are refused, each with its line, and go back as sent in the error file)."""
    data = head.header_bytes + chunk.data
    codec = resolve_encoding(encoding)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        text = data.decode(codec, DECODE_ERRORS)
        return RegistryFile.from_text(
            text, encoding=encoding, column_mapping=column_mapping, unreadable=True
        )
    return RegistryFile.from_text(text, encoding=encoding, column_mapping=column_mapping)
