"""ETags and 304s on the story page and its JSON turn list; queries that do not grow per turn."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, select

from app.accounts.models import User
from app.extensions import db
from app.moderation import service
from app.moderation.reports import report_turn
from app.stories import reads, relay
from app.stories.append import add_turn
from app.stories.jobs import claim_job, complete_job
from app.stories.models import Turn


def _play(app, story_id: int, writer_id: int, text: str = "A paragraph.") -> None:
    """A writer's paragraph and the model's answer to it."""
    with app.app_context():
        story = reads.get_story(story_id)
        writer = db.session.get(User, writer_id)
        relay.append_human_turn(story_id, writer, text, story.last_position)
        job = reads.pending_job(reads.get_story(story_id))
        claim_job(job.id, "test")
        complete_job(job.id, "The sea wrote back.")


def _many_turns(app, story_id: int, writer_id: int, n: int) -> None:
    """n turns at once, straight through the one append function."""
    with app.app_context():
        story = reads.lock_story(story_id)
        for i in range(n):
            add_turn(story, kind="human", text=f"Paragraph {i}.", author_id=writer_id)
        db.session.commit()


def _tag(client, url: str, **headers: str) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    return response.headers["ETag"]


def _hide_first_ai_turn(app, mod_id: int) -> int:
    with app.app_context():
        turn = db.session.scalars(select(Turn).where(Turn.kind == "ai")).first()
        service.hide_turn(turn.id, db.session.get(User, mod_id), "spam")
        return turn.id


@contextmanager
def _counting(app):
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_second_get_with_the_etag_is_304(app, client, factory):
    """Does a second GET with If-None-Match get 304 with an empty body, page and turns.json?"""
    alice = factory.user("alice")
    story_id = factory.story(alice)
    _play(app, story_id, alice)
    for url in (f"/stories/{story_id}", f"/stories/{story_id}/turns.json"):
        first = client.get(url)
        assert first.status_code == 200 and first.headers["ETag"]
        assert first.headers["Cache-Control"] == "private, no-cache"
        assert {"Cookie", "Accept-Language"} <= set(first.vary)
        again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.headers["Cache-Control"] == "private, no-cache"
        other = client.get(url, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200 and other.data == first.data


def test_new_turn_hiding_and_restoring_change_the_tag(app, client, factory):
    """Does each new turn, hide and restore change the page's and turns.json's tag?"""
    alice, bob = factory.user("alice"), factory.user("bob")
    mod = factory.user("mod", role="moderator")
    story_id = factory.story(alice)
    urls = (f"/stories/{story_id}", f"/stories/{story_id}/turns.json")
    seen = [tuple(_tag(client, url) for url in urls)]
    _play(app, story_id, alice)
    seen.append(tuple(_tag(client, url) for url in urls))
    turn_id = _hide_first_ai_turn(app, mod)
    seen.append(tuple(_tag(client, url) for url in urls))
    with app.app_context():
        service.restore_turn(turn_id, db.session.get(User, mod), "fine after all")
    seen.append(tuple(_tag(client, url) for url in urls))
    _play(app, story_id, bob)
    seen.append(tuple(_tag(client, url) for url in urls))
    assert len(set(seen)) == len(seen)
    stale = client.get(urls[0], headers={"If-None-Match": seen[0][0]})
    assert stale.status_code == 200 and b"The sea wrote back." in stale.data


def test_held_turn_and_job_state_change_the_tag(app, client, factory):
    """Do a queued job, a running one and a held answer each change the page's tag?"""
    alice = factory.user("alice")
    story_id = factory.story(alice)
    url = f"/stories/{story_id}"
    seen = [_tag(client, url)]
    with app.app_context():
        relay.append_human_turn(story_id, db.session.get(User, alice), "Hello.", 0)
    seen.append(_tag(client, url))
    with app.app_context():
        job = reads.pending_job(reads.get_story(story_id))
        claim_job(job.id, "test")
    seen.append(_tag(client, url))
    with app.app_context():
        complete_job(job.id, "Something the filter caught.", held_reason="filter: test")
    seen.append(_tag(client, url))
    assert len(set(seen)) == len(seen)


