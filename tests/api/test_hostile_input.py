"""Input found by fuzzing that once gave 500s or bent the relay rules: each is now a clear
error (or a harmless reading), and nothing is stored."""

from __future__ import annotations

import pytest

from tests.api.conftest import answer, counts, first_paragraph
from tests.api.test_bad_input_api import error_of
from tests.conftest import session_user_id

HUGE = "99999999999999999999"  # past 2**63 - 1: SQLite raised OverflowError on it
PAST_INT4 = "3000000000"  # past PostgreSQL's INTEGER: "integer out of range"


def test_lone_surrogates_are_refused_by_field(app, client, factory):
    """Is JSON text with an unpaired UTF-16 surrogate a 422 naming the field, nothing stored?"""
    owner = factory.user()
    sid = factory.story(owner)
    headers = {**factory.headers(owner), "Content-Type": "application/json"}
    before = counts(app)
    cases = [
        ("/api/v1/auth/register", '{"username": "good", "password": "\\ud800passwd"}', "password"),
        ("/api/v1/auth/tokens", '{"username": "\\ud800", "password": "\\udfff"}', "username"),
        ("/api/v1/stories", '{"title": "\\ud800 lone", "language": "en", "opening": "x"}', "title"),
        (f"/api/v1/stories/{sid}/turns", '{"text": "ok \\udc80", "expected_position": 0}', "text"),
    ]  # fmt: skip
    for url, body, field in cases:
        error = error_of(client.post(url, data=body, headers=headers), 422, "invalid")
        assert error["field"] == field and "surrogate" in error["message"]
    assert counts(app) == before
    paired = '{"text": "an emoji \\ud83d\\ude00 is fine", "expected_position": 0}'
    assert (
        client.post(f"/api/v1/stories/{sid}/turns", data=paired, headers=headers).status_code == 202
    )


def test_ids_and_numbers_past_64_bits(app, client, factory):
    """Are ids past 2**63 - 1 a 404 and oversized or non-ASCII query numbers a 422 (API),
    a clamped page (browser), never a 500?"""
    owner = factory.user()
    sid = factory.story(owner)
    headers = factory.headers(owner)
    for url in (
        f"/api/v1/stories/{HUGE}",
        f"/api/v1/stories/{PAST_INT4}/turns",
        f"/api/v1/jobs/{HUGE}",
    ):
        error_of(client.get(url, headers=headers), 404)
    turn = {"text": "Hi.", "expected_position": 0}
    error_of(client.post(f"/api/v1/stories/{HUGE}/turns", json=turn, headers=headers), 404)
    for query, field in [
        ("/api/v1/stories?page=9223372036854775807", "page"),
        ("/api/v1/stories?page=%D9%A3", "page"),  # an Arabic-Indic three
        ("/api/v1/stories?page=" + "9" * 5000, "page"),  # int() refuses past 4,300 digits
        (f"/api/v1/stories/{sid}/turns?since=9223372036854775808", "since"),
        (f"/api/v1/stories/{sid}/turns?since={PAST_INT4}", "since"),
        ("/api/v1/admin/audit?page=9999999999999999999999", "page"),
    ]:
        admin = factory.headers(factory.user(role="admin"))
        assert error_of(client.get(query, headers=admin), 422)["field"] == field
    for page in (f"/stories/{HUGE}", f"/stories/{HUGE}/state.json", f"/stories/{HUGE}/export.txt"):
        assert client.get(page).status_code == 404
    for page in (
        f"/stories/{sid}?before={HUGE}",
        f"/stories/{sid}/turns.json?since={HUGE}",
        f"/stories/{sid}/turns.json?before={HUGE}",
        f"/stories/{sid}/turns.json?since={PAST_INT4}",
        "/?page=9223372036854775807",
        "/?page=" + "9" * 5000,
    ):
        assert client.get(page).status_code == 200, page


def test_odd_numbers_and_deep_json_are_client_errors(app, client, factory):
    """Are Infinity/1e400 a 422 and JSON nested 5,000 deep a 400 malformed_json?"""
    headers = {**factory.headers(factory.user()), "Content-Type": "application/json"}
    before = counts(app)
    for number in ("Infinity", "-Infinity", "1e400"):
        body = '{"title": "T", "language": "en", "opening": "x", "max_new_tokens": ' + number + "}"
        error = error_of(client.post("/api/v1/stories", data=body, headers=headers), 422)
        assert error["field"] == "max_new_tokens"
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    error_of(
        client.post("/api/v1/auth/register", data=deep, headers=headers), 400, "malformed_json"
    )
    assert counts(app) == before


def test_titles_need_visible_text_on_one_line(app, client, factory):
    """Is a title of only zero-width characters refused, and a multi-line one made one line?"""
    headers = factory.headers(factory.user())
    story = {"language": "en", "opening": "x"}
    for title in ("\u200b", "\ufeff\u200b "):
        response = client.post("/api/v1/stories", json={**story, "title": title}, headers=headers)
        assert error_of(response, 422)["field"] == "title"
    made = client.post("/api/v1/stories", json={**story, "title": "Two\nlines"}, headers=headers)
    assert made.status_code == 201 and made.get_json()["title"] == "Two lines"


