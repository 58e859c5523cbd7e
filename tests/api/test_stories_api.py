"""/api/v1/stories and the read-only endpoints: CRUD, paging, permissions, export, events,
models, health, the Swagger spec, and the per-user limit on new turns."""

from __future__ import annotations

from tests.api.conftest import answer, counts
from tests.conftest import _reset_schema, make_app

STORY = {"title": "The Lighthouse", "language": "en", "opening": "The lamp went out."}


def test_create_story_returns_it(client, factory):
    """Does POST /stories create a story owned by the caller, with its defaults?"""
    ada = factory.user("ada")
    response = client.post(
        "/api/v1/stories",
        json={**STORY, "policy": "round_robin", "preset": "careful", "model": "tiny"},
        headers=factory.headers(ada),
    )
    assert response.status_code == 201
    story = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/stories/{story['id']}")
    assert story["owner"] == "ada" and story["participants"] == ["ada"]
    assert (story["policy"], story["preset"], story["model"]) == ("round_robin", "careful", "tiny")
    assert story["turn_count"] == 0 and story["last_position"] == 0 and story["status"] == "open"
    default = client.post("/api/v1/stories", json=STORY, headers=factory.headers(ada)).get_json()
    assert (default["policy"], default["preset"], default["model"]) == ("open", "balanced", "en")


def test_a_story_cannot_start_with_a_model_of_another_language(app, client, factory):
    """Is an English story with the Korean model (or the reverse) a 409 model_language naming
    the field (the registry's configuration decides it), while a model of no declared
    language ("tiny") fits either?"""
    ada = factory.user("ada")
    app.config["RELAY_MODELS"] = {**app.config["RELAY_MODELS"], "ko-poems": "x", "en_big": "y"}
    for language, model in (("en", "ko"), ("ko", "en"), ("en", "ko-poems"), ("ko", "en_big")):
        response = client.post(
            "/api/v1/stories",
            json={**STORY, "language": language, "model": model},
            headers=factory.headers(ada),
        )
        assert response.status_code == 409, (language, model)
        error = response.get_json()["error"]
        assert error["field"] == "model" and error["code"] == "model_language"
        assert "writes" in error["message"]
    for language, model in (("ko", "ko"), ("ko", "tiny"), ("en", "en_big")):
        response = client.post(
            "/api/v1/stories",
            json={**STORY, "language": language, "model": model},
            headers=factory.headers(ada),
        )
        assert response.status_code == 201, (language, model, response.get_json())


def test_browser_and_api_count_the_same_turns(app, client, factory):
    """With one visible, one hidden and one held turn, do the story list page, the API's list
    and the API's story all say 1 (the browser counted held turns out, the API in)?"""
    import re

    from app.extensions import db
    from app.stories.models import Turn

    ada = factory.user("ada")
    sid = factory.story(ada, title="Counted")
    with app.app_context():
        for position, (hidden, held) in enumerate([(False, False), (True, False), (False, True)]):
            db.session.add(
                Turn(story_id=sid, position=position + 1, kind="human", text=f"T{position}",
                     author_id=ada, hidden=hidden, held=held)
            )  # fmt: skip
        db.session.commit()
    listed = client.get("/api/v1/stories").get_json()["stories"][0]["turn_count"]
    single = client.get(f"/api/v1/stories/{sid}").get_json()["turn_count"]
    page = client.get("/").get_data(as_text=True)
    shown = re.search(r'<td class="num">(\d+)</td>', page).group(1)
    assert (listed, single, int(shown)) == (1, 1, 1)


