"""Does the model follow the story? (issue 12) Figures printed, never a timed test.

For each `--model NAME=DIR` of one language:

1. bits/char on the validation split of the cleaned corpus (the last 10% of every
   file of ../shared/corpora/LANG after app/workshop/hygiene.py), the same text for
   every model;
2. through the running app over REST (a real gunicorn on 127.0.0.1, SQLite, the
   model as the language's default, the balanced preset): for every prompt of
   bench/prompts/story_following_LANG.json (written before training and kept fixed)
   a story with its opening, the paragraph posted as a turn, and the model's turn
   read back once the job is done (`--answers` per prompt, Regenerate for the
   second and later). Counted per AI turn: names a character of the story (a name
   as a whole word; in Korean a name followed by any particle), carries corpus
   markup after the app's cleanup, share of repeated word 4-grams, length;
3. the model's raw output (the app's prompt window, the same preset, in-process,
   before `clean_generation`), to say how much markup the model itself still writes.

Usage:
  .venv/bin/python bench/story_following.py --lang en --model old=build/old-en \\
      --model new=models/default-en [--answers 2] [--tokens 120]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.http_client import http_json  # noqa: E402
from tests.scaled.stack import free_port, wait_for  # noqa: E402

BIN = ROOT / ".venv" / "bin"
CORPORA = ROOT.parent / "shared" / "corpora"
# The markup the issue lists: Gutenberg italics, separators, headings, bracket tags,
# dated diary heads such as "_1 August._", bare numerals and all-caps lines.
MARKUP = re.compile(
    r"_\w|\w_|\* ?\* ?\*|^\s*(?:CHAPTER|Chapter|BOOK|PART|STAVE)\b|제\s*\d+\s*[장편부]"
    r"|\[(?:Illustration|Footnote)|^\s*(?:[IVXLC]+|\d+)\.?\s*$|^[^a-z가-힣\n]*[A-Z]{4,}[^a-z가-힣\n]*$",
    re.MULTILINE,
)


def mentions(text: str, names: list[str], lang: str) -> bool:
    """A character's name as a whole word (Korean: not glued to a syllable before it)."""
    for name in names:
        pattern = rf"(?<![가-힣]){re.escape(name)}" if lang == "ko" else rf"\b{re.escape(name)}\b"
        if re.search(pattern, text):
            return True
    return False


def repeated_4grams(text: str) -> float:
    from app.workshop.evaluate import repeated_ngram_rate

    return repeated_ngram_rate(text, 4)


def bits_per_char(model_dir: str, lang: str) -> float:
    """The model's bits/char on the cleaned validation split (non-overlapping windows)."""
    import torch

    from app.generation.story_cache import StoryCache, sequence_log_probs
    from app.workshop.data import encode_texts, eval_windows, join_with_separator, load_corpus
    from app.workshop.evaluate import load_model
    from app.workshop.model import model_context
    from app.workshop.scoring import Score, causal_lm_nll

    model, tokenizer = load_model(model_dir)
    split = load_corpus(CORPORA / lang)
    sep = tokenizer.eos_token_id
    stream = join_with_separator(encode_texts(tokenizer, split.val_texts), sep)
    windows = eval_windows(stream, model_context(model, 256), sep)
    cache = StoryCache.for_model(model_dir)
    if cache is None:
        score = causal_lm_nll(model, windows, pad_id=sep)
        return Score(score.nll, score.tokens, split.val_chars).bits_per_char
    nll = 0.0  # with the model folder's story cache, window by window
    for inputs, labels in windows:
        with torch.no_grad():
            out = model(torch.tensor([inputs], device=model.device), output_hidden_states=True)
        targets = torch.tensor(labels, device=model.device)
        lp = sequence_log_probs(
            out.logits[0], out.hidden_states[-1][0], targets, cache.theta, cache.lam
        )
        nll -= float(lp[targets >= 0].sum())
    return Score(nll, 0, split.val_chars).bits_per_char


