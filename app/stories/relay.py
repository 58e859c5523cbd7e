"""The relay rules, in one place, for every edge (browser, API, admin, runners).

Positions run 1..n per story with no gaps (hidden turns keep theirs); after
every human turn the model writes exactly one AI turn; while that job is
pending the story takes no other human turn; a stale expected_position gets
409 with the turns the writer missed. Every write takes the story lock first
(app.database.begin_write + SELECT ... FOR UPDATE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import selectinload

from app.accounts.models import User, utcnow
from app.database import begin_write
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from app.extensions import db
from app.generation.events import publish
from app.generation.queue import get_job_queue
from app.inputs import decimal
from app.moderation.filter import check_text
from app.stories.models import PENDING_STATES, GenerationJob, Participant, Story, Turn
from app.stories.serialize import job_dict, turn_dict, turn_dicts
from app.stories.validation import clean_text, story_fields


def get_story(story_id: int) -> Story:
    story = db.session.get(Story, story_id)
    if story is None:
        raise NotFound(f"Story {story_id} does not exist.")
    return story


def lock_story(story_id: int) -> Story:
    """Begin a write transaction holding the story's lock; 404 if it is gone."""
    begin_write()
    story = db.session.execute(
        select(Story).where(Story.id == story_id).with_for_update()
    ).scalar_one_or_none()
    if story is None:
        db.session.rollback()
        raise NotFound(f"Story {story_id} does not exist.")
    return story


def visible_turns(
    story: Story, since: int = 0, include_hidden: bool = False, viewer_id: int | None = None
) -> list[Turn]:
    """Turns after `since` in order. Readers (and the model) never see hidden or held
    turns; a held turn's own writer (viewer_id) sees it; include_hidden shows all."""
    query = select(Turn).where(Turn.story_id == story.id, Turn.position > since)
    if not include_hidden:
        own_held = Turn.author_id == viewer_id if viewer_id is not None else false()
        query = query.where(Turn.hidden.is_(False), or_(Turn.held.is_(False), own_held))
    query = query.options(selectinload(Turn.author))  # one query for the credits, not one per turn
    return list(db.session.scalars(query.order_by(Turn.position)))


def pending_job(story: Story) -> GenerationJob | None:
    return db.session.scalars(
        select(GenerationJob)
        .where(GenerationJob.story_id == story.id, GenerationJob.status.in_(PENDING_STATES))
        .limit(1)
    ).first()


def latest_job(story: Story) -> GenerationJob | None:
    return db.session.scalars(
        select(GenerationJob)
        .where(GenerationJob.story_id == story.id)
        .order_by(GenerationJob.id.desc())
        .limit(1)
    ).first()


def can_manage(story: Story, user: User | None) -> bool:
    return user is not None and (user.id == story.owner_id or user.is_moderator)


# --- stories -----------------------------------------------------------------


def create_story(owner: User, data: dict[str, Any]) -> Story:
    """Validate and create a story; its owner is its first participant."""
    _require_writer(owner)
    fields = story_fields(data)
    story = Story(owner_id=owner.id, **fields)
    db.session.add(story)
    db.session.flush()
    db.session.add(Participant(story_id=story.id, user_id=owner.id))
    db.session.commit()
    return story


def update_story(story_id: int, actor: User, data: dict[str, Any]) -> Story:
    fields = story_fields(data, partial=True)
    story = lock_story(story_id)
    _require_manager(story, actor)
    if fields.get("language", story.language) != story.language:
        raise Invalid("A story's language cannot change after it starts: its model writes in it.",
                      field="language")  # fmt: skip
    for key, value in fields.items():
        setattr(story, key, value)
    story.updated_at = utcnow()
    _audit(story, actor, "story.update", None, fields=sorted(fields))
    db.session.commit()
    publish(story.id, "story_updated", story={"id": story.id, "title": story.title})
    return story


AuditHook = Callable[[Story], None] | None


def set_status(story_id: int, actor: User, status: str, audit: AuditHook = None) -> Story:
    """Open, lock or finish a story; `audit` runs in the same transaction."""
    story = lock_story(story_id)
    _require_manager(story, actor)
    story.status = status
    _audit(story, actor, f"story.status.{status}", audit)
    db.session.commit()
    publish(story.id, "story_updated", story={"id": story.id, "status": status})
    return story


