"""Story events fanned out to SSE subscribers.

Event kinds: turn_created, generation_started, generation_delta, generation_reset (a new
try replaces the text streamed so far), generation_done,
generation_failed, turn_hidden, turn_restored, story_updated. Each event is a
JSON-serialisable dict with at least "type" and "story_id".

The embedded mode uses InMemoryEventBus (one process); the scaled mode backs
the same interface with Redis pub/sub.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from flask import current_app

Event = dict[str, Any]


class Subscription(Protocol):
    def get(self, timeout: float) -> Event | None:
        """Next event, or None when timeout passes with nothing."""

    def close(self) -> None: ...


class EventBus(Protocol):
    def publish(self, story_id: int, event: Event) -> None: ...

    def subscribe(self, story_id: int) -> Subscription: ...


class _QueueSubscription:
    def __init__(self, bus: InMemoryEventBus, story_id: int) -> None:
        self._bus = bus
        self.story_id = story_id
        self.queue: queue.Queue[Event] = queue.Queue(maxsize=10_000)

    def get(self, timeout: float) -> Event | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._bus._remove(self)

    def __iter__(self) -> Iterator[Event]:  # convenience for tests
        while (event := self.get(timeout=5)) is not None:
            yield event


class InMemoryEventBus:
    """Thread-safe fan-out to subscribers in this process, and to listeners (the
    event-driven server's hub), which are called in the publishing thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[int, list[_QueueSubscription]] = {}
        self._listeners: list[Callable[[int, Event], None]] = []

    def add_listener(self, listener: Callable[[int, Event], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[int, Event], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def publish(self, story_id: int, event: Event) -> None:
        event = {"story_id": story_id, **event}
        with self._lock:
            subs = list(self._subs.get(story_id, ()))
            listeners = list(self._listeners)
        for listener in listeners:
            listener(story_id, event)
        for sub in subs:
            with contextlib.suppress(queue.Full):  # a stuck reader must not block the writer
                sub.queue.put_nowait(event)

    def subscribe(self, story_id: int) -> _QueueSubscription:
        sub = _QueueSubscription(self, story_id)
        with self._lock:
            self._subs.setdefault(story_id, []).append(sub)
        return sub

    def _remove(self, sub: _QueueSubscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.story_id, [])
            if sub in subs:
                subs.remove(sub)


def get_event_bus() -> EventBus:
    return current_app.extensions["relay.events"]


def publish(story_id: int, event_type: str, **data: Any) -> None:
    """Publish one event on the current app's bus."""
    get_event_bus().publish(story_id, {"type": event_type, **data})
