"""Who may know a story exists and read it: the story's visibility.

- public: listed, and anyone reads it;
- unlisted: not listed; anyone holding its link reads it. The link carries the
  story's share_token (never guessable from the sequential id): `/s/<token>`
  remembers it in the browser's session, and API clients send `?key=<token>`
  or an `X-Story-Key` header;
- private: only its participants (the owner among them) and moderators.

A story the viewer may not read answers 404, not 403, at every edge (page,
JSON, events, export, jobs, reports, notifications, writes): those who may
not read it may not know it exists. Every edge asks here, through
`readable_story` (fetch it and may I?, as flaskr's get_post) or
`require_readable` (the same question answered from one light query, for the
read paths a 304 serves).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import has_request_context, request, session
from flask_babel import gettext as _
from sqlalchemy import exists, or_, select

from app.accounts.models import User
from app.errors import NotFound
from app.extensions import db
from app.stories.models import Participant, Story
from app.stories.reads import get_story

SESSION_KEYS = "story_keys"  # the browser's unlisted links, {story id: token}


def new_share_token() -> str:
    return secrets.token_urlsafe(24)


def can_read(story: Story, user: User | None, key: str | None = None) -> bool:
    """Whether `user` (None: anonymous) may read `story`, holding the unlisted link's token
    `key` if given (never the current request's: the user asked about may be someone else,
    as for a notification)."""
    return _may_read(story.id, story.visibility, story.share_token, user, [key])


def readable_story(story_id: int, user: User | None) -> Story:
    """The story, if `user` (the one making the request, with the link it carries) may read
    it; 404 (as for a story that does not exist) if not."""
    story = get_story(story_id)
    if not request_may_read(story, user):
        raise _not_found(story_id)
    return story


def request_may_read(story: Story, user: User | None) -> bool:
    """can_read for the user making this request, with the unlisted link it carries."""
    return _may_read(story.id, story.visibility, story.share_token, user, request_keys(story.id))


def require_readable(story_id: int, user: User | None) -> None:
    """readable_story's check from one light query (no ORM row); 404 if gone or unreadable."""
    row = db.session.execute(
        select(Story.visibility, Story.share_token).where(Story.id == story_id)
    ).first()
    keys = request_keys(story_id)
    if row is None or not _may_read(story_id, row.visibility, row.share_token, user, keys):
        raise _not_found(story_id)


def _may_read(
    story_id: int, visibility: str, token: str | None, user: User | None, keys: list[Any]
) -> bool:
    if visibility == "public" or (user is not None and user.is_moderator):
        return True
    if visibility == "unlisted" and token and _holds_key(token, keys):
        return True
    return user is not None and is_member(story_id, user.id)


def is_member(story_id: int, user_id: int) -> bool:
    """A participant (the owner joins their own story when they start it)."""
    return bool(
        db.session.scalar(
            select(exists().where(Participant.story_id == story_id, Participant.user_id == user_id))
        )
        or db.session.scalar(
            select(exists().where(Story.id == story_id, Story.owner_id == user_id))
        )
    )


def _holds_key(token: str, keys: list[Any]) -> bool:
    return any(
        isinstance(held, str) and hmac.compare_digest(held.encode(), token.encode())
        for held in keys
    )


def request_keys(story_id: int) -> list[Any]:
    """The unlisted-link tokens the current request carries for the story: ?key=, the
    X-Story-Key header, and the one the browser's session remembers."""
    if not has_request_context():
        return []
    held = session.get(SESSION_KEYS)
    stored = held.get(str(story_id)) if isinstance(held, dict) else None
    return [request.args.get("key"), request.headers.get("X-Story-Key"), stored]


def remember_key(story: Story) -> None:
    """The browser opened the story's unlisted link: its later requests (the page's script,
    the event stream) read it too."""
    held = session.get(SESSION_KEYS)
    held = dict(held) if isinstance(held, dict) else {}
    held[str(story.id)] = story.share_token
    session[SESSION_KEYS] = dict(list(held.items())[-50:])  # the cookie stays small


def story_by_token(token: str) -> Story:
    """The story an unlisted (or any) share link names; 404 for an unknown or old token."""
    story = (
        db.session.scalars(select(Story).where(Story.share_token == token)).first()
        if token
        else None
    )
    if story is None:
        raise NotFound(_("This link is not valid (any more)."))
    return story


def readable_clause(user: User | None) -> Any:
    """A WHERE clause on Story for lists, search and feeds: public stories, and the
    unlisted and private ones `user` takes part in."""
    if user is None:
        return Story.visibility == "public"
    member = exists().where(Participant.story_id == Story.id, Participant.user_id == user.id)
    return or_(Story.visibility == "public", Story.owner_id == user.id, member)


def _not_found(story_id: int) -> NotFound:
    return NotFound(_("Story %(id)s does not exist.", id=story_id))


def story_or_none(story_id: int, user: User | None) -> Story | None:
    """readable_story, or None where it would be a 404."""
    try:
        return readable_story(story_id, user)
    except NotFound:
        return None
