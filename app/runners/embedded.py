"""The embedded runner: generation threads inside the web process (the JobQueue of embedded mode).

`submit(job_id)` only carries an id; the GenerationJob row is the truth. The
threads start lazily, in the process that serves requests (first submit or
first request), never in a reloader parent or a forking master, and only when
RELAY_START_RUNNER is on. On start they resume what a crash left behind:
queued jobs, and running jobs whose worker process is gone. While idle they
poll the database for queued jobs whose submit was lost (a CLI requeue, a
restart), so nothing waits forever.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)

_STOP = object()


class EmbeddedRunner:
    """A small pool of daemon threads executing jobs with app.runners.execute.run_job."""

    in_process = True  # the CLI must not start threads of its own through it

    def __init__(
        self,
        app: Flask,
        workers: int = 1,
        poll_seconds: float = 5.0,
        deadline_seconds: float = 15.0,
    ) -> None:
        self.app = app
        self.deadline_seconds = deadline_seconds
        self.enabled = bool(app.config.get("RELAY_START_RUNNER", True))
        self.workers = max(1, workers)
        self.poll_seconds = poll_seconds
        self._queue: queue.Queue[Any] = queue.Queue()
        self._queued: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None

    # --- JobQueue -------------------------------------------------------------

    def submit(self, job_id: int) -> None:
        """Hand a job to the threads; with the runner off it waits in the database."""
        if not self.enabled:
            log.debug("runner off: job %s stays queued in the database", job_id)
            return
        self.start()
        self._put(job_id, reclaim=False)

    # --- life cycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._pid == os.getpid() and any(t.is_alive() for t in self._threads)

    def start(self) -> bool:
        """Start the threads in this process if they are not running; True if it started them."""
        if not self.enabled or self.running:
            return False
        with self._lock:
            if self.running:
                return False
            self._stop.clear()
            self._queue = queue.Queue()  # drop stop markers; the database still holds every job
            self._queued.clear()
            self._pid = os.getpid()  # after a fork the parent's threads do not exist here
            self._threads = [
                threading.Thread(target=self._loop, args=(i == 0,), name=f"relay-runner-{i}")
                for i in range(self.workers)
            ]
            self._threads.append(threading.Thread(target=self._deadlines, name="relay-deadlines"))
            for thread in self._threads:
                thread.daemon = True
                thread.start()
        log.info("generation runner started with %s thread(s)", self.workers)
        return True

    def ensure_started(self) -> None:
        """before_request hook: cheap when already running."""
        if self.enabled and not self.running:
            self.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads (a generation in progress ends and its job is requeued)."""
        self._stop.set()
        for _ in range(self.workers):
            self._queue.put(_STOP)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self._threads = []

    def should_stop(self) -> bool:
        return self._stop.is_set()

    # --- threads --------------------------------------------------------------

    def _put(self, job_id: int, reclaim: bool) -> None:
        with self._lock:
            if job_id in self._queued and not reclaim:
                return
            self._queued.add(job_id)
        self._queue.put((job_id, reclaim))

    def _loop(self, resume: bool) -> None:
        if resume:
            self._guarded(self._resume)
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=self.poll_seconds)
            except queue.Empty:
                self._guarded(self._poll)
                continue
            if item is _STOP:
                break
            job_id, reclaim = item
            with self._lock:
                self._queued.discard(job_id)
            self._guarded(self._run, job_id, reclaim)

    def _deadlines(self) -> None:
        """The deadline thread: settle the relay's passed deadlines (app/stories/deadlines.py)
        every deadline_seconds, whether or not the generation threads are busy."""
        from app.stories.deadlines import run_deadlines

        while not self._stop.wait(self.deadline_seconds):
            self._guarded(run_deadlines)

    def _guarded(self, fn: Any, *args: Any) -> None:
        """Run fn in an app context; nothing it raises may kill the thread."""
        try:
            with self.app.app_context():
                try:
                    fn(*args)
                finally:
                    from app.extensions import db

                    db.session.remove()
        except Exception:
            log.exception("generation runner: %s failed", getattr(fn, "__name__", fn))

    def _run(self, job_id: int, reclaim: bool) -> None:
        from app.runners.execute import run_job

        run_job(job_id, reclaim_running=reclaim, should_stop=self.should_stop)

    def _resume(self) -> None:
        """Queue what a crash left: queued jobs, and running ones whose worker is gone."""
        from app.extensions import db
        from app.stories.jobs import unfinished_job_ids
        from app.stories.models import GenerationJob, JobStatus

        for job_id in unfinished_job_ids():
            job = db.session.get(GenerationJob, job_id)
            if job is None:
                continue
            running = job.status == JobStatus.RUNNING
            if running and worker_alive_elsewhere(job.worker):
                continue
            log.info("resuming job %s (%s)", job_id, job.status)
            self._put(job_id, reclaim=running)

    def _poll(self) -> None:
        from sqlalchemy import select

        from app.extensions import db
        from app.stories.models import GenerationJob, JobStatus

        ids = db.session.scalars(
            select(GenerationJob.id)
            .where(GenerationJob.status == JobStatus.QUEUED)
            .order_by(GenerationJob.id)
            .limit(100)
        )
        for job_id in ids:
            self._put(job_id, reclaim=False)


def worker_alive_elsewhere(worker: str | None) -> bool:
    """True when `worker` (host:pid:thread) is still alive: a live process on this host,
    or a live runner thread of this process."""
    if not worker:
        return False
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        # Another machine, or this one restarted under a new hostname (a container):
        # reclaim. complete_job keeps the AI turn single even if the old worker lives.
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        # This process: alive while the runner thread that claimed it still runs (a sibling
        # thread mid-job must not have its job resumed a second time).
        thread_name = rest.partition(":")[2]
        return any(t.name == thread_name and t.is_alive() for t in threading.enumerate())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
