"""A story's banned phrases as a setting (API, settings page, validation) and the loop
guard's flag on a turn (API JSON, the story page, the moderation queue); both databases.
The runner is off: the tests play it with claim_job / complete_job."""

from __future__ import annotations

from typing import Any

import pytest

from app.extensions import db
from app.stories.jobs import claim_job, complete_job
from app.stories.models import Story
from app.stories.validation import BANNED_PHRASE_MAX_CHARS, BANNED_PHRASES_MAX
from tests.generation.test_jobs import append

STORY = {"title": "The Lighthouse", "language": "en", "opening": "The lamp went out."}


@pytest.fixture
def app(quiet_app: Any) -> Any:
    return quiet_app


def _stored(app: Any, story_id: int) -> str:
    with app.app_context():
        return db.session.get(Story, story_id).banned_phrases


def test_banned_phrases_over_the_api(app, client, factory):
    """Are phrases sent as a list stored one a line (cleaned, duplicates dropped) and
    returned as a list; does PATCH replace them and an empty list clear them?"""
    headers = factory.headers(factory.user("ada"))
    phrases = ["  the old   man ", "whale", "whale", "그녀는 웃었다"]
    response = client.post(
        "/api/v1/stories", json={**STORY, "banned_phrases": phrases}, headers=headers
    )
    assert response.status_code == 201
    story = response.get_json()
    assert story["banned_phrases"] == ["the old man", "whale", "그녀는 웃었다"]
    assert _stored(app, story["id"]) == "the old man\nwhale\n그녀는 웃었다"
    url = f"/api/v1/stories/{story['id']}"
    patched = client.patch(url, json={"banned_phrases": ["sea"]}, headers=headers)
    assert patched.status_code == 200 and patched.get_json()["banned_phrases"] == ["sea"]
    assert client.get(url).get_json()["banned_phrases"] == ["sea"]
    cleared = client.patch(url, json={"banned_phrases": []}, headers=headers).get_json()
    assert cleared["banned_phrases"] == [] and _stored(app, story["id"]) == ""


@pytest.mark.parametrize(
    "value",
    [
        [f"phrase {i}" for i in range(BANNED_PHRASES_MAX + 1)],  # too many
        ["a" * (BANNED_PHRASE_MAX_CHARS + 1)],  # too long
        [1, 2],  # not strings
        "one line",  # the API takes a list (the settings page sends lines)
        {"a": 1},
    ],
)
def test_bad_banned_phrases_are_a_422_naming_the_field(app, client, factory, value):
    """Is a list too long, a phrase too long or a value of the wrong type a 422 with the
    field named, nothing stored?"""
    headers = factory.headers(factory.user("ada"))
    response = client.post(
        "/api/v1/stories", json={**STORY, "banned_phrases": value}, headers=headers
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "banned_phrases"
    story_id = factory.story(factory.user("bob"))
    response = client.patch(
        f"/api/v1/stories/{story_id}", json={"banned_phrases": value}, headers=headers
    )
    assert response.status_code in (403, 422)  # not bob's; validation comes first
    assert _stored(app, story_id) == ""


def test_validation_takes_lines_or_a_list(app):
    """Does the shared validation take a newline-separated string (the settings page) and
    a list alike, and refuse too many or too long phrases with the field named?"""
    from app.errors import Invalid
    from app.stories.validation import clean_banned_phrases

    with app.app_context():
        assert clean_banned_phrases("old man\r\n\r\n whale \n") == "old man\nwhale"
        assert clean_banned_phrases(["old man", ""]) == "old man"
        assert clean_banned_phrases(None) == ""
        for bad in ("\n".join(str(i) for i in range(21)), "b" * 81, 5):
            with pytest.raises(Invalid) as caught:
                clean_banned_phrases(bad)
            assert caught.value.details["field"] == "banned_phrases"


def _login(client: Any, username: str) -> None:
    client.post("/login", data={"username": username, "password": "password123"})


SETTINGS = {
    "title": "A Test Story",
    "opening": "It was a dark night.",
    "tags": "",
    "visibility": "public",
    "write_access": "anyone",
    "policy": "open",
    "turn_minutes": "",
    "skip_limit": "3",
    "skip_action": "move",
    "preset": "balanced",
    "model": "en",
}


def test_settings_page_textarea(app, client, factory):
    """Does the settings page show the phrases one a line, save a changed textarea, and
    refuse too many with a message, changing nothing?"""
    alice = factory.user("alice")
    story_id = factory.story(alice, banned_phrases=["whale"])
    _login(client, "alice")
    page = client.get(f"/stories/{story_id}/settings").get_data(as_text=True)
    assert 'name="banned_phrases"' in page and ">\nwhale</textarea>" in page.replace("\r", "")
    data = SETTINGS | {"banned_phrases": "old man\r\nsea salt\r\n"}
    assert client.post(f"/stories/{story_id}/settings", data=data).status_code == 302
    assert _stored(app, story_id) == "old man\nsea salt"
    data = SETTINGS | {"banned_phrases": "\n".join(f"p{i}" for i in range(21))}
    response = client.post(f"/stories/{story_id}/settings", data=data)
    assert response.status_code == 422
    assert "at most 20 banned phrases" in response.get_data(as_text=True)
    assert _stored(app, story_id) == "old man\nsea salt"


def _flagged_turn(app: Any, factory: Any) -> tuple[int, int]:
    """A story whose model turn the loop guard flagged: (story id, the turn's position)."""
    alice = factory.user("alice")
    story_id = factory.story(alice)
    _, job_id = append(app, story_id, alice, "He climbed the stairs.")
    with app.app_context():
        assert claim_job(job_id, "test") is not None
        turn = complete_job(job_id, "It was a dark night. It was a dark night.", flag="loop")
        return story_id, turn.position


def test_a_flagged_turn_says_so_everywhere(app, client, factory):
    """Does a flagged turn carry "flag": "loop" in the API (an unflagged one null), and a
    note on the story page for every reader?"""
    story_id, position = _flagged_turn(app, factory)
    turns = client.get(f"/api/v1/stories/{story_id}/turns").get_json()["turns"]
    assert [t["flag"] for t in turns] == [None, "loop"]
    assert turns[1]["position"] == position
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert page.count('data-testid="turn-flag"') == 1
    assert "The model repeated earlier text of the story here" in page


def test_the_flag_note_in_korean(app, client, factory):
    """Is the note Korean on a Korean page?"""
    story_id, _ = _flagged_turn(app, factory)
    page = client.get(f"/stories/{story_id}", headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    text = page.get_data(as_text=True)
    assert 'data-testid="turn-flag"' in text
    assert "The model repeated earlier text" not in text


def test_the_queue_marks_a_flagged_turn(app, client, factory):
    """When a flagged turn is reported, does the moderation queue say it repeats text?"""
    story_id, position = _flagged_turn(app, factory)
    bob = factory.user("bob")
    with app.app_context():
        from app.accounts.models import User
        from app.moderation.reports import report_turn
        from app.stories.models import Turn

        turn = db.session.scalar(
            db.select(Turn).where(Turn.story_id == story_id, Turn.position == position)
        )
        report_turn(turn.id, db.session.get(User, bob), "It loops.")
    factory.user("mod", role="moderator")
    _login(client, "mod")
    page = client.get("/admin/").get_data(as_text=True)
    assert 'data-testid="loop-badge"' in page
