"""Edit, withdraw and undo at the service level (app/stories/edits.py), on both databases.

The runner is off: the tests play its part with claim_job / complete_job.
"""

from __future__ import annotations

import threading

import pytest

from app.accounts.models import User
from app.errors import Conflict, Forbidden, Invalid
from app.extensions import db
from app.moderation.models import AuditEntry
from app.stories import edits, jobs, reads, relay, rules
from app.stories.models import FinishReason, GenerationJob, JobStatus, Story, Turn
from app.stories.serialize import paragraph_numbers
from tests.conftest import Factory


@pytest.fixture
def app(quiet_app):
    with quiet_app.app_context():
        yield quiet_app


@pytest.fixture
def f(app) -> Factory:
    return Factory(app)


def user(user_id: int) -> User:
    return db.session.get(User, user_id)


def story(story_id: int) -> Story:
    found = db.session.get(Story, story_id)
    db.session.refresh(found)
    return found


def write(story_id: int, user_id: int, text: str = "A paragraph.") -> tuple[Turn, GenerationJob]:
    return relay.append_human_turn(story_id, user(user_id), text, story(story_id).last_position)


def answer(job_id: int, text: str = "The model answers.") -> Turn | None:
    assert jobs.claim_job(job_id, "test") is not None
    return jobs.complete_job(job_id, text)


def test_edit_while_queued_replaces_the_paragraph_and_its_job(f):
    """Does an edit while the job is queued hide the old paragraph, append the new one and
    swap the old job (withdrawn) for a new queued one?"""
    a = f.user()
    sid = f.story(a)
    old, old_job = write(sid, a, "The lamp went out.")
    new, job = edits.edit_paragraph(sid, old.position, user(a), "The lamp flickered.", 1)
    db.session.refresh(old)
    assert old.hidden and old.hidden_reason == "edited"
    assert (new.position, new.text, new.author_id) == (2, "The lamp flickered.", a)
    assert new.edited_at is not None
    withdrawn = db.session.get(GenerationJob, old_job.id)
    assert withdrawn.status == JobStatus.FAILED
    assert withdrawn.finish_reason == FinishReason.WITHDRAWN
    assert job.status == JobStatus.QUEUED and job.reply_to_id == new.id
    assert [t.text for t in reads.visible_turns(story(sid))] == ["The lamp flickered."]
    assert paragraph_numbers(reads.visible_turns(story(sid))) == {new.id: 1}
    ai = answer(job.id)
    assert ai.reply_to_id == new.id and ai.position == 3


def test_edit_while_running_refuses_the_late_answer(f):
    """Is the answer a runner was writing for the old text refused once the edit lands?"""
    a = f.user()
    sid = f.story(a)
    old, old_job = write(sid, a)
    assert jobs.claim_job(old_job.id, "test") is not None
    edits.edit_paragraph(sid, old.position, user(a), "Better.")
    assert jobs.complete_job(old_job.id, "Too late.") is None
    assert [t.text for t in reads.visible_turns(story(sid))] == ["Better."]


def test_edit_after_the_answer_is_final_is_409(f):
    """Once the model has answered, is an edit (and a withdrawal) a 409?"""
    a = f.user()
    sid = f.story(a)
    old, job = write(sid, a)
    answer(job.id)
    with pytest.raises(Conflict) as exc:
        edits.edit_paragraph(sid, old.position, user(a), "Changed my mind.")
    assert exc.value.code == "answer_final"
    with pytest.raises(Conflict):
        edits.withdraw_paragraph(sid, old.position, user(a))
    assert rules.editable_position(story(sid), user(a)) is None


def test_someone_elses_paragraph_is_403(f):
    """May another writer, the owner or a moderator edit a writer's paragraph? (403)"""
    owner, writer, mod = f.user(), f.user(), f.user(role="moderator")
    sid = f.story(owner)
    turn, _ = write(sid, writer)
    for other in (owner, mod):
        with pytest.raises(Forbidden):
            edits.edit_paragraph(sid, turn.position, user(other), "Mine now.")
        with pytest.raises(Forbidden):
            edits.withdraw_paragraph(sid, turn.position, user(other))
    assert rules.editable_position(story(sid), user(writer)) == turn.position
    assert rules.editable_position(story(sid), user(owner)) is None


def test_bad_input_is_422_and_changes_nothing(f):
    """Are an empty text, a non-string and a bad expected_position 422s that store nothing?"""
    a = f.user()
    sid = f.story(a)
    turn, job = write(sid, a)
    for text, expected in (("", None), ("   ", None), (42, None), ("Fine.", "x"), ("Ok.", -1)):
        with pytest.raises(Invalid):
            edits.edit_paragraph(sid, turn.position, user(a), text, expected)
    assert story(sid).last_position == 1
    assert db.session.get(GenerationJob, job.id).status == JobStatus.QUEUED


def test_stale_expected_position_is_409(f):
    """Does an edit naming an old last_position get stale_position?"""
    a = f.user()
    sid = f.story(a)
    turn, _ = write(sid, a)
    with pytest.raises(Conflict) as exc:
        edits.edit_paragraph(sid, turn.position, user(a), "New.", 0)
    assert exc.value.code == "stale_position"


