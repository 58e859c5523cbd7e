"""Batched sampling: one call per step for every running sequence, each with its own settings.

Hugging Face's warpers sort the whole vocabulary for top-p (50k entries per
row per step) and its no-repeat-n-gram processor walks every sequence in
Python at every step. Here, for a batch of B rows:

- repetition penalty: HF's gather/penalise/scatter on the context ids, all rows
  at once (B x T, not B x V);
- no-repeat n-grams: the context's (n-1)-grams compared to its last n-1
  tokens with `unfold`, all rows at once (one group per distinct n);
- temperature and top-k before the nucleus: `topk` of K = max(top_k)
  candidates (temperature does not change the order), then temperature and the
  nucleus cut on those K only. A row without top-k (top_k=0) uses K candidates
  too when they already hold top_p of the full distribution (the exact same
  nucleus); only a row where they do not is sorted in full;
- the draw: one uniform number per row from the request's own seeded
  generator, inverted through the row's cumulative distribution, so a
  sequence's tokens do not depend on what else is in the batch.

Processing order and semantics follow HF generate: repetition penalty,
no-repeat n-grams, bad words, temperature, top-k, top-p.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

CANDIDATES = 64  # top-k candidates examined for rows without their own top-k
NEG_INF = float("-inf")
_SERIALS = itertools.count()


@dataclass
class RowSettings:
    """The sampling settings of one running sequence (built once per request)."""

    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    no_repeat_ngram_size: int
    bad_words_ids: list[list[int]] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    serial: int = field(default_factory=lambda: next(_SERIALS))  # identifies the row's settings

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class BatchContext:
    """What the processors need to see of the contexts: rows 0..B-1 of the engine's slots."""

    history: torch.Tensor  # (S, T_max) long: prompt + generated ids per slot
    lengths: torch.Tensor  # (B,) long: valid ids per row
    memo: dict[str, Any] = field(default_factory=dict)  # kept by the engine across steps


def sample(logits: torch.Tensor, rows: Sequence[RowSettings], ctx: BatchContext) -> torch.Tensor:
    """The next token (B,) for logits (B, V) in fp32; modifies logits in place."""
    B, V = logits.shape
    dev = logits.device
    _repetition_penalty(logits, rows, ctx)
    _no_repeat_ngrams(logits, rows, ctx)
    _bad_words(logits, rows, ctx)
    greedy, temps, top_p, beyond_k, top_ks = _settings(rows, V, dev, ctx.memo)
    K = beyond_k.shape[1]
    # Temperature keeps the order, so the top-k of the raw logits are the top-k after it.
    values, indices = torch.topk(logits, K, dim=-1)  # (B, K) each, descending
    values = (values / temps[:, None]).masked_fill_(beyond_k, NEG_INF)
    # Normalise over the top-k set (HF: top-p after top-k), or the full vocabulary without top-k.
    norm = torch.logsumexp(values, -1)  # (B,)
    full_rows = [i for i, k in enumerate(top_ks) if k == 0 and not rows[i].greedy]
    if full_rows:
        picked_rows = torch.tensor(full_rows, device=dev)
        full_logits = logits[picked_rows] / temps[picked_rows, None]  # (F, V)
        norm[picked_rows] = torch.logsumexp(full_logits, -1)
    probs = torch.exp(values - norm[:, None])  # (B, K)
    cum = probs.cumsum(-1)  # (B, K)
    keep = (cum - probs) < top_p[:, None]  # exclusive mass before the token < top_p
    keep[:, 0] = True
    probs = probs * keep
    u = torch.tensor([r.rng.random() for r in rows], device=dev, dtype=probs.dtype)  # (B,)
    picked = _invert(probs, u)  # (B,)
    tokens = indices.gather(1, picked[:, None])[:, 0]  # (B,)
    tokens = torch.where(greedy, indices[:, 0], tokens)
    for j, row in enumerate(full_rows):  # the nucleus reaches past K candidates: sort in full
        if float(cum[row, -1]) < float(top_p[row]):
            tokens[row] = _full_nucleus(full_logits[j], float(top_p[row]), float(u[row]))
    return tokens


def _settings(rows: Sequence[RowSettings], V: int, dev: torch.device, memo: dict) -> tuple:
    """Per-row setting tensors, rebuilt only when the batch's rows change."""
    key = tuple(r.serial for r in rows)
    if memo.get("key") == key:
        return memo["value"]
    greedy = torch.tensor([r.greedy for r in rows], device=dev)  # (B,)
    temps = torch.tensor([r.temperature if r.temperature > 0 else 1.0 for r in rows], device=dev)
    top_p = torch.tensor([r.top_p for r in rows], device=dev)  # (B,)
    top_ks = [r.top_k if 0 < r.top_k < V else 0 for r in rows]
    K = min(V, max(max(top_ks), CANDIDATES if 0 in top_ks else 1))
    ks = torch.tensor([k or K for k in top_ks], device=dev)
    beyond_k = torch.arange(K, device=dev)[None, :] >= ks[:, None]  # (B, K)
    memo["key"], memo["value"] = key, (greedy, temps, top_p, beyond_k, top_ks)
    return memo["value"]


