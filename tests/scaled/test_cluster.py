"""The scaled mode as real processes: two gunicorn servers and two Celery workers on one
PostgreSQL database and Redis DB 5. Turns stream across web servers, SIGKILLed pool
processes never lose or double a turn, a job that kills its worker every time fails with a
reason, and a backlog survives losing every worker.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests.scaled.conftest import seed_app
from tests.scaled.stack import (
    CRASH_MARKER,
    Proc,
    SseClient,
    Stack,
    ai_turns,
    free_port,
    http_json,
    job_row,
    post_turn,
    seed,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.scaled

REDIS_URL = os.environ.get("TEST_SCALED_REDIS_URL", "redis://127.0.0.1:6379/5")
TOKENS = 40  # words per AI turn: the word-only model always writes this many
TOKEN_DELAY = 0.04  # seconds per token (TEST_TOKEN_DELAY): ~2 s per turn
KILLS = 20


@dataclass
class Cluster:
    stack: Stack
    ports: list[int]
    app: Any
    workers: list[Proc]

    def worker_of(self, job_worker: str) -> str:
        """Which worker (w1, w2, ...) a job row's host:pid:thread belongs to."""
        pid = int(job_worker.split(":")[1])
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            return "gone"
        return next((w.name for w in self.workers if w.popen.pid == group), "other")


@pytest.fixture(scope="module")
def cluster(scaled_database: str, word_model, tmp_path_factory) -> Iterator[Cluster]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    stack = Stack.create(
        tmp_path_factory.mktemp("scaled-cluster"),
        scaled_database,
        REDIS_URL,
        word_model,
        TEST_TOKEN_DELAY=TOKEN_DELAY,
        # The delay hook runs between two tokens of HF generate; the batched engine (the
        # default, covered by test_outages.py) generates on a thread of its own.
        RELAY_ENGINE="hf",
    )
    app = None
    try:
        stack.migrate()
        workers = [
            stack.start_worker("w1", beat=True, wait=False),
            stack.start_worker("w2", wait=False),
        ]
        ports = [free_port(), free_port()]
        webs = [stack.start_web(port, wait=False) for port in ports]
        for web, port in zip(webs, ports, strict=True):
            stack.wait_web(web, port)
        for worker in workers:
            stack.wait_worker_ready(worker)
        app = seed_app(scaled_database, word_model)
        yield Cluster(stack, ports, app, workers)
    finally:
        stack.tear_down(app)


def first_delta(pubsub: Any, job_id: int, timeout: float = 90) -> dict[str, Any]:
    """Wait on the story's Redis channel for the job's first streamed delta."""
    import json

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1.0)
        if message and message["type"] == "message":
            event = json.loads(message["data"])
            if event.get("type") == "generation_delta" and event.get("job_id") == job_id:
                return event
    raise AssertionError(f"no delta for job {job_id} within {timeout}s")


class TurnWatcher(threading.Thread):
    """A reader polling the story's turns over HTTP: a turn, once visible, must never
    change, and every AI turn it sees must be whole (all TOKENS words, less the cut one)."""

    def __init__(self, port: int, story_id: int) -> None:
        super().__init__(daemon=True)
        self.port, self.story_id = port, story_id
        self.seen: dict[int, str] = {}
        self.problems: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            status, body, _ = http_json(self.port, "GET", f"/api/v1/stories/{self.story_id}/turns")
            if status != 200:
                self.problems.append(f"GET turns: {status}")
            else:
                for turn in body["turns"]:
                    self.check(turn)
            time.sleep(0.1)

    def check(self, turn: dict[str, Any]) -> None:
        position, text = turn["position"], turn["text"]
        if position in self.seen and self.seen[position] != text:
            self.problems.append(f"turn {position} changed")
        self.seen[position] = text
        if turn["kind"] == "ai" and len(text.split()) < TOKENS - 2:
            self.problems.append(f"half turn at {position}: {len(text.split())} words")


def test_turn_streams_to_a_reader_on_another_web_server(cluster: Cluster) -> None:
    """Does a turn posted to one web server stream, via Celery, to a reader on another?"""
    data = seed(cluster.app, stories=1, max_new_tokens=TOKENS)
    story_id, token = data["story_ids"][0], data["tokens"][0]
    sse = SseClient(cluster.ports[1], story_id)
    events: list[dict[str, Any]] = []

    def read() -> None:
        for event in sse.events():
            events.append(event)
            if event["type"] in ("generation_done", "generation_failed"):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    status, body, _ = post_turn(cluster.ports[0], story_id, token, "The keeper wrote.", 0)
    assert status == 202, body
    reader.join(timeout=120)
    sse.close()
    job_id = body["job"]["id"]
    row = job_row(cluster.app, job_id)
    assert row["status"] == "done", (row, events[-3:])
    kinds = [event["type"] for event in events]
    assert kinds[0] == "stream_open"
    assert "generation_started" in kinds and kinds[-1] == "generation_done"
    deltas = [event for event in events if event["type"] == "generation_delta"]
    assert len(deltas) >= TOKENS // 2
    (text,) = ai_turns(cluster.app, body["turn"]["id"])
    created = [e for e in events if e["type"] == "turn_created" and e["turn"]["kind"] == "ai"]
    assert created and created[0]["turn"]["text"] == text
    assert text in deltas[-1]["text_so_far"] or deltas[-1]["text_so_far"].startswith(text)
    assert cluster.worker_of(row["worker"]) in ("w1", "w2")  # a Celery pool process wrote it


