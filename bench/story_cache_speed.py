"""Tokens/s of one writer through the batching engine (int8) with the story cache off and on.

    .venv/bin/python bench/story_cache_speed.py [--model models/default-en] [--repeats 3]

Figures printed (a ratio within one run on this machine), never a timed test.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.generation.engine.batch import Engine, Request
    from app.generation.sampling import presets
    from app.generation.story_cache import StoryCache

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/default-en")
    parser.add_argument("--prompt-tokens", type=int, default=384)
    parser.add_argument("--new-tokens", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    settings = StoryCache.for_model(args.model) or StoryCache(10.0, 0.1)
    params = replace(presets()["balanced"], max_new_tokens=args.new_tokens)
    prompt = list(range(1, args.prompt_tokens + 1))
    engines = {
        "off": Engine(model, tokenizer, "int8", start=False, prefix_entries=0),
        "on": Engine(model, tokenizer, "int8", start=False, prefix_entries=0, story_cache=settings),
    }
    rates: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.repeats):
        for name, engine in engines.items():
            started = time.perf_counter()
            handle = engine.submit(Request(prompt, params, seed=0, stop_on_eos=False))
            while not handle.done:
                engine.step()
            rates[name].append(len(handle.result.token_ids) / (time.perf_counter() - started))
    best = {name: max(values) for name, values in rates.items()}
    print(
        f"{args.model}: one writer, int8, {args.prompt_tokens}-token prompt, "
        f"{args.new_tokens} new tokens, best of {args.repeats}"
    )
    for name, rate in best.items():
        print(f"  story cache {name}: {rate:.0f} tokens/s")
    print(f"  on / off: {best['on'] / best['off']:.3f}")


if __name__ == "__main__":
    main()
