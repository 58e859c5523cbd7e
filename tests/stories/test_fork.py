"""Forks (app/stories/fork.py): what is copied, what stays behind, who may fork and see
where a fork came from; through the service, the API and the browser."""

from __future__ import annotations

from typing import Any

import pytest

from app.accounts.models import User
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.stories import relay
from app.stories.fork import fork_origin, fork_story
from app.stories.jobs import claim_job, complete_job
from app.stories.models import Story, Turn
from app.stories.reads import get_story, pending_job


@pytest.fixture
def app(quiet_app: Any) -> Any:
    """The runner is off: tests play the model's part, so turns are deterministic."""
    return quiet_app


def _user(user_id: int) -> User:
    return db.session.get(User, user_id)


def _write(story_id: int, user_id: int, text: str, answer: str) -> None:
    """A writer's paragraph and the model's answer to it."""
    story = get_story(story_id)
    relay.append_human_turn(story_id, _user(user_id), text, story.last_position)
    job = pending_job(get_story(story_id))
    claim_job(job.id, "test")
    complete_job(job.id, answer)


def _story_with_turns(
    app: Any, factory: Any, visibility: str = "public", **fields: Any
) -> tuple[int, int, int]:
    """alice's story: bob's paragraph, an answer, alice's paragraph, an answer (1-4); then
    its visibility and `fields` (bob, who wrote in it, is a participant)."""
    alice, bob = factory.user("alice"), factory.user("bob")
    story_id = factory.story(alice, title="The Source", opening="The lamp went out.")
    with app.app_context():
        _write(story_id, bob, "Bob lit a candle.", "The candle flickered.")
        _write(story_id, alice, "Alice opened the door.", "Wind came in.")
        relay.update_story(story_id, _user(alice), {"visibility": visibility, **fields})
    return story_id, alice, bob


def _turns(story_id: int) -> list[Turn]:
    return list(
        db.session.scalars(db.select(Turn).where(Turn.story_id == story_id).order_by(Turn.position))
    )


def test_fork_copies_turns_with_credits_in_order(app, factory):
    """Are the turns up to the position copied in order, credited, answers linked?"""
    story_id, alice, bob = _story_with_turns(app, factory, preset="wild", policy="round_robin")
    carol = factory.user("carol")
    with app.app_context():
        fork = fork_story(story_id, 3, _user(carol), None)
        assert fork.title == "The Source" and fork.opening == "The lamp went out."
        assert (fork.language, fork.model_key, fork.preset, fork.policy) == (
            "en",
            "en",
            "wild",
            "round_robin",
        )
        assert (fork.forked_from_id, fork.forked_from_position) == (story_id, 3)
        assert fork.owner_id == carol and [p.user_id for p in fork.participants] == [carol]
        assert fork.share_token and fork.share_token != get_story(story_id).share_token
        turns = _turns(fork.id)
        assert [(t.position, t.kind, t.text, t.author_id) for t in turns] == [
            (1, "human", "Bob lit a candle.", bob),
            (2, "ai", "The candle flickered.", None),
            (3, "human", "Alice opened the door.", alice),
        ]
        assert turns[1].model_key == "en" and turns[1].reply_to_id == turns[0].id
        assert fork.last_position == 3
        assert len(_turns(story_id)) == 4  # the source is untouched


def test_fork_leaves_hidden_and_held_turns_behind(app, factory):
    """Are hidden turns left out, and the rest renumbered without a gap?"""
    story_id, alice, bob = _story_with_turns(app, factory)
    mod = factory.user("mod", role="moderator")
    with app.app_context():
        second = _turns(story_id)[1]
        relay.set_hidden(second.id, _user(mod), True, "spoiler")
        fork = fork_story(story_id, 4, _user(bob), "Bob's Way")
        texts = [(t.position, t.text) for t in _turns(fork.id)]
        assert texts == [
            (1, "Bob lit a candle."),
            (2, "Alice opened the door."),
            (3, "Wind came in."),
        ]
        assert fork.title == "Bob's Way"
        with pytest.raises(Conflict):
            fork_story(story_id, 2, _user(bob), None)  # a hidden turn is no place to fork


