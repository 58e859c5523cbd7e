"""The prompt window: the story's opening pinned, then as many recent turns as fit.

The prompt must leave room for the tokens the model will generate, so the
turns are trimmed from the front. Byte-level BPE tokens can end in the middle
of a UTF-8 character (a Hangul syllable is three bytes), so the cut is moved
forward until the kept tokens decode to an exact suffix of the text: the model
never sees a broken character. The caller passes visible turns only; hidden
turns never reach this module.
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


def trim_to_window(
    tokenizer: Any,
    opening: str,
    turns_texts: Sequence[str],
    max_context: int,
    max_new_tokens: int,
) -> PromptWindow:
    """Token ids (and their text) of opening + latest turns within max_context - max_new_tokens."""
    budget = max_context - max_new_tokens
    if budget <= 0:
        raise ValueError(f"no room for a prompt: context {max_context}, new {max_new_tokens}")
    opening_ids, opening_text = _pinned_opening(tokenizer, opening, budget // 2)
    body = "".join(text + PARAGRAPH_BREAK for text in turns_texts)
    body_ids = _encode(tokenizer, body)
    room = budget - len(opening_ids)
    start = _aligned_start(tokenizer, body_ids, body, max(0, len(body_ids) - room))
    kept_text = _decode(tokenizer, body_ids[start:])
    return PromptWindow(
        ids=opening_ids + body_ids[start:],
        text=opening_text + kept_text,
        dropped_turn_chars=len(body) - len(kept_text),
    )


def _pinned_opening(tokenizer: Any, opening: str, limit: int) -> tuple[list[int], str]:
    """The opening and a paragraph break; an opening longer than half the budget keeps its head."""
    if not opening:
        return [], ""
    ids = _encode(tokenizer, opening + PARAGRAPH_BREAK)
    if len(ids) <= limit:
        return ids, opening + PARAGRAPH_BREAK
    brk = _encode(tokenizer, PARAGRAPH_BREAK)
    head = _encode(tokenizer, opening)[: max(0, limit - len(brk))]
    while head and not opening.startswith(_decode(tokenizer, head)):
        head = head[:-1]  # drop a token that ends inside a character
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
