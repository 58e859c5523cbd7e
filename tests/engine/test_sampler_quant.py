"""Batched sampling against HF's warpers, and the quantised paths' perplexity."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from app.generation.engine.sampler import BatchContext, RowSettings, sample


def hf_allowed(logits: torch.Tensor, row: RowSettings, context: list[int]) -> set[int]:
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    procs = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(row.repetition_penalty)])
    if row.no_repeat_ngram_size:
        procs.append(NoRepeatNGramLogitsProcessor(row.no_repeat_ngram_size))
    procs.append(TemperatureLogitsWarper(row.temperature))
    if row.top_k:
        procs.append(TopKLogitsWarper(row.top_k))
    procs.append(TopPLogitsWarper(row.top_p))
    out = procs(torch.tensor([context]), logits[None].clone())[0]
    return set(torch.isfinite(out).nonzero().flatten().tolist())


def test_sampled_tokens_stay_inside_hf_nucleus():
    """Is every drawn token one HF's processors (penalty, n-grams, top-k, top-p) would allow?"""
    torch.manual_seed(0)
    V, B, T = 500, 6, 40
    settings = [
        RowSettings(0.8, 50, 0.9, 1.15, 3),
        RowSettings(1.05, 0, 0.97, 1.1, 4),  # no top-k: the full-sort fallback on flat rows
        RowSettings(0.6, 40, 0.85, 1.2, 3),
        RowSettings(1.0, 5, 1.0, 1.0, 0),
        RowSettings(2.0, 0, 0.5, 1.3, 2),
        RowSettings(0.7, 0, 0.92, 1.15, 3),
    ]
    lengths = [40, 12, 25, 3, 30, 40]
    history = torch.randint(0, 30, (B, T))  # small alphabet: many repeated n-grams
    ctx = BatchContext(history, torch.tensor(lengths))
    for trial in range(40):
        for s in settings:
            s.rng = random.Random(trial)
        logits = torch.randn(B, V) * (0.2 if trial % 2 else 3.0)  # flat and peaked rows
        tokens = sample(logits.clone(), settings, ctx).tolist()
        for b, (token, s) in enumerate(zip(tokens, settings, strict=True)):
            assert token in hf_allowed(logits[b], s, history[b, : lengths[b]].tolist())


def test_greedy_row_is_argmax_after_penalties():
    """Does a greedy row take the arg-max of the penalised logits whatever its neighbours do?"""
    logits = torch.tensor([[1.0, 3.0, 2.9, -1.0], [0.0, 0.1, 0.2, 0.3]])
    history = torch.tensor([[1, 1, 1], [0, 1, 2]])
    rows = [RowSettings(0.0, 0, 1.0, 1.2, 0), RowSettings(0.9, 2, 0.5, 1.0, 0)]
    tokens = sample(logits, rows, BatchContext(history, torch.tensor([3, 3])))
    assert tokens[0] == 2  # 3.0 / 1.2 = 2.5 < 2.9


@pytest.mark.parametrize(
    "precision,kv_cache,bound",
    [
        ("int8", "fp32", 0.01),
        ("int8", "bf16", 0.01),
        ("bf16", "auto", 0.01),
        ("fp32", "bf16", 0.01),
    ],
)
def test_quantised_perplexity_stays_within_bound(tiny_model_dir: Path, precision, kv_cache, bound):
    """Does the int8/bf16 path (and a bf16 KV cache) keep perplexity within 1% of fp32?"""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.generation.engine.model import GPT2Engine
    from app.generation.engine.quant import convert, perplexity
    from tests.conftest import TINY_TEXT

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = tokenizer.encode(TINY_TEXT[:3000])
    fp32 = GPT2Engine(model)
    reference = perplexity(fp32, ids, window=128, stride=64)
    with torch.inference_mode():
        hf_logits = model(torch.tensor([ids[:100]])).logits[0]
        ours = fp32.logits(torch.tensor([ids[:100]]))[0]
    assert torch.allclose(hf_logits, ours, atol=1e-4)
    converted = convert(fp32, precision, kv_cache=kv_cache)
    if kv_cache != "auto":
        wanted = torch.float32 if kv_cache == "fp32" else torch.bfloat16
        assert converted.cache_dtype == wanted
    assert fp32.kv_dtype is None  # converting never changes the caller's engine
    quantised = perplexity(converted, ids, window=128, stride=64)
    if kv_cache == "bf16":
        assert quantised != reference  # attention really ran on bf16 keys and values
    assert abs(quantised / reference - 1) <= bound, (precision, reference, quantised)


