"""The /admin dashboard and the report page in the browser (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

import pytest

from app.moderation.models import AuditEntry, FilterRule, Report
from app.stories.models import GenerationJob, Story, Turn
from tests.conftest import build_app, close_app, session_user_id, set_filter_action
from tests.moderation.conftest import (
    UNSAFE,
    add_turn,
    audit_rows,
    count,
    routes,
    turn_state,
)

# The documented admin-only pages; every other /admin page is for moderators too.
ADMIN_ONLY = {
    "admin.set_role",
    "admin.filters",
    "admin.add_filter_rule",
    "admin.set_filter_action",
    "admin.delete_filter_rule",
}
NAMES = {"writer": "alice", "other": "bruno", "mod": "mona", "admin": "adele"}


def signed_in(app, who: str):
    client = app.test_client()
    response = client.post("/login", data={"username": NAMES[who], "password": "password123"})
    assert response.status_code == 302
    return client


def flashes(response) -> str:
    return " ".join(
        re.findall(r'class="flash[^"]*"[^>]*>([^<]*)<', response.get_data(as_text=True))
    )


def let_in(response) -> bool:
    """Past the role check: a page, a redirect back, or the action's own 404/422."""
    login = response.status_code == 302 and "/login" in response.location
    return response.status_code in (200, 302, 404, 422) and not login


def test_every_admin_page_denies_as_documented(app, client, people):
    """Is every /admin route a login redirect when signed out, 403 for writers, and admin-only
    ones 403 for moderators, while moderators and admins reach the rest?"""
    walked = routes(app, "/admin")
    assert len(walked) >= 15
    assert {endpoint for _, _, endpoint in walked} >= ADMIN_ONLY
    writer, mod, admin = signed_in(app, "writer"), signed_in(app, "mod"), signed_in(app, "admin")
    for method, url, endpoint in walked:
        anonymous = client.open(url, method=method)
        assert anonymous.status_code == 302 and "/login?next=" in anonymous.location, url
        denied = writer.open(url, method=method)
        assert denied.status_code == 403 and "Not allowed" in denied.get_data(as_text=True), url
        moderator = mod.open(url, method=method)
        if endpoint in ADMIN_ONLY:
            assert moderator.status_code == 403, url
        else:
            assert let_in(moderator), (url, moderator.status_code)
        assert let_in(admin.open(url, method=method)), url
    as_json = writer.get("/admin", headers={"Accept": "application/json"})
    assert as_json.get_json()["error"]["code"] == "forbidden"
    assert client.get("/admin", headers={"Accept": "application/json"}).status_code == 401
    assert audit_rows(app) == 0


def test_state_changing_browser_routes_need_a_csrf_token(db_url, tiny_model_dir):
    """Is every POST/PUT/PATCH/DELETE browser route refused without a CSRF token, signed in or
    not, while the same action with the page's token goes through?"""
    app = build_app(
        db_url, tiny_model_dir, seed_filters=True, RELAY_START_RUNNER=False, WTF_CSRF_ENABLED=True
    )
    try:
        from tests.conftest import Factory

        make = Factory(app)
        admin = make.user("adele", role="admin")
        sid = make.story(admin)
        tid = add_turn(app, sid, admin, "A paragraph.", answer="An answer.")
        unsafe = [
            (method, re.sub(r"<[^>]+>", "999999", rule.rule), rule.endpoint)
            for rule in app.url_map.iter_rules()
            if not rule.rule.startswith("/api/")
            for method in sorted(rule.methods & UNSAFE)
        ]
        endpoints = {endpoint for _, _, endpoint in unsafe}
        assert {
            "admin.hide_turn",
            "admin.report",
            "stories.add_turn",
            "accounts.login",
        } <= endpoints
        anonymous, session = app.test_client(), app.test_client()
        with session.session_transaction() as cookie:
            cookie["_user_id"], cookie["_fresh"] = session_user_id(app, admin), True
        for method, url, endpoint in unsafe:
            for client in (anonymous, session):
                if client is anonymous and endpoint == "accounts.switch_language":
                    # An anonymous reader's switch only sets a cookie: no token, by design.
                    assert client.post(url, data={"lang": "ko"}).status_code == 302
                    continue
                for target in {url, url.replace("999999", str(tid))}:
                    response = client.open(target, method=method, data={"reason": "no token"})
                    assert response.status_code == 400, (method, target)
                    assert "CSRF" in response.get_data(as_text=True)
        assert audit_rows(app) == 0 and count(app, Report) == 0
        page = session.get("/admin/stories").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        done = session.post(
            f"/admin/turns/{tid}/hide", data={"reason": "spam", "csrf_token": token}
        )
        assert done.status_code == 302 and turn_state(app, tid)["hidden"] is True
    finally:
        close_app(app)


