"""Corpus hygiene: the e-text markup a story model must not learn, removed before training.

Every corpus the workshop reads (training, validation and evaluation alike) goes
through `clean_corpus_text` before it is split, so a model is scored on the same
clean text it was trained on. The rules, in order, each counted in a
`HygieneReport` (`flask model train` prints how much each one removed):

- ``tags``: ``[Illustration…]``, ``[Footnote…]``, ``[Sidenote…]`` and footnote
  anchors such as ``[12]`` or ``[A]``.
- ``transcriber_notes``: paragraphs that open with "Transcriber's note" (or a
  credit line such as "E-text prepared by").
- ``separators``: paragraphs made only of ``* * *``, ``-----``, ``◇◇◇`` and the like.
- ``headings``: CHAPTER/BOOK/PART/VOLUME/STAVE/ACT/SCENE with a numeral or number word
  (and its title line), 제N장/편/부/회/화, "THE END".
- ``numerals``: a paragraph that is only a numeral (``12``, ``XIV.``, ``(3)``, ``三``).
- ``caps_lines``: a short paragraph with Latin capitals and no lower-case letter or
  Hangul (a title page line, "PRIDE AND PREJUDICE", a running head).
- ``underscores``: Gutenberg's ``_italics_`` become plain words; stray underscores go.
- ``hard_wraps``: in a file wrapped at a fixed width (blank lines between paragraphs,
  short lines), the line breaks inside a paragraph become spaces.
- ``quotes_dashes``: curly quotes become straight ones (what writers type), ``--``
  and the horizontal bar become an em dash.

The output has one paragraph per block and one blank line between paragraphs,
the same layout as the app's prompt (`app.generation.window.PARAGRAPH_BREAK`).
A file laid out one paragraph per line (the Korean corpora) gets a blank line
after each line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

RULES = (
    "tags",
    "transcriber_notes",
    "separators",
    "headings",
    "numerals",
    "caps_lines",
    "underscores",
    "hard_wraps",
    "quotes_dashes",
)


@dataclass
class HygieneReport:
    """Per rule: how many places it changed and how many characters it removed."""

    matches: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    chars_in: int = 0
    chars_out: int = 0

    def count(self, rule: str, matches: int, removed: int) -> None:
        self.matches[rule] += matches
        self.removed[rule] += removed

    def add(self, other: HygieneReport) -> None:
        for rule in RULES:
            self.count(rule, other.matches[rule], other.removed[rule])
        self.chars_in += other.chars_in
        self.chars_out += other.chars_out

    def to_dict(self) -> dict:
        return {
            "chars_in": self.chars_in,
            "chars_out": self.chars_out,
            "rules": {r: {"matches": self.matches[r], "removed": self.removed[r]} for r in RULES},
        }

    def lines(self) -> list[str]:
        """A human-readable table, one line per rule."""
        out = [f"corpus hygiene: {self.chars_in:,} characters in, {self.chars_out:,} out"]
        for rule in RULES:
            out.append(
                f"  {rule:<18} {self.matches[rule]:>9,} changes "
                f"{self.removed[rule]:>11,} characters removed"
            )
        return out


# --- inline rules (on the whole text, before it is cut into paragraphs) -------------------

_TAG = re.compile(
    r"\[(?:Illustration|ILLUSTRATION|Footnote|FOOTNOTE|Sidenote|SIDENOTE)\b[^\[\]]{0,3000}\]"
    r"|\[(?:\d{1,3}|[A-Z])\]"
)
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)((?:[^_\n]|\n(?!\n)){1,400}?)(?<=\S)_(?![\w_])")
_STRAY_UNDERSCORE = re.compile(r"_+")
_QUOTES = str.maketrans(
    {"“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "‘": "'", "’": "'", "‚": "'", "‛": "'"}
)
_DASH = re.compile(r"[ \t]?-{2,}[ \t]?|[―─]+")

# --- paragraph rules ----------------------------------------------------------------------

_BLANK = re.compile(r"\n[ \t]*\n\s*")
_TRANSCRIBER = re.compile(
    r"^\[?\s*(?:transcriber[’']?s?[’']? notes?|e-?text prepared by|transcribed (?:from|by)"
    r"|produced by)\b",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"^[\s*＊※◇◆○●◎□■☆★·•~=#\-_.]+$")
_NUMBER_WORDS = (
    r"ONE|TWO|THREE|FOUR|FIVE|SIX|SEVEN|EIGHT|NINE|TEN|ELEVEN|TWELVE|THE\s+\w+"
    r"|One|Two|Three|Four|Five|Six|Seven|Eight|Nine|Ten|Eleven|Twelve|the\s+\w+"
)
_HEADING = re.compile(
    r"^(?:(?:CHAPTER|Chapter|BOOK|Book|PART|Part|VOLUME|Volume|VOL\.|Vol\.|STAVE|Stave|"
    r"ACT|Act|SCENE|Scene|LETTER|Letter)\s+(?:[IVXLCDM]+|\d+|" + _NUMBER_WORDS + r")\b"
    r"|제\s*\d+\s*[장편부회화]|第.{1,4}[章回]|THE END\b|The End\.?$)"
)
_NUMERAL = re.compile(r"^[(\[]?(?:[IVXLCDM]+|[ivxlcdm]+|\d{1,4}|[一二三四五六七八九十]+)[.)\]]?$")
_CONTENTS_LINE = re.compile(r"^(?:[IVXLCDM]+|\d{1,3})\.\s+\S")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_LOWER = re.compile(r"[a-zà-ÿ]")
_UPPER = re.compile(r"[A-Z]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_WRAP = re.compile(r"[ \t]*(?<!\n)\n(?!\n)[ \t]*")
_INLINE_STARS = re.compile(r"[ \t]*(?:\*[ \t]*){3,}")


def clean_corpus_text(text: str, report: HygieneReport | None = None) -> str:
    """The text with every rule applied, paragraphs separated by one blank line."""
    report = report if report is not None else HygieneReport()
    report.chars_in += len(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _sub_counted(_TAG, "", text, report, "tags")
    wrapped = is_hard_wrapped(text)
    blocks = _BLANK.split(text) if wrapped else text.split("\n")
    kept = []
    for block in blocks:
        block = block.strip()
        if block and _keep_block(block, report):
            kept.append(block)
    text = _sub_counted(_INLINE_STARS, " ", "\n\n".join(kept), report, "separators")
    text = _sub_counted(_ITALIC, r"\1", text, report, "underscores")
    text = _sub_counted(_STRAY_UNDERSCORE, "", text, report, "underscores")
    if wrapped:
        joined = text.count("\n") - 2 * text.count("\n\n")
        text = _WRAP.sub(" ", text)
        report.count("hard_wraps", joined, 0)
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    text = _quotes_and_dashes(text, report)
    report.chars_out += len(text)
    return text


def is_hard_wrapped(text: str) -> bool:
    """Paragraphs separated by blank lines and lines cut at a fixed width (Gutenberg style)."""
    lines = text.split("\n")
    filled = sorted(len(line) for line in lines if line.strip())
    if len(filled) < 20:
        return False
    blanks = len(lines) - len(filled)
    p95 = filled[int(len(filled) * 0.95)]
    return blanks >= 0.02 * len(lines) and p95 <= 90


_BLOCK_RULES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("transcriber_notes", lambda b: bool(_TRANSCRIBER.match(b))),
    ("separators", lambda b: bool(_SEPARATOR.match(b))),
    ("headings", lambda b: _is_heading_block(b)),
    ("numerals", lambda b: bool(_NUMERAL.match(b))),
    ("caps_lines", lambda b: _is_caps_line(b)),
)


def _keep_block(block: str, report: HygieneReport) -> bool:
    for rule, drops in _BLOCK_RULES:
        if drops(block):
            report.count(rule, 1, len(block))
            return False
    return True


def _is_heading_block(block: str) -> bool:
    """A heading and its title line, or a table of contents (most lines headings)."""
    lines = [line.strip() for line in block.split("\n")]
    if any(len(line) > 90 for line in lines):
        return False
    headings = sum(1 for line in lines if _HEADING.match(line) or _CONTENTS_LINE.match(line))
    if len(lines) <= 3:
        return bool(_HEADING.match(lines[0]))
    return headings * 2 >= len(lines)


def _is_caps_line(block: str) -> bool:
    if len(block) > 300 or _LOWER.search(block) or _HANGUL.search(block):
        return False
    return len(_UPPER.findall(block)) >= 2


def _quotes_and_dashes(text: str, report: HygieneReport) -> str:
    curly = sum(text.count(c) for c in "“”„‟″‘’‚‛")
    text = text.translate(_QUOTES)
    text, dashes = _DASH.subn("—", text)
    report.count("quotes_dashes", curly + dashes, 0)
    return text


def _sub_counted(pattern: re.Pattern, repl: str, text: str, report: HygieneReport, rule: str):
    before = len(text)
    text, n = pattern.subn(repl, text)
    report.count(rule, n, before - len(text))
    return text


def strip_inline_markup(text: str) -> str:
    """Bracket tags, underscore italics and star separators removed from a short text (the
    model's turn, app.generation.cleanup): the rules that need no whole-file layout."""
    text = _TAG.sub("", text)
    text = _ITALIC.sub(r"\1", text)
    text = _STRAY_UNDERSCORE.sub("", text)
    return _INLINE_STARS.sub(" ", text)
