"""The scaled mode through outages: Redis stopped (a redis-server of this module's own, on
its own port: the shared one on 6379 is never touched) and the local PostgreSQL cluster
restarted. One gunicorn server and one Celery worker (with beat) on a database of their own,
with the default generation engine (RELAY_ENGINE=batched).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.scaled.conftest import seed_app
from tests.scaled.stack import (
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


class RedisServer:
    """A redis-server process owned by the test (no persistence: a restart starts empty)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - the child owns it
        self.popen = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: _pings(client), 30, f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(timeout=30)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@dataclass
class Deployment:
    stack: Stack
    port: int
    app: Any
    redis: RedisServer


@pytest.fixture(scope="module")
def deployment(scaled_database: str, word_model, tmp_path_factory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("scaled-outages")
    server = RedisServer(workdir)
    server.start()
    stack = Stack.create(
        workdir,
        scaled_database,
        server.url,
        word_model,
        RATELIMIT_ENABLED="1",  # the limits live in this Redis too
        RATELIMIT_DEFAULT="1000 per minute",
        RATELIMIT_TURNS="100 per minute",
    )
    app = None
    try:
        stack.migrate()
        worker = stack.start_worker("solo", beat=True, wait=False)
        port = free_port()
        stack.start_web(port)
        stack.wait_worker_ready(worker)
        app = seed_app(scaled_database, word_model)
        yield Deployment(stack, port, app, server)
    finally:
        stack.stop_all()
        server.stop()
        if app is not None:
            from app.extensions import db

            with app.app_context(), contextlib.suppress(Exception):
                db.engine.dispose()


def test_redis_down_answers_503_and_keeps_the_turn(deployment: Deployment) -> None:
    """With Redis stopped, is a turn a clear 503 that keeps the paragraph, answered once back?"""
    data = seed(deployment.app, writers=1, stories=1, max_new_tokens=16)
    story_id, token = data["story_ids"][0], data["tokens"][0]
    status, _, _ = http_json(deployment.port, "GET", f"/api/v1/stories/{story_id}", token=token)
    assert status == 200
    keys = redis.Redis.from_url(deployment.redis.url).keys("LIMITS*")
    assert keys, "the rate limits are kept in Redis"
    status, body, _ = http_json(deployment.port, "GET", "/api/v1/ready")
    assert status == 200 and body["checks"]["broker"] == "ok", body
    deployment.redis.stop()
    try:
        status, body, _ = http_json(deployment.port, "GET", "/api/v1/ready")
        assert status == 503 and "broker" in body["error"]["checks"], body
        text = "The keeper wrote while the broker slept."
        status, body, headers = post_turn(deployment.port, story_id, token, text, 0)
        assert status == 503, body
        assert body["error"]["code"] == "generation_unavailable"
        assert "saved" in body["error"]["message"]
        assert int(headers["Retry-After"]) > 0
        status, turns, _ = http_json(deployment.port, "GET", f"/api/v1/stories/{story_id}/turns")
        assert status == 200
        assert [(t["kind"], t["text"]) for t in turns["turns"]] == [("human", text)]
        job = turns["pending_job"]
        assert job["status"] == "queued" and job["attempts"] == 0
    finally:
        deployment.redis.start()
    row = wait_job(deployment.app, job["id"], timeout=180)
    assert row["status"] == "done", row
    assert len(ai_turns(deployment.app, turns["turns"][0]["id"])) == 1
    assert http_json(deployment.port, "GET", "/api/v1/ready")[0] == 200


def test_postgres_restart_needs_no_app_restart(deployment: Deployment) -> None:
    """After the PostgreSQL cluster restarts, do web and worker carry on without a restart?"""
    data = seed(deployment.app, writers=2, stories=1, max_new_tokens=16)
    story_id, tokens = data["story_ids"][0], data["tokens"]
    status, body, _ = post_turn(deployment.port, story_id, tokens[0], "Before the restart.", 0)
    assert status == 202, body
    assert wait_job(deployment.app, body["job"]["id"])["status"] == "done"

    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=180,
    )
    wait_for(
        lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0,
        120,
        "PostgreSQL to accept connections again",
        interval=0.5,
    )
    # Every pooled connection of the web and worker processes is dead now; pool_pre_ping
    # replaces them on checkout, so the first request already succeeds.
    status, body, _ = post_turn(deployment.port, story_id, tokens[1], "After the restart.", 2)
    assert status == 202, body
    row = wait_job(deployment.app, body["job"]["id"], timeout=180)
    assert row["status"] == "done", row
    assert job_row(deployment.app, body["job"]["id"])["attempts"] == 1
