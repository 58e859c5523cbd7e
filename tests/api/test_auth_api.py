"""/api/v1/auth: register, tokens, revocation, CSRF for session callers, login rate limit."""

from __future__ import annotations

import hashlib
import os

from itsdangerous import URLSafeTimedSerializer

from tests.api.conftest import counts
from tests.conftest import _reset_schema, make_app, session_user_id


def test_register_then_issue_and_use_a_token(app, client):
    """Can a new writer register, get a token and be known by it?"""
    response = client.post(
        "/api/v1/auth/register", json={"username": "ada", "password": "pw123456"}
    )
    assert response.status_code == 201
    assert response.get_json() == {"id": 1, "username": "ada", "role": "writer"}
    issued = client.post("/api/v1/auth/tokens", json={"username": "ada", "password": "pw123456"})
    assert issued.status_code == 201
    token = issued.get_json()["token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["username"] == "ada"


def test_register_rejects_bad_and_taken_names(app, client):
    """Are a taken name a 409 and a bad name or password a 422, storing nothing?"""
    client.post("/api/v1/auth/register", json={"username": "ada", "password": "pw123456"})
    before = counts(app)
    taken = client.post("/api/v1/auth/register", json={"username": "ada", "password": "pw123456"})
    assert taken.status_code == 409
    assert taken.get_json()["error"]["code"] == "username_taken"
    for body, field in [
        ({"username": "a", "password": "pw123456"}, "username"),
        ({"username": "<script>", "password": "pw123456"}, "username"),
        ({"username": 7, "password": "pw123456"}, "username"),
        ({"username": "bob", "password": "short"}, "password"),
        ({"username": "bob", "password": ["pw123456"]}, "password"),
        ({"username": "bob"}, "password"),
    ]:
        response = client.post("/api/v1/auth/register", json=body)
        assert response.status_code == 422
        assert response.get_json()["error"]["field"] == field
    assert counts(app) == before


def test_wrong_credentials_get_no_token(app, client, factory):
    """Do a wrong password, an unknown user and a suspended user get 401 and no token?"""
    factory.user("ada")
    suspended = factory.user("sus")
    with app.app_context():
        from app.accounts.models import User
        from app.accounts.service import suspend_user
        from app.extensions import db

        suspend_user(db.session.get(User, suspended), True)
    before = counts(app)
    for body, code in [
        ({"username": "ada", "password": "wrong-password"}, "bad_credentials"),
        ({"username": "nobody", "password": "password123"}, "bad_credentials"),
        ({"username": "sus", "password": "password123"}, "suspended"),
    ]:
        response = client.post("/api/v1/auth/tokens", json=body)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == code
    response = client.post("/api/v1/auth/tokens", json={"username": "ada", "password": None})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "password"
    assert counts(app) == before


def test_revoking_the_current_token(app, client, factory):
    """Does DELETE /auth/tokens/current end that token and only that one?"""
    ada = factory.user("ada")
    first, second = factory.headers(ada), factory.headers(ada)
    assert client.delete("/api/v1/auth/tokens/current", headers=first).status_code == 204
    gone = client.get("/api/v1/auth/me", headers=first)
    assert gone.status_code == 401 and gone.get_json()["error"]["code"] == "bad_token"
    again = client.delete("/api/v1/auth/tokens/current", headers=first)
    assert again.status_code == 401
    assert client.get("/api/v1/auth/me", headers=second).status_code == 200
    assert client.delete("/api/v1/auth/tokens/current").status_code == 401


def test_suspension_ends_tokens(app, client, factory):
    """Does a suspended writer's token stop working at once?"""
    ada = factory.user("ada")
    headers = factory.headers(ada)
    with app.app_context():
        from app.accounts.models import User
        from app.accounts.service import suspend_user
        from app.extensions import db

        suspend_user(db.session.get(User, ada), True)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def _session_login(app, client, user_id: int) -> str:
    """Sign the test client in with a session cookie; return a valid X-CSRFToken value."""
    raw = hashlib.sha1(os.urandom(64)).hexdigest()
    with client.session_transaction() as session:
        session["_user_id"] = session_user_id(app, user_id)
        session["_fresh"] = True
        session["csrf_token"] = raw
    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token").dumps(raw)


def test_session_callers_need_a_csrf_token(db_url, tiny_model_dir):
    """With CSRF on, must a session-cookie caller send X-CSRFToken, and a bearer caller not?"""
    app = make_app(db_url, tiny_model_dir, WTF_CSRF_ENABLED=True, RELAY_START_RUNNER=False)
    _reset_schema(app)
    from tests.conftest import Factory

    factory = Factory(app)
    ada = factory.user("ada")
    story = {"title": "T", "language": "en", "opening": "Once."}
    bearer = app.test_client()
    created = bearer.post("/api/v1/stories", json=story, headers=factory.headers(ada))
    assert created.status_code == 201
    registered = bearer.post(
        "/api/v1/auth/register", json={"username": "bob", "password": "pw123456"}
    )
    assert registered.status_code == 201
    browser = app.test_client()
    csrf_token = _session_login(app, browser, ada)
    assert browser.get("/api/v1/auth/me").get_json()["username"] == "ada"
    before = counts(app)
    refused = browser.post("/api/v1/stories", json=story)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    assert counts(app) == before
    allowed = browser.post("/api/v1/stories", json=story, headers={"X-CSRFToken": csrf_token})
    assert allowed.status_code == 201
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()


def test_login_and_register_are_rate_limited(db_url, tiny_model_dir):
    """After RATELIMIT_LOGIN attempts, is the next a 429 in the error shape with Retry-After?"""
    app = make_app(
        db_url,
        tiny_model_dir,
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="3 per minute",
        RELAY_START_RUNNER=False,
    )
    _reset_schema(app)
    client = app.test_client()
    body = {"username": "ada", "password": "wrong-password"}
    for _ in range(3):
        assert client.post("/api/v1/auth/tokens", json=body).status_code == 401
    limited = client.post("/api/v1/auth/tokens", json=body)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    for i in range(3):
        fine = {"username": f"user{i}", "password": "pw123456"}
        assert client.post("/api/v1/auth/register", json=fine).status_code == 201
    refused = client.post("/api/v1/auth/register", json={"username": "x9x", "password": "pw123456"})
    assert refused.status_code == 429
    assert counts(app)["users"] == 3
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
