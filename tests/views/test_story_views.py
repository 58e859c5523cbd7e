"""Story pages in the browser: list, new story, posting turns, escaping, hidden turns, state."""

from __future__ import annotations

from sqlalchemy import func, select

from app.accounts.models import User
from app.extensions import db
from app.stories import reads, relay
from app.stories.jobs import claim_job, complete_job
from app.stories.models import FinishReason, Story, Turn

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
GOOD_STORY = {
    "title": "The Lighthouse",
    "language": "en",
    "model": "",
    "opening": "The keeper wrote to the sea.",
    "policy": "open",
    "preset": "balanced",
    "length_words": "45",
}


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


def _answer(app, story_id: int, text: str = "The sea wrote back.") -> None:
    """Play the runner: finish the story's pending job with `text`."""
    with app.app_context():
        job = reads.pending_job(reads.get_story(story_id))
        claim_job(job.id, "test")
        complete_job(job.id, text)


def test_story_list_shows_title_language_turns(app, client, factory):
    """Does the list show each story's title, language and number of visible turns?"""
    alice = factory.user("alice")
    story_id = factory.story(alice, title="Salt and Foam", language="ko")
    with app.app_context():
        relay.append_human_turn(story_id, db.session.get(User, alice), "A paragraph.", 0)
    _answer(app, story_id)
    page = client.get("/").get_data(as_text=True)
    assert "Salt and Foam" in page and "Korean" in page
    assert '<td class="num">2</td>' in page


def test_story_list_is_paginated(app, client, factory):
    """Are stories split into pages of 20, newest activity first?"""
    alice = factory.user("alice")
    for n in range(23):
        factory.story(alice, title=f"Story number {n:02d}")
    first = client.get("/").get_data(as_text=True)
    assert "Story number 22" in first and "Story number 02" not in first
    assert "Page 1 of 2" in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert "Story number 02" in second and "Story number 22" not in second
    assert client.get("/?page=99").status_code == 200


def test_new_story_needs_sign_in(app, client):
    """Does an anonymous visitor get sent to the login page instead of the form?"""
    response = client.get("/stories/new")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_anonymous_turn_post_goes_to_login_and_back(app, client, factory):
    """Is an anonymous turn POST sent to log in, to come back to the story page?"""
    story_id = factory.story(factory.user("alice"))
    data = {"text": "Hi", "expected_position": 0}
    response = client.post(f"/stories/{story_id}/turns", data=data)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next=/stories/{story_id}"
    assert _count(app, Turn) == 0


def test_new_story_created(app, client, browser):
    """Does a good form create the story with the language's default model and open it, its
    length in words turned into the model's tokens?"""
    from app.stories.lengths import tokens_for_words

    browser.register("alice")
    response = client.post("/stories/new", data=GOOD_STORY)
    assert response.status_code == 302
    with app.app_context():
        story = db.session.scalars(select(Story)).one()
        tokens = tokens_for_words(45, "en")
        assert (story.title, story.model_key) == ("The Lighthouse", "en")
        assert story.max_new_tokens == tokens
    assert tokens == round(45 * 5.39 / 4.0)  # the tiny model has no eval.json: typical figures
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The keeper wrote to the sea." in page


def test_new_story_asks_for_candidates(app, client, browser):
    """Can a story ask for several candidates per model turn, voted on, from the start?"""
    browser.register("alice")
    page = client.get("/stories/new").get_data(as_text=True)
    assert 'name="candidates"' in page and 'name="choice_mode"' in page
    data = {**GOOD_STORY, "candidates": "3", "choice_mode": "vote"}
    assert client.post("/stories/new", data=data).status_code == 302
    plain = {**GOOD_STORY, "title": "Only one answer"}
    assert client.post("/stories/new", data=plain).status_code == 302
    with app.app_context():
        stories = db.session.scalars(select(Story).order_by(Story.id)).all()
        chosen = [(s.candidates, s.choice_mode) for s in stories]
    assert chosen == [(3, "vote"), (1, "writer")]


def test_new_story_bad_input_shows_message_and_stores_nothing(app, client, browser):
    """Do empty, oversized, out-of-range and unknown values each show a message, storing nothing?"""
    browser.register("alice")
    cases = [
        ({"title": "   "}, "Title must not be empty."),
        ({"title": "x" * 121}, "the limit is 120"),
        ({"opening": ""}, "This field is required."),
        ({"length_words": "5000"}, "Between about 12 and 148 words for this model."),
        ({"length_words": "lots"}, "Not a valid integer value."),
        ({"model": "gpt-17"}, "Not a valid choice."),
        ({"language": "fr"}, "Not a valid choice."),
        ({"policy": "anarchy"}, "Not a valid choice."),
        ({"candidates": "9"}, "Not a valid choice."),
        ({"choice_mode": "coin"}, "Not a valid choice."),
    ]
    for change, message in cases:
        response = client.post("/stories/new", data={**GOOD_STORY, **change})
        assert response.status_code == 422, change
        page = response.get_data(as_text=True)
        assert message in page, (change, message)
        assert 'class="field-error"' in page
    assert _count(app, Story) == 0


