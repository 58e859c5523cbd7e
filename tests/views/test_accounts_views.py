"""Register, log in, log out in the browser (Flask test client through the real forms)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from app.accounts.models import User
from app.extensions import db
from tests.conftest import build_app, close_app


def _users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def test_register_signs_in(app, client, browser):
    """Does registering create the account and show the writer as signed in?"""
    response = browser.register("alice")
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Signed in as" in page and "<strong>alice</strong>" in page
    assert _users(app) == 1


def test_register_bad_input_shows_message_and_stores_nothing(app, client, browser):
    """Do a bad name, a short password and mismatched passwords each show why, storing nothing?"""
    bad_name = browser.register("a!")
    assert bad_name.status_code == 422
    assert "Username must be 3-40 letters" in bad_name.get_data(as_text=True)
    short = browser.register("alice", password="short")
    assert short.status_code == 422
    assert "Password must be 8-200 characters" in short.get_data(as_text=True)
    mismatch = client.post(
        "/register", data={"username": "alice", "password": "password123", "confirm": "nope"}
    )
    assert mismatch.status_code == 422
    assert "The passwords differ." in mismatch.get_data(as_text=True)
    assert _users(app) == 0


def test_register_taken_name(app, client, browser, factory):
    """Is a taken username refused with a message on the form?"""
    factory.user("alice")
    response = browser.register("alice")
    assert response.status_code == 409
    assert "That username is taken." in response.get_data(as_text=True)
    assert _users(app) == 1


def test_login_and_logout(app, client, browser, factory):
    """Can a writer log in with the right password, and log out again with a POST?"""
    factory.user("alice")
    wrong = browser.login("alice", "wrong-password")
    assert wrong.status_code == 401
    assert "Wrong username or password." in wrong.get_data(as_text=True)
    assert browser.login("alice").status_code == 302
    assert "<strong>alice</strong>" in client.get("/").get_data(as_text=True)
    assert client.get("/logout").status_code == 405  # a link cannot sign anyone out
    assert client.post("/logout").status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Signed in as" not in page and "Log in" in page


def test_login_next_never_leaves_the_site(app, client, factory):
    """Does ?next= only redirect within the site (no open redirect)?"""
    factory.user("alice")
    data = {"username": "alice", "password": "password123"}
    evil = client.post("/login?next=//evil.example/x", data=data)
    assert evil.headers["Location"] == "/"
    client.post("/logout")
    ok = client.post("/login?next=/stories/new", data=data)
    assert ok.headers["Location"] == "/stories/new"


def test_suspended_writer_cannot_log_in(app, client, browser, factory):
    """Is a suspended account refused at the login form?"""
    user_id = factory.user("alice")
    with app.app_context():
        db.session.get(User, user_id).is_suspended = True
        db.session.commit()
    response = browser.login("alice")
    assert response.status_code == 401
    assert "suspended" in response.get_data(as_text=True)


def test_login_is_rate_limited(db_url, tiny_model_dir):
    """Do login POSTs beyond RATELIMIT_LOGIN get 429?"""
    app = build_app(
        db_url,
        tiny_model_dir,
        RELAY_START_RUNNER=False,
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="3 per minute",
    )
    try:
        client = app.test_client()
        data = {"username": "nobody", "password": "whatever1"}
        codes = [client.post("/login", data=data).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        assert client.get("/login").status_code == 200  # reading the form is not limited
    finally:
        close_app(app)


def test_forms_need_a_csrf_token(db_url, tiny_model_dir):
    """With CSRF on, is a POST without the token refused and one with it accepted?"""
    app = build_app(db_url, tiny_model_dir, RELAY_START_RUNNER=False, WTF_CSRF_ENABLED=True)
    try:
        client = app.test_client()
        data = {"username": "alice", "password": "password123", "confirm": "password123"}
        refused = client.post("/register", data=data)
        assert refused.status_code == 400
        page = client.get("/register").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        assert client.post("/register", data={**data, "csrf_token": token}).status_code == 302
        assert _users(app) == 1
    finally:
        close_app(app)


def _saved_cookie(client) -> str:
    return client.get_cookie("session").value


def test_logout_ends_the_session_on_the_server(app, client, browser, factory):
    """Does a session cookie saved before logging out stop working afterwards?"""
    factory.user("alice")
    browser.login("alice")
    saved = _saved_cookie(client)
    client.post("/logout")
    thief = app.test_client()
    thief.set_cookie("session", saved)
    page = thief.get("/").get_data(as_text=True)
    assert "Signed in as" not in page and "Log in" in page
    assert thief.get("/stories/new").status_code == 302  # sent to the login page


def test_logout_everywhere_ends_every_session_but_keeps_api_tokens(app, client, browser, factory):
    """Does "log out everywhere" end this and other browsers' sessions, leaving tokens alone?"""
    from app.accounts.service import issue_token

    uid = factory.user("alice")
    with app.app_context():
        token = issue_token(db.session.get(User, uid))
    other = app.test_client()
    Browser = type(browser)
    Browser(other).login("alice")
    browser.login("alice")
    assert "Signed in as" in other.get("/").get_data(as_text=True)
    assert client.get("/logout/everywhere").status_code == 405
    done = client.post("/logout/everywhere")
    assert done.status_code == 302
    assert "signed out everywhere (2 sessions ended)" in client.get("/").get_data(as_text=True)
    assert "Signed in as" not in other.get("/").get_data(as_text=True)
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["username"] == "alice"
    browser.login("alice")  # signing in again works
    assert "Signed in as" in client.get("/").get_data(as_text=True)


def test_registration_shows_every_mistake_at_once(app, client, factory):
    """A bad name, a short password and a mismatched repeat: all three on one page?"""
    bad = client.post("/register", data={"username": "a!", "password": "short", "confirm": "x"})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    for message in (
        "Username must be 3-40 letters",
        "Password must be 8-200 characters",
        "The passwords differ.",
    ):
        assert message in page
    factory.user("alice")
    form = {"username": "Alice", "password": "short", "confirm": "x"}
    taken = client.post("/register", data=form)
    page = taken.get_data(as_text=True)
    assert "That username is taken." in page and "Password must be 8-200" in page
    assert _users(app) == 1
