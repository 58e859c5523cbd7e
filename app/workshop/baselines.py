"""Baselines trained on the same split: an add-k bigram model and a small LSTM language model.

Both are scored like the GPT (total NLL of the validation text / characters /
ln 2) and sampled with the same logits processors (`SamplingParams`), so the
eval table compares like with like.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.workshop.scoring import Score

K_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


@dataclass
class BigramModel:
    """P(b | a) = (count(a, b) + k) / (count(a) + k * V), stored sparsely."""

    vocab_size: int
    k: float
    pair_keys: np.ndarray  # sorted a * V + b for every seen pair
    pair_counts: np.ndarray
    row_totals: np.ndarray  # count(a) as a context

    @classmethod
    def fit(cls, ids: Sequence[int], vocab_size: int, k: float) -> BigramModel:
        arr = np.asarray(ids, dtype=np.int64)
        keys, counts = np.unique(arr[:-1] * vocab_size + arr[1:], return_counts=True)
        totals = np.bincount(arr[:-1], minlength=vocab_size).astype(np.float64)
        return cls(vocab_size, k, keys, counts.astype(np.float64), totals)

    def pair_count(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        keys = prev * self.vocab_size + nxt
        pos = np.clip(np.searchsorted(self.pair_keys, keys), 0, len(self.pair_keys) - 1)
        return np.where(self.pair_keys[pos] == keys, self.pair_counts[pos], 0.0)

    def log_prob(self, prev: Sequence[int], nxt: Sequence[int]) -> np.ndarray:
        """Natural-log probability of each `nxt` given its `prev`."""
        prev, nxt = np.asarray(prev, dtype=np.int64), np.asarray(nxt, dtype=np.int64)
        num = self.pair_count(prev, nxt) + self.k
        return np.log(num) - np.log(self.row_totals[prev] + self.k * self.vocab_size)

    def next_distribution(self, prev: int) -> np.ndarray:
        """The full P(. | prev) row (sums to one)."""
        row = np.full(self.vocab_size, self.k)
        lo = np.searchsorted(self.pair_keys, prev * self.vocab_size)
        hi = np.searchsorted(self.pair_keys, (prev + 1) * self.vocab_size)
        row[self.pair_keys[lo:hi] - prev * self.vocab_size] += self.pair_counts[lo:hi]
        return row / (self.row_totals[prev] + self.k * self.vocab_size)

    def score(self, streams: Sequence[Sequence[int]]) -> Score:
        """NLL of every token after the first of each stream (the first is the separator)."""
        total, count = 0.0, 0
        for ids in streams:
            if len(ids) > 1:
                total -= float(self.log_prob(ids[:-1], ids[1:]).sum())
                count += len(ids) - 1
        return Score(total, count)

    def score_windows(self, windows: Sequence[tuple[list, list]]) -> Score:
        """NLL of the labelled targets of (inputs, labels) windows, as the GPT is scored."""
        prev = np.concatenate([np.asarray(x, dtype=np.int64) for x, _ in windows])
        nxt = np.concatenate([np.asarray(y, dtype=np.int64) for _, y in windows])
        keep = nxt != -100
        return Score(-float(self.log_prob(prev[keep], nxt[keep]).sum()), int(keep.sum()))


def fit_bigram(train: Sequence[int], vocab_size: int) -> BigramModel:
    """Choose k on the last 10% of the training stream, then refit on all of it."""
    cut = int(len(train) * 0.9)
    best_k, best = K_GRID[0], math.inf
    for k in K_GRID:
        held = BigramModel.fit(train[:cut], vocab_size, k).score([train[cut - 1 :]]).loss
        if held < best:
            best_k, best = k, held
    return BigramModel.fit(train, vocab_size, best_k)


def char_vocab(texts: Sequence[str]) -> dict[str, int]:
    """Id 0 is the document start, 1 an unseen character; the rest the training characters."""
    chars = sorted(set("".join(texts)))
    return {c: i + 2 for i, c in enumerate(chars)}


def char_streams(texts: Sequence[str], vocab: dict[str, int]) -> list[list[int]]:
    return [[0] + [vocab.get(c, 1) for c in text] for text in texts]


def char_bigram_score(train_texts: Sequence[str], val_texts: Sequence[str]) -> tuple[Score, float]:
    """Bits/char of a character bigram on the validation texts; returns (score, chosen k)."""
    vocab = char_vocab(train_texts)
    train = [i for s in char_streams(train_texts, vocab) for i in s]
    model = fit_bigram(train, len(vocab) + 2)
    score = model.score(char_streams(val_texts, vocab))
    score.chars = sum(len(t) for t in val_texts)
    return score, model.k


class LSTMLanguageModel:
    """Embedding -> LSTM -> linear; a thin holder so torch is imported only when used."""

    def __new__(
        cls,
        vocab_size: int,
        embed: int = 256,
        hidden: int = 512,
        layers: int = 2,
        dropout: float = 0.1,
    ):
        import torch.nn as nn

        class _LSTM(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = nn.Embedding(vocab_size, embed)
                self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True, dropout=dropout)
                self.drop = nn.Dropout(dropout)
                self.head = nn.Linear(hidden, vocab_size)

            def forward(self, input_ids, state=None):
                out, state = self.lstm(self.drop(self.embed(input_ids)), state)  # (B, T, H)
                return self.head(self.drop(out)), state  # (B, T, V)

        return _LSTM()


def train_lstm(
    train_ids,
    vocab_size: int,
    minutes: float,
    context: int = 256,
    batch_size: int = 16,
    lr: float = 2e-3,
    seed: int = 1337,
):
    """Train an LSTM LM on random windows of the training stream for `minutes` of wall time."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    model = LSTMLanguageModel(vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    stream = torch.as_tensor(train_ids)
    deadline, steps = time.time() + minutes * 60, 0
    model.train()
    while time.time() < deadline:
        starts = torch.randint(0, len(stream) - context - 1, (batch_size,), generator=generator)
        x = torch.stack([stream[s : s + context] for s in starts.tolist()])  # (B, T)
        y = torch.stack([stream[s + 1 : s + context + 1] for s in starts.tolist()])
        frac = 1 - (deadline - time.time()) / (minutes * 60)
        for group in optimizer.param_groups:
            group["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
    model.eval()
    return model, steps


def lstm_score(model, windows: Sequence[tuple[list, list]], batch_size: int = 16) -> Score:
    """NLL of the LSTM on the same validation windows as the GPT (state reset per window)."""
    import torch
    import torch.nn.functional as F

    from app.workshop.scoring import pad_windows

    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            inputs, labels = pad_windows(windows[start : start + batch_size], 0)
            logits, _ = model(inputs)
            total += F.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                labels.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            ).item()
            count += int((labels != -100).sum())
    return Score(total, count)


