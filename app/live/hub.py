"""The web process's live readers, held on its event loop instead of a thread each.

Under the event-driven server (app/live/server.py) a stream's request goes through
Flask like any other request — session, story lookup, the caps, Last-Event-ID replay
(app/live/sse.py) — and Flask then hands the open stream to this hub, which keeps it
as a small Reader on the loop until the client goes away. Thousands of readers cost a
socket and a few small objects each, and never a request thread.

One source feeds every reader of the process: a listener on the in-memory bus in
embedded mode, one Redis pub/sub connection subscribed to the stories that have
readers here in scaled mode (app/live/redis_events.py). Each event is serialised once
for all its readers, and the model's deltas are coalesced to at most one frame per
SSE_COALESCE_MS per story (the last frame carries the whole text so far). A reader whose
client falls SSE_READER_BACKLOG frames behind is closed rather than buffered without
end: its EventSource reconnects and replays by Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.live.events import Event

HANDOFF_HEADER = "x-relay-stream"  # Flask's answer to a stream it hands to the hub
HANDOFF_SCOPE = "relay.handoff"  # the server marks a stream's ASGI scope: Flask may hand off
KEEPALIVE = b": keep-alive\n\n"
WAKE_CHUNK = 100  # readers' writers woken per pass of the event loop
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class EventSource(Protocol):
    """Where the hub's events come from; watch/unwatch are called with the hub's lock held."""

    def start(self, hub: StreamHub) -> None: ...

    def watch(self, story_id: int) -> Callable[[], None]:
        """Begin receiving the story's events; returns a wait for that to be in effect."""

    def unwatch(self, story_id: int) -> None: ...

    async def stop(self) -> None: ...


@dataclass(eq=False)
class Reader:
    """One open stream: its story, what it was already told, and its frames to send.
    Only the loop touches `pending` and `waiting` (a reader costs no task switch per frame
    beyond its own writer's)."""

    story_id: int
    release: Callable[[], None]
    pending: deque[bytes] = field(default_factory=deque)
    waiting: asyncio.Future[None] | None = None  # its writer's, while it has nothing to send
    floor: int = 0  # turn_created at or below this position were told before streaming
    position: int = 0  # the `id:` of its frames: the last story position it was told
    opening: bytes = b""
    done: bool = False  # closed: no more frames; its writer ends
    ends: float = float("inf")  # loop time its lifetime is up
    last_write: float = 0.0

    def put(self, frame: bytes, backlog: int, wake: bool = True) -> bool:
        """Queue a frame; False if the reader is (now) closed instead."""
        if len(self.pending) >= backlog:
            self.close()  # too slow: close, it reconnects and replays by Last-Event-ID
        elif not self.done:
            self.pending.append(frame)
            if wake:
                self.wake()
            return True
        return False

    def close(self) -> None:
        self.done = True
        self.wake()

    def wake(self) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(None)