def test_writer_cannot_change_or_delete_another_writers_story_or_turn(app, factory, people):
    """Is a writer refused (403) locking, deleting, hiding or regenerating another's work?"""
    sid = factory.story(people.writer, title="Alice's")
    tid = add_turn(app, sid, people.writer, "Mine.", answer="The model's.")
    bruno = signed_in(app, "other")
    for url, data in [
        (f"/admin/stories/{sid}/status", {"status": "locked"}),
        (f"/admin/stories/{sid}/delete", {"reason": "mine"}),
        (f"/admin/turns/{tid}/hide", {"reason": "mine"}),
        (f"/admin/turns/{tid}/restore", {}),
    ]:
        assert bruno.post(url, data=data).status_code == 403, url
    regen = bruno.post(f"/stories/{sid}/turns/2/regenerate", headers={"Accept": "application/json"})
    assert regen.status_code == 403
    assert count(app, Story, Story.status == "open") == 1
    assert turn_state(app, tid)["hidden"] is False
    assert count(app, GenerationJob, GenerationJob.status == "queued") == 0


def test_report_then_hide_from_the_queue(app, client, factory, people):
    """Can a reader report a turn, and a moderator see it in the queue with its context and
    hide it in one click, so readers no longer see it?"""
    sid = factory.story(people.writer, title="Harbour")
    tid = add_turn(app, sid, people.writer, "The spam paragraph.", answer="The model goes on.")
    bruno = signed_in(app, "other")
    assert f"/turns/{tid}/report" in bruno.get(f"/stories/{sid}").get_data(as_text=True)
    form = bruno.get(f"/turns/{tid}/report")
    assert form.status_code == 200 and "The spam paragraph." in form.get_data(as_text=True)
    sent = bruno.post(f"/turns/{tid}/report", data={"reason": "Selling things"})
    assert sent.status_code == 302 and sent.location.endswith(f"/stories/{sid}#turn-1")
    after = bruno.get(f"/stories/{sid}").get_data(as_text=True)
    beside = after.split('id="turn-1"', 1)[1].split("</article>", 1)[0]
    assert 'data-testid="reported"' in beside  # the confirmation stands beside the turn
    assert f"/turns/{tid}/report" not in after  # and the Report link looks different now
    bruno.post(f"/turns/{tid}/report", data={"reason": "Again"})
    assert count(app, Report) == 1
    mod = signed_in(app, "mod")
    queue = mod.get("/admin").get_data(as_text=True)
    with_slash = mod.get("/admin/")
    assert with_slash.status_code == 200 and "Selling things" in with_slash.get_data(as_text=True)
    page = mod.get(f"/stories/{sid}").get_data(as_text=True)
    row = page.split('class="turn-tools mod-tools"', 1)[1].split("</div>", 1)[0]
    assert "report-link" in row and "Hide…" in row  # one row, side by side
    assert 'aria-label="Report §1, ' in page
    for shown in (
        "Harbour",
        "The spam paragraph.",
        "The model goes on.",
        "Selling things",
        "bruno",
    ):
        assert shown in queue
    hidden = mod.post(f"/admin/turns/{tid}/hide", data={"reason": "spam", "next": "/admin"})
    assert hidden.status_code == 302 and hidden.location.endswith("/admin")
    assert "The turn is hidden." in flashes(mod.get("/admin"))
    assert turn_state(app, tid) == {"hidden": True, "held": False, "reason": "spam"}
    assert "The spam paragraph." not in client.get(f"/stories/{sid}").get_data(as_text=True)
    assert "The spam paragraph." not in mod.get("/admin").get_data(as_text=True)
    assert count(app, AuditEntry, AuditEntry.action == "turn.hide") == 1
    assert count(app, Report, Report.status == "actioned") == 1


