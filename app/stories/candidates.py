"""A model turn written as several candidates: offering them, choosing, voting, switching.

A story with `candidates` > 1 gets that many continuations per model turn, written
in one batched pass (app/runners/candidates.py). They are offered here: the job
waits in JobStatus.CHOOSING (the story takes no human turn meanwhile, as with a
pending job) until

- `choice_mode` "writer": the writer of the paragraph they answer picks one, or
- `choice_mode` "vote": the participants vote; every participant having voted
  closes the vote at once, ties go to the writer's vote (else the first of them),

or `choose_by` (`choice_seconds` after they were written) passes: then
settle_overdue_choices (one of app/stories/deadlines.py's sweeps) takes the
writer-mode first candidate or the vote's winner, so the room never stalls on
one person. The chosen one becomes the AI turn; every candidate stays as an
alternate readers can read. While the answer is still the story's latest turn
its writer may switch it to any alternate of the paragraph, a regenerated
answer's included (app/stories/jobs.py keeps each plain answer as an alternate):
the text changes in place, so positions and readers' numbers keep no gaps.
Candidates the content filter caught are kept held: never offered, never shown.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from app.accounts.models import User, utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.live.events import publish
from app.stories.append import fits
from app.stories.jobs import announce_answer, answer_job, await_choice
from app.stories.models import (
    Candidate,
    CandidateVote,
    GenerationJob,
    JobStatus,
    Participant,
    Story,
    Turn,
)
from app.stories.reads import lock_story, pending_job
from app.stories.serialize import _iso, job_dict, turn_dict
from app.stories.validation import CANDIDATES_MAX, CHOICE_MODES  # noqa: F401 (the API's)

SWEEP_BATCH = 200  # choices settled per sweep; the rest wait for the next one


# --- reading -------------------------------------------------------------------------


def job_candidates(job: GenerationJob) -> list[Candidate]:
    """The job's candidates readers may read (the filter's held ones left out), in order."""
    return list(
        db.session.scalars(
            select(Candidate)
            .where(Candidate.job_id == job.id, Candidate.held.is_(False))
            .order_by(Candidate.index)
        )
    )


def _tally(job: GenerationJob) -> Counter[int]:
    rows = db.session.scalars(select(CandidateVote.index).where(CandidateVote.job_id == job.id))
    return Counter(rows)


def job_detail(job: GenerationJob, viewer: User | None = None) -> dict[str, Any]:
    """job_dict plus its candidates ([{index, text, votes, chosen}]) and how it is chosen."""
    story = db.session.get(Story, job.story_id)
    votes = _tally(job) if story.choice_mode == "vote" else Counter()
    rows = job_candidates(job) if job.candidates > 1 or job.status == JobStatus.DONE else []
    return {
        **job_dict(job),
        "candidates": [
            {
                "index": c.index,
                "text": c.text,
                "votes": votes[c.index],
                "chosen": c.turn_id is not None,
            }
            for c in rows
        ],
        "choice_mode": story.choice_mode,
        "choose_by": _iso(job.choose_by) if job.status == JobStatus.CHOOSING else None,
        "may_choose": viewer is not None and may_choose(job, story, viewer),
    }


def may_choose(job: GenerationJob, story: Story, user: User) -> bool:
    """Whether `user` picks (writer mode) or votes (vote mode) on the job's pending choice."""
    if job.status != JobStatus.CHOOSING or not user.is_authenticated or user.is_suspended:
        return False
    if story.choice_mode == "vote":
        return user.id in _voters(job, story)
    return job.reply_to is not None and job.reply_to.author_id == user.id


def _voters(job: GenerationJob, story: Story) -> set[int]:
    ids = set(
        db.session.scalars(select(Participant.user_id).where(Participant.story_id == story.id))
    )
    if job.reply_to is not None and job.reply_to.author_id is not None:
        ids.add(job.reply_to.author_id)
    return ids


def page_state(story: Story, user: User | None) -> dict[str, Any]:
    """The story page's candidate picker (a pending choice) and the latest answer's
    alternates with whether the viewer may switch to them."""
    job = pending_job(story)
    choice = job_detail(job, user) if job is not None and job.status == JobStatus.CHOOSING else None
    return {"choice": choice, **_alternates_state(story, user)}


