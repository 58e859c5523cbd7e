"""Turn deadlines for round-robin stories: the writer whose turn it is has
`turn_seconds`; when `turn_due_at` passes they are skipped (app/stories/deadlines.py
runs the sweep), and after `skip_limit` skips in a row moved to the end or removed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.accounts.models import utcnow
from app.stories.models import Story


def restart_clock(story: Story, now: datetime | None = None) -> None:
    """The turn changed hands (or the story's deadline changed): the next writer's time
    starts now; no deadline outside round robin or without turn_seconds."""
    if story.policy != "round_robin" or not story.turn_seconds or story.status != "open":
        story.turn_due_at = None
        return
    story.turn_due_at = (now or utcnow()) + timedelta(seconds=story.turn_seconds)
