"""Held-out perplexity of the engine's precision paths (issue 6's 1% rule for a default).

A quantised path may only become the default when its held-out perplexity
stays within 1% of fp32 on the shipped model. This scores fp32, bf16, int8
(every linear layer, LM head included), int8 with a bf16 KV cache (what
RELAY_KV_CACHE=auto picks on a CPU with native bf16) and int8 with an fp32 LM head on the
validation tail of the workshop's corpus split (app.workshop.data.load_corpus:
the last 10% of every file, never trained on), in back-to-back windows of
the model's context (at most 256 tokens).

`--decode` scores the same windows token by token through prefill of one token and then
decode steps at one row, the path a writer's turn runs: fp32 against int8, which on a host
where the engine's kernels run (kernels.py) is their fused one-call-per-layer step, and
int8 with RELAY_INT8_KERNEL=0 (torch's fbgemm linears, SDPA).

Usage: .venv/bin/python bench/engine_quality.py [--model models/default-en] [--lang en]
Prints a table and, on its last line, a JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.generation.engine.model import GPT2Engine  # noqa: E402
from app.generation.engine.quant import convert, perplexity, quantize_int8  # noqa: E402

BOUND = 0.01


def held_out_ids(tokenizer: object, lang: str, max_tokens: int) -> list[int]:
    from app.workshop.data import load_corpus

    split = load_corpus(ROOT.parent / "shared" / "corpora" / lang)
    ids: list[int] = []
    for text in split.val_texts:
        ids += tokenizer.encode(text)  # type: ignore[attr-defined]
        if len(ids) >= max_tokens:
            break
    return ids[:max_tokens]


def decode_perplexity(engine: GPT2Engine, ids: list[int], window: int) -> float:
    """exp(mean next-token loss) over back-to-back windows, each scored by one-row decode
    steps after a one-token prefill."""
    total, count = 0.0, 0
    cache = engine.new_cache(1, window)
    for start in range(0, len(ids) - 1, window):
        chunk = ids[start : start + window]
        logits = engine.prefill(torch.tensor(chunk[:1]), cache, 0)
        for pos in range(1, len(chunk)):
            total -= float(torch.log_softmax(logits, -1)[chunk[pos]])
            count += 1
            if pos + 1 < len(chunk):
                step = engine.decode(torch.tensor([chunk[pos]]), torch.tensor([pos]), cache)
                logits = step[0]
    return math.exp(total / max(1, count))


def _decode_paths(fp32: GPT2Engine) -> dict[str, GPT2Engine]:
    import os

    from app.generation.engine import kernels

    paths = {"fp32_decode": fp32, "int8_decode": convert(fp32, "int8", kv_cache="fp32")}
    os.environ["RELAY_INT8_KERNEL"] = "0"
    kernels.library.cache_clear()
    paths["int8_torch_decode"] = convert(fp32, "int8", kv_cache="fp32")
    del os.environ["RELAY_INT8_KERNEL"]
    kernels.library.cache_clear()
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "default-en"))
    p.add_argument("--lang", default="en")
    p.add_argument("--max-tokens", type=int, default=6000)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--decode", action="store_true", help="score through one-row decode steps")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).float().eval()
    ids = held_out_ids(tokenizer, args.lang, args.max_tokens)
    fp32 = GPT2Engine(model)
    window = min(256, fp32.n_positions)
    paths = (
        _decode_paths(fp32)
        if args.decode
        else {
            "fp32": fp32,
            "bf16": convert(fp32, "bf16"),
            "int8": convert(fp32, "int8", kv_cache="fp32"),
            "int8_bf16_kv": convert(fp32, "int8", kv_cache="bf16"),
            "int8_fp32_head": quantize_int8(fp32, quantize_head=False),
        }
    )
    report: dict[str, object] = {"model": args.model, "held_out_tokens": len(ids)}
    reference = None
    print(f"{args.model}: {len(ids)} held-out tokens, window {window}")
    for name, net in paths.items():
        started = time.perf_counter()
        if args.decode:
            ppl = decode_perplexity(net, ids, window)
        else:
            ppl = perplexity(net, ids, window=window, stride=window)
        reference = reference or ppl
        change = ppl / reference - 1
        report[name] = {
            "ppl": round(ppl, 4),
            "change": round(change, 5),
            "ok": abs(change) <= BOUND,
        }
        print(f"  {name:15s} ppl {ppl:9.3f}  {change:+.3%}  ({time.perf_counter() - started:.1f}s)")
    print(json.dumps(report))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
