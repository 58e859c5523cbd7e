"""Memory, author's note and lore (app/stories/lore.py) and what the model saw
(app/stories/context.py), through the runner's own prompt. Both databases."""

from __future__ import annotations

from typing import Any

import pytest

from app.accounts.models import User
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.moderation.models import AuditEntry
from app.stories import lore
from app.stories.context import turn_context
from app.stories.models import GenerationJob, Story
from app.stories.relay import append_human_turn, join_story, set_hidden


@pytest.fixture
def app(quiet_app: Any) -> Any:
    return quiet_app  # no runner thread: the tests run each job themselves


class Recording:
    """The HF generator, recording the prompt it was given (as text) and its seed. The
    tiny random model sometimes writes nothing usable: unless `exact`, such an answer
    becomes a fixed sentence, so that every job ends with an AI turn."""

    def __init__(self, app: Any, exact: bool = False) -> None:
        from app.generation.cleanup import clean_generation
        from app.generation.generator import Generation, Generator

        self.calls: list[dict[str, Any]] = []
        calls = self.calls

        class RecordingGenerator(Generator):
            def run(self, model_key, prompt, params, on_delta=None, should_stop=None, seed=None):
                tokenizer = self.registry.get(model_key).tokenizer
                calls.append({"prompt": tokenizer.decode(prompt), "seed": seed})
                result = super().run(model_key, prompt, params, on_delta, should_stop, seed)
                finished = result.stop_reason.natural_end
                if exact or clean_generation(result.text, finished=finished):
                    return result
                return Generation("The sea answered.", result.token_ids, result.stop_reason)

        app.extensions["relay.generator"] = RecordingGenerator(app.extensions["relay.registry"])


def user(user_id: int) -> User:
    return db.session.get(User, user_id)


def write(story_id: int, user_id: int, text: str) -> int:
    """Append a paragraph and run the model's answer; the answer's position."""
    from app.runners.execute import run_job

    story = db.session.get(Story, story_id)
    _, job = append_human_turn(story_id, user(user_id), text, story.last_position)
    job_id = job.id
    outcome = run_job(job_id)
    assert outcome in ("done", "held"), db.session.get(GenerationJob, job_id).error
    return db.session.get(GenerationJob, job_id).turn.position


def test_memory_note_and_lore_reach_the_prompt_the_viewer_shows(app, factory):
    """Is the context viewer's prompt exactly the one the model was given, with the memory
    pinned, the mentioned lore entry in and the note at its depth?"""
    recording = Recording(app)
    owner, other = factory.user(), factory.user()
    sid = factory.story(owner, opening="Night.", max_new_tokens=16)
    with app.app_context():
        lore.set_memory(sid, user(owner), {"memory": "Mira keeps the light.", "note_depth": 1})
        lore.set_memory(sid, user(owner), {"authors_note": "Grim."})
        lamp = lore.add_entry(sid, user(owner), "lamp, lantern", "The lamp is brass.").id
        lore.add_entry(sid, user(owner), "ship", "A ship passes.")
        first = write(sid, owner, "The lamp went out.")
        second = write(sid, other, "Nothing moved.")
        seen = turn_context(sid, second, user(other))
    assert seen["prompt"] == recording.calls[-1]["prompt"]
    assert seen["seed"] == recording.calls[-1]["seed"] is not None
    assert seen["prompt"].startswith("Night.\n\nMira keeps the light.\n\nThe lamp is brass.")
    assert recording.calls[0]["prompt"].startswith("Night.\n\nMira keeps the light.\n\n")
    assert "A ship passes." not in seen["prompt"]
    assert [entry["id"] for entry in seen["lore"]] == [lamp]
    assert seen["prompt"].endswith("[Grim.]\n\nNothing moved.\n\n")
    kinds = [part["kind"] for part in seen["parts"]]
    assert kinds[:3] == ["opening", "memory", "lore"] and kinds[-2:] == ["note", "turn"]
    assert seen["model_key"] == "en" and seen["preset"] == "balanced"
    assert seen["params"]["max_new_tokens"] == 16
    assert first == 2 and second == 4