class StreamHub:
    """Every live reader of this process, by story; fed by one EventSource."""

    def __init__(
        self,
        source: EventSource,
        keepalive: float,
        lifetime: float,
        coalesce_ms: int,
        backlog: int,
    ) -> None:
        self.source = source
        self.keepalive, self.lifetime, self.backlog = keepalive, lifetime, backlog
        self.coalesce = coalesce_ms / 1000
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.closing = False
        self._lock = threading.Lock()
        self._readers: dict[int, set[Reader]] = {}
        self._handoffs: dict[str, Reader] = {}
        self._pending: dict[int, tuple[Event, asyncio.TimerHandle]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the server's loop (once) and start the event source."""
        if self.loop is None:
            self.loop = loop
            self.source.start(self)
            self._ticker = loop.create_task(self._tick())

    def story_ids(self) -> list[int]:
        with self._lock:
            return list(self._readers)

    @property
    def reader_count(self) -> int:
        with self._lock:
            return sum(len(readers) for readers in self._readers.values())

    # -- from Flask's request thread ---------------------------------------------------

    def open(self, story_id: int, release: Callable[[], None]) -> Reader:
        """Register a reader before the story is read, so that no event falls in a gap."""
        reader = Reader(story_id, release)
        with self._lock:
            readers = self._readers.setdefault(story_id, set())
            readers.add(reader)
            in_effect = self.source.watch(story_id) if len(readers) == 1 else None
        if in_effect is not None:
            try:
                in_effect()
            except Exception:
                self.discard(reader)
                raise
        return reader

    def hand_off(self, reader: Reader, opening: bytes, position: int) -> str:
        """Park the reader for the server to serve; the token travels in a header."""
        reader.opening, reader.position, reader.floor = opening, position, position
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._handoffs[token] = reader
        return token

    def discard(self, reader: Reader) -> None:
        """Forget the reader and free its stream slot (idempotent, any thread)."""
        with self._lock:
            readers = self._readers.get(reader.story_id)
            if readers is not None and reader in readers:
                readers.discard(reader)
                if not readers:
                    del self._readers[reader.story_id]
                    self.source.unwatch(reader.story_id)
        reader.done = True
        reader.release()

    def publish_threadsafe(self, story_id: int, event: Event) -> None:
        """The bus listener: pass an event to the loop if anyone here reads the story."""
        if story_id in self._readers and self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the server has stopped
                self.loop.call_soon_threadsafe(self.dispatch, story_id, event)

    # -- on the loop -------------------------------------------------------------------

    def take(self, token: str) -> Reader | None:
        with self._lock:
            return self._handoffs.pop(token, None)

    def dispatch(self, story_id: int, event: Event) -> None:
        """Fan an event out to the story's readers, coalescing the model's deltas."""
        pending = self._pending.get(story_id)
        if event.get("type") == "generation_delta" and self.coalesce > 0:
            if pending is not None and _same_attempt(pending[0], event):
                pending[0]["delta"] = str(pending[0].get("delta", "")) + str(event.get("delta", ""))
                pending[0]["text_so_far"] = event.get("text_so_far")
                return
            self.flush(story_id)
            assert self.loop is not None
            timer = self.loop.call_later(self.coalesce, self.flush, story_id)
            self._pending[story_id] = (dict(event), timer)
            return
        self.flush(story_id)
        self._fan_out(story_id, event)

    def flush(self, story_id: int) -> None:
        pending = self._pending.pop(story_id, None)
        if pending is not None:
            pending[1].cancel()
            self._fan_out(story_id, pending[0])

    def _fan_out(self, story_id: int, event: Event) -> None:
        with self._lock:
            readers = list(self._readers.get(story_id, ()))
        if not readers:
            return
        data = json.dumps(
            {"story_id": story_id, **event}, ensure_ascii=False, separators=(",", ":"), default=str
        )
        told = event_position(event)
        is_new_turn = event.get("type") == "turn_created"
        frames: dict[int, bytes] = {}
        woken: list[Reader] = []
        for reader in readers:
            if is_new_turn and told <= reader.floor:
                continue  # replayed already, or on the page the stream was opened from
            reader.position = max(reader.position, told)
            frame = frames.get(reader.position)
            if frame is None:
                frame = f"id: {reader.position}\ndata: {data}\n\n".encode()
                frames[reader.position] = frame
            if reader.put(frame, self.backlog, wake=False):
                woken.append(reader)
        self._wake_in_chunks(woken)

    def _wake_in_chunks(self, readers: list[Reader]) -> None:
        """Wake WAKE_CHUNK writers per loop pass: the frames are queued in order already,
        and between passes the loop polls its sockets, so a thousand readers never hold
        up a page request for the whole fan-out."""
        for reader in readers[:WAKE_CHUNK]:
            reader.wake()
        if len(readers) > WAKE_CHUNK and self.loop is not None:
            self.loop.call_soon(self._wake_in_chunks, readers[WAKE_CHUNK:])

    async def serve(
        self, reader: Reader, headers: list[tuple[bytes, bytes]], send: Send, receive: Receive
    ) -> None:
        """Write the reader's frames until its client goes, its lifetime ends or shutdown."""
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(_end_on_disconnect(reader, receive))
        reader.last_write, reader.ends = loop.time(), loop.time() + self.lifetime
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": reader.opening, "more_body": True})
            while not reader.done:
                if not reader.pending:
                    reader.waiting = loop.create_future()
                    await reader.waiting
                    continue
                body = b"".join(reader.pending)
                reader.pending.clear()
                await send({"type": "http.response.body", "body": body, "more_body": True})
                reader.last_write = loop.time()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client's socket went away mid-write
        finally:
            watcher.cancel()
            self.discard(reader)

    async def _tick(self) -> None:
        """Once a second for all readers: keep-alives for the idle, an end for the old."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.keepalive))
            now = loop.time()
            with self._lock:
                readers = [r for story in self._readers.values() for r in story]
            for reader in readers:
                if now >= reader.ends:
                    reader.close()  # the client reconnects at once with Last-Event-ID
                elif now - reader.last_write >= self.keepalive and not reader.pending:
                    reader.put(KEEPALIVE, self.backlog)

    def close_all(self) -> None:
        """End every stream now (shutdown): their clients reconnect to another process."""
        self.closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        self.close_readers()

    def close_readers(self) -> None:
        """End every open stream (its client reconnects and replays what it missed)."""
        with self._lock:
            readers = [r for story in self._readers.values() for r in story]
            readers += list(self._handoffs.values())
        for reader in readers:
            reader.close()

    def close_all_threadsafe(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.close_all)


async def _end_on_disconnect(reader: Reader, receive: Receive) -> None:
    while (await receive()).get("type") != "http.disconnect":
        pass
    reader.close()


def _same_attempt(a: Event, b: Event) -> bool:
    return a.get("job_id") == b.get("job_id") and a.get("attempt") == b.get("attempt")


def event_position(event: Event) -> int:
    """The story position an event tells of (its turn's), else 0."""
    turn = event.get("turn")
    if isinstance(turn, dict) and isinstance(turn.get("position"), int):
        return turn["position"]
    return 0


class LocalSource:
    """Embedded mode: a listener on the process's InMemoryEventBus."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self._hub: StreamHub | None = None

    def start(self, hub: StreamHub) -> None:
        self._hub = hub
        self.bus.add_listener(hub.publish_threadsafe)

    def watch(self, story_id: int) -> Callable[[], None]:
        return _nothing  # in-process publishing reaches the listener at once

    def unwatch(self, story_id: int) -> None:
        pass

    async def stop(self) -> None:
        if self._hub is not None:
            self.bus.remove_listener(self._hub.publish_threadsafe)


def _nothing() -> None:
    pass
