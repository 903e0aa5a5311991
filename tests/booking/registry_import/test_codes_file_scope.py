"""How a codes download's audit scope is read: the file's numbers from pieces cut anywhere,
and the vouchers' ids kept as ranges, whatever order the lookups return them in."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from booking.services.bulk_reads import VoucherRanges, _first_cells

_NUMBERS = st.lists(st.from_regex(r"[0-9]{10}", fullmatch=True), max_size=40)


@given(
    numbers=_NUMBERS,
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_every_number_is_read_wherever_the_pieces_are_cut(
    numbers: list[str], cuts: list[int], newline: str
) -> None:
    text = newline.join(["接種券番号,認証コード", *(f"{n},ABCD-EFGH" for n in numbers)])
    data = text.encode()
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert list(_first_cells(pieces)) == numbers


def test_a_header_alone_names_no_voucher() -> None:
    assert (
        list(_first_cells([b"\xe6\x8e\xa5\xe7\xa8\xae\xe5\x88\xb8\xe7\x95\xaa\xe5\x8f\xb7"])) == []
    )
    assert list(_first_cells([])) == []


def _runs(ids: list[int]) -> list[list[int]]:
    """The expected ranges, the plain way: consecutive ids grouped by id minus position."""
    ordered = sorted(set(ids))
    grouped = itertools.groupby(enumerate(ordered), key=lambda item: item[1] - item[0])
    return [[group[0][1], group[-1][1]] for group in (list(g) for _k, g in grouped)]


@given(
    runs=st.lists(
        st.lists(st.integers(min_value=1, max_value=300), max_size=30).map(sorted), max_size=8
    ),
    pairs=st.lists(
        st.tuples(st.integers(min_value=1, max_value=300), st.integers(min_value=0, max_value=20)),
        max_size=8,
    ),
)
def test_ranges_built_a_piece_at_a_time_equal_those_of_all_the_ids(
    runs: list[list[int]], pairs: list[tuple[int, int]]
) -> None:
    ranges = VoucherRanges()
    every: list[int] = []
    for run, (first, length) in zip(runs, pairs, strict=False):
        ranges.add_ids(run)
        ranges.add(first, first + length)
        every += [*run, *range(first, first + length + 1)]
    assert ranges.pairs == _runs(every)
    assert ranges.count == len(set(every))
    assert VoucherRanges(ranges.pairs).pairs == ranges.pairs