def test_viewers_who_see_different_turns_get_different_tags(app, client, factory):
    """On a story with a hidden turn, do a moderator's and an anonymous reader's tags differ,
    and a held paragraph's writer's from another writer's?"""
    alice, bob = factory.user("alice"), factory.user("bob")
    mod = factory.user("mod", role="moderator")
    story_id = factory.story(alice)
    _play(app, story_id, alice)
    _hide_first_ai_turn(app, mod)
    urls = (f"/stories/{story_id}", f"/stories/{story_id}/turns.json")
    for url in urls:
        anonymous = _tag(client, url)
        moderator = _tag(client, url, Authorization=factory.headers(mod)["Authorization"])
        assert anonymous != moderator
        stale = client.get(url, headers={"If-None-Match": anonymous, **factory.headers(mod)})
        assert stale.status_code == 200 and b"The sea wrote back." in stale.data
        writers = {_tag(client, url, **factory.headers(who)) for who in (alice, bob)}
        assert len(writers) == 2


def test_a_report_changes_the_reporters_page(app, client, factory):
    """Does reporting a turn change the tag, so the page says "Reported"?"""
    alice, bob = factory.user("alice"), factory.user("bob")
    story_id = factory.story(alice)
    _play(app, story_id, alice)
    url, headers = f"/stories/{story_id}", factory.headers(bob)
    before = _tag(client, url, **headers)
    with app.app_context():
        turn = db.session.scalars(select(Turn).where(Turn.kind == "ai")).one()
        report_turn(turn.id, db.session.get(User, bob), "Off topic.")
    response = client.get(url, headers={"If-None-Match": before, **headers})
    assert response.status_code == 200 and b'data-testid="reported"' in response.data


def test_no_304_while_a_flash_waits(app, client, browser, factory):
    """Is a page with a pending flash rendered (no 304), and untagged, so the flash shows once?"""
    story_id = factory.story(factory.user("alice"))
    browser.register("carol")
    url = f"/stories/{story_id}"
    client.get(url)  # shows the welcome flash
    tag = _tag(client, url)
    client.post(f"/stories/{story_id}/join")  # flashes "You joined this story."
    flashed = client.get(url, headers={"If-None-Match": tag})
    assert flashed.status_code == 200 and b"You joined this story." in flashed.data
    assert "ETag" not in flashed.headers
    after = client.get(url)
    assert b"You joined this story." not in after.data and after.headers["ETag"]


def test_another_session_never_revalidates_its_token(app, client, browser, factory):
    """Does the same writer's page in another session (another CSRF secret) get a fresh
    rendering rather than a 304 keeping a token that session would refuse?"""
    story_id = factory.story(factory.user("alice"))
    browser.register("carol")
    url = f"/stories/{story_id}"
    client.get(url)  # shows the welcome flash
    tag = _tag(client, url)
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    other = app.test_client()
    other.post("/login", data={"username": "carol", "password": "password123"})
    other.get(url)  # the login flash, if any
    assert other.get(url, headers={"If-None-Match": tag}).status_code == 200


def test_anonymous_page_holds_no_token_and_sets_no_cookie(app, client, factory):
    """Is an anonymous reader's page free of CSRF tokens and session cookies (so one rendering
    serves every anonymous reader)?"""
    story_id = factory.story(factory.user("alice"))
    response = client.get(f"/stories/{story_id}")
    assert b"csrf_token" not in response.data
    assert "Set-Cookie" not in response.headers


def test_page_queries_do_not_grow_with_turns(app, client, factory):
    """Does the page, for a reader, a writer and a moderator, take as many queries for a
    10-turn story as for a 200-turn one (no query per turn)?"""
    alice, bob = factory.user("alice"), factory.user("bob")
    mod = factory.user("mod", role="moderator")
    small, large = factory.story(alice), factory.story(alice)
    _many_turns(app, small, bob, 10)
    _many_turns(app, large, bob, 200)
    for headers in ({}, factory.headers(alice), factory.headers(mod)):
        client.get("/", headers=headers)  # one-off work: the first request, a token's first use
        counts = []
        for story_id in (small, large):
            for url in (f"/stories/{story_id}", f"/stories/{story_id}/turns.json"):
                with _counting(app) as statements:
                    assert client.get(url, headers=headers).status_code == 200
                counts.append(len(statements))
        assert counts[:2] == counts[2:], counts