def test_withdraw_hides_the_paragraph_and_its_job(f):
    """Does withdrawing hide the paragraph (kept), fail its job, and let the writer go again?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    _, first = write(sid, a, "One.")
    answer(first.id)
    turn, job = write(sid, b, "Two.")
    edits.withdraw_paragraph(sid, turn.position, user(b))
    db.session.refresh(turn)
    assert turn.hidden and turn.hidden_reason == "withdrawn"
    assert db.session.get(GenerationJob, job.id).finish_reason == FinishReason.WITHDRAWN
    assert [t.text for t in reads.visible_turns(story(sid))] == ["One.", "The model answers."]
    assert rules.may_write(story(sid), user(b))
    again, _ = write(sid, b, "Two, again.")
    assert again.position == 4  # positions never change: the withdrawn one keeps 3


def test_owner_undoes_the_last_pair(f):
    """Does the owner's undo hide the last paragraph and its answer, and nothing else?"""
    owner, writer = f.user(), f.user()
    sid = f.story(owner)
    _, job = write(sid, owner, "One.")
    answer(job.id, "Answer one.")
    _, job = write(sid, writer, "Two.")
    answer(job.id, "Answer two.")
    with pytest.raises(Forbidden):
        edits.withdraw_last_pair(sid, user(writer))
    hidden = edits.withdraw_last_pair(sid, user(owner))
    assert [(t.position, t.hidden_reason) for t in hidden] == [(3, "undone"), (4, "undone")]
    assert [t.text for t in reads.visible_turns(story(sid))] == ["One.", "Answer one."]
    assert db.session.query(AuditEntry).count() == 0  # the owner's own story
    assert rules.may_write(story(sid), user(writer))


def test_undo_while_queued_withdraws_the_job(f):
    """Does undo with the answer pending hide the paragraph and withdraw its job?"""
    owner, writer = f.user(), f.user()
    sid = f.story(owner)
    turn, job = write(sid, writer)
    hidden = edits.withdraw_last_pair(sid, user(owner))
    assert [t.id for t in hidden] == [turn.id]
    assert db.session.get(GenerationJob, job.id).status == JobStatus.FAILED
    assert jobs.claim_job(job.id, "test") is None
    with pytest.raises(Conflict) as exc:
        edits.withdraw_last_pair(sid, user(owner))
    assert exc.value.code == "nothing_to_undo"


def test_a_moderators_undo_is_audited(f):
    """Is a moderator's undo of someone else's story recorded in the audit log?"""
    owner, mod = f.user(), f.user(role="moderator")
    sid = f.story(owner)
    _, job = write(sid, owner)
    answer(job.id)
    edits.withdraw_last_pair(sid, user(mod))
    entry = db.session.query(AuditEntry).one()
    assert (entry.action, entry.target_id, entry.actor_id) == ("turn.undo", sid, mod)
    assert entry.details["positions"] == [1, 2]


def test_chapters_by_the_owner_only(f):
    """May the owner mark and clear a chapter, a writer not, and a moderator with an audit?"""
    owner, writer, mod = f.user(), f.user(), f.user(role="moderator")
    sid = f.story(owner)
    turn, job = write(sid, writer)
    answer(job.id)
    assert edits.set_chapter(sid, 1, user(owner), "  The Lamp ").chapter_title == "The Lamp"
    with pytest.raises(Forbidden):
        edits.set_chapter(sid, 1, user(writer), "Mine")
    with pytest.raises(Invalid):
        edits.set_chapter(sid, 1, user(owner), 7)
    assert edits.set_chapter(sid, 2, user(mod), "Answer").chapter_title == "Answer"
    assert db.session.query(AuditEntry).one().action == "turn.chapter"
    assert edits.set_chapter(sid, 1, user(owner), None).chapter_title is None


def test_an_edit_racing_the_answer_has_one_outcome(app, f):
    """An edit and the model's answer at once: exactly one wins, with no half state."""
    a = f.user()
    sid = f.story(a)
    turn, job = write(sid, a, "Original.")
    position, job_id = turn.position, job.id
    assert jobs.claim_job(job_id, "test") is not None
    results: dict[str, object] = {}
    start = threading.Barrier(2)

    def run(name, work):  # noqa: ANN001
        with app.app_context():
            start.wait()
            try:
                results[name] = work()
            except Conflict as exc:
                results[name] = exc
            finally:
                db.session.remove()

    workers = [
        threading.Thread(target=run, args=("answer", lambda: jobs.complete_job(job_id, "Ans."))),
        threading.Thread(
            target=run,
            args=("edit", lambda: edits.edit_paragraph(sid, position, user(a), "Edited.")),
        ),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    db.session.rollback()  # a fresh snapshot: what both threads committed
    texts = [t.text for t in reads.visible_turns(story(sid))]
    if isinstance(results["edit"], Conflict):  # the answer came first
        assert results["answer"] is not None
        assert texts == ["Original.", "Ans."]
    else:  # the edit came first: the late answer is refused
        assert results["answer"] is None
        assert texts == ["Edited."]
        pending = reads.pending_job(story(sid))
        assert pending is not None and pending.reply_to.text == "Edited."
    assert db.session.get(GenerationJob, job_id).status in (JobStatus.DONE, JobStatus.FAILED)
