"""Wire generation into the app: event bus, job queue, runner (placeholder until the runner lands)."""

from __future__ import annotations

from flask import Flask

from app.generation.events import InMemoryEventBus


class _NoRunner:
    def submit(self, job_id: int) -> None:
        pass


def init_generation(app: Flask) -> None:
    app.extensions["relay.events"] = InMemoryEventBus()
    app.extensions["relay.jobs"] = _NoRunner()
