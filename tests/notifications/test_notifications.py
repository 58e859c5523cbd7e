"""Notifications: who is told what, kept while away, marked read, pushed live on the
user's own channel (counted in the stream caps), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Factory, session_user_id


@pytest.fixture
def factory(quiet_app) -> Factory:
    return Factory(quiet_app)


def _turn(app, story_id: int, user_id: int, text: str):
    from app.accounts.models import User
    from app.extensions import db
    from app.stories.reads import get_story
    from app.stories.relay import append_human_turn

    with app.app_context():
        story = get_story(story_id)
        turn, job = append_human_turn(
            story_id, db.session.get(User, user_id), text, story.last_position
        )
        return job.id if job else None


def _answer(app, job_id: int, text: str = "The sea answered.") -> None:
    from app.stories.jobs import claim_job, complete_job

    with app.app_context():
        claim_job(job_id, "test")
        complete_job(job_id, text)


def _kinds(app, user_id: int) -> list[tuple[str, str | None]]:
    from app.accounts.models import User
    from app.extensions import db
    from app.notifications.service import recent

    with app.app_context():
        user = db.session.get(User, user_id)
        return [(n["kind"], n["actor"]) for n in recent(user)]


def test_owner_hears_of_others_and_the_model_but_not_of_themself(quiet_app, factory):
    owner, other = factory.user("owner"), factory.user("other")
    story = factory.story(owner)
    _answer(quiet_app, _turn(quiet_app, story, owner, "The owner's own paragraph."))
    assert _kinds(quiet_app, owner) == []  # their own paragraph and its answer
    job = _turn(quiet_app, story, other, "Another writer's paragraph.")
    _answer(quiet_app, job)
    assert _kinds(quiet_app, owner) == [("continued", None), ("continued", "other")]
    assert _kinds(quiet_app, other) == []


def test_round_robin_tells_the_next_writer_once_the_model_answered(quiet_app, factory):
    from app.accounts.models import User
    from app.extensions import db
    from app.stories.relay import join_story

    a, b = factory.user("alice"), factory.user("bora")
    story = factory.story(a, policy="round_robin")
    with quiet_app.app_context():
        join_story(story, db.session.get(User, b))
    job = _turn(quiet_app, story, a, "Alice writes first.")
    assert _kinds(quiet_app, b) == []  # the model has not answered yet
    _answer(quiet_app, job)
    assert _kinds(quiet_app, b) == [("your_turn", "alice")]
    _answer(quiet_app, _turn(quiet_app, story, b, "Bora writes second."))
    assert ("your_turn", "bora") in _kinds(quiet_app, a)


def test_api_lists_counts_and_marks_read_in_korean_too(quiet_app, factory):
    owner, other = factory.user("owner"), factory.user("other")
    story = factory.story(owner, title="등대")
    _turn(quiet_app, story, other, "A paragraph.")
    client = quiet_app.test_client()
    headers = factory.headers(owner)
    page = client.get("/api/v1/notifications", headers=headers).get_json()
    assert page["unread"] == 1
    assert page["notifications"][0]["message"] == "other continued your story “등대”."
    ko = client.get("/api/v1/notifications", headers={**headers, "Accept-Language": "ko"})
    assert "등대" in ko.get_json()["notifications"][0]["message"]
    assert "continued" not in ko.get_json()["notifications"][0]["message"]
    assert client.get("/api/v1/notifications").status_code == 401
    assert client.get("/api/v1/notifications?limit=0", headers=headers).status_code == 422
    bad = client.post("/api/v1/notifications/read", json={"ids": ["x"]}, headers=headers)
    assert bad.status_code == 422
    done = client.post("/api/v1/notifications/read", headers=headers).get_json()
    assert done == {"marked": 1, "unread": 0}
    # somebody else's notifications are not theirs to mark
    other_headers = factory.headers(other)
    nid = page["notifications"][0]["id"]
    res = client.post("/api/v1/notifications/read", json={"ids": [nid]}, headers=other_headers)
    assert res.get_json()["marked"] == 0


def test_a_rolled_back_write_notifies_nobody(quiet_app, factory):
    from app.accounts.models import User
    from app.extensions import db
    from app.live.events import get_event_bus
    from app.notifications.service import notify, user_channel
    from app.stories.reads import get_story

    owner = factory.user("owner")
    reader = factory.user("reader")
    story = factory.story(owner)
    with quiet_app.app_context():
        sub = get_event_bus().subscribe(user_channel(reader))
        notify(reader, "your_turn", get_story(story), actor_id=owner)
        db.session.rollback()
        assert sub.get(timeout=0.05) is None
        notify(reader, "your_turn", get_story(story), actor_id=owner)
        db.session.commit()
        event = sub.get(timeout=1)
        assert event["type"] == "notification" and event["kind"] == "your_turn"
        sub.close()
        assert db.session.get(User, reader) is not None
    assert _kinds(quiet_app, reader) == [("your_turn", "owner")]


def test_user_stream_opens_with_the_unread_count_and_takes_a_stream_slot(db_url, tiny_model_dir):
    from tests.conftest import build_app, close_app

    app = build_app(db_url, tiny_model_dir, RELAY_START_RUNNER=False, SSE_MAX_PER_USER=1)
    try:
        factory = Factory(app)
        owner, other = factory.user("owner"), factory.user("other")
        story = factory.story(owner)
        _turn(app, story, other, "A paragraph.")
        client = app.test_client()
        with client.session_transaction() as sess:
            sess["_user_id"] = session_user_id(app, owner)
        response = client.get("/notifications/events", buffered=False)
        assert response.status_code == 200
        chunks = response.response
        text = ""
        while "notifications_open" not in text:
            chunk = next(chunks)
            text += chunk.decode() if isinstance(chunk, bytes) else chunk
        frame = [line for line in text.splitlines() if line.startswith("data:")][-1]
        assert json.loads(frame[5:])["unread"] == 1
        second = client.get("/notifications/events")
        assert second.status_code == 429  # SSE_MAX_PER_USER counts this stream too
        response.close()
        assert client.get("/notifications/events", buffered=False).status_code == 200
    finally:
        close_app(app)


def test_pages_show_the_bell_and_the_list(quiet_app, factory):
    owner, other = factory.user("owner"), factory.user("other")
    story = factory.story(owner, title="The Lighthouse")
    _turn(quiet_app, story, other, "A paragraph.")
    client = quiet_app.test_client()
    assert client.get("/notifications").status_code == 302  # sign in first
    with client.session_transaction() as sess:
        sess["_user_id"] = session_user_id(quiet_app, owner)
    home = client.get("/").get_data(as_text=True)
    assert 'data-testid="bell-count">1<' in home
    page = client.get("/notifications").get_data(as_text=True)
    assert "other continued your story “The Lighthouse”." in page
    assert 'data-testid="bell-count" hidden>0<' in client.get("/").get_data(as_text=True)
