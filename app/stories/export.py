"""Story export as plain text, Markdown or EPUB (app/stories/epub.py): the opening, then
each visible turn, credited.

Hidden turns are left out (they have left the story). Turn text is written as
is in plain text; in Markdown it is escaped so that a writer's paragraph cannot
turn into headings, links or raw HTML in whatever renders the file.
"""

from __future__ import annotations

import re
import unicodedata

from flask_babel import gettext as _

from app.stories.epub import build_epub
from app.stories.models import Story, Turn
from app.stories.reads import visible_turns

FORMATS = {
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "epub": "application/epub+zip",
}

# Inline markup characters, escaped everywhere; list/heading markers only at a line start.
_MD_INLINE = re.compile(r"([\\`*_{}\[\]<>#|~])")
_MD_ORDERED = re.compile(r"^(\s*\d+)([.)])")
_MD_BULLET = re.compile(r"^(\s*)([-+=])")
_FILENAME_UNSAFE = re.compile(r"[^\w\-]+", re.UNICODE)


def export_story(story: Story, fmt: str) -> tuple[str | bytes, str, str]:
    """(text, mimetype, filename) for the story in `fmt` ("txt", "md", or "epub": bytes).

    Raises app.errors.Invalid for an unknown format.
    """
    if fmt not in FORMATS:
        from app.errors import Invalid

        raise Invalid(
            _("%(field)s must be one of: %(choices)s.", field="format", choices=", ".join(FORMATS)),
            field="format",
        )
    filename = f"{_slug(story.title, story.id)}.{fmt}"
    if fmt == "epub":
        return build_epub(story), FORMATS[fmt], filename
    turns = visible_turns(story)
    text = _markdown(story, turns) if fmt == "md" else _plain(story, turns)
    return text, FORMATS[fmt], filename


def credit_line(turn: Turn) -> str:
    """Who wrote a turn, as a reader sees it: "written by alice" or "written by the model (en)"."""
    return f"written by {turn.credit}"


def _plain(story: Story, turns: list[Turn]) -> str:
    owner = story.owner.username if story.owner else "unknown"
    parts = [story.title, "=" * min(len(story.title), 72), ""]
    parts += [story.opening, f"    [opening, {owner}]", ""]
    for number, turn in enumerate(turns, 1):  # paragraph numbers: visible turns only
        parts += [turn.text, f"    [{number}, {credit_line(turn)}]", ""]
    return "\n".join(parts).rstrip() + "\n"


def _markdown(story: Story, turns: list[Turn]) -> str:
    owner = story.owner.username if story.owner else "unknown"
    parts = [f"# {_md_escape(story.title)}", ""]
    parts += [f"*Language: {story.language} · model: {_md_escape(story.model_key)}*", ""]
    parts += [_md_paragraph(story.opening), "", f"<sub>opening, {_md_escape(owner)}</sub>", ""]
    for number, turn in enumerate(turns, 1):
        parts += [_md_paragraph(turn.text), ""]
        parts += [f"<sub>{number}, {_md_escape(credit_line(turn))}</sub>", ""]
    return "\n".join(parts).rstrip() + "\n"


def _md_escape(text: str) -> str:
    text = _MD_INLINE.sub(r"\\\1", text)
    return _MD_BULLET.sub(r"\1\\\2", _MD_ORDERED.sub(r"\1\\\2", text))


def _md_paragraph(text: str) -> str:
    # Keep the writer's line breaks inside a paragraph (two trailing spaces = <br>).
    lines = [_md_escape(line) + ("  " if line else "") for line in text.split("\n")]
    return "\n".join(lines).rstrip()


def _slug(title: str, story_id: int) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = _FILENAME_UNSAFE.sub("-", ascii_title).strip("-").lower()[:60]
    return f"story-{story_id}-{slug}" if slug else f"story-{story_id}"
