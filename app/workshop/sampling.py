"""Sampling in the workshop (eval, `model sample`): the app's own SamplingParams.

Why these values fight degeneration (the seed projects looped: "he said he
said ...", the same Korean sentence five times): greedy and low-temperature
decoding make a likely phrase ever more likely each time it repeats, so we
sample. Temperature 0.8 narrows the distribution without collapsing it;
nucleus (top-p 0.92) and top-k 50 cut the long tail so rare garbage tokens are
not drawn; repetition_penalty 1.15 (CTRL) discounts tokens already in the
context; no_repeat_ngram_size 4 forbids any 4-token sequence from appearing
twice verbatim. The eval measures the result: the repeated-4-gram rate of
samples next to the corpus's own.

The defaults live in app/generation/sampling.py (SamplingParams), so the app
samples the way the shipped models were evaluated. This module imports torch
only inside generate_text.
"""

from __future__ import annotations

from dataclasses import replace

from app.generation.sampling import SamplingParams

# The eval's samples are longer than a turn: enough text to measure repetition in.
EVAL_NEW_TOKENS = 200


def eval_settings() -> SamplingParams:
    """The app's default sampling ("balanced") with the eval's sample length."""
    return replace(SamplingParams(), max_new_tokens=EVAL_NEW_TOKENS)


def generate_text(model, tokenizer, prompt: str, settings: SamplingParams, seed: int = 0) -> str:
    """Continue `prompt` with `settings`; returns only the new text."""
    import torch

    torch.manual_seed(seed)
    ids = tokenizer.encode(prompt, add_special_tokens=False) or [tokenizer.eos_token_id]
    window = getattr(model.config, "n_positions", None) or 1024
    keep = max(window - settings.max_new_tokens, 1)
    inputs = torch.tensor([ids[-keep:]], device=model.device)
    with torch.no_grad():
        output = model.generate(
            inputs,
            attention_mask=torch.ones_like(inputs),
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            **settings.generate_kwargs(),
        )
    return tokenizer.decode(output[0, inputs.shape[1] :], skip_special_tokens=True)
