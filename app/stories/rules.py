"""Every "may I?" of the relay: write the next paragraph, regenerate, manage a story.

Each rule is one function that raises the error the writer sees (a
RelayError with a stable code); `may_write` and `regenerable_position` ask the
same functions for the page's buttons, so a button is offered exactly when
the action would be allowed.

- A story takes turns only while open.
- A writer's expected_position must be the story's last_position (409
  stale_position with the paragraphs they missed, counted as readers count).
- While the model writes (a pending job), its candidates await a choice, or the
  last paragraph awaits a moderator, no human turn is taken.
- Open policy: anyone signed in, but not twice in a row; round robin: the
  participants in join order.
- A story holds TURNS_PER_STORY_MAX turns; the job queue QUEUE_MAX pending jobs.
- Regenerate: the latest, visible turn; an AI answer, or the writer's own
  paragraph whose answer failed; by that paragraph's writer or a moderator.
- Edit / withdraw: the writer's own latest visible paragraph, until the model's
  answer to it is final (done); undo: the owner or a moderator withdraws the last
  paragraph with its answers; chapters: the owner or a moderator, at a visible turn.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from app.accounts.models import User
from app.errors import Conflict, Forbidden, Invalid, Unavailable
from app.extensions import db
from app.inputs import decimal
from app.stories.models import PENDING_STATES, GenerationJob, JobStatus, Story, Turn
from app.stories.reads import (
    awaiting_review,
    last_human_author,
    last_turn,
    latest_job,
    next_writer_id,
    participant,
    pending_job,
    turn_at,
    visible_turns,
)
from app.stories.serialize import job_dict, turn_dicts
from app.stories.validation import model_for


def require_writer(user: User | None) -> None:
    if user is None or not user.is_authenticated:
        raise Forbidden(_("Sign in to write."), code="unauthorized")
    if user.is_suspended:
        raise Forbidden(_("Your account is suspended."), code="suspended")


def require_moderator(user: User) -> None:
    if not user.is_moderator:
        raise Forbidden(_("Moderators only."))


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden(_("Admins only."))


def can_manage(story: Story, user: User | None) -> bool:
    """The owner and moderators rename, lock, finish and delete a story."""
    return user is not None and (user.id == story.owner_id or user.is_moderator)


def require_manager(story: Story, user: User) -> None:
    if not can_manage(story, user):
        db.session.rollback()
        raise Forbidden(_("Only the story's owner or a moderator can do that."))


def check_settings(story: Story, actor: User, fields: dict[str, Any]) -> None:
    """What a story's settings may become: its language stays (its model writes in it), a
    new model writes that language, the opening changes only before the first turn, and a
    fork of a story that was not public becomes public only by that story's owner."""
    if fields.get("language", story.language) != story.language:
        message = _("A story's language cannot change after it starts: its model writes in it.")
        raise Invalid(message, field="language")
    if "model_key" in fields:
        fields["model_key"] = model_for(story.language, fields["model_key"] or story.language)
    if "opening" in fields and fields["opening"] != story.opening and story.last_position > 0:
        raise Conflict(
            _("The opening can only change before the first turn."), code="opening_locked"
        )
    if fields.get("visibility") == "public" and story.visibility != "public":
        source = db.session.get(Story, story.forked_from_id) if story.forked_from_id else None
        if source is not None and source.visibility != "public" and actor.id != source.owner_id:
            raise Forbidden(
                _("Only the owner of the story this was forked from can make it public."),
                code="fork_private",
            )


def expected_position(value: Any) -> int:
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        number = decimal(value)
    if number is None:
        raise Invalid(_("expected_position must be an integer."), field="expected_position")
    if number < 0:
        raise Invalid(_("expected_position must be 0 or more."), field="expected_position")
    return number


def check_writable(story: Story, user: User, expected: int) -> None:
    """Everything that must hold for `user` to append a paragraph at `expected`."""
    check_open(story)
    check_position(story, expected)
    check_not_waiting(story)
    check_write_access(story, user)
    check_turn_order(story, user)
    check_room(story)
    check_queue_room()


def may_write(story: Story, user: User | None) -> bool:
    """Whether `user` could write the next paragraph now (the page's button)."""
    if user is None:
        return False
    try:
        check_open(story)
        check_not_waiting(story)
        check_write_access(story, user)
        check_turn_order(story, user)
        check_room(story)
    except Conflict:
        return False
    return True


