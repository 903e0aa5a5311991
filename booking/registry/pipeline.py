"""The CPU-bound half of a registry import: from raw CSV bytes to rows ready for COPY.

A file is cut into chunks at record boundaries (:func:`chunk_file`); each chunk is parsed,
validated, sealed and indexed on its own (:func:`process_chunk`), in as many processes as
there are cores. Nothing here touches the database or Django: a chunk goes in as bytes and
comes out as COPY text plus the rows' errors, so the work moves between processes cheaply.

One cipher operation per row: every personal field of a row is sealed together
(``TenantCipher.seal_record``); two blind indexes (kana name, phone) and a keyed hash of the
whole normalised row, which tells "changed" from "unchanged" without decrypting anything.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from booking.registry.csvfile import open_registry
from booking.registry.errors import RegistryValueError
from booking.registry.normalize import normalize_voucher_number
from booking.registry.rows import RegistryRecord, RowError, parse_record
from tenants.crypto import TenantCipher, encode_record

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


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes holding whole records, and the physical line number of the first one."""

    data: bytes
    first_line: int


@dataclass(frozen=True, slots=True)
class FileHead:
    """What every chunk needs to be read on its own: the header record's bytes."""

    header_bytes: bytes
    header_lines: int


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
    registry.close()
    # The header is on physical line ``header_line``; it never spans lines in practice, but a
    # quoted header cell with a line break would: find the end honouring quotes.
    end = _nth_record_end(sample, header_line)
    return FileHead(sample[:end], sample[:end].count(b"\n")), encoding_used, sample[end:]


def _nth_record_end(data: bytes, line: int) -> int:
    """Offset just after the newline that ends physical line ``line`` outside quotes."""
    position = -1
    for _ in range(line):
        position = data.index(b"\n", position + 1)
        while data.count(b'"', 0, position) % 2:
            position = data.index(b"\n", position + 1)
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
    copy_text: str
    rows: int
    valid: int
    # Each error with the row's voucher number when that much of the row is valid ("" if not).
    errors: list[tuple[RowError, str]] = field(default_factory=list)
    bytes_done: int = 0


def _valid_voucher_number(raw: str) -> str:
    try:
        return normalize_voucher_number(raw) if raw else ""
    except RegistryValueError:
        return ""


def _hex(value: bytes | None) -> str:
    return "\\N" if value is None else "\\\\x" + value.hex()


def record_values(record: RegistryRecord) -> dict[str, str | None]:
    return {
        "name": record.name,
        "name_kana": record.name_kana,
        "birth_date": record.birth_date.isoformat(),
        "sex": record.sex.value if record.sex is not None else None,
        "postal_code": record.postal_code,
        "address": record.address,
        "phone": record.phone,
        "email": record.email,
        "address_number": record.address_number,
    }


def kana_key(kana: str) -> str:
    """What staff type and what the registry holds compare equal: no spaces at all."""
    return kana.replace(" ", "").replace("\u3000", "")


def row_fingerprint(cipher: TenantCipher, payload: bytes, record: RegistryRecord) -> bytes:
    """A keyed hash of the row as sealed (and its dose): equal exactly when nothing changed."""
    dose = str(record.dose).encode() if record.dose is not None else b""
    return cipher.blind_index_bytes(payload + b"\x00" + dose, purpose="registry-row")


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
) -> ChunkResult:
    cipher = TenantCipher(tenant_code, data_key)
    stream = io.BytesIO(head.header_bytes + chunk.data)
    offset = chunk.first_line - head.header_lines - 1
    lines: list[str] = []
    errors: list[tuple[RowError, str]] = []
    rows = valid = 0
    import_text = str(import_id)
    with open_registry(stream, encoding=encoding, column_mapping=column_mapping) as registry:
        for raw in registry:
            rows += 1
            result = parse_record(raw, today=today)
            if isinstance(result, list):
                voucher = _valid_voucher_number(raw.values.get("voucher_number", ""))
                errors.extend(
                    (RowError(e.line_number + offset, e.column, e.value, e.message), voucher)
                    for e in result
                )
                continue
            valid += 1
            record = result
            payload = encode_record(record_values(record))
            sealed = cipher.seal_encoded_record(
                payload, table=VOUCHER_TABLE, row_id=record.voucher_number
            )
            kana = cipher.blind_index(kana_key(record.name_kana), purpose="name_kana")
            phone = cipher.blind_index(record.phone, purpose="phone") if record.phone else None
            lines.append(
                "\t".join(
                    (
                        import_text,
                        str(record.line_number + offset),
                        record.voucher_number,
                        _hex(sealed),
                        _hex(kana),
                        _hex(phone),
                        _hex(row_fingerprint(cipher, payload, record)),
                        str(record.dose) if record.dose is not None else "\\N",
                    )
                )
            )
    lines.append("")
    return ChunkResult("\n".join(lines) if valid else "", rows, valid, errors, len(chunk.data))
