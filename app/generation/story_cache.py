"""The story cache: a continuous cache over the prompt (Grave, Joulin & Usunier, 2017).

"Improving Neural Language Models with a Continuous Cache": the next-token
distribution is mixed with one over the tokens that already followed similar
states in this text,

    p(w) = (1 - λ) p_model(w) + λ Σ_{i < t, x_{i+1} = w} softmax_i(θ · ĥ_t · ĥ_i)

where ĥ_i is the final hidden state (after ln_f) at position i, normalised to
unit length (our one change from the paper: θ then means the same for every
model width). A small model that has seen "Mirelle" twice in the story gives
her name back when the state looks like the one before her name did.

θ and λ are fitted per model on a tuning split (`flask model fit-cache`,
app/workshop/story_cache_fit.py) and written into the model folder's
generation_config.json as `relay_story_cache`: {"enabled", "theta", "lambda"}.
Both generators read it from there (`settings_for`, once per model): the batching
engine mixes per row (app/generation/engine/batch.py), the Hugging Face path
through a logits processor (app/generation/generator.py).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

CONFIG_KEY = "relay_story_cache"


@dataclass(frozen=True)
class StoryCache:
    theta: float
    lam: float

    @classmethod
    def from_dict(cls, data: Any) -> StoryCache | None:
        """The settings of a generation config's `relay_story_cache`, or None when off."""
        if not isinstance(data, dict) or not data.get("enabled"):
            return None
        theta, lam = float(data.get("theta", 0)), float(data.get("lambda", 0))
        return cls(theta, lam) if theta > 0 and 0 < lam < 1 else None

    @classmethod
    def for_model(cls, source: str | Path) -> StoryCache | None:
        """What the model folder's generation_config.json says (None: off, or a hub id)."""
        path = Path(source).expanduser() / "generation_config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls.from_dict(data.get(CONFIG_KEY))


@functools.lru_cache(maxsize=64)
def settings_for(source: str) -> StoryCache | None:
    """StoryCache.for_model, read once per model source (generation reads it per job)."""
    return StoryCache.for_model(source)


def unit(hidden: torch.Tensor) -> torch.Tensor:
    """Hidden states (..., C) scaled to unit length, in fp32."""
    return F.normalize(hidden.float(), dim=-1)


def mix(
    logits: torch.Tensor,
    query: torch.Tensor,
    keys: torch.Tensor,
    next_ids: torch.Tensor,
    valid: torch.Tensor,
    theta: torch.Tensor,
    lam: torch.Tensor,
) -> torch.Tensor:
    """Log-probabilities (B, V) of the cache mixture, for a batch of rows at once.

    logits (B, V) the model's; query (B, C) the current unit hidden state; keys
    (B, T, C) unit hidden states of earlier positions; next_ids (B, T) the token
    that followed each; valid (B, T) which positions count; theta, lam (B,) per
    row (λ = 0 leaves a row's distribution as the model's).
    """
    scores = torch.einsum("btc,bc->bt", keys, query) * theta[:, None]  # (B, T)
    scores = scores.masked_fill(~valid, float("-inf"))
    attention = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a row with no entries: 0
    p_cache = torch.zeros_like(logits).scatter_add_(1, next_ids, attention)  # (B, V)
    has_cache = valid.any(dim=1, keepdim=True)
    weight = torch.where(has_cache, lam[:, None], torch.zeros_like(lam[:, None]))
    p = (1 - weight) * torch.softmax(logits.float(), dim=-1) + weight * p_cache
    return torch.log(p.clamp_min(1e-30))


