"""Encryption of residents' personal fields under their municipality's data key.

Every ciphertext is bound, through AES-GCM's associated data, to the tenant, table, row and
(for single fields) column it was written for. A ciphertext copied anywhere else - another
row, another column, another municipality's schema - fails authentication instead of
decrypting, so a mix-up or a malicious UPDATE cannot make one resident's data show up as
another's.

Formats (the first byte is a format version, so keys or layouts can change later):

    field:  0x01 | nonce (12) | AES-GCM(value UTF-8) + tag (16)
    record: 0x01 | nonce (12) | AES-GCM(encoded mapping) + tag (16)
    segments (a file too large to hold whole, sealed and opened a piece at a time):
            SEGMENTS_MAGIC | per segment: flag (0x00 more, 0x01 last) | length (4)
                           | 0x01 | nonce (12) | AES-GCM(bytes) + tag (16)

The field, record and segment formats use different associated-data labels, so one is never
accepted as another. A segment's associated data also holds its position and its flag: a
segment moved, dropped or flagged last before its time fails authentication, and a stream
without its last segment is refused as cut short.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenants.keys import DATA_KEY_BYTES, data_key_for

FORMAT_VERSION = b"\x01"
NONCE_BYTES = 12
TAG_BYTES = 16
BLIND_INDEX_BYTES = 16

_HEADER_BYTES = len(FORMAT_VERSION) + NONCE_BYTES
_FIELD_LABEL = b"sesshu:field:v1"
_RECORD_LABEL = b"sesshu:record:v1"
_SEGMENT_LABEL = b"sesshu:segment:v1"
# The first byte is never FORMAT_VERSION: a file written whole as a field before segments
# existed is told apart by its first bytes.
SEGMENTS_MAGIC = b"\x02sesshu-segments\n"
_MORE, _LAST = b"\x00", b"\x01"
# A segment's plaintext is the writer's choice; a length beyond this is damage, not data
# (and is never allocated).
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
_ENCRYPTION_INFO = b"sesshu:v1:field-encryption"
_INDEX_INFO = b"sesshu:v1:blind-index"

# Record encoding: field count, then per field the name, a presence flag and the value.
_COUNT = struct.Struct(">H")
_NAME_LENGTH = struct.Struct(">H")
_VALUE_LENGTH = struct.Struct(">I")
# HMAC-SHA256's padded keys (RFC 2104), for TenantCipher.blind_indexer.
_SHA256_BLOCK = 64
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))
_ABSENT = 0
_PRESENT = 1


class DecryptionFailed(Exception):
    """The ciphertext is damaged, or belongs to another tenant, table, row or column."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _read_exactly(stream: Readable, size: int) -> bytes:
    """``size`` bytes (a storage's stream may return fewer per call); fewer only at the end."""
    parts = []
    missing = size
    while missing:
        part = stream.read(missing)
        if not part:
            break
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def _length_prefixed(*parts: str | bytes) -> bytes:
    # Length prefixes make the encoding unambiguous: ("ab", "c") and ("a", "bc") differ.
    out = bytearray()
    for part in parts:
        raw = part.encode("utf-8") if isinstance(part, str) else part
        out += _VALUE_LENGTH.pack(len(raw))
        out += raw
    return bytes(out)


def _derive(data_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)


_ENCODED_NAMES: dict[str, bytes] = {}


def _encoded_name(name: str) -> bytes:
    encoded = _ENCODED_NAMES.get(name)
    if encoded is None:
        if not isinstance(name, str):
            raise TypeError(f"record field names are str, not {type(name).__name__}")
        raw_name = name.encode("utf-8")
        encoded = _NAME_LENGTH.pack(len(raw_name)) + raw_name
        if len(_ENCODED_NAMES) < 1024:  # field names are a handful of constants
            _ENCODED_NAMES[name] = encoded
    return encoded


