"""The engine's own decode kernels (app/generation/engine/kernels.c) against torch's paths.

On GPT-2 small's shapes (12 layers of 768 -> 2304, 768 -> 768, 768 -> 3072, 3072 -> 768 and
the 768 -> 50257 head, all int8 per output channel), in one process, alternating A and B:
- linears at 1, 2, 4 and 8 rows: torch's dynamic int8 linear (fbgemm) against Int8Linear
  on the same weights, in ms per step and the GB/s of weights read;
- attention of one query per row over a 340-position fp32 cache (12 heads of 64), per
  layer, twelve layers' caches cycled so each call reads from memory as a real step does:
  F.scaled_dot_product_attention against decode_attention;
- a sequential read of the head's bytes, the ceiling a memory-bound step can reach.

Usage: .venv/bin/python bench/int8_kernel.py [--threads 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.generation.engine import kernels  # noqa: E402

SHAPES = [(768, 2304), (768, 768), (768, 3072), (3072, 768)]  # (in, out)
LAYERS, HEADS, HEAD_DIM, POSITIONS, T_MAX = 12, 12, 64, 340, 1024


def _best_ms(fn: Callable[[], object], repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def _linears() -> tuple[list, list, int]:
    torch.manual_seed(0)
    dense = [torch.nn.Linear(i, o) for _ in range(LAYERS) for i, o in SHAPES]
    dense.append(torch.nn.Linear(768, 50257, bias=False))
    torch.backends.quantized.engine = "fbgemm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(
            torch.nn.ModuleList(dense),
            {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
            dtype=torch.qint8,
        )
    kernel = getattr(kernels.library(), kernels._LINEAR)
    own = [kernels.Int8Linear(q, kernel) for q in quantized]
    return list(quantized), own, sum(m.in_features * m.out_features for m in dense)


def linear_rows(rows: int, quantized: list, own: list, nbytes: int) -> str:
    inputs = {k: torch.randn(rows, k) for k in (768, 3072)}

    def run(mods: list) -> Callable[[], None]:
        return lambda: [m(inputs[m.in_features]) for m in mods]

    saved, kernels.MAX_ROWS = kernels.MAX_ROWS, rows  # the kernel at this many rows
    try:
        torch_ms, own_ms = _best_ms(run(quantized)), _best_ms(run(own))
    finally:
        kernels.MAX_ROWS = saved
    return (
        f"linears  rows={rows:2d}  fbgemm {torch_ms:6.2f} ms ({nbytes / torch_ms / 1e6:5.1f} GB/s)"
        f"  kernel {own_ms:6.2f} ms ({nbytes / own_ms / 1e6:5.1f} GB/s)  {torch_ms / own_ms:.2f}x"
    )


def attention(rows: int) -> str:
    caches = [torch.randn(2, rows, HEADS, T_MAX, HEAD_DIM) for _ in range(LAYERS)]
    q = torch.randn(rows, HEADS, 1, HEAD_DIM)
    lengths = torch.full((rows,), POSITIONS, dtype=torch.long)

    def sdpa() -> None:
        for kv in caches:
            F.scaled_dot_product_attention(q, kv[0, :, :, :POSITIONS], kv[1, :, :, :POSITIONS])

    def own() -> None:
        for kv in caches:
            kernels.decode_attention(q, kv, lengths)

    a, b = _best_ms(sdpa), _best_ms(own)
    return (
        f"attention rows={rows:2d}  sdpa {a:6.2f} ms  kernel {b:6.2f} ms  {a / b:.2f}x (12 layers)"
    )


def sequential_read_gbs() -> float:
    weights = torch.randint(-127, 127, (50257 * 768 // 8,), dtype=torch.int64)
    ms = _best_ms(lambda: weights.sum())
    return weights.numel() * 8 / ms / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if kernels.library() is None:
        sys.exit("the engine's kernels do not run here (no AVX512-VNNI or no C compiler)")
    quantized, own, nbytes = _linears()
    print(f"threads {args.threads}; weights {nbytes / 1e6:.1f} MB int8")
    with torch.inference_mode():
        for r in range(args.rounds):
            print(f"-- round {r + 1}: sequential read {sequential_read_gbs():.1f} GB/s")
            for rows in (1, 2, 4, 8):
                print(linear_rows(rows, quantized, own, nbytes))
            for rows in (1, 4, 16):
                print(attention(rows))


if __name__ == "__main__":
    main()
