"""Every user-visible string in Wuye has an English translation, compiled and current.

The source strings are Chinese; English lives in ``src/wuye/locale/en`` and in an app's own
``locale/en`` where it has one (``imports``). These tests fail when someone adds a string
without translating it, leaves a fuzzy guess behind, forgets ``msgfmt``, or writes a string
that ``makemessages`` would add to (or drop from) a catalogue.
"""

from __future__ import annotations

import ast
import gettext
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "wuye"
CATALOGUES = sorted(SRC.glob("**/locale/en/LC_MESSAGES/django.po"))
# What makemessages reads by default (-e html,txt and py); nothing else needs copying.
SOURCE_SUFFIXES = {".py", ".html", ".txt"}


@dataclass(frozen=True)
class Entry:
    """One message of a .po file, as far as these tests need it."""

    msgctxt: str | None
    msgid: str
    msgid_plural: str | None
    msgstrs: tuple[str, ...]
    fuzzy: bool
    line: int

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)


def po_entries(path: Path) -> list[Entry]:
    """Return the live (not obsolete) entries of a .po file, the header left out."""
    entries: list[Entry] = []
    fields: dict[str, str] = {}
    flags: set[str] = set()
    current: str | None = None
    start = 0

    def flush() -> None:
        nonlocal fields, flags, current
        if fields.get("msgid"):
            msgstrs = tuple(v for k, v in sorted(fields.items()) if k.startswith("msgstr"))
            entries.append(
                Entry(
                    msgctxt=fields.get("msgctxt"),
                    msgid=fields["msgid"],
                    msgid_plural=fields.get("msgid_plural"),
                    msgstrs=msgstrs,
                    fuzzy="fuzzy" in flags,
                    line=start,
                )
            )
        fields, flags, current = {}, set(), None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            # A blank line ends an entry; obsolete entries are not compiled, so not counted.
            if "msgid" in fields:
                flush()
            continue
        if line.startswith("#,"):
            if "msgid" in fields:
                flush()
            flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            if "msgid" in fields:
                flush()
        elif line.startswith('"'):
            assert current is not None, f"{path}:{number}: continuation without a keyword"
            fields[current] += ast.literal_eval(line)
        else:
            keyword, _, value = line.partition(" ")
            if keyword in ("msgctxt", "msgid") and "msgid" in fields:
                flush()
            if not fields:
                start = number
            current = keyword
            fields[keyword] = ast.literal_eval(value)
    flush()
    return entries


def _where(path: Path, entry: Entry) -> str:
    return f"{path.relative_to(SRC.parent)}:{entry.line} {entry.msgid!r}"


def test_the_catalogues_are_found() -> None:
    project = SRC / "locale/en/LC_MESSAGES/django.po"
    assert project in CATALOGUES
    assert SRC / "imports/locale/en/LC_MESSAGES/django.po" in CATALOGUES
    assert len(po_entries(project)) > 500


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(SRC)))
def test_every_string_has_a_settled_english_translation(po: Path) -> None:
    entries = po_entries(po)

    untranslated = [_where(po, e) for e in entries if not all(e.msgstrs)]
    fuzzy = [_where(po, e) for e in entries if e.fuzzy]

    assert not untranslated, "no English msgstr:\n" + "\n".join(untranslated)
    assert not fuzzy, "fuzzy (a guess msgmerge made; check and unflag):\n" + "\n".join(fuzzy)


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(SRC)))
def test_the_compiled_catalogue_says_what_the_po_file_says(po: Path) -> None:
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"run: msgfmt --check -o {mo} {po}"
    with mo.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)

    stale = []
    for entry in po_entries(po):
        if entry.msgid_plural is not None and entry.msgctxt is not None:
            got = compiled.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, 1)
        elif entry.msgid_plural is not None:
            got = compiled.ngettext(entry.msgid, entry.msgid_plural, 1)
        elif entry.msgctxt is not None:
            got = compiled.pgettext(entry.msgctxt, entry.msgid)
        else:
            got = compiled.gettext(entry.msgid)
        if got != entry.msgstrs[0]:
            stale.append(_where(po, entry))

    assert not stale, f"{mo.name} is stale, recompile with msgfmt --check:\n" + "\n".join(stale)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run makemessages over a copy of Wuye's source and return the copy's root."""
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        pytest.skip("GNU gettext (xgettext, msgmerge) is missing; scripts/bootstrap.sh installs it")
    copy = tmp_path_factory.mktemp("makemessages") / "wuye"

    def not_source(directory: str, names: list[str]) -> list[str]:
        here = Path(directory)
        return [
            name
            for name in names
            if name == "__pycache__"
            or name == "static"
            or ((here / name).is_file() and Path(name).suffix not in SOURCE_SUFFIXES | {".po"})
        ]

    shutil.copytree(SRC, copy, ignore=not_source)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "wuye.settings",
        "WUYE_DATA_DIR": str(copy.parent / "data"),
    }
    # makemessages writes each file's strings to the nearest locale/ directory above it,
    # which in the copy is the copy's own catalogue: the real ones are never touched.
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "en", "--verbosity", "0"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    return copy


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(SRC)))
def test_makemessages_would_neither_add_nor_drop_a_string(po: Path, regenerated: Path) -> None:
    fresh = regenerated / po.relative_to(SRC)
    have = {e.key for e in po_entries(po)}
    found = {e.key for e in po_entries(fresh)}

    added = sorted(found - have, key=str)
    dropped = sorted(have - found, key=str)

    assert not added, (
        "strings in the source with no entry in the catalogue; from src/wuye run "
        "`wuye makemessages -l en`, translate, then msgfmt --check:\n" + "\n".join(map(str, added))
    )
    assert not dropped, (
        "catalogue entries makemessages no longer finds (the next run would make them obsolete "
        "and their English would be lost; is gettext called inside an f-string?):\n"
        + "\n".join(map(str, dropped))
    )