def test_language_stays_with_the_model(app, client, factory):
    """Is a story's language (its model writes in it) not a field PATCH takes, nor its model?"""
    owner = factory.user()
    sid = factory.story(owner)
    headers = factory.headers(owner)
    for change in ({"language": "ko"}, {"language": "en"}, {"model": "tiny"}):
        response = client.patch(f"/api/v1/stories/{sid}", json=change, headers=headers)
        assert error_of(response, 422)["field"] == next(iter(change))
    same = client.patch(f"/api/v1/stories/{sid}", json={"title": "Renamed"}, headers=headers)
    assert same.status_code == 200 and same.get_json()["language"] == "en"


def test_usernames_differing_only_in_case_are_taken(app, client):
    """Is "ALICE" refused once "alice" exists?"""
    account = {"password": "password123"}
    assert (
        client.post("/api/v1/auth/register", json={"username": "alice", **account}).status_code
        == 201
    )
    response = client.post("/api/v1/auth/register", json={"username": "ALICE", **account})
    error_of(response, 409, "username_taken")


def test_a_bad_bearer_token_never_falls_back_to_the_session(app, client, factory):
    """With a browser session and a wrong token, is the call a 401, not the session user's?"""
    uid = factory.user()
    with client.session_transaction() as cookie:
        cookie["_user_id"], cookie["_fresh"] = session_user_id(app, uid), True
    assert client.get("/api/v1/auth/me").status_code == 200  # the session alone works
    bad = {"Authorization": "Bearer nope"}
    error_of(client.get("/api/v1/auth/me", headers=bad), 401, "bad_token")
    before = counts(app)
    story = {"title": "T", "language": "en", "opening": "x"}
    error_of(client.post("/api/v1/stories", json=story, headers=bad), 401, "bad_token")
    assert counts(app) == before
    other = factory.user()
    me = client.get("/api/v1/auth/me", headers=factory.headers(other)).get_json()
    assert me["id"] == other  # a good token is its own user, whatever the cookie says


@pytest.fixture
def answered(app, client, factory):
    """(story id, owner, moderator headers, first AI turn id) after one regenerate."""
    mod = factory.user(role="moderator")
    sid, owner, job = first_paragraph(client, factory)
    answer(app, job["id"], "The first answer.")
    return sid, owner, factory.headers(mod)


def test_a_replaced_answer_cannot_be_restored_beside_its_replacement(
    app, client, factory, answered
):
    """After a regenerate, is restoring the old answer a 409 while the new one is visible?"""
    sid, owner, mod = answered
    again = client.post(f"/api/v1/stories/{sid}/turns/2/regenerate", headers=factory.headers(owner))
    answer(app, again.get_json()["job"]["id"], "The second answer.")
    seen = client.get(f"/api/v1/stories/{sid}/turns", headers=mod).get_json()["turns"]
    old, new = (t["id"] for t in seen if t["kind"] == "ai")
    refused = client.post(f"/api/v1/admin/turns/{old}/restore", json={}, headers=mod)
    error_of(refused, 409, "already_answered")
    hidden = client.post(f"/api/v1/admin/turns/{new}/hide", json={"reason": "worse"}, headers=mod)
    assert hidden.status_code == 200
    assert (
        client.post(f"/api/v1/admin/turns/{old}/restore", json={}, headers=mod).status_code == 200
    )
    reader = client.get(f"/api/v1/stories/{sid}/turns").get_json()["turns"]
    assert [t["text"] for t in reader if t["kind"] == "ai"] == ["The first answer."]


def test_hiding_a_paragraph_withdraws_its_pending_answer(app, client, factory, answered):
    """Is the model's pending answer to a paragraph hidden meanwhile failed, and its late
    result dropped instead of appended?"""
    from app.stories.jobs import claim_job, complete_job

    sid, owner, mod = answered
    posted = client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "Something to hide.", "expected_position": 2},
        headers=factory.headers(factory.user()),
    )
    assert posted.status_code == 202, posted.get_json()
    job = posted.get_json()["job"]
    with app.app_context():
        assert claim_job(job["id"], "test") is not None  # the runner is writing
    hidden = client.post(
        f"/api/v1/admin/turns/{job['reply_to_id']}/hide", json={"reason": "spam"}, headers=mod
    )
    assert hidden.status_code == 200
    state = client.get(f"/api/v1/jobs/{job['id']}", headers=mod).get_json()
    assert state["status"] == "failed" and "hidden" in state["error"]
    with app.app_context():
        assert complete_job(job["id"], "A late answer.") is None
    seen = client.get(f"/api/v1/stories/{sid}/turns", headers=mod).get_json()["turns"]
    assert "A late answer." not in [t["text"] for t in seen]
    follow = client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "The story goes on.", "expected_position": 3},
        headers=factory.headers(factory.user()),
    )
    assert follow.status_code == 202, follow.get_json()


