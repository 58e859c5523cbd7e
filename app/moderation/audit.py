"""The audit log's one writer: every moderation action, and every change a moderator
makes through a story's own settings, adds exactly one row in its own transaction."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from app.accounts.models import User
from app.errors import Invalid
from app.extensions import db
from app.moderation.models import AuditEntry

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
    """A moderator's reason: a string of at most REASON_MAX_CHARS, required for some actions."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(_("reason must be a string."), field="reason")
    value = value.strip()
    if required and not value:
        raise Invalid(_("Give a reason."), field="reason")
    if len(value) > REASON_MAX_CHARS:
        raise Invalid(
            _("reason is limited to %(max)s characters.", max=REASON_MAX_CHARS), field="reason"
        )
    return value
