"""Moderation actions, each writing exactly one audit row in the same transaction.

Called alike by the admin dashboard, the /api/v1/admin namespace and the CLI.
Actions on stories and turns go through the relay (app/stories/relay.py) with
the moderator's reason, and the relay records their audit rows; this module
records the rest (reports dismissed, users suspended, roles, filter lists).
Reports themselves are taken in app/moderation/reports.py.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import ROLES, User
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.moderation.audit import clean_reason, record
from app.moderation.filter import validate_action, validate_rule
from app.moderation.models import FilterRule
from app.moderation.reports import resolve_reports
from app.stories import relay
from app.stories.models import Story, Turn
from app.stories.rules import require_admin, require_moderator

# --- turns -------------------------------------------------------------------------


def hide_turn(turn_id: int, actor: User, reason: Any) -> Turn:
    """Hide a turn from readers and the model's context; its open reports are actioned
    (the relay checks the actor is a moderator)."""
    return relay.set_hidden(turn_id, actor, True, clean_reason(reason, required=True))


def restore_turn(turn_id: int, actor: User, reason: Any) -> Turn:
    """Restore a hidden or held turn; its open reports are dismissed."""
    return relay.set_hidden(turn_id, actor, False, clean_reason(reason))


def dismiss_reports(turn_id: int, actor: User, reason: Any) -> int:
    require_moderator(actor)
    reason = clean_reason(reason)
    if db.session.get(Turn, turn_id) is None:
        raise NotFound(_("Turn %(id)s does not exist.", id=turn_id))
    closed = resolve_reports(turn_id, actor, "dismissed")
    if not closed:
        db.session.rollback()
        raise Conflict(_("This turn has no open reports."), code="no_open_reports")
    record(actor, "report.dismiss", "turn", turn_id, reason, reports_closed=closed)
    db.session.commit()
    return closed


# --- stories and users ------------------------------------------------------------


def set_story_status(story_id: int, actor: User, status: str, reason: Any) -> Story:
    require_moderator(actor)
    reason = clean_reason(reason)
    if status not in ("open", "locked", "finished"):
        raise Invalid(_("status must be open, locked or finished."), field="status")
    return relay.set_status(story_id, actor, status, reason=reason)


def delete_story(story_id: int, actor: User, reason: Any) -> None:
    require_moderator(actor)
    reason = clean_reason(reason, required=True)
    relay.delete_story(story_id, actor, reason=reason)


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("User %(id)s does not exist.", id=user_id))
    return user


def suspend_user(user_id: int, actor: User, suspended: bool, reason: Any) -> User:
    """Suspend (sessions and tokens end at once) or unsuspend a user."""
    require_moderator(actor)
    reason = clean_reason(reason, required=suspended)
    user = _user(user_id)
    if user.id == actor.id:
        raise Conflict(_("You cannot suspend yourself."), code="self_action")
    if user.is_admin and not actor.is_admin:
        raise Forbidden(_("Only admins can suspend admins."))
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
        raise Invalid(
            _("%(field)s must be one of: %(choices)s.", field="role", choices=", ".join(ROLES)),
            field="role",
        )
    user = _user(user_id)
    if user.id == actor.id:
        raise Conflict(_("You cannot change your own role."), code="self_action")
    record(actor, "user.role", "user", user.id, reason, old=user.role, new=role)
    user.role = role
    db.session.commit()
    return user


# --- filter lists -----------------------------------------------------------------


def add_filter_rule(
    actor: User, language: Any, kind: Any, value: Any, action: Any = "reject"
) -> FilterRule:
    """Add a word or pattern with what it does to a writer's paragraph (audited)."""
    require_admin(actor)
    language, kind, value = validate_rule(language, kind, value)
    action = validate_action(kind, action)
    duplicate = db.session.scalars(
        select(FilterRule).where(
            FilterRule.language == language, FilterRule.kind == kind, FilterRule.value == value
        )
    ).first()
    if duplicate is not None:
        raise Conflict(_("That rule exists already."), code="duplicate_rule")
    rule = FilterRule(language=language, kind=kind, value=value, action=action)
    db.session.add(rule)
    try:
        db.session.flush()
    except IntegrityError:  # the same rule added a moment ago by a concurrent request
        db.session.rollback()
        raise Conflict(_("That rule exists already."), code="duplicate_rule") from None
    details = {"language": language, "kind": kind, "value": value, "filter_action": action}
    record(actor, "filter.add", "filter_rule", rule.id, "", **details)
    db.session.commit()
    return rule


def set_filter_action(actor: User, rule_id: int, action: Any) -> FilterRule:
    """Choose what a rule does to a writer's paragraph (audited with the old and new action)."""
    require_admin(actor)
    rule = _rule(rule_id)
    action = validate_action(rule.kind, action)
    if action != rule.action:
        details = {"value": rule.value, "old": rule.action, "new": action}
        record(actor, "filter.action", "filter_rule", rule.id, "", **details)
        rule.action = action
    db.session.commit()
    return rule


def _rule(rule_id: int) -> FilterRule:
    rule = db.session.get(FilterRule, rule_id)
    if rule is None:
        raise NotFound(_("Filter rule %(id)s does not exist.", id=rule_id))
    return rule


def delete_filter_rule(actor: User, rule_id: int) -> None:
    require_admin(actor)
    rule = _rule(rule_id)
    record(
        actor,
        "filter.delete",
        "filter_rule",
        rule.id,
        "",
        language=rule.language,
        kind=rule.kind,
        value=rule.value,
        filter_action=rule.action,
    )
    db.session.delete(rule)
    db.session.commit()
