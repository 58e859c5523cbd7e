"""The JobQueue interface: how the relay hands a GenerationJob id to a runner.

Embedded mode: a runner thread in the web process (app.runners.embedded).
Scaled mode: a Celery task over Redis. The job row stays the source of truth;
the queue only carries ids.
"""

from __future__ import annotations

from typing import Protocol

from flask import current_app


class JobQueue(Protocol):
    def submit(self, job_id: int) -> None:
        """Schedule the job; may raise app.errors.Unavailable when the broker is down."""


def get_job_queue() -> JobQueue:
    return current_app.extensions["relay.jobs"]