def test_story_list_is_paginated_with_visible_turn_counts(app, client, factory):
    """Does GET /stories page through stories, newest activity first, counting visible turns?"""
    ada, bob = factory.user(), factory.user()
    ids = [factory.story(ada, title=f"Story {i}") for i in range(3)]
    headers = factory.headers(ada)
    job = client.post(
        f"/api/v1/stories/{ids[0]}/turns",
        json={"text": "Hello.", "expected_position": 0},
        headers=headers,
    ).get_json()["job"]
    answer(app, job["id"])
    client.post(f"/api/v1/stories/{ids[0]}/turns/2/regenerate", headers=headers)  # hides turn 2
    first = client.get("/api/v1/stories?per_page=2").get_json()
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 2, 3, 2)
    assert first["stories"][0]["id"] == ids[0]  # most recently active
    assert first["stories"][0]["turn_count"] == 1 and first["stories"][0]["last_position"] == 2
    assert first["stories"][0]["updated_at"].endswith("Z")
    second = client.get("/api/v1/stories?per_page=2&page=2").get_json()
    assert len(second["stories"]) == 1
    assert client.get("/api/v1/stories?page=9").get_json()["stories"] == []
    assert bob  # a second writer exists but owns nothing


def test_only_owner_or_moderators_change_a_story(app, client, factory):
    """Can the owner, a moderator and an admin change a story, and another writer not?"""
    ada, bob = factory.user("ada"), factory.user("bob")
    mod, admin = factory.user(role="moderator"), factory.user(role="admin")
    sid = factory.story(ada)
    url = f"/api/v1/stories/{sid}"
    before = counts(app)
    denied = client.patch(url, json={"title": "Mine now"}, headers=factory.headers(bob))
    assert denied.status_code == 403 and denied.get_json()["error"]["code"] == "forbidden"
    assert client.delete(url, headers=factory.headers(bob)).status_code == 403
    assert client.get(url).get_json()["title"] == "A Test Story"
    for user, title in ((ada, "Owner's"), (mod, "Moderator's"), (admin, "Admin's")):
        response = client.patch(url, json={"title": title}, headers=factory.headers(user))
        assert response.status_code == 200 and response.get_json()["title"] == title
    assert counts(app)["stories"] == before["stories"]
    patched = client.patch(
        url, json={"status": "finished", "preset": "wild"}, headers=factory.headers(ada)
    ).get_json()
    assert (patched["status"], patched["preset"]) == ("finished", "wild")
    for body, field in (({"model": "tiny"}, "model"), ({"status": "gone"}, "status")):
        response = client.patch(url, json=body, headers=factory.headers(ada))
        assert response.status_code == 422 and response.get_json()["error"]["field"] == field
    assert client.delete(url, headers=factory.headers(admin)).status_code == 204
    assert client.get(url).status_code == 404


def test_deleting_a_story_removes_its_turns_and_jobs(app, client, factory):
    """Does DELETE take the story's turns and jobs with it?"""
    ada = factory.user()
    sid = factory.story(ada)
    headers = factory.headers(ada)
    client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "Hi.", "expected_position": 0},
        headers=headers,
    )
    assert client.delete(f"/api/v1/stories/{sid}", headers=headers).status_code == 204
    left = counts(app)
    assert (left["stories"], left["turns"], left["generation_jobs"], left["participants"]) == (
        0,
        0,
        0,
        0,
    )


def test_export_as_text_and_markdown(app, client, factory):
    """Does export give the credited text as a download, without hidden turns?"""
    ada = factory.user("ada")
    sid = factory.story(ada, title="Sea Letters")
    headers = factory.headers(ada)
    job = client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "Ada wrote to the sea.", "expected_position": 0},
        headers=headers,
    ).get_json()["job"]
    answer(app, job["id"], "The sea wrote back.")
    client.post(f"/api/v1/stories/{sid}/turns/2/regenerate", headers=headers)
    text = client.get(f"/api/v1/stories/{sid}/export")
    assert text.status_code == 200 and text.mimetype == "text/plain"
    assert "attachment" in text.headers["Content-Disposition"]
    assert ".txt" in text.headers["Content-Disposition"]
    body = text.get_data(as_text=True)
    assert "Ada wrote to the sea." in body and "ada" in body
    assert "The sea wrote back." not in body  # hidden by the regeneration
    markdown = client.get(f"/api/v1/stories/{sid}/export?format=md")
    assert markdown.mimetype == "text/markdown" and "Sea Letters" in markdown.get_data(True)


