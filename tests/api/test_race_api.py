"""The race: 50 API clients append to one story at once over real HTTP until it holds
200 human turns, with the embedded runner answering each one with an AI turn.

Each client is its own user and keeps posting with the position it last saw,
re-reading after every 409. Like the browser, it follows the story's events
(SSE) to know when the model has answered, "types" for a random moment, and
backs off after a lost race; many still post the same position at once. The
clients run in a process of their own, so they don't take the server's GIL.
The story's turn limit (400 = 200 human + 200 AI) ends the race, so it can
never overshoot. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import random
import re
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import _reset_schema, make_app
from tests.http_client import http_json

CLIENTS = 50
HUMAN_TURNS = 200
AI_TOKENS = 4  # a few words: the race, not the model, is what takes the time
# A client waits up to `typing` seconds before posting; it doubles after each lost race.
TYPING_SECONDS, TYPING_SECONDS_MAX = 0.5, 4.0
RACE_SECONDS = 420  # a deadline only (a loaded CI box): the race ends when the story is full


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # thousands of lines otherwise
        pass


class RaceClient(threading.Thread):
    """One writer, like the browser: follow the story's events, and whenever the story is
    open for a human turn post with the position last seen; after a 409 re-read (the 409
    carries the missed turns, GET /turns otherwise) and try again."""

    def __init__(self, port: int, story_id: int, token: str, name: str, deadline: float) -> None:
        super().__init__(name=name, daemon=True)
        self.port, self.story_id, self.token, self.deadline = port, story_id, token, deadline
        self.statuses: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.accepted: list[dict[str, Any]] = []
        self.errors: list[str] = []
        # What this client last saw: the story's last position and whether it awaits the model.
        self.seen, self.waiting_for_model = 0, False
        self.changed = threading.Condition()
        self.stream: http.client.HTTPConnection | None = None
        self.typing = TYPING_SECONDS

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, data, _ = http_json(
            self.port, method, path, body=body, token=self.token, timeout=60
        )
        self.statuses[status] += 1
        if status >= 500:
            self.errors.append(f"{status} {method} {path}: {str(data)[:300]!r}")
        return status, data

    def saw(self, position: int, waiting_for_model: bool) -> None:
        with self.changed:
            if position >= self.seen:
                self.seen, self.waiting_for_model = position, waiting_for_model
            self.changed.notify_all()

    def reread(self) -> None:
        _, body = self.request("GET", f"/api/v1/stories/{self.story_id}/turns?since={self.seen}")
        self.saw(body["last_position"], body["pending_job"] is not None)

    def listen(self) -> None:
        """Follow GET /stories/<id>/events: every turn_created moves `seen` on."""
        conn = self.stream = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("GET", f"/api/v1/stories/{self.story_id}/events")
        response = conn.getresponse()
        self.statuses[response.status] += 1
        try:
            for line in iter(response.readline, b""):
                if not line.startswith(b"data:"):
                    continue
                event = json.loads(line[5:])
                self.codes[f"event:{event['type']}"] += 1
                if event["type"] == "turn_created":
                    turn = event["turn"]
                    self.saw(turn["position"], turn["kind"] == "human")
                elif event["type"] == "generation_failed":
                    self.reread()
        except OSError:
            pass  # closed at the end of the race

    def run(self) -> None:
        listener = threading.Thread(target=self.listen, daemon=True)
        listener.start()
        try:
            self.race()
        except Exception as exc:  # a client crash must fail the test, not hang it
            self.errors.append(f"client crashed: {exc!r}")
        finally:
            if self.stream is not None and self.stream.sock is not None:
                self.stream.sock.shutdown(socket.SHUT_RDWR)
            listener.join(timeout=5)

    def wait_for_an_opening(self, tried: int) -> int:
        """The position to post with, once the story takes a human turn we haven't tried."""
        with self.changed:
            while self.waiting_for_model or self.seen == tried:
                if not self.changed.wait(timeout=2.0):
                    break  # nothing heard for a while: re-read below
            return self.seen

    def race(self) -> None:
        self.reread()
        tried, attempt = -1, 0
        while time.monotonic() < self.deadline and not self.story_is_full():
            position = self.wait_for_an_opening(tried)
            if self.waiting_for_model or position == tried:
                self.reread()
                continue
            time.sleep(random.uniform(0, self.typing))  # not everyone types at the same instant
            if self.seen != position:
                continue  # someone wrote while we typed: read it first
            attempt += 1
            status, body = self.request(
                "POST",
                f"/api/v1/stories/{self.story_id}/turns",
                {"text": f"{self.name} writes paragraph {attempt}.", "expected_position": position},
            )
            tried = position
            if status == 202:
                self.typing = TYPING_SECONDS
                self.accepted.append(body["turn"])
                self.saw(body["turn"]["position"], True)
                continue
            if status != 409:
                if status < 500:
                    self.errors.append(f"unexpected {status}: {body}")
                return
            error = body["error"]
            self.codes[error["code"]] += 1
            if error["code"] == "story_full":
                return
            if error["code"] == "stale_position":  # the 409 carries the missed turns
                self.typing = min(2 * self.typing, TYPING_SECONDS_MAX)  # back off, as clients do
                missed = error["missed"]
                self.saw(error["last_position"], bool(missed) and missed[-1]["kind"] == "human")
            elif error["code"] == "generation_pending":
                self.saw(position, True)
            # not_your_turn: wait until someone else has written

    def story_is_full(self) -> bool:
        # The writer of the last paragraph hears not_your_turn, never story_full.
        return self.seen >= 2 * HUMAN_TURNS and not self.waiting_for_model

    def outcome(self) -> dict[str, Any]:
        return {
            "statuses": dict(self.statuses),
            "codes": dict(self.codes),
            "accepted": [turn["id"] for turn in self.accepted],
            "errors": self.errors + (["client never finished"] if self.is_alive() else []),
        }