def test_posting_a_turn_then_the_model_answers(app, client, browser):
    """Does a posted paragraph appear on the page, with the model's answer after it?"""
    browser.register("alice")
    client.post("/stories/new", data=GOOD_STORY)
    response = client.post("/stories/1/turns", data={"text": "I climbed.", "expected_position": 0})
    assert response.status_code == 302 and response.headers["Location"].endswith("#turn-1")
    page = client.get("/stories/1").get_data(as_text=True)
    assert "I climbed." in page and "turn-pending" in page
    assert "The model is writing its turn" in page
    _answer(app, 1, "The lamp went out.")
    page = client.get("/stories/1").get_data(as_text=True)
    assert "The lamp went out." in page and "turn-pending" not in page
    assert 'data-kind="ai"' in page and "✦ model" in page
    assert '<input id="expected_position" name="expected_position" type="hidden" value="2">' in page


def test_stale_position_keeps_text_and_explains(app, client, browser, factory):
    """Does a stale expected_position show the reason, keep my text and store nothing?"""
    bob = factory.user("bob")
    story_id = factory.story(bob)
    browser.register("alice")
    with app.app_context():
        relay.append_human_turn(story_id, db.session.get(User, bob), "Bob went first.", 0)
    _answer(app, story_id)
    text = "My carefully written paragraph."
    response = client.post(
        f"/stories/{story_id}/turns", data={"text": text, "expected_position": 0}
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "The story moved on: 2 new paragraphs since you looked (shown now)." in page
    assert f"{text}</textarea>" in page
    assert "Bob went first." in page  # the turns I missed are on the page
    assert 'name="expected_position" type="hidden" value="2"' in page  # ready to resend
    assert _count(app, Turn) == 2
    mod = factory.user(role="moderator")
    with app.app_context():  # a hidden answer is not counted: this writer never saw it
        from app.moderation import service

        ai = db.session.scalars(select(Turn).where(Turn.kind == "ai")).one()
        service.hide_turn(ai.id, db.session.get(User, mod), "spam")
    again = client.post(f"/stories/{story_id}/turns", data={"text": text, "expected_position": 0})
    assert "The story moved on: 1 new paragraph since you looked" in again.get_data(as_text=True)


def test_pending_generation_keeps_text_and_explains(app, client, browser, factory):
    """While the model writes, does a new paragraph get the reason with the text kept?"""
    bob = factory.user("bob")
    story_id = factory.story(bob)
    browser.register("alice")
    with app.app_context():
        relay.append_human_turn(story_id, db.session.get(User, bob), "Bob went first.", 0)
    text = "Waiting is hard."
    response = client.post(
        f"/stories/{story_id}/turns", data={"text": text, "expected_position": 1}
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "The model is still writing its turn; wait for it to finish." in page
    assert text in page
    assert _count(app, Turn) == 1


def test_turn_post_as_json_for_the_page_script(app, client, browser):
    """Does the page's fetch get JSON back: 201 with the turn, or the error with its code?"""
    browser.register("alice")
    client.post("/stories/new", data=GOOD_STORY)
    headers = {"Accept": "application/json"}
    ok = client.post(
        "/stories/1/turns", data={"text": "Hi.", "expected_position": 0}, headers=headers
    )
    assert ok.status_code == 201
    assert ok.json["turn"]["position"] == 1 and ok.json["job"]["status"] == "queued"
    again = client.post(
        "/stories/1/turns", data={"text": "Again.", "expected_position": 0}, headers=headers
    )
    assert again.status_code == 409
    assert again.json["error"]["code"] == "stale_position"
    assert again.json["error"]["last_position"] == 1
    empty = client.post(
        "/stories/1/turns", data={"text": " ", "expected_position": 1}, headers=headers
    )
    assert empty.status_code in (409, 422)
    client.post("/logout")
    anon = client.post(
        "/stories/1/turns", data={"text": "x", "expected_position": 1}, headers=headers
    )
    assert anon.status_code == 401 and anon.json["error"]["code"] == "unauthorized"


def test_title_and_turn_are_escaped(app, client, browser, factory):
    """Are a script payload in a title and in a turn shown as text, never as markup?"""
    browser.register("alice")
    client.post("/stories/new", data={**GOOD_STORY, "title": XSS, "opening": XSS})
    client.post("/stories/1/turns", data={"text": XSS, "expected_position": 0})
    _answer(app, 1, XSS)
    for url in ("/", "/stories/1"):
        response = client.get(url)
        page = response.get_data(as_text=True)
        assert "<script>window.__pwned" not in page and "<img src=x" not in page
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    turns = client.get("/stories/1/turns.json?since=0")
    assert turns.mimetype == "application/json" and turns.json["turns"][0]["text"] == XSS


def test_hidden_turns_greyed_for_moderators_only(app, client, browser, factory):
    """Is a hidden turn gone for readers and shown greyed with its reason to moderators?"""
    alice = factory.user("alice")
    mod = factory.user("mod", role="moderator")
    story_id = factory.story(alice)
    with app.app_context():
        turn, _ = relay.append_human_turn(story_id, db.session.get(User, alice), "Rude words.", 0)
        relay.set_hidden(turn.id, db.session.get(User, mod), True, "abusive language")
    reader = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "Rude words." not in reader
    assert client.get(f"/stories/{story_id}/turns.json?since=0").json["turns"] == []
    browser.login("mod")
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "Rude words." in page and "turn-hidden" in page
    assert "Hidden: abusive language" in page


def test_regenerate_offered_to_the_writer_and_keeps_history(app, client, browser):
    """Is regenerate offered on the answer to my paragraph, and is the old text kept hidden?"""
    browser.register("alice")
    client.post("/stories/new", data=GOOD_STORY)
    client.post("/stories/1/turns", data={"text": "Mine.", "expected_position": 0})
    _answer(app, 1, "First answer.")
    state = client.get("/stories/1/state.json").json
    # She wrote the last paragraph, so she may not add the next one (the relay rule).
    assert state["regenerate_position"] == 2 and state["can_write"] is False
    page = client.get("/stories/1").get_data(as_text=True)
    assert 'action="/stories/1/turns/2/regenerate"' in page
    assert client.post("/stories/1/turns/2/regenerate").status_code == 302
    _answer(app, 1, "Second answer.")
    page = client.get("/stories/1").get_data(as_text=True)
    assert "Second answer." in page and "First answer." not in page
    with app.app_context():
        old = db.session.scalars(select(Turn).where(Turn.position == 2)).one()
        assert old.hidden and old.hidden_reason == "regenerated"


def test_regenerate_refused_for_someone_else(app, client, browser, factory):
    """Is another writer refused (flashed message) when regenerating my answer?"""
    alice = factory.user("alice")
    story_id = factory.story(alice)
    with app.app_context():
        relay.append_human_turn(story_id, db.session.get(User, alice), "Mine.", 0)
    _answer(app, story_id)
    browser.register("bob")
    assert client.get(f"/stories/{story_id}/state.json").json["regenerate_position"] is None
    response = client.post(f"/stories/{story_id}/turns/2/regenerate", follow_redirects=True)
    assert "Only the writer of the paragraph it answers can regenerate it." in response.get_data(
        as_text=True
    )


def test_failed_generation_shows_the_error_and_offers_a_retry(app, client, browser):
    """When the model fails, does the writer see the job's error and a way to ask again?"""
    from app.stories.jobs import fail_job

    browser.register("alice")
    client.post("/stories/new", data=GOOD_STORY)
    client.post("/stories/1/turns", data={"text": "Mine.", "expected_position": 0})
    with app.app_context():
        job = reads.pending_job(reads.get_story(1))
        claim_job(job.id, "test")
        fail_job(job.id, FinishReason.EMPTY)
    page = client.get("/stories/1").get_data(as_text=True)
    assert "The model could not write its turn: The model wrote nothing usable twice" in page
    assert 'action="/stories/1/turns/1/regenerate"' in page
    assert client.post("/stories/1/turns/1/regenerate").status_code == 302
    state = client.get("/stories/1/state.json").json
    assert state["pending_job"]["status"] == "queued" and state["failed_job"] is None


def test_round_robin_join_and_whose_turn(app, client, browser, factory):
    """Does a round-robin story offer Join, and tell each participant whose turn it is?"""
    alice = factory.user("alice")
    story_id = factory.story(alice, policy="round_robin")
    browser.register("bob")
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "Join this story" in page
    assert "Join this story to take part in its round." in page
    client.post(f"/stories/{story_id}/join")
    state = client.get(f"/stories/{story_id}/state.json").json
    assert state["hint"] == "It is alice's turn."
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "Join this story</button>" not in page


def test_long_story_loads_earlier_turns(app, client, factory):
    """Does a long story show its latest turns with a link to load earlier ones?"""
    alice = factory.user("alice")
    bob = factory.user("bob")
    story_id = factory.story(alice)
    with app.app_context():
        users = [db.session.get(User, alice), db.session.get(User, bob)]
    for n in range(25):
        with app.app_context():
            relay.append_human_turn(story_id, users[n % 2], f"Paragraph {n}.", 2 * n)
        _answer(app, story_id, f"Answer {n}.")
    page = client.get(f"/stories/{story_id}").get_data(as_text=True)
    assert "Answer 24." in page and "Paragraph 4." not in page
    assert 'id="load-earlier"' in page and "before=11" in page
    earlier = client.get(f"/stories/{story_id}/turns.json?before=11").json
    assert [t["position"] for t in earlier["turns"]] == list(range(1, 11))
    assert earlier["has_earlier"] is False
    paged = client.get(f"/stories/{story_id}?before=11").get_data(as_text=True)
    assert "Paragraph 4." in paged and "Answer 24." not in paged


def test_events_route_streams(app, client, factory):
    """Is the story's event stream served as text/event-stream (404 for a missing story)?"""
    story_id = factory.story(factory.user("alice"))
    response = client.get(f"/stories/{story_id}/events", buffered=False)
    try:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        first = next(response.response)
        assert (first.decode() if isinstance(first, bytes) else first).startswith("retry:")
    finally:
        response.close()
    assert client.get("/stories/999/events").status_code == 404


def test_unknown_story_is_a_page_not_a_crash(app, client):
    """Does a missing story give the 404 page?"""
    response = client.get("/stories/4242")
    assert response.status_code == 404
    assert "Story 4242 does not exist." in response.get_data(as_text=True)


def _seed_filter(app) -> None:
    from app.moderation.filter import seed_default_rules

    with app.app_context():
        seed_default_rules()
        db.session.commit()


def test_filtered_paragraph_refused_with_text_kept(app, client, browser):
    """Is a paragraph the content filter rejects refused with the reason, the text kept?"""
    _seed_filter(app)
    browser.register("alice")
    client.post("/stories/new", data=GOOD_STORY)
    text = "Buy cheap viagra here."
    response = client.post("/stories/1/turns", data={"text": text, "expected_position": 0})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "The content filter does not accept" in page and f"{text}</textarea>" in page
    assert _count(app, Turn) == 0


def test_held_paragraph_waits_for_review(db_url, tiny_model_dir):
    """Under a rule that holds, does only its writer see a caught paragraph?"""
    from tests.conftest import build_app, close_app, set_filter_action
    from tests.views.conftest import Browser

    app = build_app(
        db_url,
        tiny_model_dir,
        seed_filters=True,
        RELAY_START_RUNNER=False,
    )
    try:
        _seed_filter(app)
        set_filter_action(app, "hold")
        client = app.test_client()
        Browser(client).register("alice")
        client.post("/stories/new", data=GOOD_STORY)
        text = "Buy cheap viagra here."
        response = client.post("/stories/1/turns", data={"text": text, "expected_position": 0})
        assert response.status_code == 302
        page = client.get("/stories/1").get_data(as_text=True)
        assert "waiting for a moderator&#39;s review before the story goes on" in page
        assert text in page and "turn-held" in page
        state = client.get("/stories/1/state.json").json
        assert state["awaiting_review"] is True and state["can_write"] is False
        assert state["hint"] == "The last paragraph is waiting for a moderator's review."
        reader = app.test_client()
        assert text not in reader.get("/stories/1").get_data(as_text=True)
        assert reader.get("/stories/1/turns.json?since=0").json["turns"] == []
        assert text not in reader.get("/stories/1/export.txt").get_data(as_text=True)
        assert '<td class="num">0</td>' in reader.get("/").get_data(as_text=True)
    finally:
        close_app(app)


def test_korean_story_round_trips(app, client, browser):
    """Does a Korean story keep its text, get lang="ko" for Hangul typesetting, and export?"""
    browser.register("minji")
    title, opening = "등대지기의 편지", "옛날 옛적에 바다에 편지를 쓰는 등대지기가 살았습니다."
    data = {**GOOD_STORY, "title": title, "language": "ko", "opening": opening}
    assert client.post("/stories/new", data=data).status_code == 302
    page = client.get("/stories/1").get_data(as_text=True)
    assert '<article class="story" id="story" lang="ko"' in page
    assert title in page and opening in page
    with app.app_context():
        assert reads.get_story(1).model_key == "ko"
    export = client.get("/stories/1/export.md")
    assert opening in export.get_data(as_text=True)
    assert 'filename="story-1.md"' in export.headers["Content-Disposition"]


def test_turn_errors_name_the_field_as_the_page_does(app, client, browser):
    """Is an empty paragraph's message worded with the form's label, not the API's key?"""
    browser.register("alice")
    client.post("/stories/new", data=GOOD_STORY)
    response = client.post("/stories/1/turns", data={"text": " \n ", "expected_position": 0})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Your paragraph must not be empty." in page and "text must not be empty" not in page
