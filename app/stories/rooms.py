"""Who is in a story's room: tags, invitations, joining, leaving, removing participants.

Every write here runs under the story's lock (reads.lock_story), like the
relay's; an invitation's use is counted by one conditional UPDATE, so two
holders of a single-use link never both get in.
"""

from __future__ import annotations

from app.extensions import db
from app.stories.models import Story, StoryTag


def set_tags(story: Story, names: list[str]) -> None:
    """The owner's tags, replacing the old ones (in the caller's transaction)."""
    keep = set(names)
    for tag in list(story.tags):
        if tag.name not in keep:
            story.tags.remove(tag)
    have = {tag.name for tag in story.tags}
    for name in names:
        if name not in have:
            story.tags.append(StoryTag(name=name))
    db.session.flush()
