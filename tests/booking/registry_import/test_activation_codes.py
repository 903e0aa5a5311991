"""The activation codes themselves: CODE_LENGTH characters of CODE_ALPHABET, every character
possible, made in one pass for a whole apply batch."""

from __future__ import annotations

from collections import Counter

from booking.services.registry_import.codes import CODE_ALPHABET, CODE_LENGTH, _new_codes


def test_codes_use_every_character_of_the_alphabet_and_nothing_else() -> None:
    codes = _new_codes(10_000)
    assert len(codes) == 10_000
    assert {len(code) for code in codes} == {CODE_LENGTH}
    seen = Counter("".join(codes))
    # 80,000 characters drawn evenly from 32: each about 2,500 times, none left out.
    assert set(seen) == set(CODE_ALPHABET)
    assert min(seen.values()) > 2_000 and max(seen.values()) < 3_000


def test_no_codes_for_no_vouchers() -> None:
    assert _new_codes(0) == []