def test_fork_from_the_opening_alone(app, factory):
    """Does position 0 copy the opening and no turn?"""
    story_id, alice, bob = _story_with_turns(app, factory)
    with app.app_context():
        fork = fork_story(story_id, 0, _user(bob), None)
        assert _turns(fork.id) == [] and fork.last_position == 0
        assert fork.opening == "The lamp went out."


@pytest.mark.parametrize("position", [-1, "2", None, True, 1.5])
def test_fork_refuses_a_bad_position(app, factory, position):
    """Is a position that is not a whole number 0 or more a 422, one that names no turn a
    409, with nothing stored?"""
    story_id, alice, bob = _story_with_turns(app, factory)
    with app.app_context():
        with pytest.raises(Invalid):
            fork_story(story_id, position, _user(bob), None)
        with pytest.raises(Conflict):
            fork_story(story_id, 99, _user(bob), None)
        assert db.session.scalar(db.select(db.func.count(Story.id))) == 1


def test_private_source_gives_a_private_fork(app, factory):
    """Does a private story's fork start private, public only by the source's owner?"""
    story_id, alice, bob = _story_with_turns(app, factory, visibility="private")
    stranger = factory.user("stranger")
    with app.app_context():
        with pytest.raises(NotFound):
            fork_story(story_id, 1, _user(stranger), None)  # may not read it
        fork = fork_story(story_id, 2, _user(bob), None)  # bob wrote in it: a participant
        assert fork.visibility == "private"
        with pytest.raises(Forbidden):
            relay.update_story(fork.id, _user(bob), {"visibility": "public"})
        relay.update_story(fork.id, _user(bob), {"visibility": "unlisted"})
        assert get_story(fork.id).visibility == "unlisted"


def test_source_owner_may_make_their_fork_public(app, factory):
    """May the source's owner fork their own private story and make the fork public?"""
    story_id, alice, bob = _story_with_turns(app, factory, visibility="unlisted")
    with app.app_context():
        fork = fork_story(story_id, 1, _user(alice), None)
        assert fork.visibility == "private"
        relay.update_story(fork.id, _user(alice), {"visibility": "public"})
        assert get_story(fork.id).visibility == "public"


def test_suspended_or_anonymous_reader_may_not_fork(app, factory):
    """Is forking refused to a suspended account and to nobody signed in?"""
    story_id, alice, bob = _story_with_turns(app, factory)
    with app.app_context():
        user = _user(bob)
        user.is_suspended = True
        db.session.commit()
        with pytest.raises(Forbidden):
            fork_story(story_id, 1, _user(bob), None)
        with pytest.raises(Forbidden):
            fork_story(story_id, 1, None, None)


def test_fork_origin_names_the_source_only_to_its_readers(app, factory):
    """Is the source named (with its paragraph number) only to those who may read it?"""
    story_id, alice, bob = _story_with_turns(app, factory, visibility="private")
    with app.app_context():
        fork = fork_story(story_id, 3, _user(bob), None)
        origin = fork_origin(fork, _user(bob))
        assert (origin.story_id, origin.title, origin.number) == (story_id, "The Source", 3)
        assert fork_origin(fork, None).title is None
        assert fork_origin(get_story(story_id), None) is None


# --- the API ---------------------------------------------------------------------------


