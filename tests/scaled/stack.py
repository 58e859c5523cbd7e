"""The scaled mode as real processes for the tests and the benchmark: gunicorn web
servers and Celery workers against a PostgreSQL database and a Redis, plus a small
HTTP client, story set-up through the service functions, and a word-only tiny model.

Every process runs in a session of its own, so a test can SIGKILL a whole worker
(main process and pool child) or just the pool child that runs a job.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.http_client import http_json

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CRASH_MARKER = "XYZZY-CRASH-THE-WORKER"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_healthy(process: Any, url: str, timeout: float) -> None:
    """Until GET `url` answers 200: raises once `process` (a Popen) exits or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({process.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 in {timeout:.0f} s")


def start_server(command: list[str], health_url: str, timeout: float) -> Any:
    """Popen `command` (its own session, stderr kept) and wait until `health_url` answers
    200; a server that exits or stays silent raises with the end of its stderr."""
    import subprocess

    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        wait_healthy(process, health_url, timeout)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}: {process.stderr.read()[-3000:]!r}") from None
    return process


def build_word_model(tiny_dir: Path, out: Path) -> Path:
    """The tiny GPT-2 rewired so that every token it writes is a whole English word
    (never end-of-text): every job answers, with exactly max_new_tokens words.
    The same rewiring as tests/api/test_race_api.py's word_model_dir."""
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = GPT2LMHeadModel.from_pretrained(tiny_dir)
    config = model.config
    config.tie_word_embeddings = False
    rewired = GPT2LMHeadModel(config)
    rewired.load_state_dict(model.state_dict(), strict=False)
    vocab = config.vocab_size
    words = [i for i in range(vocab) if re.fullmatch(r" [A-Za-z]{2,}", tokenizer.decode([i]))]
    with torch.no_grad():
        fixed = torch.zeros(config.n_embd)
        fixed[0] = 1.0
        rewired.transformer.ln_f.weight.zero_()
        rewired.transformer.ln_f.bias.copy_(fixed)
        logits = torch.full((vocab,), -20.0)
        logits[words] = torch.linspace(2.0, 4.0, len(words))
        rewired.lm_head.weight.zero_()
        rewired.lm_head.weight[:, 0] = logits
    rewired.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Stack:
    """Processes of one scaled deployment; stop_all() ends every one it started."""

    workdir: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, workdir: Path, database_url: str, redis_url: str, model_dir: Path, **extra):
        env = dict(os.environ)
        env.update(
            FLASK_APP="wsgi.py",
            RELAY_RUN_MODE="scaled",
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            RELAY_MODELS=f"en={model_dir},ko={model_dir},tiny={model_dir}",
            SECRET_KEY="scaled-test-secret",
            RATELIMIT_ENABLED="0",
            RELAY_TORCH_THREADS="1",
            RELAY_SWEEP_SECONDS="3",
            TEST_CRASH_MARKER=CRASH_MARKER,
            HF_HUB_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            PYTHONUNBUFFERED="1",
            WEB_THREADS="16",
        )
        env.update({key: str(value) for key, value in extra.items()})
        workdir.mkdir(parents=True, exist_ok=True)
        return cls(workdir, env)

    def _spawn(self, name: str, args: list[str], **env: str) -> Proc:
        log = self.workdir / f"{name}.log"
        handle = open(log, "ab")  # noqa: SIM115 - the child owns it
        popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def migrate(self) -> None:
        subprocess.run(
            [str(BIN / "flask"), "db", "upgrade"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=180,
        )

    def start_web(self, port: int, workers: int = 1, wait: bool = True) -> Proc:
        proc = self._spawn(
            f"web-{port}",
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--no-control-socket", "wsgi:server"],
            BIND=f"127.0.0.1:{port}",
            WEB_CONCURRENCY=str(workers),
        )
        if wait:
            self.wait_web(proc, port)
        return proc

    def wait_web(self, proc: Proc, port: int) -> None:
        def healthy() -> bool:
            assert proc.alive, f"gunicorn on {port} exited:\n{proc.text()[-3000:]}"
            try:
                return http_json(port, "GET", "/api/v1/health", timeout=10)[0] == 200
            except OSError:
                return False

        wait_for(healthy, 180, f"gunicorn on {port}", interval=0.5)

    def start_worker(
        self, name: str, beat: bool = False, wait: bool = True, pool: str = "prefork", jobs: int = 1
    ) -> Proc:
        args = [
            str(BIN / "celery"),
            "-A",
            "tests.scaled.hooked_worker",
            "worker",
            "-n",
            f"{name}@%h",
            "--pool",
            pool,
            "--concurrency",
            str(jobs),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            args += ["-B", "--schedule", str(self.workdir / f"beat-{name}")]
        proc = self._spawn(name, args)
        if wait:
            self.wait_worker_ready(proc)
        return proc

    def wait_worker_ready(self, proc: Proc, children: int = 1, timeout: float = 180) -> None:
        """Until the worker is consuming and `children` pool processes have loaded the model."""

        def ready() -> bool:
            assert proc.alive, f"worker {proc.name} exited:\n{proc.text()[-3000:]}"
            text = proc.text()
            return " ready." in text and text.count("model tiny ready") >= children

        wait_for(ready, timeout, f"worker {proc.name}", interval=0.3)

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=30)

    def stop_all(self) -> None:
        """SIGTERM every process group at once, SIGKILL what is left after 15 s."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        # Also pool processes left in the group of a worker whose main process is gone.
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
        self.procs.clear()

    def tear_down(self, app: Any) -> None:
        """stop_all(), empty the deployment's Redis database, close the test app's pool."""
        import redis

        self.stop_all()
        redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()
        if app is not None:
            from app.extensions import db

            with app.app_context():
                db.engine.dispose()


class SseClient:
    """Reads one story's event stream from a web server (raw HTTP, line by line)."""

    def __init__(self, port: int, story_id: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", f"/api/v1/stories/{story_id}/events")
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()[:500]

    def events(self) -> Any:
        data: list[str] = []
        while True:
            line = self.response.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                yield json.loads("\n".join(data))
                data = []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.sock and self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def seed(app: Any, writers: int = 2, stories: int = 1, **story_fields: Any) -> dict[str, Any]:
    """Writers with API tokens and stories, through the app's own service functions."""
    from app.accounts.models import User
    from app.accounts.service import issue_token, register_user
    from app.extensions import db
    from app.stories.relay import create_story

    tag = os.urandom(3).hex()
    with app.app_context():
        users = [register_user(f"scaled{tag}w{i}", "password123") for i in range(writers)]
        db.session.commit()
        ids = [user.id for user in users]
        tokens = [issue_token(db.session.get(User, uid)) for uid in ids]
        fields = {"title": "Scaled", "language": "en", "opening": "The lighthouse keeper wrote."}
        fields.update(story_fields)
        story_ids = [
            create_story(db.session.get(User, ids[0]), dict(fields)).id for _ in range(stories)
        ]
    return {"user_ids": ids, "tokens": tokens, "story_ids": story_ids}


def post_turn(port: int, story_id: int, token: str, text: str, expected: int) -> Any:
    status, body, headers = http_json(
        port,
        "POST",
        f"/api/v1/stories/{story_id}/turns",
        {"text": text, "expected_position": expected},
        token=token,
    )
    return status, body, headers


def job_row(app: Any, job_id: int) -> dict[str, Any]:
    from app.extensions import db
    from app.stories.models import GenerationJob

    with app.app_context():
        job = db.session.get(GenerationJob, job_id)
        row = {
            "status": job.status,
            "attempts": job.attempts,
            "worker": job.worker,
            "error": job.error,
            "turn_id": job.turn_id,
        }
        db.session.remove()
        return row


def ai_turns(app: Any, reply_to_id: int) -> list[str]:
    """Texts of every AI turn stored as the answer to one human turn (hidden ones too)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.stories.models import Turn

    with app.app_context():
        texts = list(
            db.session.scalars(
                select(Turn.text).where(Turn.reply_to_id == reply_to_id, Turn.kind == "ai")
            )
        )
        db.session.remove()
        return texts


def wait_job(app: Any, job_id: int, timeout: float = 120) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        row = job_row(app, job_id)
        return row if row["status"] in ("done", "failed") else None

    return wait_for(finished, timeout, f"job {job_id} to finish", interval=0.3)