def test_bad_actions_show_a_message_and_change_nothing(app, factory, people):
    """Does hiding without a reason, or reporting with none, show why and store nothing?"""
    sid = factory.story(people.writer)
    tid = add_turn(app, sid, people.writer, "A paragraph.", answer="An answer.")
    mod = signed_in(app, "mod")
    back = mod.post(f"/admin/turns/{tid}/hide", data={"reason": "  "})
    assert back.status_code == 302
    assert "Give a reason." in flashes(mod.get(back.location))
    assert mod.post("/admin/turns/999999/hide", data={"reason": "x"}).status_code == 302
    assert "does not exist" in flashes(mod.get("/admin"))
    outside = mod.post(f"/admin/turns/{tid}/dismiss", data={"next": "https://evil.example/"})
    assert outside.location.endswith("/admin/")
    report = signed_in(app, "other").post(f"/turns/{tid}/report", data={"reason": ""})
    assert report.status_code == 422 and "Give a reason." in report.get_data(as_text=True)
    assert turn_state(app, tid)["hidden"] is False
    assert audit_rows(app) == 0 and count(app, Report) == 0


def test_hidden_or_missing_turns_cannot_be_reported(app, client, factory, people):
    """Is the report page a 404 for a hidden turn (to writers) and a login redirect signed out?"""
    sid = factory.story(people.writer)
    tid = add_turn(app, sid, people.writer, "A paragraph.", answer="An answer.")
    assert "/login?next=" in client.get(f"/turns/{tid}/report").location
    mod = signed_in(app, "mod")
    mod.post(f"/admin/turns/{tid}/hide", data={"reason": "spam"})
    bruno = signed_in(app, "other")
    assert bruno.get(f"/turns/{tid}/report").status_code == 404
    assert bruno.post(f"/turns/{tid}/report", data={"reason": "x"}).status_code == 404
    assert bruno.get("/turns/999999/report").status_code == 404


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "Then the fucking door slammed."), ("ko", "그 개새끼가 문을 닫았다.")],
)
@pytest.mark.parametrize("action", ["reject", "hold"])
def test_filter_catches_human_text_in_the_browser(app, factory, people, language, text, action):
    """Is an English or Korean hit refused with a message (reject) or held for review (hold),
    and can a moderator restore the held paragraph from the queue so the model answers it?"""
    set_filter_action(app, action)
    sid = factory.story(people.writer, language=language, opening="Opening.")
    alice = signed_in(app, "writer")
    response = alice.post(f"/stories/{sid}/turns", data={"text": text, "expected_position": "0"})
    if action == "reject":
        assert response.status_code == 422
        assert "The content filter does not accept" in response.get_data(as_text=True)
        assert count(app, Turn) == 0
        return
    assert response.status_code == 302
    assert "waiting for a moderator" in flashes(alice.get(response.location))
    assert text not in signed_in(app, "other").get(f"/stories/{sid}").get_data(as_text=True)
    mod = signed_in(app, "mod")
    queue = mod.get("/admin").get_data(as_text=True)
    assert text in queue and "held" in queue
    tid = re.search(r'data-turn-id="(\d+)"', queue).group(1)
    assert mod.post(f"/admin/turns/{tid}/restore", data={"reason": "fine"}).status_code == 302
    assert turn_state(app, int(tid))["held"] is False
    assert count(app, GenerationJob) == 1