def delete_story(story_id: int, actor: User, audit: AuditHook = None) -> None:
    story = lock_story(story_id)
    _require_manager(story, actor)
    _audit(story, actor, "story.delete", audit, title=story.title)
    db.session.execute(db.delete(GenerationJob).where(GenerationJob.story_id == story.id))
    # AI turns point at the paragraphs they answer (turns.reply_to_id): unlink them first,
    # or deleting the turns in id order breaks that foreign key (a 500 on any answered story).
    db.session.execute(db.update(Turn).where(Turn.story_id == story.id).values(reply_to_id=None))
    db.session.delete(story)
    db.session.commit()


def _audit(story: Story, actor: User, action: str, audit: AuditHook, **details: Any) -> None:
    """Run the caller's audit hook; a moderator acting on someone else's story through
    the ordinary story routes is audited too, so no moderation action goes unrecorded."""
    if audit is not None:
        audit(story)
    elif actor.id != story.owner_id:
        from app.moderation.service import record

        record(actor, action, "story", story.id, "via the story's own settings", **details)


def join_story(story_id: int, user: User) -> Participant:
    """Join a story (idempotent); join order is the round-robin order."""
    _require_writer(user)
    story = lock_story(story_id)
    existing = _participant(story, user)
    if existing is None:
        existing = Participant(story_id=story.id, user_id=user.id)
        db.session.add(existing)
    db.session.commit()
    return existing


def next_writer_id(story: Story) -> int | None:
    """Round robin: the participant after the writer of the last visible human turn."""
    order = [p.user_id for p in story.participants]
    if not order:
        return None
    last = db.session.scalars(
        select(Turn.author_id)
        .where(Turn.story_id == story.id, Turn.kind == "human", Turn.hidden.is_(False))
        .order_by(Turn.position.desc())
        .limit(1)
    ).first()
    if last not in order:
        return order[0]
    return order[(order.index(last) + 1) % len(order)]


# --- turns -------------------------------------------------------------------


def append_human_turn(
    story_id: int, user: User, text: Any, expected_position: Any
) -> tuple[Turn, GenerationJob | None]:
    """Append a writer's paragraph and queue the model's answer to it.

    A paragraph the content filter catches is refused (422) or, with
    FILTER_HUMAN_ACTION=hold, stored held with no job: the story waits for a
    moderator, who restores it (the model then answers) or hides it.
    """
    _require_writer(user)
    text = clean_text(text, "text", current_app.config["PARAGRAPH_MAX_CHARS"])
    expected = _expected_position(expected_position)
    hit = check_text(text, get_story(story_id).language)
    hold = hit is not None and current_app.config["FILTER_HUMAN_ACTION"] == "hold"
    if hit is not None and not hold:
        raise Invalid(
            f"Your paragraph contains {hit.matched!r}, which this site does not allow.",
            code="content_rejected",
            field="text",
        )
    # Refuse a stale or blocked writer before taking the lock, so that under a race the
    # many refusals don't queue on the story's lock ahead of the winner and the runner.
    _check_writable(get_story(story_id), user, expected)
    story = lock_story(story_id)
    try:
        _check_writable(story, user, expected)
        held = {"held": True, "held_reason": f"filter: {hit.value}"} if hold else {}
        turn = add_turn(story, kind="human", text=text, author_id=user.id, **held)
        if _participant(story, user) is None:
            db.session.add(Participant(story_id=story.id, user_id=user.id))
        job = (
            None
            if hold
            else GenerationJob(story_id=story.id, reply_to_id=turn.id, requested_by_id=user.id)
        )
        db.session.add_all([job] if job else [])
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if job is None:
        publish(story.id, "turn_held", position=turn.position, turn_id=turn.id)
        return turn, None
    publish(story.id, "turn_created", turn=turn_dict(turn), job=job_dict(job))
    _submit(job)
    return turn, job


def _check_writable(story: Story, user: User, expected: int) -> None:
    _check_open(story)
    _check_position(story, expected)
    _check_not_pending(story)
    _check_turn_order(story, user)
    _check_room(story)
    _check_queue_room()


