"""The one per-user live stream: the signed-in user's notifications as Server-Sent Events.

It rides the story event bus on the user's own channel (service.user_channel), so it
works in both run modes (InMemoryEventBus embedded, Redis pub/sub scaled) and under the
event-driven server's hub, and it takes a slot of the same stream caps as a story's
stream (app/live/limits.py: SSE_MAX_STREAMS, SSE_MAX_PER_ADDRESS, SSE_MAX_PER_USER).
Its first frame ("notifications_open") carries the unread count, so a reconnecting bell
is right again at once; each later frame is {"type": "notification", "id", "kind"}.
"""

from __future__ import annotations

import threading

from flask import Response, current_app

from app.accounts.models import User
from app.extensions import db
from app.live.events import get_event_bus
from app.live.limits import take_stream_slot
from app.live.sse import _frames, _hub, _opening_frames
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
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if hub:
        from app.live.hub import HANDOFF_HEADER

        opening = "".join(_opening_frames(first, 0)).encode()
        headers[HANDOFF_HEADER] = hub.hand_off(subscription, opening, 0)
        return Response(b"", mimetype="text/event-stream", headers=headers)
    frames = _frames(
        subscription,
        first,
        0,
        keepalive=float(current_app.config.get("SSE_KEEPALIVE_SECONDS", 15)),
        closing=current_app.extensions.get("relay.closing") or threading.Event(),
        lifetime=float(current_app.config.get("SSE_MAX_SECONDS", 600)),
    )
    response = Response(frames, mimetype="text/event-stream", headers=headers)
    response.call_on_close(release)
    return response