def _invert(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index (B,) where each row's cumulative mass first exceeds u * its total."""
    cum = probs.cumsum(-1)  # (B, K)
    target = u * cum[:, -1]  # (B,)
    picked = torch.searchsorted(cum, target[:, None], right=True)[:, 0]  # (B,)
    nonzero = probs > 0
    last = nonzero.shape[1] - 1 - nonzero.flip(-1).float().argmax(-1)  # last kept index
    return torch.minimum(picked, last)


def _full_nucleus(row_logits: torch.Tensor, top_p: float, u: float) -> int:
    values, indices = torch.sort(row_logits, descending=True)  # (V,)
    probs = torch.softmax(values, -1)
    cum = probs.cumsum(-1)
    keep = (cum - probs) < top_p
    keep[0] = True
    probs = probs * keep
    picked = _invert(probs[None], torch.tensor([u], dtype=probs.dtype))[0]
    return int(indices[picked])


def _repetition_penalty(
    logits: torch.Tensor, rows: Sequence[RowSettings], ctx: BatchContext
) -> None:
    """HF's penalty on every id in the context: gather (B, T), penalise, scatter back."""
    penalties = [r.repetition_penalty for r in rows]
    if all(p == 1.0 for p in penalties):
        return
    T = int(ctx.lengths.max())
    ids = ctx.history[: len(rows), :T]  # (B, T)
    inside = torch.arange(T, device=ids.device)[None, :] < ctx.lengths[:, None]  # (B, T)
    ids = torch.where(inside, ids, ids[:, :1])  # padding repeats an id: scatter is idempotent
    p = torch.tensor(penalties, device=logits.device)[:, None]  # (B, 1)
    scores = logits.gather(1, ids)  # (B, T)
    logits.scatter_(1, ids, torch.where(scores < 0, scores * p, scores / p))


def _no_repeat_ngrams(logits: torch.Tensor, rows: Sequence[RowSettings], ctx: BatchContext) -> None:
    sizes = {r.no_repeat_ngram_size for r in rows if r.no_repeat_ngram_size > 0}
    for n in sizes:
        picked = [i for i, r in enumerate(rows) if r.no_repeat_ngram_size == n]
        _ban_ngrams(logits, torch.tensor(picked, device=logits.device), n, ctx)


def _ban_ngrams(logits: torch.Tensor, picked: torch.Tensor, n: int, ctx: BatchContext) -> None:
    """Forbid, per picked row, each token that followed an earlier copy of its last n-1 ids."""
    lengths = ctx.lengths[picked]  # (R,)
    t = int(lengths.max())
    if t < n:
        return
    hist = ctx.history[picked, :t]  # (R, T)
    if n == 1:  # every seen token is banned
        for row, length in zip(picked.tolist(), lengths.tolist(), strict=True):
            logits[row, ctx.history[row, :length]] = NEG_INF
        return
    offsets = torch.arange(n - 1, device=hist.device)  # (n-1,)
    tail = hist.gather(1, (lengths[:, None] - (n - 1) + offsets).clamp(min=0))  # (R, n-1)
    windows = hist.unfold(1, n - 1, 1)[:, : t - n + 1]  # (R, W, n-1): window j -> id j+n-1 next
    starts = torch.arange(t - n + 1, device=hist.device)  # (W,)
    valid = (starts[None, :] + n - 1 < lengths[:, None]) & (lengths[:, None] >= n)  # (R, W)
    match = (windows == tail[:, None, :]).all(-1) & valid  # (R, W)
    r_idx, w_idx = match.nonzero(as_tuple=True)
    if r_idx.numel():
        banned = hist[r_idx, w_idx + n - 1]  # ids that followed a match
        logits[picked[r_idx], banned] = NEG_INF


def _bad_words(logits: torch.Tensor, rows: Sequence[RowSettings], ctx: BatchContext) -> None:
    """Mask each banned sequence's last token in the rows whose text ends with the tokens
    before it (a one-token sequence: always): the sequence is never completed. All the
    rows' sequences are checked at once against one table (built when the rows change)."""
    table = _bad_words_table(rows, logits.device, ctx.memo)
    if table is None:
        return
    row_of, prefixes, prefix_lens, last = table  # (N,), (N, L), (N,), (N,)
    N, L = prefixes.shape
    lengths = ctx.lengths[row_of]  # (N,)
    if L:
        cols = torch.arange(L, device=logits.device)  # (L,)
        at = (lengths[:, None] - L + cols[None, :]).clamp(min=0)  # (N, L): the last L ids
        tails = ctx.history[row_of[:, None], at]  # (N, L)
        # Prefixes are right-aligned: column j belongs to sequence i when j >= L - len_i.
        used = cols[None, :] >= (L - prefix_lens)[:, None]  # (N, L)
        match = ((tails == prefixes) | ~used).all(-1) & (lengths >= prefix_lens)  # (N,)
    else:
        match = torch.ones(N, dtype=torch.bool, device=logits.device)
    penalty = torch.zeros(N, dtype=logits.dtype, device=logits.device).masked_fill_(match, NEG_INF)
    logits.index_put_((row_of, last), penalty, accumulate=True)  # x + 0 = x; x - inf = -inf


def _bad_words_table(rows: Sequence[RowSettings], dev: torch.device, memo: dict) -> Any:
    """(row of each sequence, its prefix right-aligned in L columns, prefix length, last
    token) for every row's banned sequences; None when no row bans any."""
    key = tuple(r.serial for r in rows)
    cached = memo.get("bad_words")
    if cached is not None and cached[0] == key:
        return cached[1]
    seqs = [(i, seq) for i, r in enumerate(rows) for seq in r.bad_words_ids if seq]
    table = None
    if seqs:
        L = max(len(seq) - 1 for _, seq in seqs)
        prefixes = torch.zeros((len(seqs), L), dtype=torch.long)
        for n, (_, seq) in enumerate(seqs):
            if len(seq) > 1:
                prefixes[n, L - len(seq) + 1 :] = torch.tensor(seq[:-1])
        table = (
            torch.tensor([i for i, _ in seqs], device=dev),
            prefixes.to(dev),
            torch.tensor([len(seq) - 1 for _, seq in seqs], device=dev),
            torch.tensor([seq[-1] for _, seq in seqs], device=dev),
        )
    memo["bad_words"] = (key, table)
    return table
