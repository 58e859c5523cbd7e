"""Default sampling settings, shared by the workshop (eval, `model sample`) and the app.

Why these values fight degeneration (the seed projects looped: "he said he
said ...", the same Korean sentence five times): greedy and low-temperature
decoding make a likely phrase ever more likely each time it repeats, so we
sample. Temperature 0.8 narrows the distribution without collapsing it;
nucleus (top-p 0.92) and top-k 50 cut the long tail so rare garbage tokens are
not drawn; repetition_penalty 1.15 (CTRL) discounts tokens already in the
context; no_repeat_ngram_size 4 forbids any 4-token sequence from appearing
twice verbatim. The eval measures the result: the repeated-4-gram rate of
samples next to the corpus's own.

This module does not import torch, so web code may import it freely.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SamplingSettings:
    """Keyword arguments for Hugging Face `generate`, with the workshop's defaults."""

    temperature: float = 0.8
    top_p: float = 0.92
    top_k: int = 50
    repetition_penalty: float = 1.15
    no_repeat_ngram_size: int = 4
    max_new_tokens: int = 200

    def generate_kwargs(self) -> dict[str, Any]:
        """The `generate` arguments (temperature 0 means greedy decoding)."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
        }
        if self.temperature <= 0:
            return kwargs | {"do_sample": False}
        return kwargs | {
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
        }


# For the app (app.generation reads it): the decoding knobs only. Turn length is the app's
# call (the eval's 200-token samples would leave a 256-token model 56 tokens of story).
DEFAULT_SAMPLING: dict[str, Any] = {
    k: v for k, v in asdict(SamplingSettings()).items() if k != "max_new_tokens"
}


def generate_text(model, tokenizer, prompt: str, settings: SamplingSettings, seed: int = 0) -> str:
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
