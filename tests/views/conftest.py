"""View tests run with the generation runner off, so a queued job stays pending until a
test completes it (claim_job/complete_job): what the page shows is then deterministic."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def app(quiet_app: Any) -> Any:
    """The runner is off here so pending states stay put."""
    return quiet_app


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
