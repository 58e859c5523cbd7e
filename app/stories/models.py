"""Story, Participant, Turn and GenerationJob rows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User, utcnow
from app.extensions import db

LANGUAGES = ("en", "ko")
POLICIES = ("open", "round_robin")
STATUSES = ("open", "locked", "finished")
# Who reads (app/stories/access.py): listed for all, anyone with the link, participants only.
VISIBILITIES = ("public", "unlisted", "private")
# Who writes (app/stories/rules.py): anyone signed in, those who joined, those invited.
WRITE_ACCESS = ("anyone", "participants", "invited")
# What a round-robin story does with a writer skipped `skip_limit` times in a row.
SKIP_ACTIONS = ("move", "remove")


class JobStatus(StrEnum):
    """A GenerationJob's state; app/stories/jobs.py holds every transition between them."""

    QUEUED = "queued"
    RUNNING = "running"
    CHOOSING = "choosing"  # its candidates are written; a writer or a vote picks one
    DONE = "done"
    FAILED = "failed"


class FinishReason(StrEnum):
    """Why a job ended: done as answered or held, failed for one of four reasons."""

    ANSWERED = "answered"  # done: the AI turn is in the story
    HELD = "held"  # done: the content filter held the AI turn for review
    EMPTY = "empty"  # failed: the model wrote nothing usable
    MODEL_ERROR = "model_error"  # failed: the model could not be loaded or run
    WORKER_LOST = "worker_lost"  # failed: its worker died on every attempt
    WITHDRAWN = "withdrawn"  # failed: the paragraph it answers was hidden


JOB_STATES = tuple(JobStatus)
PENDING_STATES = (JobStatus.QUEUED, JobStatus.RUNNING)  # a runner's work (claim, recovery)
# The story waits on these: no human turn meanwhile (a choice is no runner's work).
WAITING_STATES = (*PENDING_STATES, JobStatus.CHOOSING)


class Story(db.Model):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    model_key: Mapped[str] = mapped_column(String(64))
    opening: Mapped[str] = mapped_column(Text)
    policy: Mapped[str] = mapped_column(String(16), default="open")
    preset: Mapped[str] = mapped_column(String(16), default="balanced")
    max_new_tokens: Mapped[int] = mapped_column(default=80)
    # The owner's content filter setting: "site" (the site's actions), or no looser than
    # "hold" or "reject" (app/moderation/filter.py STORY_STRICTNESS).
    filter_strictness: Mapped[str] = mapped_column(String(8), default="site", server_default="site")
    status: Mapped[str] = mapped_column(String(16), default="open")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Number of turns ever appended (hidden ones included): positions run 1..last_position.
    last_position: Mapped[int] = mapped_column(default=0)
    # Bumped with every change a reader of the story could see (app/stories/revision.py):
    # the story's ETags are made from it.
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    visibility: Mapped[str] = mapped_column(String(16), default="public", server_default="public")
    # The unlisted link's secret (app/stories/access.py): never the sequential id.
    share_token: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    write_access: Mapped[str] = mapped_column(String(16), default="anyone", server_default="anyone")
    # Round robin: seconds the writer whose turn it is has before they are skipped (None:
    # no deadline); when it passes (turn_due_at), app/stories/skips.py skips them.
    turn_seconds: Mapped[int | None] = mapped_column(default=None)
    turn_due_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    skip_limit: Mapped[int] = mapped_column(default=3, server_default="3")
    skip_action: Mapped[str] = mapped_column(String(8), default="move", server_default="move")
    # A fork (app/stories/fork.py): the story and the position it was started from.
    forked_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), default=None, index=True
    )
    forked_from_position: Mapped[int | None] = mapped_column(default=None)
    # Writers' tools (issue 17): memory pinned atop every prompt, the author's note
    # `note_depth` paragraphs above the end, who edits them ("owner" | "participants"),
    # candidates per model turn (1-4) chosen by "writer" or "vote" within choice_seconds,
    # and banned phrases (one per line) the sampler backs off from.
    memory: Mapped[str] = mapped_column(Text, default="", server_default="")
    authors_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    note_depth: Mapped[int] = mapped_column(default=3, server_default="3")
    memory_access: Mapped[str] = mapped_column(String(16), default="owner", server_default="owner")
    candidates: Mapped[int] = mapped_column(default=1, server_default="1")
    choice_mode: Mapped[str] = mapped_column(String(8), default="writer", server_default="writer")
    choice_seconds: Mapped[int] = mapped_column(default=600, server_default="600")
    banned_phrases: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    owner: Mapped[User] = relationship()
    turns: Mapped[list[Turn]] = relationship(
        back_populates="story", order_by="Turn.position", cascade="all, delete-orphan"
    )
    participants: Mapped[list[Participant]] = relationship(
        order_by="[Participant.seat, Participant.id]", cascade="all, delete-orphan"
    )
    tags: Mapped[list[StoryTag]] = relationship(
        order_by="StoryTag.name", cascade="all, delete-orphan"
    )