def test_dismissing_reports_empties_the_queue(app, factory, people):
    """Does dismissing a turn's reports leave the turn visible and take it off the queue?"""
    sid = factory.story(people.writer)
    tid = add_turn(app, sid, people.writer, "Borderline prose.", answer="An answer.")
    signed_in(app, "other").post(f"/turns/{tid}/report", data={"reason": "meh"})
    mod = signed_in(app, "mod")
    assert mod.post(f"/admin/turns/{tid}/dismiss", data={}).status_code == 302
    assert 'data-testid="queue-empty"' in mod.get("/admin").get_data(as_text=True)
    assert turn_state(app, tid)["hidden"] is False
    assert count(app, Report, Report.status == "dismissed") == 1


def test_story_actions_lock_unlock_finish_delete(app, factory, people):
    """Can a moderator find a story by title, lock, unlock, finish and delete it?"""
    sid = factory.story(people.writer, title="The Lighthouse")
    factory.story(people.writer, title="Other")
    mod = signed_in(app, "mod")
    page = mod.get("/admin/stories?q=light").get_data(as_text=True)
    assert "The Lighthouse" in page and "Other" not in page
    for status in ("locked", "open", "finished"):
        mod.post(f"/admin/stories/{sid}/status", data={"status": status})
        assert count(app, Story, Story.id == sid, Story.status == status) == 1
    assert "The Lighthouse" in mod.get("/admin/stories?status=finished").get_data(as_text=True)
    refused = mod.post(f"/admin/stories/{sid}/delete", data={"reason": ""})
    assert "Give a reason." in flashes(mod.get(refused.location))
    mod.post(f"/admin/stories/{sid}/delete", data={"reason": "spam"})
    assert count(app, Story, Story.id == sid) == 0
    actions = ["story.lock", "story.unlock", "story.finish", "story.delete"]
    audit = mod.get("/admin/audit?target_type=story").get_data(as_text=True)
    assert re.findall(r'data-action="([^"]+)"', audit) == actions[::-1]


def test_users_suspend_unsuspend_and_roles(app, people):
    """Can a moderator search and suspend (ending the session) and unsuspend users, while only
    an admin sees and uses the role form?"""
    bruno = signed_in(app, "other")
    mod = signed_in(app, "mod")
    page = mod.get("/admin/users?q=BRU").get_data(as_text=True)
    assert "bruno" in page and "alice" not in page and "Change role" not in page
    mod.post(f"/admin/users/{people.other}/suspend", data={"reason": "spam"})
    assert "/login" in bruno.get("/stories/new").location
    assert signed_in_fails(app, "other")
    mod.post(f"/admin/users/{people.other}/unsuspend", data={})
    assert mod.post(f"/admin/users/{people.other}/role", data={"role": "admin"}).status_code == 403
    admin = signed_in(app, "admin")
    assert "Change role" in admin.get("/admin/users").get_data(as_text=True)
    admin.post(f"/admin/users/{people.other}/role", data={"role": "moderator", "reason": "trusted"})
    bruno = signed_in(app, "other")
    assert bruno.get("/admin").status_code == 200
    assert 'data-testid="admin-link"' in bruno.get("/").get_data(as_text=True)
    assert 'data-testid="admin-link"' not in signed_in(app, "writer").get("/").get_data(
        as_text=True
    )
    assert audit_rows(app) == 3


def signed_in_fails(app, who: str) -> bool:
    response = app.test_client().post(
        "/login", data={"username": NAMES[who], "password": "password123"}
    )
    return response.status_code != 302


