"""The app as `make run` serves it (StreamingServer under uvicorn), in a thread of the
test process: pages and the API on a2wsgi's threads, live streams on the event loop."""

from __future__ import annotations

import threading
from typing import Any

import uvicorn

from app.live.server import StreamingServer
from tests.scaled.stack import free_port, wait_for


class AsgiServer:
    """start() serves the Flask app on a free port; stop() ends its streams and the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.streaming = StreamingServer(app)
        self.hub = self.streaming.hub
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.streaming, host="127.0.0.1", port=self.port, lifespan="on",
            log_level="warning", proxy_headers=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> AsgiServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "uvicorn")
        return self

    def stop(self) -> None:
        shutdown = self.app.extensions.get("relay.shutdown")
        if shutdown:
            shutdown()  # the runner first
        self.hub.close_all_threadsafe()
        self.server.should_exit = True
        self.thread.join(timeout=20)
