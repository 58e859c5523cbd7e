"""A Celery worker with a thread pool (`--pool threads --concurrency 4`): one process, one
batching engine, several stories answered in the same engine batch, each exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests.scaled.conftest import seed_app
from tests.scaled.stack import (
    Stack,
    ai_turns,
    free_port,
    post_turn,
    seed,
    wait_job,
)

pytestmark = pytest.mark.scaled

REDIS_URL = "redis://127.0.0.1:6379/6"
STORIES = 4


@dataclass
class Deployment:
    stack: Stack
    port: int
    app: Any


@pytest.fixture(scope="module")
def deployment(scaled_database: str, word_model, tmp_path_factory) -> Iterator[Deployment]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    stack = Stack.create(
        tmp_path_factory.mktemp("scaled-threads"), scaled_database, REDIS_URL, word_model
    )
    app = None
    try:
        stack.migrate()
        port = free_port()
        stack.start_web(port)
        app = seed_app(scaled_database, word_model)
        yield Deployment(stack, port, app)
    finally:
        stack.tear_down(app)


def test_thread_pool_worker_batches_stories_and_answers_each_once(
    deployment: Deployment,
) -> None:
    """Queued turns of four stories, then a thread-pool worker starts: do they share one
    engine batch in one process, and does each story get exactly one AI turn?"""
    data = seed(deployment.app, writers=1, stories=STORIES, max_new_tokens=120)
    token = data["tokens"][0]
    posted = []
    for i, story_id in enumerate(data["story_ids"]):
        status, body, _ = post_turn(deployment.port, story_id, token, f"Night {i} fell.", 0)
        assert status == 202, body
        posted.append((body["turn"]["id"], body["job"]["id"]))
    worker = deployment.stack.start_worker("pool", beat=True, pool="threads", jobs=STORIES)
    rows = [wait_job(deployment.app, job_id, timeout=180) for _, job_id in posted]
    assert [row["status"] for row in rows] == ["done"] * STORIES, rows
    pids = {row["worker"].split(":")[1] for row in rows}
    threads = {row["worker"].split(":")[2] for row in rows}
    assert len(pids) == 1 and len(threads) >= 2, rows
    peaks = [int(n) for n in re.findall(r"engine batch of (\d+) sequences", worker.text())]
    assert peaks and max(peaks) >= 2, worker.text()[-3000:]
    for turn_id, _ in posted:
        assert len(ai_turns(deployment.app, turn_id)) == 1
