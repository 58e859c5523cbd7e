"""The job state machine: every GenerationJob transition, its one attempt cap and messages.

    queued --claim--> running --complete--> done     (answered | held)
      |                 |  \\--requeue--> queued      (worker stopping or gone)
      |                 \\--fail-------> failed      (empty | model_error | worker_lost)
      \\--withdraw / fail---------------> failed      (withdrawn | worker_lost)
    failed --retry--> queued                          (an operator's `flask jobs retry`)
    running --await_choice--> choosing --answer--> done  (candidates: app/stories/candidates.py)

Both deliveries (app/runners/embedded.py and app/runners/celery_queue.py) run
jobs through these functions only. Every change takes the story's lock first,
so completing a job and appending its AI turn happen in one transaction and a
double delivery never doubles a turn (complete_job is idempotent).
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from app.accounts.models import utcnow
from app.errors import Conflict, NotFound
from app.extensions import db
from app.live.events import publish
from app.stories.append import add_turn, fits
from app.stories.models import (
    PENDING_STATES,
    WAITING_STATES,
    Candidate,
    FinishReason,
    GenerationJob,
    JobStatus,
    Story,
    Turn,
)
from app.stories.reads import lock_story, pending_job
from app.stories.serialize import job_dict, turn_dict

MAX_JOB_ATTEMPTS = 3  # claims of one job; a worker that dies on every one ends it

MESSAGES = {
    FinishReason.EMPTY: "The model wrote nothing usable twice in a row. "
    "Use Regenerate to try again.",
    FinishReason.MODEL_ERROR: "The model could not write this turn ({detail}). "
    "Use Regenerate to try again.",
    FinishReason.WORKER_LOST: "The generation worker stopped while writing this turn "
    "{attempts} times in a row. Use Regenerate to try again, or write something else.",
    FinishReason.WITHDRAWN: "The paragraph was hidden by a moderator before the model answered it.",
}

_ALLOWED = {
    JobStatus.QUEUED: {JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED},
    JobStatus.RUNNING: {JobStatus.QUEUED, JobStatus.DONE, JobStatus.FAILED, JobStatus.CHOOSING},
    JobStatus.CHOOSING: {JobStatus.DONE, JobStatus.FAILED},
    JobStatus.FAILED: {JobStatus.QUEUED},
    JobStatus.DONE: set(),
}


class IllegalTransition(RuntimeError):
    """A code path asked for a transition the state machine does not have (a bug)."""


def new_job(story: Story, reply_to: Turn, requested_by_id: int | None) -> GenerationJob:
    """A queued job for the AI turn answering `reply_to` (the caller holds the lock)."""
    job = GenerationJob(
        story_id=story.id,
        reply_to_id=reply_to.id,
        requested_by_id=requested_by_id,
        candidates=story.candidates or 1,
    )
    db.session.add(job)
    db.session.flush()
    return job


def _move(
    job: GenerationJob, to: JobStatus, reason: FinishReason | None = None, **detail: object
) -> None:
    """The one place a job's status changes."""
    if to not in _ALLOWED[JobStatus(job.status)]:
        raise IllegalTransition(f"job {job.id}: {job.status} -> {to}")
    job.status, job.finish_reason = to, reason
    if to == JobStatus.RUNNING:
        job.attempts += 1
        job.started_at = utcnow()
    elif to in (JobStatus.DONE, JobStatus.FAILED):
        job.finished_at = utcnow()
        job.error = MESSAGES[reason].format(**detail) if to == JobStatus.FAILED else None
    else:  # queued again
        job.finished_at = None


def _locked(job_id: int) -> GenerationJob | None:
    """The job, re-read under its story's lock; None (nothing locked) if it is gone."""
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        return None
    lock_story(job.story_id)
    db.session.refresh(job)
    return job


def claim_job(job_id: int, worker: str, reclaim_running: bool = False) -> GenerationJob | None:
    """Mark a job running and count the attempt; None if it is not ours to run.

    `reclaim_running` takes over a running job whose worker died. A job that
    has used its MAX_JOB_ATTEMPTS claims fails here (worker_lost) instead of
    looping forever.
    """
    job = _locked(job_id)
    if job is None:
        return None
    runnable = job.status == JobStatus.QUEUED or (
        reclaim_running and job.status == JobStatus.RUNNING
    )
    if not runnable:
        db.session.rollback()
        return None
    if job.attempts >= MAX_JOB_ATTEMPTS:
        _move(job, JobStatus.FAILED, FinishReason.WORKER_LOST, attempts=job.attempts)
        db.session.commit()
        publish(job.story_id, "generation_failed", job=job_dict(job))
        return None
    if job.status == JobStatus.RUNNING:
        _move(job, JobStatus.QUEUED)
    _move(job, JobStatus.RUNNING)
    job.worker = worker
    db.session.commit()
    publish(job.story_id, "generation_started", job=job_dict(job))
    return job


