"""Edit, withdraw, undo and chapters over /api/v1, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.api.conftest import answer, counts, first_paragraph


def edit(client, sid, position, headers, text="Edited.", **extra):
    return client.patch(
        f"/api/v1/stories/{sid}/turns/{position}", json={"text": text, **extra}, headers=headers
    )


def test_edit_while_queued_is_202_with_the_new_turn_and_job(app, client, factory):
    """Does PATCH while the job is queued hide the old paragraph, return the new turn and a
    new queued job, and fail the old job as withdrawn?"""
    sid, owner, old_job = first_paragraph(client, factory, "The lamp went out.")
    response = edit(
        client, sid, 1, factory.headers(owner), "The lamp flickered.", expected_position=1
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["turn"]["position"] == 2 and body["turn"]["number"] == 1
    assert body["turn"]["text"] == "The lamp flickered." and body["turn"]["edited_at"]
    assert body["job"]["status"] == "queued" and body["job"]["reply_to_id"] == body["turn"]["id"]
    assert response.headers["Location"].endswith(f"/api/v1/jobs/{body['job']['id']}")
    gone = client.get(f"/api/v1/jobs/{old_job['id']}").get_json()
    assert (gone["status"], gone["finish_reason"]) == ("failed", "withdrawn")
    turns = client.get(f"/api/v1/stories/{sid}/turns").get_json()["turns"]
    assert [t["text"] for t in turns] == ["The lamp flickered."]
    assert answer(app, body["job"]["id"]) == 3


def test_edit_after_the_answer_is_409(app, client, factory):
    """Once the model's answer is in, is PATCH a 409 answer_final that changes nothing?"""
    sid, owner, job = first_paragraph(client, factory)
    answer(app, job["id"])
    headers = factory.headers(owner)
    before = counts(app)
    response = edit(client, sid, 1, headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "answer_final"
    assert client.delete(f"/api/v1/stories/{sid}/turns/1", headers=headers).status_code == 409
    assert counts(app) == before


def test_someone_elses_paragraph_is_403(client, factory):
    """May another writer edit or withdraw my paragraph? (403)"""
    sid, _, _ = first_paragraph(client, factory)
    other = factory.headers(factory.user())
    assert edit(client, sid, 1, other).status_code == 403
    assert client.delete(f"/api/v1/stories/{sid}/turns/1", headers=other).status_code == 403
    assert edit(client, sid, 1, {}).status_code == 401


def test_bad_input_is_422(app, client, factory):
    """Are a missing or blank text, an unknown field and a bad expected_position 422s?"""
    sid, owner, _ = first_paragraph(client, factory)
    headers = factory.headers(owner)
    before = counts(app)
    for data in ({}, {"text": "   "}, {"text": 5}, {"text": "Ok.", "expected_position": -1},
                 {"text": "Ok.", "extra": 1}):  # fmt: skip
        response = client.patch(f"/api/v1/stories/{sid}/turns/1", json=data, headers=headers)
        assert response.status_code == 422, data
    assert client.patch(
        f"/api/v1/stories/{sid}/turns/1", data="x", headers=headers
    ).status_code in (400, 422)
    assert counts(app) == before
    assert edit(client, sid, 9, headers).status_code == 404
    assert edit(client, 99999, 1, headers).status_code == 404


def test_withdraw_is_200_and_hides_the_paragraph(client, factory):
    """Does DELETE withdraw the paragraph (hidden, kept) and its job?"""
    sid, owner, job = first_paragraph(client, factory)
    response = client.delete(f"/api/v1/stories/{sid}/turns/1", headers=factory.headers(owner))
    assert response.status_code == 200
    assert response.get_json()["turn"]["hidden"] is True
    assert client.get(f"/api/v1/jobs/{job['id']}").get_json()["status"] == "failed"
    assert client.get(f"/api/v1/stories/{sid}/turns").get_json()["turns"] == []


def test_owner_undoes_the_last_pair(app, client, factory):
    """Does POST undo hide the last paragraph and its answer, for the owner only?"""
    owner, writer = factory.user(), factory.user()
    sid = factory.story(owner)
    job = client.post(
        f"/api/v1/stories/{sid}/turns",
        json={"text": "Mine.", "expected_position": 0},
        headers=factory.headers(writer),
    ).get_json()["job"]
    answer(app, job["id"])
    assert (
        client.post(f"/api/v1/stories/{sid}/undo", headers=factory.headers(writer)).status_code
        == 403
    )
    response = client.post(f"/api/v1/stories/{sid}/undo", headers=factory.headers(owner))
    assert response.status_code == 200
    assert [(t["position"], t["hidden"]) for t in response.get_json()["turns"]] == [
        (1, True),
        (2, True),
    ]
    again = client.post(f"/api/v1/stories/{sid}/undo", headers=factory.headers(owner))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "nothing_to_undo"


def test_chapters_over_the_api(app, client, factory):
    """Does PUT mark a chapter (owner only, a title required) and DELETE clear it?"""
    sid, owner, job = first_paragraph(client, factory)
    url = f"/api/v1/stories/{sid}/turns/1/chapter"
    headers = factory.headers(owner)
    response = client.put(url, json={"title": "장 하나"}, headers=headers)
    assert response.status_code == 200 and response.get_json()["turn"]["chapter_title"] == "장 하나"
    assert client.put(url, json={"title": ""}, headers=headers).status_code == 422
    assert client.put(url, json={}, headers=headers).status_code == 422
    other = factory.headers(factory.user())
    assert client.put(url, json={"title": "Mine"}, headers=other).status_code == 403
    assert client.delete(url, headers=headers).get_json()["turn"]["chapter_title"] is None
