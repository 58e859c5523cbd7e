"""The prompt window: the story's opening and memory pinned, lore, then as many recent
turns as fit.

The prompt must leave room for the tokens the model will generate, so the
turns are trimmed from the front. Byte-level BPE tokens can end in the middle
of a UTF-8 character (a Hangul syllable is three bytes), so the cut is moved
forward until the kept tokens decode to an exact suffix of the text: the model
never sees a broken character. The caller passes visible turns only; hidden
turns never reach this module.

What goes in besides the turns (the memory, which lore entries, where the author's
note sits) is app/generation/prompt_parts.py's to decide; this module only counts
tokens: opening and memory together keep at most half the budget (the memory's tail
is cut first), lore entries at most `lore_share` of it, the turns the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PARAGRAPH_BREAK = "\n\n"
REPLACEMENT_CHAR = "\ufffd"
_MAX_ALIGN_STEPS = 8  # a character is at most 4 bytes; BPE merges can span a few more


@dataclass(frozen=True)
class PromptWindow:
    ids: list[int]
    text: str
    dropped_turn_chars: int  # how much of the turns' text fell off the front
    opening: str = ""  # the opening as it went in (its head, when it was too long)
    memory: str = ""  # the memory as it went in (its tail cut when it did not fit)
    lore_kept: tuple[int, ...] = ()  # indexes of the lore texts that fit their share


def trim_to_window(
    tokenizer: Any,
    opening: str,
    turns_texts: Sequence[str],
    max_context: int,
    max_new_tokens: int,
    *,
    memory: str = "",
    lore: Sequence[str] = (),
    lore_share: float = 0.25,
) -> PromptWindow:
    """Token ids (and their text) of opening + memory + lore + latest turns within
    max_context - max_new_tokens; lore texts are taken in the order given while they fit."""
    budget = max_context - max_new_tokens
    if budget <= 0:
        raise ValueError(f"no room for a prompt: context {max_context}, new {max_new_tokens}")
    opening_ids, opening_text = _pinned_opening(tokenizer, opening, budget // 2)
    memory_ids, memory_text = _pinned_opening(tokenizer, memory, budget // 2 - len(opening_ids))
    lore_ids, lore_text, kept = _lore_block(tokenizer, lore, int(budget * lore_share))
    body = "".join(text + PARAGRAPH_BREAK for text in turns_texts)
    body_ids = _encode(tokenizer, body)
    room = budget - len(opening_ids) - len(memory_ids) - len(lore_ids)
    start = _aligned_start(tokenizer, body_ids, body, max(0, len(body_ids) - room))
    kept_text = _decode(tokenizer, body_ids[start:])
    return PromptWindow(
        ids=opening_ids + memory_ids + lore_ids + body_ids[start:],
        text=opening_text + memory_text + lore_text + kept_text,
        dropped_turn_chars=len(body) - len(kept_text),
        opening=opening_text.removesuffix(PARAGRAPH_BREAK),
        memory=memory_text.removesuffix(PARAGRAPH_BREAK),
        lore_kept=kept,
    )


def _lore_block(
    tokenizer: Any, texts: Sequence[str], limit: int
) -> tuple[list[int], str, tuple[int, ...]]:
    """The lore texts, each a paragraph, that fit within `limit` tokens (in order; one that
    does not fit is skipped, a shorter one after it may still go in)."""
    ids: list[int] = []
    parts: list[str] = []
    kept: list[int] = []
    for index, text in enumerate(texts):
        entry = _encode(tokenizer, text + PARAGRAPH_BREAK) if text else []
        if entry and len(ids) + len(entry) <= limit:
            ids += entry
            parts.append(text + PARAGRAPH_BREAK)
            kept.append(index)
    return ids, "".join(parts), tuple(kept)


def _pinned_opening(tokenizer: Any, opening: str, limit: int) -> tuple[list[int], str]:
    """The text and a paragraph break; a text longer than `limit` tokens keeps its head
    (nothing at all when not even a token of it fits)."""
    if not opening:
        return [], ""
    ids = _encode(tokenizer, opening + PARAGRAPH_BREAK)
    if len(ids) <= limit:
        return ids, opening + PARAGRAPH_BREAK
    brk = _encode(tokenizer, PARAGRAPH_BREAK)
    head = _encode(tokenizer, opening)[: max(0, limit - len(brk))]
    while head and not opening.startswith(_decode(tokenizer, head)):
        head = head[:-1]  # drop a token that ends inside a character
    if not head:
        return [], ""
    return head + brk, _decode(tokenizer, head) + PARAGRAPH_BREAK


def _aligned_start(tokenizer: Any, ids: list[int], text: str, start: int) -> int:
    """The first index >= start whose tokens decode to a clean suffix of text."""
    if start == 0:
        return 0
    fallback = None
    for candidate in range(start, min(len(ids), start + _MAX_ALIGN_STEPS) + 1):
        decoded = _decode(tokenizer, ids[candidate:])
        if text.endswith(decoded):
            return candidate
        if fallback is None and REPLACEMENT_CHAR not in decoded[:2]:
            fallback = candidate  # tokenizers that normalise text never match exactly
    return fallback if fallback is not None else len(ids)


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), clean_up_tokenization_spaces=False) if ids else ""
