"""The content filter's actions: chosen per rule by admins, made stricter by a story's owner,
in the service, the API and the admin page (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.errors import Conflict, Forbidden, Invalid
from app.extensions import db
from app.moderation import service
from app.moderation.filter import human_verdict, load_checker, stricter
from app.moderation.models import AuditEntry, FilterRule
from app.stories import relay
from app.stories.models import Story, Turn
from tests.moderation.conftest import audit_rows, count


def _rule(value: str) -> FilterRule:
    return db.session.scalars(select(FilterRule).where(FilterRule.value == value)).one()


def _write(story_id: int, user_id: int, text: str):
    story = db.session.get(Story, story_id)
    db.session.refresh(story)
    return relay.append_human_turn(
        story_id, db.session.get(User, user_id), text, story.last_position
    )


def _act(app, people, value: str, action: str) -> None:
    with app.app_context():
        service.set_filter_action(db.session.get(User, people.admin), _rule(value).id, action)


def test_a_story_can_be_stricter_never_looser():
    """Does a story's setting only ever raise a rule's action?"""
    assert stricter("allow_in_fiction", "site") == "allow_in_fiction"
    assert stricter("allow_in_fiction", "hold") == "hold"
    assert stricter("hold", "reject") == "reject"
    assert stricter("reject", "site") == "reject"
    assert stricter("reject", "hold") == "reject"


@pytest.mark.parametrize(
    ("language", "word", "text"),
    [
        ("en", "fuck", "“Fuck,” she said, and shut the door."),
        ("ko", "씨발", "“씨발,” 그가 말했다."),
    ],
)
def test_a_word_allowed_in_fiction_is_accepted_and_answered(
    app, people, factory, language, word, text
):
    """Is a paragraph with a word allowed in fiction stored and answered, in both languages?"""
    _act(app, people, word, "allow_in_fiction")
    sid = factory.story(people.writer, language=language, opening="Opening.")
    with app.app_context():
        turn, job = _write(sid, people.writer, text)
        assert job is not None and not turn.held
        # The model's output is still checked against the same word.
        assert load_checker(language)(text).value == word


def test_the_strictest_rule_a_paragraph_breaks_decides(app, people, factory):
    """With one word allowed in fiction and another held, is the paragraph held?"""
    _act(app, people, "fuck", "allow_in_fiction")
    _act(app, people, "cunt", "hold")
    with app.app_context():
        assert human_verdict("fuck", "en").action == "allow_in_fiction"
        assert human_verdict("fuck, you cunt", "en").action == "hold"
        assert human_verdict("fuck, you cunt", "en").value == "cunt"
        assert human_verdict("A quiet night.", "en") is None


@pytest.mark.parametrize(
    ("strictness", "outcome"), [("site", "accepted"), ("hold", "held"), ("reject", "refused")]
)
def test_the_owner_setting_makes_the_story_stricter(app, people, factory, strictness, outcome):
    """Does a story set to hold or reject hold or refuse what the site allows in fiction?"""
    _act(app, people, "fuck", "allow_in_fiction")
    sid = factory.story(people.writer, filter_strictness=strictness)
    with app.app_context():
        if outcome == "refused":
            with pytest.raises(Invalid) as exc:
                _write(sid, people.writer, "Fuck the rain.")
            assert exc.value.code == "content_rejected"
            assert "does not accept “Fuck”" in exc.value.message
            assert db.session.query(Turn).count() == 0
            return
        turn, job = _write(sid, people.writer, "Fuck the rain.")
        assert turn.held is (outcome == "held") and (job is None) is (outcome == "held")
        assert turn.held_reason == ("filter: fuck" if outcome == "held" else None)


def test_a_reject_rule_stays_a_reject_in_a_site_story(app, people, factory):
    """Can no story setting loosen a rule that rejects?"""
    sid = factory.story(people.writer)
    with app.app_context():
        with pytest.raises(Invalid):
            relay.update_story(sid, db.session.get(User, people.writer), {"filter_strictness": "x"})
        with pytest.raises(Invalid):
            _write(sid, people.writer, "Fuck the rain.")


def test_choosing_an_action_is_audited_and_for_admins_only(app, people):
    """Is an action change one audit row with old and new, a no-op none, a moderator refused,
    and a pattern never allowed in fiction?"""
    with app.app_context():
        admin, mod = db.session.get(User, people.admin), db.session.get(User, people.mod)
        rule = _rule("fuck")
        service.set_filter_action(admin, rule.id, "hold")
        service.set_filter_action(admin, rule.id, "hold")
        entry = db.session.scalars(select(AuditEntry)).one()
        assert (entry.action, entry.target_id) == ("filter.action", rule.id)
        assert entry.details == {"value": "fuck", "old": "reject", "new": "hold"}
        with pytest.raises(Forbidden):
            service.set_filter_action(mod, rule.id, "reject")
        with pytest.raises(Invalid):
            service.set_filter_action(admin, rule.id, "shrug")
        pattern = db.session.scalars(select(FilterRule).where(FilterRule.kind == "pattern")).first()
        with pytest.raises(Conflict) as exc:
            service.set_filter_action(admin, pattern.id, "allow_in_fiction")
        assert exc.value.code == "fiction_words_only"
        added = service.add_filter_rule(admin, "en", "word", "blast", "allow_in_fiction")
        assert added.action == "allow_in_fiction"
    assert audit_rows(app) == 2


def test_the_api_lists_and_changes_a_rule_action(app, client, people):
    """Does GET /admin/filters show each rule's action and PATCH change it?"""
    admin = people.headers[people.admin]
    rules = client.get("/api/v1/admin/filters", headers=admin).get_json()["rules"]
    assert {r["action"] for r in rules} == {"reject"}
    word = next(r for r in rules if r["value"] == "fuck")
    url = f"/api/v1/admin/filters/{word['id']}"
    changed = client.patch(url, headers=admin, json={"action": "allow_in_fiction"})
    assert changed.status_code == 200 and changed.get_json()["action"] == "allow_in_fiction"
    assert client.patch(url, headers=admin, json={"action": "nope"}).status_code == 422
    writer = people.headers[people.writer]
    assert client.patch(url, headers=writer, json={"action": "hold"}).status_code == 403
    pattern = next(r for r in rules if r["kind"] == "pattern")
    refused = client.patch(
        f"/api/v1/admin/filters/{pattern['id']}", headers=admin, json={"action": "allow_in_fiction"}
    )
    assert (
        refused.status_code == 409 and refused.get_json()["error"]["code"] == "fiction_words_only"
    )


