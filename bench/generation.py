"""Generation benchmark (issues 6, 15): naive HF, batched HF, CTranslate2, llama.cpp, our engine.

Simulates N concurrent writers (N = 1, 4, 16) who all ask for a continuation at
the same moment: prompts of ~300 tokens, 80 new tokens each, sampled (top-p
0.9, temperature 0.8, top-k 50, repetition penalty 1.15; eos ignored so every
turn has exactly 80 tokens). For each N it measures aggregate generated
tokens/s (all turns' tokens / wall time from the burst to the last turn), p50
and p95 turn latency and time to first token (TTFT) of:

  naive        one request at a time, HF `generate`, fp32
  hf_batched   HF `generate` on all N prompts as one batch, fp32
  ct2_fp32/int8  CTranslate2 Generator.generate_batch on the converted model
               (null when ctranslate2 is not installed)
  engine_fp32/bf16/int8  app.generation.engine (continuous batching, prefix cache off)
  llama_q8_0/f16  llama.cpp's llama-server over HTTP, one slot per writer, and
               llama-batched-bench as its upper bound (bench/llama_peer.py; null when
               llama.cpp cannot be built)

Models: "gpt2-small" (GPT2Config defaults, 124M parameters, random weights,
a 50257-word stand-in tokenizer) and "default-en" (models/default-en, null
when it is not there). Each group of contenders (HF, CTranslate2, each engine
precision) runs in a fresh process, so no peer's runtime slows another's.
Prints a table, then on its last line one JSON object.

--quick: one measured run per cell (after a warm-up); the naive server at N > 1
is computed from measured single requests (a serial server's i-th request
waits for the i-1 before it), and bf16 on a CPU without native bf16 runs at
N = 1 only (it is emulated there, several times slower than fp32).

--candidates N: what N candidates cost instead (app/runners/candidates.py): one answer,
N candidates in one batched pass (one prefill copied to N rows), the same N rows each
prefilled, and N separate jobs one after another; seconds and ratios to one answer.

Usage: .venv/bin/python bench/generation.py [--quick] [--models gpt2-small,default-en]
       .venv/bin/python bench/generation.py --candidates 3 --models gpt2-small
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.generation.engine.batch import Engine, Request  # noqa: E402
from app.generation.engine.quant import KV_CACHES  # noqa: E402
from app.generation.sampling import SamplingParams  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llama_peer  # noqa: E402
from llama_peer import LLAMA_OUTTYPES  # noqa: E402

CONTENDERS = (
    "naive", "hf_batched", "ct2_fp32", "ct2_int8", "engine_fp32", "engine_bf16", "engine_int8",
    "llama_q8_0", "llama_f16",
)  # fmt: skip
GROUPS = (  # each group is measured in a process of its own
    ("naive", "hf_batched"), ("ct2_fp32", "ct2_int8"), ("engine_fp32",), ("engine_bf16",),
    ("engine_int8",), ("llama_q8_0",), ("llama_f16",),
)  # fmt: skip


@dataclass
class Run:
    tok_s: float
    p50_s: float
    p95_s: float
    ttft_s: float  # p50 time to first token


def summarise(tokens: int, wall: float, latencies: list[float], ttfts: list[float]) -> Run:
    return Run(tokens / wall, pct(latencies, 50), pct(latencies, 95), pct(ttfts, 50))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- models ------------------------------------------------------------------------


def word_tokenizer(vocab: int) -> Any:
    """A stand-in tokenizer for the random model: token i is the word "t{i}"."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="t0", eos_token="t0", unk_token="t0"
    )


def load_model(name: str, workdir: Path) -> tuple[Any, Any, Path] | None:
    """(model, tokenizer, directory) or None when the model is not available."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

    if name == "gpt2-small":
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config()).eval()
        tokenizer = word_tokenizer(model.config.vocab_size)
        path = workdir / name
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        return model, tokenizer, path
    path = Path(name) if "/" in name else ROOT / "models" / name  # a name or a directory
    if not (path / "config.json").is_file():
        print(f"[{name}] not found at {path}: its figures are null", flush=True)
        return None
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).float().eval()
    return model, tokenizer, path


def make_prompts(
    model: Any, tokenizer: Any, count: int, length: int, new_tokens: int, seed: int = 1
) -> list[list[int]]:
    """Random ids the tokenizer knows (no text needed: eos is ignored, every turn is full)."""
    gen = torch.Generator().manual_seed(seed)
    vocab = min(model.config.vocab_size, len(tokenizer))
    length = max(8, min(length, model.config.n_positions - new_tokens - 1))  # prompt + turn fit
    return [torch.randint(1, vocab, (length,), generator=gen).tolist() for _ in range(count)]


# --- contenders ----------------------------------------------------------------------


class _FirstCall:
    """A logits processor that only records when generation produced its first logits."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.at is None:
            self.at = time.perf_counter()
        return scores


