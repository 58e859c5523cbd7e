"""In Chromium, on a server whose model turns the test writes itself (runner off):
loading earlier turns of a long story, turns hidden and restored live, regenerating."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import start_live_server

PASSWORD = "password123"


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Any]:
    server = start_live_server(
        tmp_path_factory.mktemp("quiet") / "relay.sqlite3", tiny_model_dir, RELAY_START_RUNNER=False
    )
    yield server
    server.stop()


def seed_story(app: Any, pairs: int, title: str) -> tuple[int, dict[str, int]]:
    """A story by two writers with `pairs` paragraphs, each answered by 'the model'."""
    from app.accounts.models import User
    from app.accounts.service import register_user
    from app.extensions import db
    from app.stories import relay
    from app.stories.jobs import claim_job, complete_job

    with app.app_context():
        names = [f"{title.split()[0].lower()}_{n}" for n in ("a", "b")]
        ids = {name: register_user(name, PASSWORD).id for name in names}
        story_id = relay.create_story(
            db.session.get(User, ids[names[0]]),
            {"title": title, "language": "en", "opening": "It began at the harbour."},
        ).id
        for n in range(pairs):
            writer = db.session.get(User, ids[names[n % 2]])
            _, job = relay.append_human_turn(story_id, writer, f"Paragraph {n}.", 2 * n)
            claim_job(job.id, "test")
            complete_job(job.id, f"Answer {n}.")
        db.session.remove()
    return story_id, ids


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("signed-in")).to_contain_text(username)


def test_load_earlier_turns_without_leaving_the_page(quiet_server, new_page):
    """Does "Load earlier turns" bring back the start of a long story in place, in order?"""
    story_id, _ = seed_story(quiet_server.app, 30, "Long Harbour")
    page = new_page()
    page.goto(f"{quiet_server.url}/stories/{story_id}")
    texts = page.locator("#turns .turn .turn-text")
    expect(texts).to_have_count(40)
    expect(texts.first).to_have_text("Paragraph 10.")
    page.evaluate("() => { window.__stay = 1; }")
    page.get_by_role("link", name="Load earlier turns").click()
    expect(texts).to_have_count(60)
    expected = [t for n in range(30) for t in (f"Paragraph {n}.", f"Answer {n}.")]
    expect(texts).to_have_text(expected)
    expect(page.get_by_role("link", name="Load earlier turns")).to_have_count(0)
    assert page.evaluate("window.__stay") == 1


def test_hidden_and_restored_turns_update_live(quiet_server, new_page):
    """Does a hidden turn vanish for a reader and grey out for a moderator, live, and come back?"""
    from app.accounts.models import User
    from app.accounts.service import register_user
    from app.extensions import db
    from app.stories import reads, relay

    app = quiet_server.app
    story_id, _ = seed_story(app, 2, "Live Hiding")
    with app.app_context():
        mod = register_user("hider", PASSWORD)
        mod.role = "moderator"
        db.session.commit()
        mod_id = mod.id
        turn_id = reads.get_story(story_id).turns[1].id  # "Answer 0."
    reader = new_page()
    reader.goto(f"{quiet_server.url}/stories/{story_id}")
    moderator = new_page()
    log_in(moderator, quiet_server.url, "hider")
    moderator.goto(f"{quiet_server.url}/stories/{story_id}")
    for page in (reader, moderator):
        expect(page.locator("#story")).to_have_attribute("data-connected", "true")

    with app.app_context():
        relay.set_hidden(turn_id, db.session.get(User, mod_id), True, "off topic")
    expect(reader.locator(".turn-text", has_text="Answer 0.")).to_have_count(0)
    hidden = moderator.locator(".turn", has_text="Answer 0.")
    expect(hidden).to_have_class("turn turn-ai turn-hidden")
    expect(hidden.locator(".hidden-reason")).to_have_text("Hidden: off topic")

    with app.app_context():
        relay.set_hidden(turn_id, db.session.get(User, mod_id), False, "")
    expect(reader.locator("#turns .turn .turn-text")).to_have_text(
        ["Paragraph 0.", "Answer 0.", "Paragraph 1.", "Answer 1."]
    )
    expect(moderator.locator(".turn-hidden")).to_have_count(0)


def test_regenerate_replaces_the_answer_live(quiet_server, new_page):
    """Can the writer ask for another version, the old one leaving and the new one arriving?"""
    from app.extensions import db
    from app.stories import reads
    from app.stories.jobs import claim_job, complete_job

    app = quiet_server.app
    story_id, ids = seed_story(app, 2, "Second Thoughts")
    writer_name = [name for name in ids if name.endswith("b")][0]  # wrote paragraph 1
    page = new_page()
    log_in(page, quiet_server.url, writer_name)
    page.goto(f"{quiet_server.url}/stories/{story_id}")
    expect(page.locator("#story")).to_have_attribute("data-connected", "true")
    page.get_by_role("button", name="Ask the model for another version").click()
    expect(page.locator(".turn-text", has_text="Answer 1.")).to_have_count(0)
    expect(page.locator(".turn-pending")).to_have_count(1)
    expect(page.locator("#turn-submit")).to_be_disabled()

    with app.app_context():
        job = reads.pending_job(reads.get_story(story_id))
        claim_job(job.id, "test")
        complete_job(job.id, "A better answer.")
        db.session.remove()
    expect(page.locator("#turns .turn .turn-text")).to_have_text(
        ["Paragraph 0.", "Answer 0.", "Paragraph 1.", "A better answer."]
    )
    expect(page.locator(".turn-pending")).to_have_count(0)
    expect(page.locator("#regenerate-form")).to_be_visible()


def test_turns_that_arrive_live_get_their_tools(quiet_server, new_page):
    """Without a reload: does my own new paragraph get Edit and Withdraw (until the answer is
    final), and does the model's live answer get "Fork from here" for a reader?"""
    from app.extensions import db
    from app.stories import reads
    from app.stories.jobs import claim_job, complete_job

    app = quiet_server.app
    story_id, ids = seed_story(app, 1, "Tidewater Tools")
    writer_name, reader_name = sorted(ids)  # a wrote paragraph 0; b writes next
    writer, reader = new_page(), new_page()
    log_in(writer, quiet_server.url, reader_name)
    log_in(reader, quiet_server.url, writer_name)
    for page in (writer, reader):
        page.goto(f"{quiet_server.url}/stories/{story_id}")
        expect(page.locator("#story")).to_have_attribute("data-connected", "true")
    writer.get_by_label("Your paragraph").fill("The tide came in early.")
    writer.get_by_role("button", name="Add my paragraph").click()
    mine = writer.locator(".turn-human", has_text="The tide came in early.")
    expect(mine.get_by_test_id("edit-turn")).to_be_visible()
    expect(mine.get_by_test_id("withdraw-turn")).to_be_visible()
    theirs = reader.locator(".turn-human", has_text="The tide came in early.")
    expect(theirs).to_have_count(1)
    expect(theirs.get_by_test_id("edit-turn")).to_have_count(0)

    with app.app_context():
        job = reads.pending_job(reads.get_story(story_id))
        claim_job(job.id, "test")
        complete_job(job.id, "The gulls went quiet.")
        db.session.remove()
    answer = reader.locator(".turn-ai", has_text="The gulls went quiet.")
    expect(answer.get_by_test_id("fork-turn")).to_be_visible()
    expect(mine.get_by_test_id("edit-turn")).to_be_hidden()  # the answer is final
    answer.get_by_test_id("fork-turn").click()
    expect(reader.locator("#story-title")).to_contain_text("Tidewater Tools")
    expect(reader.locator("#turns .turn .turn-text")).to_have_text(
        ["Paragraph 0.", "Answer 0.", "The tide came in early.", "The gulls went quiet."]
    )
    assert writer.dialogs == [] and reader.dialogs == []
