"""The relay rules at the service level (no HTTP), on SQLite and PostgreSQL.

The runner is off here (RELAY_START_RUNNER=False): these tests play the
runner's part themselves with claim_job / complete_job / fail_job.
"""

from __future__ import annotations

import pytest

from app.accounts.models import User
from app.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from app.extensions import db
from app.stories import jobs, reads, relay
from app.stories.models import FinishReason, GenerationJob, Story, Turn
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


def answer(job_id: int, text: str = "The model answers.") -> Turn:
    assert jobs.claim_job(job_id, "test") is not None
    return jobs.complete_job(job_id, text)


def write(story_id: int, user_id: int, text: str = "A paragraph.") -> tuple[Turn, GenerationJob]:
    story = db.session.get(Story, story_id)
    db.session.refresh(story)
    return relay.append_human_turn(story_id, user(user_id), text, story.last_position)


def test_positions_are_contiguous_with_one_ai_turn_after_each_human(f):
    """Does every human turn get exactly one AI turn right after it?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    for writer in (a, b, a, b):
        _, job = write(sid, writer)
        answer(job.id)
    turns = reads.visible_turns(db.session.get(Story, sid))
    assert [t.position for t in turns] == list(range(1, 9))
    assert [t.kind for t in turns] == ["human", "ai"] * 4
    assert all(t.reply_to_id == turns[i - 1].id for i, t in enumerate(turns) if t.kind == "ai")


def test_pending_generation_blocks_the_next_human_turn(f):
    """While the AI turn is pending, does a new human turn get 409 with the reason?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    write(sid, a)
    with pytest.raises(Conflict) as exc:
        write(sid, b)
    assert exc.value.code == "generation_pending"
    assert db.session.query(Turn).count() == 1


def test_stale_position_returns_missed_turns(f):
    """Does a stale expected_position get 409 with the turns the writer missed?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    _, job = write(sid, a, "First.")
    answer(job.id, "Second.")
    with pytest.raises(Conflict) as exc:
        relay.append_human_turn(sid, user(b), "Late.", 0)
    assert exc.value.code == "stale_position"
    assert [t["text"] for t in exc.value.details["missed"]] == ["First.", "Second."]
    assert exc.value.details["last_position"] == 2


def test_open_policy_refuses_same_writer_twice(f):
    """Can a writer append twice in a row under the open policy?"""
    a = f.user()
    sid = f.story(a)
    _, job = write(sid, a)
    answer(job.id)
    with pytest.raises(Conflict) as exc:
        write(sid, a)
    assert exc.value.code == "not_your_turn"


def test_round_robin_follows_join_order(f):
    """Does round robin let participants write only in join order?"""
    a, b, c, outsider = f.user(), f.user(), f.user(), f.user()
    sid = f.story(a, policy="round_robin")
    relay.join_story(sid, user(b))
    relay.join_story(sid, user(c))
    with pytest.raises(Conflict) as exc:
        write(sid, outsider)
    assert exc.value.code == "not_a_participant"
    order = []
    for _ in range(4):
        story = db.session.get(Story, sid)
        expected = reads.next_writer_id(story)
        for wrong in {a, b, c} - {expected}:
            with pytest.raises(Conflict):
                write(sid, wrong)
        _, job = write(sid, expected)
        answer(job.id)
        order.append(expected)
    assert order == [a, b, c, a]


def test_regenerate_keeps_the_replaced_turn_hidden(f):
    """Does regenerating keep the old AI text, hidden, and append a new one?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    human, job = write(sid, a)
    old = answer(job.id, "Old answer.")
    with pytest.raises(Forbidden):
        relay.regenerate(sid, old.position, user(b))
    new_job = relay.regenerate(sid, old.position, user(a))
    new = answer(new_job.id, "New answer.")
    story = db.session.get(Story, sid)
    assert [t.text for t in reads.visible_turns(story)] == ["A paragraph.", "New answer."]
    history = reads.visible_turns(story, include_hidden=True)
    assert [(t.text, t.hidden, t.hidden_reason) for t in history][1] == (
        "Old answer.",
        True,
        "regenerated",
    )
    assert new.reply_to_id == human.id and new.position == 3


def test_regenerate_only_the_latest_turn(f):
    """Is regenerating an older AI turn refused?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    _, job = write(sid, a)
    first_ai = answer(job.id)
    _, job = write(sid, b)
    answer(job.id)
    with pytest.raises(Conflict) as exc:
        relay.regenerate(sid, first_ai.position, user(a))
    assert exc.value.code == "not_latest"


def test_failed_job_can_be_retried_and_story_is_not_stuck(f):
    """After a failed generation, can the writer retry and others carry on?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    human, job = write(sid, a)
    jobs.claim_job(job.id, "test")
    jobs.fail_job(job.id, FinishReason.EMPTY)
    retry = relay.regenerate(sid, human.position, user(a))
    answer(retry.id)
    _, job = write(sid, b)
    assert job.status == "queued"