def test_export_filename_of_a_korean_title(client, factory):
    """Does a Korean title still give a valid download header?"""
    sid = factory.story(factory.user(), title="등대지기의 편지", language="ko")
    response = client.get(f"/api/v1/stories/{sid}/export?format=md")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")


def test_events_stream_opens(app, client, factory):
    """Does GET /events answer with an event stream that opens with the story's position?"""
    sid = factory.story(factory.user())
    response = client.get(f"/api/v1/stories/{sid}/events", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    head = b""
    for chunk in response.response:
        head += chunk if isinstance(chunk, bytes) else chunk.encode()
        if b"stream_open" in head:
            break
    response.close()
    assert b'"last_position":0' in head


def test_models_health_and_ready(app, client):
    """Do /models list the configured keys, /health answer, and /ready check DB and models?"""
    models = {m["key"]: m for m in client.get("/api/v1/models").get_json()["models"]}
    assert set(models) == {"en", "ko", "tiny"}
    assert models["en"]["language"] == "en" and models["tiny"]["language"] is None
    assert all(m["loadable"] for m in models.values())
    assert client.get("/api/v1/health").get_json() == {"status": "ok"}
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    app.config["RELAY_MODELS"] = {**app.config["RELAY_MODELS"], "gone": "/nonexistent/model"}
    from app.generation.registry import ModelRegistry

    app.extensions["relay.registry"] = ModelRegistry.from_config(app.config)
    not_ready = client.get("/api/v1/ready")
    assert not_ready.status_code == 503
    error = not_ready.get_json()["error"]
    assert error["code"] == "not_ready" and "model:gone" in error["checks"]
    assert not_ready.headers["Retry-After"]


def test_swagger_spec_and_docs(client):
    """Are the Swagger spec and UI served, documenting every endpoint and the error shape?"""
    spec = client.get("/api/v1/swagger.json")
    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    for path in (
        "/auth/register",
        "/auth/tokens",
        "/auth/tokens/current",
        "/stories",
        "/stories/{story_id}",
        "/stories/{story_id}/participants",
        "/stories/{story_id}/turns",
        "/stories/{story_id}/turns/{position}/regenerate",
        "/stories/{story_id}/events",
        "/stories/{story_id}/export",
        "/jobs/{job_id}",
        "/models",
        "/health",
        "/ready",
    ):
        assert path in paths, path
    post_turn = paths["/stories/{story_id}/turns"]["post"]
    assert {"202", "400", "401", "409", "413", "422", "429", "503"} <= set(post_turn["responses"])
    assert "Error" in spec.get_json()["definitions"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()


def test_turns_are_rate_limited_per_user(db_url, tiny_model_dir):
    """After RATELIMIT_TURNS new turns, is a writer's next one a 429 while another's is fine?"""
    from tests.conftest import Factory

    app = make_app(
        db_url,
        tiny_model_dir,
        RATELIMIT_ENABLED=True,
        RATELIMIT_TURNS="2 per minute",
        RELAY_START_RUNNER=False,
    )
    _reset_schema(app)
    factory = Factory(app)
    ada, bob = factory.user("ada"), factory.user("bob")
    ada_headers, bob_headers = factory.headers(ada), factory.headers(bob)
    sid = factory.story(ada)
    client = app.test_client()
    url = f"/api/v1/stories/{sid}/turns"
    for _ in range(2):  # two tries count, whatever their outcome
        client.post(url, json={"text": "x", "expected_position": 5}, headers=ada_headers)
    limited = client.post(url, json={"text": "x", "expected_position": 0}, headers=ada_headers)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    assert counts(app)["turns"] == 0
    allowed = client.post(url, json={"text": "x", "expected_position": 0}, headers=bob_headers)
    assert allowed.status_code == 202
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
