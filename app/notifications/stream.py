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
from app.extensions import db
from app.live.events import get_event_bus
from app.live.limits import take_stream_slot
from app.live.sse import _hub, stream_response
from app.notifications.service import unread_count, user_channel


def user_stream(user: User) -> Response:
    """A text/event-stream response of `user`'s notifications (429/503 beyond a cap)."""
    release = take_stream_slot(user)
    channel = user_channel(user.id)
    hub = _hub()
    try:
        subscription = hub.open(channel, release) if hub else get_event_bus().subscribe(channel)
    except Exception:
        release()
        raise
    try:
        first = [{"type": "notifications_open", "unread": unread_count(user)}]
    except Exception:
        if hub:
            hub.discard(subscription)
        else:
            subscription.close()
            release()
        raise
    db.session.remove()
    return stream_response(hub, subscription, first, 0, release)
