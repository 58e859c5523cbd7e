"""A story's settings page (app/stories/settings_views.py): its owner and moderators change
every setting, lock, finish, reopen and delete; others are refused; bad input changes
nothing and says why."""

from __future__ import annotations

from typing import Any

from app.accounts.models import User
from app.extensions import db
from app.stories import relay
from app.stories.models import Story

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


def _story(app: Any, story_id: int) -> Story:
    story = db.session.get(Story, story_id)
    db.session.refresh(story)
    return story


def _owner_story(factory: Any, browser: Any, **fields: Any) -> int:
    """alice, signed in, and her story."""
    alice = factory.user("alice")
    browser.login("alice")
    return factory.story(alice, **fields)


def test_owner_sees_the_settings_link_and_page(app, client, factory, browser):
    """Does the story page link its owner to the settings, filled in with the story's?"""
    story_id = _owner_story(factory, browser, title="Salt", tags=["sea", "night"])
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert f'href="/stories/{story_id}/settings"' in page
    response = client.get(f"/stories/{story_id}/settings")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'value="Salt"' in page and 'value="night, sea"' in page
    assert '<option selected value="en">' in page and '<option value="ko">' not in page


def test_owner_changes_every_setting(app, client, factory, browser):
    """Does one save change title, opening, tags, who reads and writes, turn order and
    deadline, preset and model?"""
    story_id = _owner_story(factory, browser)
    data = SETTINGS | {
        "title": "A New Name",
        "opening": "A brighter morning.",
        "tags": "Sea, storm , sea",
        "visibility": "unlisted",
        "write_access": "participants",
        "policy": "round_robin",
        "turn_minutes": "90",
        "skip_limit": "2",
        "skip_action": "remove",
        "preset": "wild",
        "model": "tiny",
    }
    response = client.post(f"/stories/{story_id}/settings", data=data)
    assert response.status_code == 302
    with app.app_context():
        story = _story(app, story_id)
        assert (story.title, story.opening) == ("A New Name", "A brighter morning.")
        assert [tag.name for tag in story.tags] == ["sea", "storm"]
        assert (story.visibility, story.write_access, story.policy) == (
            "unlisted",
            "participants",
            "round_robin",
        )
        assert (story.turn_seconds, story.skip_limit, story.skip_action) == (5400, 2, "remove")
        assert (story.preset, story.model_key) == ("wild", "tiny")
        assert story.turn_due_at is not None
    page = client.get(f"/stories/{story_id}/settings").get_data(as_text=True)
    assert "Settings saved." in page
    assert 'data-testid="share-link"' in page or "stories.shared" not in app.view_functions


def test_unlisted_story_shows_its_share_link(app, client, factory, browser):
    """Does an unlisted story's settings page show the link that reads it?"""
    story_id = _owner_story(factory, browser, visibility="unlisted")
    page = client.get(f"/stories/{story_id}/settings").get_data(as_text=True)
    with app.app_context():
        token = _story(app, story_id).share_token
    if "stories.shared" in app.view_functions:
        assert f"/s/{token}" in page
    public = factory.story(factory.user("zed"))
    assert "share-link" not in client.get(f"/stories/{public}/settings").get_data(as_text=True)


def test_bad_input_changes_nothing(app, client, factory, browser):
    """Is a bad field a message on the page (never a 500), with the story unchanged?"""
    story_id = _owner_story(factory, browser)
    url = f"/stories/{story_id}/settings"
    for bad, message in [
        ({"title": "   "}, ""),
        ({"turn_minutes": "0"}, "minutes"),
        ({"skip_limit": "99"}, "between 1 and 10"),
        ({"visibility": "everyone"}, ""),
        ({"model": "ko"}, ""),
        ({"tags": ",".join(f"tag{n}" for n in range(9))}, "at most 8 tags"),
        ({"tags": "x" * 40}, "at most 32 characters"),
    ]:
        response = client.post(url, data=SETTINGS | bad | {"preset": "wild"})
        assert response.status_code == 422, bad
        page = response.get_data(as_text=True)
        assert message in page and "field-error" in page, bad
    with app.app_context():
        story = _story(app, story_id)
        assert (story.title, story.preset, story.skip_limit, story.tags) == (
            "A Test Story",
            "balanced",
            3,
            [],
        )


def test_opening_is_refused_after_the_first_turn(app, client, factory, browser):
    """Is a changed opening refused, with a message, once the story has a turn?"""
    story_id = _owner_story(factory, browser, opening="Line one.\n\nLine two.")
    with app.app_context():
        relay.append_human_turn(
            story_id, db.session.get(User, factory.user("bob")), "A paragraph.", 0
        )
    page = client.get(f"/stories/{story_id}/settings").get_data(as_text=True)
    assert "readonly" in page
    data = SETTINGS | {"opening": "Another beginning.", "title": "Renamed"}
    response = client.post(f"/stories/{story_id}/settings", data=data)
    assert response.status_code == 409
    assert "The opening can only change before the first turn." in response.get_data(as_text=True)
    with app.app_context():
        story = _story(app, story_id)
        assert (story.opening, story.title) == ("Line one.\n\nLine two.", "A Test Story")
    # The same opening, sent back as a browser sends a textarea (CRLF line ends), is no change.
    data = SETTINGS | {"title": "Renamed", "opening": "Line one.\r\n\r\nLine two."}
    assert client.post(f"/stories/{story_id}/settings", data=data).status_code == 302
    with app.app_context():
        assert _story(app, story_id).title == "Renamed"


