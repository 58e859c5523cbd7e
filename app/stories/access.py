"""Who may know a story exists and read it (issue 18: visibility).

Today every story is public, and only the notifications ask here (so that
nobody hears of a story they may not read). The visibility rules land here,
and then every edge that shows a story asks first; a story the viewer may not
read answers 404 (not 403): those who may not read it may not know it exists.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import true

from app.accounts.models import User
from app.stories.models import Story


def can_read(story: Story, user: User | None) -> bool:
    """Whether `user` (None: anonymous) may read `story`."""
    return True


def readable_clause(user: User | None) -> Any:
    """A WHERE clause on Story for lists, search and feeds: the stories `user` may see listed."""
    return true()