def encode_record(values: Mapping[str, str | None]) -> bytes:
    # Built as a list of parts joined once: a registry import seals a million records.
    if len(values) > 0xFFFF:
        raise ValueError("a sealed record holds at most 65535 fields")
    parts = [_COUNT.pack(len(values))]
    append = parts.append
    absent = bytes([_ABSENT])
    present = bytes([_PRESENT])
    pack_length = _VALUE_LENGTH.pack
    for name, value in values.items():
        append(_encoded_name(name))
        if value is None:
            append(absent)
        elif isinstance(value, str):
            raw_value = value.encode("utf-8")
            append(present)
            append(pack_length(len(raw_value)))
            append(raw_value)
        else:
            raise TypeError(f"record field {name!r} is {type(value).__name__}, not str or None")
    return b"".join(parts)


class RecordEncoder:
    """``encode_record`` for rows that always have the same fields, in the same order.

    The bytes are exactly those of ``encode_record(dict(zip(names, values)))``; the constant
    parts (field count, names, presence flags) are built once instead of once per row, which
    is what a million-row import spends its time on.
    """

    __slots__ = ("names", "_count", "_present", "_absent")

    def __init__(self, names: Sequence[str]) -> None:
        if len(set(names)) != len(names):
            raise ValueError("record field names must be unique")
        if len(names) > 0xFFFF:
            raise ValueError("a sealed record holds at most 65535 fields")
        self.names = tuple(names)
        self._count = _COUNT.pack(len(names))
        self._present = tuple(_encoded_name(name) + bytes([_PRESENT]) for name in names)
        self._absent = tuple(_encoded_name(name) + bytes([_ABSENT]) for name in names)

    def encode(self, values: Sequence[str | None]) -> bytes:
        if len(values) != len(self.names):
            raise ValueError(f"expected {len(self.names)} values, got {len(values)}")
        pack_length = _VALUE_LENGTH.pack
        parts = [self._count]
        append = parts.append
        for present, absent, value in zip(self._present, self._absent, values, strict=True):
            if value is None:
                append(absent)
            else:
                raw = value.encode("utf-8")
                append(present)
                append(pack_length(len(raw)))
                append(raw)
        return b"".join(parts)

    def encode_columns(self, columns: Sequence[Sequence[str | None]]) -> list[bytes]:
        """``[encode(row) for row in zip(*columns)]``, a column at a time: each field's
        bytes are made by C-level maps over its column, then joined row by row (a registry
        import encodes a chunk of thousands of rows at once)."""
        if len(columns) != len(self.names):
            raise ValueError(f"expected {len(self.names)} columns, got {len(columns)}")
        rows = len(columns[0]) if columns else 0
        if any(len(column) != rows for column in columns):
            raise ValueError("columns of different lengths")
        fields = [
            _encoded_column(present, absent, column)
            for present, absent, column in zip(self._present, self._absent, columns, strict=True)
        ]
        return list(map(b"".join, zip(repeat(self._count, rows), *fields, strict=True)))


def _encoded_column(present: bytes, absent: bytes, column: Sequence[str | None]) -> list[bytes]:
    """One field's bytes in every row (``str.encode`` refuses a value that is not text)."""
    pack_length = _VALUE_LENGTH.pack
    if None in column:
        return [
            absent if value is None else present + pack_length(len(raw)) + raw
            for value in column
            for raw in (b"" if value is None else str.encode(value),)
        ]
    raws = list(map(str.encode, column))  # type: ignore[arg-type]  # None is not in column
    return list(map(b"".join, zip(repeat(present), map(pack_length, map(len, raws)), raws)))


