"""Held-out perplexity of the engine's precision paths (issue 6's 1% rule for a default).

A quantised path may only become the default when its held-out perplexity
stays within 1% of fp32 on the shipped model. This scores fp32, bf16, int8
(every linear layer, LM head included), int8 with a bf16 KV cache (what
RELAY_KV_CACHE=auto picks on a CPU with native bf16) and int8 with an fp32 LM head on the
validation tail of the workshop's corpus split (app.workshop.data.load_corpus:
the last 10% of every file, never trained on), in back-to-back windows of
the model's context (at most 256 tokens).

Usage: .venv/bin/python bench/engine_quality.py [--model models/default-en] [--lang en]
Prints a table and, on its last line, a JSON object.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "default-en"))
    p.add_argument("--lang", default="en")
    p.add_argument("--max-tokens", type=int, default=6000)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).float().eval()
    ids = held_out_ids(tokenizer, args.lang, args.max_tokens)
    fp32 = GPT2Engine(model)
    window = min(256, fp32.n_positions)
    paths = {
        "fp32": fp32,
        "bf16": convert(fp32, "bf16"),
        "int8": convert(fp32, "int8", kv_cache="fp32"),
        "int8_bf16_kv": convert(fp32, "int8", kv_cache="bf16"),
        "int8_fp32_head": quantize_int8(fp32, quantize_head=False),
    }
    report: dict[str, object] = {"model": args.model, "held_out_tokens": len(ids)}
    reference = None
    print(f"{args.model}: {len(ids)} held-out tokens, window {window}")
    for name, net in paths.items():
        started = time.perf_counter()
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
