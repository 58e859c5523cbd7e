"""Read-only views for moderators: the queue, health stats and the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select

from app.accounts.models import User, utcnow
from app.extensions import db
from app.moderation.models import AuditEntry, FilterRule, Report
from app.stories.models import JOB_STATES, GenerationJob, JobStatus, Story, Turn
from app.stories.serialize import turn_dict

QUEUE_LIMIT = 100


def moderation_queue(limit: int = QUEUE_LIMIT) -> list[dict[str, Any]]:
    """Reported and held turns, oldest first, each with the turns around it."""
    first_report = (
        select(Report.turn_id, func.min(Report.created_at).label("since"), func.count().label("n"))
        .where(Report.status == "open")
        .group_by(Report.turn_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Turn, first_report.c.since, first_report.c.n)
        .outerjoin(first_report, first_report.c.turn_id == Turn.id)
        .where(or_(first_report.c.turn_id.is_not(None), Turn.held & ~Turn.hidden))
        .order_by(func.coalesce(first_report.c.since, Turn.created_at), Turn.id)
        .limit(limit)
    ).all()
    return [_queue_item(turn, since, count or 0) for turn, since, count in rows]


def _queue_item(turn: Turn, since: Any, report_count: int) -> dict[str, Any]:
    reports = db.session.scalars(
        select(Report).where(Report.turn_id == turn.id, Report.status == "open").order_by(Report.id)
    ).all()
    around = db.session.scalars(
        select(Turn)
        .where(
            Turn.story_id == turn.story_id,
            Turn.position.between(turn.position - 1, turn.position + 1),
        )
        .order_by(Turn.position)
    ).all()
    return {
        "turn": turn_dict(turn),
        "story": {"id": turn.story.id, "title": turn.story.title},
        "since": (since or turn.created_at).isoformat() + "Z",
        "report_count": report_count,
        "reports": [{"reporter": r.reporter.username, "reason": r.reason} for r in reports],
        "context": [turn_dict(t) for t in around if t.id != turn.id],
    }


def stats() -> dict[str, Any]:
    """The operator's first look at health."""
    week_ago = utcnow() - timedelta(days=7)
    jobs = dict(
        db.session.execute(
            select(GenerationJob.status, func.count()).group_by(GenerationJob.status)
        ).all()
    )
    return {
        "stories": db.session.scalar(select(func.count(Story.id))),
        "turns": db.session.scalar(select(func.count(Turn.id))),
        "users": db.session.scalar(select(func.count(User.id))),
        "active_writers_7d": db.session.scalar(
            select(func.count(func.distinct(Turn.author_id))).where(
                Turn.kind == "human", Turn.created_at >= week_ago
            )
        ),
        "jobs": {state: jobs.get(state, 0) for state in JOB_STATES},
        "open_reports": db.session.scalar(
            select(func.count(Report.id)).where(Report.status == "open")
        ),
        "generation_latency_s": _latency(),
        "filter_rules": db.session.scalar(select(func.count(FilterRule.id))),
    }


def _latency(sample: int = 200) -> dict[str, float | None]:
    rows = db.session.execute(
        select(GenerationJob.created_at, GenerationJob.finished_at)
        .where(GenerationJob.status == JobStatus.DONE, GenerationJob.finished_at.is_not(None))
        .order_by(GenerationJob.id.desc())
        .limit(sample)
    ).all()
    seconds = sorted((done - made).total_seconds() for made, done in rows)
    if not seconds:
        return {"p50": None, "p95": None, "samples": 0}
    pick = lambda q: round(seconds[min(len(seconds) - 1, int(q * len(seconds)))], 3)  # noqa: E731
    return {"p50": pick(0.5), "p95": pick(0.95), "samples": len(seconds)}


def audit_log(
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[AuditEntry], int]:
    """Audit entries newest first, filtered; returns (page of entries, total)."""
    query = select(AuditEntry)
    if actor:
        query = query.join(User, AuditEntry.actor_id == User.id).where(User.username == actor)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))  # "turn": all
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    entries = db.session.scalars(
        query.order_by(AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(entries), total


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "actor": entry.actor.username if entry.actor else None,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "reason": entry.reason,
        "details": entry.details,
        "created_at": entry.created_at.isoformat() + "Z",
    }


def reported_by(user_id: int | None, turn_ids: list[int]) -> set[int]:
    """Which of these turns the user has an open report on (the page says "Reported")."""
    if user_id is None or not turn_ids:
        return set()
    rows = db.session.scalars(
        select(Report.turn_id).where(
            Report.reporter_id == user_id, Report.status == "open", Report.turn_id.in_(turn_ids)
        )
    )
    return set(rows)