def regenerate(story_id: int, position: int, user: User) -> GenerationJob:
    """Ask the model again for the answer at `position` (kept, hidden, in the history).

    `position` is the latest turn: an AI turn answering the user's paragraph, or
    the user's own paragraph whose AI turn failed (a retry).
    """
    _require_writer(user)
    story = lock_story(story_id)
    try:
        _check_open(story)
        _check_not_pending(story)
        turn = _turn_at(story, position)
        if turn.position != story.last_position or turn.hidden:
            raise Conflict("Only the latest turn can be regenerated.", code="not_latest")
        human = turn if turn.kind == "human" else db.session.get(Turn, turn.reply_to_id)
        if human is None or (human.author_id != user.id and not user.is_moderator):
            raise Forbidden("Only the writer of the paragraph it answers can regenerate it.")
        if turn.kind == "ai":
            _hide(turn, user, "regenerated")
        job = GenerationJob(story_id=story.id, reply_to_id=human.id, requested_by_id=user.id)
        db.session.add(job)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if turn.kind == "ai":
        publish(story.id, "turn_hidden", position=turn.position, turn_id=turn.id)
    publish(story.id, "generation_queued", job=job_dict(job))
    _submit(job)
    return job


def set_hidden(
    turn_id: int,
    actor: User,
    hidden: bool,
    reason: str,
    audit: Callable[[Story, Turn], None] | None = None,
) -> Turn:
    """Hide or restore a turn (moderation), recorded on the row and pushed to readers.

    Restoring a held paragraph that ends the story queues the model's answer to
    it; `audit` runs inside the same transaction (moderation's audit row).
    """
    found = db.session.get(Turn, turn_id)
    if found is None:
        raise NotFound(f"Turn {turn_id} does not exist.")
    story = lock_story(found.story_id)
    turn = db.session.get(Turn, turn_id)
    job = None
    if hidden:
        _hide(turn, actor, reason)
    else:
        job = _answer_if_awaiting(story, turn, actor)
        turn.hidden, turn.hidden_reason, turn.held, turn.held_reason = False, None, False, None
        turn.hidden_by_id, turn.hidden_at = actor.id, utcnow()
    if audit is not None:
        audit(story, turn)
    db.session.commit()
    event = "turn_hidden" if hidden else "turn_restored"
    publish(story.id, event, position=turn.position, turn_id=turn.id, turn=turn_dict(turn))
    if job is not None:
        publish(story.id, "generation_queued", job=job_dict(job))
        _submit(job)
    return turn


def _answer_if_awaiting(story: Story, turn: Turn, actor: User) -> GenerationJob | None:
    """A held human paragraph at the end of the story gets its AI turn once approved."""
    if not (turn.held and turn.kind == "human" and turn.position == story.last_position):
        return None
    job = GenerationJob(story_id=story.id, reply_to_id=turn.id, requested_by_id=actor.id)
    db.session.add(job)
    db.session.flush()
    return job


# --- internals ----------------------------------------------------------------


def _require_writer(user: User | None) -> None:
    if user is None or not user.is_authenticated:
        raise Forbidden("Sign in to write.", code="unauthorized")
    if user.is_suspended:
        raise Forbidden("Your account is suspended.", code="suspended")


def _require_manager(story: Story, user: User) -> None:
    if not can_manage(story, user):
        db.session.rollback()
        raise Forbidden("Only the story's owner or a moderator can do that.")


def _participant(story: Story, user: User) -> Participant | None:
    return db.session.scalars(
        select(Participant).where(Participant.story_id == story.id, Participant.user_id == user.id)
    ).first()


def _expected_position(value: Any) -> int:
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        number = decimal(value)
    if number is None:
        raise Invalid("expected_position must be an integer.", field="expected_position")
    if number < 0:
        raise Invalid("expected_position must be 0 or more.", field="expected_position")
    return number


def _check_open(story: Story) -> None:
    if story.status != "open":
        raise Conflict(f"The story is {story.status}.", code=f"story_{story.status}")


def _check_position(story: Story, expected: int) -> None:
    if expected != story.last_position:
        missed = [*turn_dicts(visible_turns(story, since=min(expected, story.last_position)))]
        if expected < story.last_position:  # counted as readers count: visible paragraphs
            new = len(missed)
            message = (
                f"The story moved on: {new} new paragraph{'s' if new != 1 else ''} since you "
                "looked (shown now). Read them, then send yours again."
                if new
                else "The story changed since you looked. Send your paragraph again."
            )
        else:
            message = "The story is not that long: reload it and send your paragraph again."
        raise Conflict(
            message,
            code="stale_position",
            last_position=story.last_position,
            missed=missed,
        )


