"""The message catalogues: the template is current, Korean has every message, placeholders
survive translation (`make translations` re-extracts and merges)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "app" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdr]")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def _ids(catalog: Catalog) -> set:
    return {message.id for message in catalog if message.id}


@pytest.fixture(scope="module")
def template() -> Catalog:
    return _read(TRANSLATIONS / "messages.pot")


@pytest.fixture(scope="module")
def korean() -> Catalog:
    return _read(TRANSLATIONS / "ko" / "LC_MESSAGES" / "messages.po", "ko")


def test_template_lists_every_message_of_the_code(tmp_path, template):
    """Is messages.pot what the templates and the code ask for now (run `make translations`)?"""
    fresh = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [str(pybabel), "-q", "extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext"]
        + ["--no-location", "-o", str(fresh), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    current = _ids(_read(fresh))
    assert current - _ids(template) == set(), "new messages: run `make translations`"
    assert _ids(template) - current == set(), "messages no longer used: run `make translations`"


def test_every_message_has_a_korean_translation(template, korean):
    """Does every msgid of the template have a Korean msgstr (none empty, none fuzzy)?"""
    by_id = {message.id: message for message in korean if message.id}
    missing = []
    for message in template:
        if not message.id:
            continue
        translated = by_id.get(message.id)
        strings = translated.string if translated is not None else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if translated is None or translated.fuzzy or not all(strings):
            missing.append(message.id)
    assert missing == []


def test_placeholders_survive_translation(korean):
    """Does each Korean message use exactly the placeholders of its English one?"""
    wrong = []
    for message in korean:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        for string in strings:
            if set(PLACEHOLDER.findall(string)) != wanted:
                wrong.append((message.id, string))
    assert wrong == []


def test_field_messages_still_start_with_the_field(korean):
    """Does a Korean message that names a field by key still begin with it, so the form can
    put the field's label there (app/formerrors.py)?"""
    for message in korean:
        if isinstance(message.id, str) and message.id.startswith("%(field)s "):
            assert message.string.startswith("%(field)s "), message.id
