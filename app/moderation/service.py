"""Moderation actions, each writing exactly one audit row in the same transaction.

Called alike by the admin dashboard, the /api/v1/admin namespace and the CLI.
Reports are taken from any signed-in reader; moderators hide, restore,
dismiss, lock/unlock/finish/delete stories and suspend users; admins also
change roles and edit the filter lists.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import ROLES, User, utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.generation.events import publish
from app.moderation.filter import validate_rule
from app.moderation.models import AuditEntry, FilterRule, Report
from app.stories import relay
from app.stories.models import PENDING_STATES, GenerationJob, Story, Turn
from app.stories.serialize import job_dict

REASON_MAX_CHARS = 500


def record(
    actor: User | None,
    action: str,
    target_type: str,
    target_id: int | None,
    reason: str = "",
    **details: Any,
) -> AuditEntry:
    """Add one audit row to the session (committed with the action it records)."""
    entry = AuditEntry(
        actor_id=actor.id if actor else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        reason=reason,
        details=details,
    )
    db.session.add(entry)
    return entry


def clean_reason(value: Any, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid("reason must be a string.", field="reason")
    value = value.strip()
    if required and not value:
        raise Invalid("Give a reason.", field="reason")
    if len(value) > REASON_MAX_CHARS:
        raise Invalid(f"reason is limited to {REASON_MAX_CHARS} characters.", field="reason")
    return value


def require_moderator(user: User) -> None:
    if not user.is_moderator:
        raise Forbidden("Moderators only.")


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("Admins only.")


# --- reports -------------------------------------------------------------------


def report_turn(turn_id: int, reporter: User, reason: Any) -> Report:
    """Report a turn the reporter can see; a second report by the same user counts once
    while it is open, and reopens it (with the new reason) once a moderator resolved it."""
    reason = clean_reason(reason, required=True)
    turn = db.session.get(Turn, turn_id)
    hidden_from_reporter = turn is not None and (
        turn.hidden or (turn.held and turn.author_id != reporter.id)
    )
    if turn is None or (hidden_from_reporter and not reporter.is_moderator):
        raise NotFound(f"Turn {turn_id} does not exist.")
    existing = db.session.scalars(
        select(Report).where(Report.turn_id == turn_id, Report.reporter_id == reporter.id)
    ).first()
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
        return db.session.scalars(
            select(Report).where(Report.turn_id == turn_id, Report.reporter_id == reporter.id)
        ).one()
    return report


def _resolve_reports(turn_id: int, actor: User, status: str) -> int:
    reports = db.session.scalars(
        select(Report).where(Report.turn_id == turn_id, Report.status == "open")
    ).all()
    for report in reports:
        report.status, report.resolved_by_id, report.resolved_at = status, actor.id, utcnow()
    return len(reports)


# --- turns -------------------------------------------------------------------------


def hide_turn(turn_id: int, actor: User, reason: Any) -> Turn:
    """Hide a turn from readers and the model's context; its open reports are actioned."""
    return _set_turn_hidden(turn_id, actor, True, reason)


def restore_turn(turn_id: int, actor: User, reason: Any) -> Turn:
    """Restore a hidden or held turn; its open reports are dismissed."""
    return _set_turn_hidden(turn_id, actor, False, reason)


def _set_turn_hidden(turn_id: int, actor: User, hidden: bool, reason: Any) -> Turn:
    require_moderator(actor)
    reason = clean_reason(reason, required=hidden)  # hiding needs a reason, restoring may not
    action, report_status = ("turn.hide", "actioned") if hidden else ("turn.restore", "dismissed")
    withdrawn: list[GenerationJob] = []

    def audit(story: Story, turn: Turn) -> None:
        if hidden:
            withdrawn.extend(_withdraw_answer(turn))
        else:
            _refuse_second_answer(turn)
        closed = _resolve_reports(turn.id, actor, report_status)
        record(
            actor,
            action,
            "turn",
            turn.id,
            reason,
            story_id=story.id,
            position=turn.position,
            reports_closed=closed,
        )

    try:
        turn = relay.set_hidden(turn_id, actor, hidden, reason, audit=audit)
    except Conflict:
        db.session.rollback()  # refused inside the story's write transaction
        raise
    for job in withdrawn:
        publish(job.story_id, "generation_failed", job=job_dict(job))
    return turn


def _withdraw_answer(turn: Turn) -> list[GenerationJob]:
    """A hidden paragraph is not answered: its pending job fails, and the runner's text,
    if it is still writing, is dropped when it tries to complete (complete_job)."""
    jobs = list(
        db.session.scalars(
            select(GenerationJob).where(
                GenerationJob.reply_to_id == turn.id, GenerationJob.status.in_(PENDING_STATES)
            )
        )
    )
    for job in jobs:
        job.status, job.finished_at = "failed", utcnow()
        job.error = "The paragraph was hidden by a moderator before the model answered it."
    return jobs


