"""Fitting the story cache's θ and λ for one model (`flask model fit-cache`).

The validation split (the last 10% of every cleaned corpus file, never
trained on) is cut in two: θ and λ are chosen on the first half of each
file's tail (the tuning split) by a grid search over bits/char, and the
second half measures the cache on and off. The cache is switched on in the
model folder's generation_config.json only where it helps there by at least
MIN_GAIN; the figures are written next to the switch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THETAS = (2.0, 5.0, 10.0, 20.0, 40.0)
LAMBDAS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
MIN_GAIN = 0.005  # on only when held-out bits/char drop by at least 0.5%


@dataclass
class Fit:
    theta: float
    lam: float
    tuning_bpc: float
    heldout_off: float
    heldout_on: float

    @property
    def enabled(self) -> bool:
        return self.heldout_on <= self.heldout_off * (1 - MIN_GAIN)


def halves(texts: list[str]) -> tuple[list[str], list[str]]:
    """Each text's first half (tuning) and second half (held out)."""
    return [t[: len(t) // 2] for t in texts], [t[len(t) // 2 :] for t in texts]


def windows(model: Any, tokenizer: Any, texts: list[str], context: int, limit: int) -> list:
    """(logits, hidden, ids, chars) per non-overlapping window, at most `limit` windows."""
    import torch

    out = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        for start in range(0, max(len(ids) - 1, 0), context):
            chunk = ids[start : start + context + 1]  # inputs and the next ids
            if len(chunk) < 16 or len(out) >= limit:
                continue
            tensor = torch.tensor([chunk[:-1]], device=model.device)
            with torch.no_grad():
                result = model(tensor, output_hidden_states=True)
            targets = torch.tensor(chunk[1:], device=model.device)
            chars = len(tokenizer.decode(chunk[1:]))
            out.append((result.logits[0], result.hidden_states[-1][0], targets, chars))
    return out


def bits_per_char(chunks: list, theta: float, lam: float) -> float:
    from app.generation.story_cache import sequence_log_probs

    nll = sum(-float(sequence_log_probs(lg, h, y, theta, lam).sum()) for lg, h, y, _ in chunks)
    chars = sum(c for *_, c in chunks)
    return nll / math.log(2) / max(chars, 1)


def fit(model: Any, tokenizer: Any, val_texts: list[str], context: int, limit: int = 80) -> Fit:
    """Grid-search θ and λ on the tuning half; measure on the held-out half."""
    tuning, heldout = halves(val_texts)
    tune = windows(model, tokenizer, tuning, context, limit)
    grid = {(t, lam): bits_per_char(tune, t, lam) for t in THETAS for lam in LAMBDAS}
    theta, lam = min(grid, key=grid.get)
    held = windows(model, tokenizer, heldout, context, limit)
    return Fit(
        theta, lam, grid[theta, lam], bits_per_char(held, 0, 0), bits_per_char(held, theta, lam)
    )


def write_switch(model_dir: Path, result: Fit, corpus: str) -> dict[str, Any]:
    """Record the fit in generation_config.json (`relay_story_cache`); returns the entry."""
    from app.generation.story_cache import CONFIG_KEY

    path = model_dir / "generation_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    entry = {
        "enabled": result.enabled,
        "theta": result.theta,
        "lambda": result.lam,
        "fitted_on": f"first half of the validation split of {corpus}",
        "heldout_bits_per_char": {
            "off": round(result.heldout_off, 4),
            "on": round(result.heldout_on, 4),
        },
    }
    config[CONFIG_KEY] = entry
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return entry
