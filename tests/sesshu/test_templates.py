"""Every template's comments stay comments: Django's ``{# … #}`` ends at its line, so one
written over two lines is printed on the page, whole."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# ``{#`` with no ``#}`` after it on the same line.
UNCLOSED = re.compile(r"\{#(?![^\n]*#\})")


def templates() -> list[Path]:
    return sorted(
        path
        for top in ("booking", "platform", "tenants", "audit")
        for path in (ROOT / top).rglob("*")
        if path.suffix in (".html", ".txt") and "templates" in path.parts
    )


def test_no_one_line_comment_runs_over_two_lines() -> None:
    found = templates()
    assert len(found) > 50
    broken = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path in found
        for text in (path.read_text(encoding="utf-8"),)
        for match in UNCLOSED.finditer(text)
    ]
    assert broken == []


def test_the_pattern_finds_a_comment_over_two_lines() -> None:
    assert UNCLOSED.search("<p>{# a note\n over two lines #}</p>")
    assert not UNCLOSED.search("<p>{# a note #}</p>\n{# another #}")
