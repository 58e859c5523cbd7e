"""llama.cpp as our engine's peer in bench/generation.py (issue 15), on the same weights.

Built by .ci/build-llama-server (cached outside the clone) from the llama-cpp-python
sdist; the benchmark's model is converted to GGUF by .ci/convert-gguf, Q8_0 (int8's
peer) and F16 (the 16-bit peer of our bf16). Two figures:

  llama_q8_0 / llama_f16   `llama-server` with one slot per writer and continuous
                           batching, driven over HTTP exactly like the relay drives a
                           remote model: N streamed /completion requests at once,
                           sampling on (the benchmark's temperature, top-p, top-k and
                           repetition penalty over the whole context, min-p off), eos
                           ignored, no prompt reuse between runs (cache_prompt off, as
                           our engine runs with its prefix cache off here)
  llama_batched            `llama-batched-bench` on the same prompt and turn lengths:
                           llama.cpp's upper bound (no HTTP, no sampling), prefill and
                           decode speeds separately

The model's tokenizer only matters for the conversion (prompts and turns travel as
token ids): the random GPT-2 small's word-level stand-in is swapped for a byte-level
BPE of the same size, which the converter takes as GPT-2's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LLAMA_OUTTYPES = {"llama_q8_0": "q8_0", "llama_f16": "f16"}


def llama_cache() -> Path | None:
    """The folder with bin/llama-server and bin/llama-batched-bench (built on first use)."""
    done = subprocess.run(
        [str(ROOT / ".ci" / "build-llama-server")], capture_output=True, text=True
    )  # fmt: skip
    if done.returncode != 0:
        print(f"  llama.cpp not built ({done.stderr.strip()[-300:]}): its figures are null")
        return None
    return Path(done.stdout.strip().splitlines()[-1])


def gguf_for(path: Path, tokenizer: Any, outtype: str, cache: Path, workdir: Path) -> Path:
    """The model folder `path` as GGUF in `outtype` (q8_0, f16), converted once."""
    out = workdir / f"{path.name}-{outtype}.gguf"
    if out.exists():
        return out
    source = path
    if not getattr(tokenizer, "is_fast", False) or "merges" not in _tokenizer_json(path):
        source = _with_bpe_standin(path, len(tokenizer), workdir)
    convert = [sys.executable, str(ROOT / ".ci" / "convert-gguf"), str(cache)]
    done = subprocess.run(
        [*convert, str(source), str(out), "--outtype", outtype], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"GGUF conversion failed: {done.stderr[-2000:]}")
    return out


def _tokenizer_json(path: Path) -> dict[str, Any]:
    file = path / "tokenizer.json"
    return json.loads(file.read_text()).get("model", {}) if file.exists() else {}


def _with_bpe_standin(path: Path, vocab: int, workdir: Path) -> Path:
    """A copy of the model folder whose tokenizer is a byte-level BPE of `vocab` ids: the
    256 byte symbols, then merges of two of them, then <|endoftext|> as the last id."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = list(pre_tokenizers.ByteLevel.alphabet())
    symbols.sort()
    table = {s: i for i, s in enumerate(symbols)}
    merges = []
    for a in symbols:
        for b in symbols:
            if len(table) >= vocab - 1:
                break
            merges.append((a, b))
            table[a + b] = len(table)
    table["<|endoftext|>"] = len(table)
    bpe = Tokenizer(models.BPE(table, merges))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    out = workdir / f"{path.name}-bpe"
    shutil.copytree(path, out, dirs_exist_ok=True)
    for old in out.glob("*.json"):
        if old.name.startswith(("tokenizer", "special_tokens", "vocab")):
            old.unlink()
    PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    ).save_pretrained(out)
    return out


class Server:
    """One llama-server: `slots` parallel sequences, continuous batching, `threads`."""

    def __init__(self, cache: Path, gguf: Path, slots: int, context: int, threads: int) -> None:
        from tests.scaled.stack import free_port, wait_healthy

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(cache / "bin" / "llama-server"), "-m", str(gguf), "--host", "127.0.0.1",
            "--port", str(self.port), "-c", str(context * slots), "-np", str(slots),
            "-t", str(threads), "-tb", str(threads), "-b", "2048", "-ub", "512", "--no-webui",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_healthy(self.process, f"{self.url}/health", 120)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


def complete(url: str, prompt: list[int], params: Any, seed: int) -> dict[str, float]:
    """One streamed /completion: latency, time to first token, tokens generated."""
    window = len(prompt) + params.max_new_tokens  # the penalty sees the whole context
    body = {
        "prompt": prompt, "n_predict": params.max_new_tokens, "stream": True,
        "ignore_eos": True, "cache_prompt": False, "seed": seed,
        "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k,
        "min_p": 0.0, "repeat_penalty": params.repetition_penalty, "repeat_last_n": window,
    }  # fmt: skip
    start = time.perf_counter()
    first, tokens = None, 0
    with httpx.stream("POST", f"{url}/completion", json=body, timeout=600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"llama-server answered {response.status_code}: {response.read()!r}")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            # Read by pattern, not parsed: the random model's stand-in vocabulary writes
            # byte pieces that are not UTF-8, which the server escapes as lone \u codes.
            if first is None:
                first = time.perf_counter() - start
            if '"stop":true' in line:
                found = re.search(r'"tokens_predicted":(\d+)', line)
                tokens = int(found.group(1)) if found else 0
    latency = time.perf_counter() - start
    return {"latency": latency, "ttft": first or latency, "tokens": tokens}


