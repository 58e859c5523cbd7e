"""Every write to a story: create, settings, status, delete, join, turns, hide and restore.

The rules each write enforces are in app/stories/rules.py; what readers see
in app/stories/reads.py; job transitions in app/stories/jobs.py. Every write
takes the story lock first (reads.lock_story: begin_write + SELECT ... FOR
UPDATE). After every human turn the model writes exactly one AI turn; a
paragraph has at most one visible answer. A change made by a moderator (a
`reason` from app/moderation, or someone else's story changed through its own
settings) records its audit row here, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext as _

from app.accounts.models import User, utcnow
from app.database import begin_write
from app.errors import Conflict, Invalid, NotFound, RelayError, Unavailable
from app.extensions import db
from app.live.events import publish
from app.moderation.audit import record
from app.moderation.filter import FilterHit, human_verdict
from app.moderation.reports import resolve_reports
from app.runners.queue import get_job_queue
from app.stories import rules
from app.stories.access import new_share_token, readable_story
from app.stories.append import add_turn, fits
from app.stories.jobs import new_job, withdraw_answers
from app.stories.models import GenerationJob, Participant, Story, Turn
from app.stories.reads import lock_story, participant
from app.stories.rooms import set_tags
from app.stories.serialize import job_dict, turn_dict
from app.stories.skips import restart_clock
from app.stories.validation import clean_text, story_fields

STATUS_ACTIONS = {"open": "story.unlock", "locked": "story.lock", "finished": "story.finish"}

# --- stories -----------------------------------------------------------------


def create_story(owner: User, data: dict[str, Any]) -> Story:
    """Validate and create a story; its owner is its first participant."""
    rules.require_writer(owner)
    fields = story_fields(data)
    tags = fields.pop("tags")
    owner_id = owner.id
    # A write transaction from the start: on SQLite, a read snapshot that another writer
    # has moved past cannot be upgraded to a write ("database is locked" at once).
    begin_write()
    story = Story(owner_id=owner_id, share_token=new_share_token(), **fields)
    restart_clock(story)
    db.session.add(story)
    db.session.flush()
    db.session.add(Participant(story_id=story.id, user_id=owner_id))
    set_tags(story, tags)
    db.session.commit()
    return story


def update_story(story_id: int, actor: User, data: dict[str, Any]) -> Story:
    fields = story_fields(data, partial=True)
    readable_story(story_id, actor)
    story = lock_story(story_id)
    try:
        rules.require_manager(story, actor)
        rules.check_settings(story, actor, fields)
    except RelayError:
        db.session.rollback()
        raise
    tags = fields.pop("tags", None)
    for key, value in fields.items():
        setattr(story, key, value)
    if tags is not None:
        set_tags(story, tags)
    if {"policy", "turn_seconds", "status"} & fields.keys():
        restart_clock(story)
    story.updated_at = utcnow()
    _audit(story, actor, "story.update", None, fields=sorted(fields))
    db.session.commit()
    publish(story.id, "story_updated", story={"id": story.id, "title": story.title})
    return story


def set_status(story_id: int, actor: User, status: str, reason: str | None = None) -> Story:
    """Open, lock or finish a story (a moderator's `reason` is audited)."""
    readable_story(story_id, actor)
    story = lock_story(story_id)
    rules.require_manager(story, actor)
    story.status = status
    restart_clock(story)
    _audit(story, actor, STATUS_ACTIONS[status], reason)
    db.session.commit()
    publish(story.id, "story_updated", story={"id": story.id, "status": status})
    return story


def delete_story(story_id: int, actor: User, reason: str | None = None) -> None:
    readable_story(story_id, actor)
    story = lock_story(story_id)
    rules.require_manager(story, actor)
    _audit(story, actor, "story.delete", reason, title=story.title)
    db.session.execute(db.delete(GenerationJob).where(GenerationJob.story_id == story.id))
    # AI turns point at the paragraphs they answer (turns.reply_to_id): unlink them first,
    # or deleting the turns in id order breaks that foreign key (a 500 on any answered story).
    db.session.execute(db.update(Turn).where(Turn.story_id == story.id).values(reply_to_id=None))
    db.session.delete(story)
    db.session.commit()


def _audit(story: Story, actor: User, action: str, reason: str | None, **details: Any) -> None:
    """A moderation action (reason given) is audited; so is a moderator changing someone
    else's story through its own settings, so no moderation goes unrecorded."""
    if reason is None and actor.id == story.owner_id:
        return
    reason = "via the story's own settings" if reason is None else reason
    record(actor, action, "story", story.id, reason, **details)


def join_story(story_id: int, user: User) -> Participant:
    """Join a story (idempotent); join order is the round-robin order. An "invited only"
    story is joined through an invitation (app/stories/rooms.py accept_invitation)."""
    rules.require_writer(user)
    readable_story(story_id, user)
    story = lock_story(story_id)
    existing = participant(story, user)
    if existing is None:
        try:
            rules.check_may_join(story, user)
        except RelayError:
            db.session.rollback()
            raise
        existing = Participant(story_id=story.id, user_id=user.id)
        db.session.add(existing)
    db.session.commit()
    return existing


# --- turns -------------------------------------------------------------------


def append_human_turn(
    story_id: int, user: User, text: Any, expected_position: Any
) -> tuple[Turn, GenerationJob | None]:
    """Append a writer's paragraph and queue the model's answer to it.

    A paragraph the content filter catches gets its rule's action, made stricter
    by the story's own setting: refused (422), or stored held with no job (the
    story waits for a moderator, who restores it, and the model then answers, or
    hides it), or, for a word allowed in fiction, accepted like any other.
    """
    rules.require_writer(user)
    text = clean_text(text, "text", current_app.config["PARAGRAPH_MAX_CHARS"])
    expected = rules.expected_position(expected_position)
    found = readable_story(story_id, user)
    hit = screen_paragraph(found, text)
    hold = hit is not None and hit.action == "hold"
    # Refuse a stale or blocked writer before taking the lock, so that under a race the
    # many refusals don't queue on the story's lock ahead of the winner and the runner.
    rules.check_writable(found, user, expected)
    story = lock_story(story_id)
    try:
        rules.check_writable(story, user, expected)
        held = {"held": True, "held_reason": f"filter: {hit.value}"} if hold else {}
        turn = add_turn(story, kind="human", text=text, author_id=user.id, **held)
        if participant(story, user) is None:  # write_access "anyone": writing joins
            db.session.add(Participant(story_id=story.id, user_id=user.id))
        job = None if hold else new_job(story, turn, user.id)
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


def screen_paragraph(story: Story, text: str) -> FilterHit | None:
    """The content filter's verdict on a writer's paragraph (an edited one too): a rule
    that rejects it is a 422; one that holds it, or allows it in fiction, is returned."""
    hit = human_verdict(text, story.language, story.filter_strictness)
    if hit is not None and hit.action == "reject":
        raise Invalid(
            _(
                "The content filter does not accept “%(word)s” in this story. "
                "Please put it another way.",
                word=hit.matched,
            ),
            code="content_rejected",
            field="text",
        )
    return hit


def regenerate(story_id: int, position: int, user: User) -> GenerationJob:
    """Ask the model again for the answer at `position` (kept, hidden, in the history);
    or, at the writer's own paragraph whose answer failed, ask again (a retry)."""
    rules.require_writer(user)
    readable_story(story_id, user)
    story = lock_story(story_id)
    try:
        turn, human = rules.check_regenerable(story, position, user)
        if turn.kind == "ai":
            _hide(turn, user, "regenerated")
        job = new_job(story, human, user.id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if turn.kind == "ai":
        publish(story.id, "turn_hidden", position=turn.position, turn_id=turn.id)
    publish(story.id, "generation_queued", job=job_dict(job))
    _submit(job)
    return job


def set_hidden(turn_id: int, actor: User, hidden: bool, reason: str) -> Turn:
    """Hide or restore a turn (a moderator's action, audited with `reason`), pushed to readers.

    Hiding a paragraph withdraws the model's pending answer to it; restoring an
    answer is refused while another answer to the same paragraph is visible;
    restoring a held paragraph that ends the story queues the model's answer.
    The turn's open reports close as actioned (hide) or dismissed (restore).
    """
    rules.require_moderator(actor)
    found = db.session.get(Turn, turn_id)
    if found is None:
        raise NotFound(_("Turn %(id)s does not exist.", id=turn_id))
    story = lock_story(found.story_id)
    turn = db.session.get(Turn, turn_id)
    job, withdrawn = None, []
    try:
        if hidden:
            _hide(turn, actor, reason)
            withdrawn = withdraw_answers(turn)
        else:
            _refuse_second_answer(turn)
            job = _answer_if_awaiting(story, turn, actor)
            turn.hidden, turn.hidden_reason, turn.held, turn.held_reason = False, None, False, None
            turn.hidden_by_id, turn.hidden_at = actor.id, utcnow()
        closed = resolve_reports(turn.id, actor, "actioned" if hidden else "dismissed")
        action = "turn.hide" if hidden else "turn.restore"
        details = {"story_id": story.id, "position": turn.position, "reports_closed": closed}
        record(actor, action, "turn", turn.id, reason, **details)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    event = "turn_hidden" if hidden else "turn_restored"
    publish(story.id, event, position=turn.position, turn_id=turn.id, turn=turn_dict(turn))
    for failed in withdrawn:
        publish(story.id, "generation_failed", job=job_dict(failed))
    if job is not None:
        publish(story.id, "generation_queued", job=job_dict(job))
        _submit(job)
    return turn


def _refuse_second_answer(turn: Turn) -> None:
    """One visible AI answer per paragraph: an answer replaced by a regenerated one stays
    hidden while its replacement is visible."""
    if turn.kind != "ai" or turn.reply_to_id is None:
        return
    other = db.session.scalars(
        db.select(Turn.position).where(
            Turn.reply_to_id == turn.reply_to_id,
            Turn.kind == "ai",
            Turn.id != turn.id,
            Turn.hidden.is_(False),
        )
    ).first()
    if other is not None:
        raise Conflict(
            _(
                "The paragraph this answers already has a visible answer (turn at position "
                "%(position)s); hide that one first.",
                position=other,
            ),
            code="already_answered",
        )


def _answer_if_awaiting(story: Story, turn: Turn, actor: User) -> GenerationJob | None:
    """A held human paragraph at the end of the story gets its AI turn once approved."""
    if not (turn.held and turn.kind == "human" and turn.position == story.last_position):
        return None
    return new_job(story, turn, actor.id)


def _hide(turn: Turn, actor: User, reason: str) -> None:
    turn.hidden, turn.hidden_reason = True, fits(reason, Turn.hidden_reason)
    turn.hidden_by_id, turn.hidden_at = actor.id, utcnow()


def _submit(job: GenerationJob) -> None:
    try:
        get_job_queue().submit(job.id)
    except Unavailable:
        # The job row is durable: a runner that comes back picks it up again.
        current_app.logger.warning("job %s queued in the database only", job.id)
        raise