def hf_generate(
    model: Any, prompts: list[list[int]], params: SamplingParams
) -> tuple[float, float]:
    """One HF generate call on equal-length prompts; (seconds, seconds to first token)."""
    from transformers import LogitsProcessorList

    ids = torch.tensor(prompts)  # (N, T)
    first = _FirstCall()
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            pad_token_id=0,
            min_new_tokens=params.max_new_tokens,  # eos ignored: every turn has the same length
            logits_processor=LogitsProcessorList([first]),
            **params.generate_kwargs(),
        )
    end = time.perf_counter()
    return end - start, (first.at or end) - start


def run_naive(model: Any, prompts: list[list[int]], params: SamplingParams, quick: bool) -> Run:
    measured = prompts[: 2 if quick else len(prompts)]
    durations, firsts = zip(*(hf_generate(model, [p], params) for p in measured), strict=True)
    latencies, ttfts, clock = [], [], 0.0
    for i in range(len(prompts)):  # the i-th writer waits for everyone before it
        d, f = durations[i % len(measured)], firsts[i % len(measured)]
        ttfts.append(clock + f)
        clock += d
        latencies.append(clock)
    return summarise(len(prompts) * params.max_new_tokens, clock, latencies, ttfts)


def run_hf_batched(model: Any, prompts: list[list[int]], params: SamplingParams) -> Run:
    wall, first = hf_generate(model, prompts, params)
    n = len(prompts)
    return summarise(n * params.max_new_tokens, wall, [wall] * n, [first] * n)


def run_ct2(
    generator: Any, prompts: list[list[int]], params: SamplingParams, vocab: list[str]
) -> Run:
    firsts: dict[int, float] = {}

    def callback(step: Any) -> bool:
        firsts.setdefault(step.batch_id, time.perf_counter())
        return False

    start = time.perf_counter()
    results = generator.generate_batch(
        [[vocab[i] for i in p] for p in prompts],
        max_length=params.max_new_tokens,
        min_length=params.max_new_tokens,
        sampling_topk=params.top_k,
        sampling_topp=params.top_p,
        sampling_temperature=params.temperature,
        repetition_penalty=params.repetition_penalty,
        include_prompt_in_result=False,
        callback=callback,
    )
    wall = time.perf_counter() - start
    tokens = sum(len(r.sequences_ids[0]) for r in results)
    ttfts = [firsts.get(i, start + wall) - start for i in range(len(prompts))]
    return summarise(tokens, wall, [wall] * len(prompts), ttfts)


def run_engine(engine: Engine, prompts: list[list[int]], params: SamplingParams) -> Run:
    start = time.perf_counter()
    handles = [
        engine.submit(Request(p, params, seed=i, stop_on_eos=False)) for i, p in enumerate(prompts)
    ]
    results = [h.wait() for h in handles]
    wall = time.perf_counter() - start
    tokens = sum(len(r.token_ids) for r in results)
    return summarise(tokens, wall, [r.latency_s for r in results], [r.ttft_s for r in results])


# --- driver --------------------------------------------------------------------------


def native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and "avx512_bf16" in _cpu_flags()
    except Exception:
        return False


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def ct2_generators(path: Path, workdir: Path, threads: int) -> dict[str, Any]:
    """CTranslate2 generators (fp32, int8) for the model at `path`; {} without ctranslate2."""
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        return {}
    out = workdir / f"{path.name}-ct2"
    try:
        TransformersConverter(str(path)).convert(str(out), force=True)
        _fill_null_tokens(out / "config.json")
        return {
            f"ct2_{kind}": ctranslate2.Generator(
                str(out), device="cpu", compute_type=ct, intra_threads=threads
            )
            for kind, ct in (("fp32", "float32"), ("int8", "int8"))
        }
    except Exception as exc:  # a peer that cannot load this model is reported as null
        print(f"[{path.name}] CTranslate2 unavailable for this model: {exc}", flush=True)
        return {}


def _fill_null_tokens(config_path: Path) -> None:
    """CTranslate2 refuses a null special token (the workshop's tokenizers have no unk)."""
    config = json.loads(config_path.read_text())
    fallback = config.get("eos_token") or config.get("bos_token")
    for key in ("bos_token", "eos_token", "unk_token", "decoder_start_token"):
        if key in config and config[key] is None:
            config[key] = fallback
    config_path.write_text(json.dumps(config))