def check_open(story: Story) -> None:
    if story.status != "open":
        message = (
            _("The story is locked.") if story.status == "locked" else _("The story is finished.")
        )
        raise Conflict(message, code=f"story_{story.status}")


def check_position(story: Story, expected: int) -> None:
    if expected == story.last_position:
        return
    missed = turn_dicts(visible_turns(story, since=min(expected, story.last_position)))
    if expected < story.last_position:  # counted as readers count: visible paragraphs
        new = len(missed)
        message = (
            ngettext(
                "The story moved on: %(num)d new paragraph since you looked (shown now). "
                "Read them, then send yours again.",
                "The story moved on: %(num)d new paragraphs since you looked (shown now). "
                "Read them, then send yours again.",
                new,
            )
            if new
            else _("The story changed since you looked. Send your paragraph again.")
        )
    else:
        message = _("The story is not that long: reload it and send your paragraph again.")
    raise Conflict(message, code="stale_position", last_position=story.last_position, missed=missed)


def check_not_waiting(story: Story) -> None:
    """No human turn while a moderator reviews the last paragraph or the model writes."""
    if awaiting_review(story):
        raise Conflict(
            _("The last paragraph is waiting for a moderator's review."), code="awaiting_review"
        )
    job = pending_job(story)
    if job is not None and job.status == JobStatus.CHOOSING:
        raise Conflict(
            _("The model's candidates are waiting to be chosen; wait for the choice."),
            code="choice_pending",
            job=job_dict(job),
        )
    if job is not None:
        raise Conflict(
            _("The model is still writing its turn; wait for it to finish."),
            code="generation_pending",
            job=job_dict(job),
        )


def check_write_access(story: Story, user: User) -> None:
    """Who writes: anyone signed in (writing joins), or those who joined (an "invited
    only" story is joined through an invitation)."""
    if story.write_access == "anyone" or participant(story, user) is not None:
        return
    if story.write_access == "invited":
        raise Conflict(
            _("Only invited writers take part in this story."), code="invitation_required"
        )
    raise Conflict(_("Join this story to write in it."), code="not_a_participant")


def check_may_join(story: Story, user: User) -> None:
    """Joining without an invitation: not where only invited writers take part (nor a
    private story, which only its participants can see), nor a finished one."""
    if story.status == "finished":
        raise Conflict(_("The story is finished."), code="story_finished")
    if story.write_access == "invited" or story.visibility == "private":
        raise Conflict(
            _("Only invited writers take part in this story."), code="invitation_required"
        )


def check_turn_order(story: Story, user: User) -> None:
    if story.policy == "round_robin":
        if participant(story, user) is None:
            raise Conflict(
                _("Join this story to take part in its round."), code="not_a_participant"
            )
        if next_writer_id(story) != user.id:
            raise Conflict(_("It is another participant's turn."), code="not_your_turn")
        return
    if last_human_author(story) == user.id:
        raise Conflict(
            _("You wrote the last paragraph; let someone else go next."), code="not_your_turn"
        )


def check_room(story: Story) -> None:
    if story.last_position + 2 > current_app.config["TURNS_PER_STORY_MAX"]:
        raise Conflict(_("This story has reached its turn limit."), code="story_full")


def check_queue_room() -> None:
    queued = db.session.scalar(
        select(func.count(GenerationJob.id)).where(GenerationJob.status.in_(PENDING_STATES))
    )
    if queued >= current_app.config["QUEUE_MAX"]:
        raise Unavailable(
            _("The model is busy; try again shortly."), retry_after=10, code="queue_full"
        )


def check_regenerable(story: Story, position: int, user: User) -> tuple[Turn, Turn]:
    """The turn at `position` may be asked again by `user`: (that turn, the paragraph it
    answers). Raises the reason otherwise."""
    check_open(story)
    check_not_waiting(story)
    turn = turn_at(story, position)
    if turn.position != story.last_position or turn.hidden or turn.held:
        raise Conflict(_("Only the latest turn can be regenerated."), code="not_latest")
    human = turn if turn.kind == "human" else db.session.get(Turn, turn.reply_to_id)
    if human is None or (human.author_id != user.id and not user.is_moderator):
        raise Forbidden(_("Only the writer of the paragraph it answers can regenerate it."))
    if turn.kind == "human" and not _answer_failed(story, turn):
        raise Conflict(_("This paragraph has no failed answer to retry."), code="not_failed")
    return turn, human


