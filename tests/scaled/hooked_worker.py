"""The Celery worker the scaled tests start: `celery -A tests.scaled.hooked_worker worker`.

It is app.runners.worker with two test hooks wrapped around the job runner
(production code has none): TEST_TOKEN_DELAY slows generation down (seconds
per stop check, so a test can act while a turn is being written), and a
paragraph containing TEST_CRASH_MARKER makes the worker process exit while
writing its answer (os._exit, as a SIGKILL or an out-of-memory kill would).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from app.runners import execute
from app.runners.worker import celery, flask_app  # noqa: F401 - what `celery -A` loads

log = logging.getLogger(__name__)
TOKEN_DELAY = float(os.environ.get("TEST_TOKEN_DELAY") or 0)
CRASH_MARKER = os.environ.get("TEST_CRASH_MARKER", "")
_run_job = execute.run_job


def _crashes(job_id: int) -> bool:
    from app.extensions import db
    from app.stories.models import GenerationJob

    job = db.session.get(GenerationJob, job_id)
    text = job.reply_to.text if job is not None and job.reply_to is not None else ""
    db.session.rollback()
    return bool(CRASH_MARKER) and CRASH_MARKER in text


def run_job(job_id: int, *args: Any, **kwargs: Any) -> str:
    crash = _crashes(job_id)
    if crash or TOKEN_DELAY:

        def should_stop() -> bool:  # called between two tokens (or polls of the engine)
            if crash:
                log.error("test hook: job %s crashes its worker", job_id)
                os._exit(70)
            time.sleep(TOKEN_DELAY)
            return False

        kwargs["should_stop"] = should_stop
    return _run_job(job_id, *args, **kwargs)


execute.run_job = run_job
