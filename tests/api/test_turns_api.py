"""The relay rules through /api/v1/stories/<id>/turns, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.api.conftest import answer, counts, fail


def post_turn(client, story_id, headers, expected, text="A paragraph."):
    return client.post(
        f"/api/v1/stories/{story_id}/turns",
        json={"text": text, "expected_position": expected},
        headers=headers,
    )


def get_turns(client, story_id, headers=None, since=0):
    return client.get(f"/api/v1/stories/{story_id}/turns?since={since}", headers=headers or {})


def test_turn_is_accepted_with_its_job(client, factory):
    """Does a new turn come back 202 with the human turn and its queued job?"""
    alice = factory.user()
    sid = factory.story(alice)
    response = post_turn(client, sid, factory.headers(alice), 0, "  The lamp went out.  ")
    assert response.status_code == 202
    body = response.get_json()
    assert body["turn"]["position"] == 1 and body["turn"]["kind"] == "human"
    assert body["turn"]["text"] == "The lamp went out."
    assert body["turn"]["author"] == "writer1"
    assert body["job"]["status"] == "queued" and body["job"]["reply_to_id"] == body["turn"]["id"]
    assert response.headers["Location"].endswith(f"/api/v1/jobs/{body['job']['id']}")
    job = client.get(f"/api/v1/jobs/{body['job']['id']}")
    assert job.status_code == 200 and job.get_json()["status"] == "queued"


def test_ai_turn_follows_and_turns_since(app, client, factory):
    """Does GET turns?since=N list only later turns, the AI answer right after the human one?"""
    alice, bob = factory.user(), factory.user()
    sid = factory.story(alice)
    job = post_turn(client, sid, factory.headers(alice), 0).get_json()["job"]
    assert answer(app, job["id"]) == 2
    assert client.get(f"/api/v1/jobs/{job['id']}").get_json()["status"] == "done"
    assert post_turn(client, sid, factory.headers(bob), 2).status_code == 202
    body = get_turns(client, sid, since=1).get_json()
    assert body["last_position"] == 3
    assert [(t["position"], t["kind"]) for t in body["turns"]] == [(2, "ai"), (3, "human")]
    assert body["turns"][0]["reply_to_id"] == job["reply_to_id"]
    assert body["pending_job"]["status"] == "queued"


def test_stale_position_returns_missed_turns(app, client, factory):
    """Does a writer who saw an old position get 409 with the turns they missed?"""
    alice, bob = factory.user(), factory.user()
    sid = factory.story(alice)
    job = post_turn(client, sid, factory.headers(alice), 0).get_json()["job"]
    answer(app, job["id"])
    bob_headers = factory.headers(bob)
    before = counts(app)
    response = post_turn(client, sid, bob_headers, 0)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "stale_position"
    assert error["last_position"] == 2
    assert [t["position"] for t in error["missed"]] == [1, 2]
    assert counts(app) == before


def test_pending_generation_blocks_the_next_turn(app, client, factory):
    """While the model is writing, does a new human turn get 409 generation_pending?"""
    alice, bob = factory.user(), factory.user()
    sid = factory.story(alice)
    post_turn(client, sid, factory.headers(alice), 0)
    bob_headers = factory.headers(bob)
    before = counts(app)
    response = post_turn(client, sid, bob_headers, 1)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "generation_pending"
    assert response.get_json()["error"]["job"]["status"] == "queued"
    assert counts(app) == before


def test_same_writer_twice_in_open_policy(app, client, factory):
    """Can a writer append twice in a row in an open story?"""
    alice, bob = factory.user(), factory.user()
    sid = factory.story(alice)
    headers = factory.headers(alice)
    answer(app, post_turn(client, sid, headers, 0).get_json()["job"]["id"])
    before = counts(app)
    response = post_turn(client, sid, headers, 2)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "not_your_turn"
    assert counts(app) == before
    assert post_turn(client, sid, factory.headers(bob), 2).status_code == 202


def test_round_robin_follows_join_order(app, client, factory):
    """With three participants, does round robin go owner, second, third, owner again?"""
    a, b, c, outsider = (factory.user() for _ in range(4))
    sid = factory.story(a, policy="round_robin")
    headers = {uid: factory.headers(uid) for uid in (a, b, c, outsider)}
    for uid in (b, c):
        joined = client.post(f"/api/v1/stories/{sid}/participants", headers=headers[uid])
        assert joined.status_code == 201
    again = client.post(f"/api/v1/stories/{sid}/participants", headers=headers[b])
    assert again.status_code == 200
    assert again.get_json()["participants"] == ["writer1", "writer2", "writer3"]
    position = 0
    for writer, wrong in ((a, c), (b, a), (c, b), (a, b)):
        denied = post_turn(client, sid, headers[wrong], position)
        assert denied.status_code == 409
        assert denied.get_json()["error"]["code"] == "not_your_turn"
        refused = post_turn(client, sid, headers[outsider], position)
        assert refused.get_json()["error"]["code"] == "not_a_participant"
        job = post_turn(client, sid, headers[writer], position).get_json()["job"]
        position = answer(app, job["id"])
    listing = client.get(f"/api/v1/stories/{sid}/participants").get_json()
    assert listing["next_writer"] == "writer2"
    assert [t["author"] for t in get_turns(client, sid).get_json()["turns"][::2]] == [
        "writer1",
        "writer2",
        "writer3",
        "writer1",
    ]


def test_locked_story_refuses_turns(app, client, factory):
    """Does a locked story answer 409 story_locked?"""
    alice = factory.user()
    sid = factory.story(alice)
    headers = factory.headers(alice)
    patched = client.patch(f"/api/v1/stories/{sid}", json={"status": "locked"}, headers=headers)
    assert patched.status_code == 200 and patched.get_json()["status"] == "locked"
    response = post_turn(client, sid, headers, 0)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "story_locked"


def test_story_full_and_queue_full(app, client, factory):
    """Does a full story give 409 story_full and a full queue 503 with Retry-After?"""
    alice, bob = factory.user(), factory.user()
    sid = factory.story(alice)
    other = factory.story(bob)
    app.config["TURNS_PER_STORY_MAX"] = 1
    assert post_turn(client, sid, factory.headers(alice), 0).get_json()["error"]["code"] == (
        "story_full"
    )
    app.config["TURNS_PER_STORY_MAX"] = 100
    app.config["QUEUE_MAX"] = 1
    assert post_turn(client, sid, factory.headers(alice), 0).status_code == 202
    bob_headers = factory.headers(bob)
    before = counts(app)
    response = post_turn(client, other, bob_headers, 0)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "queue_full"
    assert int(response.headers["Retry-After"]) > 0
    assert counts(app) == before


def test_regenerate_keeps_history(app, client, factory):
    """Does regenerating hide the old AI turn, visible to an admin but not to a reader?"""
    alice, bob = factory.user(), factory.user()
    admin = factory.user(role="admin")
    sid = factory.story(alice)
    job = post_turn(client, sid, factory.headers(alice), 0).get_json()["job"]
    answer(app, job["id"], "The first answer.")
    denied = client.post(f"/api/v1/stories/{sid}/turns/2/regenerate", headers=factory.headers(bob))
    assert denied.status_code == 403
    response = client.post(
        f"/api/v1/stories/{sid}/turns/2/regenerate", headers=factory.headers(alice)
    )
    assert response.status_code == 202
    new_job = response.get_json()["job"]
    assert new_job["status"] == "queued" and new_job["reply_to_id"] == job["reply_to_id"]
    answer(app, new_job["id"], "The second answer.")
    reader = get_turns(client, sid).get_json()
    assert [(t["position"], t["text"]) for t in reader["turns"]] == [
        (1, "A paragraph."),
        (3, "The second answer."),
    ]
    seen = get_turns(client, sid, factory.headers(admin)).get_json()["turns"]
    assert [(t["position"], t["hidden"]) for t in seen] == [(1, False), (2, True), (3, False)]
    assert seen[1]["text"] == "The first answer." and seen[1]["hidden_reason"] == "regenerated"
    assert client.get(f"/api/v1/stories/{sid}").get_json()["turn_count"] == 2
    # Readers' paragraph numbers have no gap; positions stay the identity (URLs, expected_position)
    assert [(t["position"], t["number"]) for t in reader["turns"]] == [(1, 1), (3, 2)]
    assert [t["number"] for t in seen] == [1, None, 2]
    later = get_turns(client, sid, since=1).get_json()["turns"]
    assert [(t["position"], t["number"]) for t in later] == [(3, 2)]
    page = client.get(f"/stories/{sid}").get_data(as_text=True)
    assert "§2" in page and "§3" not in page
    export = client.get(f"/stories/{sid}/export.txt").get_data(as_text=True)
    assert "[2, written by the model" in export and "[3," not in export


def test_regenerate_only_the_latest_turn(app, client, factory):
    """Is regenerating an older turn a 409, an unknown position a 404, a pending one a 409?"""
    alice, bob = factory.user(), factory.user()
    sid = factory.story(alice)
    answer(app, post_turn(client, sid, factory.headers(alice), 0).get_json()["job"]["id"])
    bob_job = post_turn(client, sid, factory.headers(bob), 2).get_json()["job"]
    headers = factory.headers(alice)
    pending = client.post(f"/api/v1/stories/{sid}/turns/2/regenerate", headers=headers)
    assert pending.status_code == 409
    assert pending.get_json()["error"]["code"] == "generation_pending"
    answer(app, bob_job["id"])
    older = client.post(f"/api/v1/stories/{sid}/turns/2/regenerate", headers=headers)
    assert older.status_code == 409
    assert older.get_json()["error"]["code"] == "not_latest"
    missing = client.post(f"/api/v1/stories/{sid}/turns/9/regenerate", headers=headers)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"


def test_failed_generation_can_be_retried(app, client, factory):
    """After the model fails, can the writer regenerate from their own paragraph?"""
    alice = factory.user()
    sid = factory.story(alice)
    job = post_turn(client, sid, factory.headers(alice), 0).get_json()["job"]
    fail(app, job["id"])
    failed = client.get(f"/api/v1/jobs/{job['id']}").get_json()
    assert failed["status"] == "failed" and failed["error"]
    response = client.post(
        f"/api/v1/stories/{sid}/turns/1/regenerate", headers=factory.headers(alice)
    )
    assert response.status_code == 202
    assert answer(app, response.get_json()["job"]["id"]) == 2


def test_unknown_job_and_story(client, factory):
    """Do an unknown job and an unknown story's turns give 404 in the error shape?"""
    alice = factory.user()
    assert client.get("/api/v1/jobs/999").get_json()["error"]["code"] == "not_found"
    response = post_turn(client, 999, factory.headers(alice), 0)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert get_turns(client, 999).status_code == 404
