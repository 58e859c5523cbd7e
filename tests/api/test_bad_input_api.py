"""Bad input through the API: the documented error, in one JSON shape, and nothing stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.api.conftest import answer, counts


def error_of(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.data
    assert response.is_json
    error = response.get_json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture
def story(app, factory):
    """(story id, writer headers) for a story with one answered turn."""
    owner, writer = factory.user(), factory.user()
    sid = factory.story(owner)
    with app.test_client() as client:
        job = client.post(
            f"/api/v1/stories/{sid}/turns",
            json={"text": "First.", "expected_position": 0},
            headers=factory.headers(owner),
        ).get_json()["job"]
    answer(app, job["id"])
    return sid, factory.headers(writer)


BAD_TURNS = [
    ({"text": "", "expected_position": 2}, 422, "text"),
    ({"text": "   \n\t ", "expected_position": 2}, 422, "text"),
    ({"text": 123, "expected_position": 2}, 422, "text"),
    ({"text": ["a"], "expected_position": 2}, 422, "text"),
    ({"text": None, "expected_position": 2}, 422, "text"),
    ({"expected_position": 2}, 422, "text"),
    ({"text": "Fine.", "expected_position": "two"}, 422, "expected_position"),
    ({"text": "Fine.", "expected_position": True}, 422, "expected_position"),
    ({"text": "Fine.", "expected_position": -1}, 422, "expected_position"),
    ({"text": "Fine.", "expected_position": 2.5}, 422, "expected_position"),
    ({"text": "Fine.", "expected_position": None}, 422, "expected_position"),
    ({"text": "Fine."}, 422, "expected_position"),
    ({"text": "Fine.", "expected_position": 2, "author": "x"}, 422, "author"),
    ({"text": "x" * 2001, "expected_position": 2}, 422, "text"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_TURNS)
def test_bad_turn_fields_store_nothing(app, client, story, body, status, field):
    """Is an invalid turn field a 422 naming the field, with nothing stored?"""
    sid, headers = story
    before = counts(app)
    error = error_of(client.post(f"/api/v1/stories/{sid}/turns", json=body, headers=headers), 422)
    assert error["code"] == "invalid" and error["field"] == field
    assert counts(app) == before


BAD_BODIES = [
    ("not json at all", "application/json", "malformed_json"),
    ('{"text": "unterminated', "application/json", "malformed_json"),
    ("", "application/json", "malformed_json"),
    ('["text", 2]', "application/json", "not_an_object"),
    ('"just a string"', "application/json", "not_an_object"),
    ("42", "application/json", "not_an_object"),
    ('{"text": "Fine.", "expected_position": 2}', "text/plain", "not_json"),
    ("text=Fine.&expected_position=2", "application/x-www-form-urlencoded", "not_json"),
]


@pytest.mark.parametrize(("data", "content_type", "code"), BAD_BODIES)
def test_malformed_bodies_are_400(app, client, story, data, content_type, code):
    """Is a body that is not a JSON object a 400 with its reason, nothing stored?"""
    sid, headers = story
    before = counts(app)
    response = client.post(
        f"/api/v1/stories/{sid}/turns", data=data, content_type=content_type, headers=headers
    )
    error_of(response, 400, code)
    assert counts(app) == before


@pytest.mark.parametrize(
    "path", ["/api/v1/stories/{sid}/turns", "/api/v1/stories", "/api/v1/auth/register"]
)
def test_oversized_body_is_413(app, client, story, path):
    """Is a body over MAX_CONTENT_LENGTH a 413 in the error shape, nothing stored?"""
    sid, headers = story
    huge = json.dumps({"text": "x" * app.config["MAX_CONTENT_LENGTH"], "expected_position": 2})
    before = counts(app)
    response = client.post(
        path.format(sid=sid), data=huge, content_type="application/json", headers=headers
    )
    error_of(response, 413, "too_large")
    assert counts(app) == before


def test_no_token_and_bad_token_are_401(app, client, story):
    """Are a missing, malformed or revoked token 401s, nothing stored?"""
    sid, _ = story
    body = {"text": "Fine.", "expected_position": 2}
    url = f"/api/v1/stories/{sid}/turns"
    before = counts(app)
    error_of(client.post(url, json=body), 401, "unauthorized")
    error_of(
        client.post(url, json=body, headers={"Authorization": "Bearer nope"}), 401, "bad_token"
    )
    error_of(client.post(url, json=body, headers={"Authorization": "Basic eDp5"}), 401)
    error_of(client.post("/api/v1/stories", json={"title": "T"}), 401)
    error_of(client.delete(f"/api/v1/stories/{sid}"), 401)
    error_of(client.post(f"/api/v1/stories/{sid}/turns/2/regenerate"), 401)
    assert counts(app) == before


def test_unknown_story_is_404(app, client, story):
    """Does every story route answer 404 in the error shape for an unknown story?"""
    _, headers = story
    before = counts(app)
    for method, path in [
        ("get", "/api/v1/stories/999"),
        ("patch", "/api/v1/stories/999"),
        ("delete", "/api/v1/stories/999"),
        ("get", "/api/v1/stories/999/turns"),
        ("post", "/api/v1/stories/999/turns"),
        ("post", "/api/v1/stories/999/turns/1/regenerate"),
        ("post", "/api/v1/stories/999/participants"),
        ("get", "/api/v1/stories/999/export"),
        ("get", "/api/v1/stories/999/events"),
    ]:
        body = {"title": "New"} if method == "patch" else {"text": "Hi.", "expected_position": 0}
        kwargs = {"json": body} if method != "get" else {}
        response = getattr(client, method)(path, headers=headers, **kwargs)
        error_of(response, 404, "not_found")
    assert counts(app) == before


def test_unknown_routes_and_methods_keep_the_shape(client):
    """Are unknown API URLs 404 and wrong methods 405, both in the error shape?"""
    error_of(client.get("/api/v1/nowhere"), 404, "not_found")
    error_of(client.get("/api/v1/stories/not-a-number"), 404, "not_found")
    error_of(client.put("/api/v1/stories"), 405, "method_not_allowed")
    error_of(client.delete("/api/v1/health"), 405, "method_not_allowed")


def test_bad_story_fields_store_nothing(app, client, factory):
    """Is every invalid story field a 422 naming it, with nothing stored?"""
    headers = factory.headers(factory.user())
    good = {"title": "T", "language": "en", "opening": "Once."}
    before = counts(app)
    for change, field in [
        ({"title": ""}, "title"),
        ({"title": "x" * 121}, "title"),
        ({"title": 5}, "title"),
        ({"language": "fr"}, "language"),
        ({"opening": None}, "opening"),
        ({"policy": "chaos"}, "policy"),
        ({"preset": "insane"}, "preset"),
        ({"model": "gpt-17"}, "model"),
        ({"max_new_tokens": 100000}, "max_new_tokens"),
        ({"max_new_tokens": "many"}, "max_new_tokens"),
        ({"owner_id": 1}, "owner_id"),
    ]:
        response = client.post("/api/v1/stories", json={**good, **change}, headers=headers)
        assert error_of(response, 422, "invalid")["field"] == field
    assert counts(app) == before


def test_bad_query_numbers_are_422(client, factory):
    """Are a bad page, per_page or since 422s?"""
    sid = factory.story(factory.user())
    for url in [
        "/api/v1/stories?page=0",
        "/api/v1/stories?per_page=0",
        "/api/v1/stories?per_page=101",
        "/api/v1/stories?page=abc",
        f"/api/v1/stories/{sid}/turns?since=-1",
        f"/api/v1/stories/{sid}/turns?since=x",
        f"/api/v1/stories/{sid}/export?format=pdf",
    ]:
        error_of(client.get(url), 422, "invalid")


def test_unexpected_error_is_a_json_500(app, client, factory):
    """Does a failure we did not foresee (a missing table) come out as a JSON 500?"""
    from app.extensions import db

    with app.app_context():
        cascade = "" if db.engine.dialect.name == "sqlite" else " CASCADE"  # candidates' keys
        db.session.execute(text(f"DROP TABLE generation_jobs{cascade}"))
        db.session.commit()
    error_of(client.get("/api/v1/jobs/1"), 500, "internal_error")
