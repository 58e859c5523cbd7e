"""The engine's own decode kernels (kernels.c) against torch computing the same thing."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from app.generation.engine import kernels
from app.generation.engine.model import GPT2Engine
from app.generation.engine.quant import convert

needs_kernels = pytest.mark.skipif(
    kernels.library() is None, reason="no AVX512-VNNI or no C compiler: torch's paths run"
)


def _quantized_linear(in_features: int, out_features: int, bias: bool = True) -> torch.nn.Module:
    torch.manual_seed(in_features * 7 + out_features)
    dense = torch.nn.Linear(in_features, out_features, bias=bias)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(dense),
            {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
            dtype=torch.qint8,
        )[0]


@needs_kernels
@pytest.mark.parametrize("shape", [(768, 200, True), (100, 37, False), (90, 21, True)])
@pytest.mark.parametrize("rows", [1, 3, 6])
def test_int8_linear_is_the_integer_product_of_its_weights(shape, rows, monkeypatch):
    """Does a call of a few rows equal each row quantised on its own times the int8 weights,
    rescaled, plus bias (widths that are and are not multiples of 4, 16 and 64; with and
    without bias; one row, a partial and a full group of four rows and more)?"""
    monkeypatch.setattr(kernels, "MAX_ROWS", 8)
    in_features, out_features, bias = shape
    quantized = _quantized_linear(in_features, out_features, bias)
    linear = kernels.Int8Linear(quantized, getattr(kernels.library(), kernels._LINEAR))
    x = torch.randn(rows, 1, in_features) * torch.linspace(0.5, 4, rows)[:, None, None]
    got = linear(x)
    scale = x.abs().amax(dim=(1, 2)) / 127  # (rows,)
    xq = torch.round(x[:, 0] / scale[:, None])
    weight = quantized._packed_params._weight_bias()[0].int_repr()
    expected = (xq.double() @ weight.double().T) * scale[:, None] * linear.scales.double()
    if bias:
        expected = expected + linear.bias.double()
    assert got.shape == (rows, 1, out_features)
    torch.testing.assert_close(got[:, 0].double(), expected, rtol=1e-5, atol=1e-4)
    # and it stays close to torch's own int8 linear on the same weights
    torch.testing.assert_close(got, quantized(x), rtol=0.05, atol=0.05 * float(got.abs().max()))


@needs_kernels
def test_int8_linear_leaves_longer_inputs_to_torch():
    """Do prompts (more rows than MAX_ROWS) keep torch's fbgemm path, bit for bit?"""
    quantized = _quantized_linear(64, 48)
    linear = kernels.Int8Linear(quantized, getattr(kernels.library(), kernels._LINEAR))
    x = torch.randn(2, 5, 64)
    assert torch.equal(linear(x), quantized(x))


@needs_kernels
def test_decode_attention_matches_masked_sdpa():
    """Does each row attend over its own cached length only, as SDPA with a mask does?"""
    torch.manual_seed(0)
    B, S, H, T_max, D = 3, 5, 4, 40, 24
    kv = torch.randn(2, S, H, T_max, D)
    lengths = torch.tensor([7, 40, 1])
    q = torch.randn(B, H, 1, D)
    got = kernels.decode_attention(q, kv, lengths)
    keep = torch.arange(T_max)[None, :] < lengths[:, None]
    expected = F.scaled_dot_product_attention(
        q, kv[0, :B], kv[1, :B], attn_mask=keep[:, None, None, :]
    )
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _engines(activation: str) -> tuple[GPT2Engine, GPT2Engine]:
    torch.manual_seed(1)
    config = GPT2Config(n_layer=2, n_embd=96, n_head=4, n_positions=64, vocab_size=300,
                        activation_function=activation)  # fmt: skip
    base = GPT2Engine(GPT2LMHeadModel(config).eval())
    int8, unfused = convert(base, "int8"), convert(base, "int8")
    unfused.fused = None
    return int8, unfused


@needs_kernels
@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
@pytest.mark.parametrize("rows", [1, 3])
def test_fused_decode_step_matches_the_block_by_block_step(activation, rows, monkeypatch):
    """Does one call per layer (layer norms, linears, cache write, attention, GELU, residuals
    in C) give the logits and the cache of the step torch runs block by block around the same
    int8 kernel, for one row and for rows at different positions?"""
    monkeypatch.setattr(kernels, "MAX_ROWS", 8)  # the block-by-block linears on the kernel too
    fused, unfused = _engines(activation)
    assert fused.fused is not None and rows <= fused.fused.max_rows
    prompts = [torch.randint(0, 300, (n,)) for n in (20, 7, 33)[:rows]]
    caches = [engine.new_cache(4, 64) for engine in (fused, unfused)]
    for engine, cache in zip((fused, unfused), caches, strict=True):
        for slot, ids in enumerate(prompts):
            engine.prefill(ids, cache, slot)
    start = torch.tensor([len(ids) for ids in prompts])
    logits = []
    tokens = torch.randint(0, 300, (3, rows))
    for engine, cache in zip((fused, unfused), caches, strict=True):
        steps = [engine.decode(tokens[i], start + i, cache) for i in range(3)]
        logits.append(torch.stack(steps))
    # Float sums in another order can round an activation to the next int8 step: ~0.006 at
    # most on logits of ~1 here; a wrong position or slot moves them by ~0.35 (0.1 on average).
    torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=0.02)
    assert float((logits[0] - logits[1]).abs().mean()) < 0.005
    torch.testing.assert_close(caches[0].kv, caches[1].kv, rtol=0, atol=0.02)
    for slot in range(rows):  # the third step was written at each row's own position
        assert bool(caches[0].kv[:, :, slot, :, int(start[slot]) + 2].abs().sum() > 0)


def test_switched_off_the_engine_runs_torch_alone(monkeypatch):
    """With RELAY_INT8_KERNEL=0 nothing is built or wrapped, and int8 still decodes."""
    monkeypatch.setenv("RELAY_INT8_KERNEL", "0")
    kernels.library.cache_clear()
    try:
        assert kernels.library() is None
        engine, _ = _engines("gelu_new")
        assert engine.fused is None and engine.attention is None
        assert not any(isinstance(m, kernels.Int8Linear) for m in engine.modules())
        cache = engine.new_cache(1, 64)
        engine.prefill(torch.tensor([1, 2, 3]), cache, 0)
        assert engine.decode(torch.tensor([4]), torch.tensor([3]), cache).shape == (1, 300)
    finally:
        monkeypatch.delenv("RELAY_INT8_KERNEL")
        kernels.library.cache_clear()
    assert (kernels.library() is None) == (not kernels.cpu_has_vnni())