def _alternates_state(story: Story, user: User | None) -> dict[str, Any]:
    latest = _latest_answer(story)
    if latest is None:
        return {"alternates": [], "may_switch": False}
    rows = _alternates_of(latest.reply_to_id)
    if len(rows) < 2:
        return {"alternates": [], "may_switch": False}
    return {
        "alternates": [
            {
                "job_id": c.job_id,
                "index": c.index,
                "text": c.text,
                "current": c.turn_id == latest.id,
            }
            for c in rows
        ],
        "may_switch": user is not None and _may_switch(story, latest, user),
    }


def _alternates_of(paragraph_id: int | None) -> list[Candidate]:
    """Every readable candidate answering the paragraph, over all its jobs, oldest first."""
    return list(
        db.session.scalars(
            select(Candidate)
            .join(GenerationJob, GenerationJob.id == Candidate.job_id)
            .where(GenerationJob.reply_to_id == paragraph_id, Candidate.held.is_(False))
            .order_by(Candidate.job_id, Candidate.index)
        )
    )


def _latest_answer(story: Story) -> Turn | None:
    """The story's last turn when it is a visible AI answer."""
    turn = db.session.scalars(
        select(Turn).where(Turn.story_id == story.id, Turn.position == story.last_position)
    ).first()
    if turn is None or turn.kind != "ai" or turn.hidden or turn.held:
        return None
    return turn


def _may_switch(story: Story, answer: Turn, user: User) -> bool:
    if story.status != "open" or user.is_suspended or pending_job(story) is not None:
        return False
    paragraph = db.session.get(Turn, answer.reply_to_id) if answer.reply_to_id else None
    return user.is_moderator or (paragraph is not None and paragraph.author_id == user.id)


# --- the runner's side -----------------------------------------------------------------


def offer_candidates(job_id: int, outputs: list[tuple[str, str | None]]) -> str:
    """Store a running job's candidates ((text, held_reason) each) and wait for a choice.

    Returns "choosing"; "done" or "held" when fewer than two are readable (one is
    answered at once, or the first held one is stored held); "skipped" when the
    job is gone or no longer running (withdrawn, say)."""
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        return "skipped"
    story = lock_story(job.story_id)
    db.session.refresh(job)
    if job.status != JobStatus.RUNNING or not outputs:
        db.session.rollback()
        return "skipped"
    rows = [
        Candidate(job_id=job.id, story_id=story.id, index=i, text=text,
                  held=reason is not None,
                  held_reason=fits(reason, Candidate.held_reason) if reason else None)
        for i, (text, reason) in enumerate(outputs)
    ]  # fmt: skip
    db.session.add_all(rows)
    readable = [c for c in rows if not c.held]
    if len(readable) < 2:
        pick = readable[0] if readable else rows[0]
        turn = answer_job(job, pick.text, pick.held_reason)
        db.session.flush()
        pick.turn_id = turn.id
        db.session.commit()
        announce_answer(job, turn)
        return "held" if turn.held else "done"
    await_choice(job, utcnow() + timedelta(seconds=story.choice_seconds))
    db.session.commit()
    publish(story.id, "candidates_ready", job=job_detail(job))
    return "choosing"


# --- choosing, voting, settling ---------------------------------------------------------


def choose(job_id: int, index: Any, user: User) -> dict[str, Any]:
    """The writer picks candidate `index` (it becomes the AI turn); in vote mode a
    participant's vote for it, which closes the vote once everyone voted.

    409 for anyone not allowed to choose and once the choice is made; 404 for an
    index that names no readable candidate, and for a job the caller may not read.
    Returns the job's detail (job_detail)."""
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        raise NotFound(_("Job %(id)s does not exist.", id=job_id))
    story = lock_story(job.story_id)
    db.session.refresh(job)
    try:
        if job.status != JobStatus.CHOOSING:
            raise Conflict(_("This choice has already been made."), code="already_chosen")
        if not may_choose(job, story, user):
            raise Conflict(_("You may not choose this turn's candidate."), code="not_chooser")
        candidate = _readable(job, index)
        if story.choice_mode == "vote":
            _record_vote(job, story, user, candidate.index)
            db.session.flush()
            if _tally(job).total() < len(_voters(job, story)):
                db.session.commit()
                detail = job_detail(job, user)
                publish(story.id, "candidate_voted", job=job_dict(job), votes=_vote_list(job))
                return detail
            candidate = _winner(job, story)
        turn = _take(job, candidate)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _announce(job, turn, candidate)
    return job_detail(job, user)


