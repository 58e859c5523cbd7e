"""The loop guard: how much of a model turn repeats the story's earlier text.

Small models copy: a turn that is mostly the opening again, or the paragraph before it
again, reads as a loop. The measure is the share of the turn's word n-grams (n = 4:
lower case, words split on spaces and punctuation, so Korean is split into its
space-separated words with their particles) that already occur in the story's earlier
visible text. The job runner regenerates a turn whose share is above LOOP_GUARD_OVERLAP
once, and flags the second try ("loop") when it repeats too. Pure functions: no torch,
no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NGRAM = 4
_WORD = re.compile(r"\w+(?:['’]\w+)*")
LOOP_FLAG = "loop"


def words(text: str) -> list[str]:
    """The text's words in lower case, punctuation dropped ("It's" stays one word)."""
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int = NGRAM) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repeated_share(text: str, earlier: Iterable[str], n: int = NGRAM) -> float:
    """The share (0..1) of the text's word n-grams that occur in the earlier texts; 0.0
    for a text of fewer than n words."""
    grams = ngrams(words(text), n)
    if not grams:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    for part in earlier:
        seen.update(ngrams(words(part), n))
    return sum(gram in seen for gram in grams) / len(grams)


def repeats_earlier(text: str, earlier: Iterable[str], threshold: float, n: int = NGRAM) -> bool:
    """Does the text repeat more than `threshold` of itself from the earlier texts? A
    threshold of 0 (or below) turns the guard off."""
    return threshold > 0 and repeated_share(text, earlier, n) > threshold
