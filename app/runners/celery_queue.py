"""The scaled mode's job queue: Celery over Redis, generation in `celery worker` processes.

The web app only sends a job id (`relay.generate`); the GenerationJob row stays
the truth. A delivery decides from the row what to do:

- queued: claim and run it (app/stories/jobs.py's claim_job counts the attempt);
- running, its worker a dead process on this host (a SIGKILLed pool child whose
  message came back through task_reject_on_worker_lost): reclaim it, so the
  attempt count rises and a job that kills its worker every time ends `failed`
  (worker_lost, after MAX_JOB_ATTEMPTS claims);
- running, its worker alive on this host: a duplicate message, dropped;
- running on another host: reclaimed once it is older than RELAY_JOB_STALE_SECONDS,
  otherwise looked at again later;
- done or failed: dropped (complete_job is idempotent anyway).

A Redis key per job (`relay:job:<id>:sent`) marks "a message is in flight and
not yet claimed". The sweep (`relay.sweep`, run by celery beat and at worker
start) resends queued jobs without it (a submit that failed while Redis was
down, a broker that lost its data) and running jobs whose worker is gone.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta
from typing import Any

import redis
from celery import Celery, Task
from celery.exceptions import Retry
from flask import Flask
from flask_babel import lazy_gettext as _l

from app.errors import Unavailable
from app.stories.models import JobStatus

log = logging.getLogger(__name__)

GENERATE_TASK = "relay.generate"
SWEEP_TASK = "relay.sweep"
DEADLINES_TASK = "relay.deadlines"
QUEUE_NAME = "relay.generation"
SENT_KEY = "relay:job:{}:sent"
RECLAIM_KEY = "relay:job:{}:reclaimed-from:{}"
UNAVAILABLE_MESSAGE = _l(
    "The model service is unavailable right now. Your paragraph is saved; "
    "the model will answer when the service is back."
)


def scaled_settings(config: Any) -> dict[str, Any]:
    """The scaled-mode knobs, from the app's typed settings (app/settings.py)."""
    return {
        "redis_url": config["REDIS_URL"],
        "visibility_timeout": int(config["RELAY_VISIBILITY_TIMEOUT"]),
        "stale_seconds": int(config["RELAY_JOB_STALE_SECONDS"]),
        "sweep_seconds": float(config["RELAY_SWEEP_SECONDS"]),
        "deadline_seconds": float(config.get("RELAY_DEADLINE_SECONDS", 15.0)),
        "start_timeout": float(config["RELAY_WORKER_START_TIMEOUT"]),
    }


def make_celery(app: Flask) -> Celery:
    """A Celery app bound to this Flask app, with the generate and sweep tasks."""
    settings = scaled_settings(app.config)
    url = settings["redis_url"]
    celery = Celery("relay", broker=url, backend=url, set_as_current=False)
    celery.conf.update(
        task_default_queue=QUEUE_NAME,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,  # the job row is the result
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=None,
        # A pool process loads every model in worker_process_init; Celery kills one that
        # takes longer than this to report (4 s by default: too short for a model load).
        worker_proc_alive_timeout=settings["start_timeout"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Above the longest generation, or a slow job would be delivered twice.
            "visibility_timeout": settings["visibility_timeout"],
            "socket_connect_timeout": 2,
            "socket_timeout": 10,
        },
        result_backend_transport_options={"socket_connect_timeout": 2},
        beat_schedule={
            "relay-sweep": {"task": SWEEP_TASK, "schedule": settings["sweep_seconds"]},
            "relay-deadlines": {"task": DEADLINES_TASK, "schedule": settings["deadline_seconds"]},
        },
        worker_hijack_root_logger=False,
    )
    _register_tasks(celery, app, settings)
    return celery


class CeleryJobQueue:
    """JobQueue of the scaled mode: submit() sends a message; Unavailable when Redis is down."""

    in_process = False

    def __init__(self, celery: Celery, redis_url: str, visibility_timeout: int) -> None:
        self.celery = celery
        self.visibility_timeout = visibility_timeout
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)

    def submit(self, job_id: int) -> None:
        """Send the job to the workers. The job row is already committed, so on failure
        nothing is lost: the sweep sends it once Redis is back."""
        try:
            # ignore_result: no result-backend subscription per message in the web process.
            self.celery.send_task(GENERATE_TASK, args=[job_id], retry=False, ignore_result=True)
            self.redis.set(SENT_KEY.format(job_id), int(time.time()), ex=self.visibility_timeout)
        except Exception as exc:  # any broker trouble: the row is saved, the sweep resends it
            log.warning("could not send job %s to the workers: %s", job_id, exc)
            raise Unavailable(
                str(UNAVAILABLE_MESSAGE), retry_after=15, code="generation_unavailable"
            ) from exc

    def problem(self) -> str | None:
        """Readiness: None when the broker answers, else what is wrong."""
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            log.warning("readiness: Redis check failed: %s", exc)
            return f"broker unreachable: {type(exc).__name__}"
        return None

    def was_sent(self, job_id: int) -> bool:
        return bool(self.redis.exists(SENT_KEY.format(job_id)))

    def claimed(self, job_id: int) -> None:
        self.redis.delete(SENT_KEY.format(job_id))

    def take_reclaim(self, job_id: int, dead_worker: str | None) -> bool:
        """True for exactly one delivery that takes the job over from `dead_worker`
        (the redelivered message and a sweep's message may arrive at once)."""
        key = RECLAIM_KEY.format(job_id, dead_worker or "-")
        return bool(self.redis.set(key, 1, nx=True, ex=self.visibility_timeout))


