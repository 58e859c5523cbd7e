"""Story.revision: one counter that changes with everything a story's readers can see.

The story page, its JSON turn list and the API's turn list are tagged (ETag)
from the story's revision plus who is looking (app/stories/caching.py). Why a
counter rather than an aggregate query (max turn id, counts of hidden and held
turns, the latest job's state, ...): the story row is read anyway, so the tag
costs no query at all, and no aggregate could see every input (a turn
hidden then restored, a job that went from queued to running, a new participant,
a reader's report) without reading each table.

Why one session listener rather than a bump in each write function: every write
goes through app/stories/ (relay.py, append.py, jobs.py) and app/moderation, and
any of them adding, changing or deleting a row that belongs to a story (it has a
`story_id`, or a `turn_id` of one of its turns) must change the tag; a listener
on the flush sees all of them, including the ones written next year. The bump
is `revision = revision + 1` in SQL, so two transactions never write the same
value, and it lands in the same transaction as the change itself.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.stories.models import Story, Turn


def track_revisions() -> None:
    """Bump Story.revision in every flush that touches a story (idempotent)."""
    if not event.contains(Session, "before_flush", _bump_revisions):
        event.listen(Session, "before_flush", _bump_revisions)


def _bump_revisions(session: Session, flush_context: Any, instances: Any) -> None:
    story_ids: set[int] = set()
    with session.no_autoflush:
        for row in chain(session.new, session.dirty, session.deleted):
            story_id = _story_of(session, row)
            if story_id is not None:
                story_ids.add(story_id)
        for story_id in story_ids:
            story = session.get(Story, story_id)
            if story is None or story in session.deleted:
                continue
            story.revision = Story.revision + 1


def _story_of(session: Session, row: object) -> int | None:
    """The id of the story `row` belongs to, if any, and only when the row really changed."""
    if row in session.dirty and not session.is_modified(row, include_collections=False):
        return None
    if isinstance(row, Story):
        return row.id if row not in session.new else None  # a new story starts at 0
    story_id = getattr(row, "story_id", None)
    if story_id is not None:
        return story_id
    turn_id = getattr(row, "turn_id", None)  # a report on a turn, say
    if turn_id is not None:
        turn = session.get(Turn, turn_id)
        return turn.story_id if turn is not None else None
    return None
