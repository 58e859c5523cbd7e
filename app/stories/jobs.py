"""Job state changes called by the runners: claim, complete, fail, requeue.

Every change takes the story lock first, so completing a job and appending its
AI turn happen in one transaction and a double delivery never doubles a turn.
"""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import utcnow
from app.extensions import db
from app.generation.events import publish
from app.stories.models import PENDING_STATES, GenerationJob, Turn
from app.stories.relay import add_turn, lock_story
from app.stories.serialize import job_dict, turn_dict

MAX_JOB_ATTEMPTS = 3


def claim_job(job_id: int, worker: str, reclaim_running: bool = False) -> GenerationJob | None:
    """Mark a job running and count the attempt; None if it is not ours to run.

    A job past MAX_JOB_ATTEMPTS is failed here instead of looping forever.
    """
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        return None
    lock_story(job.story_id)
    db.session.refresh(job)
    runnable = job.status == "queued" or (reclaim_running and job.status == "running")
    if not runnable:
        db.session.rollback()
        return None
    if job.attempts >= MAX_JOB_ATTEMPTS:
        _fail(job, f"Gave up after {job.attempts} attempts.")
        db.session.commit()
        publish(job.story_id, "generation_failed", job=job_dict(job))
        return None
    job.status, job.worker = "running", worker
    job.attempts += 1
    job.started_at = utcnow()
    db.session.commit()
    publish(job.story_id, "generation_started", job=job_dict(job))
    return job


def complete_job(job_id: int, text: str, held_reason: str | None = None) -> Turn | None:
    """Append the job's AI turn and mark it done, in one transaction; idempotent.

    With held_reason (the content filter caught the output) the turn is stored
    held: moderators see it, readers and the model's context don't, and the
    story carries on.
    """
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        return None
    story = lock_story(job.story_id)
    db.session.refresh(job)
    if job.status == "done":
        turn = job.turn
        db.session.rollback()
        return turn
    if job.status == "failed":
        db.session.rollback()
        return None
    turn = add_turn(
        story,
        kind="ai",
        text=text,
        reply_to_id=job.reply_to_id,
        model_key=story.model_key,
        held=held_reason is not None,
        held_reason=held_reason,
    )
    job.status, job.turn_id, job.finished_at, job.error = "done", turn.id, utcnow(), None
    db.session.commit()
    if turn.held:
        publish(story.id, "turn_held", position=turn.position, turn_id=turn.id)
    else:
        publish(story.id, "turn_created", turn=turn_dict(turn), job=job_dict(job))
    publish(story.id, "generation_done", job=job_dict(job))
    return turn


def fail_job(job_id: int, message: str) -> None:
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        return
    lock_story(job.story_id)
    db.session.refresh(job)
    if job.status in ("done", "failed"):
        db.session.rollback()
        return
    _fail(job, message)
    db.session.commit()
    publish(job.story_id, "generation_failed", job=job_dict(job))


def requeue_job(job_id: int) -> bool:
    """Put a running job back to queued (its worker died); False if not running."""
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        return False
    lock_story(job.story_id)
    db.session.refresh(job)
    if job.status != "running":
        db.session.rollback()
        return False
    job.status = "queued"
    db.session.commit()
    return True


def unfinished_job_ids() -> list[int]:
    return list(
        db.session.scalars(
            select(GenerationJob.id)
            .where(GenerationJob.status.in_(PENDING_STATES))
            .order_by(GenerationJob.id)
        )
    )


def _fail(job: GenerationJob, message: str) -> None:
    job.status, job.error, job.finished_at = "failed", message, utcnow()