def _decode_record(plaintext: bytes) -> dict[str, str | None]:
    # Only ever called on authenticated plaintext, but parse strictly all the same.
    view = memoryview(plaintext)
    try:
        (count,) = _COUNT.unpack_from(view, 0)
        offset = _COUNT.size
        values: dict[str, str | None] = {}
        for _ in range(count):
            (name_length,) = _NAME_LENGTH.unpack_from(view, offset)
            offset += _NAME_LENGTH.size
            name = bytes(view[offset : offset + name_length]).decode("utf-8")
            offset += name_length
            flag = view[offset]
            offset += 1
            if flag == _ABSENT:
                values[name] = None
                continue
            if flag != _PRESENT:
                raise ValueError("unknown presence flag")
            (value_length,) = _VALUE_LENGTH.unpack_from(view, offset)
            offset += _VALUE_LENGTH.size
            if offset + value_length > len(view):
                raise ValueError("truncated value")
            values[name] = bytes(view[offset : offset + value_length]).decode("utf-8")
            offset += value_length
        if offset != len(view) or len(values) != count:
            raise ValueError("trailing bytes or repeated field")
    except (struct.error, IndexError, ValueError) as exc:
        raise DecryptionFailed("the sealed record is malformed") from exc
    return values


class TenantCipher:
    """Field encryption and blind indexes for one tenant. Cheap to reuse; build once per key.

    The data key is never used directly: HKDF derives one subkey for encryption and another
    for the blind index, so an index value can never help an attack on the ciphertexts.
    """

    __slots__ = (
        "tenant_code",
        "_aead",
        "_index_hmac",
        "_index_key",
        "_record_ad_prefixes",
        "_purposes",
    )

    def __init__(self, tenant_code: str, data_key: bytes) -> None:
        if not tenant_code:
            raise ValueError("a tenant code is required")
        if len(data_key) != DATA_KEY_BYTES:
            raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes")
        self.tenant_code = tenant_code
        self._aead = AESGCM(_derive(data_key, _ENCRYPTION_INFO))
        # The tenant code in the info keeps two tenants' indexes apart even if they were
        # ever (wrongly) given the same data key.
        index_key = _derive(data_key, _INDEX_INFO + b":" + tenant_code.encode("utf-8"))
        # A keyed HMAC-SHA256 copied for each value instead of re-keyed (a registry import
        # indexes a million rows, three values each).
        self._index_hmac = hmac.new(index_key, digestmod=hashlib.sha256)
        self._index_key = index_key
        # The constant leading parts of associated data and index messages, per table and
        # purpose: the same bytes as building them whole, without rebuilding them per row.
        self._record_ad_prefixes: dict[str, bytes] = {}
        self._purposes: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"TenantCipher(tenant_code={self.tenant_code!r})"

    def _seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        # Random 96-bit nonces are safe for up to 2**32 messages per key: a tenant writing
        # millions of fields stays far below that, and key rotation resets the count.
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT_VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def _open(self, blob: bytes, associated_data: bytes) -> bytes:
        if len(blob) < _HEADER_BYTES + TAG_BYTES or blob[:1] != FORMAT_VERSION:
            raise DecryptionFailed("not a Sesshu ciphertext of a known version")
        try:
            return self._aead.decrypt(blob[1:_HEADER_BYTES], blob[_HEADER_BYTES:], associated_data)
        except InvalidTag:
            raise DecryptionFailed(
                "the ciphertext is damaged or was written for another tenant, table, row or column"
            ) from None

    def _field_ad(self, table: str, column: str, row_id: str) -> bytes:
        return _length_prefixed(
            FORMAT_VERSION, _FIELD_LABEL, self.tenant_code, table, column, row_id
        )

    def _record_ad(self, table: str, row_id: str) -> bytes:
        prefix = self._record_ad_prefixes.get(table)
        if prefix is None:
            prefix = _length_prefixed(FORMAT_VERSION, _RECORD_LABEL, self.tenant_code, table)
            self._record_ad_prefixes[table] = prefix
        raw = row_id.encode("utf-8")
        return prefix + _VALUE_LENGTH.pack(len(raw)) + raw

    def encrypt_field(self, value: str, *, table: str, column: str, row_id: str) -> bytes:
        return self._seal(value.encode("utf-8"), self._field_ad(table, column, row_id))

    def decrypt_field(self, blob: bytes, *, table: str, column: str, row_id: str) -> str:
        plaintext = self._open(bytes(blob), self._field_ad(table, column, row_id))
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptionFailed("the decrypted field is not UTF-8") from exc

    def seal_record(self, values: Mapping[str, str | None], *, table: str, row_id: str) -> bytes:
        """Encrypt several fields of one row in a single AES-GCM operation.

        The field names travel inside the ciphertext, so `open_record` returns exactly the
        mapping that was sealed, None values included.
        """
        return self._seal(encode_record(values), self._record_ad(table, row_id))

    def seal_encoded_record(self, payload: bytes, *, table: str, row_id: str) -> bytes:
        """`seal_record` for a payload already made by `encode_record` (which a bulk import
        also hashes, so it encodes each row once)."""
        return self._seal(payload, self._record_ad(table, row_id))

    def seal_encoded_records(
        self, payloads: Sequence[bytes], *, table: str, row_ids: Sequence[str]
    ) -> list[bytes]:
        """`seal_encoded_record` for many rows: the same format and associated data, each
        row with its own random nonce, drawn from the OS in one call instead of one per row."""
        if len(payloads) != len(row_ids):
            raise ValueError("one row id per payload")
        nonces = os.urandom(NONCE_BYTES * len(payloads))
        each = [nonces[start : start + NONCE_BYTES] for start in range(0, len(nonces), NONCE_BYTES)]
        sealed = map(
            self._aead.encrypt, each, payloads, map(self._record_ad, repeat(table), row_ids)
        )
        return list(map(b"".join, zip(repeat(FORMAT_VERSION), each, sealed)))

    def _segment_ad(self, table: str, column: str, row_id: str, index: int, flag: bytes) -> bytes:
        return _length_prefixed(
            FORMAT_VERSION,
            _SEGMENT_LABEL,
            self.tenant_code,
            table,
            column,
            row_id,
            str(index),
            flag,
        )

    def seal_segments(
        self, segments: Iterable[bytes], *, table: str, column: str, row_id: str
    ) -> Iterator[bytes]:
        """Seal a file a segment at a time (the segments format): neither this nor
        `open_segments` ever holds more than one segment. No segments at all seal as one
        empty last segment."""
        yield SEGMENTS_MAGIC
        index = 0
        held: bytes | None = None
        for segment in segments:
            if len(segment) > MAX_SEGMENT_BYTES:
                raise ValueError(f"a segment holds at most {MAX_SEGMENT_BYTES} bytes")
            if held is not None:
                yield self._sealed_segment(held, table, column, row_id, index, _MORE)
                index += 1
            held = segment
        yield self._sealed_segment(held or b"", table, column, row_id, index, _LAST)

    def _sealed_segment(
        self, segment: bytes, table: str, column: str, row_id: str, index: int, flag: bytes
    ) -> bytes:
        blob = self._seal(segment, self._segment_ad(table, column, row_id, index, flag))
        return flag + _VALUE_LENGTH.pack(len(blob)) + blob

    def open_segments(
        self, stream: Readable, *, table: str, column: str, row_id: str
    ) -> Iterator[bytes]:
        """The plaintext of a file sealed by `seal_segments`, a segment at a time, read from
        ``stream``. Raises DecryptionFailed on the first segment that does not open, and at
        the end if the last segment is missing or followed by anything."""
        if _read_exactly(stream, len(SEGMENTS_MAGIC)) != SEGMENTS_MAGIC:
            raise DecryptionFailed("not a segmented Sesshu ciphertext")
        index = 0
        head_size = len(_MORE) + _VALUE_LENGTH.size
        limit = _HEADER_BYTES + MAX_SEGMENT_BYTES + TAG_BYTES
        while True:
            head = _read_exactly(stream, head_size)
            if len(head) < head_size:
                raise DecryptionFailed("the sealed file is cut short")
            flag = head[:1]
            (length,) = _VALUE_LENGTH.unpack(head[1:])
            if flag not in (_MORE, _LAST) or length > limit:
                raise DecryptionFailed("the sealed file is malformed")
            blob = _read_exactly(stream, length)
            if len(blob) < length:
                raise DecryptionFailed("the sealed file is cut short")
            yield self._open(blob, self._segment_ad(table, column, row_id, index, flag))
            if flag == _LAST:
                if stream.read(1):
                    raise DecryptionFailed("bytes follow the last segment")
                return
            index += 1

    def open_record(self, blob: bytes, *, table: str, row_id: str) -> dict[str, str | None]:
        return _decode_record(self._open(bytes(blob), self._record_ad(table, row_id)))

    def blind_index_bytes(self, value: bytes, *, purpose: str) -> bytes:
        """`blind_index` of raw bytes (an encoded record, for change detection)."""
        prefix = self._purposes.get(purpose)
        if prefix is None:
            prefix = self._purposes[purpose] = _length_prefixed(purpose)
        mac = self._index_hmac.copy()
        mac.update(prefix)
        mac.update(_VALUE_LENGTH.pack(len(value)))
        mac.update(value)
        return mac.digest()[:BLIND_INDEX_BYTES]

    def blind_indexer(self, purpose: str) -> Callable[[bytes], bytes]:
        """`blind_index_bytes` for one purpose, as a function of the value alone (a registry
        import indexes a million rows, three values each).

        The HMAC is computed from its two SHA-256 states (RFC 2104: the key padded and
        XORed with 0x36 and 0x5c), each absorbed once and copied per value; the inner state
        has absorbed the purpose too. The digests are those of `blind_index_bytes`, at about
        half the cost of copying an ``hmac.HMAC`` (its methods are Python)."""
        inner, outer = self._index_pads()
        inner.update(_length_prefixed(purpose))
        pack_length = _VALUE_LENGTH.pack

        def index(value: bytes) -> bytes:
            mac = inner.copy()
            mac.update(pack_length(len(value)) + value)
            digest = outer.copy()
            digest.update(mac.digest())
            return digest.digest()[:BLIND_INDEX_BYTES]

        return index

    def _index_pads(self) -> tuple[Any, Any]:
        key = self._index_key  # 32 bytes from HKDF; RFC 2104 hashes a key longer than a block
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        return (
            hashlib.sha256(key.translate(_INNER_PAD)),
            hashlib.sha256(key.translate(_OUTER_PAD)),
        )

    def blind_index(self, value: str, *, purpose: str) -> bytes:
        """A keyed digest for exact-match search on an encrypted column.

        Normalise `value` first (NFKC, digits only for a phone number, ...): only identical
        strings match. `purpose` (e.g. "resident.phone") keeps indexes of different columns
        unrelated, so equal values in two columns do not reveal that they are equal.
        """
        digest = self.blind_index_bytes(value.encode("utf-8"), purpose=purpose)
        # The index serves equality lookups only, never ranges or prefixes, so 128 bits are
        # ample (no accidental collision among billions of values) and halve the index size.
        return digest[:BLIND_INDEX_BYTES]


class HasWrappedDataKey(Protocol):
    """What `cipher_for` needs of a tenant: the Municipality model fits."""

    @property
    def code(self) -> str: ...

    @property
    def wrapped_data_key(self) -> bytes | memoryview: ...


def cipher_for(tenant: HasWrappedDataKey) -> TenantCipher:
    """The tenant's cipher, its data key unwrapped through the short-lived key cache.

    Raises tenants.keys.KeyUnavailable if the key cannot be unwrapped.
    """
    # A BinaryField may come back from the database as a memoryview.
    wrapped = bytes(tenant.wrapped_data_key)
    return TenantCipher(tenant.code, data_key_for(tenant_code=tenant.code, wrapped=wrapped))
