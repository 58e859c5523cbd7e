"""The web server: Flask for pages and the API, the event loop for live streams.

gunicorn runs `wsgi:server` with RelayWorker, a uvicorn worker: one event loop per
worker process. Every request but a stream runs the Flask app on a pool of WEB_THREADS
threads (a2wsgi). A stream's request (a path ending in /events) runs through Flask too
— session cookie, story lookup, caps, replay — and Flask answers it with an empty
response carrying a hand-off header; the server swallows that response and lets the
hub (app/live/hub.py) serve the stream on the loop. Same host, same port, same cookies
and the same rules as before: only the waiting moved off the threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
from typing import Any

import uvicorn
from a2wsgi import WSGIMiddleware
from flask import Flask
from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker

from app.live.events import InMemoryEventBus
from app.live.hub import HANDOFF_HEADER, HANDOFF_SCOPE, LocalSource, Receive, Send, StreamHub


class StreamingServer:
    """The ASGI application: Flask in threads, streams handed off to the hub."""

    def __init__(self, flask_app: Flask) -> None:
        cfg = flask_app.config
        self.flask_app = flask_app
        self.hub = StreamHub(
            _source_for(flask_app),
            keepalive=float(cfg.get("SSE_KEEPALIVE_SECONDS", 15)),
            lifetime=float(cfg.get("SSE_MAX_SECONDS", 600)),
            coalesce_ms=int(cfg.get("SSE_COALESCE_MS", 50)),
            backlog=int(cfg.get("SSE_READER_BACKLOG", 512)),
        )
        flask_app.extensions["relay.stream_hub"] = self.hub
        self.wsgi = WSGIMiddleware(flask_app, workers=int(cfg.get("WEB_THREADS", 32)))

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and scope["path"].endswith("/events"):
            await self._stream(scope, receive, send)
        else:
            await self.wsgi(scope, receive, send)  # type: ignore[arg-type]

    def _bind(self) -> None:
        """On the server's loop at last: start the hub; lift the cap off the threads."""
        if self.hub.loop is None:
            _raise_stream_cap(self.flask_app)
            self.hub.bind(asyncio.get_running_loop())

    async def _stream(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self._bind()
        handoff: dict[str, Any] = {}

        async def unless_handed_off(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message["headers"])
                token = headers.get(HANDOFF_HEADER.encode())
                if token:
                    handoff["token"] = token.decode()
                    handoff["headers"] = [
                        (k, v)
                        for k, v in message["headers"]
                        if k not in (HANDOFF_HEADER.encode(), b"content-length")
                    ]
                    return
            if not handoff:
                await send(message)  # an error, a cap's 429/503, a 404: as Flask wrote it

        scope = {**scope, HANDOFF_SCOPE: True}
        try:
            await self.wsgi(scope, receive, unless_handed_off)  # type: ignore[arg-type]
        except BaseException:
            if handoff and (parked := self.hub.take(handoff["token"])) is not None:
                self.hub.discard(parked)  # never leave a slot taken by a stream not served
            raise
        reader = self.hub.take(handoff["token"]) if handoff else None
        if reader is not None:
            await self.hub.serve(reader, handoff["headers"], send, receive)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._bind()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.hub.close_all()
                with contextlib.suppress(Exception):
                    await self.hub.source.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _source_for(flask_app: Flask) -> Any:
    bus = flask_app.extensions["relay.events"]
    if isinstance(bus, InMemoryEventBus):
        return LocalSource(bus)
    from app.live.redis_events import RedisSource

    return RedisSource(flask_app.config["REDIS_URL"])


def _raise_stream_cap(flask_app: Flask) -> None:
    """With no thread per stream, the automatic cap is the process's open files."""
    cfg = flask_app.config
    limits = flask_app.extensions.get("relay.streams")
    if limits is None or int(cfg.get("SSE_MAX_STREAMS") or 0):
        return
    files, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits.total = max(1, min(10_000, files - int(cfg.get("SSE_RESERVED_FILES", 256))))


def raise_open_file_limit() -> int:
    """Lift this process's soft open-file limit to its hard limit (one file per stream)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _Server(uvicorn.Server):
    """uvicorn's server, ending the live streams the moment it is told to stop: uvicorn
    would otherwise wait for them (they never finish) until its graceful timeout."""

    streams: StreamHub | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.streams is not None:
            self.streams.close_all_threadsafe()
        super().handle_exit(sig, frame)


class RelayWorker(UvicornWorker):
    """gunicorn's uvicorn worker with _Server (its _serve, as uvicorn-worker 0.4 writes it)."""

    CONFIG_KWARGS = {
        "loop": "auto",
        "http": "auto",
        "timeout_graceful_shutdown": 10,
        "proxy_headers": False,  # TRUSTED_PROXIES (werkzeug ProxyFix) alone decides
    }

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = _Server(config=self.config)
        server.streams = getattr(self.wsgi, "hub", None)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