def test_filter_lists_editor(app, factory, people):
    """Can an admin add a word (which then stops a paragraph), see a bad pattern refused on
    the form, and remove the word again?"""
    admin = signed_in(app, "admin")
    page = admin.get("/admin/filters").get_data(as_text=True)
    assert "개새끼" in page and "fuck" in page
    bad = admin.post("/admin/filters", data={"language": "en", "kind": "pattern", "value": "(("})
    assert bad.status_code == 422 and "Not a valid regular expression" in bad.get_data(as_text=True)
    before = count(app, FilterRule)
    added = admin.post("/admin/filters", data={"language": "en", "kind": "word", "value": "grue"})
    assert added.status_code == 302 and count(app, FilterRule) == before + 1
    sid = factory.story(people.writer)
    alice = signed_in(app, "writer")
    refused = alice.post(
        f"/stories/{sid}/turns", data={"text": "A grue!", "expected_position": "0"}
    )
    assert refused.status_code == 422
    rules = admin.get("/admin/filters").get_data(as_text=True)
    rule_id = re.search(r'data-rule-id="(\d+)">(?:(?!</tr>).)*>grue<', rules, re.S).group(1)
    admin.post(f"/admin/filters/{rule_id}/delete")
    assert count(app, FilterRule) == before
    ok = alice.post(f"/stories/{sid}/turns", data={"text": "A grue!", "expected_position": "0"})
    assert ok.status_code == 302


def test_stats_and_audit_pages(app, factory, people):
    """Do the stats page show the counts and the audit log filter by actor, read-only?"""
    sid = factory.story(people.writer)
    mod = signed_in(app, "mod")
    mod.post(f"/admin/stories/{sid}/status", data={"status": "locked", "reason": "cool down"})
    signed_in(app, "admin").post(f"/admin/users/{people.other}/suspend", data={"reason": "spam"})
    stats = mod.get("/admin/stats").get_data(as_text=True)
    assert re.search(r"<dt>Stories</dt><dd>1</dd>", stats)
    assert re.search(r"<dt>Users</dt><dd>4</dd>", stats)
    mine = mod.get("/admin/audit?actor=mona").get_data(as_text=True)
    assert re.findall(r'data-action="([^"]+)"', mine) == ["story.lock"] and "cool down" in mine
    assert "<form" not in mine.split("Audit log</h1>")[1].split("</form>", 1)[1]


def test_moderator_hides_and_restores_from_the_story_page(app, factory, people):
    """Does a moderator get Hide (with a reason) on a visible turn and Restore on a hidden one,
    right on the story page, and come back to that page?"""
    sid = factory.story(people.writer)
    tid = add_turn(app, sid, people.writer, "A quiet harbour.", answer="Boats slept.")
    mod = signed_in(app, "mod")
    page = mod.get(f"/stories/{sid}").get_data(as_text=True)
    assert f'action="/admin/turns/{tid}/hide"' in page and 'name="reason"' in page
    hidden = mod.post(
        f"/admin/turns/{tid}/hide", data={"reason": "spam", "next": f"/stories/{sid}"}
    )
    assert hidden.status_code == 302 and hidden.location.endswith(f"/stories/{sid}")
    assert turn_state(app, tid)["hidden"] is True
    page = mod.get(f"/stories/{sid}").get_data(as_text=True)
    assert f'action="/admin/turns/{tid}/restore"' in page
    mod.post(f"/admin/turns/{tid}/restore", data={"next": f"/stories/{sid}"})
    assert turn_state(app, tid)["hidden"] is False
    writer = signed_in(app, "other").get(f"/stories/{sid}").get_data(as_text=True)
    assert "/admin/turns/" not in writer  # writers get Report, not moderation tools


def test_the_add_button_follows_the_turn_order(app, factory, people):
    """Is "Add my paragraph" disabled for the writer of the last paragraph (open policy),
    and enabled for someone else?"""
    sid = factory.story(people.writer)
    add_turn(app, sid, people.writer, "A quiet harbour.", answer="Boats slept.")
    alice, bruno = signed_in(app, "writer"), signed_in(app, "other")
    assert alice.get(f"/stories/{sid}/state.json").get_json()["can_write"] is False
    assert bruno.get(f"/stories/{sid}/state.json").get_json()["can_write"] is True
    button = re.search(
        r'<button[^>]*id="turn-submit"[^>]*>', alice.get(f"/stories/{sid}").get_data(as_text=True)
    )
    assert button and "disabled" in button.group(0)