def _check_not_pending(story: Story) -> None:
    last = db.session.scalars(
        select(Turn).where(Turn.story_id == story.id, Turn.position == story.last_position)
    ).first()
    if last is not None and last.held and not last.hidden and last.kind == "human":
        raise Conflict(
            "The last paragraph is waiting for a moderator's review.", code="awaiting_review"
        )
    job = pending_job(story)
    if job is not None:
        raise Conflict(
            "The model is still writing its turn; wait for it to finish.",
            code="generation_pending",
            job=job_dict(job),
        )


def may_write(story: Story, user: User) -> bool:
    """Whether the turn order and the story's size let `user` write next (the page's button)."""
    try:
        _check_turn_order(story, user)
        _check_room(story)
    except Conflict:
        return False
    return True


def _check_turn_order(story: Story, user: User) -> None:
    if story.policy == "round_robin":
        if _participant(story, user) is None:
            raise Conflict("Join this story to take part in its round.", code="not_a_participant")
        if next_writer_id(story) != user.id:
            raise Conflict("It is another participant's turn.", code="not_your_turn")
        return
    last_human = db.session.scalars(
        select(Turn.author_id)
        .where(Turn.story_id == story.id, Turn.kind == "human", Turn.hidden.is_(False))
        .order_by(Turn.position.desc())
        .limit(1)
    ).first()
    if last_human == user.id:
        raise Conflict(
            "You wrote the last paragraph; let someone else go next.", code="not_your_turn"
        )


def _check_room(story: Story) -> None:
    if story.last_position + 2 > current_app.config["TURNS_PER_STORY_MAX"]:
        raise Conflict("This story has reached its turn limit.", code="story_full")


def _check_queue_room() -> None:
    queued = db.session.scalar(
        select(func.count(GenerationJob.id)).where(GenerationJob.status.in_(PENDING_STATES))
    )
    if queued >= current_app.config["QUEUE_MAX"]:
        raise Unavailable(
            "The model is busy; try again shortly.", retry_after=10, code="queue_full"
        )


def _turn_at(story: Story, position: int) -> Turn:
    turn = db.session.scalars(
        select(Turn).where(Turn.story_id == story.id, Turn.position == position)
    ).first()
    if turn is None:
        raise NotFound(f"Story {story.id} has no turn {position}.")
    return turn


def add_turn(story: Story, **fields: Any) -> Turn:
    story.last_position += 1
    story.updated_at = utcnow()
    if fields.get("held_reason"):
        fields["held_reason"] = _fits(fields["held_reason"], Turn.held_reason)
    turn = Turn(story_id=story.id, position=story.last_position, **fields)
    db.session.add(turn)
    db.session.flush()
    return turn


def _hide(turn: Turn, actor: User, reason: str) -> None:
    turn.hidden, turn.hidden_reason = True, _fits(reason, Turn.hidden_reason)
    turn.hidden_by_id, turn.hidden_at = actor.id, utcnow()


def _fits(text: str, column: Any) -> str:
    """`text` cut to the column's length (PostgreSQL refuses longer); the audit log keeps a
    moderator's whole reason, the turn shows its start."""
    limit = column.type.length
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _submit(job: GenerationJob) -> None:
    try:
        get_job_queue().submit(job.id)
    except Unavailable:
        # The job row is durable: a runner that comes back picks it up again.
        current_app.logger.warning("job %s queued in the database only", job.id)
        raise


def visible_turn_counts(story_ids: list[int]) -> dict[int, int]:
    """Turns readers see per story (not hidden, not held), in one query: the count the
    story list, the API and the story page all report."""
    if not story_ids:
        return {}
    rows = db.session.execute(
        select(Turn.story_id, func.count(Turn.id))
        .where(Turn.story_id.in_(story_ids), Turn.hidden.is_(False), Turn.held.is_(False))
        .group_by(Turn.story_id)
    )
    counts = dict.fromkeys(story_ids, 0)
    counts.update({story_id: count for story_id, count in rows})
    return counts
