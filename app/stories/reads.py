"""Reading a story as the relay rules define it: what a viewer sees, counts, whose turn.

Every edge (browser views, API, admin, exports, the job runner's prompt)
reads turns through here, so readers, writers and the model see the same
story: hidden turns are gone for everyone but moderators; a held turn (the
content filter's, awaiting review) is seen only by its own writer and by
moderators; counts and paragraph numbers count what readers see.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import joinedload

from app.accounts.models import User
from app.database import begin_write, is_sqlite
from app.errors import NotFound
from app.extensions import db
from app.stories.models import WAITING_STATES, GenerationJob, Participant, Story, Turn, TurnSkip


def get_story(story_id: int) -> Story:
    # The owner is credited on every page: loaded in the same query.
    story = db.session.get(Story, story_id, options=[joinedload(Story.owner)])
    if story is None:
        raise NotFound(_("Story %(id)s does not exist.", id=story_id))
    return story


def story_revision(story_id: int) -> int:
    """The story's revision (app/stories/revision.py) in one light query outside the
    session (no ORM row): what an ETag check needs. 404 if the story is gone."""
    # One statement needs no transaction: on PostgreSQL autocommit saves the BEGIN and
    # ROLLBACK round trips (SQLite's are local, and its BEGIN hook expects a transaction).
    options = {} if is_sqlite() else {"isolation_level": "AUTOCOMMIT"}
    with db.engine.connect().execution_options(**options) as conn:
        revision = conn.execute(select(Story.revision).where(Story.id == story_id)).scalar()
    return revision if revision is not None else get_story(story_id).revision  # 404 if gone


def lock_story(story_id: int) -> Story:
    """Begin a write transaction holding the story's lock; 404 if it is gone."""
    begin_write()
    story = db.session.execute(
        select(Story).where(Story.id == story_id).with_for_update()
    ).scalar_one_or_none()
    if story is None:
        db.session.rollback()
        raise NotFound(_("Story %(id)s does not exist.", id=story_id))
    return story


def sees_hidden(viewer: User | None) -> bool:
    """Moderators see hidden and held turns (flagged as such); readers do not."""
    return bool(viewer is not None and viewer.is_moderator)


# Turns are read with their writer's name only, joined in: what a credit needs.
_CREDITS = joinedload(Turn.author).load_only(User.id, User.username)


def _seen_by(query, viewer: User | None, include_hidden: bool):  # noqa: ANN001, ANN202
    if include_hidden:
        return query
    own_held = Turn.author_id == viewer.id if viewer is not None else false()
    return query.where(Turn.hidden.is_(False), or_(Turn.held.is_(False), own_held))


def visible_turns(
    story: Story, since: int = 0, viewer: User | None = None, include_hidden: bool | None = None
) -> list[Turn]:
    """Turns after position `since`, in order, as `viewer` sees them (None: any reader, and
    the model's prompt). include_hidden (default: whether the viewer is a moderator) shows
    every turn."""
    query = select(Turn).where(Turn.story_id == story.id, Turn.position > since)
    show_all = sees_hidden(viewer) if include_hidden is None else include_hidden
    query = _seen_by(query, viewer, show_all)
    query = query.options(_CREDITS)  # in the same query, not one per turn
    return list(db.session.scalars(query.order_by(Turn.position)))


def turn_page(
    story: Story, viewer: User | None, before: int | None, per_page: int
) -> tuple[list[Turn], bool]:
    """Up to `per_page` turns the viewer sees before position `before` (default: the latest),
    oldest first, and whether there are earlier ones."""
    query = select(Turn).where(Turn.story_id == story.id)
    query = _seen_by(query, viewer, sees_hidden(viewer))
    if before is not None:
        query = query.where(Turn.position < before)
    query = query.options(_CREDITS)
    rows = list(db.session.scalars(query.order_by(Turn.position.desc()).limit(per_page + 1)))
    return list(reversed(rows[:per_page])), len(rows) > per_page


def last_turn(story: Story) -> Turn | None:
    return db.session.scalars(
        select(Turn).where(Turn.story_id == story.id, Turn.position == story.last_position)
    ).first()


def turn_at(story: Story, position: int) -> Turn:
    turn = db.session.scalars(
        select(Turn).where(Turn.story_id == story.id, Turn.position == position)
    ).first()
    if turn is None:
        raise NotFound(_("Story %(id)s has no turn %(position)s.", id=story.id, position=position))
    return turn


def awaiting_review(story: Story) -> bool:
    """The last paragraph is a writer's, held by the filter: the story waits for a moderator."""
    last = last_turn(story)
    return bool(last and last.held and not last.hidden and last.kind == "human")


def pending_job(story: Story) -> GenerationJob | None:
    """The job the story waits on: queued, running, or its candidates awaiting a choice."""
    return db.session.scalars(
        select(GenerationJob)
        .where(GenerationJob.story_id == story.id, GenerationJob.status.in_(WAITING_STATES))
        .limit(1)
    ).first()


def latest_job(story: Story) -> GenerationJob | None:
    return db.session.scalars(
        select(GenerationJob)
        .where(GenerationJob.story_id == story.id)
        .order_by(GenerationJob.id.desc())
        .limit(1)
    ).first()


def last_human_author(story: Story) -> int | None:
    """Who wrote the latest visible human paragraph (the turn-order rules start from it)."""
    return db.session.scalars(
        select(Turn.author_id)
        .where(Turn.story_id == story.id, Turn.kind == "human", Turn.hidden.is_(False))
        .order_by(Turn.position.desc())
        .limit(1)
    ).first()


def next_writer_id(story: Story) -> int | None:
    """Round robin: the participant after the writer of the last visible human turn; or,
    when the writer whose turn it was got skipped since (app/stories/skips.py) and the story
    has not moved on, the participant the skip handed the turn to."""
    order = [p.user_id for p in story.participants]
    if not order:
        return None
    handed = skipped_to(story)
    if handed in order:
        return handed
    last = last_human_author(story)
    if last not in order:
        return order[0]
    return order[(order.index(last) + 1) % len(order)]


def skipped_to(story: Story) -> int | None:
    """Who the latest turn skip handed the turn to, if no turn was added since."""
    skip = db.session.execute(
        select(TurnSkip.position, TurnSkip.next_user_id)
        .where(TurnSkip.story_id == story.id)
        .order_by(TurnSkip.id.desc())
        .limit(1)
    ).first()
    if skip is None or skip.position != story.last_position:
        return None
    return skip.next_user_id


def participant(story: Story, user: User | None) -> Participant | None:
    if user is None:
        return None
    return db.session.scalars(
        select(Participant).where(Participant.story_id == story.id, Participant.user_id == user.id)
    ).first()


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