@pytest.fixture(scope="module")
def word_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2 rewired so that every token it writes is a whole English word.

    Random weights write byte soup that the output cleaner often reduces to
    nothing, which fails the job; this race is about the relay, so its model must
    always answer. The final layer norm now outputs one fixed vector and an
    untied output layer maps it to logits that favour the vocabulary's words.
    """
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    out = tmp_path_factory.mktemp("word-gpt2")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = GPT2LMHeadModel.from_pretrained(tiny_model_dir)
    config = model.config
    config.tie_word_embeddings = False
    rewired = GPT2LMHeadModel(config)
    rewired.load_state_dict(model.state_dict(), strict=False)
    vocab = config.vocab_size
    words = [i for i in range(vocab) if re.fullmatch(r" [A-Za-z]{2,}", tokenizer.decode([i]))]
    assert len(words) >= 10
    with torch.no_grad():
        fixed = torch.zeros(config.n_embd)
        fixed[0] = 1.0
        rewired.transformer.ln_f.weight.zero_()
        rewired.transformer.ln_f.bias.copy_(fixed)  # every hidden state is now `fixed`
        logits = torch.full((vocab,), -20.0)
        logits[words] = torch.linspace(2.0, 4.0, len(words))
        rewired.lm_head.weight.zero_()
        rewired.lm_head.weight[:, 0] = logits  # lm_head(fixed) == logits
    rewired.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def run_clients(port: int, story_id: int, tokens: list[str], seconds: float) -> list[dict]:
    """The 50 racing clients, in a process of their own so they don't share the server's GIL."""
    deadline = time.monotonic() + seconds
    clients = [
        RaceClient(port, story_id, token, f"racer{i:02d}", deadline)
        for i, token in enumerate(tokens)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=max(1.0, deadline + 30 - time.monotonic()))
    return [client.outcome() for client in clients]


def _users_and_story(app) -> tuple[int, list[str]]:
    """50 writers with tokens (one cheap password hash shared) and a story with tiny turns."""
    from app.accounts.models import ApiToken, User
    from app.extensions import db
    from app.stories.relay import create_story

    with app.app_context():
        users = [User(username=f"racer{i:02d}") for i in range(CLIENTS)]
        users[0].set_password("password123")
        for user in users[1:]:
            user.password_hash = users[0].password_hash
        tokens = []
        for user in users:
            row, raw = ApiToken.issue(user)
            db.session.add_all([user, row])
            tokens.append(raw)
        db.session.commit()
        story = create_story(
            users[0],
            {
                "title": "The Race",
                "language": "en",
                "opening": "Fifty writers reached for the same pen.",
                "max_new_tokens": app.config["AI_TOKENS_MIN"],
            },
        )
        return story.id, tokens


@pytest.mark.timeout(600)
def test_fifty_clients_race_to_two_hundred_human_turns(db_url, word_model_dir):
    """Do 50 racing clients leave contiguous positions, one AI turn after each human, no 5xx?"""
    app = make_app(
        db_url,
        word_model_dir,
        RELAY_START_RUNNER=True,
        RELAY_RUNNER_POLL_SECONDS=0.5,
        AI_TOKENS_MIN=AI_TOKENS,
        TURNS_PER_STORY_MAX=2 * HUMAN_TURNS,
        QUEUE_MAX=1000,
        # One connection per busy server thread, as gunicorn's threads would be configured.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "pool_size": 25, "max_overflow": 25},
    )
    _reset_schema(app)
    story_id, tokens = _users_and_story(app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    started = time.monotonic()
    try:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            outcomes = pool.submit(
                run_clients, server.server_port, story_id, tokens, RACE_SECONDS
            ).result(timeout=RACE_SECONDS + 90)
        _wait_for_last_answer(app, story_id, deadline=time.monotonic() + 60)
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
        app.extensions["relay.shutdown"]()
    _report(outcomes, elapsed)
    _report_jobs(app)
    _check_story(app, story_id, outcomes)
    from app.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _wait_for_last_answer(app, story_id: int, deadline: float) -> None:
    from app.extensions import db
    from app.stories import reads

    with app.app_context():
        while time.monotonic() < deadline:
            story = reads.get_story(story_id)
            if reads.pending_job(story) is None:
                return
            db.session.remove()
            time.sleep(0.2)


def _report(outcomes: list[dict], elapsed: float) -> None:
    statuses = sum((Counter(o["statuses"]) for o in outcomes), Counter())
    codes = sum((Counter(o["codes"]) for o in outcomes), Counter())
    events = {k[6:]: n for k, n in codes.items() if k.startswith("event:")}
    conflicts = {k: n for k, n in codes.items() if not k.startswith("event:")}
    print(f"\nrace: {elapsed:.1f}s, statuses {dict(statuses)}, 409 codes {conflicts}")
    print(f"events heard over SSE: {events}")


def _report_jobs(app) -> None:
    """Where a cycle's time goes: waiting for a runner, and generating + appending."""
    from statistics import median

    from sqlalchemy import select

    from app.extensions import db
    from app.stories.models import GenerationJob, Turn

    with app.app_context():
        jobs = [j for j in db.session.scalars(select(GenerationJob)) if j.finished_at]
        if not jobs:
            return
        waits = [(j.started_at - j.created_at).total_seconds() for j in jobs]
        runs = [(j.finished_at - j.started_at).total_seconds() for j in jobs]
        gaps = []
        for job in (j for j in jobs if j.turn_id):
            nxt = db.session.scalars(
                select(Turn.created_at).where(Turn.id > job.turn_id).order_by(Turn.id).limit(1)
            ).first()
            if nxt:
                gaps.append((nxt - job.finished_at).total_seconds())
        print(
            f"jobs: wait median {median(waits):.3f}s max {max(waits):.3f}s; "
            f"run median {median(runs):.3f}s max {max(runs):.3f}s; "
            f"done->next human median {median(gaps) if gaps else 0:.3f}s; "
            f"statuses {Counter(j.status for j in jobs)}, errors {Counter(j.error for j in jobs)}"
        )