def _answer_failed(story: Story, paragraph: Turn) -> bool:
    job = latest_job(story)
    return job is not None and job.status == JobStatus.FAILED and job.reply_to_id == paragraph.id


def regenerable_position(story: Story, user: User | None) -> int | None:
    """The position `user` may regenerate now, if any (the page's Regenerate button)."""
    last = last_turn(story)
    if user is None or last is None:
        return None
    try:
        check_regenerable(story, last.position, user)
    except (Conflict, Forbidden):
        return None
    return last.position


# --- edit, withdraw, undo, chapters (app/stories/edits.py) ------------------------------


def check_editable(story: Story, position: int, user: User) -> Turn:
    """`user` may edit or withdraw the paragraph at `position`: their own, the latest
    visible one, while the model's answer to it is not final (queued, running, its
    candidates awaiting a choice, or failed; not done). Raises the reason otherwise."""
    check_open(story)
    turn = turn_at(story, position)
    if turn.kind != "human" or turn.author_id != user.id:
        raise Forbidden(
            _("Only the writer of a paragraph can edit or withdraw it."), code="not_your_paragraph"
        )
    if turn.held and not turn.hidden:
        raise Conflict(
            _("The last paragraph is waiting for a moderator's review."), code="awaiting_review"
        )
    if turn.hidden or _shown_after(turn) or _answered(turn):
        raise Conflict(
            _("Only your latest paragraph can change, and only until the model has answered it."),
            code="answer_final",
        )
    return turn


def editable_position(story: Story, user: User | None) -> int | None:
    """The position of the paragraph `user` may edit or withdraw now, if any (the page's
    Edit and Withdraw buttons)."""
    last = last_human_turn(story)
    if user is None or not user.is_authenticated or last is None or last.author_id != user.id:
        return None
    try:
        check_editable(story, last.position, user)
    except (Conflict, Forbidden):
        return None
    return last.position


def check_undoable(story: Story, user: User) -> tuple[Turn, list[Turn]]:
    """The owner (or a moderator) may withdraw the last human–AI pair of an open story:
    (the latest visible paragraph, its visible answers)."""
    require_manager(story, user)
    check_open(story)
    human = last_human_turn(story)
    if human is None:
        raise Conflict(_("There is no paragraph to undo."), code="nothing_to_undo")
    answers = db.session.scalars(
        select(Turn).where(Turn.reply_to_id == human.id, Turn.hidden.is_(False))
    ).all()
    return human, list(answers)


def may_undo(story: Story, user: User | None) -> bool:
    """Whether `user` could withdraw the last pair now (the settings page's Undo button)."""
    if not can_manage(story, user) or story.status != "open":
        return False
    return last_human_turn(story) is not None


def check_chapter(story: Story, position: int, user: User) -> Turn:
    """The owner (or a moderator) marks chapters, at a turn readers see."""
    require_manager(story, user)
    turn = turn_at(story, position)
    if turn.hidden or turn.held:
        raise Conflict(_("A chapter starts at a paragraph readers see."), code="no_visible_turn")
    return turn


def last_human_turn(story: Story) -> Turn | None:
    """The latest human paragraph that is not hidden (held ones included)."""
    return db.session.scalars(
        select(Turn)
        .where(Turn.story_id == story.id, Turn.kind == "human", Turn.hidden.is_(False))
        .order_by(Turn.position.desc())
        .limit(1)
    ).first()


def _shown_after(turn: Turn) -> bool:
    """Whether any turn after `turn` is still in the story (an answer, held or not)."""
    later = select(Turn.id).where(
        Turn.story_id == turn.story_id, Turn.position > turn.position, Turn.hidden.is_(False)
    )
    return db.session.scalars(later.limit(1)).first() is not None


def _answered(turn: Turn) -> bool:
    """Whether the latest job answering `turn` is done (its answer final, even if hidden
    since); a regenerated answer still on its way is not."""
    latest = select(GenerationJob.status).where(GenerationJob.reply_to_id == turn.id)
    status = db.session.scalars(latest.order_by(GenerationJob.id.desc()).limit(1)).first()
    return status == JobStatus.DONE