def sample_next_token(logits, history, processors, greedy: bool) -> int:
    """Apply the app's logits processors to one step's logits and draw a token."""
    import torch

    scores = processors(history, logits.view(1, -1).float())
    if greedy:
        return int(scores.argmax())
    return int(torch.multinomial(torch.softmax(scores, dim=-1), 1))


def sample_bigram(model: BigramModel, prompt: list[int], n: int, processors, greedy: bool):
    """Continue `prompt` by `n` tokens from the bigram model."""
    import torch

    ids = list(prompt)
    for _ in range(n):
        logits = torch.from_numpy(np.log(model.next_distribution(ids[-1])))
        ids.append(sample_next_token(logits, torch.tensor([ids]), processors, greedy))
    return ids[len(prompt) :]


def sample_lstm(model, prompt: list[int], n: int, processors, greedy: bool):
    """Continue `prompt` by `n` tokens from the LSTM, carrying its state."""
    import torch

    ids = list(prompt)
    with torch.no_grad():
        logits, state = model(torch.tensor([ids]))
        for _ in range(n):
            nxt = sample_next_token(logits[0, -1], torch.tensor([ids]), processors, greedy)
            ids.append(nxt)
            logits, state = model(torch.tensor([[nxt]]), state)
    return ids[len(prompt) :]
