"""Running one generation: Hugging Face `generate` with streaming and a stop flag.

Everything that turns a prompt into text sits behind `Generator.run` /
`Generator.generate`, so a dynamic-batching engine (prefill + decode steps
over a KV cache, many stories per forward pass) can replace this class without
touching the job code. This module imports torch and transformers at the top:
it is only ever imported lazily, from the runner thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from app.generation.decoding import IncrementalDecoder, StopReason
from app.generation.registry import LoadedModel, ModelRegistry
from app.generation.sampling import SamplingParams
from app.generation.story_cache import HFStoryCache, settings_for

DeltaCallback = Callable[[str], None]
StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class Generation:
    text: str  # decoded continuation, special tokens dropped, not yet cleaned
    token_ids: list[int]  # the generated ids only (no prompt)
    stop_reason: StopReason


class DeltaStreamer(BaseStreamer):
    """Hugging Face's streamer interface over our IncrementalDecoder."""

    def __init__(self, tokenizer: Any, on_delta: DeltaCallback | None) -> None:
        self.decoder = IncrementalDecoder(tokenizer)
        self.on_delta = on_delta
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first sends the prompt
            self._prompt_seen = True
            return
        self._hand_on(self.decoder.push(value.reshape(-1).tolist()))

    def end(self) -> None:
        self._hand_on(self.decoder.finish())

    def _hand_on(self, delta: str) -> None:
        if delta and self.on_delta is not None:
            self.on_delta(delta)


class _StopFlag(StoppingCriteria):
    """Ends generation between two tokens when should_stop() says so (shutdown, job gone)."""

    def __init__(self, should_stop: StopCheck) -> None:
        self.should_stop = should_stop

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        stop = bool(self.should_stop())
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class Generator:
    """One prompt in, one continuation out, streamed as it is produced."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def generate(
        self,
        model_key: str,
        prompt: str | Sequence[int],
        params: SamplingParams,
        on_delta: DeltaCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> str:
        """The raw continuation of `prompt` (text or token ids)."""
        return self.run(model_key, prompt, params, on_delta, should_stop).text

    @torch.inference_mode()
    def run(
        self,
        model_key: str,
        prompt: str | Sequence[int],
        params: SamplingParams,
        on_delta: DeltaCallback | None = None,
        should_stop: StopCheck | None = None,
        seed: int | None = None,
    ) -> Generation:
        """Like generate(), with the generated ids and why it stopped; a `seed` makes the
        sampling reproducible (it seeds torch's global generator: one generation at a time
        per process is what makes it exact)."""
        loaded = self.registry.get(model_key)
        input_ids = _input_ids(loaded, prompt)  # (1, T)
        streamer = DeltaStreamer(loaded.tokenizer, on_delta)
        stopping = StoppingCriteriaList([_StopFlag(should_stop)]) if should_stop else None
        eos = loaded.tokenizer.eos_token_id
        pad = loaded.tokenizer.pad_token_id
        settings = settings_for(loaded.source)  # the model folder's switch
        cache = HFStoryCache(loaded.model, settings) if settings is not None else None
        if seed is not None:
            torch.manual_seed(seed)
        try:
            output = loaded.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                streamer=streamer,
                stopping_criteria=stopping,
                pad_token_id=pad if pad is not None else eos,
                bad_words_ids=bad_words_ids(loaded.tokenizer, params.bad_words),
                **params.generate_kwargs(),
            )  # (1, T + new)
        finally:
            if cache is not None:
                cache.close()
        new_ids = output[0, input_ids.shape[1] :].tolist()
        if new_ids and eos is not None and new_ids[-1] == eos:
            reason = StopReason.EOS
        elif should_stop is not None and should_stop():
            reason = StopReason.CANCELLED
        else:
            reason = StopReason.LENGTH
        text = loaded.tokenizer.decode(
            new_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return Generation(text=text, token_ids=new_ids, stop_reason=reason)


def _input_ids(loaded: LoadedModel, prompt: str | Sequence[int]) -> torch.Tensor:
    if isinstance(prompt, str):
        ids = loaded.tokenizer.encode(prompt, add_special_tokens=False)
    else:
        ids = list(prompt)
    if not ids:  # an empty prompt: start from the end-of-text token, as GPT-2 does
        ids = [loaded.tokenizer.bos_token_id or loaded.tokenizer.eos_token_id or 0]
    return torch.tensor([ids], dtype=torch.long, device=loaded.device)


def bad_words_ids(tokenizer: Any, words: Sequence[str]) -> list[list[int]] | None:
    """Token sequences to forbid: each banned phrase's variants (app/generation/banned.py)."""
    from app.generation.banned import phrase_token_ids

    return phrase_token_ids(tokenizer, words) or None