def _refuse_second_answer(turn: Turn) -> None:
    """One visible AI answer per paragraph: an answer replaced by a regenerated one stays hidden
    while its replacement is visible."""
    if turn.kind != "ai" or turn.reply_to_id is None:
        return
    other = db.session.scalars(
        select(Turn.position).where(
            Turn.reply_to_id == turn.reply_to_id,
            Turn.kind == "ai",
            Turn.id != turn.id,
            Turn.hidden.is_(False),
        )
    ).first()
    if other is not None:
        raise Conflict(
            f"The paragraph this answers already has a visible answer (turn at position "
            f"{other}); hide that one first.",
            code="already_answered",
        )


def dismiss_reports(turn_id: int, actor: User, reason: Any) -> int:
    require_moderator(actor)
    reason = clean_reason(reason)
    if db.session.get(Turn, turn_id) is None:
        raise NotFound(f"Turn {turn_id} does not exist.")
    closed = _resolve_reports(turn_id, actor, "dismissed")
    if not closed:
        db.session.rollback()
        raise Conflict("This turn has no open reports.", code="no_open_reports")
    record(actor, "report.dismiss", "turn", turn_id, reason, reports_closed=closed)
    db.session.commit()
    return closed


# --- stories and users ------------------------------------------------------------


def set_story_status(story_id: int, actor: User, status: str, reason: Any) -> Story:
    require_moderator(actor)
    reason = clean_reason(reason)
    if status not in ("open", "locked", "finished"):
        raise Invalid("status must be open, locked or finished.", field="status")
    action = {"open": "story.unlock", "locked": "story.lock", "finished": "story.finish"}[status]
    return relay.set_status(
        story_id, actor, status, audit=lambda s: record(actor, action, "story", s.id, reason)
    )


def delete_story(story_id: int, actor: User, reason: Any) -> None:
    require_moderator(actor)
    reason = clean_reason(reason, required=True)
    relay.delete_story(
        story_id,
        actor,
        audit=lambda s: record(actor, "story.delete", "story", s.id, reason, title=s.title),
    )


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


def suspend_user(user_id: int, actor: User, suspended: bool, reason: Any) -> User:
    """Suspend (sessions and tokens end at once) or unsuspend a user."""
    require_moderator(actor)
    reason = clean_reason(reason, required=suspended)
    user = _user(user_id)
    if user.id == actor.id:
        raise Conflict("You cannot suspend yourself.", code="self_action")
    if user.is_admin and not actor.is_admin:
        raise Forbidden("Only admins can suspend admins.")
    user.is_suspended = suspended
    if suspended:
        user.session_version += 1
        for token in list(user.tokens):
            db.session.delete(token)
    record(actor, "user.suspend" if suspended else "user.unsuspend", "user", user.id, reason)
    db.session.commit()
    return user


def set_role(user_id: int, actor: User, role: Any, reason: Any) -> User:
    require_admin(actor)
    reason = clean_reason(reason)
    if role not in ROLES:
        raise Invalid(f"role must be one of: {', '.join(ROLES)}.", field="role")
    user = _user(user_id)
    if user.id == actor.id:
        raise Conflict("You cannot change your own role.", code="self_action")
    record(actor, "user.role", "user", user.id, reason, old=user.role, new=role)
    user.role = role
    db.session.commit()
    return user


# --- filter lists -----------------------------------------------------------------


def add_filter_rule(actor: User, language: Any, kind: Any, value: Any) -> FilterRule:
    require_admin(actor)
    language, kind, value = validate_rule(language, kind, value)
    duplicate = db.session.scalars(
        select(FilterRule).where(
            FilterRule.language == language, FilterRule.kind == kind, FilterRule.value == value
        )
    ).first()
    if duplicate is not None:
        raise Conflict("That rule exists already.", code="duplicate_rule")
    rule = FilterRule(language=language, kind=kind, value=value)
    db.session.add(rule)
    try:
        db.session.flush()
    except IntegrityError:  # the same rule added a moment ago by a concurrent request
        db.session.rollback()
        raise Conflict("That rule exists already.", code="duplicate_rule") from None
    record(
        actor, "filter.add", "filter_rule", rule.id, "", language=language, kind=kind, value=value
    )
    db.session.commit()
    return rule


def delete_filter_rule(actor: User, rule_id: int) -> None:
    require_admin(actor)
    rule = db.session.get(FilterRule, rule_id)
    if rule is None:
        raise NotFound(f"Filter rule {rule_id} does not exist.")
    record(
        actor,
        "filter.delete",
        "filter_rule",
        rule.id,
        "",
        language=rule.language,
        kind=rule.kind,
        value=rule.value,
    )
    db.session.delete(rule)
    db.session.commit()
