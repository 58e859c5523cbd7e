"""Turn deadlines for round robin (app/stories/skips.py), with a controllable clock: the
sweep is called with explicit times, on SQLite and PostgreSQL. The runner is off: these
tests play its part with claim_job / complete_job."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import User, utcnow
from app.errors import Conflict
from app.extensions import db
from app.notifications.models import Notification
from app.stories import deadlines, jobs, reads, relay
from app.stories.models import Participant, Story, Turn, TurnSkip
from app.stories.skips import skip_overdue
from tests.conftest import Factory

SECOND = timedelta(seconds=1)


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


def round_robin(f: Factory, owner: int, *members: int, **fields) -> int:
    """A round-robin story with a minute per turn; `members` join after the owner."""
    fields = {"policy": "round_robin", "turn_seconds": 60, **fields}
    sid = f.story(owner, **fields)
    for member in members:
        relay.join_story(sid, user(member))
    return sid


def due(story_id: int) -> datetime:
    when = story(story_id).turn_due_at
    assert when is not None
    return when


def overdue(story_id: int) -> int:
    """Run the sweep a second after the story's deadline; how many it skipped."""
    return skip_overdue(due(story_id) + SECOND)


def write(story_id: int, user_id: int, text: str = "A paragraph.") -> Turn:
    """The writer's paragraph and the model's answer to it."""
    _, job = relay.append_human_turn(story_id, user(user_id), text, story(story_id).last_position)
    assert jobs.claim_job(job.id, "test") is not None
    return jobs.complete_job(job.id, "The model answers.")


def order(story_id: int) -> list[int]:
    return [p.user_id for p in story(story_id).participants]


def skips_of(story_id: int, user_id: int) -> int:
    return db.session.scalars(
        select(Participant.skips).where(
            Participant.story_id == story_id, Participant.user_id == user_id
        )
    ).one()


def test_no_skip_before_the_deadline(f):
    """Is the writer left alone while their time lasts?"""
    a, b = f.user(), f.user()
    sid = round_robin(f, a, b)
    assert skip_overdue(due(sid) - SECOND) == 0
    assert db.session.query(TurnSkip).count() == 0
    assert reads.next_writer_id(story(sid)) == a


def test_a_skip_hands_the_turn_on(f):
    """After the deadline, is the writer skipped (recorded), and does the next one write?"""
    a, b, c = f.user(), f.user(), f.user()
    sid = round_robin(f, a, b, c)
    before = due(sid)
    assert overdue(sid) == 1
    skip = db.session.scalars(select(TurnSkip)).one()
    assert (skip.user_id, skip.next_user_id, skip.outcome, skip.position) == (a, b, "skipped", 0)
    assert reads.next_writer_id(story(sid)) == b
    assert skips_of(sid, a) == 1
    assert due(sid) > before  # b's time starts at the skip
    with pytest.raises(Conflict) as exc:
        relay.append_human_turn(sid, user(a), "Too late.", 0)
    assert exc.value.code == "not_your_turn"
    write(sid, b)
    assert reads.next_writer_id(story(sid)) == c  # the round goes on from b


def test_the_next_writer_is_told(f):
    """Does the writer the skip hands the turn to get a "your turn" notification?"""
    a, b = f.user(), f.user()
    sid = round_robin(f, a, b)
    overdue(sid)
    kinds = db.session.scalars(select(Notification.kind).where(Notification.user_id == b)).all()
    assert "your_turn" in kinds


def test_skip_limit_moves_the_writer_to_the_end(f):
    """Skipped skip_limit times in a row, does the writer go to the end of the round?"""
    a, b, c, d = f.user(), f.user(), f.user(), f.user()
    sid = round_robin(f, a, b, c, skip_limit=2, skip_action="move")
    for _ in range(3):  # a, b, c each miss once; the turn is a's again
        assert overdue(sid) == 1
    assert reads.next_writer_id(story(sid)) == a
    assert overdue(sid) == 1  # a's second miss in a row
    last = db.session.scalars(select(TurnSkip).order_by(TurnSkip.id.desc())).first()
    assert (last.user_id, last.outcome, last.next_user_id) == (a, "moved", b)
    assert order(sid) == [b, c, a]
    assert skips_of(sid, a) == 0 and skips_of(sid, b) == 1
    assert reads.next_writer_id(story(sid)) == b
    relay.join_story(sid, user(d))
    assert order(sid) == [b, c, a, d]  # a later joiner still comes after the moved writer
    overdue(sid)  # b's second miss in a row: behind everyone, d included
    assert order(sid) == [c, a, d, b]


def test_skip_limit_removes_the_writer(f):
    """With "remove", does the writer leave the round, and may they join again?"""
    a, b, c = f.user(), f.user(), f.user()
    sid = round_robin(f, a, b, c, skip_limit=1, skip_action="remove")
    assert overdue(sid) == 1
    assert db.session.scalars(select(TurnSkip.outcome)).one() == "removed"
    assert order(sid) == [b, c]
    assert story(sid).owner_id == a  # still the owner, out of the round
    with pytest.raises(Conflict) as exc:
        relay.append_human_turn(sid, user(a), "Back.", 0)
    assert exc.value.code == "not_a_participant"
    write(sid, b)
    relay.join_story(sid, user(a))
    assert order(sid) == [b, c, a]  # back, at the end of the round


