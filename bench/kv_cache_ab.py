"""Interleaved A/B of the engine's KV cache dtype (fp32 vs bf16) on the GPT-2-small shape.

This host's speed drifts by +-25% from minute to minute, so two benchmark runs
minutes apart cannot tell a 15% change. Here both engines (int8 weights) live
in one process and take turns: each round runs the same burst of N writers
(300-token prompts, 80 sampled tokens each) on one, then on the other.
Prints tokens/s per round and the median and best of each.

Usage: .venv/bin/python bench/kv_cache_ab.py [--writers 16] [--rounds 5] [--caches fp32,bf16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generation import word_tokenizer  # noqa: E402

from app.generation.engine.batch import Engine, Request  # noqa: E402
from app.generation.sampling import SamplingParams  # noqa: E402


def burst(engine: Engine, prompts: list[list[int]], params: SamplingParams) -> float:
    """Generated tokens/s of one burst, the engine stepped on this thread."""
    handles = [
        engine.submit(Request(p, params, seed=i, stop_on_eos=False)) for i, p in enumerate(prompts)
    ]
    started = time.perf_counter()
    while not all(h.done for h in handles):
        engine.step()
    wall = time.perf_counter() - started
    return sum(len(h.result.token_ids) for h in handles if h.result) / wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--writers", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--caches", default="fp32,bf16")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    tokenizer = word_tokenizer(model.config.vocab_size)
    engines = {
        kv: Engine(model, tokenizer, "int8", max_batch=args.writers, start=False, kv_cache=kv)
        for kv in args.caches.split(",")
    }
    params = SamplingParams(
        temperature=0.8, top_p=0.9, top_k=50, repetition_penalty=1.15, max_new_tokens=80
    )
    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randint(1, 50257, (300,), generator=gen).tolist() for _ in range(args.writers)]
    rates: dict[str, list[float]] = {kv: [] for kv in engines}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for kv, engine in engines.items():
            rate = burst(engine, prompts, params)
            if round_:
                rates[kv].append(rate)
    for kv, values in rates.items():
        print(f"N={args.writers} kv_cache={kv:5s} tok/s median {statistics.median(values):6.1f} "
              f"best {max(values):6.1f}  rounds {[round(v) for v in values]}")  # fmt: skip


if __name__ == "__main__":
    main()