def test_filter_patterns_that_cannot_work_are_refused(app, client, factory):
    """Are a pattern with a huge repeat count and a broken one a 422, and does a pattern that
    can match empty text ("x*") refuse only paragraphs it finds something in?"""
    from app.moderation.filter import check_text

    admin = factory.headers(factory.user(role="admin"))
    for value in ("a{99999999999}", "(unclosed", "*"):
        rule = {"language": "en", "pattern": value}
        response = client.post("/api/v1/admin/filters", json=rule, headers=admin)
        assert error_of(response, 422)["field"] in ("pattern", "value"), value
    for value in ("spam+", "x*"):
        rule = {"language": "en", "pattern": value}
        assert client.post("/api/v1/admin/filters", json=rule, headers=admin).status_code == 201
    with app.app_context():
        assert check_text("A quiet night.", "en") is None
        assert check_text("A quiet xylophone.", "en").matched == "x"


def test_admin_form_redirects_stay_on_this_site(app, client, factory):
    """Is a `next` with a control character, a tab-hidden "//host" or a scheme replaced by
    the page's default, and a local path kept?"""
    mod = factory.user(role="moderator")
    sid = factory.story(factory.user())
    with client.session_transaction() as cookie:
        cookie["_user_id"], cookie["_fresh"] = session_user_id(app, mod), True
    for target in ("/\r\nSet-Cookie: x=1", "/\t/evil.example", "https://evil.example/", "//evil"):
        response = client.post(
            f"/admin/stories/{sid}/status", data={"status": "locked", "next": target}
        )
        assert response.status_code == 302, target
        assert "evil" not in response.location and "Set-Cookie" not in response.location
    kept = client.post(
        f"/admin/stories/{sid}/status", data={"status": "open", "next": "/admin/audit"}
    )
    assert kept.status_code == 302 and kept.location.endswith("/admin/audit")


def test_last_event_id_with_non_ascii_digits_replays_nothing(app, factory):
    """Is a Last-Event-ID like "²" (isdigit() but not int()) read as no id at all?"""
    from app.live.sse import event_stream

    sid = factory.story(factory.user())
    with app.test_request_context():
        frames = iter(event_stream(sid, last_event_id="²").response)
        assert next(frames).startswith("retry:")
        assert '"type":"stream_open"' in next(frames)  # no replay: the id was not read
    frames.close()


def test_a_catastrophic_filter_pattern_is_skipped_not_stalling(app, client, factory):
    """Does a pattern that backtracks without end run out of its time and let the paragraph
    through, while the other rules still apply?"""
    admin = factory.headers(factory.user(role="admin"))
    for value in ("(a|aa)+$", "forbidden"):
        rule = {"language": "en", "pattern": value}
        assert client.post("/api/v1/admin/filters", json=rule, headers=admin).status_code == 201
    owner = factory.user()
    sid = factory.story(owner)
    turn = {"text": "a" * 40 + "!", "expected_position": 0}
    posted = client.post(f"/api/v1/stories/{sid}/turns", json=turn, headers=factory.headers(owner))
    assert posted.status_code == 202
    other = factory.story(owner)
    turn = {"text": "This is forbidden.", "expected_position": 0}
    refused = client.post(
        f"/api/v1/stories/{other}/turns", json=turn, headers=factory.headers(owner)
    )
    assert refused.status_code == 422 and "forbidden" in refused.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", "/api/v1/auth/tokens", {"username": "a\x00b", "password": "password123"}),
        ("post", "/api/v1/admin/filters", {"language": "en", "word": "a\x00b"}),
        ("post", "/api/v1/stories", {"title": "T", "language": "en", "opening": "o\x00"}),
        ("get", "/api/v1/admin/users?q=a%00b", None),
        ("get", "/api/v1/admin/audit?actor=a%00b", None),
    ],
)
def test_nul_characters_are_refused_at_the_door(app, client, factory, method, url, body):
    """Is a NUL in a JSON field a 422 naming it, and in a query string a 400, on both
    databases (PostgreSQL cannot store or even search for one), with nothing stored?"""
    admin = factory.headers(factory.user(role="admin"))
    before = counts(app)
    if body is None:
        error_of(client.get(url, headers=admin), 400, "nul_character")
    else:
        response = getattr(client, method)(url, json=body, headers=admin)
        assert "NUL" in error_of(response, 422, "invalid")["message"]
    assert counts(app) == before


def test_nul_in_a_browser_form_or_search_is_a_page_with_the_reason(app, client, factory):
    """Does a NUL in an admin search box or a form field give a 400 page saying why?"""
    admin = factory.user(role="admin")
    with client.session_transaction() as cookie:
        cookie["_user_id"], cookie["_fresh"] = session_user_id(app, admin), True
    for response in (
        client.get("/admin/stories?q=a%00b"),
        client.post("/admin/filters", data={"language": "en", "kind": "word", "value": "a\x00b"}),
    ):
        assert response.status_code == 400
        assert "NUL character" in response.get_data(as_text=True)
