"""In Chromium: a reader reports a turn from the story page, a moderator hides it from the
/admin queue, and another reader's open page drops it without reloading (CSRF on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import start_live_server
from tests.browser.test_reading import PASSWORD, log_in, seed_story


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Any]:
    server = start_live_server(
        tmp_path_factory.mktemp("moderation") / "relay.sqlite3",
        tiny_model_dir,
        RELAY_START_RUNNER=False,
    )
    yield server
    server.stop()


def make_moderator(app: Any, username: str) -> None:
    from app.accounts.service import register_user
    from app.extensions import db

    with app.app_context():
        register_user(username, PASSWORD).role = "moderator"
        db.session.commit()
        db.session.remove()


def test_moderator_hides_a_reported_turn_and_readers_drop_it_live(quiet_server, new_page):
    """Does a turn reported from the story page, hidden from the /admin queue, vanish from an
    open reader's page without a reload, while the rest of the story stays?"""
    base = quiet_server.url
    story_id, _ = seed_story(quiet_server.app, 2, "Queue Harbour")
    make_moderator(quiet_server.app, "queue_mod")

    reporter = new_page()
    log_in(reporter, base, "queue_b")
    reporter.goto(f"{base}/stories/{story_id}")
    reporter.locator(".turn", has_text="Answer 0.").get_by_role("link", name="Report").click()
    expect(reporter.locator("blockquote")).to_have_text("Answer 0.")
    reporter.get_by_label("Why should a moderator look at this turn?").fill("Off-topic spam")
    reporter.get_by_role("button", name="Send the report").click()
    reported = reporter.locator(".turn", has_text="Answer 0.").get_by_test_id("reported")
    expect(reported).to_contain_text("a moderator will look")
    expect(reported).to_be_in_viewport()  # beside the turn, where the reader is looking

    reader = new_page()
    reader.goto(f"{base}/stories/{story_id}")
    expect(reader.locator("#story")).to_have_attribute("data-connected", "true")
    reader.evaluate("() => { window.__stay = 1; }")

    moderator = new_page()
    log_in(moderator, base, "queue_mod")
    moderator.get_by_test_id("admin-link").click()
    item = moderator.locator(".queue-item", has_text="Answer 0.")
    expect(item).to_contain_text("Off-topic spam")
    expect(item).to_contain_text("Paragraph 0.")  # the story around it
    item.get_by_placeholder("Reason for hiding").fill("spam")
    item.get_by_role("button", name="Hide").click()
    expect(moderator.locator(".flash-success")).to_have_text("The turn is hidden.")
    expect(moderator.locator(".queue-item", has_text="Answer 0.")).to_have_count(0)

    expect(reader.locator(".turn-text", has_text="Answer 0.")).to_have_count(0)
    expect(reader.locator("#turns .turn .turn-text")).to_have_text(
        ["Paragraph 0.", "Paragraph 1.", "Answer 1."]
    )
    assert reader.evaluate("window.__stay") == 1