def test_complete_job_is_idempotent(f):
    """Does delivering the same job twice append its AI turn once?"""
    a = f.user()
    sid = f.story(a)
    _, job = write(sid, a)
    first = answer(job.id, "Once.")
    second = jobs.complete_job(job.id, "Twice?")
    assert first.id == second.id
    assert db.session.query(Turn).filter_by(kind="ai").count() == 1


def test_attempt_cap_fails_the_job(f):
    """Does a job that keeps dying end failed after MAX_JOB_ATTEMPTS?"""
    a = f.user()
    sid = f.story(a)
    _, job = write(sid, a)
    for _ in range(jobs.MAX_JOB_ATTEMPTS):
        assert jobs.claim_job(job.id, "w") is not None
        assert jobs.requeue_job(job.id)
    assert jobs.claim_job(job.id, "w") is None
    db.session.refresh(job)
    assert job.status == "failed" and job.finish_reason == "worker_lost"
    assert job.error == jobs.MESSAGES[FinishReason.WORKER_LOST].format(attempts=3)


def test_hidden_turns_leave_the_story(f):
    """Do hidden turns disappear for readers but stay for admins?"""
    a, mod = f.user(), f.user(role="moderator")
    sid = f.story(a)
    human, job = write(sid, a, "Spam spam.")
    answer(job.id)
    relay.set_hidden(human.id, user(mod), True, "spam")
    story = db.session.get(Story, sid)
    assert [t.kind for t in reads.visible_turns(story)] == ["ai"]
    assert len(reads.visible_turns(story, include_hidden=True)) == 2


def test_locked_story_and_suspended_writer_are_refused(f):
    """Are locked stories and suspended writers refused without storing anything?"""
    a, b = f.user(), f.user()
    sid = f.story(a)
    relay.set_status(sid, user(a), "locked")
    with pytest.raises(Conflict) as exc:
        write(sid, b)
    assert exc.value.code == "story_locked"
    relay.set_status(sid, user(a), "open")
    user(b).is_suspended = True
    db.session.commit()
    with pytest.raises(Forbidden):
        write(sid, b)
    assert db.session.query(Turn).count() == 0


def test_bad_input_stores_nothing(f, app):
    """Do empty, oversized and wrongly typed inputs fail cleanly?"""
    a = f.user()
    sid = f.story(a)
    limit = app.config["PARAGRAPH_MAX_CHARS"]
    for text, position in [("   ", 0), ("x" * (limit + 1), 0), (42, 0), ("ok", "one"), ("ok", -1)]:
        with pytest.raises(Invalid):
            relay.append_human_turn(sid, user(a), text, position)
    with pytest.raises(NotFound):
        relay.append_human_turn(9999, user(a), "ok", 0)
    with pytest.raises(Invalid):
        relay.create_story(user(a), {"title": "", "language": "en", "opening": "x"})
    with pytest.raises(Invalid):
        relay.create_story(user(a), {"title": "t", "language": "fr", "opening": "x"})
    assert db.session.query(Turn).count() == 0
    assert db.session.query(Story).count() == 1


def test_full_queue_is_503(f, app):
    """Does a full generation queue refuse new turns with 503 and store nothing?"""
    app.config["QUEUE_MAX"] = 1
    a, b = f.user(), f.user()
    s1, s2 = f.story(a), f.story(a)
    write(s1, a)
    with pytest.raises(Unavailable):
        write(s2, b)
    assert db.session.query(Turn).filter_by(story_id=s2).count() == 0


def test_turn_limit(f, app):
    """Does a story stop taking turns at TURNS_PER_STORY_MAX?"""
    app.config["TURNS_PER_STORY_MAX"] = 2
    a, b = f.user(), f.user()
    sid = f.story(a)
    _, job = write(sid, a)
    answer(job.id)
    with pytest.raises(Conflict) as exc:
        write(sid, b)
    assert exc.value.code == "story_full"


def test_a_story_is_created_even_after_another_writer_moved_past_the_read_snapshot(app, factory):
    """On SQLite a read transaction that another connection has written past cannot turn
    into a write ("database is locked" at once): does create_story start a write instead?"""
    from sqlalchemy import select, text

    from app.accounts.models import User
    from app.extensions import db
    from app.stories.relay import create_story

    owner_id = factory.user()
    with app.app_context():
        owner = db.session.execute(select(User).where(User.id == owner_id)).scalar_one()
        with db.engine.connect() as other:  # another writer commits after our snapshot
            other.execute(text("UPDATE users SET session_version = session_version + 1"))
            other.commit()
        story = create_story(owner, {"title": "Snapshot", "language": "en", "opening": "Go."})
        assert story.id and story.owner_id == owner_id
