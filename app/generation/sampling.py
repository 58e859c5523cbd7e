"""Sampling parameters and the per-story presets (careful / balanced / wild).

Why these defaults: the seed projects' GPT-2 and KoGPT2 pages looped ("he said
he said he said ...", the same Korean sentence five times). Greedy or
low-temperature decoding makes that worse: once a phrase is likely it becomes
more likely with every repetition. So every preset samples (temperature < 1
narrows without collapsing), cuts the long tail with nucleus (top-p) and top-k
so rare garbage tokens are not drawn, penalises tokens already in the context
(repetition_penalty, as in CTRL) and forbids any n-gram from repeating
verbatim (no_repeat_ngram_size). "careful" trades variety for coherence,
"wild" the other way round; none of them turns the anti-loop measures off.

"balanced" is SamplingParams' defaults, which the workshop's eval and
`flask model sample` use too (app/workshop/sampling.py), so the app samples
the way the shipped models were evaluated. A temperature
of 0 means greedy decoding (used by tests to compare against `model.generate`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any

PRESET_NAMES = ("careful", "balanced", "wild")
DEFAULT_PRESET = "balanced"


@dataclass(frozen=True)
class SamplingParams:
    """How one AI turn is sampled; small, typed and hashable (a batching engine groups by it)."""

    temperature: float = 0.8
    top_p: float = 0.92
    top_k: int = 50  # 0 = no top-k cut
    repetition_penalty: float = 1.15
    no_repeat_ngram_size: int = 4  # 0 = off
    max_new_tokens: int = 80
    bad_words: tuple[str, ...] = field(default_factory=tuple)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for Hugging Face `generate` (bad words are resolved by the caller)."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": not self.greedy,
        }
        if self.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = self.repetition_penalty
        if self.no_repeat_ngram_size > 0:
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if not self.greedy:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        return kwargs


@functools.cache
def presets() -> dict[str, SamplingParams]:
    """The named presets (built on first use, so importing this module stays cheap)."""
    balanced = SamplingParams()
    return {
        "careful": replace(
            balanced,
            temperature=0.6,
            top_p=0.85,
            top_k=40,
            repetition_penalty=max(balanced.repetition_penalty, 1.2),
            no_repeat_ngram_size=3,
        ),
        "balanced": balanced,
        "wild": replace(
            balanced,
            temperature=1.05,
            top_p=0.97,
            top_k=0,
            repetition_penalty=1.1,
            no_repeat_ngram_size=4,
        ),
    }


def params_for(
    preset: str | None,
    max_new_tokens: int | None = None,
    *,
    min_tokens: int = 1,
    max_tokens: int = 1024,
    bad_words: tuple[str, ...] = (),
) -> SamplingParams:
    """The preset's parameters with the story's length clamped to [min_tokens, max_tokens]."""
    table = presets()
    base = table.get(preset or DEFAULT_PRESET, table[DEFAULT_PRESET])
    length = base.max_new_tokens if max_new_tokens is None else max_new_tokens
    length = max(min_tokens, min(max_tokens, int(length)))
    return replace(base, max_new_tokens=length, bad_words=base.bad_words + tuple(bad_words))
