"""The /api/v1/admin namespace and /api/v1/turns/<id>/reports (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from app.moderation.models import AuditEntry, Report
from app.stories.models import GenerationJob, Story, Turn
from tests.conftest import set_filter_action
from tests.moderation.conftest import add_turn, audit_rows, count, routes, turn_state

# The documented admin-only part of the namespace; everything else is for moderators too.
ADMIN_ONLY = {
    ("POST", "api.admin_user_role"),
    ("GET", "api.admin_filter_rule_list"),
    ("POST", "api.admin_filter_rule_list"),
    ("PATCH", "api.admin_filter_rule_item"),
    ("DELETE", "api.admin_filter_rule_item"),
}


def call(client, method, url, headers=None, json=None):
    return client.open(url, method=method, headers=headers or {}, json=json)


def test_every_admin_route_denies_as_documented(app, client, people):
    """Is every /api/v1/admin route 401 anonymous, 403 for writers, admin-only ones 403 for
    moderators, and open to the roles it is for?"""
    walked = routes(app, "/api/v1/admin")
    assert len(walked) >= 15
    assert {(method, endpoint) for method, _, endpoint in walked} >= ADMIN_ONLY
    for method, url, endpoint in walked:
        anonymous = call(client, method, url)
        assert anonymous.status_code == 401, (method, url)
        assert anonymous.get_json()["error"]["code"] == "unauthorized"
        assert call(client, method, url, {"Authorization": "Bearer nope"}).status_code == 401
        writer = call(client, method, url, people.headers[people.writer])
        assert writer.status_code == 403, (method, url)
        assert writer.get_json()["error"]["code"] == "forbidden"
        moderator = call(client, method, url, people.headers[people.mod]).status_code
        if (method, endpoint) in ADMIN_ONLY:
            assert moderator == 403, (method, url)
        else:
            assert moderator not in (401, 403), (method, url, moderator)
        assert call(client, method, url, people.headers[people.admin]).status_code not in (401, 403)
    assert audit_rows(app) == 0


def test_every_moderation_action_writes_exactly_one_audit_row(app, client, factory, people):
    """Does each moderation action through the API write one audit row, and a refused one none?"""
    sid = factory.story(people.writer)
    tid = add_turn(app, sid, people.writer, "The gull stole the key.", answer="It flew off.")
    mod, adm = people.headers[people.mod], people.headers[people.admin]
    report = {"reason": "Looks like spam"}
    steps = [
        ("POST", f"/api/v1/turns/{tid}/reports", people.headers[people.other], report, 201, None),
        (
            "POST",
            f"/api/v1/admin/turns/{tid}/dismiss",
            mod,
            {"reason": "fine"},
            200,
            "report.dismiss",
        ),
        ("POST", f"/api/v1/admin/turns/{tid}/hide", mod, {"reason": ""}, 422, None),
        ("POST", f"/api/v1/admin/turns/{tid}/hide", mod, {"reason": "spam"}, 200, "turn.hide"),
        ("POST", f"/api/v1/admin/turns/{tid}/restore", mod, None, 200, "turn.restore"),
        (
            "POST",
            f"/api/v1/admin/stories/{sid}/status",
            mod,
            {"status": "locked"},
            200,
            "story.lock",
        ),
        ("POST", f"/api/v1/admin/stories/{sid}/status", mod, {"status": "gone"}, 422, None),
        (
            "POST",
            f"/api/v1/admin/stories/{sid}/status",
            mod,
            {"status": "open"},
            200,
            "story.unlock",
        ),
        (
            "POST",
            f"/api/v1/admin/stories/{sid}/status",
            mod,
            {"status": "finished"},
            200,
            "story.finish",
        ),
        (
            "POST",
            f"/api/v1/admin/users/{people.other}/suspend",
            mod,
            {"reason": "spam"},
            200,
            "user.suspend",
        ),
        ("POST", f"/api/v1/admin/users/{people.other}/unsuspend", mod, {}, 200, "user.unsuspend"),
        ("POST", f"/api/v1/admin/users/{people.mod}/suspend", mod, {"reason": "me"}, 409, None),
        (
            "POST",
            f"/api/v1/admin/users/{people.other}/role",
            adm,
            {"role": "moderator"},
            200,
            "user.role",
        ),
        ("POST", f"/api/v1/admin/users/{people.other}/role", adm, {"role": "king"}, 422, None),
        (
            "POST",
            "/api/v1/admin/filters",
            adm,
            {"language": "en", "word": "rascal"},
            201,
            "filter.add",
        ),
        (
            "POST",
            "/api/v1/admin/filters",
            adm,
            {"language": "en", "pattern": "(("},
            422,
            None,
        ),
        (
            "DELETE",
            f"/api/v1/admin/stories/{sid}",
            mod,
            {"reason": "spam story"},
            204,
            "story.delete",
        ),
    ]
    for method, url, headers, body, status, action in steps:
        before = audit_rows(app)
        response = call(client, method, url, headers, body)
        assert response.status_code == status, (url, response.get_json())
        assert audit_rows(app) == before + (1 if action else 0), url
        if action:
            newest = client.get("/api/v1/admin/audit", headers=mod).get_json()["entries"][0]
            assert newest["action"] == action
    rule = client.get("/api/v1/admin/filters", headers=adm).get_json()["rules"]
    rascal = next(r for r in rule if r["value"] == "rascal")
    assert client.delete(f"/api/v1/admin/filters/{rascal['id']}", headers=adm).status_code == 204
    assert count(app, AuditEntry, AuditEntry.action == "filter.delete") == 1
    assert count(app, Story) == 0


def test_audit_log_filters_and_pages(app, client, factory, people):
    """Can the audit log be filtered by actor, action and target type, and is a bad page a 422?"""
    sid = factory.story(people.writer)
    mod, adm = people.headers[people.mod], people.headers[people.admin]
    client.post(f"/api/v1/admin/stories/{sid}/status", headers=mod, json={"status": "locked"})
    client.post(f"/api/v1/admin/users/{people.other}/suspend", headers=adm, json={"reason": "x"})
    log = lambda query: client.get(f"/api/v1/admin/audit?{query}", headers=mod).get_json()  # noqa: E731
    assert [e["action"] for e in log("actor=mona")["entries"]] == ["story.lock"]
    assert [e["actor"] for e in log("action=user.suspend")["entries"]] == ["adele"]
    assert [e["action"] for e in log("action=user")["entries"]] == ["user.suspend"]  # a prefix
    assert log("action=user.sus%25")["total"] == 0  # LIKE wildcards are taken literally
    assert log("target_type=story")["total"] == 1
    assert log("")["total"] == 2
    assert log("per_page=1&page=2")["entries"][0]["action"] == "story.lock"
    bad = client.get("/api/v1/admin/audit?page=0", headers=mod)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "page"


def test_queue_lists_reported_and_held_turns_oldest_first(app, client, factory, people):
    """Does the queue hold reported and held turns, oldest first, with the turns around them?"""
    sid = factory.story(people.writer)
    first = add_turn(app, sid, people.writer, "A quiet harbour.", answer="Boats slept.")
    headers = people.headers
    client.post(
        f"/api/v1/turns/{first}/reports", headers=headers[people.other], json={"reason": "dull"}
    )
    set_filter_action(app, "hold")
    held = client.post(
        f"/api/v1/stories/{sid}/turns",
        headers=headers[people.other],
        json={"text": "Fuck the boats.", "expected_position": 2},
    )
    assert held.status_code == 202 and held.get_json()["job"] is None
    items = client.get("/api/v1/admin/queue", headers=headers[people.mod]).get_json()["items"]
    assert [item["turn"]["id"] for item in items] == [first, held.get_json()["turn"]["id"]]
    assert items[0]["report_count"] == 1 and items[0]["reports"][0]["reason"] == "dull"
    assert [t["text"] for t in items[0]["context"]] == ["Boats slept."]
    assert items[1]["turn"]["held"] is True


def test_reports_count_once_and_need_a_reason(app, client, factory, people):
    """Does reporting a turn twice store one report, and are bad reports refused cleanly?"""
    sid = factory.story(people.writer)
    tid = add_turn(app, sid, people.writer, "A line.", answer="Another.")
    other = people.headers[people.other]
    url = f"/api/v1/turns/{tid}/reports"
    first = client.post(url, headers=other, json={"reason": "rude"})
    again = client.post(url, headers=other, json={"reason": "very rude"})
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert count(app, Report) == 1
    assert client.post(url, json={"reason": "x"}).status_code == 401
    assert client.post(url, headers=other, json={"reason": "  "}).status_code == 422
    assert client.post(url, headers=other, json={"reason": "x" * 501}).status_code == 422
    assert client.post(url, headers=other, json={"why": "x"}).status_code == 422
    assert client.post(url, headers=other, data="reason=x").status_code == 400
    assert (
        client.post("/api/v1/turns/999999/reports", headers=other, json={"reason": "x"}).status_code
        == 404
    )
    client.post(
        f"/api/v1/admin/turns/{tid}/hide", headers=people.headers[people.mod], json={"reason": "r"}
    )
    hidden = client.post(url, headers=people.headers[people.writer], json={"reason": "x"})
    assert hidden.status_code == 404
    assert count(app, Report) == 1


def test_writer_cannot_change_or_delete_another_writers_story_or_turn(app, client, factory, people):
    """Is a writer refused (403/404) changing, deleting or hiding another's story or turn?"""
    sid = factory.story(people.writer, title="Alice's")
    tid = add_turn(app, sid, people.writer, "Mine.", answer="The model's.")
    bruno = people.headers[people.other]
    attempts = [
        ("PATCH", f"/api/v1/stories/{sid}", {"title": "Bruno's now"}),
        ("PATCH", f"/api/v1/stories/{sid}", {"status": "locked"}),
        ("DELETE", f"/api/v1/stories/{sid}", None),
        ("POST", f"/api/v1/stories/{sid}/turns/2/regenerate", None),
        ("POST", f"/api/v1/admin/turns/{tid}/hide", {"reason": "mine"}),
        ("POST", f"/api/v1/admin/stories/{sid}/status", {"status": "finished"}),
        ("DELETE", f"/api/v1/admin/stories/{sid}", {"reason": "mine"}),
    ]
    for method, url, body in attempts:
        assert call(client, method, url, bruno, body).status_code in (403, 404), (method, url)
    story = client.get(f"/api/v1/stories/{sid}").get_json()
    assert (story["title"], story["status"], story["last_position"]) == ("Alice's", "open", 2)
    assert turn_state(app, tid)["hidden"] is False
    assert count(app, GenerationJob, GenerationJob.status == "queued") == 0


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "Then the fucking door slammed."), ("ko", "그 개새끼가 문을 닫았다.")],
)
@pytest.mark.parametrize("action", ["reject", "hold"])
def test_filter_catches_human_text_through_the_api(
    app, client, factory, people, language, text, action
):
    """Is an English or Korean hit refused (reject) or held for review (hold) through the API?"""
    set_filter_action(app, action)
    sid = factory.story(people.writer, language=language, opening="Opening.")
    writer = people.headers[people.writer]
    response = client.post(
        f"/api/v1/stories/{sid}/turns", headers=writer, json={"text": text, "expected_position": 0}
    )
    if action == "reject":
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "content_rejected"
        assert count(app, Turn) == 0
        return
    assert response.status_code == 202 and response.get_json()["job"] is None
    tid = response.get_json()["turn"]["id"]
    assert client.get(f"/api/v1/stories/{sid}/turns").get_json()["turns"] == []
    assert count(app, GenerationJob) == 0
    restored = client.post(f"/api/v1/admin/turns/{tid}/restore", headers=people.headers[people.mod])
    assert restored.status_code == 200 and restored.get_json()["turn"]["held"] is False
    assert count(app, GenerationJob, GenerationJob.reply_to_id == tid) == 1