def _check_story(app, story_id: int, outcomes: list[dict]) -> None:
    from sqlalchemy import select

    from app.extensions import db
    from app.stories.models import GenerationJob, Turn

    errors = [error for o in outcomes for error in o["errors"]]
    assert not errors, errors[:5]
    assert sum(n for o in outcomes for s, n in o["statuses"].items() if int(s) >= 500) == 0
    accepted = [turn_id for o in outcomes for turn_id in o["accepted"]]
    assert len(accepted) == HUMAN_TURNS
    with app.app_context():
        turns = list(db.session.scalars(select(Turn).where(Turn.story_id == story_id)))
        turns.sort(key=lambda t: t.position)
        jobs = list(db.session.scalars(select(GenerationJob)))
        assert [t.position for t in turns] == list(range(1, 2 * HUMAN_TURNS + 1))
        assert [t.kind for t in turns] == ["human", "ai"] * HUMAN_TURNS
        for human, ai in zip(turns[::2], turns[1::2], strict=True):
            assert ai.reply_to_id == human.id
        assert not any(t.hidden for t in turns)
        humans = turns[::2]
        assert len({t.text for t in humans}) == HUMAN_TURNS  # no paragraph stored twice
        assert sorted(accepted) == sorted(t.id for t in humans)  # none lost
        assert Counter(job.status for job in jobs) == {"done": HUMAN_TURNS}
        assert sorted(job.turn_id for job in jobs) == sorted(t.id for t in turns[1::2])
