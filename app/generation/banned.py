"""Banned phrases: a story's list, the token sequences the samplers forbid, the text check.

A story's owner lists phrases the model must not write (Story.banned_phrases, one a
line). They reach the samplers as `SamplingParams.bad_words`; `phrase_token_ids` turns
each into the token sequences to forbid: the phrase as typed, in lower case and with a
capital first letter, each with and without a leading space (mid-sentence, and after a
line break or at the start). Both samplers back off by masking a sequence's last token
whenever the tokens before it end the text so far (the batching engine in
engine/sampler.py; Hugging Face's NoBadWordsLogitsProcessor on the HF path), so the
phrase never appears as one of those sequences; a one-token phrase is masked outright.

The limit: the same text spelled with other tokens (a phrase glued to the word before
it, an odd casing, a tokenizer that merges across the phrase's edge) is not masked.
`cut_before_banned` catches those in the finished text and cuts the turn before the
phrase, at the last sentence end; so does a remote model's turn, whose server only
takes single-token bans (`logit_bias`). No torch, no Flask.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from app.generation.cleanup import cut_at_sentence_end


def parse_phrases(stored: str | None) -> tuple[str, ...]:
    """The phrases of a story's stored list (one a line; blank lines skipped)."""
    lines = (unicodedata.normalize("NFC", line).strip() for line in (stored or "").split("\n"))
    return tuple(dict.fromkeys(line for line in lines if line))


def phrase_variants(phrase: str) -> list[str]:
    """The spellings to forbid: as typed, lower case, capital first letter; each with and
    without a leading space (GPT-2's byte-level BPE tokens carry the space before a word)."""
    cases = [phrase, phrase.lower(), phrase[:1].upper() + phrase[1:]]
    out: list[str] = []
    for text in dict.fromkeys(cases):
        for variant in (text, " " + text):
            if variant not in out:
                out.append(variant)
    return out


def phrase_token_ids(tokenizer: Any, phrases: Iterable[str]) -> list[list[int]]:
    """Every variant's token ids, distinct: the sequences the samplers never complete."""
    sequences: list[list[int]] = []
    for phrase in phrases:
        for variant in phrase_variants(phrase):
            ids = list(tokenizer.encode(variant, add_special_tokens=False))
            if ids and ids not in sequences:
                sequences.append(ids)
    return sequences


def _is_cjk(char: str) -> bool:
    """Hangul, kana and CJK ideographs: words that particles and endings attach to."""
    code = ord(char)
    return (
        0x1100 <= code <= 0x11FF
        or 0x3040 <= code <= 0x30FF
        or 0x3130 <= code <= 0x318F
        or 0x4E00 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
    )


def _pattern(phrase: str) -> re.Pattern[str]:
    """The phrase at a word start, any case, any run of whitespace between its words; it
    must end a word too unless it ends in Korean or CJK (그녀 is found in 그녀는)."""
    body = r"\s+".join(re.escape(word) for word in phrase.split())
    left = r"(?<!\w)" if phrase[0].isalnum() else ""
    right = r"(?!\w)" if phrase[-1].isalnum() and not _is_cjk(phrase[-1]) else ""
    return re.compile(left + body + right, re.IGNORECASE)


def find_banned(text: str, phrases: Sequence[str]) -> tuple[int, str] | None:
    """(where, which) for the first banned phrase in the text, else None."""
    found = None
    for phrase in phrases:
        if not phrase.strip():
            continue
        match = _pattern(phrase.strip()).search(text)
        if match and (found is None or match.start() < found[0]):
            found = (match.start(), phrase)
    return found


def cut_before_banned(text: str, phrases: Sequence[str]) -> str:
    """The text up to the last sentence end before the first banned phrase; the text as it
    is when none appears; "" when no whole sentence comes before it (the caller retries)."""
    while (found := find_banned(text, phrases)) is not None:
        text = cut_at_sentence_end(text[: found[0]].rstrip())
    return text
