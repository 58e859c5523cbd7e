"""Precision paths for the engine's weights: fp32, bf16, int8 (dynamic quantisation).

- fp32: the reference; what the correctness tests compare against HF generate.
- bf16: weights, activations and the KV cache in bfloat16, logits back in fp32.
  On a GPU (or a CPU with AVX512-BF16/AMX) this halves memory traffic; on a
  plain AVX2 CPU oneDNN emulates it and it is several times *slower* than fp32
  (measured; see bench/results-generation.txt). fp16 is offered on CUDA only.
- int8: torch's dynamic quantisation of every nn.Linear (the engine already
  turned GPT-2's Conv1D layers into nn.Linear): int8 weights per output
  channel, activations quantised per call. The LM head is quantised too unless
  `quantize_head=False`; it is a third of GPT-2 small's weights.

Where the engine's own kernels run (kernels.py: AVX512-VNNI and a C compiler), int8 decode
steps of up to four rows run whole blocks in them, and attention over an fp32 cache always,
which "auto" then keeps.

The KV cache (`kv_cache`): "auto" keeps it in the weights' dtype, except for int8
on a CPU with native bf16 (AVX512-BF16 or AMX), where it times one decode step's
attention (16 writers) with fp32 and with bf16 keys and values and keeps the
faster. At 16 writers attention reads every sequence's cache at every step;
half the bytes made it 1.26x faster on one AVX512-BF16 host, while on another
(an AMD EPYC with AVX512-BF16) PyTorch's bf16 kernel was 1.5x slower than fp32
(bench/kv_cache_ab.py, bench/results-generation.txt). So auto measures.

`perplexity()` is the quality check: a quantised path may only become the
default when held-out perplexity stays within 1% of fp32 on the shipped model.
"""

from __future__ import annotations

import copy
import math
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from app.generation.engine.kernels import FusedDecode, decode_attention, use_int8_kernel
from app.generation.engine.model import GPT2Engine
from app.workshop.model import cpu_has_native_bf16

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
KV_CACHES = ("auto", "fp32", "bf16")


def convert(
    engine: GPT2Engine, precision: str, quantize_head: bool = True, kv_cache: str = "auto"
) -> GPT2Engine:
    """A copy of `engine` in `precision` (fp32 returns the engine itself)."""
    if kv_cache not in KV_CACHES:
        raise ValueError(f"unknown KV cache {kv_cache!r}; choose one of {', '.join(KV_CACHES)}")
    converted = _convert_weights(engine, precision, quantize_head)
    head_dim = engine.n_embd // engine.n_head
    kv_dtype = kv_cache_dtype(precision, converted.device, kv_cache, (engine.n_head, head_dim))
    if kv_cache == "auto" and converted.attention is not None:
        kv_dtype = torch.float32  # the engine's attention kernel reads fp32 caches
    if converted is engine and kv_dtype != engine.kv_dtype:
        converted = copy.copy(engine)  # shares the weights; the caller's engine is unchanged
    converted.kv_dtype = kv_dtype
    return converted


def kv_cache_dtype(
    precision: str,
    device: torch.device,
    kv_cache: str = "auto",
    heads: tuple[int, int] | None = None,
) -> torch.dtype | None:
    """The KV cache's dtype for this precision; None means the weights' own dtype.
    `heads` is (number of heads, head size), what "auto" times attention with."""
    if kv_cache == "fp32":
        return torch.float32
    if kv_cache == "bf16":
        return torch.bfloat16
    native = precision == "int8" and device.type == "cpu" and cpu_has_native_bf16()
    if native and heads is not None and bf16_attention_is_faster(*heads):
        return torch.bfloat16
    return None


_FASTER_BF16: dict[tuple[int, int], bool] = {}


def bf16_attention_is_faster(n_head: int, head_dim: int) -> bool:
    """Whether a decode step's attention (16 rows, 320 cached positions) runs faster on
    bf16 keys and values than on fp32 ones on this machine; timed once per process."""
    key = (n_head, head_dim)
    if key not in _FASTER_BF16:
        fp32 = _attention_seconds(torch.float32, n_head, head_dim)
        bf16 = _attention_seconds(torch.bfloat16, n_head, head_dim)
        _FASTER_BF16[key] = bf16 < fp32
    return _FASTER_BF16[key]