def test_suspended_users_token_and_session_stop_at_once(app, client, factory, people):
    """After a suspension, is the user's very next API call 401 and their session signed out?"""
    token = people.headers[people.other]
    session = app.test_client()
    session.post("/login", data={"username": "bruno", "password": "password123"})
    assert session.get("/stories/new").status_code == 200
    assert client.get("/api/v1/auth/me", headers=token).status_code == 200
    suspend = client.post(
        f"/api/v1/admin/users/{people.other}/suspend",
        headers=people.headers[people.mod],
        json={"reason": "spam"},
    )
    assert suspend.status_code == 200 and suspend.get_json()["is_suspended"] is True
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401
    page = session.get("/stories/new")
    assert page.status_code == 302 and "/login" in page.location
    assert session.get("/api/v1/auth/me").status_code == 401
    sid = factory.story(people.writer)
    post = session.post(f"/stories/{sid}/turns", data={"text": "Hi.", "expected_position": 0})
    assert post.status_code == 302 and "/login" in post.location
    assert count(app, Turn) == 0


def test_user_search_and_moderators_cannot_suspend_admins(app, client, people):
    """Does ?q= find users by part of their name, and may only admins suspend admins?"""
    mod = people.headers[people.mod]
    found = client.get("/api/v1/admin/users?q=AL", headers=mod).get_json()["users"]
    assert [u["username"] for u in found] == ["alice"]
    assert len(client.get("/api/v1/admin/users", headers=mod).get_json()["users"]) == 4
    assert client.get("/api/v1/admin/users?q=%25", headers=mod).get_json()["users"] == []
    refused = client.post(
        f"/api/v1/admin/users/{people.admin}/suspend", headers=mod, json={"reason": "coup"}
    )
    assert refused.status_code == 403
    assert audit_rows(app) == 0


def test_stats_and_swagger(app, client, factory, people):
    """Do stats count stories and users, and is the namespace documented in the Swagger spec?"""
    factory.story(people.writer)
    stats = client.get("/api/v1/admin/stats", headers=people.headers[people.mod]).get_json()
    assert stats["stats"]["stories"] == 1 and stats["stats"]["users"] == 4
    assert set(stats["stats"]["jobs"]) == {"queued", "running", "choosing", "done", "failed"}
    spec = client.get("/api/v1/swagger.json").get_json()
    for path in ("/admin/queue", "/admin/turns/{turn_id}/hide", "/turns/{turn_id}/reports"):
        assert path in spec["paths"]
    assert "Error" in str(spec["paths"]["/admin/turns/{turn_id}/hide"]["post"]["responses"]["403"])
