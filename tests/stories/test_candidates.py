"""Candidates (app/stories/candidates.py): offering, choosing, voting, the deadline,
alternates, and their races, on SQLite and PostgreSQL. The runner is off: these tests
play its part with claim_job and offer_candidates (one test runs run_job on a fake
generator)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from app.accounts.models import User
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.generation.decoding import StopReason
from app.generation.generator import Generation
from app.runners import execute
from app.stories import candidates, deadlines, jobs, reads, relay
from app.stories.candidates import choose, offer_candidates, settle_overdue_choices
from app.stories.models import (
    Candidate,
    FinishReason,
    GenerationJob,
    JobStatus,
    Story,
    Turn,
)
from app.stories.serialize import turn_dicts
from tests.conftest import Factory

SECOND = timedelta(seconds=1)
THREE = [("The first way.", None), ("The second way.", None), ("The third way.", None)]


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


def job_of(job_id: int) -> GenerationJob:
    found = db.session.get(GenerationJob, job_id)
    db.session.refresh(found)
    return found


def write(story_id: int, user_id: int, text: str = "A paragraph.") -> int:
    """A writer's paragraph; its job claimed (running), as a runner would. The job's id."""
    _, job = relay.append_human_turn(story_id, user(user_id), text, story(story_id).last_position)
    assert jobs.claim_job(job.id, "test") is not None
    return job.id


def offered(story_id: int, user_id: int, outputs=THREE) -> int:  # noqa: ANN001
    job_id = write(story_id, user_id)
    assert offer_candidates(job_id, list(outputs)) == "choosing"
    return job_id


def texts(story_id: int) -> list[str]:
    return [t.text for t in reads.visible_turns(story(story_id))]


def test_story_fields_are_validated(app, f):
    """Are candidates 1-4, choice_mode writer|vote and choice_seconds whole minutes?"""
    a = f.user()
    sid = f.story(a)
    assert (story(sid).candidates, story(sid).choice_mode, story(sid).choice_seconds) == (
        1,
        "writer",
        600,
    )
    bad_fields = [{"candidates": 5}, {"candidates": 0}, {"choice_mode": "dice"}]
    bad_fields += [{"choice_seconds": 90}, {"choice_seconds": 0}, {"choice_seconds": 86460}]
    for bad in bad_fields:
        with pytest.raises(Invalid):
            relay.update_story(sid, user(a), bad)
    relay.update_story(
        sid, user(a), {"candidates": 3, "choice_mode": "vote", "choice_seconds": 120}
    )
    assert (story(sid).candidates, story(sid).choice_mode, story(sid).choice_seconds) == (
        3,
        "vote",
        120,
    )


def test_a_pending_choice_holds_the_story(app, f):
    """While candidates wait, is no human turn taken, nothing regenerated, nothing requeued?"""
    a, b = f.user(), f.user()
    sid = f.story(a, candidates=3)
    job_id = offered(sid, a)
    job = job_of(job_id)
    assert job.status == JobStatus.CHOOSING and job.candidates == 3 and job.choose_by is not None
    with pytest.raises(Conflict) as caught:
        relay.append_human_turn(sid, user(b), "Me next.", story(sid).last_position)
    assert caught.value.code == "choice_pending"
    with pytest.raises(Conflict):
        relay.regenerate(sid, story(sid).last_position, user(a))
    assert job_id not in jobs.unfinished_job_ids()  # crash recovery leaves it alone
    assert jobs.claim_job(job_id, "test", reclaim_running=True) is None
    assert jobs.complete_job(job_id, "A stray answer.") is None
    assert texts(sid) == ["A paragraph."]


def test_the_writer_chooses_and_the_others_stay_alternates(app, f):
    """Does the chosen candidate become the AI turn, once, by its writer only?"""
    a, b = f.user(), f.user()
    sid = f.story(a, candidates=3)
    job_id = offered(sid, a)
    detail = candidates.job_detail(job_of(job_id), user(a))
    assert [c["index"] for c in detail["candidates"]] == [0, 1, 2] and detail["may_choose"]
    with pytest.raises(Conflict) as caught:
        choose(job_id, 1, user(b))
    assert caught.value.code == "not_chooser"
    with pytest.raises(NotFound):
        choose(job_id, 3, user(a))
    done = choose(job_id, 1, user(a))
    assert done["status"] == "done" and [c["chosen"] for c in done["candidates"]] == [0, 1, 0]
    assert texts(sid) == ["A paragraph.", "The second way."]
    with pytest.raises(Conflict) as caught:
        choose(job_id, 2, user(a))
    assert caught.value.code == "already_chosen"
    state = candidates.page_state(story(sid), user(b))
    assert state["choice"] is None and not state["may_switch"]
    assert [alt["text"] for alt in state["alternates"]] == [t for t, _ in THREE]
    relay.append_human_turn(sid, user(b), "Me next.", story(sid).last_position)  # moves on


def test_the_deadline_takes_the_first_candidate(app, f):
    """Does the room move on when nobody chooses, through the one deadline scheduler?"""
    a = f.user()
    sid = f.story(a, candidates=2, choice_seconds=60)
    job_id = offered(sid, a, THREE[:2])
    due = job_of(job_id).choose_by
    assert settle_overdue_choices(due - SECOND) == 0
    assert "app.stories.candidates:settle_overdue_choices" in deadlines.SWEEPS
    assert deadlines.run_deadlines(now=due + SECOND) == 1
    assert texts(sid) == ["A paragraph.", "The first way."]
    assert job_of(job_id).finish_reason == FinishReason.ANSWERED
    assert settle_overdue_choices(due + SECOND) == 0


def test_held_candidates_are_never_offered(app, f):
    """Is a candidate the filter caught kept held, and one readable one answered at once?"""
    a, b = f.user(), f.user()
    sid = f.story(a, candidates=3)
    job_id = write(sid, a)
    outputs = [("Bad words.", "filter: hold"), ("Fine words.", None), ("Worse.", "filter: hold")]
    assert offer_candidates(job_id, outputs) == "done"
    assert texts(sid) == ["A paragraph.", "Fine words."]
    assert [c["text"] for c in candidates.job_detail(job_of(job_id))["candidates"]] == [
        "Fine words."
    ]
    job_id = write(sid, b)
    assert offer_candidates(job_id, [("Bad.", "filter: hold"), ("Worse.", "filter: x")]) == "held"
    assert len(texts(sid)) == 3  # the held answer: readers don't see it


def test_a_vote_closes_when_everyone_voted_and_ties_go_to_the_writer(app, f):
    """Vote mode: does the last vote close it, with a tie decided by the writer's vote?"""
    a, b, c = f.user(), f.user(), f.user()
    sid = f.story(a, candidates=3, choice_mode="vote")
    relay.join_story(sid, user(b))
    job_id = offered(sid, a)
    choose(job_id, 2, user(b))
    assert choose(job_id, 0, user(b))["status"] == "choosing"  # a changed vote
    with pytest.raises(Conflict):
        choose(job_id, 1, user(c))  # not a participant
    detail = choose(job_id, 2, user(a))  # 1 vote each for 0 and 2: the writer's wins
    assert detail["status"] == "done"
    assert texts(sid) == ["A paragraph.", "The third way."]


