"""Cleaning the model's raw continuation into a turn a reader can take.

Rules, in order: drop broken characters and control characters, corpus markup
(bracket tags, `_italics_`, `* * *`: app.workshop.hygiene.strip_inline_markup), collapse
runaway whitespace, drop heading lines the model copies from its corpus
("CHAPTER XV", "BOOK II.", "제3장"), strip a leading fragment (punctuation or
closing quotes that belong to the previous sentence), then cut after the last sentence end
(. ! ? … 。 and their full-width forms, with any closing quotes; or a Korean
final ending such as 다/요 at a line end). With no sentence end at all the
text is cut at the last word boundary, so it never ends in half a word. An
empty result means the caller retries.
"""

from __future__ import annotations

import re

from app.workshop.hygiene import strip_inline_markup

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_SPACE_BEFORE_NEWLINE = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")
_CLOSERS = "\"'”’»)]}」』》〉"
# Characters that cannot open a sentence: they end or continue the previous one.
_LEADING_FRAGMENT = re.compile(r"^[\s.,;:!?…。、，！？" + re.escape(_CLOSERS) + r"-]+")
_CLOSE = "[" + re.escape(_CLOSERS) + "]*"
_SENTENCE_END = re.compile(
    r"[.!?…]+" + _CLOSE + r"(?=\s|$)"  # Latin punctuation: then a space, so not "3.5"
    r"|[。！？]+"
    + _CLOSE  # CJK full stops need no space after them
    + r"|[다요죠까네](?=[ \t]*\n)"  # Korean final ending at a line end
)
_WORD_BOUNDARY = re.compile(r"\s")
# A line that is only a heading: CHAPTER/BOOK/PART/STAVE and a numeral (after "." or ":", a
# short title), or a Korean 제N장/편/부. A turn continues a story; it never opens a chapter.
_HEADING_LINE = re.compile(
    r"^(?:(?:CHAPTER|Chapter|BOOK|Book|PART|Part|STAVE|Stave)[ \t]+"
    r"(?:[IVXLCDM]+|\d+)(?:[.:][^\n]{0,60})?"
    r"|제[ \t]*\d+[ \t]*[장편부](?:[ \t][^\n]{0,30})?)$\n?",
    re.MULTILINE,
)


def clean_generation(raw: str, finished: bool = False) -> str:
    """The turn text made from raw model output; "" when nothing usable is left.

    `finished` says the model stopped on its own (end of text), so a last
    sentence without punctuation is still whole.
    """
    text = strip_inline_markup(_CONTROL.sub("", raw))
    text = normalise_whitespace(_HEADING_LINE.sub("", text))
    text = _LEADING_FRAGMENT.sub("", text)
    if not text:
        return ""
    cut = cut_at_sentence_end(text)
    if not cut:
        cut = text if finished else cut_at_word_boundary(text)
    return unwrap_lines(cut)


# A line break inside a sentence (no sentence end or closing quote before it).
_HARD_WRAP = re.compile(r"(?<![\n.!?…。！？다요죠까네" + re.escape(_CLOSERS) + r"])\n(?!\n)")


def unwrap_lines(text: str) -> str:
    """Join lines broken mid-sentence: corpora such as Project Gutenberg wrap prose at
    ~70 columns and the model copies that; paragraph breaks and line-final sentences stay."""
    return _HARD_WRAP.sub(" ", text)


def normalise_whitespace(text: str) -> str:
    """Runs of spaces become one, at most one blank line between paragraphs, ends trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_NEWLINE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def cut_at_sentence_end(text: str) -> str:
    """Text up to and including its last sentence end, or "" when it has none."""
    last = None
    for last in _SENTENCE_END.finditer(text):  # noqa: B007 - we want the last match
        pass
    return text[: last.end()].rstrip() if last else ""


def cut_at_word_boundary(text: str) -> str:
    """Text without its last, possibly unfinished, word; "" when it is a single word."""
    positions = [m.start() for m in _WORD_BOUNDARY.finditer(text)]
    return text[: positions[-1]].rstrip() if positions else ""