def test_a_turn_hidden_since_is_elided_for_readers_only(app, factory):
    """Does a reader see "[…]" for a turn hidden after the prompt was built, and a moderator
    its text?"""
    Recording(app)
    owner, other = factory.user(), factory.user()
    moderator = factory.user(role="moderator")
    sid = factory.story(owner, opening="Night.", max_new_tokens=16)
    with app.app_context():
        write(sid, owner, "The secret word is PLUGH.")
        answer = write(sid, other, "A visible paragraph.")
        story = db.session.get(Story, sid)
        secret = next(t for t in story.turns if "PLUGH" in t.text)
        set_hidden(secret.id, user(moderator), True, "spoiler")
        reader_view = turn_context(sid, answer, None)
        moderator_view = turn_context(sid, answer, user(moderator))
    assert "PLUGH" not in reader_view["prompt"] and "[…]" in reader_view["prompt"]
    assert [p for p in reader_view["parts"] if p["elided"]][0]["position"] == secret.position
    assert "PLUGH" in moderator_view["prompt"]


def test_no_context_for_a_human_turn_or_an_unrecorded_job(app, factory):
    """Is a human turn, or an AI turn whose job kept no record, a 404?"""
    Recording(app)
    owner = factory.user()
    sid = factory.story(owner, opening="Night.", max_new_tokens=16)
    with app.app_context():
        answer = write(sid, owner, "The lamp went out.")
        with pytest.raises(NotFound):
            turn_context(sid, 1, None)
        db.session.execute(db.update(GenerationJob).values(context=None))
        db.session.commit()
        with pytest.raises(NotFound):
            turn_context(sid, answer, None)


def test_participants_edit_only_when_the_owner_allows(app, factory):
    """Is a participant refused until memory_access is "participants", and never allowed to
    change memory_access itself?"""
    owner, writer = factory.user(), factory.user()
    sid = factory.story(owner)
    with app.app_context():
        join_story(sid, user(writer))
        with pytest.raises(Forbidden):
            lore.set_memory(sid, user(writer), {"memory": "Mine."})
        with pytest.raises(Forbidden):
            lore.add_entry(sid, user(writer), "lamp", "A lamp.")
        lore.set_memory(sid, user(owner), {"memory_access": "participants"})
        lore.set_memory(sid, user(writer), {"memory": "Ours."})
        entry = lore.add_entry(sid, user(writer), "lamp", "A lamp.")
        lore.update_entry(sid, entry.id, user(writer), {"text": "A brass lamp."})
        with pytest.raises(Forbidden):
            lore.set_memory(sid, user(writer), {"memory_access": "owner"})
        story = db.session.get(Story, sid)
        assert (story.memory, story.memory_access) == ("Ours.", "participants")
        assert lore.lore_entries(story)[0].text == "A brass lamp."


def test_an_outsider_of_a_private_story_gets_404(app, factory):
    """Does someone who may not read a private story learn nothing of it (404)?"""
    owner, outsider = factory.user(), factory.user()
    sid = factory.story(owner, visibility="private")
    with app.app_context():
        with pytest.raises(NotFound):
            lore.set_memory(sid, user(outsider), {"memory": "x"})
        with pytest.raises(NotFound):
            lore.add_entry(sid, user(outsider), "lamp", "A lamp.")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s, u: lore.set_memory(s, u, {"memory": "m" * 2001}), "memory"),
        (lambda s, u: lore.set_memory(s, u, {"authors_note": "n" * 501}), "authors_note"),
        (lambda s, u: lore.set_memory(s, u, {"note_depth": 21}), "note_depth"),
        (lambda s, u: lore.set_memory(s, u, {"note_depth": "two"}), "note_depth"),
        (lambda s, u: lore.set_memory(s, u, {"memory_access": "all"}), "memory_access"),
        (lambda s, u: lore.add_entry(s, u, "k" * 30, "text"), "keys"),
        (lambda s, u: lore.add_entry(s, u, ["lamp", 7], "text"), "keys"),
        (lambda s, u: lore.add_entry(s, u, ",".join(f"k{n}" for n in range(11)), "t"), "keys"),
        (lambda s, u: lore.add_entry(s, u, " , ", "text"), "keys"),
        (lambda s, u: lore.add_entry(s, u, "lamp", "t" * 1001), "text"),
        (lambda s, u: lore.add_entry(s, u, "lamp", "   "), "text"),
    ],
)
def test_bad_input_is_422_naming_the_field(app, factory, call, field):
    """Is each limit a 422 that names its field, with nothing changed?"""
    owner = factory.user()
    sid = factory.story(owner)
    with app.app_context():
        with pytest.raises(Invalid) as caught:
            call(sid, user(owner))
        assert caught.value.details["field"] == field
        story = db.session.get(Story, sid)
        assert story.memory == "" and not lore.lore_entries(story)