def test_a_vote_nobody_finished_is_tallied_at_the_deadline(app, f):
    """Does the deadline take the most voted candidate, not the first?"""
    a, b, c = f.user(), f.user(), f.user()
    sid = f.story(a, candidates=3, choice_mode="vote")
    relay.join_story(sid, user(b))
    relay.join_story(sid, user(c))
    job_id = offered(sid, a)
    choose(job_id, 1, user(b))
    choose(job_id, 1, user(c))
    assert settle_overdue_choices(job_of(job_id).choose_by + SECOND) == 1
    assert texts(sid) == ["A paragraph.", "The second way."]


def test_switching_to_an_alternate_keeps_the_numbering(app, f):
    """Does switching change the answer's text in place, only while it is the latest?"""
    a, b = f.user(), f.user()
    sid = f.story(a, candidates=3)
    job_id = offered(sid, a)
    choose(job_id, 0, user(a))
    before = story(sid).last_position
    with pytest.raises(Forbidden):
        candidates.switch_alternate(job_id, 2, user(b))
    turn = candidates.switch_alternate(job_id, 2, user(a))
    assert turn.text == "The third way." and turn.position == before == story(sid).last_position
    assert [t["number"] for t in turn_dicts(reads.visible_turns(story(sid)))] == [1, 2]
    alternates = candidates.page_state(story(sid), user(a))["alternates"]
    assert [alt["current"] for alt in alternates] == [False, False, True]
    relay.append_human_turn(sid, user(b), "Me next.", story(sid).last_position)
    with pytest.raises(Conflict) as caught:
        candidates.switch_alternate(job_id, 1, user(a))
    assert caught.value.code == "not_latest"


