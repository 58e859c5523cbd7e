"""The one way a turn enters a story: the next position, under the story's lock.

Positions run 1..n per story with no gaps (hidden turns keep theirs); the
caller (app/stories/relay.py for writers, app/stories/jobs.py for the model)
holds the lock taken by app.stories.reads.lock_story.
"""

from __future__ import annotations

from typing import Any

from app.accounts.models import utcnow
from app.extensions import db
from app.stories.models import Story, Turn


def add_turn(story: Story, **fields: Any) -> Turn:
    story.last_position += 1
    story.updated_at = utcnow()
    if fields.get("held_reason"):
        fields["held_reason"] = fits(fields["held_reason"], Turn.held_reason)
    turn = Turn(story_id=story.id, position=story.last_position, **fields)
    db.session.add(turn)
    db.session.flush()
    from app.notifications.service import on_turn_added

    on_turn_added(story, turn)  # same transaction: told only once the turn is committed
    return turn


def fits(text: str, column: Any) -> str:
    """`text` cut to the column's length (PostgreSQL refuses longer); the audit log keeps a
    moderator's whole reason, the turn shows its start."""
    limit = column.type.length
    return text if len(text) <= limit else text[: limit - 1] + "…"