def test_nothing_changed(app, client, factory, browser):
    """Does saving the form as it is change nothing and say so?"""
    story_id = _owner_story(factory, browser)
    response = client.post(f"/stories/{story_id}/settings", data=SETTINGS, follow_redirects=True)
    assert "Nothing changed." in response.get_data(as_text=True)


def test_others_are_refused(app, client, factory, browser):
    """Is a reader who is not the owner refused (403), one who may not read the story
    sent a 404, and a moderator let in?"""
    alice = factory.user("alice")
    story_id = factory.story(alice)
    private = factory.story(alice, visibility="private")
    factory.user("bob")
    browser.login("bob")
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert f"/stories/{story_id}/settings" not in page
    assert client.get(f"/stories/{story_id}/settings").status_code == 403
    assert client.post(f"/stories/{story_id}/settings", data=SETTINGS).status_code == 403
    status_url = f"/stories/{story_id}/settings/status"
    assert client.post(status_url, data={"status": "locked"}).status_code == 403
    assert client.post(f"/stories/{story_id}/delete", data={"confirm": "y"}).status_code == 403
    assert client.get(f"/stories/{private}/settings").status_code == 404
    assert client.post(f"/stories/{private}/delete", data={"confirm": "y"}).status_code == 404
    client.post("/logout")
    response = client.get(f"/stories/{story_id}/settings")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    factory.user("mod", role="moderator")
    browser.login("mod")
    assert client.get(f"/stories/{private}/settings").status_code == 200
    with app.app_context():
        assert _story(app, story_id).status == "open"


def test_lock_finish_reopen(app, client, factory, browser):
    """Do the status buttons lock, finish and reopen the story; is a bad status a message?"""
    story_id = _owner_story(factory, browser)
    url = f"/stories/{story_id}/settings/status"
    for status in ("locked", "finished", "open"):
        response = client.post(url, data={"status": status}, follow_redirects=True)
        assert response.status_code == 200
        with app.app_context():
            assert _story(app, story_id).status == status
    response = client.post(url, data={"status": "gone"}, follow_redirects=True)
    assert "status must be one of" in response.get_data(as_text=True)
    with app.app_context():
        assert _story(app, story_id).status == "open"


def test_delete_needs_confirmation(app, client, factory, browser):
    """Is the story kept unless the box is ticked, and deleted when it is?"""
    story_id = _owner_story(factory, browser)
    response = client.post(f"/stories/{story_id}/delete", data={})
    assert response.status_code == 422
    assert "Tick the box" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Story, story_id) is not None
    response = client.post(f"/stories/{story_id}/delete", data={"confirm": "y"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Story, story_id) is None
    assert client.get(f"/stories/{story_id}").status_code == 404


def test_settings_page_in_korean(app, client, factory, browser):
    """Is the settings page Korean for a Korean reader?"""
    story_id = _owner_story(factory, browser)
    page = client.get(f"/stories/{story_id}/settings", headers={"Accept-Language": "ko"}).get_data(
        as_text=True
    )
    assert "설정" in page


def test_forker_cannot_make_a_private_sources_fork_public(app, client, factory, browser):
    """Is a fork of a private story kept from going public by its forker, with a message?"""
    alice, bob = factory.user("alice"), factory.user("bob")
    source = factory.story(alice)
    with app.app_context():
        relay.join_story(source, db.session.get(User, bob))
        relay.update_story(source, db.session.get(User, alice), {"visibility": "private"})
    browser.login("bob")
    assert client.post(f"/stories/{source}/fork", data={"position": "0"}).status_code == 302
    with app.app_context():
        forks = db.select(Story.id).where(Story.forked_from_id == source)
        fork_id = db.session.scalars(forks).one()
        assert _story(app, fork_id).visibility == "private"
    data = SETTINGS | {"visibility": "public"}
    response = client.post(f"/stories/{fork_id}/settings", data=data)
    assert response.status_code == 403
    assert "Only the owner of the story this was forked from" in response.get_data(as_text=True)
    with app.app_context():
        assert _story(app, fork_id).visibility == "private"


def test_moderator_changes_are_audited(app, client, factory, browser):
    """Does a moderator's change to someone else's story leave an audit row?"""
    from app.moderation.models import AuditEntry

    story_id = factory.story(factory.user("alice"))
    factory.user("mod", role="moderator")
    browser.login("mod")
    response = client.post(f"/stories/{story_id}/settings", data=SETTINGS | {"preset": "wild"})
    assert response.status_code == 302
    with app.app_context():
        actions = db.session.scalars(db.select(AuditEntry.action)).all()
        assert "story.update" in actions
