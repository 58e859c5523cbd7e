"""The one per-user live stream: the signed-in user's notifications as Server-Sent Events.

It rides the story event bus on the user's own channel (service.user_channel), so it
works in both run modes (InMemoryEventBus embedded, Redis pub/sub scaled) and under the
event-driven server's hub, and it takes a slot of the same stream caps as a story's
stream (app/live/limits.py: SSE_MAX_STREAMS, SSE_MAX_PER_ADDRESS, SSE_MAX_PER_USER).
Its first frame ("notifications_open") carries the unread count, so a reconnecting bell
is right again at once; each later frame is {"type": "notification", "id", "kind"}.
"""

from __future__ import annotations

from flask import Response

from app.accounts.models import User
from app.live.sse import open_stream
from app.notifications.service import unread_count, user_channel


def user_stream(user: User) -> Response:
    """A text/event-stream response of `user`'s notifications (429/503 beyond a cap)."""
    return open_stream(
        user_channel(user.id),
        user,
        lambda: ([{"type": "notifications_open", "unread": unread_count(user)}], 0),
    )
