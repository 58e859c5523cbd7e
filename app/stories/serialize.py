"""Plain-dict views of stories, turns and jobs, shared by the API, events and pages.

Turn text is returned raw: every edge escapes it on output (Jinja autoescape,
textContent in the browser); it is never trusted HTML.

Two numbers name a turn. `position` is its identity: stored, unique, gap-free over
every turn ever appended (hidden and replaced ones included); URLs and
`expected_position` (the story's `last_position`) use it. `number` is the paragraph
number readers see: it counts visible paragraphs only (not hidden, not held), so a
regenerated answer or a hidden turn leaves no gap; a turn readers cannot see has
`number` None.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from app.stories.models import GenerationJob, Story, Turn

_UNSET: Any = object()


def is_visible(turn: Turn) -> bool:
    return not turn.hidden and not turn.held


def paragraph_number(turn: Turn) -> int | None:
    """The paragraph number readers see for this turn (None when they do not see it)."""
    if not is_visible(turn):
        return None
    return visible_before(turn.story_id, turn.position) + 1


def visible_before(story_id: int, position: int) -> int:
    """How many visible turns of the story come before `position` (one COUNT)."""
    query = select(func.count(Turn.id)).where(
        Turn.story_id == story_id,
        Turn.position < position,
        Turn.hidden.is_(False),
        Turn.held.is_(False),
    )
    return db.session.scalar(query) or 0


def paragraph_numbers(turns: list[Turn]) -> dict[int, int | None]:
    """Reader numbers of consecutive turns of one story, by turn id, with one query."""
    if not turns:
        return {}
    number = visible_before(turns[0].story_id, turns[0].position)
    out: dict[int, int | None] = {}
    for turn in sorted(turns, key=lambda t: t.position):
        if is_visible(turn):
            number += 1
            out[turn.id] = number
        else:
            out[turn.id] = None
    return out


def turn_dicts(turns: list[Turn]) -> list[dict[str, Any]]:
    """turn_dict of each turn, numbered with one query (the turns of a page or list)."""
    numbers = paragraph_numbers(turns)
    return [turn_dict(turn, numbers[turn.id]) for turn in turns]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


iso = _iso  # the one timestamp format, for the API's other shapes


def turn_dict(turn: Turn, number: int | None = _UNSET) -> dict[str, Any]:
    return {
        "id": turn.id,
        "story_id": turn.story_id,
        "position": turn.position,
        "number": paragraph_number(turn) if number is _UNSET else number,
        "kind": turn.kind,
        "text": turn.text,
        "author": turn.author.username if turn.author else None,
        "credit": turn.credit,
        "model": turn.model_key,
        "reply_to_id": turn.reply_to_id,
        "hidden": turn.hidden,
        "hidden_reason": turn.hidden_reason if turn.hidden else None,
        "held": turn.held,
        "held_reason": turn.held_reason if turn.held else None,
        "edited_at": _iso(turn.edited_at),
        "chapter_title": turn.chapter_title,
        "flag": turn.flag,
        "created_at": _iso(turn.created_at),
    }


def job_dict(job: GenerationJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "story_id": job.story_id,
        "reply_to_id": job.reply_to_id,
        "status": job.status,
        "attempts": job.attempts,
        "error": job.error,
        "finish_reason": job.finish_reason,
        "turn_id": job.turn_id,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def story_dict(
    story: Story, turn_count: int | None = None, share_url: str | None = None
) -> dict[str, Any]:
    """The story's public fields; `share_url` (the unlisted link) only for its managers."""
    return {
        "id": story.id,
        "title": story.title,
        "language": story.language,
        "model": story.model_key,
        "opening": story.opening,
        "policy": story.policy,
        "preset": story.preset,
        "max_new_tokens": story.max_new_tokens,
        "filter_strictness": story.filter_strictness,
        "status": story.status,
        "owner": story.owner.username if story.owner else None,
        "last_position": story.last_position,
        "turn_count": turn_count,
        "participants": [p.user.username for p in story.participants],
        "visibility": story.visibility,
        "write_access": story.write_access,
        "turn_seconds": story.turn_seconds,
        "skip_limit": story.skip_limit,
        "skip_action": story.skip_action,
        "candidates": story.candidates,
        "choice_mode": story.choice_mode,
        "choice_seconds": story.choice_seconds,
        "share_url": share_url,
        "tags": [tag.name for tag in story.tags],
        "banned_phrases": [p for p in (story.banned_phrases or "").split("\n") if p],
        "forked_from": (
            {"id": story.forked_from_id, "position": story.forked_from_position}
            if story.forked_from_id is not None
            else None
        ),
        "turn_due_at": _iso(story.turn_due_at),
        "created_at": _iso(story.created_at),
        "updated_at": _iso(story.updated_at),
    }
