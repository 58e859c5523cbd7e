"""Finding users and stories for the admin dashboard and /api/v1/admin, and their dicts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.accounts.models import User
from app.extensions import db
from app.moderation.models import FilterRule
from app.stories.models import Story

LOOKUP_LIMIT = 50


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def find_users(q: str | None = None, limit: int = LOOKUP_LIMIT) -> list[User]:
    """Users whose name contains `q` (case-insensitive), by name; everyone without `q`."""
    query = select(User).order_by(User.username).limit(limit)
    if q and q.strip():
        query = query.where(func.lower(User.username).like(_like(q.strip()), escape="\\"))
    return list(db.session.scalars(query))


def find_stories(
    q: str | None = None, status: str | None = None, limit: int = LOOKUP_LIMIT
) -> list[Story]:
    """Stories whose title contains `q`, optionally of one status, most recent first."""
    query = select(Story).order_by(Story.updated_at.desc(), Story.id.desc()).limit(limit)
    if q and q.strip():
        query = query.where(func.lower(Story.title).like(_like(q.strip()), escape="\\"))
    if status:
        query = query.where(Story.status == status)
    return list(db.session.scalars(query))


def filter_rules() -> list[FilterRule]:
    return list(
        db.session.scalars(
            select(FilterRule).order_by(FilterRule.language, FilterRule.kind, FilterRule.value)
        )
    )


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "is_suspended": user.is_suspended,
        "created_at": user.created_at.isoformat() + "Z",
    }


def rule_dict(rule: FilterRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "language": rule.language,
        "kind": rule.kind,
        "value": rule.value,
        "action": rule.action,
    }
