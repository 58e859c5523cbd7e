"""What a model folder says about itself, read without loading the model.

The card's name (the first heading of MODEL_CARD.md) and the characters per
token measured by `flask model eval` (eval.json: the model's bits per token
over its bits per character on held-out text). No torch, no Flask.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class ModelInfo:
    """The card name (None without a card) and the measured characters per token (None
    when the folder was never evaluated)."""

    card_name: str | None
    chars_per_token: float | None


def model_info(source: str) -> ModelInfo:
    """What the folder at `source` says; a hub id or a missing folder says nothing."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return ModelInfo(None, None)
    return _read(str(path.resolve()))


@lru_cache(maxsize=64)
def _read(folder: str) -> ModelInfo:
    path = Path(folder)
    return ModelInfo(_card_name(path / "MODEL_CARD.md"), _chars_per_token(path / "eval.json"))


def _card_name(card: Path) -> str | None:
    try:
        lines = card.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("# ") and line[2:].strip():
            return line[2:].strip()
    return None


def _chars_per_token(report: Path) -> float | None:
    """log2(token perplexity) / bits per character of the model's own row: the number of
    characters one token stood for on the held-out text."""
    try:
        rows = json.loads(report.read_text(encoding="utf-8"))["rows"]
        row = next(r for r in rows if r.get("name") == "model")
        bits_per_token = math.log2(float(row["token_perplexity"]))
        value = bits_per_token / float(row["bits_per_char"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None