class Participant(db.Model):
    """A writer who joined a story; join order drives the round-robin policy."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("story_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Round-robin order is (seat, id): join order; a writer moved to the end takes seat 0
    # while everyone else steps one seat down (app/stories/skips.py), so later joiners
    # still come after them.
    seat: Mapped[int] = mapped_column(default=0, server_default="0")
    # Turn deadlines missed in a row (reset when they write).
    skips: Mapped[int] = mapped_column(default=0, server_default="0")
    # Joined through an invitation (an "invited only" story's writers).
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="SET NULL"), default=None
    )

    user: Mapped[User] = relationship()


class StoryTag(db.Model):
    """A tag the owner chose for a story (lower-case, one word or a short phrase)."""

    __tablename__ = "story_tags"
    __table_args__ = (UniqueConstraint("story_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32), index=True)


class Invitation(db.Model):
    """A revocable invite link: its holder becomes a participant (app/stories/rooms.py)."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    max_uses: Mapped[int | None] = mapped_column(default=None)  # None: any number
    uses: Mapped[int] = mapped_column(default=0, server_default="0")
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    created_by: Mapped[User] = relationship()


class TurnSkip(db.Model):
    """A round-robin writer skipped when their turn's deadline passed; shown to all."""

    __tablename__ = "turn_skips"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The story's last_position when they were skipped, and who holds the turn after it.
    position: Mapped[int]
    next_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # "skipped", or "moved" / "removed" when this skip reached the story's skip_limit.
    outcome: Mapped[str] = mapped_column(String(8), default="skipped")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class Turn(db.Model):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("story_id", "position", name="uq_turns_story_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(8))  # "human" | "ai"
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    # For an AI turn: the human turn it answers.
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id"), default=None)
    model_key: Mapped[str | None] = mapped_column(String(64), default=None)
    hidden: Mapped[bool] = mapped_column(default=False)
    # Held by the content filter: only its writer and moderators see it until reviewed.
    held: Mapped[bool] = mapped_column(default=False)
    held_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    hidden_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    hidden_at: Mapped[datetime | None] = mapped_column(default=None)
    # The owner marks a chapter's start at this turn (EPUB export's chapters).
    chapter_title: Mapped[str | None] = mapped_column(String(200), default=None)
    # Its writer edited it (the text before is kept, hidden, as a turn of its own).
    edited_at: Mapped[datetime | None] = mapped_column(default=None)
    # A model turn the loop guard flagged ("loop") after one regeneration.
    flag: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    story: Mapped[Story] = relationship(back_populates="turns")
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])

    @property
    def credit(self) -> str:
        if self.kind == "ai":
            return f"the model ({self.model_key})" if self.model_key else "the model"
        return self.author.username if self.author else "unknown"


class GenerationJob(db.Model):
    """One durable request for one AI turn; the source of truth in every run mode."""

    __tablename__ = "generation_jobs"
    __table_args__ = (Index("ix_jobs_story_status", "story_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    reply_to_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    finish_reason: Mapped[str | None] = mapped_column(String(16), default=None)
    # Set in the transaction that marks the job done: appending is idempotent through it.
    turn_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id"), default=None)
    worker: Mapped[str | None] = mapped_column(String(120), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Candidates asked for (1: a plain answer), and when a pending choice is settled.
    candidates: Mapped[int] = mapped_column(default=1, server_default="1")
    choose_by: Mapped[datetime | None] = mapped_column(default=None, index=True)
    # What the model saw (JSON: prompt, memory, lore, note, cut turns, model, preset,
    # parameters, seed), for the context viewer.
    context: Mapped[str | None] = mapped_column(Text, default=None)

    story: Mapped[Story] = relationship()
    reply_to: Mapped[Turn] = relationship(foreign_keys=[reply_to_id])
    turn: Mapped[Turn | None] = relationship(foreign_keys=[turn_id])

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATES


from app.stories.tool_models import Candidate, CandidateVote, LoreEntry  # noqa: E402, F401
