"""Both English catalogues are complete, and what Django reads (.mo) says what the source says.

The booking app's catalogue (residents' site, staff console, notifications) is found by
Django in booking/locale; the project's (control plane, base template, tenants, audit) is in
LOCALE_PATHS. makemessages leaves new strings empty and its guesses fuzzy: neither may stay.
"""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

CATALOGUES = {
    "booking": Path(settings.BASE_DIR) / "booking" / "locale" / "en" / "LC_MESSAGES",
    "project": Path(settings.LOCALE_PATHS[0]) / "en" / "LC_MESSAGES",
}
KEYWORD = re.compile(r"^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (\".*\")$")


@dataclass
class Entry:
    flags: set[str] = field(default_factory=set)
    previous: bool = False  # a "#| msgid" line: what msgmerge matched a fuzzy guess to
    fields: dict[str, str] = field(default_factory=dict)
    single_line: bool = True  # every field written on its keyword's own line

    @property
    def msgid(self) -> str:
        return self.fields.get("msgid", "")

    @property
    def translations(self) -> list[str]:
        return [value for key, value in self.fields.items() if key.startswith("msgstr")]


def read_po(path: Path) -> list[Entry]:
    """The catalogue's entries (not the header), strings unescaped as gettext reads them."""
    entries: list[Entry] = []
    entry, current = Entry(), ""
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if entry.fields:
                entries.append(entry)
            entry, current = Entry(), ""
        elif line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#|"):
            entry.previous = True
        elif line.startswith("#~"):
            entry.flags.add("obsolete")
        elif line.startswith("#"):
            continue
        elif match := KEYWORD.match(line):
            current = match.group(1)
            entry.fields[current] = ast.literal_eval(match.group(2))
        elif line.startswith('"'):
            assert current, f"{path}: a string continues nothing: {line}"
            entry.fields[current] += ast.literal_eval(line)
            entry.single_line = False
        else:
            raise AssertionError(f"{path}: unexpected line {line!r}")
    return [entry for entry in entries if entry.msgid and "obsolete" not in entry.flags]


def _lookup(catalogue: gettext.GNUTranslations, entry: Entry) -> str:
    if "msgctxt" in entry.fields:
        return catalogue.pgettext(entry.fields["msgctxt"], entry.msgid)
    return catalogue.gettext(entry.msgid)


@pytest.fixture(params=sorted(CATALOGUES))
def folder(request: pytest.FixtureRequest) -> Path:
    return CATALOGUES[request.param]


def test_every_message_of_the_catalogue_is_translated(folder: Path) -> None:
    entries = read_po(folder / "django.po")
    assert len(entries) > 100
    untranslated = [e.msgid for e in entries if not all(e.translations) or not e.translations]
    assert untranslated == []
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags or e.previous]
    assert fuzzy == []


def test_the_header_says_english_in_utf_8_without_a_fuzzy_flag(folder: Path) -> None:
    text = (folder / "django.po").read_text(encoding="utf-8")
    header = text.split("\n\n", 1)[0]
    assert "#, fuzzy" not in header
    assert '"Language: en\\n"' in header and "charset=UTF-8" in header
    assert '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"' in header


def test_the_compiled_catalogue_agrees_with_its_source(folder: Path) -> None:
    entries = read_po(folder / "django.po")
    with (folder / "django.mo").open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    assert catalogue.info().get("language") == "en"
    singles = [e for e in entries if e.single_line and "msgid_plural" not in e.fields]
    assert len(singles) > 50
    stale = [e.msgid for e in singles if _lookup(catalogue, e) != e.fields["msgstr"]]
    assert stale == []
    # Long and plural entries too: the whole source, not only what fits on one line.
    for e in entries:
        if "msgid_plural" in e.fields:
            one, many = e.fields["msgstr[0]"], e.fields["msgstr[1]"]
            assert catalogue.ngettext(e.msgid, e.fields["msgid_plural"], 1) == one
            assert catalogue.ngettext(e.msgid, e.fields["msgid_plural"], 2) == many
        else:
            assert _lookup(catalogue, e) == e.fields["msgstr"], e.msgid


# Where each catalogue's strings come from: the booking app's own folder, and the rest of the
# project (LOCALE_PATHS). Django merges both catalogues at run time, so a string of either
# source is translated if either catalogue has it.
SOURCES = {
    "booking": ("booking",),
    "project": ("platform", "tenants", "audit"),
}


def _extracted(tmp_path: Path, name: str) -> set[tuple[str | None, str]]:
    """What ``makemessages`` (GNU xgettext) finds in the source today, as (context, msgid)."""
    root = Path(settings.BASE_DIR)
    work = tmp_path / name
    for folder in SOURCES[name]:
        shutil.copytree(root / folder, work / folder, ignore=shutil.ignore_patterns("locale"))
    (work / "locale").mkdir()
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "en", "--no-location"]
        + ["-e", "html,py,txt"],
        cwd=work,
        env=environment,
        check=True,
        capture_output=True,
    )
    entries = read_po(work / "locale" / "en" / "LC_MESSAGES" / "django.po")
    return {(e.fields.get("msgctxt"), e.msgid) for e in entries}


def test_every_string_the_code_shows_is_in_a_catalogue(tmp_path: Path) -> None:
    """A string added to a template or a view without its English is found here, not by an
    English-speaking resident (makemessages leaves it out of no catalogue but ours)."""
    known = {
        (e.fields.get("msgctxt"), e.msgid)
        for folder in CATALOGUES.values()
        for e in read_po(folder / "django.po")
    }
    for name in SOURCES:
        extracted = _extracted(tmp_path, name)
        assert len(extracted) > 100, name
        assert sorted(extracted - known, key=str) == [], name
