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

The KV cache (`kv_cache`): "auto" keeps it in the weights' dtype, except for int8
on a CPU with native bf16 (AVX512-BF16 or AMX), where keys and values are kept
in bf16 and attention runs in bf16: at 16 writers attention reads every
sequence's cache at every step and is memory-bound, so half the bytes made it
faster (bench/results-generation.txt). Elsewhere bf16 attention is emulated and
slower, so "auto" leaves fp32 there.

`perplexity()` is the quality check: a quantised path may only become the
default when held-out perplexity stays within 1% of fp32 on the shipped model.
"""

from __future__ import annotations

import copy
import math
import warnings

import torch
from torch import nn

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
    kv_dtype = kv_cache_dtype(precision, converted.device, kv_cache)
    if converted is engine and kv_dtype != engine.kv_dtype:
        converted = copy.copy(engine)  # shares the weights; the caller's engine is unchanged
    converted.kv_dtype = kv_dtype
    return converted


def kv_cache_dtype(
    precision: str, device: torch.device, kv_cache: str = "auto"
) -> torch.dtype | None:
    """The KV cache's dtype for this precision; None means the weights' own dtype."""
    if kv_cache == "fp32":
        return torch.float32
    if kv_cache == "bf16":
        return torch.bfloat16
    if precision == "int8" and device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


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
