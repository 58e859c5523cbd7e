"""What one viewer may see and do on a story page: the hint, the buttons, the job state.

Computed from app/stories/rules.py and reads.py only, so the page offers an
action exactly when the relay would allow it.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from app.accounts.models import User
from app.extensions import db
from app.stories import candidates, rules, skips
from app.stories.models import FinishReason, JobStatus, Story
from app.stories.reads import (
    awaiting_review,
    last_human_author,
    last_turn,
    latest_job,
    next_writer_id,
    participant,
    pending_job,
)
from app.stories.serialize import _iso, job_dict


def story_state(story: Story, user: User | None) -> dict[str, Any]:
    """Who may write next, whether the model is writing, what the viewer may regenerate."""
    pending = pending_job(story)
    job = latest_job(story)
    latest = last_turn(story)
    failed = job if job is not None and job.status == JobStatus.FAILED else None
    if failed is not None and (latest is None or latest.id != failed.reply_to_id):
        failed = None  # an old failure, already followed by other turns
    if failed is not None and failed.finish_reason == FinishReason.WITHDRAWN:
        failed = None  # its paragraph was withdrawn (or hidden): no error to show
    awaiting = awaiting_review(story)
    return {
        "last_position": story.last_position,
        "status": story.status,
        "pending_job": job_dict(pending) if pending else None,
        "failed_job": job_dict(failed) if failed else None,
        "awaiting_review": awaiting,
        "hint": whose_turn(story, user, pending is not None, awaiting),
        "can_write": rules.may_write(story, user),
        "regenerate_position": rules.regenerable_position(story, user),
        "editable_position": rules.editable_position(story, user),
        **_deadline(story, user, waiting=pending is not None or awaiting),
        **candidates.page_state(story, user),  # the candidate picker and the alternates
    }


def _deadline(story: Story, user: User | None, waiting: bool) -> dict[str, Any]:
    """Round robin: when the current writer's time ends (not while the model writes or a
    moderator reviews: the clock starts again after), and the recent skips."""
    if story.policy != "round_robin":
        return {"turn_due_at": None, "deadline": None, "skips": []}
    writer = next_writer_id(story) if story.turn_due_at and not waiting else None
    return {
        "turn_due_at": _iso(story.turn_due_at),
        "deadline": skips.deadline_sentence(story, user, writer),
        "skips": skips.skip_dicts(story),
    }


def whose_turn(story: Story, user: User | None, pending: bool, awaiting: bool) -> str:
    """One sentence saying who writes next."""
    if story.status != "open":
        if story.status == "locked":
            return _("This story is locked; it takes no more turns.")
        return _("This story is finished; it takes no more turns.")
    if pending and pending_job(story).status == JobStatus.CHOOSING:
        return _("The model wrote several candidates; one is being chosen.")
    if pending:
        return _("The model is writing its turn…")
    if awaiting:
        return _("The last paragraph is waiting for a moderator's review.")
    if user is None:
        return _("Sign in to write the next paragraph.")
    if story.policy == "round_robin":
        if participant(story, user) is None:
            return _("Join this story to take part in its round.")
        next_id = next_writer_id(story)
        if next_id == user.id:
            return _("It is your turn.")
        writer = db.session.get(User, next_id) if next_id else None
        if writer is None:
            return _("Waiting for the next writer.")
        return _("It is %(name)s's turn.", name=writer.username)
    if last_human_author(story) == user.id:
        return _("You wrote the last paragraph; someone else goes next.")
    return _("Anyone signed in may write the next paragraph.")
