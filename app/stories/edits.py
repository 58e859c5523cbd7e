"""Changing turns already written: edit and withdraw a paragraph, undo the last pair, chapters.

A writer may edit or withdraw their own latest paragraph until the model's answer
to it is final (app/stories/rules.py check_editable). An edit keeps the old text,
hidden ("edited"), in the history and appends the new text as a turn of its own
(positions never change; the paragraph numbers readers see have no gaps), so the
model's pending answer is withdrawn and a new one queued for the new turn. The
story's owner (or a moderator) may withdraw the last human–AI pair, and marks where
chapters start (the EPUB export's chapters).

Every change takes the story's lock (reads.lock_story), so an edit racing the
model's answer has exactly one outcome: the answer lands first and the edit is a
409, or the edit lands first and the answer is refused (its job withdrawn). A
moderator changing someone else's story is audited in the same transaction.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.accounts.models import User, utcnow
from app.extensions import db
from app.live.events import publish
from app.moderation.audit import record
from app.stories import rules
from app.stories.access import readable_story
from app.stories.append import add_turn
from app.stories.jobs import new_job, withdraw_answers
from app.stories.models import GenerationJob, Story, Turn
from app.stories.reads import lock_story
from app.stories.relay import _hide, _submit, screen_paragraph
from app.stories.serialize import job_dict, turn_dict
from app.stories.validation import clean_text, clean_title

CHAPTER_TITLE_MAX = 200  # Turn.chapter_title's length

# A withdrawn job's message, for the writer (the job row stores it in English, as the
# other job messages in app/stories/jobs.py).
WHY_WITHDRAWN = {
    "edited": "The paragraph was edited; the model answers the new text instead.",
    "withdrawn": "The paragraph was withdrawn by its writer before the model answered it.",
    "undone": "The story's owner undid this paragraph before the model answered it.",
}


def edit_paragraph(
    story_id: int, position: int, user: User, text: Any, expected_position: Any = None
) -> tuple[Turn, GenerationJob | None]:
    """Replace the writer's latest paragraph with `text`: (the new turn, its queued job;
    None when the content filter holds the new text for a moderator)."""
    rules.require_writer(user)
    text = clean_text(text, "text", current_app.config["PARAGRAPH_MAX_CHARS"])
    expected = None if expected_position is None else rules.expected_position(expected_position)
    found = readable_story(story_id, user)
    hit = screen_paragraph(found, text)
    hold = hit is not None and hit.action == "hold"
    held = {"held": True, "held_reason": f"filter: {hit.value}"} if hold else {}
    story = lock_story(story_id)
    try:
        old = rules.check_editable(story, position, user)
        if expected is not None:
            rules.check_position(story, expected)
        rules.check_room(story)
        _hide(old, user, "edited")
        withdrawn = _withdraw(old, "edited")
        turn = add_turn(
            story,
            kind="human",
            text=text,
            author_id=user.id,
            edited_at=utcnow(),
            chapter_title=old.chapter_title,
            **held,
        )
        job = None if held else new_job(story, turn, user.id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _announce_hidden(story, [old], withdrawn)
    if job is None:
        publish(story.id, "turn_held", position=turn.position, turn_id=turn.id)
        return turn, None
    publish(story.id, "turn_created", turn=turn_dict(turn), job=job_dict(job))
    _submit(job)
    return turn, job


def withdraw_paragraph(story_id: int, position: int, user: User) -> Turn:
    """Take back the writer's latest paragraph before the model's answer is final: it is
    hidden ("withdrawn", kept in the history) and its pending answer withdrawn."""
    rules.require_writer(user)
    readable_story(story_id, user)
    story = lock_story(story_id)
    try:
        turn = rules.check_editable(story, position, user)
        _hide(turn, user, "withdrawn")
        withdrawn = _withdraw(turn, "withdrawn")
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _announce_hidden(story, [turn], withdrawn)
    return turn


def withdraw_last_pair(story_id: int, user: User, reason: str | None = None) -> list[Turn]:
    """The owner (or a moderator, audited) withdraws the latest visible paragraph and the
    model's answer to it, if any: both hidden ("undone"), any pending job withdrawn. The
    hidden turns, paragraph first."""
    rules.require_writer(user)
    readable_story(story_id, user)
    story = lock_story(story_id)
    try:
        human, answers = rules.check_undoable(story, user)
        hidden = [human, *answers]
        for turn in hidden:
            _hide(turn, user, "undone")
        withdrawn = _withdraw(human, "undone")
        positions = [turn.position for turn in hidden]
        _audit(story, user, "turn.undo", reason, positions=positions)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _announce_hidden(story, hidden, withdrawn)
    return hidden


def set_chapter(story_id: int, position: int, user: User, title: Any) -> Turn:
    """Mark a chapter starting at the turn at `position` with `title` (None or "" clears
    the mark); the owner or a moderator (audited)."""
    rules.require_writer(user)
    blank = title is None or (isinstance(title, str) and not title.strip())
    title = None if blank else clean_title(title, CHAPTER_TITLE_MAX)  # a non-string: 422
    readable_story(story_id, user)
    story = lock_story(story_id)
    try:
        turn = rules.check_chapter(story, position, user)
        turn.chapter_title = title
        _audit(story, user, "turn.chapter", None, position=position, title=title)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    publish(story.id, "story_updated", story={"id": story.id})
    return turn


def _withdraw(turn: Turn, why: str) -> list[GenerationJob]:
    jobs = withdraw_answers(turn)
    for job in jobs:
        job.error = WHY_WITHDRAWN[why]
    return jobs


def _announce_hidden(story: Story, hidden: list[Turn], withdrawn: list[GenerationJob]) -> None:
    """Readers' pages drop the hidden turns and the pending answer (static/js/story.js)."""
    for turn in hidden:
        event = {"position": turn.position, "turn_id": turn.id, "reason": turn.hidden_reason}
        publish(story.id, "turn_hidden", **event)
    for job in withdrawn:
        publish(story.id, "generation_failed", job=job_dict(job))


def _audit(story: Story, actor: User, action: str, reason: str | None, **details: Any) -> None:
    """A moderator changing someone else's story is recorded (as relay.py records its own)."""
    if actor.id == story.owner_id and reason is None:
        return
    reason = "via the story's own settings" if reason is None else reason
    record(actor, action, "story", story.id, reason, **details)
