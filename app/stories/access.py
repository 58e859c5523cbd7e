"""Who may know a story exists and read it (issue 18: visibility).

Every edge that shows a story, its turns, jobs, events, exports, context or
notifications asks here first. A story the viewer may not read answers 404
(not 403): those who may not read it may not know it exists.

Today every story is public; the visibility rules land here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import true

from app.accounts.models import User
from app.stories.models import Story
from app.stories.reads import get_story


def can_read(story: Story, user: User | None) -> bool:
    """Whether `user` (None: anonymous) may read `story`."""
    return True


def readable_story(story_id: int, user: User | None) -> Story:
    """The story, if `user` may read it; NotFound otherwise (as if it did not exist)."""
    story = get_story(story_id)
    if not can_read(story, user):
        from flask_babel import gettext as _

        from app.errors import NotFound

        raise NotFound(_("Story %(id)s does not exist.", id=story_id))
    return story


def readable_clause(user: User | None) -> Any:
    """A WHERE clause on Story for lists, search and feeds: the stories `user` may see listed."""
    return true()