def complete_job(
    job_id: int, text: str, held_reason: str | None = None, flag: str | None = None
) -> Turn | None:
    """Append the job's AI turn and mark it done, in one transaction; idempotent.

    With held_reason (the content filter caught the output) the turn is stored
    held: moderators see it, readers and the model's context don't, and the
    story carries on. None when the job is gone, failed (withdrawn, say) or its
    candidates await a choice (app/stories/candidates.py answers those).
    """
    job = _locked(job_id)
    if job is None:
        return None
    if job.status not in PENDING_STATES:
        turn = job.turn if job.status == JobStatus.DONE else None
        db.session.rollback()
        return turn
    turn = answer_job(job, text, held_reason)
    turn.flag = flag  # "loop": the loop guard's (app/generation/loops.py)
    # Kept as the answer's alternate: a regenerated answer can be switched back to.
    held = held_reason is not None
    db.session.add(
        Candidate(job_id=job.id, story_id=job.story_id, index=0, text=text, held=held,
                  held_reason=fits(held_reason, Candidate.held_reason) if held else None,
                  turn_id=turn.id)
    )  # fmt: skip
    db.session.commit()
    announce_answer(job, turn)
    return turn


def answer_job(job: GenerationJob, text: str, held_reason: str | None = None) -> Turn:
    """Append `job`'s AI turn and mark the job done; the caller holds the lock and commits."""
    story = db.session.get(Story, job.story_id)
    turn = add_turn(
        story,
        kind="ai",
        text=text,
        reply_to_id=job.reply_to_id,
        model_key=story.model_key,
        held=held_reason is not None,
        held_reason=held_reason,
    )
    reason = FinishReason.HELD if held_reason is not None else FinishReason.ANSWERED
    _move(job, JobStatus.DONE, reason)
    job.turn_id = turn.id
    return turn


def announce_answer(job: GenerationJob, turn: Turn) -> None:
    """Tell the story's readers about an answer committed by answer_job."""
    if turn.held:
        publish(job.story_id, "turn_held", position=turn.position, turn_id=turn.id)
    else:
        publish(job.story_id, "turn_created", turn=turn_dict(turn), job=job_dict(job))
    publish(job.story_id, "generation_done", job=job_dict(job))


def await_choice(job: GenerationJob, choose_by: object) -> None:
    """A running job's candidates are written: it waits for a choice until `choose_by`."""
    _move(job, JobStatus.CHOOSING)
    job.choose_by = choose_by


def fail_job(job_id: int, reason: FinishReason, **detail: object) -> None:
    """End a pending job as failed with the message for `reason`; a finished job stays."""
    job = _locked(job_id)
    if job is None:
        return
    if job.status not in WAITING_STATES:
        db.session.rollback()
        return
    _move(job, JobStatus.FAILED, reason, attempts=job.attempts, **detail)
    db.session.commit()
    publish(job.story_id, "generation_failed", job=job_dict(job))


def requeue_job(job_id: int) -> bool:
    """Put a running job back to queued (its worker stopped or died); False if not running."""
    job = _locked(job_id)
    if job is None:
        return False
    if job.status != JobStatus.RUNNING:
        db.session.rollback()
        return False
    _move(job, JobStatus.QUEUED)
    db.session.commit()
    return True


def retry_job(job_id: int) -> GenerationJob:
    """Queue a failed job again with fresh attempts, if its paragraph is still the latest
    and nothing else is pending; a running one is requeued. Conflict otherwise."""
    job = _locked(job_id)
    if job is None:
        raise NotFound(_("No job %(id)s.", id=job_id))
    story = db.session.get(Story, job.story_id)
    if job.status == JobStatus.RUNNING:
        _move(job, JobStatus.QUEUED)
    elif job.status == JobStatus.FAILED:
        latest = job.reply_to is not None and job.reply_to.position == story.last_position
        if not latest or pending_job(story) is not None:
            db.session.rollback()
            raise Conflict(_("Job %(id)s cannot be retried: the story has moved on.", id=job_id))
        _move(job, JobStatus.QUEUED)
        job.attempts, job.error = 0, None
    elif job.status in (JobStatus.DONE, JobStatus.CHOOSING):
        db.session.rollback()
        raise Conflict(
            _("Job %(id)s is done; regenerate the turn instead.", id=job_id), code="job_done"
        )
    db.session.commit()
    publish(story.id, "generation_queued", job=job_dict(job))
    return job


def withdraw_answers(turn: Turn) -> list[GenerationJob]:
    """A hidden paragraph is not answered: its pending jobs fail (withdrawn), in the caller's
    locked transaction; a runner still writing is refused when it tries to complete."""
    jobs = list(
        db.session.scalars(
            select(GenerationJob).where(
                GenerationJob.reply_to_id == turn.id, GenerationJob.status.in_(WAITING_STATES)
            )
        )
    )
    for job in jobs:
        _move(job, JobStatus.FAILED, FinishReason.WITHDRAWN)
    return jobs


def unfinished_job_ids() -> list[int]:
    return list(
        db.session.scalars(
            select(GenerationJob.id)
            .where(GenerationJob.status.in_(PENDING_STATES))
            .order_by(GenerationJob.id)
        )
    )
