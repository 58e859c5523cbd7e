"""When a job's generation stops early: the runner shutting down, or the job withdrawn.

A paragraph hidden, edited or undone while its answer is being written withdraws
the job (app/stories/jobs.py withdraw_answers): the job fails at once, and the
generation still running for it is cut short here, so a local engine frees its
rows and a remote model server sees its request closed mid-stream (llama.cpp,
vLLM and TGI stop generating when the client goes). The database is asked at
most every WITHDRAWN_POLL_SECONDS, on a connection of its own: the job's session
stays closed while the model runs.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.stories.jobs import requeue_job
from app.stories.models import GenerationJob, JobStatus

WITHDRAWN_POLL_SECONDS = 0.5


class JobStop:
    """should_stop() for one running job: true once the runner stops or the job is no
    longer running (withdrawn, or its story deleted)."""

    def __init__(self, job_id: int, runner_stop: Any = None) -> None:
        self.job_id = job_id
        self.runner_stop = runner_stop
        self.withdrawn = False
        self._next_check = time.monotonic() + WITHDRAWN_POLL_SECONDS

    def __call__(self) -> bool:
        if self.withdrawn or (self.runner_stop is not None and self.runner_stop()):
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + WITHDRAWN_POLL_SECONDS
        with db.engine.connect() as connection:
            status = connection.execute(
                select(GenerationJob.status).where(GenerationJob.id == self.job_id)
            ).scalar()
        self.withdrawn = status != JobStatus.RUNNING
        return self.withdrawn


def stopped(job_id: int, should_stop: Any) -> str:
    """The job's outcome when its generation was cut short: a withdrawn job is left as it
    is ("skipped"); a runner shutting down puts it back in the queue ("interrupted")."""
    if isinstance(should_stop, JobStop) and should_stop.withdrawn:
        return "skipped"
    requeue_job(job_id)  # shutting down: the next start resumes it
    return "interrupted"