def test_sigkill_while_generating_never_loses_or_doubles_a_turn(cluster: Cluster) -> None:
    """SIGKILL the pool process mid-turn 20 times: does each job finish exactly once?"""
    data = seed(cluster.app, writers=2, stories=1, max_new_tokens=TOKENS)
    story_id, tokens = data["story_ids"][0], data["tokens"]
    pubsub = redis.Redis.from_url(REDIS_URL).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"relay:story:{story_id}")
    watcher = TurnWatcher(cluster.ports[1], story_id)
    watcher.start()
    finished_on: Counter[str] = Counter()
    started = time.monotonic()
    try:
        for i in range(KILLS):
            text = f"Paragraph {i}: the keeper wrote again."
            status, body, _ = post_turn(cluster.ports[i % 2], story_id, tokens[i % 2], text, 2 * i)
            assert status == 202, body
            job_id = body["job"]["id"]
            first_delta(pubsub, job_id)
            killed = job_row(cluster.app, job_id)["worker"]
            killed_on = cluster.worker_of(killed)
            os.kill(int(killed.split(":")[1]), signal.SIGKILL)
            row = wait_job(cluster.app, job_id, timeout=120)
            assert row["status"] == "done", row
            assert row["attempts"] == 2, row
            assert row["worker"] != killed
            assert len(ai_turns(cluster.app, body["turn"]["id"])) == 1
            finished_on["other" if cluster.worker_of(row["worker"]) != killed_on else "same"] += 1
    finally:
        watcher.stop.set()
        watcher.join(timeout=10)
        pubsub.close()
    status, body, _ = http_json(cluster.ports[0], "GET", f"/api/v1/stories/{story_id}/turns")
    turns = body["turns"]
    assert [t["position"] for t in turns] == list(range(1, 2 * KILLS + 1))
    assert [t["kind"] for t in turns] == ["human", "ai"] * KILLS
    assert body["pending_job"] is None
    for turn in turns:
        watcher.check(turn)
    assert not watcher.problems, watcher.problems[:5]
    print(
        f"\n{KILLS} kills in {time.monotonic() - started:.0f}s; the job finished on the "
        f"other worker {finished_on['other']} times, on the killed worker's new process "
        f"{finished_on['same']} times"
    )


def test_job_that_kills_its_worker_fails_after_three_attempts(cluster: Cluster) -> None:
    """Does a job that crashes its worker every time end failed, with a reason, story free?"""
    data = seed(cluster.app, writers=2, stories=1, max_new_tokens=TOKENS)
    story_id, tokens = data["story_ids"][0], data["tokens"]
    status, body, _ = post_turn(
        cluster.ports[0], story_id, tokens[0], f"The keeper wrote {CRASH_MARKER}.", 0
    )
    assert status == 202, body
    job_id = body["job"]["id"]
    row = wait_job(cluster.app, job_id, timeout=300)
    assert row["status"] == "failed", row
    assert 1 <= row["attempts"] <= 3
    assert "worker stopped" in row["error"]
    status, job, _ = http_json(cluster.ports[1], "GET", f"/api/v1/jobs/{job_id}", token=tokens[0])
    assert status == 200 and job["status"] == "failed" and "worker stopped" in job["error"]
    assert ai_turns(cluster.app, body["turn"]["id"]) == []
    # Not stuck: the next writer goes on, and the model answers them.
    status, body, _ = post_turn(cluster.ports[1], story_id, tokens[1], "Another writer.", 1)
    assert status == 202, body
    assert wait_job(cluster.app, body["job"]["id"], timeout=120)["status"] == "done"


def test_backlog_drains_after_every_worker_is_killed(cluster: Cluster) -> None:
    """Kill both workers with turns running and queued; does one new worker answer each once?"""
    data = seed(cluster.app, writers=1, stories=8, max_new_tokens=TOKENS)
    token, jobs = data["tokens"][0], []
    for story_id in data["story_ids"]:
        status, body, _ = post_turn(cluster.ports[0], story_id, token, "The keeper slept.", 0)
        assert status == 202, body
        jobs.append((body["job"]["id"], body["turn"]["id"]))
    wait_for(
        lambda: sum(job_row(cluster.app, j)["status"] == "running" for j, _ in jobs) >= 1,
        60,
        "a job to run",
    )
    for worker in cluster.workers:
        cluster.stack.kill(worker)  # main process, pool process and beat: the whole group
    statuses = Counter(job_row(cluster.app, j)["status"] for j, _ in jobs)
    assert statuses["queued"] + statuses["running"] >= 3, statuses  # a backlog was left
    started = time.monotonic()
    cluster.workers = [cluster.stack.start_worker("w3", beat=True)]
    for job_id, turn_id in jobs:  # 300 s: it drained in 51 s alone, but once ran past 180 s
        row = wait_job(cluster.app, job_id, timeout=300)  # under the whole suite's load
        assert row["status"] == "done", row
        assert len(ai_turns(cluster.app, turn_id)) == 1
    print(
        f"\nbacklog {dict(statuses)} drained by one new worker in {time.monotonic() - started:.0f}s"
    )