def test_regenerate_adds_an_alternate_instead_of_destroying_the_answer(app, f):
    """A plain story: after Regenerate, can the writer switch back to the first answer?"""
    a = f.user()
    sid = f.story(a)
    first = write(sid, a)
    jobs.complete_job(first, "The first answer.")
    second = relay.regenerate(sid, story(sid).last_position, user(a))
    assert jobs.claim_job(second.id, "test") is not None
    jobs.complete_job(second.id, "The second answer.")
    alternates = candidates.page_state(story(sid), user(a))["alternates"]
    assert [(alt["text"], alt["current"]) for alt in alternates] == [
        ("The first answer.", False),
        ("The second answer.", True),
    ]
    candidates.switch_alternate(first, 0, user(a))
    assert texts(sid) == ["A paragraph.", "The first answer."]
    numbers = [t["number"] for t in turn_dicts(reads.visible_turns(story(sid)))]
    assert numbers == [1, 2]


def test_hiding_the_paragraph_withdraws_the_choice(app, f):
    """A moderator hides the answered paragraph: does the pending choice end?"""
    a, mod = f.user(), f.user(role="moderator")
    sid = f.story(a, candidates=2)
    job_id = offered(sid, a, THREE[:2])
    paragraph = job_of(job_id).reply_to_id
    relay.set_hidden(paragraph, user(mod), True, "spam")
    assert job_of(job_id).finish_reason == FinishReason.WITHDRAWN
    with pytest.raises(Conflict):
        choose(job_id, 0, user(a))


def test_run_job_writes_candidates_in_one_pass(app, f, monkeypatch):
    """Does the runner ask the generator for N rows at once and offer what it wrote?"""

    class Fake:
        calls: list[int] = []

        def run_many(self, model_key, prompt, params, n, on_delta=None, should_stop=None):  # noqa: ANN001
            self.calls.append(n)
            for i in range(n):
                on_delta(i, f"Row {i}.")
            return [Generation(f"Row {i}.", [1], StopReason.EOS) for i in range(n)]

    fake = Fake()
    monkeypatch.setattr(execute, "_generator_for", lambda key: fake)
    a = f.user()
    sid = f.story(a, candidates=3)
    _, job = relay.append_human_turn(sid, user(a), "Go on.", 0)
    assert execute.run_job(job.id) == "choosing"
    assert fake.calls == [3]
    rows = db.session.scalars(select(Candidate.text).where(Candidate.job_id == job.id)).all()
    assert sorted(rows) == ["Row 0.", "Row 1.", "Row 2."]


