"""Story events over Redis pub/sub: the scaled mode's EventBus.

Any web worker on any machine publishes to channel `relay:story:<id>`; every
SSE stream subscribed to that story, in whichever worker, receives it. Each
subscription owns one Redis connection (pub/sub connections are stateful),
closed when the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis
from flask_babel import gettext as _

from app.errors import Unavailable
from app.live.events import Event

log = logging.getLogger(__name__)
CHANNEL = "relay:story:{}"


class RedisSubscription:
    def __init__(self, client: redis.Redis, story_id: int) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(CHANNEL.format(story_id))

    def get(self, timeout: float) -> Event | None:
        try:
            message = self._pubsub.get_message(timeout=timeout)
        except redis.RedisError:
            log.warning("event subscription lost its Redis connection", exc_info=True)
            raise
        if message is None or message.get("type") != "message":
            return None
        return json.loads(message["data"])

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self._pubsub.close()


class RedisEventBus:
    """EventBus on Redis pub/sub; publishing never blocks generation for long."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
        )

    def publish(self, story_id: int, event: Event) -> None:
        payload: dict[str, Any] = {"story_id": story_id, **event}
        try:
            self.client.publish(CHANNEL.format(story_id), json.dumps(payload, default=str))
        except redis.RedisError:
            # Events are a live view; the database stays the truth and readers resync.
            log.warning("could not publish %s for story %s", event.get("type"), story_id)

    def subscribe(self, story_id: int) -> RedisSubscription:
        try:
            return RedisSubscription(self.client, story_id)
        except redis.RedisError as exc:
            raise Unavailable(_("Live updates are unavailable right now."), retry_after=5) from exc


class RedisSource:
    """Scaled mode: the hub's events from one Redis pub/sub connection per web process,
    subscribed to exactly the stories that have readers in it (redis.asyncio, on the
    server's loop). If Redis drops the connection every reader here is closed: each
    reconnects, replays what it missed by Last-Event-ID and subscribes afresh."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._hub: Any = None
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None

    def start(self, hub: Any) -> None:
        self._hub = hub
        self._task = hub.loop.create_task(self._run())

    def watch(self, story_id: int) -> Callable[[], None]:
        done = asyncio.run_coroutine_threadsafe(self._subscribe(story_id), self._hub.loop)

        def in_effect() -> None:
            try:
                done.result(timeout=5)
            except Exception as exc:
                message = _("Live updates are unavailable right now.")
                raise Unavailable(message, retry_after=5) from exc

        return in_effect

    def unwatch(self, story_id: int) -> None:
        asyncio.run_coroutine_threadsafe(self._unsubscribe(story_id), self._hub.loop)

    async def _connect(self) -> Any:
        if self._pubsub is None:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2)
            self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        return self._pubsub

    async def _subscribe(self, story_id: int) -> None:
        await (await self._connect()).subscribe(CHANNEL.format(story_id))

    async def _unsubscribe(self, story_id: int) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                await self._pubsub.unsubscribe(CHANNEL.format(story_id))

    async def _resubscribe(self) -> None:
        """Stories whose readers arrived while the connection was down still need events."""
        with contextlib.suppress(redis.RedisError, OSError):
            for story_id in self._hub.story_ids():
                await self._subscribe(story_id)

    async def _run(self) -> None:
        while True:
            pubsub = self._pubsub
            if pubsub is None or not pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await pubsub.get_message(timeout=1.0)
            except (redis.RedisError, OSError):
                log.warning("live streams lost their Redis connection; closing them", exc_info=True)
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                self._hub.close_readers()
                await asyncio.sleep(1)
                await self._resubscribe()
                continue
            if message is not None and message.get("type") == "message":
                story_id = int(message["channel"].rsplit(b":", 1)[-1])
                self._hub.dispatch(story_id, json.loads(message["data"]))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
