"""Take docs/screenshot-story.png: a story page with a few turns, in Chromium.

    .venv/bin/python -m tests.browser.make_screenshot [output.png]

The story is seeded through the relay functions; the model's turns are written
here (playing the runner through claim_job/complete_job) so that the picture
shows readable English instead of an untrained test model's output.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from app.config import ROOT
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_live_server

OPENING = (
    "The lighthouse on Carrick Point had been dark for eleven years when Mara Quill "
    "rowed out to it with a lantern, a box of matches, and a letter she had never "
    "been brave enough to open."
)
TURNS = [
    (
        "mara",
        "She read it on the iron stairs, halfway up, where the wind could not "
        "reach. It was in her father's hand, and it began: \u201cIf the light is out, "
        "it is because I put it out.\u201d",
    ),
    (
        None,
        "Below her the sea moved in long grey ridges, patient as a held breath. "
        "Mara folded the letter once, then again, as if making it smaller might make "
        "its words weigh less.",
    ),
    (
        "tomas",
        "At the top she found the lamp room swept clean. Someone had been "
        "here recently: the brass was polished, and a single chair faced the window, "
        "turned toward the mainland rather than the sea.",
    ),
    (
        None,
        "On the chair lay a second envelope, newer than the first, addressed "
        "simply to \u201cThe one who comes back.\u201d The ink had not yet faded, and "
        "the seal was still soft to the touch.",
    ),
    (
        "mara",
        "Mara struck a match. For a moment she let it burn down toward her "
        "fingers, watching the small flame lean toward the glass, as though it "
        "already knew where it was supposed to go.",
    ),
]


STREAMING = "The wick took the flame slowly, the way a sleeper turns toward a voice"


def seed(app) -> tuple[int, int]:
    from app.accounts.service import register_user
    from app.extensions import db
    from app.stories import reads, relay
    from app.stories.jobs import claim_job, complete_job

    with app.app_context():
        users = {name: register_user(name, "password123") for name in ("mara", "tomas")}
        story = relay.create_story(
            users["mara"],
            {"title": "The Lighthouse Letters", "language": "en", "opening": OPENING},
        )
        for writer, text in TURNS:
            if writer is not None:
                current = reads.get_story(story.id)
                _, job = relay.append_human_turn(
                    story.id, users[writer], text, current.last_position
                )
            else:
                claim_job(job.id, "screenshot")
                complete_job(job.id, text)
        db.session.remove()
        return story.id, job.id


def stream_partial_answer(app, story_id: int, job_id: int) -> None:
    """Show the model's next turn mid-stream, as readers see it arrive."""
    from app.live.events import publish
    from app.stories.jobs import claim_job

    with app.app_context():
        claim_job(job_id, "screenshot")
        for word in STREAMING.split(" "):
            publish(story_id, "generation_delta", delta=word + " ", job_id=job_id)


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = start_live_server(Path(tmp) / "relay.sqlite3", Path(tmp), RELAY_START_RUNNER=False)
        try:
            story_id, job_id = seed(server.app)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{server.url}/login")
                page.get_by_label("Username").fill("tomas")
                page.get_by_label("Password").fill("password123")
                page.get_by_role("button", name="Log in").click()
                page.goto(f"{server.url}/stories/{story_id}")
                page.locator("#story[data-connected='true']").wait_for()
                stream_partial_answer(server.app, story_id, job_id)
                page.locator(".turn-pending .turn-text", has_text="toward a voice").wait_for()
                page.get_by_label("Your paragraph").fill("Out on the water, a boat")
                page.locator("body").click(position={"x": 5, "y": 300})
                page.screenshot(path=str(out), full_page=True)
                browser.close()
        finally:
            server.stop()
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot-story.png")
