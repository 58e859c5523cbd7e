"""Forks: a new story started from one paragraph of a story its forker may read.

A fork copies what every reader sees up to that paragraph (reads.visible_turns
with no viewer: hidden and held turns stay behind), each turn with its credit
(kind, text, writer, model, the paragraph an answer replies to), numbered 1..n;
and the source's opening, language, model, preset, policy, length, filter
setting and tags. The forker owns it and is its first participant. A fork of a
story that is not public starts private: only the source's owner may make it
public (rules.check_settings). Nothing is audited or published: the new story
has no readers yet, and its copied turns tell no one it is their turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _

from app.accounts.models import User
from app.database import begin_write
from app.errors import Conflict, Invalid
from app.extensions import db
from app.stories import rules
from app.stories.access import can_read, new_share_token, readable_story
from app.stories.models import Participant, Story, Turn
from app.stories.reads import visible_turns
from app.stories.rooms import set_tags
from app.stories.serialize import is_visible, paragraph_number
from app.stories.skips import restart_clock
from app.stories.validation import clean_title

# What a fork takes over from its source as it is.
COPIED_FIELDS = (
    "opening",
    "language",
    "model_key",
    "preset",
    "policy",
    "max_new_tokens",
    "filter_strictness",
)


def fork_story(story_id: int, position: int, user: User, title: str | None = None) -> Story:
    """A new story owned by `user`: the source's visible turns up to and including
    `position` (0: the opening alone). 404 if `user` may not read the source; 409
    no_visible_turn if no turn readers see is at `position`; 422 for a position that is
    not a number 0 or more, or a bad title; 403 for a reader not signed in or suspended."""
    user_id = user.id if user is not None and user.is_authenticated else None
    # A write transaction from the start (as relay.create_story): the copy is read in it.
    begin_write()
    try:
        source = readable_story(story_id, user)
        rules.require_writer(user)
        turns = _turns_up_to(source, position)
        fork = Story(
            owner_id=user_id,
            title=_title(source, title),
            share_token=new_share_token(),
            visibility="public" if source.visibility == "public" else "private",
            forked_from_id=source.id,
            forked_from_position=position,
            last_position=len(turns),
            **{name: getattr(source, name) for name in COPIED_FIELDS},
        )
        restart_clock(fork)
        db.session.add(fork)
        db.session.flush()
        db.session.add(Participant(story_id=fork.id, user_id=user_id))
        _copy_turns(fork, turns)
        set_tags(fork, [tag.name for tag in source.tags])
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return fork


def _turns_up_to(source: Story, position: Any) -> list[Any]:
    if isinstance(position, bool) or not isinstance(position, int):
        raise Invalid(_("%(field)s must be an integer.", field="position"), field="position")
    if position < 0:
        raise Invalid(
            _(
                "%(field)s must be between %(low)s and %(high)s.",
                field="position",
                low=0,
                high=source.last_position,
            ),
            field="position",
        )
    turns = visible_turns(source) if position else []
    ends = [index for index, turn in enumerate(turns) if turn.position == position]
    if position and not ends:  # a turn hidden, held or not there (yet): the story's state
        raise Conflict(
            _("Story %(id)s has no turn %(position)s.", id=source.id, position=position),
            code="no_visible_turn",
            field="position",
        )
    return turns[: ends[0] + 1] if ends else []


def _title(source: Story, title: str | None) -> str:
    if title is None or (isinstance(title, str) and not title.strip()):
        return source.title
    return clean_title(title, current_app.config["TITLE_MAX_CHARS"])


def _copy_turns(fork: Story, turns: list[Turn]) -> None:
    """The turns as positions 1..n of `fork`, each answer replying to its paragraph's copy."""
    copies: dict[int, Turn] = {}
    for number, turn in enumerate(turns, start=1):
        copies[turn.id] = Turn(
            story_id=fork.id,
            position=number,
            kind=turn.kind,
            text=turn.text,
            author_id=turn.author_id,
            model_key=turn.model_key,
            created_at=turn.created_at,
        )
    db.session.add_all(copies.values())
    db.session.flush()
    for turn in turns:
        answered = copies.get(turn.reply_to_id) if turn.reply_to_id else None
        if answered is not None:
            copies[turn.id].reply_to_id = answered.id
    db.session.flush()


@dataclass(frozen=True)
class ForkOrigin:
    """Where a fork came from, as its page tells a viewer."""

    story_id: int
    position: int
    title: str | None  # None: the viewer may not read the source (or it is gone)
    number: int | None  # the source's paragraph number there now; None: its opening, or hidden


def fork_origin(story: Story, viewer: User | None) -> ForkOrigin | None:
    """The story this one was forked from, named only to a viewer who may read it."""
    if story.forked_from_position is None:
        return None
    source = db.session.get(Story, story.forked_from_id) if story.forked_from_id else None
    position = story.forked_from_position
    if source is None or not can_read(source, viewer):
        return ForkOrigin(story.forked_from_id or 0, position, None, None)
    turn = db.session.scalars(
        db.select(Turn).where(Turn.story_id == source.id, Turn.position == position)
    ).first()
    number = paragraph_number(turn) if turn is not None and is_visible(turn) else None
    return ForkOrigin(source.id, position, source.title, number)