def start_app(model_dir: str, lang: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    """gunicorn on a free port, SQLite in `workdir`, the model as `lang`'s default."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        FLASK_APP="wsgi.py",
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        RELAY_MODELS=f"{lang}={model_dir}",
        RATELIMIT_ENABLED="0",
        SECRET_KEY="bench-story-following",
        HF_HUB_OFFLINE="1",
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )
    subprocess.run(
        [str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    log = open(workdir / "web.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--no-control-socket", "wsgi:server"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for(lambda: _healthy(port), 120, "the app to answer /api/v1/health")
    return proc, port


def _healthy(port: int) -> bool:
    try:
        return http_json(port, "GET", "/api/v1/health", timeout=2)[0] == 200
    except OSError:
        return False


def register(port: int, name: str) -> str:
    status, body, _ = http_json(
        port, "POST", "/api/v1/auth/register", {"username": name, "password": "bench-password"}
    )
    assert status in (200, 201), (status, body)
    status, body, _ = http_json(
        port, "POST", "/api/v1/auth/tokens", {"username": name, "password": "bench-password"}
    )
    assert status in (200, 201), (status, body)
    return body["token"]


def wait_answer(port: int, token: str, job: dict) -> tuple[str, int]:
    """The AI turn's text and position once its job is done ("" when it failed)."""

    def finished():
        status, body, _ = http_json(port, "GET", f"/api/v1/jobs/{job['id']}", token=token)
        return body if status == 200 and body["status"] in ("done", "failed", "skipped") else None

    body = wait_for(finished, 300, f"job {job['id']}", interval=0.3)
    if body["status"] != "done" or not body.get("turn_id"):
        return "", 0
    status, turns, _ = http_json(
        port, "GET", f"/api/v1/stories/{body['story_id']}/turns", token=token
    )
    found = [(t["text"], t["position"]) for t in turns["turns"] if t["id"] == body["turn_id"]]
    return found[0] if found else ("", 0)


def app_answers(port: int, lang: str, prompts: list[dict], answers: int, tokens: int) -> list:
    """(prompt, AI turn text) for every prompt and answer, through the REST API."""
    token = register(port, f"bench{os.urandom(3).hex()}")
    out = []
    for prompt in prompts:
        story = {
            "title": "Bench",
            "language": lang,
            "opening": prompt["opening"],
            "preset": "balanced",
            "max_new_tokens": tokens,
        }
        status, body, _ = http_json(port, "POST", "/api/v1/stories", story, token=token)
        assert status == 201, (status, body)
        sid = body["id"]
        status, body, _ = http_json(
            port,
            "POST",
            f"/api/v1/stories/{sid}/turns",
            {"text": prompt["paragraph"], "expected_position": 0},
            token=token,
        )
        assert status == 202, (status, body)
        text, position = wait_answer(port, token, body["job"])
        out.append((prompt, text))
        for _ in range(answers - 1):
            if not position:
                break
            url = f"/api/v1/stories/{sid}/turns/{position}/regenerate"
            status, body, _ = http_json(port, "POST", url, {}, token=token)
            assert status == 202, (status, body)
            text, position = wait_answer(port, token, body["job"])
            out.append((prompt, text))
    return out


def raw_outputs(model_dir: str, lang: str, prompts: list[dict], tokens: int) -> list:
    """(prompt, raw continuation) through the app's window and generator, in-process."""
    import torch

    from app.generation.generator import Generator
    from app.generation.registry import ModelRegistry
    from app.generation.sampling import params_for
    from app.generation.window import trim_to_window

    registry = ModelRegistry({lang: model_dir}, device="cpu", torch_threads=1)
    generator = Generator(registry)
    loaded = registry.get(lang)
    params = params_for("balanced", tokens)
    out = []
    for i, prompt in enumerate(prompts):
        torch.manual_seed(i)
        window = trim_to_window(
            loaded.tokenizer,
            prompt["opening"],
            [prompt["paragraph"]],
            loaded.max_context,
            params.max_new_tokens,
        )
        out.append((prompt, generator.generate(lang, window.ids, params)))
    return out


def summarise(lang: str, pairs: list) -> dict:
    from app.generation.cleanup import clean_generation

    n = max(len(pairs), 1)
    texts = [text for _, text in pairs]
    return {
        "turns": len(pairs),
        "names_a_character": sum(mentions(t, p["names"], lang) for p, t in pairs) / n,
        "markup": sum(bool(MARKUP.search(t)) for t in texts) / n,
        "markup_after_cleanup": sum(bool(MARKUP.search(clean_generation(t))) for t in texts) / n,
        "repeated_4grams": sum(repeated_4grams(t) for t in texts) / n,
        "mean_chars": sum(len(t) for t in texts) / n,
        "mean_words": sum(len(t.split()) for t in texts) / n,
        "empty": sum(not t.strip() for t in texts),
        "markup_found": sorted(
            {m.group(0).strip() for t in texts for m in MARKUP.finditer(clean_generation(t))}
        )[:8],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", choices=["en", "ko"], required=True)
    parser.add_argument("--model", action="append", required=True, help="NAME=DIR")
    parser.add_argument("--answers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--limit", type=int, default=0, help="Only the first N prompts.")
    parser.add_argument("--skip-app", action="store_true", help="Raw outputs and bits/char only.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args()
    prompts = json.loads(
        (ROOT / "bench" / "prompts" / f"story_following_{args.lang}.json").read_text(
            encoding="utf-8"
        )
    )
    prompts = prompts[: args.limit] if args.limit else prompts
    results = {}
    for spec in args.model:
        name, model_dir = spec.split("=", 1)
        started = time.monotonic()
        row = {"bits_per_char": bits_per_char(model_dir, args.lang)}
        row["raw"] = summarise(args.lang, raw_outputs(model_dir, args.lang, prompts, args.tokens))
        if not args.skip_app:
            with tempfile.TemporaryDirectory(prefix="story-following-") as tmp:
                proc, port = start_app(model_dir, args.lang, Path(tmp))
                try:
                    pairs = app_answers(port, args.lang, prompts, args.answers, args.tokens)
                finally:
                    proc.terminate()
                    proc.wait(30)
            row["app"] = summarise(args.lang, pairs)
            row["app_examples"] = [t for _, t in pairs[: 2 * args.answers : args.answers]]
        row["seconds"] = round(time.monotonic() - started, 1)
        results[name] = row
        print(f"{args.lang} {name}: {json.dumps(row, ensure_ascii=False, indent=1)}", flush=True)
    print_table(args.lang, results)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


def print_table(lang: str, results: dict) -> None:
    print(
        f"\n{lang}: model | bits/char | names a character (app) | markup raw -> after cleanup "
        "(app) | rep-4gram (app) | mean words (app)"
    )
    for name, row in results.items():
        app = row.get("app", row["raw"])
        print(
            f"{name} | {row['bits_per_char']:.4f} | {app['names_a_character']:.0%} | "
            f"{row['raw']['markup']:.0%} -> {app['markup_after_cleanup']:.0%} | "
            f"{app['repeated_4grams']:.4f} | {app['mean_words']:.1f}"
        )


if __name__ == "__main__":
    main()
