"""Negative log-likelihood of token windows: behind val loss, perplexity and bits/char."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from app.workshop.data import IGNORE_INDEX


@dataclass
class Score:
    """Summed natural-log NLL over scored tokens, with the token and character counts."""

    nll: float
    tokens: int
    chars: int = 0

    @property
    def loss(self) -> float:
        """Mean NLL per token (nats)."""
        return self.nll / max(self.tokens, 1)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 50.0))

    @property
    def bits_per_char(self) -> float:
        """Total NLL / characters / ln 2: comparable across tokenizers."""
        return self.nll / max(self.chars, 1) / math.log(2)


def pad_windows(windows: Sequence[tuple[list, list]], pad_id: int):
    """Stack variable-length windows into (inputs, labels) tensors, padding labels with -100."""
    import torch

    width = max(len(x) for x, _ in windows)
    inputs = torch.full((len(windows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(windows), width), IGNORE_INDEX, dtype=torch.long)
    for row, (x, y) in enumerate(windows):
        inputs[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
    return inputs, labels


def causal_lm_nll(
    model, windows: Sequence[tuple[list, list]], batch_size: int = 16, pad_id: int = 0
) -> Score:
    """Sum of -log p(label | inputs so far) over every labelled position of every window."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            inputs, labels = pad_windows(windows[start : start + batch_size], pad_id)
            inputs, labels = inputs.to(device), labels.to(device)
            mask = torch.ones_like(inputs)
            logits = model(input_ids=inputs, attention_mask=mask).logits.float()  # (B, T, V)
            nll = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                labels.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            total += nll.item()
            count += int((labels != IGNORE_INDEX).sum())
    model.train(was_training)
    return Score(total, count)
