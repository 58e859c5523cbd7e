"""Server-Sent Events for one story: new turns and the model's text as it streams.

Frames are unnamed SSE messages (`onmessage` gets them all); the JSON data
carries "type" (stream_open, turn_created, generation_started,
generation_delta, generation_done, generation_failed, turn_hidden, ...). The
`id:` of every frame is the story's last position the stream has told the
client about, so a reconnecting EventSource sends it back as Last-Event-ID and
gets the visible turns it missed replayed first.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, current_app, request

from app.accounts.auth import current_user_or_none
from app.extensions import db
from app.inputs import decimal
from app.live.events import Event, get_event_bus
from app.live.hub import HANDOFF_HEADER, HANDOFF_SCOPE, StreamHub, event_position
from app.live.limits import take_stream_slot
from app.stories.reads import get_story, pending_job, visible_turns
from app.stories.serialize import job_dict, turn_dict

RETRY_MS = 3000
_POLL_SECONDS = 1.0  # how often an idle stream checks for shutdown


def event_stream(story_id: int, last_event_id: str | None = None) -> Response:
    """A text/event-stream response for the story; NotFound (404) if it does not exist.
    Under the event-driven server the open stream is handed to its hub (no thread held);
    elsewhere (`make dev`, the test client) a generator streams it from this thread."""
    story = get_story(story_id)
    return open_stream(
        story_id,
        current_user_or_none(),
        lambda: (_opening_events(story, last_event_id), story.last_position),
    )


def open_stream(
    channel: int, user: Any, opening: Callable[[], tuple[list[Event], int]]
) -> Response:
    """Take a stream slot (429/503 beyond a cap, never a hang), subscribe to `channel`, then
    read `opening()` (the first events and their position): subscribed first, so no event
    falls in a gap. Every stream of the app opens through here."""
    release = take_stream_slot(user)
    hub = _hub()
    try:
        subscription = hub.open(channel, release) if hub else get_event_bus().subscribe(channel)
    except Exception:
        release()
        raise
    try:
        first, position = opening()
    except Exception:
        if hub:
            hub.discard(subscription)
        else:
            subscription.close()
            release()
        raise
    db.session.remove()  # no session or transaction stays open while streaming
    return _stream_response(hub, subscription, first, position, release)


def _stream_response(
    hub: StreamHub | None, subscription: Any, first: list[Event], position: int, release: Any
) -> Response:
    """The text/event-stream response of an opened subscription: handed off to the
    event-driven server's hub when there is one, else frames from this thread."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if hub:
        opening = "".join(_opening_frames(first, position)).encode()
        headers[HANDOFF_HEADER] = hub.hand_off(subscription, opening, position)
        return Response(b"", mimetype="text/event-stream", headers=headers)
    frames = _frames(
        subscription,
        first,
        position,
        keepalive=float(current_app.config.get("SSE_KEEPALIVE_SECONDS", 15)),
        closing=current_app.extensions.get("relay.closing") or threading.Event(),
        lifetime=float(current_app.config.get("SSE_MAX_SECONDS", 600)),
    )
    response = Response(frames, mimetype="text/event-stream", headers=headers)
    response.call_on_close(release)  # the client went away, the stream ended or shutdown
    return response


def _hub() -> StreamHub | None:
    """The event-driven server's hub, if this request came through it."""
    scope = request.environ.get("asgi.scope") or {}
    return current_app.extensions.get("relay.stream_hub") if scope.get(HANDOFF_SCOPE) else None


def _opening_events(story: Any, last_event_id: str | None) -> list[Event]:
    events: list[Event] = []
    since = _parse_position(last_event_id)
    if since is not None and since < story.last_position:
        for turn in visible_turns(story, since=since):
            events.append({"type": "turn_created", "story_id": story.id, "turn": turn_dict(turn)})
    job = pending_job(story)
    events.append(
        {
            "type": "stream_open",
            "story_id": story.id,
            "last_position": story.last_position,
            "job": job_dict(job) if job else None,
        }
    )
    return events


def _frames(
    subscription: Any,
    first: list[Event],
    position: int,
    keepalive: float,
    closing: threading.Event,
    lifetime: float,
) -> Iterator[str]:
    """Yield SSE frames until the client goes away (GeneratorExit), the app shuts down or
    the stream has lived `lifetime` seconds (the client reconnects with Last-Event-ID)."""
    try:
        yield from _opening_frames(first, position)
        last_write = time.monotonic()
        ends = last_write + lifetime
        while not closing.is_set() and time.monotonic() < ends:
            event = subscription.get(timeout=min(_POLL_SECONDS, keepalive))
            if event is not None:
                position = max(position, event_position(event))
                yield format_frame(event, position)
                last_write = time.monotonic()
            elif time.monotonic() - last_write >= keepalive:
                yield ": keep-alive\n\n"
                last_write = time.monotonic()
    finally:
        subscription.close()


def _opening_frames(first: list[Event], position: int) -> Iterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    for event in first:
        yield format_frame(event, position)


def format_frame(event: Event, position: int) -> str:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"id: {position}\ndata: {data}\n\n"


def _parse_position(value: str | None) -> int | None:
    number = decimal(value)
    return number if number is not None and 0 <= number < 10**9 else None