def test_api_fork(app, client, factory):
    """Does POST /stories/<id>/fork answer 201 with the new story and where it came from?"""
    story_id, alice, bob = _story_with_turns(app, factory)
    headers = factory.headers(bob)
    response = client.post(
        f"/api/v1/stories/{story_id}/fork", json={"position": 2, "title": "Mine"}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["title"] == "Mine" and body["owner"] == "bob"
    assert body["forked_from"] == {"id": story_id, "position": 2}
    assert body["turn_count"] == 2 and body["last_position"] == 2
    assert response.headers["Location"].endswith(f"/api/v1/stories/{body['id']}")
    source = client.get(f"/api/v1/stories/{story_id}").get_json()
    assert source["forked_from"] is None


def test_api_fork_errors(app, client, factory):
    """Bad or missing position: 422; no turn there: 409; unreadable story: 404; no token:
    401."""
    story_id, alice, bob = _story_with_turns(app, factory)
    private = factory.story(alice, title="Hidden", visibility="private")
    headers = factory.headers(bob)
    url = f"/api/v1/stories/{story_id}/fork"
    assert client.post(url, json={"position": -1}, headers=headers).status_code == 422
    assert client.post(url, json={"position": "1"}, headers=headers).status_code == 422
    assert client.post(url, json={}, headers=headers).status_code == 422
    answer = client.post(url, json={"position": 9}, headers=headers)
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "no_visible_turn"
    assert client.post(url, json={"position": 1}).status_code == 401
    answer = client.post(f"/api/v1/stories/{private}/fork", json={"position": 0}, headers=headers)
    assert answer.status_code == 404
    assert (
        client.post("/api/v1/stories/999/fork", json={"position": 0}, headers=headers).status_code
        == 404
    )


# --- the browser -----------------------------------------------------------------------


def _sign_in(client: Any, username: str) -> None:
    client.post("/login", data={"username": username, "password": "password123"})


def test_browser_fork_from_a_turn(app, client, factory):
    """Does "Fork from here" open the new story, which says where it came from?"""
    story_id, alice, bob = _story_with_turns(app, factory)
    _sign_in(client, "bob")
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert 'data-testid="fork-turn"' in page and 'id="fork-form"' in page
    response = client.post(f"/stories/{story_id}/fork", data={"position": "3"})
    assert response.status_code == 302
    with app.app_context():
        fork = db.session.scalars(db.select(Story).where(Story.forked_from_id == story_id)).one()
        fork_id = fork.id
    assert response.headers["Location"].endswith(f"/stories/{fork_id}")
    page = client.get(f"/stories/{fork_id}").get_data(as_text=True)
    assert "Forked from" in page and "at paragraph 3" in page
    assert f'href="/stories/{story_id}#turn-3"' in page
    assert "Alice opened the door." in page and "Wind came in." not in page


def test_browser_fork_errors(app, client, factory):
    """A bad position is a message on the story page; an unreadable story a 404; a visitor
    not signed in is sent to log in."""
    story_id, alice, bob = _story_with_turns(app, factory)
    private = factory.story(alice, title="Hidden", visibility="private")
    response = client.post(f"/stories/{story_id}/fork", data={"position": "1"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    _sign_in(client, "bob")
    response = client.post(
        f"/stories/{story_id}/fork", data={"position": "99"}, follow_redirects=True
    )
    assert response.status_code == 200 and "has no turn 99" in response.get_data(as_text=True)
    response = client.post(
        f"/stories/{story_id}/fork", data={"position": "x"}, follow_redirects=True
    )
    assert "must be an integer" in response.get_data(as_text=True)
    assert client.post(f"/stories/{private}/fork", data={"position": "0"}).status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Story.id))) == 2


def test_fork_page_hides_an_unreadable_source(app, client, factory):
    """Does a fork's reader who may not read the source see no title or link?"""
    story_id, alice, bob = _story_with_turns(app, factory, visibility="private")
    with app.app_context():
        fork = fork_story(story_id, 1, _user(alice), None)
        relay.update_story(fork.id, _user(alice), {"visibility": "public"})
        fork_id = fork.id
    page = client.get(f"/stories/{fork_id}").get_data(as_text=True)
    assert "Forked from another story." in page and f"/stories/{story_id}#" not in page
