"""Wire generation into the app: event bus, model registry, job runner, shutdown.

app.extensions after init_generation(app):
  "relay.events"    EventBus (InMemoryEventBus in embedded mode)
  "relay.jobs"      JobQueue (EmbeddedRunner in embedded mode)
  "relay.registry"  ModelRegistry (nothing loaded until the first generation)
  "relay.generator" None until the first job builds a Generator (a batching engine may preset it)
  "relay.closing"   threading.Event set at shutdown (ends SSE streams)
  "relay.shutdown"  callable: stop the runner threads and close streams
RELAY_RUN_MODE=scaled: RedisEventBus and CeleryJobQueue instead (app.runners.celery_queue),
plus "relay.celery", the Celery app.
No torch import happens here.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask

from app.generation.registry import ModelRegistry
from app.live.events import InMemoryEventBus
from app.runners.embedded import EmbeddedRunner

BATCHED_RUNNER_THREADS = 4


def runner_threads(config: Any) -> int:
    """RELAY_RUNNER_THREADS, or by default: several jobs at once when they share the batching
    engine's batch (stories answered together), one at a time with plain HF generate."""
    configured = int(config.get("RELAY_RUNNER_THREADS") or 0)
    if configured > 0:
        return configured
    batched = str(config.get("RELAY_ENGINE") or "batched").lower() == "batched"
    return BATCHED_RUNNER_THREADS if batched else 1


def init_generation(app: Flask) -> None:
    if app.config.get("RELAY_RUN_MODE") == "scaled":
        # Redis pub/sub events and Celery workers instead of the in-process runner.
        from app.runners.celery_queue import init_scaled

        init_scaled(app)
        return
    closing = threading.Event()
    runner = EmbeddedRunner(
        app,
        workers=runner_threads(app.config),
        poll_seconds=float(app.config.get("RELAY_RUNNER_POLL_SECONDS", 5.0)),
        deadline_seconds=float(app.config.get("RELAY_DEADLINE_SECONDS", 15.0)),
    )

    def shutdown() -> None:
        closing.set()
        runner.enabled = False  # a late submit must not start threads again
        runner.stop()

    app.extensions["relay.events"] = InMemoryEventBus()
    app.extensions["relay.registry"] = ModelRegistry.from_config(app.config)
    app.extensions["relay.generator"] = None
    app.extensions["relay.jobs"] = runner
    app.extensions["relay.closing"] = closing
    app.extensions["relay.shutdown"] = shutdown

    if runner.enabled:
        # Start in the serving process: on its first request (or first submit) ...
        app.before_request(runner.ensure_started)
        # ... or now, in the Werkzeug reloader's child, which is the serving process.
        if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
            runner.start()
