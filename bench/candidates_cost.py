"""What N candidates per model turn cost (issue 17): `bench/generation.py --candidates N`.

One answer, N candidates in one batched pass (one prefill copied to N rows), the same N
rows each prefilled, and N separate jobs one after another, on our engine with its prefix
cache off; seconds and ratios to one answer, medians of --repeats taking turns.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from generation import Engine, Request, SamplingParams, load_model, make_prompts


def bench_candidates(args: Any) -> dict[str, Any]:
    """One answer vs N candidates in one batched pass (one prefill copied to N rows) vs N
    rows each prefilled (no sharing) vs N separate jobs one after another, on the engine
    (prefix cache off, so no run reuses an earlier one's prompt). Median of --repeats."""
    n = args.candidates
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        for name in args.models.split(","):
            loaded = load_model(name, Path(tmp))
            if loaded is None:
                report[name] = None
                continue
            model, tokenizer, _ = loaded
            print(f"{name}:", flush=True)
            report[name] = _candidate_figures(model, tokenizer, n, args)
    return report


def _candidate_figures(model: Any, tokenizer: Any, n: int, args: Any) -> dict[str, float]:
    params = SamplingParams(
        temperature=0.8, top_p=0.9, top_k=50, repetition_penalty=1.15,
        no_repeat_ngram_size=0, max_new_tokens=args.new_tokens,
    )  # fmt: skip
    prompt = make_prompts(model, tokenizer, 1, args.prompt_tokens, args.new_tokens)[0]
    engine = Engine(model, tokenizer, args.precision, max_batch=max(4, n), prefix_entries=0)
    rows = [Request(prompt, params, seed=i, stop_on_eos=False) for i in range(n)]

    def one() -> None:
        engine.generate(rows[0])

    def together(share: bool) -> None:
        engine.share_prefill = share
        for handle in engine.submit_many(rows):
            handle.wait()
        engine.share_prefill = True

    def separate() -> None:
        for row in rows:
            engine.generate(row)

    one()  # warm-up
    seconds = _interleaved(
        {
            "one_answer_s": one,
            f"{n}_candidates_one_pass_s": lambda: together(True),
            f"{n}_rows_unshared_prefill_s": lambda: together(False),
            f"{n}_separate_jobs_s": separate,
        },
        args.repeats,
    )
    engine.close()
    base = seconds["one_answer_s"]
    figures = {key: round(value, 3) for key, value in seconds.items()}
    figures.update({key[:-2] + "_x": round(v / base, 2) for key, v in seconds.items()})
    print(f"  prompt {len(prompt)} tokens, {args.new_tokens} new, {args.precision}, "
          f"{args.threads} threads", flush=True)  # fmt: skip
    for key, value in seconds.items():
        print(f"  {key:32s} {value:7.3f} s  {value / base:5.2f}x one answer", flush=True)
    return figures


def _interleaved(works: dict[str, Any], repeats: int) -> dict[str, float]:
    """Median seconds of each work, the works taking turns within every repeat (so a busy
    machine slows them all alike)."""
    times: dict[str, list[float]] = {key: [] for key in works}
    for _ in range(max(1, repeats)):
        for key, work in works.items():
            start = time.perf_counter()
            work()
            times[key].append(time.perf_counter() - start)
    return {key: sorted(values)[len(values) // 2] for key, values in times.items()}
