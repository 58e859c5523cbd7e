"""Rows of the writers' tools (issue 17): lore entries, a job's candidates, votes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.models import utcnow
from app.extensions import db


class LoreEntry(db.Model):
    """A lorebook entry: its text enters the prompt when one of its keys appears in the
    recent turns."""

    __tablename__ = "lore_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    keys: Mapped[str] = mapped_column(String(300))  # comma-separated
    text: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Candidate(db.Model):
    """One of a job's continuations: the chosen one becomes the AI turn, the others stay
    as alternates readers can read."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_candidates_job_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("generation_jobs.id", ondelete="CASCADE"), index=True
    )
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    index: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    held: Mapped[bool] = mapped_column(default=False)
    held_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    # The AI turn made from it, once chosen (or switched to).
    turn_id: Mapped[int | None] = mapped_column(
        ForeignKey("turns.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CandidateVote(db.Model):
    """A participant's vote for one of a job's candidates (choice_mode "vote")."""

    __tablename__ = "candidate_votes"
    __table_args__ = (UniqueConstraint("job_id", "user_id", name="uq_votes_job_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("generation_jobs.id", ondelete="CASCADE"))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    index: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