def _attention_seconds(
    dtype: torch.dtype, n_head: int, head_dim: int, rows: int = 16, length: int = 320
) -> float:
    """Best of five timed calls of one-query attention over views of a cache, as decode runs it."""
    gen = torch.Generator().manual_seed(0)  # the global RNG is left alone
    cache = torch.randn(2, rows, n_head, length + 64, head_dim, generator=gen).to(dtype)
    keys, values = cache[0, :, :, :length], cache[1, :, :, :length]
    query = torch.randn(rows, n_head, 1, head_dim, generator=gen).to(dtype)
    best = math.inf
    with torch.inference_mode():
        for i in range(7):  # two warm-up calls
            started = time.perf_counter()
            F.scaled_dot_product_attention(query, keys, values)
            if i >= 2:
                best = min(best, time.perf_counter() - started)
    return best


def _convert_weights(engine: GPT2Engine, precision: str, quantize_head: bool) -> GPT2Engine:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return engine
    if precision == "bf16":
        return copy.deepcopy(engine).to(torch.bfloat16)
    if precision == "fp16":
        if engine.device.type != "cuda":
            raise ValueError("fp16 is only offered on CUDA; use bf16 or int8 on CPU")
        return copy.deepcopy(engine).to(torch.float16)
    if engine.device.type != "cpu":
        raise ValueError("int8 dynamic quantisation runs on CPU only; use fp16/bf16 on GPU")
    return quantize_int8(engine, quantize_head)


def quantize_int8(engine: GPT2Engine, quantize_head: bool = True) -> GPT2Engine:
    """Dynamic int8 quantisation of the linear layers (per-channel weights).

    The weights are packed for fbgemm (x86) where it exists. A oneDNN-packed copy for
    prompt prefill was tried and dropped: on an idle machine it made no difference at 16
    writers (158 vs 158/154 tok/s) and one writer was 10% slower with it (two A/B pairs,
    bench/generation.py --only engine_int8).
    """
    quantized = copy.deepcopy(engine)
    if not quantize_head:
        head = quantized.lm_head
        quantized.lm_head = nn.Identity()  # keep it out of quantize_dynamic's reach
    torch.backends.quantized.engine = _quant_backend()
    _quantize_linears(quantized)
    if not quantize_head:
        quantized.lm_head = head
    if use_int8_kernel(quantized):  # decode steps on the engine's own kernels where they run
        quantized.attention = decode_attention
        tanh = quantized.approximate == "tanh"
        quantized.fused = FusedDecode(quantized.blocks, quantized.n_head, tanh)
    return quantized


def _quantize_linears(quantized: nn.Module) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        torch.ao.quantization.quantize_dynamic(
            quantized, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=True
        )


def _quant_backend() -> str:
    engines = torch.backends.quantized.supported_engines
    for name in ("fbgemm", "x86", "qnnpack"):
        if name in engines:
            return name
    return engines[0]


@torch.inference_mode()
def perplexity(engine: GPT2Engine, ids: list[int], window: int = 256, stride: int = 128) -> float:
    """exp(mean next-token loss) of `ids` with sliding windows (each token scored once)."""
    total, count, prev_end = 0.0, 0, 0
    window = min(window, engine.n_positions)
    for start in range(0, max(1, len(ids) - 1), stride):
        end = min(start + window, len(ids))
        chunk = torch.tensor([ids[start:end]], device=engine.device)  # (1, T)
        logits = engine.logits(chunk)[0, :-1]  # (T-1, V)
        targets = chunk[0, 1:]
        losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")  # (T-1,)
        fresh = end - max(prev_end, start + 1)  # targets not scored by an earlier window
        if fresh > 0:
            total += float(losses[-fresh:].sum())
            count += fresh
        prev_end = end
        if end == len(ids):
            break
    return math.exp(total / max(1, count))
