"""EPUB export (app/stories/epub.py): opens with ebooklib, credits every visible turn,
leaves hidden ones out, splits chapters as marked, keeps Korean intact, and passes
epubcheck with no errors. Both databases."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from ebooklib import ITEM_DOCUMENT, epub

from app.accounts.models import User
from app.extensions import db
from app.stories import edits, jobs, relay
from app.stories.export import export_story
from app.stories.models import Story
from tests.conftest import Factory

EPUBCHECK = "/usr/bin/epubcheck"


@pytest.fixture
def app(quiet_app):
    with quiet_app.app_context():
        yield quiet_app


@pytest.fixture
def f(app) -> Factory:
    return Factory(app)


def user(user_id: int) -> User:
    return db.session.get(User, user_id)


def write(story_id: int, user_id: int, text: str, answer: str | None) -> int:
    """A paragraph and (unless None) the model's answer; the paragraph's position."""
    story = db.session.get(Story, story_id)
    db.session.refresh(story)
    turn, job = relay.append_human_turn(story_id, user(user_id), text, story.last_position)
    if answer is not None:
        assert jobs.claim_job(job.id, "test") is not None
        jobs.complete_job(job.id, answer)
    return turn.position


def build(story_id: int, tmp_path: Path) -> tuple[Path, epub.EpubBook, dict[str, str]]:
    data, mimetype, filename = export_story(db.session.get(Story, story_id), "epub")
    assert mimetype == "application/epub+zip" and filename.endswith(".epub")
    path = tmp_path / filename
    path.write_bytes(data)
    book = epub.read_epub(str(path))
    pages = {
        item.get_name(): item.get_content().decode("utf-8")
        for item in book.get_items_of_type(ITEM_DOCUMENT)
    }
    return path, book, pages


def epubcheck(path: Path) -> None:
    """epubcheck FILE, run as `java -jar` (Debian's /usr/bin/epubcheck is an executable jar,
    which runs directly only where binfmt_misc knows jars)."""
    java = shutil.which("java")
    if not Path(EPUBCHECK).exists() or java is None:
        pytest.skip("epubcheck is not installed (Debian's epubcheck package: make system-deps)")
    result = subprocess.run(
        [java, "-jar", EPUBCHECK, str(path)], capture_output=True, text=True, timeout=180
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "ERROR" not in report and "FATAL" not in report, report


def test_epub_has_title_page_credits_and_chapters(f, tmp_path):
    """Does the EPUB hold a title page, every visible turn credited, no hidden one, and a
    chapter at each marked turn, and does epubcheck find no errors?"""
    owner, writer = f.user("ada"), f.user("bob")
    mod = f.user("moder", role="moderator")
    sid = f.story(owner, title="The Lighthouse", opening="It was a dark night.")
    write(sid, owner, "The lamp went out.", "The sea answered.")
    third = write(sid, writer, "A boat <b>came</b> & went.", "Gulls cried.")
    hidden = write(sid, owner, "A paragraph to hide.", None)
    relay.set_hidden(db.session.get(Story, sid).turns[hidden - 1].id, user(mod), True, "spam")
    edits.set_chapter(sid, third, user(owner), "The Boat")
    path, book, pages = build(sid, tmp_path)
    assert book.get_metadata("DC", "title")[0][0] == "The Lighthouse"
    assert book.get_metadata("DC", "language")[0][0] == "en"
    assert book.get_metadata("DC", "creator")[0][0] == "ada"
    title = pages["title.xhtml"]
    assert "The Lighthouse" in title and "begun by ada" in title and "English" in title
    text = "".join(pages[name] for name in sorted(pages) if name.startswith("chapter-"))
    assert "chapter-3.xhtml" not in pages
    assert "It was a dark night." in pages["chapter-1.xhtml"]
    assert (
        "Opening" in pages["chapter-1.xhtml"] and "The lamp went out." in pages["chapter-1.xhtml"]
    )
    assert "The Boat" in pages["chapter-2.xhtml"] and "Gulls cried." in pages["chapter-2.xhtml"]
    for credit in ("§1, ada", "§2, the model (en)", "§3, bob", "§4, the model (en)"):
        assert credit in text
    assert "A boat &lt;b&gt;came&lt;/b&gt; &amp; went." in text  # text, never markup
    assert "A paragraph to hide." not in text
    assert [item.title for item in book.toc] == ["Title page", "Opening", "The Boat"]
    epubcheck(path)


def test_epub_without_chapters_is_one_chapter(f, tmp_path):
    """With no chapter marked, is the story one chapter named after it?"""
    owner = f.user()
    sid = f.story(owner, title="One Go")
    write(sid, owner, "Only this.", "And this.")
    _, book, pages = build(sid, tmp_path)
    assert sorted(name for name in pages if name.startswith("chapter-")) == ["chapter-1.xhtml"]
    assert "One Go" in pages["chapter-1.xhtml"] and "And this." in pages["chapter-1.xhtml"]


def test_korean_epub(f, tmp_path):
    """Is a Korean story's EPUB marked ko, its text intact, its words Korean, and valid?"""
    owner, writer = f.user("minjun"), f.user("seoyeon")
    sid = f.story(owner, title="등대지기", language="ko", opening="어두운 밤이었다.")
    write(sid, owner, "등불이 꺼졌다.", "바다가 대답했다.")
    edits.set_chapter(sid, 1, user(owner), "첫 번째 장")
    write(sid, writer, "배 한 척이 지나갔다.", "갈매기가 울었다.")
    path, book, pages = build(sid, tmp_path)
    assert book.get_metadata("DC", "language")[0][0] == "ko"
    text = "".join(pages.values())
    for words in (
        "등대지기",
        "어두운 밤이었다.",
        "등불이 꺼졌다.",
        "바다가 대답했다.",
        "첫 번째 장",
    ):
        assert words in text
    with zipfile.ZipFile(path) as raw:  # every page as written, in the story's language
        for name in ("EPUB/title.xhtml", "EPUB/chapter-2.xhtml", "EPUB/nav.xhtml"):
            assert 'xml:lang="ko"' in raw.read(name).decode()
    assert "§3, seoyeon" in text
    assert "모델" in text  # the model's credit, in the story's language
    epubcheck(path)


def test_epub_routes(app, f):
    """Do the page and the API serve the EPUB, and refuse an unknown format?"""
    owner = f.user()
    sid = f.story(owner)
    client = app.test_client()
    page = client.get(f"/stories/{sid}/export.epub")
    assert page.status_code == 200 and page.mimetype == "application/epub+zip"
    assert page.data[:2] == b"PK" and b"application/epub+zip" in page.data[:100]
    api = client.get(f"/api/v1/stories/{sid}/export?format=epub")
    assert api.status_code == 200 and api.mimetype == "application/epub+zip"
    assert client.get(f"/stories/{sid}/export.pdf").status_code == 422
    assert client.get(f"/api/v1/stories/{sid}/export?format=pdf").status_code == 422