def _readable(job: GenerationJob, index: Any) -> Candidate:
    if not isinstance(index, int) or isinstance(index, bool):
        raise Invalid(_("index must be an integer."), field="index")
    candidate = db.session.scalars(
        select(Candidate).where(
            Candidate.job_id == job.id, Candidate.index == index, Candidate.held.is_(False)
        )
    ).first()
    if candidate is None:  # the schema admits 0-3: a job with fewer has no such one (404)
        raise NotFound(
            _("There is no candidate %(index)s to choose.", index=index), code="no_candidate"
        )
    return candidate


def _record_vote(job: GenerationJob, story: Story, user: User, index: int) -> None:
    vote = db.session.scalars(
        select(CandidateVote).where(
            CandidateVote.job_id == job.id, CandidateVote.user_id == user.id
        )
    ).first()
    if vote is None:
        db.session.add(
            CandidateVote(job_id=job.id, story_id=story.id, user_id=user.id, index=index)
        )
    else:
        vote.index, vote.created_at = index, utcnow()


def _vote_list(job: GenerationJob) -> list[dict[str, int]]:
    return [{"index": i, "votes": n} for i, n in sorted(_tally(job).items())]


def _winner(job: GenerationJob, story: Story) -> Candidate:
    """Writer mode, or a vote nobody cast: the first readable candidate. Otherwise the
    most voted; a tie goes to the writer's vote when it is one of them, else the first."""
    readable = job_candidates(job)
    tally = _tally(job)
    if story.choice_mode != "vote" or not tally:
        return readable[0]
    top = max(tally[c.index] for c in readable)
    tied = [c for c in readable if tally[c.index] == top]
    writer_id = job.reply_to.author_id if job.reply_to is not None else None
    writer_vote = db.session.scalars(
        select(CandidateVote.index).where(
            CandidateVote.job_id == job.id, CandidateVote.user_id == writer_id
        )
    ).first()
    return next((c for c in tied if c.index == writer_vote), tied[0])


def _take(job: GenerationJob, candidate: Candidate) -> Turn:
    turn = answer_job(job, candidate.text)
    db.session.flush()
    candidate.turn_id = turn.id
    job.choose_by = None
    return turn


def _announce(job: GenerationJob, turn: Turn, candidate: Candidate) -> None:
    publish(job.story_id, "candidate_chosen", job=job_dict(job), index=candidate.index)
    announce_answer(job, turn)


def settle_overdue_choices(now: datetime) -> int:
    """Take the first candidate (or the vote's winner) of every choice whose deadline
    passed by `now`; how many were settled. Safe to run twice at once: each is
    re-checked under its story's lock."""
    ids = list(
        db.session.scalars(
            select(GenerationJob.id)
            .where(GenerationJob.status == JobStatus.CHOOSING, GenerationJob.choose_by <= now)
            .order_by(GenerationJob.choose_by)
            .limit(SWEEP_BATCH)
        )
    )
    db.session.rollback()
    settled = 0
    for job_id in ids:
        job = db.session.get(GenerationJob, job_id)
        if job is None:
            continue
        story = lock_story(job.story_id)
        db.session.refresh(job)
        if job.status != JobStatus.CHOOSING or job.choose_by is None or job.choose_by > now:
            db.session.rollback()
            continue
        candidate = _winner(job, story)
        turn = _take(job, candidate)
        db.session.commit()
        _announce(job, turn, candidate)
        settled += 1
    return settled


# --- switching the answer to an alternate ------------------------------------------------


def switch_alternate(job_id: int, index: Any, user: User) -> Turn:
    """Make alternate `index` of job `job_id` the text of its paragraph's answer, while
    that answer is the story's latest turn; by the paragraph's writer or a moderator.

    The turn keeps its position (readers' numbering has no gap); the alternate it
    showed stays one. 409 when the answer is no longer the latest, 403 for a caller
    who may not switch it, 404 for an index naming no readable alternate."""
    job = db.session.get(GenerationJob, job_id)
    if job is None:
        raise NotFound(_("Job %(id)s does not exist.", id=job_id))
    story = lock_story(job.story_id)
    try:
        answer = _latest_answer(story)
        if answer is None or answer.reply_to_id != job.reply_to_id:
            raise Conflict(
                _("Only the latest answer can be switched to an alternate."), code="not_latest"
            )
        if not _may_switch(story, answer, user):
            raise Forbidden(_("Only the writer of the paragraph it answers can switch its answer."))
        candidate = _readable(job, index)
        for old in _alternates_of(answer.reply_to_id):
            if old.turn_id == answer.id:
                old.turn_id = None
        candidate.turn_id = answer.id
        answer.text = candidate.text
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    publish(story.id, "turn_switched", turn=turn_dict(answer), job_id=job.id, index=candidate.index)
    return answer