def contenders(
    model: Any, tokenizer: Any, path: Path, args: Any, workdir: Path, names: list[str]
) -> dict[str, Any]:
    """name -> callable(prompts, params) -> Run (None when the peer is missing)."""
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    table: dict[str, Any] = {
        "naive": lambda ps, sp: run_naive(model, ps, sp, args.quick),
        "hf_batched": lambda ps, sp: run_hf_batched(model, ps, sp),
    }
    ct2 = ct2_generators(path, workdir, args.threads) if any("ct2" in n for n in names) else {}
    for name in ("ct2_fp32", "ct2_int8"):
        gen = ct2.get(name)
        table[name] = None if gen is None else (lambda ps, sp, g=gen: run_ct2(g, ps, sp, vocab))
    for precision in ("fp32", "bf16", "int8"):
        if f"engine_{precision}" in names:
            table[f"engine_{precision}"] = _engine_runner(model, tokenizer, precision, args)
    for name in LLAMA_OUTTYPES:
        if name in names:
            table[name] = llama_peer.server_runner(name, path, tokenizer, args, workdir)
    return {k: table.get(k) for k in names}


def _engine_runner(model: Any, tokenizer: Any, precision: str, args: Any) -> Any:
    state: dict[str, Engine] = {}

    def run(prompts: list[list[int]], params: SamplingParams) -> Run:
        if "engine" not in state:
            state["engine"] = Engine(  # no prefix cache: a repeat prefills again, as its peers do
                model, tokenizer, precision, max_batch=max(args.writers), kv_cache=args.kv_cache,
                prefix_entries=0,
            )  # fmt: skip
        return run_engine(state["engine"], prompts, params)

    run.close = lambda: state.pop("engine").close() if state else None  # type: ignore[attr-defined]
    return run


def bench_model(name: str, args: Any, workdir: Path) -> dict[str, dict[str, Run | None]] | None:
    """Every group of contenders runs in a fresh process. Measured here, our engine ran
    25-40% slower in a process where CTranslate2 had generated before (55 -> 33-45 tok/s at
    one writer): peers sharing a process slow each other, so none does."""
    results: dict[str, dict[str, Run | None]] = {str(n): {} for n in args.writers}
    spawn = multiprocessing.get_context("spawn")
    first = True
    for group in GROUPS:
        names = [c for c in group if any(o in c for o in args.only)]
        if not names:
            continue
        with spawn.Pool(1) as pool:
            got = pool.apply(measure_group, (name, names, args, workdir, first))
        if got is None:
            return None
        first = False
        for n, cells in got.items():
            results[n].update({c: None if r is None else Run(**r) for c, r in cells.items()})
    return results


def measure_group(
    name: str, names: list[str], args: Any, workdir: Path, header: bool
) -> dict[str, dict[str, dict[str, float] | None]] | None:
    """Run the contenders `names` on model `name` in this process: {N: {contender: Run}}."""
    torch.set_num_threads(args.threads)
    loaded = load_model(name, workdir)
    if loaded is None:
        return None
    model, tokenizer, path = loaded
    params = SamplingParams(
        temperature=0.8, top_p=0.9, top_k=50, repetition_penalty=1.15,
        no_repeat_ngram_size=0, max_new_tokens=args.new_tokens,
    )  # fmt: skip
    prompts = make_prompts(model, tokenizer, max(args.writers), args.prompt_tokens, args.new_tokens)
    if header:
        print(f"[{name}] {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, "
              f"prompt {len(prompts[0])} tokens, {args.new_tokens} new", flush=True)  # fmt: skip
    results: dict[str, dict[str, dict[str, float] | None]] = {str(n): {} for n in args.writers}
    for cname, runner in contenders(model, tokenizer, path, args, workdir, names).items():
        try:  # a failed run still stops its engine or server (llama-server is a process)
            _measure(cname, runner, model, tokenizer, prompts, params, args, results)
        finally:
            if runner is not None and hasattr(runner, "close"):
                runner.close()
    return results


def _measure(
    cname: str, runner: Any, model: Any, tokenizer: Any, prompts: list[list[int]],
    params: SamplingParams, args: Any, results: dict[str, dict[str, Any]],
) -> None:  # fmt: skip
    """One contender at every writer count, into results[N][cname] (None when missing)."""
    if runner is not None:
        runner(
            make_prompts(model, tokenizer, 1, 32, 4, seed=99), SamplingParams(max_new_tokens=4)
        )  # warm-up
    for n in args.writers:
        skip = cname == "engine_bf16" and args.quick and n > 1 and not native_bf16()
        run = None if runner is None or skip else _repeat(runner, prompts[:n], params, args)
        results[str(n)][cname] = None if run is None else asdict(run)
        if run is not None:
            print(f"  {cname:12s} N={n:2d}  {run.tok_s:7.1f} tok/s  p50 {run.p50_s:6.2f}s  "
                  f"p95 {run.p95_s:6.2f}s  ttft {run.ttft_s:6.2f}s", flush=True)  # fmt: skip