def test_the_api_story_carries_its_strictness(app, client, people):
    """Can an owner create and PATCH a story's filter_strictness through the API?"""
    writer = people.headers[people.writer]
    story = {
        "title": "Rain",
        "language": "en",
        "opening": "It rained.",
        "filter_strictness": "hold",
    }
    created = client.post("/api/v1/stories", headers=writer, json=story)
    assert created.status_code == 201 and created.get_json()["filter_strictness"] == "hold"
    url = f"/api/v1/stories/{created.get_json()['id']}"
    patched = client.patch(url, headers=writer, json={"filter_strictness": "reject"})
    assert patched.get_json()["filter_strictness"] == "reject"
    assert client.patch(url, headers=writer, json={"filter_strictness": "lax"}).status_code == 422


def test_the_admin_page_chooses_an_action(app, people):
    """Does the filter page show an action per rule and save a new one, audited?"""
    admin = app.test_client()
    admin.post("/login", data={"username": "adele", "password": "password123"})
    page = admin.get("/admin/filters").get_data(as_text=True)
    assert 'value="allow_in_fiction"' in page and "Allow in fiction" in page
    with app.app_context():
        rule_id = _rule("fuck").id
    saved = admin.post(f"/admin/filters/{rule_id}/action", data={"action": "hold"})
    assert saved.status_code == 302
    assert "The rule&#39;s action is saved." in admin.get(saved.location).get_data(as_text=True)
    assert count(app, FilterRule, FilterRule.action == "hold") == 1
    added = admin.post(
        "/admin/filters",
        data={"language": "*", "kind": "pattern", "value": "zz+", "action": "allow_in_fiction"},
    )
    assert added.status_code == 409
    assert "Only words can be allowed in fiction" in added.get_data(as_text=True)
    assert audit_rows(app) == 1
