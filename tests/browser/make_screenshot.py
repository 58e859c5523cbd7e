"""Take the README's screenshots, in Chromium: the home page and a story page, in
English and in Korean (a Korean browser, a Korean story).

    .venv/bin/python -m tests.browser.make_screenshot [output folder, default docs/]

writes screenshot-home.png, screenshot-home-ko.png, screenshot-story.png and
screenshot-story-ko.png. A script, not a test: run it after changing how those
pages look, and commit the pictures. The stories are seeded through the relay
functions; the model's turns are written here (playing the runner through
claim_job/complete_job) so that the pictures show readable prose instead of an
untrained test model's output.
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


KO_OPENING = (
    "카릭 곶의 등대는 십일 년 동안 꺼져 있었다. 서연은 등불 하나와 성냥 한 갑, 그리고 "
    "끝내 뜯어보지 못한 편지 한 통을 들고 노를 저어 그곳으로 갔다."
)
KO_TURNS = [
    (
        "seoyeon",
        "그녀는 바람이 닿지 않는 철계단 중간쯤에 앉아 편지를 읽었다. 아버지의 글씨였다. "
        "첫 줄은 이랬다. \u201c등대가 꺼져 있다면, 내가 껐기 때문이다.\u201d",
    ),
    (
        None,
        "발아래에서 바다가 잿빛 물결로 길게 일렁였다. 서연은 편지를 한 번, 또 한 번 "
        "접었다. 작게 접으면 그 말들이 덜 무거워질 것처럼.",
    ),
    (
        "minjun",
        "꼭대기의 등실은 깨끗이 쓸려 있었다. 누군가 얼마 전까지 이곳에 있었다. 놋쇠는 "
        "반짝였고, 의자 하나가 바다가 아닌 육지 쪽 창을 향해 놓여 있었다.",
    ),
    (
        None,
        "의자 위에는 두 번째 봉투가 놓여 있었다. 겉봉에는 \u201c돌아오는 사람에게\u201d라고만 "
        "적혀 있었고, 봉랍은 아직 말랑했다.",
    ),
]
STORIES = {
    "en": ("The Lighthouse Letters", OPENING, TURNS),
    "ko": ("등대의 편지", KO_OPENING, KO_TURNS),
}
READERS = {"en": "tomas", "ko": "seoyeon"}  # whoever may write next

STREAMING = "The wick took the flame slowly, the way a sleeper turns toward a voice"


def seed(app, language: str) -> tuple[int, int]:
    """The `language` story with its turns; its id and its last job's."""
    from app.accounts.service import register_user
    from app.extensions import db
    from app.stories import reads, relay
    from app.stories.jobs import claim_job, complete_job

    title, opening, turns = STORIES[language]
    with app.app_context():
        users = {}
        for name in {writer for writer, _ in turns if writer is not None}:
            users[name] = register_user(name, "password123")
        owner = users[turns[0][0]]
        story = relay.create_story(
            owner, {"title": title, "language": language, "opening": opening}
        )
        for writer, text in turns:
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
            ko_story, _ = seed(server.app, "ko")  # answered to the end
            en_story, en_job = seed(server.app, "en")  # the model's next turn to come
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for language, locale, suffix in (("en", "en-US", ""), ("ko", "ko-KR", "-ko")):
                    page = browser.new_page(locale=locale, viewport={"width": 1280, "height": 900})
                    page.goto(f"{server.url}/")
                    page.screenshot(path=str(out / f"screenshot-home{suffix}.png"), full_page=True)
                    page.goto(f"{server.url}/login")
                    page.locator("input[name=username]").fill(READERS[language])
                    page.locator("input[name=password]").fill("password123")
                    page.locator("form button[type=submit]").last.click()
                    page.wait_for_url(f"{server.url}/")
                    story_id = en_story if language == "en" else ko_story
                    page.goto(f"{server.url}/stories/{story_id}")
                    page.locator("#story[data-connected='true']").wait_for()
                    if language == "en":
                        stream_partial_answer(server.app, story_id, en_job)
                        page.locator(
                            ".turn-pending .turn-text", has_text="toward a voice"
                        ).wait_for()
                        page.locator("textarea[name=text]").fill("Out on the water, a boat")
                    page.locator("body").click(position={"x": 5, "y": 300})
                    page.screenshot(path=str(out / f"screenshot-story{suffix}.png"), full_page=True)
                    page.close()
                browser.close()
        finally:
            server.stop()
    print(*sorted(out.glob("screenshot-*.png")), sep="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs")
