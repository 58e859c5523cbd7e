"""Readers' reports of turns: taken from anyone who can see the turn, closed by moderators.

A second report by the same reader counts once while it is open and reopens
it (with the new reason) once a moderator resolved it. Hiding a turn closes
its open reports as actioned, restoring it as dismissed (app/stories/relay.py).
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User, utcnow
from app.errors import NotFound
from app.extensions import db
from app.moderation.audit import clean_reason
from app.moderation.models import Report
from app.stories.access import request_may_read
from app.stories.models import Turn


def report_turn(turn_id: int, reporter: User, reason: Any) -> Report:
    """Report a turn the reporter can see (see the module docstring for repeats)."""
    reason = clean_reason(reason, required=True)
    turn = db.session.get(Turn, turn_id)
    hidden_from_reporter = turn is not None and (
        turn.hidden or (turn.held and turn.author_id != reporter.id)
    )
    unreadable = turn is not None and not request_may_read(turn.story, reporter)
    if turn is None or unreadable or (hidden_from_reporter and not reporter.is_moderator):
        raise NotFound(_("Turn %(id)s does not exist.", id=turn_id))
    existing = _report_by(turn_id, reporter)
    if existing is not None and existing.status == "open":
        return existing
    if existing is not None:  # resolved (say the turn was restored): queue it again
        existing.status, existing.reason, existing.created_at = "open", reason, utcnow()
        existing.resolved_by_id = existing.resolved_at = None
        db.session.commit()
        return existing
    report = Report(turn_id=turn_id, reporter_id=reporter.id, reason=reason)
    db.session.add(report)
    try:
        db.session.commit()
    except IntegrityError:  # the same person's report, sent twice at once: it counts once
        db.session.rollback()
        return _report_by(turn_id, reporter)
    return report


def _report_by(turn_id: int, reporter: User) -> Report | None:
    return db.session.scalars(
        select(Report).where(Report.turn_id == turn_id, Report.reporter_id == reporter.id)
    ).first()


def resolve_reports(turn_id: int, actor: User, status: str) -> int:
    """Close the turn's open reports as `status` (actioned | dismissed); how many."""
    reports = db.session.scalars(
        select(Report).where(Report.turn_id == turn_id, Report.status == "open")
    ).all()
    for report in reports:
        report.status, report.resolved_by_id, report.resolved_at = status, actor.id, utcnow()
    return len(reports)