def server_runner(name: str, path: Path, tokenizer: Any, args: Any, workdir: Path) -> Any:
    """callable(prompts, params) -> Run for contender `name` (llama_q8_0 or llama_f16), or
    None when llama.cpp cannot be built; a server of max(writers) slots, started once."""
    from generation import summarise

    cache = llama_cache()
    if cache is None:
        return None
    gguf = gguf_for(path, tokenizer, LLAMA_OUTTYPES[name], cache, workdir)
    context = args.prompt_tokens + args.new_tokens + 16
    server = Server(cache, gguf, max(args.writers), context, args.threads)

    def run(prompts: list[list[int]], params: Any) -> Any:
        results: list[dict[str, float]] = [{}] * len(prompts)
        errors: list[BaseException] = []

        def one(i: int) -> None:
            try:
                results[i] = complete(server.url, prompts[i], params, seed=i)
            except Exception as exc:  # raised on the caller's thread below
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        if errors:
            raise errors[0]
        tokens = sum(int(r["tokens"]) for r in results)
        return summarise(
            tokens, wall, [r["latency"] for r in results], [r["ttft"] for r in results]
        )

    run.close = server.close  # type: ignore[attr-defined]
    return run


def batched_bench(name: str, args: Any, workdir: Path) -> dict[str, Any] | None:
    """llama-batched-bench at every writer count, per GGUF type: {type: {N: figures}}, on
    the files the serving peer converted for model `name` (None when there are none)."""
    cache = llama_cache()
    if cache is None or not list(workdir.glob(f"{Path(name).name}-*.gguf")):
        return None
    out: dict[str, Any] = {}
    writers = ",".join(str(n) for n in args.writers)
    context = (args.prompt_tokens + args.new_tokens + 16) * max(args.writers)
    for outtype in LLAMA_OUTTYPES.values():
        gguf = workdir / f"{Path(name).name}-{outtype}.gguf"
        if not gguf.exists():
            continue
        command = [
            str(cache / "bin" / "llama-batched-bench"), "-m", str(gguf), "-c", str(context),
            "-b", "2048", "-ub", "512", "-npp", str(args.prompt_tokens),
            "-ntg", str(args.new_tokens), "-npl", writers, "-t", str(args.threads),
            "-tb", str(args.threads), "--output-format", "jsonl",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        out[outtype] = {
            str(row["pl"]): {
                "prefill_tok_s": round(row["speed_pp"], 1),
                "decode_tok_s": round(row["speed_tg"], 1),
                "whole_tok_s": round(row["pl"] * row["tg"] / row["t"], 1),
            }
            for row in rows
        }
        for n, cell in out[outtype].items():
            print(f"  llama_batched {outtype:5s} N={n:>2s}  prefill {cell['prefill_tok_s']:7.1f} "
                  f"tok/s  decode {cell['decode_tok_s']:7.1f} tok/s  whole turns "
                  f"{cell['whole_tok_s']:7.1f} tok/s", flush=True)  # fmt: skip
    return out


def decode_rate(fig: dict[str, Any], contender: str, new_tokens: int) -> float | None:
    """Per-token decode at one writer: the turn's tokens after the first over the time
    after the first (p50 latency minus time to first token), the same for every peer."""
    row = fig.get("1") or {}
    latency, ttft = row.get(f"{contender}_p50_s"), row.get(f"{contender}_ttft_s")
    return (new_tokens - 1) / (latency - ttft) if latency and ttft and latency > ttft else None


def print_peers(fig: dict[str, Any] | None, batched: Any, args: Any) -> None:
    """Ours against llama.cpp's serving peer (int8 vs Q8_0, bf16 vs F16), and decode."""
    if not fig or not any(row.get("llama_q8_0") or row.get("llama_f16") for row in fig.values()):
        return
    print("  N   engine_int8 / llama_q8_0        engine_bf16 / llama_f16   (whole turns, tok/s)")
    for n, row in fig.items():
        pairs = [(row["engine_int8"], row["llama_q8_0"]), (row["engine_bf16"], row["llama_f16"])]
        cells = [f"{_f(a):>7s} / {_f(b):<7s} {_ratio(a, b):>6s}" for a, b in pairs]
        print(f"  {n:>2s}  {cells[0]:>28s}   {cells[1]:>28s}")
    ours = decode_rate(fig, "engine_int8", args.new_tokens)
    theirs = decode_rate(fig, "llama_q8_0", args.new_tokens)
    bound = ((batched or {}).get("q8_0") or {}).get("1", {}).get("decode_tok_s")
    print(f"  decode at 1 writer, tok/s: engine_int8 {_f(ours)}, llama-server Q8_0 {_f(theirs)} "
          f"({_ratio(ours, theirs)}), llama-batched-bench Q8_0 {_f(bound)} "
          f"({_ratio(ours, bound)})")  # fmt: skip


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