def _register_tasks(celery: Celery, app: Flask, settings: dict[str, Any]) -> None:
    @celery.task(name=GENERATE_TASK, bind=True, max_retries=None)
    def generate(self: Task, job_id: int) -> str:
        """Run one GenerationJob (see the module docstring for what a delivery does)."""
        with app.app_context():
            try:
                return _deliver(self, job_id, settings)
            except Retry:
                raise
            except Exception as exc:  # the database is unreachable, say: look again later
                log.warning("job %s: delivery failed (%s); retrying", job_id, exc)
                raise self.retry(exc=exc, countdown=15) from exc
            finally:
                from app.extensions import db

                db.session.remove()

    @celery.task(name=SWEEP_TASK)
    def sweep() -> int:
        """Resend jobs whose message is lost or whose worker died; how many were sent."""
        return sweep_jobs(app)

    @celery.task(name=DEADLINES_TASK)
    def deadlines() -> int:
        """Settle the relay's passed deadlines (app/stories/deadlines.py)."""
        from app.extensions import db
        from app.stories.deadlines import run_deadlines

        with app.app_context():
            try:
                return run_deadlines()
            finally:
                db.session.remove()


def _deliver(task: Task, job_id: int, settings: dict[str, Any]) -> str:
    from app.extensions import db
    from app.runners import execute
    from app.stories.models import GenerationJob

    job = db.session.get(GenerationJob, job_id)
    decision = _decide(job, settings["stale_seconds"])
    if isinstance(decision, float):
        db.session.rollback()
        raise task.retry(countdown=decision)
    if decision == "skip":
        db.session.rollback()
        return "skipped"
    reclaim = decision == "reclaim"
    if reclaim and not _queue().take_reclaim(job_id, job.worker):
        db.session.rollback()
        return "skipped"
    db.session.rollback()  # no transaction stays open while the model runs
    _queue().claimed(job_id)
    # claim_job counts the attempt, and fails a job whose worker died on every one
    return execute.run_job(job_id, reclaim_running=reclaim)


def _decide(job: Any, stale_seconds: int) -> str | float:
    """One of run, reclaim, skip; or the seconds to wait before looking again."""
    from app.accounts.models import utcnow
    from app.runners.embedded import worker_alive_elsewhere

    if job is None or job.status in (JobStatus.DONE, JobStatus.FAILED):
        return "skip"
    if job.status == JobStatus.QUEUED:
        return "run"
    host = (job.worker or "").partition(":")[0]
    if host == socket.gethostname():
        return "skip" if worker_alive_elsewhere(job.worker) else "reclaim"
    started = job.started_at
    if started is None:
        return "reclaim"
    if started.tzinfo is None:
        started = started.replace(tzinfo=utcnow().tzinfo)
    left = (started + timedelta(seconds=stale_seconds) - utcnow()).total_seconds()
    return "reclaim" if left <= 0 else float(min(max(left, 1.0), 300.0))


def sweep_jobs(app: Flask) -> int:
    """Resend queued jobs with no message in flight, and running jobs whose worker is gone."""
    from app.extensions import db
    from app.stories.jobs import unfinished_job_ids
    from app.stories.models import GenerationJob

    queue = app.extensions["relay.jobs"]
    settings = scaled_settings(app.config)
    sent = 0
    with app.app_context():
        try:
            for job_id in unfinished_job_ids():
                job = db.session.get(GenerationJob, job_id)
                if job is None or queue.was_sent(job_id):
                    continue
                if (
                    job.status == JobStatus.RUNNING
                    and _decide(job, settings["stale_seconds"]) != "reclaim"
                ):
                    continue
                db.session.rollback()
                queue.submit(job_id)
                sent += 1
        finally:
            db.session.remove()
    if sent:
        log.info("sweep: sent %s job(s) again", sent)
    return sent


def init_scaled(app: Flask) -> None:
    """The scaled mode's app.extensions: Redis events, the Celery queue, the registry."""
    import threading

    from app.generation.registry import ModelRegistry
    from app.live.redis_events import RedisEventBus

    settings = scaled_settings(app.config)
    celery = make_celery(app)
    closing = threading.Event()
    app.extensions["relay.events"] = RedisEventBus(settings["redis_url"])
    app.extensions["relay.registry"] = ModelRegistry.from_config(app.config)
    app.extensions["relay.generator"] = None
    app.extensions["relay.jobs"] = CeleryJobQueue(
        celery, settings["redis_url"], settings["visibility_timeout"]
    )
    app.extensions["relay.celery"] = celery
    app.extensions["relay.closing"] = closing
    app.extensions["relay.shutdown"] = closing.set  # ends SSE streams; workers stop on their own


def _queue() -> CeleryJobQueue:
    from flask import current_app

    return current_app.extensions["relay.jobs"]
