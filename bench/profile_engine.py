"""Profile one decode step of the engine (torch.profiler) on the GPT-2-small shape.

Fills B slots with 300-token prompts, runs a few steps, times ten, then prints
torch.profiler's table for five more: which operators a step spends its time in. Time in
the engine's own kernels (kernels.py, called through ctypes) is not in the table: the step
time less the table's total is theirs. `--no-kernels` profiles torch's paths alone;
`--fused-rows 0` keeps the kernels but runs the blocks operator by operator.

Usage: .venv/bin/python bench/profile_engine.py [--precision int8] [--batch 16] [--threads 2]
       [--model models/default-en] [--no-kernels | --fused-rows N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.generation.engine.batch import Engine, Request  # noqa: E402
from app.generation.sampling import SamplingParams  # noqa: E402


class _Letters:
    """A stand-in tokenizer: the engine only decodes."""

    eos_token_id = 0

    def decode(self, ids: list[int], **_: object) -> str:
        return "".join(chr(97 + i % 26) for i in ids)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--precision", default="int8")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--prompt-tokens", type=int, default=300)
    p.add_argument("--no-kernels", action="store_true", help="RELAY_INT8_KERNEL=0")
    p.add_argument(
        "--fused-rows", type=int, default=None,
        help="whole blocks per kernel call up to this many rows (0: block by block)",
    )  # fmt: skip
    p.add_argument("--model", default="", help="a model folder (default: random GPT-2 small)")
    args = p.parse_args()
    if args.no_kernels:
        os.environ["RELAY_INT8_KERNEL"] = "0"
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    if args.model:
        model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    else:
        model = GPT2LMHeadModel(GPT2Config()).eval()
    engine = Engine(model, _Letters(), args.precision, max_batch=args.batch, start=False)
    engine.prefill_tokens = 10**6  # admit everyone in the first step
    if args.fused_rows is not None and engine.net.fused is not None:
        engine.net.fused.max_rows = args.fused_rows
    params = SamplingParams(temperature=0.8, top_p=0.9, top_k=50, max_new_tokens=500)
    gen = torch.Generator().manual_seed(1)
    for i in range(args.batch):
        prompt = torch.randint(1, model.config.vocab_size, (args.prompt_tokens,), generator=gen)
        engine.submit(Request(prompt.tolist(), params, seed=i, stop_on_eos=False))
    started = time.perf_counter()
    engine.step()
    print(f"prefill {args.batch} x {args.prompt_tokens}: {time.perf_counter() - started:.2f}s")
    for _ in range(3):
        engine.step()
    started = time.perf_counter()
    for _ in range(10):
        engine.step()
    step = (time.perf_counter() - started) / 10
    kernels = "off" if engine.net.attention is None else "on"
    if engine.net.fused is not None:
        kernels += f", whole blocks up to {engine.net.fused.max_rows} rows"
    print(f"{args.precision} B={args.batch} threads={args.threads} kernels {kernels}:"
          f" decode step {step * 1e3:.1f} ms"
          f" = {args.batch / step:.1f} tok/s")  # fmt: skip
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            engine.step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
