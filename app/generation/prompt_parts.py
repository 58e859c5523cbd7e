"""What goes into a prompt besides the turns, and where: memory, lore entries, the author's note.

The prompt reads, top to bottom (KoboldAI's and NovelAI's layout):

    opening            pinned: the same at every turn
    memory             pinned, right after the opening
    lore entries       those whose keys the recent turns mention, newest mention first
    turns ...          the latest that fit, trimmed from the front
    [author's note]    `note_depth` paragraphs above the end
    turn, turn, turn

Lore sits below the pinned start so that opening + memory stay a fixed prefix from
turn to turn (the engine reuses its cached keys and values for it). A key matches
case-insensitively as a whole word in Latin script; a key in Hangul matches anywhere,
so that a name followed by a particle (민수는, 민수에게) is a mention. Token counting
is app/generation/window.py's; nothing here imports Flask or the database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.generation.window import PARAGRAPH_BREAK, PromptWindow, trim_to_window

LORE_SCAN_TURNS = 4  # lore keys are looked for in this many of the latest turns
LORE_SHARE = 0.25  # of the prompt's budget, at most, for lore entries
_LATIN = "A-Za-z0-9\u00c0-\u024f"  # a key's neighbours that would make it part of a word
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


@dataclass(frozen=True)
class LoreText:
    """One lorebook entry as the prompt sees it."""

    id: int
    keys: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class StoryParts:
    """Everything a story puts into its prompt, read from the database by the caller."""

    opening: str
    turns: Sequence[tuple[int, str]]  # (position, text) of the visible turns, oldest first
    memory: str = ""
    authors_note: str = ""
    note_depth: int = 3
    lore: Sequence[LoreText] = ()
    lore_scan_turns: int = LORE_SCAN_TURNS


@dataclass(frozen=True)
class Section:
    """A stretch of the prompt's text: [start, end) is one part of it."""

    kind: str  # opening | memory | lore | note | turn
    start: int
    end: int
    position: int | None = None  # a turn's
    entry_id: int | None = None  # a lore entry's
    partial: bool = False  # a turn whose beginning was cut


@dataclass(frozen=True)
class AssembledPrompt:
    window: PromptWindow
    lore_used: list[LoreText]
    note: str  # the note as it went in ("" when there is none or it fell off)
    sections: list[Section] = field(default_factory=list)
    cut_positions: list[int] = field(default_factory=list)  # turns not wholly in the prompt


def split_keys(keys: str) -> list[str]:
    """A comma-separated key list as its keys (trimmed, empty ones and repeats dropped)."""
    seen: list[str] = []
    for key in keys.split(","):
        key = key.strip()
        if key and key.casefold() not in (k.casefold() for k in seen):
            seen.append(key)
    return seen


def last_mention(key: str, text: str) -> int:
    """Where the last mention of `key` in `text` ends, or -1 if there is none."""
    if not key:
        return -1
    if _HANGUL.search(key):  # any particle may follow a Korean name
        return _last_end(re.escape(key.casefold()), text.casefold())
    pattern = rf"(?<![{_LATIN}]){re.escape(key)}(?![{_LATIN}])"
    return _last_end(pattern, text, re.IGNORECASE)


def _last_end(pattern: str, text: str, flags: int = 0) -> int:
    ends = [match.end() for match in re.finditer(pattern, text, flags)]
    return ends[-1] if ends else -1


def lore_for(entries: Sequence[LoreText], turn_texts: Sequence[str], scan: int) -> list[LoreText]:
    """The entries a key of which the last `scan` turns mention, newest mention first."""
    recent = list(turn_texts)[-scan:] if scan > 0 else []
    ranked: list[tuple[tuple[int, int], LoreText]] = []
    for entry in entries:
        best = (-1, -1)
        for index, text in enumerate(recent):
            end = max((last_mention(key, text) for key in entry.keys), default=-1)
            if end >= 0:
                best = max(best, (index, end))
        if best[0] >= 0:
            ranked.append((best, entry))
    ranked.sort(key=lambda item: item[0], reverse=True)  # stable: ties keep entry order
    return [entry for _, entry in ranked]


def note_paragraph(note: str) -> str:
    """The author's note as the model reads it (KoboldAI's brackets)."""
    return f"[{note.strip()}]" if note.strip() else ""


def assemble(
    tokenizer: Any, parts: StoryParts, max_context: int, max_new_tokens: int
) -> AssembledPrompt:
    """The story's prompt within max_context - max_new_tokens, and a map of its parts."""
    texts = [text for _, text in parts.turns]
    candidates = lore_for(parts.lore, texts, parts.lore_scan_turns)
    note = note_paragraph(parts.authors_note)
    paragraphs: list[tuple[int | None, str]] = list(parts.turns)
    if note:
        paragraphs.insert(max(0, len(paragraphs) - max(0, parts.note_depth)), (None, note))
    window = trim_to_window(
        tokenizer,
        parts.opening,
        [text for _, text in paragraphs],
        max_context,
        max_new_tokens,
        memory=parts.memory,
        lore=[entry.text for entry in candidates],
        lore_share=LORE_SHARE,
    )
    used = [candidates[index] for index in window.lore_kept]
    sections, cut = _sections(window, used, paragraphs)
    note_in = note if any(s.kind == "note" and not s.partial for s in sections) else ""
    return AssembledPrompt(window, used, note_in, sections, cut)


def _sections(
    window: PromptWindow,
    used: list[LoreText],
    paragraphs: list[tuple[int | None, str]],
) -> tuple[list[Section], list[int]]:
    """Where each part lies in window.text, and the positions of turns cut (wholly or in part)."""
    sections: list[Section] = []
    offset = 0
    if window.opening:
        offset = _add(sections, "opening", offset, len(window.opening))
    if window.memory:
        offset = _add(sections, "memory", offset, len(window.memory))
    for entry in used:
        offset = _add(sections, "lore", offset, len(entry.text), entry_id=entry.id)
    body_len = sum(len(text) + len(PARAGRAPH_BREAK) for _, text in paragraphs)
    dropped = window.dropped_turn_chars
    body_start = len(window.text) - (body_len - dropped)
    cut: list[int] = []
    start = 0
    for position, text in paragraphs:
        end = start + len(text)
        if start < dropped and position is not None:
            cut.append(position)
        if end > dropped:
            kind = "turn" if position is not None else "note"
            begin = body_start + max(0, start - dropped)
            sections.append(
                Section(kind, begin, body_start + end - dropped, position, None, start < dropped)
            )
        start = end + len(PARAGRAPH_BREAK)
    return sections, cut


def _add(sections: list[Section], kind: str, offset: int, length: int, **extra: Any) -> int:
    """Append a section at `offset` of `length` characters; where the next part begins."""
    sections.append(Section(kind, offset, offset + length, **extra))
    return offset + length + len(PARAGRAPH_BREAK)
