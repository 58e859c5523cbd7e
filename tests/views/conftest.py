"""View tests run with the generation runner off, so a queued job stays pending until a
test completes it (claim_job/complete_job): what the page shows is then deterministic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_app


def build_app(db_url: str, tiny_model_dir: Path, **overrides: Any) -> Any:
    from app.extensions import db

    overrides.setdefault("RELAY_START_RUNNER", False)
    application = make_app(db_url, tiny_model_dir, **overrides)
    with application.app_context():
        db.drop_all()
        db.create_all()
    return application


def close_app(application: Any) -> None:
    from app.extensions import db

    shutdown = application.extensions.get("relay.shutdown")
    if shutdown:
        shutdown()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(db_url: str, tiny_model_dir: Path) -> Iterator[Any]:
    application = build_app(db_url, tiny_model_dir)
    yield application
    close_app(application)


class Browser:
    """A test client that signs in through the real forms."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def register(self, username: str, password: str = "password123") -> Any:
        return self.client.post(
            "/register", data={"username": username, "password": password, "confirm": password}
        )

    def login(self, username: str, password: str = "password123") -> Any:
        return self.client.post("/login", data={"username": username, "password": password})


@pytest.fixture
def browser(client: Any) -> Browser:
    return Browser(client)