def test_the_api_lists_and_chooses_and_hides_other_rooms_jobs(app, f):
    """GET /jobs/<id> lists the candidates; choose and switch answer 200, 409, 422, and a
    job of a story the caller may not read is a 404."""
    a, b = f.user(), f.user()
    sid = f.story(a, candidates=2, visibility="private")
    job_id = offered(sid, a, THREE[:2])
    writer, stranger = f.headers(a), f.headers(b)
    client = app.test_client()

    def call(url: str, headers: dict, body: dict | None = None):  # noqa: ANN202
        db.session.rollback()  # the requests share this test's app context: start afresh
        g.pop("_login_user", None)
        return (
            client.post(url, json=body, headers=headers)
            if body
            else client.get(url, headers=headers)
        )

    url = f"/api/v1/jobs/{job_id}"
    assert call(f"{url}/choose", stranger, {"index": 0}).status_code == 404
    assert call(url, stranger).status_code == 404
    answer = call(url, writer)
    assert answer.status_code == 200 and len(answer.get_json()["candidates"]) == 2
    assert answer.get_json()["may_choose"] is True and answer.get_json()["status"] == "choosing"
    assert call(f"{url}/choose", writer, {"index": 9}).status_code == 422  # the schema's
    assert call(f"{url}/choose", writer, {"index": 3}).status_code == 404
    answer = call(f"{url}/choose", writer, {"index": 1})
    assert answer.status_code == 200 and answer.get_json()["status"] == "done"
    assert call(f"{url}/choose", writer, {"index": 0}).status_code == 409
    answer = call(f"{url}/switch", writer, {"index": 0})
    assert answer.status_code == 200 and answer.get_json()["text"] == "The first way."
    assert call("/api/v1/jobs/999999/choose", writer, {"index": 0}).status_code == 404


# --- races ---------------------------------------------------------------------------


def _race(app, *works) -> list[object]:  # noqa: ANN001
    """Run the works at once (each in its own thread and session); their results."""
    start = threading.Barrier(len(works))
    results: list[object] = [None] * len(works)

    def run(i: int, work) -> None:  # noqa: ANN001
        with app.app_context():
            start.wait()
            try:
                results[i] = work()
            except (Conflict, NotFound) as exc:
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    db.session.rollback()  # this test's session: see what the threads wrote
    return results


def _ai_turns(story_id: int) -> int:
    return db.session.scalar(
        select(func.count(Turn.id)).where(Turn.story_id == story_id, Turn.kind == "ai")
    )


def test_two_choices_at_once_make_one_turn(app, f):
    """The writer chooses two candidates at once (two tabs): one wins, the other is a 409."""
    a = f.user()
    sid = f.story(a, candidates=3)
    job_id = offered(sid, a)
    results = _race(app, lambda: choose(job_id, 1, user(a)), lambda: choose(job_id, 2, user(a)))
    lost = [r for r in results if isinstance(r, Conflict)]
    won = [r for r in results if isinstance(r, dict)]
    assert len(lost) == 1 and lost[0].code == "already_chosen" and len(won) == 1
    assert _ai_turns(sid) == 1
    chosen = [c["index"] for c in won[0]["candidates"] if c["chosen"]]
    assert texts(sid)[-1] == THREE[chosen[0]][0]


def test_a_vote_closing_while_a_vote_arrives_has_one_outcome(app, f):
    """The deadline sweep and the last vote at once: one AI turn, and a late vote is a 409."""
    a, b = f.user(), f.user()
    sid = f.story(a, candidates=3, choice_mode="vote")
    relay.join_story(sid, user(b))
    job_id = offered(sid, a)
    choose(job_id, 2, user(b))
    due = job_of(job_id).choose_by + SECOND
    results = _race(app, lambda: settle_overdue_choices(due), lambda: choose(job_id, 1, user(a)))
    assert _ai_turns(sid) == 1
    settled, vote = results
    if isinstance(vote, Conflict):  # the sweep came first: b's vote alone won
        assert settled == 1 and texts(sid)[-1] == "The third way."
    else:  # the vote closed it (a tie, to the writer's vote); the sweep found nothing
        assert settled == 0 and vote["status"] == "done" and texts(sid)[-1] == "The second way."
    assert job_of(job_id).status == JobStatus.DONE