@pytest.mark.parametrize("kv_cache", ["fp32", "bf16"])
def test_decode_step_matches_whole_sequence_logits(tiny_model_dir: Path, kv_cache):
    """Do cached decode steps of rows at different positions give logits() of each sequence
    (the path the perplexity bound measures), for the fp32 and the bf16 cache?"""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.generation.engine.model import GPT2Engine
    from app.generation.engine.quant import convert
    from tests.conftest import TINY_TEXT

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    net = convert(GPT2Engine(model), "fp32", kv_cache=kv_cache)
    ids = tokenizer.encode(TINY_TEXT[:800])
    lengths = [40, 23, 31]  # rows at different positions: the decode mask is in play
    cache = net.new_cache(slots=4)
    for slot, n in enumerate(lengths):
        net.prefill(torch.tensor(ids[slot : slot + n]), cache, slot)
    for step in range(3):
        tokens = torch.tensor([ids[slot + n + step] for slot, n in enumerate(lengths)])
        positions = torch.tensor([n + step for n in lengths])
        got = net.decode(tokens, positions, cache)  # (B, V)
    for slot, n in enumerate(lengths):
        whole = net.logits(torch.tensor([ids[slot : slot + n + 3]]))[0, -1]
        tolerance = 1e-5 if kv_cache == "fp32" else 1e-3 * whole.abs().max().item()
        assert (got[slot] - whole).abs().max().item() <= tolerance
        assert got[slot].argmax() == whole.argmax()


def test_auto_kv_cache_follows_the_timed_attention(monkeypatch):
    """Does "auto" keep a bf16 cache only for int8 on a native-bf16 CPU where bf16
    attention timed faster, and leave the global RNG alone while timing?"""
    from app.generation.engine import quant

    cpu = torch.device("cpu")
    torch.manual_seed(7)
    expected = torch.rand(1)
    torch.manual_seed(7)
    assert quant._attention_seconds(torch.bfloat16, 2, 8, rows=2, length=16) > 0
    assert torch.equal(torch.rand(1), expected)
    monkeypatch.setattr(quant, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(quant, "_FASTER_BF16", {(12, 64): True, (4, 64): False})
    assert quant.kv_cache_dtype("int8", cpu, "auto", (12, 64)) == torch.bfloat16
    assert quant.kv_cache_dtype("int8", cpu, "auto", (4, 64)) is None  # bf16 timed slower
    assert quant.kv_cache_dtype("fp32", cpu, "auto", (12, 64)) is None
    assert quant.kv_cache_dtype("int8", cpu, "fp32", (12, 64)) == torch.float32
    assert quant.kv_cache_dtype("int8", cpu, "bf16", (4, 64)) == torch.bfloat16
    monkeypatch.setattr(quant, "cpu_has_native_bf16", lambda: False)
    assert quant.kv_cache_dtype("int8", cpu, "auto", (12, 64)) is None
    quant._FASTER_BF16.clear()
    monkeypatch.setattr(quant, "cpu_has_native_bf16", lambda: True)
    chosen = quant.kv_cache_dtype("int8", cpu, "auto", (2, 8))  # really timed
    assert (2, 8) in quant._FASTER_BF16
    assert chosen == (torch.bfloat16 if quant._FASTER_BF16[(2, 8)] else None)
