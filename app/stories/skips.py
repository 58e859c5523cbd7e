"""Turn deadlines for round-robin stories: the writer whose turn it is has
`turn_seconds`; when `turn_due_at` passes they are skipped (app/stories/deadlines.py
runs the sweep), and after `skip_limit` skips in a row moved to the end or removed.

A skip is a TurnSkip row, shown to everyone on the story page. It records the
story's last_position and who holds the turn after it: app/stories/reads.py
next_writer_id honours the latest skip while the story has not moved on. Only
human writers wait on the clock: while the model writes, or a paragraph awaits
a moderator, nobody is skipped and the clock starts again.

Round-robin order is (Participant.seat, id). Everyone joins with seat 0; moving
a writer to the end steps everyone else down a seat, so seats stay at most 0
and a later joiner (seat 0, a later id) still comes after the moved writer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from app.accounts.models import User, utcnow
from app.errors import NotFound
from app.extensions import db
from app.live.events import publish
from app.notifications.service import notify_next_writer
from app.stories.models import Participant, Story, TurnSkip
from app.stories.reads import awaiting_review, lock_story, next_writer_id, pending_job

log = logging.getLogger(__name__)

SWEEP_BATCH = 200  # stories settled per sweep; the rest wait for the next one
RECENT_SKIPS = 5  # skips shown on the story page and in its state


def restart_clock(story: Story, now: datetime | None = None) -> None:
    """The turn changed hands (or the story's deadline changed): the next writer's time
    starts now; no deadline outside round robin or without turn_seconds."""
    # A story not yet inserted has no status yet (the column default comes at insert): open.
    if (
        story.policy != "round_robin"
        or not story.turn_seconds
        or story.status not in (None, "open")
    ):
        story.turn_due_at = None
        return
    story.turn_due_at = (now or utcnow()) + timedelta(seconds=story.turn_seconds)


# --- the sweep -----------------------------------------------------------------------


def skip_overdue(now: datetime) -> int:
    """Skip the writer of every open round-robin story whose turn deadline passed by `now`;
    how many were skipped. One story's failure does not stop the others."""
    due = db.session.scalars(
        select(Story.id)
        .where(
            Story.policy == "round_robin",
            Story.status == "open",
            Story.turn_seconds.is_not(None),
            Story.turn_due_at <= now,
        )
        .order_by(Story.turn_due_at)
        .limit(SWEEP_BATCH)
    ).all()
    db.session.rollback()  # end the read: each story takes its own write transaction
    skipped = 0
    for story_id in due:
        try:
            skipped += skip_if_due(story_id, now)
        except NotFound:
            db.session.rollback()  # deleted since the query
        except Exception:
            db.session.rollback()
            log.exception("turn deadline of story %s failed", story_id)
    return skipped


def skip_if_due(story_id: int, now: datetime) -> int:
    """Under the story's lock: skip its current writer if the deadline still stands (1), or
    start the clock again when nobody should be skipped (0)."""
    story = lock_story(story_id)
    due = story.turn_due_at
    if due is None or due > now or story.policy != "round_robin" or not story.turn_seconds:
        db.session.rollback()  # another sweep, a turn or a settings change got there first
        return 0
    if story.status != "open" or pending_job(story) is not None or awaiting_review(story):
        restart_clock(story, now)  # the model (or a moderator) is not a writer to skip
        db.session.commit()
        return 0
    writer_id = next_writer_id(story)
    order = list(story.participants)
    seats = [p.user_id for p in order]
    if writer_id not in seats or len(order) < 2:
        restart_clock(story, now)  # a lone writer is never skipped: they just have more time
        db.session.commit()
        return 0
    held = order[seats.index(writer_id)]
    after = seats[(seats.index(writer_id) + 1) % len(seats)]
    skip = TurnSkip(
        story_id=story.id,
        user_id=writer_id,
        position=story.last_position,
        next_user_id=after,
        outcome=_apply_limit(story, held),
        created_at=now,
    )
    db.session.add(skip)
    restart_clock(story, now)
    db.session.flush()
    notify_next_writer(story)
    outcome = skip.outcome
    db.session.commit()
    publish(story_id, "turn_skipped", skip={"user_id": writer_id, "outcome": outcome})
    return 1


def _apply_limit(story: Story, held: Participant) -> str:
    """Count the missed turn; at the story's skip_limit, move the writer to the end of the
    round (their count starts again) or remove them from it. The outcome to record."""
    held.skips += 1
    if held.skips < story.skip_limit:
        return "skipped"
    if story.skip_action == "remove":
        db.session.delete(held)
        return "removed"
    _seat_last(story, held)
    held.skips = 0
    return "moved"


def _seat_last(story: Story, held: Participant) -> None:
    """Put `held` at the end of the round. Seats stay at most 0, the seat a writer joins
    with: everyone else steps down one and `held` takes 0, so whoever joins later (seat 0,
    a later id) still comes after them, without the join code knowing about seats."""
    db.session.execute(
        update(Participant)
        .where(Participant.story_id == story.id, Participant.id != held.id)
        .values(seat=Participant.seat - 1)
    )
    held.seat = 0


# --- what readers see ------------------------------------------------------------------


def recent_skips(story: Story, limit: int = RECENT_SKIPS) -> list[TurnSkip]:
    """The story's latest skips, newest first, with the skipped writer's name."""
    return list(
        db.session.scalars(
            select(TurnSkip)
            .where(TurnSkip.story_id == story.id)
            .options(joinedload(TurnSkip.user).load_only(User.id, User.username))
            .order_by(TurnSkip.id.desc())
            .limit(limit)
        )
    )


def skip_sentence(skip: TurnSkip) -> str:
    """One sentence for everyone: whose turn was skipped, and what it did to their seat."""
    name = skip.user.username if skip.user else _("unknown")
    if skip.outcome == "moved":
        return _(
            "%(name)s missed too many turns in a row: moved to the end of the round.", name=name
        )
    if skip.outcome == "removed":
        return _("%(name)s missed too many turns in a row: removed from the round.", name=name)
    return _("%(name)s's turn was skipped (time ran out).", name=name)


def deadline_sentence(story: Story, viewer: User | None, writer_id: int | None) -> str | None:
    """When the current writer's time ends, at a fixed time (a cached page stays true)."""
    if story.turn_due_at is None or writer_id is None:
        return None
    at = format_datetime(story.turn_due_at, "short")
    if viewer is not None and viewer.id == writer_id:
        return _("Your turn ends at %(time)s (UTC).", time=at)
    writer = db.session.get(User, writer_id)
    if writer is None:
        return None
    return _("%(name)s's turn ends at %(time)s (UTC).", name=writer.username, time=at)


def skip_dicts(story: Story) -> list[dict[str, Any]]:
    """The recent skips as the story's state and the page's script show them."""
    from app.stories.serialize import _iso

    return [
        {
            "username": skip.user.username if skip.user else None,
            "outcome": skip.outcome,
            "at": _iso(skip.created_at),
            "position": skip.position,
            "text": skip_sentence(skip),
        }
        for skip in recent_skips(story)
    ]
