"""Memory, lore and the context viewer over the API (app/api/lore.py). Both databases."""

from __future__ import annotations

import json

from tests.api.conftest import answer, counts


def _story(client, factory, **fields):
    owner = factory.user()
    sid = factory.story(owner, **fields)
    return sid, owner, factory.headers(owner)


def test_owner_sets_memory_and_readers_read_it(client, factory):
    """Can the owner set the memory and note, and does an anonymous reader read them?"""
    sid, _, owner = _story(client, factory)
    body = {"memory": "Mira keeps the light.", "authors_note": "Grim.", "note_depth": 2}
    saved = client.put(f"/api/v1/stories/{sid}/memory", json=body, headers=owner)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["can_edit"] is True
    read = client.get(f"/api/v1/stories/{sid}/memory").get_json()
    assert {k: read[k] for k in body} == body
    assert read["memory_access"] == "owner" and read["can_edit"] is False


def test_lore_crud(client, factory):
    """Can lore entries be added, listed, changed and deleted?"""
    sid, _, owner = _story(client, factory)
    made = client.post(
        f"/api/v1/stories/{sid}/lore",
        json={"keys": ["Mira", " the keeper ", "mira"], "text": "Mira keeps the light."},
        headers=owner,
    )
    assert made.status_code == 201, made.get_json()
    entry = made.get_json()
    assert entry["keys"] == ["Mira", "the keeper"]
    url = f"/api/v1/stories/{sid}/lore/{entry['id']}"
    changed = client.patch(url, json={"text": "Mira is old."}, headers=owner).get_json()
    assert changed["text"] == "Mira is old." and changed["keys"] == ["Mira", "the keeper"]
    listed = client.get(f"/api/v1/stories/{sid}/lore").get_json()
    assert [e["id"] for e in listed["entries"]] == [entry["id"]] and listed["limit"] == 50
    assert client.delete(url, headers=owner).status_code == 204
    assert client.get(f"/api/v1/stories/{sid}/lore").get_json()["entries"] == []
    assert client.delete(url, headers=owner).status_code == 404


def test_participant_refused_unless_the_owner_allows(client, factory):
    """Is a participant's change a 403 until memory_access is "participants"?"""
    sid, _, owner = _story(client, factory)
    writer = factory.headers(factory.user())
    assert client.post(f"/api/v1/stories/{sid}/participants", headers=writer).status_code < 300
    put = {"memory": "Ours."}
    assert client.put(f"/api/v1/stories/{sid}/memory", json=put, headers=writer).status_code == 403
    opened = {"memory_access": "participants"}
    client.put(f"/api/v1/stories/{sid}/memory", json=opened, headers=owner)
    ok = client.put(f"/api/v1/stories/{sid}/memory", json=put, headers=writer)
    assert ok.status_code == 200 and ok.get_json()["can_change_access"] is False
    back = client.put(
        f"/api/v1/stories/{sid}/memory", json={"memory_access": "owner"}, headers=writer
    )
    assert back.status_code == 403


def test_outsider_of_a_private_story_gets_404(client, factory):
    """Does someone who may not read a private story get 404 for all of it?"""
    sid, _, _ = _story(client, factory, visibility="private")
    outsider = factory.headers(factory.user())
    base = f"/api/v1/stories/{sid}"
    assert client.get(f"{base}/memory", headers=outsider).status_code == 404
    assert client.get(f"{base}/lore", headers=outsider).status_code == 404
    entry = {"keys": ["x"], "text": "y"}
    assert client.post(f"{base}/lore", json=entry, headers=outsider).status_code == 404
    assert client.get(f"{base}/turns/1/context", headers=outsider).status_code == 404


def test_bad_input_is_422_naming_the_field(app, client, factory):
    """Is each bad value a 422 naming its field, with nothing stored?"""
    sid, _, owner = _story(client, factory)
    before = counts(app)
    bad = [
        ("put", "/memory", {"memory": "m" * 2001}, "memory"),
        ("put", "/memory", {"authors_note": "n" * 501}, "authors_note"),
        ("put", "/memory", {"note_depth": -1}, "note_depth"),
        ("put", "/memory", {"memory_access": "everyone"}, "memory_access"),
        ("put", "/memory", {"colour": "red"}, "colour"),
        ("post", "/lore", {"keys": [], "text": "t"}, "keys"),
        ("post", "/lore", {"keys": ["k"] * 11, "text": "t"}, "keys"),
        ("post", "/lore", {"keys": ["a,b"], "text": "t"}, "keys"),
        ("post", "/lore", {"keys": ["k" * 30], "text": "t"}, "keys"),
        ("post", "/lore", {"keys": ["lamp"], "text": "t" * 1001}, "text"),
        ("post", "/lore", {"keys": ["lamp"]}, "text"),
    ]
    for method, path, data, field in bad:
        response = getattr(client, method)(f"/api/v1/stories/{sid}{path}", json=data, headers=owner)
        assert response.status_code == 422, (path, data, response.get_json())
        assert response.get_json()["error"]["field"] == field, (path, data)
    assert counts(app) == before
    assert client.get(f"/api/v1/stories/{sid}/memory").get_json()["memory"] == ""


def test_context_of_an_ai_turn_and_404_for_a_human_one(app, client, factory):
    """Does an AI turn's context come back, and a human turn's (or a missing one's) 404?"""
    from app.extensions import db
    from app.stories.models import GenerationJob

    sid, _, owner = _story(client, factory)
    posted = client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "The lamp went out.", "expected_position": 0},
        headers=owner,
    ).get_json()
    job_id = posted["job"]["id"]
    record = {
        "prompt": "It was a dark night.\n\nThe lamp went out.\n\n",
        "sections": [
            {"kind": "opening", "start": 0, "end": 20},
            {"kind": "turn", "start": 22, "end": 40, "position": 1},
        ],
        "model_key": "en",
        "preset": "balanced",
        "params": {"temperature": 0.8},
        "seed": 42,
    }
    with app.app_context():
        db.session.get(GenerationJob, job_id).context = json.dumps(record)
        db.session.commit()
    position = answer(app, job_id)
    seen = client.get(f"/api/v1/stories/{sid}/turns/{position}/context")
    assert seen.status_code == 200, seen.get_json()
    body = seen.get_json()
    assert body["prompt"] == record["prompt"] and body["seed"] == 42
    assert [p["kind"] for p in body["parts"]] == ["opening", "turn"]
    assert client.get(f"/api/v1/stories/{sid}/turns/1/context").status_code == 404
    assert client.get(f"/api/v1/stories/{sid}/turns/9/context").status_code == 404