def test_writing_resets_the_count(f):
    """Does a writer who writes start their count of missed turns again?"""
    a, b = f.user(), f.user()
    sid = round_robin(f, a, b, skip_limit=2)
    overdue(sid)  # a misses: b's turn
    overdue(sid)  # b misses: a's turn
    assert skips_of(sid, a) == 1
    write(sid, a)
    assert skips_of(sid, a) == 0
    assert reads.next_writer_id(story(sid)) == b  # no longer the skip's rule: the round's
    overdue(sid)  # b misses again: a's turn
    overdue(sid)  # a misses once: no move
    assert skips_of(sid, a) == 1 and skips_of(sid, b) == 0  # b moved (2 in a row); a not
    assert db.session.scalars(select(TurnSkip.outcome).order_by(TurnSkip.id)).all() == [
        "skipped",
        "skipped",
        "moved",
        "skipped",
    ]


def test_the_clock_restarts_with_every_turn(f):
    """Does the next writer's time start when the model's answer lands?"""
    a, b = f.user(), f.user()
    sid = round_robin(f, a, b)
    found = story(sid)
    found.turn_due_at = datetime(2020, 1, 1)  # a's time long gone, but a writes first
    db.session.commit()
    write(sid, a)
    assert due(sid) > utcnow() + timedelta(seconds=50)
    assert skip_overdue(utcnow()) == 0  # b's own time has not run out


def test_a_pending_job_means_no_skip(f):
    """While the model writes, is nobody skipped (and the clock started again)?"""
    a, b = f.user(), f.user()
    sid = round_robin(f, a, b)
    relay.append_human_turn(sid, user(a), "Mine.", 0)  # the job stays queued
    when = due(sid) + SECOND
    assert skip_overdue(when) == 0
    assert db.session.query(TurnSkip).count() == 0
    assert due(sid) > when


def test_a_lone_writer_is_never_skipped(f):
    """With one participant, does the deadline only start again?"""
    a = f.user()
    sid = round_robin(f, a)
    when = due(sid) + SECOND
    assert skip_overdue(when) == 0
    assert db.session.query(TurnSkip).count() == 0
    assert due(sid) == when + timedelta(seconds=60)


@pytest.mark.parametrize(
    "fields", [{"policy": "open", "turn_seconds": 60}, {"policy": "round_robin"}]
)
def test_only_round_robin_with_a_time_is_skipped(f, fields):
    """Is a story that is not round robin, or has no time per turn, never skipped?"""
    a, b = f.user(), f.user()
    sid = f.story(a, **fields)
    relay.join_story(sid, user(b))
    assert story(sid).turn_due_at is None
    found = story(sid)
    found.turn_due_at = datetime(2020, 1, 1)  # as if left over from other settings
    db.session.commit()
    assert skip_overdue(datetime(2030, 1, 1)) == 0
    assert db.session.query(TurnSkip).count() == 0


def test_a_locked_story_has_no_deadline(f):
    """Does locking a story stop its clock?"""
    a, b = f.user(), f.user()
    sid = round_robin(f, a, b)
    relay.set_status(sid, user(a), "locked")
    assert story(sid).turn_due_at is None
    assert skip_overdue(datetime(2030, 1, 1)) == 0


def test_one_broken_story_does_not_stop_the_others(f, monkeypatch):
    """Does the sweep go on past a story whose skip fails?"""
    from app.stories import skips

    a, b = f.user(), f.user()
    first, second = round_robin(f, a, b), round_robin(f, b, a)
    real = skips.skip_if_due

    def flaky(story_id: int, now: datetime) -> int:
        if story_id == first:
            raise RuntimeError("boom")
        return real(story_id, now)

    monkeypatch.setattr(skips, "skip_if_due", flaky)
    assert skip_overdue(max(due(first), due(second)) + SECOND) == 1
    assert db.session.scalars(select(TurnSkip.story_id)).all() == [second]


def test_the_scheduler_runs_the_sweep(f):
    """Does run_deadlines (the embedded runner's and Celery's) skip the writer?"""
    a, b = f.user(), f.user()
    sid = round_robin(f, a, b)
    assert "app.stories.skips:skip_overdue" in deadlines.SWEEPS
    assert deadlines.run_deadlines(now=due(sid) + SECOND) == 1
    assert reads.next_writer_id(story(sid)) == b


def test_the_skip_is_shown_to_everyone(app, f):
    """Do the page, its state and the API show the skip and the deadline?"""
    a, b = f.user("alice"), f.user("bobby")
    sid = round_robin(f, a, b)
    overdue(sid)
    client = app.test_client()
    page = client.get(f"/stories/{sid}").get_data(as_text=True)
    assert "alice&#39;s turn was skipped (time ran out)." in page
    assert "bobby&#39;s turn ends at" in page
    state = client.get(f"/stories/{sid}/state.json").get_json()
    assert [s["username"] for s in state["skips"]] == ["alice"]
    assert state["skips"][0]["outcome"] == "skipped"
    assert state["turn_due_at"].endswith("Z")
    body = client.get(f"/api/v1/stories/{sid}").get_json()
    assert body["turn_due_at"] == state["turn_due_at"]
    round_ = client.get(f"/api/v1/stories/{sid}/participants").get_json()
    assert round_["next_writer"] == "bobby"


def test_the_skip_reads_in_korean(app, f):
    """Does a Korean reader see the skip and the deadline in Korean?"""
    a, b = f.user("alice"), f.user("bobby")
    sid = round_robin(f, a, b, skip_limit=1)
    overdue(sid)
    client = app.test_client()
    page = client.get(f"/stories/{sid}", headers={"Accept-Language": "ko"}).get_data(as_text=True)
    assert "alice 님이 차례를 연속으로 너무 많이 놓쳐 순서의 맨 끝으로 옮겨졌습니다." in page
    assert "bobby 님의 차례는" in page
