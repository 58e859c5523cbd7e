"""The one way a turn enters a story: the next position, under the story's lock.

Positions run 1..n per story with no gaps (hidden turns keep theirs); the
caller (app/stories/relay.py for writers, app/stories/jobs.py for the model)
holds the lock taken by app.stories.reads.lock_story.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from app.accounts.models import utcnow
from app.extensions import db
from app.stories.models import Participant, Story, Turn
from app.stories.skips import restart_clock


def add_turn(story: Story, **fields: Any) -> Turn:
    story.last_position += 1
    story.updated_at = utcnow()
    if fields.get("held_reason"):
        fields["held_reason"] = fits(fields["held_reason"], Turn.held_reason)
    turn = Turn(story_id=story.id, position=story.last_position, **fields)
    db.session.add(turn)
    restart_clock(story)  # the turn moved on: the next writer's time starts now
    if turn.kind == "human" and turn.author_id is not None:
        _reset_skips(story, turn.author_id)
    db.session.flush()
    from app.notifications.service import on_turn_added

    on_turn_added(story, turn)  # same transaction: told only once the turn is committed
    return turn


def _reset_skips(story: Story, user_id: int) -> None:
    """A writer who writes has missed no turn in a row (app/stories/skips.py)."""
    db.session.execute(
        update(Participant)
        .where(
            Participant.story_id == story.id,
            Participant.user_id == user_id,
            Participant.skips > 0,
        )
        .values(skips=0)
    )


def fits(text: str, column: Any) -> str:
    """`text` cut to the column's length (PostgreSQL refuses longer); the audit log keeps a
    moderator's whole reason, the turn shows its start."""
    limit = column.type.length
    return text if len(text) <= limit else text[: limit - 1] + "…"
