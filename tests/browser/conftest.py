"""Browser tests: the app on a live server as `make run` serves it (SQLite file, tiny
model, runner on, CSRF on)
and Debian's Chromium driven by Playwright's sync API (never `playwright install`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.asgi_server import AsgiServer
from tests.conftest import make_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def start_live_server(db_path: Path, model_dir: Path, **overrides: Any) -> AsgiServer:
    """The app on a fresh SQLite file, served as `make run` serves it."""
    from app.extensions import db

    overrides.setdefault("WTF_CSRF_ENABLED", True)
    overrides.setdefault("SSE_KEEPALIVE_SECONDS", 2)
    # The tiny model writes a turn within one 50 ms coalescing window; every delta its own
    # frame lets the tests see the text arrive piece by piece (tests/live covers coalescing).
    overrides.setdefault("SSE_COALESCE_MS", 0)
    app = make_app(f"sqlite:///{db_path}", model_dir, **overrides)
    with app.app_context():
        db.create_all()
    return AsgiServer(app).start()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Any]:
    server = start_live_server(
        tmp_path_factory.mktemp("live") / "relay.sqlite3", tiny_model_dir, RELAY_START_RUNNER=True
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium: Any) -> Iterator[Any]:
    """Open pages, each in its own browser context (its own cookies: another person)."""
    contexts = []

    def open_page() -> Any:
        context = chromium.new_context(viewport={"width": 1200, "height": 900})
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        return page

    yield open_page
    for context in contexts:
        context.close()
