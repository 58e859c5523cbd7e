"""Scaled-mode throughput (issue 5): turns per minute with 1 and with 2 Celery workers.

Starts the real processes of the scaled mode on this machine (one gunicorn server with
WEB_CONCURRENCY=2, then 1 and 2 `celery worker --concurrency 1` processes) against the
local PostgreSQL (a throwaway database) and Redis (DB 6, flushed). W writers, each on a
story of their own, post a paragraph over HTTP, wait for the model's turn (its
generation_done on the story's SSE stream, as the browser does), and post again, for D
seconds per worker count. A "turn" is one AI turn stored; turns per minute = AI turns
completed in the window / minutes.

The model is --model (a local Hugging Face dir; default models/default-en) or, with
--tiny, the tests' tiny GPT-2 rewired to write only words (nothing to download;
measures the machinery, not the model). Every turn asks for --tokens new tokens.

Usage: .venv/bin/python bench/scaled_turns.py [--tiny] [--writers 4] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PG_ADMIN_URL, make_app  # noqa: E402
from tests.scaled.stack import (  # noqa: E402
    SseClient,
    Stack,
    build_word_model,
    free_port,
    http_json,
    post_turn,
    seed,
)

REDIS_URL = "redis://127.0.0.1:6379/6"


def tiny_model(out: Path) -> Path:
    """The tests' tiny GPT-2 (2 layers, 32 wide, BPE trained on a paragraph), words only."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from tests.conftest import TINY_TEXT

    raw = out / "tiny"
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([TINY_TEXT], vocab_size=400, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    tokenizer.save_pretrained(raw)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(raw)
    return build_word_model(raw, out / "word")


def writer(port: int, story_id: int, pair: tuple, stop: threading.Event, done: list) -> None:
    """Like a browser: follow the story's event stream, post, wait for generation_done
    (or _failed) of that job on the stream, post again; record each answer's latency.
    Two writers take turns on the story (nobody may write twice in a row)."""
    stream = SseClient(port, story_id)
    events = stream.events()
    position = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            token = pair[(position // 2) % 2]
            status, body, _ = post_turn(port, story_id, token, f"Paragraph {position}.", position)
            if status != 202:
                time.sleep(0.5)
                _, turns, _ = http_json(port, "GET", f"/api/v1/stories/{story_id}/turns")
                position = turns["last_position"]
                continue
            job_id = body["job"]["id"]
            for event in events:
                if event["type"] == "turn_created" and event["turn"]["kind"] == "ai":
                    position = event["turn"]["position"]
                finished = event["type"] in ("generation_done", "generation_failed")
                if finished and event["job"]["id"] == job_id:
                    break
            if not stop.is_set():
                done.append(time.monotonic() - started)
    finally:
        stream.close()


def measure(port: int, stories: list[int], tokens: list[str], seconds: float) -> dict:
    stop, done = threading.Event(), []
    pairs = [(tokens[2 * i], tokens[2 * i + 1]) for i in range(len(stories))]
    threads = [
        threading.Thread(target=writer, args=(port, s, pair, stop, done), daemon=True)
        for s, pair in zip(stories, pairs, strict=True)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    latencies = sorted(done)
    return {
        "turns": len(done),
        "per_minute": len(done) * 60.0 / seconds,
        "p50": latencies[len(latencies) // 2] if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "default-en"))
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny word model")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--tokens", type=int, default=40)
    args = parser.parse_args()

    import psycopg
    import redis

    work = Path(tempfile.mkdtemp(prefix="relay-bench-scaled-"))
    model = tiny_model(work) if args.tiny else Path(args.model)
    name = f"relay_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    database_url = f"{base}/{name}"
    redis.Redis.from_url(REDIS_URL).flushdb()
    stack = Stack.create(work, database_url, REDIS_URL, model, RELAY_TORCH_THREADS="1")
    app = None
    try:
        stack.migrate()
        port = free_port()
        stack.start_web(port, workers=2)
        app = make_app(database_url, model, RELAY_START_RUNNER=False)
        data = seed(app, writers=2 * args.writers, stories=0)
        print(
            f"model {model.name}, {args.writers} writers, {args.tokens} tokens per turn, "
            f"{args.seconds:.0f} s per run, {os.cpu_count()} CPU cores, "
            f"load average before {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        print(f"{'workers':>7}  {'AI turns':>8}  {'turns/min':>9}  {'p50 latency s':>13}")
        for count in (1, 2):
            stack.start_worker(f"bench{count}")
            stories = [seed_story(app, uid, args.tokens) for uid in data["user_ids"][::2]]
            result = measure(port, stories, data["tokens"], args.seconds)
            print(
                f"{count:>7}  {result['turns']:>8}  {result['per_minute']:>9.1f}  "
                f"{result['p50']:>13.2f}",
                flush=True,
            )
        print(f"load average after {os.getloadavg()[0]:.1f}")
    finally:
        stack.tear_down(app)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_story(app, user_id: int, tokens: int) -> int:
    from app.accounts.models import User
    from app.extensions import db
    from app.stories.relay import create_story

    with app.app_context():
        fields = {
            "title": "Bench",
            "language": "en",
            "opening": "The lighthouse keeper wrote.",
            "max_new_tokens": tokens,
        }
        return create_story(db.session.get(User, user_id), fields).id


if __name__ == "__main__":
    main()
