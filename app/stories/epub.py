"""EPUB 3 export (ebooklib): a title page, the opening and every visible turn credited,
a chapter at each turn the owner marked (else one), and a table of contents.

The book is in the story's language: its metadata and every page carry it (a
Korean story is `ko`), and the few words the book adds (credits, "Opening",
"Contents") are written in it too. Hidden and held turns are left out, as in the
other exports; turn text is escaped, never markup. epubcheck finds no errors in it
(tests/stories/test_epub.py).
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from html import escape

from ebooklib import epub
from flask_babel import force_locale
from flask_babel import gettext as _

from app.labels import language_label
from app.stories.models import Story, Turn
from app.stories.reads import visible_turns

MIMETYPE = "application/epub+zip"
# Stable identifiers: the same story exports as the same book.
_NAMESPACE = uuid.UUID("6f1c9a52-3c2e-4d8e-9b0a-7d4e2f1a5c31")
_CSS = """body { font-family: serif; line-height: 1.5; }
h1, h2 { text-align: center; }
.title-page p { text-align: center; }
.credit { font-size: 0.8em; color: #555; text-align: right; margin-top: 0; }
"""


@dataclass
class Chapter:
    """One chapter: its title and its turns, numbered as readers number them."""

    title: str
    turns: list[tuple[int, Turn]] = field(default_factory=list)
    opening: bool = False


def build_epub(story: Story) -> bytes:
    """The story as an EPUB 3 file."""
    turns = visible_turns(story)
    with force_locale(story.language):
        book = _book(story)
        style = epub.EpubItem(
            uid="style", file_name="style/book.css", media_type="text/css", content=_CSS
        )
        book.add_item(style)
        title_page = _page("title", _("Title page"), _title_page(story, turns), story.language)
        pages = [
            _page(f"chapter-{n}", chapter.title, _chapter_body(story, chapter), story.language)
            for n, chapter in enumerate(chapters(story, turns), 1)
        ]
        for page in [title_page, *pages]:
            page.add_item(style)
            book.add_item(page)
        book.toc = [title_page, *pages]
        book.add_item(epub.EpubNcx())
        nav = epub.EpubNav(title=_("Contents"))
        nav.lang = story.language
        book.add_item(nav)
        book.spine = [title_page, "nav", *pages]
    out = io.BytesIO()
    epub.write_epub(out, book)
    return out.getvalue()


def chapters(story: Story, turns: list[Turn]) -> list[Chapter]:
    """The opening and the turns, split at each turn with a chapter title (one chapter,
    named after the story, when none is marked)."""
    marked = any(turn.chapter_title for turn in turns)
    current = Chapter(_("Opening") if marked else story.title, opening=True)
    out = [current]
    for number, turn in enumerate(turns, 1):  # paragraph numbers: visible turns only
        if turn.chapter_title:
            current = Chapter(turn.chapter_title)
            out.append(current)
        current.turns.append((number, turn))
    return out


def credit(turn: Turn) -> str:
    """Who wrote a turn: the writer's name, or the model and its key."""
    if turn.kind == "ai":
        return _("the model (%(key)s)", key=turn.model_key or "?")
    return turn.author.username if turn.author else _("unknown")


def _book(story: Story) -> epub.EpubBook:
    book = epub.EpubBook()
    book.set_identifier(f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'relay-novel-story-{story.id}')}")
    book.set_title(story.title)
    book.set_language(story.language)
    book.add_author(_owner(story))
    book.add_metadata("DC", "date", story.created_at.date().isoformat())
    book.add_metadata("DC", "publisher", "Relay Novel")
    return book


def _page(name: str, title: str, body: str, lang: str) -> epub.EpubHtml:
    page = epub.EpubHtml(title=title, file_name=f"{name}.xhtml", lang=lang)
    page.content = f"<html><head><title>{escape(title)}</title></head><body>{body}</body></html>"
    return page


def _title_page(story: Story, turns: list[Turn]) -> str:
    writers = sorted({credit(turn) for turn in turns if turn.kind == "human"})
    models = sorted({credit(turn) for turn in turns if turn.kind == "ai"})
    lines = [
        _("begun by %(name)s", name=_owner(story)),
        language_label(story.language),
        story.created_at.date().isoformat(),
    ]
    if writers or models:
        lines.append(_("Written by %(names)s", names=", ".join(writers + models)))
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines)
    return f'<section class="title-page"><h1>{escape(story.title)}</h1>{paragraphs}</section>'


def _chapter_body(story: Story, chapter: Chapter) -> str:
    parts = [f"<h2>{escape(chapter.title)}</h2>"]
    if chapter.opening:
        parts += [_text(story.opening), _credit_line(_("opening, %(name)s", name=_owner(story)))]
    for number, turn in chapter.turns:
        parts += [_text(turn.text), _credit_line(f"§{number}, {credit(turn)}")]
    return "".join(parts)


def _text(text: str) -> str:
    """A writer's text as paragraphs: a blank line starts one, a line break stays one."""
    blocks = [block for block in text.split("\n\n") if block.strip()]
    return "".join(
        "<p>" + "<br/>".join(escape(line) for line in block.split("\n")) + "</p>"
        for block in blocks
    )


def _credit_line(text: str) -> str:
    return f'<p class="credit">{escape(text)}</p>'


def _owner(story: Story) -> str:
    return story.owner.username if story.owner else _("unknown")
