"""Story events over Redis pub/sub: the scaled mode's EventBus.

Any web worker on any machine publishes to channel `relay:story:<id>`; every
SSE stream subscribed to that story, in whichever worker, receives it. Each
subscription owns one Redis connection (pub/sub connections are stateful),
closed when the stream ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import redis

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
            raise Unavailable("Live updates are unavailable right now.", retry_after=5) from exc
