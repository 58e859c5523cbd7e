"""Caps on live streams, so that readers can never take every request thread.

Each open SSE stream holds one of the web process's threads for as long as
it lives. Without a cap, WEB_THREADS readers (32 browser tabs, or one hostile
loop) left no thread for anything else and the whole site stopped answering.
A stream beyond a cap gets an answer at once instead of a hang:

- per process (SSE_MAX_STREAMS, default: all but SSE_RESERVED_THREADS of
  WEB_THREADS): 503 with Retry-After — the server is busy, not the client;
- per client address (SSE_MAX_PER_ADDRESS) and per signed-in user
  (SSE_MAX_PER_USER): 429 with Retry-After.

Behind a reverse proxy the address is the proxy's unless TRUSTED_PROXIES says
how many proxies to believe in X-Forwarded-For (werkzeug's ProxyFix). A slot
is released when the response closes (the client went away, the stream ended
or the app shut down), so no subscriber leaks.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_babel import gettext as _

from app.errors import RelayError, Unavailable

RETRY_SECONDS = 10


class TooManyStreams(RelayError):
    status, code = 429, "too_many_streams"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.retry_after = RETRY_SECONDS


class StreamLimits:
    """Counters of this process's open streams: in total, per address, per user."""

    def __init__(self, total: int, per_address: int, per_user: int) -> None:
        self.total, self.per_address, self.per_user = total, per_address, per_user
        self._lock = threading.Lock()
        self._open = 0
        self._by_address: Counter[str] = Counter()
        self._by_user: Counter[int] = Counter()

    @property
    def open(self) -> int:
        return self._open

    def acquire(self, address: str, user_id: int | None) -> Callable[[], None]:
        """Take a slot or raise the cap's error; returns the (idempotent) release."""
        with self._lock:
            if self._open >= self.total:
                raise Unavailable(
                    _(
                        "Too many live readers on this server right now; the page reloads "
                        "new turns when you come back."
                    ),
                    retry_after=RETRY_SECONDS,
                    code="streams_full",
                )
            if self._by_address[address] >= self.per_address:
                raise TooManyStreams(
                    _(
                        "This address already has %(count)s live streams open; close a tab "
                        "and try again.",
                        count=self.per_address,
                    )
                )
            if user_id is not None and self._by_user[user_id] >= self.per_user:
                raise TooManyStreams(
                    _(
                        "You already have %(count)s live streams open; close a tab and try again.",
                        count=self.per_user,
                    )
                )
            self._open += 1
            self._by_address[address] += 1
            if user_id is not None:
                self._by_user[user_id] += 1
        released: list[bool] = []

        def release() -> None:
            with self._lock:
                if released:
                    return
                released.append(True)
                self._open -= 1
                self._by_address[address] -= 1
                if self._by_address[address] <= 0:
                    del self._by_address[address]
                if user_id is not None:
                    self._by_user[user_id] -= 1
                    if self._by_user[user_id] <= 0:
                        del self._by_user[user_id]

        return release


def init_stream_limits(app: Flask) -> None:
    """The process's stream counters from the settings; ProxyFix for trusted proxies."""
    cfg = app.config
    total = int(cfg.get("SSE_MAX_STREAMS") or 0) or max(
        1, int(cfg.get("WEB_THREADS", 32)) - int(cfg.get("SSE_RESERVED_THREADS", 8))
    )
    app.extensions["relay.streams"] = StreamLimits(
        total, int(cfg.get("SSE_MAX_PER_ADDRESS", 8)), int(cfg.get("SSE_MAX_PER_USER", 8))
    )
    proxies = int(cfg.get("TRUSTED_PROXIES") or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]


def take_stream_slot(user: Any) -> Callable[[], None]:
    """A slot for one stream of this request's client and user, or the cap's error."""
    limits: StreamLimits = current_app.extensions["relay.streams"]
    return limits.acquire(request.remote_addr or "-", getattr(user, "id", None))