def _repeat(runner: Any, prompts: list[list[int]], params: SamplingParams, args: Any) -> Run:
    runs = [runner(prompts, params) for _ in range(1 if args.quick else args.repeats)]
    return sorted(runs, key=lambda r: r.tok_s)[len(runs) // 2]


def figures(results: dict[str, dict[str, Run | None]]) -> dict[str, Any]:
    """The JSON figures of one model: tok/s per contender, naive/engine latency, engine TTFT."""
    out: dict[str, Any] = {}
    for n, cells in results.items():
        row: dict[str, Any] = {c: _r(cells.get(c), "tok_s") for c in CONTENDERS}
        engines = {c: r for c, r in cells.items() if c.startswith("engine") and r is not None}
        best = max(engines, key=lambda c: engines[c].tok_s) if engines else None
        row["naive_p95_s"] = _r(cells.get("naive"), "p95_s")
        row["engine_p95_s"] = _r(engines.get(best), "p95_s") if best else None
        row["engine_ttft_s"] = _r(engines.get(best), "ttft_s") if best else None
        row["engine_best"] = best
        for c in CONTENDERS:
            for field in ("p50_s", "p95_s", "ttft_s"):
                row[f"{c}_{field}"] = _r(cells.get(c), field)
        out[n] = row
    return out


def _r(run: Run | None, field: str) -> float | None:
    return None if run is None else round(getattr(run, field), 3)


def print_table(name: str, fig: dict[str, Any] | None) -> None:
    print(f"\n== {name} ==")
    if fig is None:
        print("  (model not available)")
        return
    head = "  N  " + "".join(f"{c:>12s}" for c in CONTENDERS)
    print(head + "   (aggregate generated tokens/s)")
    for n, row in fig.items():
        cells = "".join(
            f"{row[c]:12.1f}" if row[c] is not None else f"{'-':>12s}" for c in CONTENDERS
        )
        print(f"  {n:>2s} {cells}")
    print("  N   naive p95 s  engine p95 s  engine ttft s  best engine  ratios of best engine to: "
          "naive / hf_batched / best ct2")  # fmt: skip
    for n, row in fig.items():
        best = row["engine_best"]
        e = row.get(best) if best else None
        ct2 = max((row[c] for c in ("ct2_fp32", "ct2_int8") if row[c]), default=None)
        ratios = (
            " / ".join(_ratio(e, row[k]) for k in ("naive", "hf_batched")) + " / " + _ratio(e, ct2)
        )
        print(f"  {n:>2s}  {_f(row['naive_p95_s']):>11s}  {_f(row['engine_p95_s']):>12s}  "
              f"{_f(row['engine_ttft_s']):>13s}  {best or '-':>11s}  {ratios}")  # fmt: skip


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def parse_args(argv: list[str] | None = None) -> Any:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one run per cell; about 5 minutes")
    p.add_argument("--models", default="gpt2-small,default-en")
    p.add_argument("--writers", default="1,4,16")
    p.add_argument("--prompt-tokens", type=int, default=300)
    p.add_argument("--new-tokens", type=int, default=80)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--kv-cache", default="auto", choices=KV_CACHES,
                   help="the engine's KV cache dtype (RELAY_KV_CACHE)")  # fmt: skip
    p.add_argument("--only", default="naive,hf_batched,ct2,engine,llama",
                   help="substrings of the contenders to run (e.g. engine_int8,ct2)")  # fmt: skip
    p.add_argument(
        "--candidates",
        type=int,
        default=0,
        metavar="N",
        help="instead: 1 answer vs N candidates in one pass vs N separate jobs",
    )
    p.add_argument("--precision", default="fp32", help="the engine's, for --candidates")
    args = p.parse_args(argv)
    args.writers = [int(n) for n in args.writers.split(",")]
    args.only = [o for o in args.only.split(",") if o]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.candidates:
        from candidates_cost import bench_candidates

        report = bench_candidates(args)
        print(f"\n{time.perf_counter() - started:.0f} s")
        print(json.dumps({"candidates": args.candidates, **report}))
        return
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        for name in args.models.split(","):
            results = bench_model(name, args, Path(tmp))
            report[name] = None if results is None else figures(results)
            if results is not None and any("llama" in o for o in args.only):
                report[f"{name} llama_batched"] = llama_peer.batched_bench(name, args, Path(tmp))
    for name, fig in report.items():
        if not name.endswith("llama_batched"):
            print_table(name, fig)
            llama_peer.print_peers(fig, report.get(f"{name} llama_batched"), args)
    print(f"\n{time.perf_counter() - started:.0f} s, "
          f"{args.threads} threads, quick={args.quick}, kv_cache={args.kv_cache}")  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
