"""The segments format: a large file sealed and opened a piece at a time, its pieces bound to
their place, the stream refused when cut short, reordered or extended."""

from __future__ import annotations

import io
import os

import pytest

from tenants.crypto import SEGMENTS_MAGIC, DecryptionFailed, TenantCipher

WHERE = {"table": "registry_error_file", "column": "content", "row_id": "7"}


@pytest.fixture
def cipher() -> TenantCipher:
    return TenantCipher("132110", os.urandom(32))


def _sealed(cipher: TenantCipher, segments: list[bytes], **where: str) -> bytes:
    return b"".join(cipher.seal_segments(iter(segments), **(where or WHERE)))


def _opened(cipher: TenantCipher, data: bytes, **where: str) -> list[bytes]:
    return list(cipher.open_segments(io.BytesIO(data), **(where or WHERE)))


def _pieces(data: bytes) -> tuple[bytes, list[bytes]]:
    """The magic and each sealed segment (flag, length, ciphertext) as stored."""
    body = data[len(SEGMENTS_MAGIC) :]
    pieces = []
    while body:
        length = int.from_bytes(body[1:5], "big")
        pieces.append(body[: 5 + length])
        body = body[5 + length :]
    return data[: len(SEGMENTS_MAGIC)], pieces


@pytest.mark.parametrize(
    "segments",
    [[], [b""], [b"one"], [b"a" * 1000, "二つ目".encode("cp932"), b"\x00\xff" * 7]],
)
def test_segments_round_trip_one_at_a_time(cipher: TenantCipher, segments: list[bytes]) -> None:
    data = _sealed(cipher, segments)
    assert data.startswith(SEGMENTS_MAGIC)
    assert _opened(cipher, data) == (segments or [b""])


def test_a_stream_read_a_few_bytes_at_a_time_opens(cipher: TenantCipher) -> None:
    data = _sealed(cipher, [b"x" * 100, b"y" * 100])

    class Trickle(io.BytesIO):
        def read(self, size: int = -1, /) -> bytes:
            return super().read(min(size, 3) if size > 0 else size)

    assert list(cipher.open_segments(Trickle(data), **WHERE)) == [b"x" * 100, b"y" * 100]


def test_a_stream_without_its_last_segment_is_refused(cipher: TenantCipher) -> None:
    magic, pieces = _pieces(_sealed(cipher, [b"first", b"second", b"third"]))
    cut = magic + b"".join(pieces[:2])
    opened = cipher.open_segments(io.BytesIO(cut), **WHERE)
    assert [next(opened), next(opened)] == [b"first", b"second"]
    with pytest.raises(DecryptionFailed, match="cut short"):
        next(opened)


def test_a_segment_cut_short_is_refused(cipher: TenantCipher) -> None:
    data = _sealed(cipher, [b"first"])
    with pytest.raises(DecryptionFailed, match="cut short"):
        _opened(cipher, data[:-1])


def test_reordered_dropped_or_repeated_segments_are_refused(cipher: TenantCipher) -> None:
    magic, (first, second, last) = _pieces(_sealed(cipher, [b"1", b"2", b"3"]))
    for pieces in ([second, first, last], [first, last], [first, first, second, last]):
        with pytest.raises(DecryptionFailed):
            _opened(cipher, magic + b"".join(pieces))


def test_a_segment_flagged_last_before_its_time_is_refused(cipher: TenantCipher) -> None:
    magic, (first, last) = _pieces(_sealed(cipher, [b"1", b"2"]))
    with pytest.raises(DecryptionFailed):
        _opened(cipher, magic + b"\x01" + first[1:])


def test_bytes_after_the_last_segment_are_refused(cipher: TenantCipher) -> None:
    data = _sealed(cipher, [b"1"])
    with pytest.raises(DecryptionFailed, match="follow the last"):
        _opened(cipher, data + b"\x00")


def test_segments_written_for_another_file_or_tenant_do_not_open(cipher: TenantCipher) -> None:
    data = _sealed(cipher, [b"1"])
    with pytest.raises(DecryptionFailed):
        _opened(cipher, data, table="registry_error_file", column="content", row_id="8")
    with pytest.raises(DecryptionFailed):
        _opened(TenantCipher("131016", os.urandom(32)), data)


def test_a_single_field_is_not_taken_for_segments(cipher: TenantCipher) -> None:
    field = cipher.encrypt_field("whole", **WHERE)
    assert not field.startswith(SEGMENTS_MAGIC)
    with pytest.raises(DecryptionFailed, match="not a segmented"):
        _opened(cipher, field)


def test_a_huge_length_is_refused_without_reading_it(cipher: TenantCipher) -> None:
    data = SEGMENTS_MAGIC + b"\x00" + (2**31).to_bytes(4, "big") + b"x" * 64
    with pytest.raises(DecryptionFailed, match="malformed"):
        _opened(cipher, data)
