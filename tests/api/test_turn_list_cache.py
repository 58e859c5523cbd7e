"""ETags and 304s on GET /api/v1/stories/<id>/turns, documented, with no query per turn."""

from __future__ import annotations

from app.accounts.models import User
from app.extensions import db
from app.stories import reads, relay
from app.stories.jobs import claim_job, complete_job
from tests.views.test_page_cache import _counting, _hide_first_ai_turn, _many_turns


def _list(client, story_id: int, **headers: str):
    return client.get(f"/api/v1/stories/{story_id}/turns", headers=headers)


def test_unchanged_turn_list_is_304(app, client, factory):
    """Does a second GET with the ETag get 304 with no body, and a new turn a new tag?"""
    alice, bob = factory.user("alice"), factory.user("bob")
    story_id = factory.story(alice)
    first = _list(client, story_id)
    assert first.status_code == 200 and first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert {"Authorization", "Cookie"} <= set(first.vary)
    again = _list(client, story_id, **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    with app.app_context():
        relay.append_human_turn(story_id, db.session.get(User, bob), "New.", 0)
    changed = _list(client, story_id, **{"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.get_json()["turns"][0]["text"] == "New."
    assert changed.headers["ETag"] != first.headers["ETag"]


def test_job_progress_changes_the_tag(app, client, factory):
    """Do the pending job's claim and completion each change the list's tag?"""
    alice = factory.user("alice")
    story_id = factory.story(alice)
    with app.app_context():
        relay.append_human_turn(story_id, db.session.get(User, alice), "Hello.", 0)
    tags = [_list(client, story_id).headers["ETag"]]
    with app.app_context():
        job = reads.pending_job(reads.get_story(story_id))
        claim_job(job.id, "test")
    running = _list(client, story_id, **{"If-None-Match": tags[0]})
    assert running.status_code == 200 and running.get_json()["pending_job"]["status"] == "running"
    tags.append(running.headers["ETag"])
    with app.app_context():
        complete_job(job.id, "The sea wrote back.")
    tags.append(_list(client, story_id).headers["ETag"])
    assert len(set(tags)) == 3


def test_moderator_and_reader_tags_differ(app, client, factory):
    """With a hidden turn, do a moderator's and an anonymous reader's tags differ?"""
    alice, mod = factory.user("alice"), factory.user("mod", role="moderator")
    story_id = factory.story(alice)
    with app.app_context():
        relay.append_human_turn(story_id, db.session.get(User, alice), "Hello.", 0)
        job = reads.pending_job(reads.get_story(story_id))
        claim_job(job.id, "test")
        complete_job(job.id, "The sea wrote back.")
    _hide_first_ai_turn(app, mod)
    reader = _list(client, story_id)
    moderator = _list(client, story_id, **factory.headers(mod))
    assert reader.headers["ETag"] != moderator.headers["ETag"]
    assert len(moderator.get_json()["turns"]) == 2 and len(reader.get_json()["turns"]) == 1


def test_turn_list_queries_do_not_grow_with_turns(app, client, factory):
    """Does the list take as many queries for 10 turns as for 200?"""
    alice, bob = factory.user("alice"), factory.user("bob")
    small, large = factory.story(alice), factory.story(alice)
    _many_turns(app, small, bob, 10)
    _many_turns(app, large, bob, 200)
    headers = factory.headers(alice)
    client.get("/api/v1/health", headers=headers)  # the token's first use is recorded
    counts = []
    for story_id in (small, large):
        with _counting(app) as statements:
            assert len(_list(client, story_id, **headers).get_json()["turns"]) in (10, 200)
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_spec_documents_the_304_and_etag(client):
    """Does the spec document the 304 and the ETag header that If-None-Match sends back?"""
    paths = client.get("/api/v1/swagger.json").get_json()["paths"]
    operation = paths["/stories/{story_id}/turns"]["get"]
    assert "304" in operation["responses"]
    assert "If-None-Match" in operation["responses"]["304"]["description"]
    assert "ETag" in operation["responses"]["200"]["headers"]
    assert "ETag" in operation["responses"]["304"]["headers"]
