"""Which municipality a registry's address names: a file of another municipality's residents
(the wrong file picked from a vendor's folder of many towns) is told apart by its addresses,
which the control plane never shows.

An address names another municipality when it starts with another prefecture, or with this
prefecture and another of its municipalities, or — written without a prefecture — with
another city's name (a 市: a town or village name may also be a district of this one, as
小川町 is of 小平市). An address that names no municipality at all (the street alone) is
this municipality's as far as anyone can tell.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import cache

from tenants.codes import reference_municipalities
from tenants.prefectures import PREFECTURES

# A district (郡) between the prefecture and a town or village: 北群馬郡吉岡町.
_DISTRICT = re.compile(r"^[^\d市区町村郡]{1,5}郡")


@cache
def _names() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """Each prefecture's municipalities, and every city's name."""
    by_prefecture: dict[str, set[str]] = defaultdict(set)
    for municipality in reference_municipalities().values():
        by_prefecture[municipality.prefecture].add(municipality.name)
    cities = {name for names in by_prefecture.values() for name in names if name.endswith("市")}
    return {key: frozenset(names) for key, names in by_prefecture.items()}, frozenset(cities)


def _longest(text: str, names: Iterable[str]) -> str:
    return max((name for name in names if text.startswith(name)), key=len, default="")


class PlaceReader:
    """Reads addresses for the municipality ``name`` in ``prefecture``."""

    def __init__(self, prefecture: str, name: str) -> None:
        self.prefecture = prefecture
        self.name = name
        by_prefecture, cities = _names()
        self._here = by_prefecture.get(prefecture, frozenset()) | {name}
        self._cities = cities | {name}
        self._by_prefecture = by_prefecture

    def elsewhere(self, address: str | None) -> str | None:
        """The other municipality ``address`` names (北海道旭川市; 北海道 alone when the
        prefecture's municipality is not recognised), or None."""
        if not address:
            return None
        text = address.replace(" ", "").replace("\u3000", "")
        prefecture = next((p for p in PREFECTURES if text.startswith(p)), "")
        rest = _DISTRICT.sub("", text[len(prefecture) :], count=1)
        if rest.startswith(self.name):
            return None if prefecture in ("", self.prefecture) else prefecture + self.name
        if prefecture and prefecture != self.prefecture:
            return prefecture + _longest(rest, self._by_prefecture.get(prefecture, ()))
        named = _longest(rest, self._here if prefecture else self._cities)
        if not named or named == self.name:
            return None
        return ((prefecture or self.prefecture) if named in self._here else "") + named