def test_the_lorebook_holds_fifty_entries(app, factory):
    """Is the 51st entry refused (409 lore_full: allowed, but not while it is full)?"""
    owner = factory.user()
    sid = factory.story(owner)
    with app.app_context():
        for n in range(lore.ENTRIES_MAX):
            lore.add_entry(sid, user(owner), f"key{n}", "text")
        with pytest.raises(Conflict) as caught:
            lore.add_entry(sid, user(owner), "one more", "text")
        assert caught.value.code == "lore_full"


def test_a_moderators_change_is_audited(app, factory):
    """Does a moderator changing someone else's memory or lore leave audit rows (and the
    owner's own changes none)?"""
    owner = factory.user()
    moderator = factory.user(role="moderator")
    sid = factory.story(owner)
    with app.app_context():
        lore.set_memory(sid, user(owner), {"memory": "Mine."})
        lore.set_memory(sid, user(moderator), {"memory": "Tidied."})
        entry = lore.add_entry(sid, user(moderator), "lamp", "A lamp.")
        lore.delete_entry(sid, entry.id, user(moderator))
        rows = db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [row.action for row in rows] == ["story.memory", "lore.add", "lore.delete"]
        assert all(row.actor_id == moderator and row.target_id == sid for row in rows)
        assert rows[0].details == {"fields": ["memory"]}


def test_the_hf_path_is_reproducible_from_the_recorded_seed(app, factory, monkeypatch):
    """Does generating again from the recorded prompt, parameters and seed give the turn?"""
    from app.generation.cleanup import clean_generation
    from app.generation.generator import Generator
    from app.generation.sampling import SamplingParams

    monkeypatch.setattr("app.stories.context.new_seed", lambda: 1234)  # one that writes text
    Recording(app, exact=True)
    owner = factory.user()
    sid = factory.story(owner, opening="Night.", max_new_tokens=16)
    with app.app_context():
        position = write(sid, owner, "The lamp went out.")
        seen = turn_context(sid, position, None)
        turn_text = db.session.get(Story, sid).turns[-1].text
        params = SamplingParams(**{**seen["params"], "bad_words": ()})
        generator = Generator(app.extensions["relay.registry"])
        again = generator.run("en", seen["prompt"], params, seed=seen["seed"])
    assert seen["seed"] is not None and not params.greedy
    assert clean_generation(again.text, finished=again.stop_reason.natural_end) == turn_text


def test_the_pages_show_memory_forms_and_the_context(app, factory):
    """Does the memory page give the owner forms (a bad value back with 422) and a reader a
    read-only view, the story page the memory, and an AI turn a "What the model saw" page?"""
    from tests.conftest import session_user_id

    Recording(app)
    owner = factory.user()
    sid = factory.story(owner, opening="Night.", max_new_tokens=16)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = session_user_id(app, owner)
    saved = client.post(f"/stories/{sid}/memory", data={"memory": "Mira keeps the light."})
    assert saved.status_code == 302
    bad = client.post(f"/stories/{sid}/lore", data={"keys": " , ", "text": "A lamp."})
    assert bad.status_code == 422 and "keys" in bad.get_data(True)
    assert (
        client.post(f"/stories/{sid}/lore", data={"keys": "lamp", "text": "A lamp."}).status_code
        == 302
    )
    assert 'id="memory-form"' in client.get(f"/stories/{sid}/memory").get_data(True)
    reader = app.test_client().get(f"/stories/{sid}/memory").get_data(True)
    assert 'id="memory-form"' not in reader and "Mira keeps the light." in reader
    with app.app_context():
        position = write(sid, owner, "The lamp went out.")
    page = app.test_client().get(f"/stories/{sid}")
    assert "Mira keeps the light." in page.get_data(True)
    assert f"/stories/{sid}/turns/{position}/context" in page.get_data(True)
    seen = app.test_client().get(f"/stories/{sid}/turns/{position}/context").get_data(True)
    assert 'data-kind="memory"' in seen and "Mira keeps the light." in seen
