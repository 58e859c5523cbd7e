"""Bits/char and the bigram baseline, checked by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from app.workshop.baselines import BigramModel, char_bigram_score, fit_bigram
from app.workshop.data import eval_windows
from app.workshop.scoring import causal_lm_nll

PROBS = torch.tensor([0.5, 0.25, 0.125, 0.125])


class FixedModel(torch.nn.Module):
    """Predicts the same next-token distribution PROBS at every position."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        B, T = input_ids.shape
        return SimpleNamespace(logits=PROBS.log().expand(B, T, -1))  # (B, T, V)


def test_bits_per_char_matches_hand_computation():
    """Is bits/char the summed NLL of the text tokens / characters / ln 2?"""
    sep = 3
    stream = [sep, 0, 1, 2, 0, 0, sep, 1, 2]  # two documents after separators
    windows = eval_windows(stream, context=4, sep_id=sep)
    score = causal_lm_nll(FixedModel(), windows, batch_size=2)
    targets = [0, 1, 2, 0, 0, 1, 2]  # every text token once, separators never
    hand_nats = -sum(math.log(PROBS[t]) for t in targets)
    assert score.tokens == len(targets)
    assert score.nll == pytest.approx(hand_nats, rel=1e-6)
    score.chars = 20
    assert score.bits_per_char == pytest.approx(hand_nats / 20 / math.log(2), rel=1e-6)
    bits = sum(-math.log2(PROBS[t]) for t in targets)  # 1, 2 and 3 bits per token
    assert score.bits_per_char == pytest.approx(bits / 20, rel=1e-6)


@pytest.mark.parametrize("k", [1.0, 0.01])
def test_bigram_rows_sum_to_one(k):
    """Does every P(. | prev) of the add-k bigram sum to one, seen context or not?"""
    ids = [0, 1, 2, 1, 2, 3, 0, 1, 4, 4, 2]
    model = BigramModel.fit(ids, vocab_size=6, k=k)
    for prev in range(6):
        row = model.next_distribution(prev)
        assert row.sum() == pytest.approx(1.0)
        assert np.allclose(np.exp(model.log_prob([prev] * 6, range(6))), row)


def test_bigram_counts_by_hand():
    """Is P(2 | 1) = (count(1,2) + k) / (count(1) + k V)?"""
    ids = [0, 1, 2, 1, 2, 1, 0]
    model = BigramModel.fit(ids, vocab_size=3, k=0.5)
    assert math.exp(model.log_prob([1], [2])[0]) == pytest.approx((2 + 0.5) / (3 + 1.5))


def test_fit_bigram_picks_a_grid_k_and_char_bigram_scores():
    """Does k selection run and the char bigram give a finite bits/char?"""
    model = fit_bigram([0, 1, 2, 3] * 50, vocab_size=5)
    assert model.k > 0
    score, k = char_bigram_score(["abcabcabc" * 20], ["abcab"])
    assert 0 < score.bits_per_char < 2 and k > 0
