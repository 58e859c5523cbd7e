"""Report, AuditEntry and FilterRule rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User, utcnow
from app.extensions import db

REPORT_STATES = ("open", "dismissed", "actioned")


class Report(db.Model):
    """A reader's report of a turn; one per (turn, reporter), however often they click."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("turn_id", "reporter_id", name="uq_reports_turn_reporter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)

    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])


class AuditEntry(db.Model):
    """One moderation action: who, what, on what, when, why. Never updated or deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    target_type: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    actor: Mapped[User | None] = relationship()


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _audit_is_append_only(*_args: Any) -> None:
    raise RuntimeError("The audit log is append-only.")


class FilterRule(db.Model):
    """A word or a regular expression the content filter looks for, per language."""

    __tablename__ = "filter_rules"
    __table_args__ = (UniqueConstraint("language", "kind", "value", name="uq_filter_rule"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(8))  # "en", "ko" or "*" (every language)
    kind: Mapped[str] = mapped_column(String(8))  # "word" | "pattern"
    value: Mapped[str] = mapped_column(String(200))
    # What it does to a writer's paragraph: "reject", "hold" or "allow_in_fiction"
    # (app/moderation/filter.py ACTIONS); model output is checked against every rule.
    action: Mapped[str] = mapped_column(String(16), default="reject", server_default="reject")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