def mix_rows(
    logits: torch.Tensor,
    hidden: torch.Tensor,
    history: torch.Tensor,
    lengths: torch.Tensor,
    settings: StoryCache,
) -> torch.Tensor:
    """The batching engine's step: rows 0..B-1 of its slots, each with `lengths` ids in
    `history` (S, T_max) and their unit hidden states in `hidden` (S, T_max, C); the query
    is each row's last position, the keys its earlier ones with the ids that followed."""
    B, t_max = logits.shape[0], int(lengths.max())
    rows = torch.arange(B, device=logits.device)
    query = hidden[rows, lengths - 1]  # (B, C)
    keys = hidden[:B, : t_max - 1]  # (B, T, C): pairs (h_i, x_{i+1})
    next_ids = history[:B, 1:t_max]  # (B, T)
    valid = torch.arange(t_max - 1, device=logits.device)[None, :] < (lengths - 1)[:, None]
    theta = torch.full((B,), settings.theta, device=logits.device)
    lam = torch.full((B,), settings.lam, device=logits.device)
    return mix(logits, query, keys, next_ids, valid, theta, lam)


class HFStoryCache:
    """The same mixture on the Hugging Face path: hooks on one `generate` call (batch of
    one) that replace the last position's logits with the mixture's log-probabilities, so
    every logits processor and warper after it sees what the engine's sampler sees."""

    def __init__(self, model: Any, settings: StoryCache) -> None:
        self.settings = settings
        self.ids: list[torch.Tensor] = []  # (T,) pieces: every token fed so far
        self.keys: list[torch.Tensor] = []  # (T, C) pieces: their unit final hidden states
        base = model.base_model
        final_norm = getattr(base, "ln_f", None) or getattr(base, "norm", None)  # GPT-2, Llama
        self._hooks = (
            []
            if final_norm is None
            else [
                model.register_forward_pre_hook(self._take_ids, with_kwargs=True),
                final_norm.register_forward_hook(self._take_keys),
                model.get_output_embeddings().register_forward_hook(self._mix),
            ]
        )

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()

    def _take_ids(self, _module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.ids.append(ids[0])

    def _take_keys(self, _module: Any, _inputs: tuple, hidden: torch.Tensor) -> None:
        self.keys.append(unit(hidden[0]))  # (T_new, C): every new position, before slicing

    def _mix(self, _module: Any, _inputs: tuple, logits: torch.Tensor) -> torch.Tensor:
        keys, ids = torch.cat(self.keys), torch.cat(self.ids)
        if keys.shape[0] < 2 or ids.shape[0] != keys.shape[0]:
            return logits
        s = self.settings
        one = torch.ones(1, device=logits.device)
        mixed = mix(
            logits[:, -1].float(),
            keys[-1:],
            keys[None, :-1],
            ids[None, 1:],
            torch.ones(1, keys.shape[0] - 1, dtype=torch.bool, device=logits.device),
            one * s.theta,
            one * s.lam,
        )
        out = logits.clone()
        out[:, -1] = mixed.to(out.dtype)
        return out


def sequence_log_probs(
    logits: torch.Tensor, hidden: torch.Tensor, targets: torch.Tensor, theta: float, lam: float
) -> torch.Tensor:
    """Log p(targets[t]) under the mixture at every position of one sequence (fitting and
    evaluation): logits (T, V) and hidden (T, C) of the inputs, targets (T,) the next ids
    (a negative id is never predicted nor cached). Position t's cache holds the pairs
    (h_i, targets[i]) for i < t."""
    T = targets.shape[0]
    safe = targets.clamp_min(0)
    model_lp = torch.log_softmax(logits.float(), dim=-1).gather(1, safe[:, None])[:, 0]
    if lam <= 0:
        return model_lp
    h = unit(hidden)
    earlier = torch.ones(T, T, dtype=torch.bool, device=targets.device).tril(-1)
    scores = (h @ h.T * theta).masked_fill(~earlier, float("-inf"))  # query t, key i
    attention = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    same = (targets[None, :] == targets[:, None]) & (targets[None, :] >= 0)
    p_cache = (attention * same).sum(dim=1)
    weight = torch.where(earlier.any(dim=1), lam, 0.0)
    return torch.log(((1 - weight) * model_lp.exp() + weight * p_cache).clamp_min(1e-30))
