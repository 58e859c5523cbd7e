"""Plain-dict views of stories, turns and jobs, shared by the API, events and pages.

Turn text is returned raw: every edge escapes it on output (Jinja autoescape,
textContent in the browser); it is never trusted HTML.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.stories.models import GenerationJob, Story, Turn


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def turn_dict(turn: Turn) -> dict[str, Any]:
    return {
        "id": turn.id,
        "story_id": turn.story_id,
        "position": turn.position,
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
        "turn_id": job.turn_id,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def story_dict(story: Story, turn_count: int | None = None) -> dict[str, Any]:
    return {
        "id": story.id,
        "title": story.title,
        "language": story.language,
        "model": story.model_key,
        "opening": story.opening,
        "policy": story.policy,
        "preset": story.preset,
        "max_new_tokens": story.max_new_tokens,
        "status": story.status,
        "owner": story.owner.username if story.owner else None,
        "last_position": story.last_position,
        "turn_count": turn_count,
        "participants": [p.user.username for p in story.participants],
        "created_at": _iso(story.created_at),
        "updated_at": _iso(story.updated_at),
    }
