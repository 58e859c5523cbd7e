"""writers' tools: memory, author's note, lore, candidates and votes, banned phrases,
chapters, edits, loop flags, the context a job's model saw

Revision ID: b7e2c4d8f915
Revises: a1d5c9e3f7b2
Create Date: 2026-12-02 16:35:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "b7e2c4d8f915"
down_revision = "a1d5c9e3f7b2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lore_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("keys", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lore_entries_story_id", "lore_entries", ["story_id"])
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("held_reason", sa.String(length=200), nullable=True),
        sa.Column("turn_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["generation_jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["turn_id"], ["turns.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "index", name="uq_candidates_job_index"),
    )
    op.create_index("ix_candidates_job_id", "candidates", ["job_id"])
    op.create_index("ix_candidates_story_id", "candidates", ["story_id"])
    op.create_table(
        "candidate_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["generation_jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "user_id", name="uq_votes_job_user"),
    )
    op.create_index("ix_candidate_votes_story_id", "candidate_votes", ["story_id"])
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("memory", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("authors_note", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("note_depth", sa.Integer(), server_default="3", nullable=False)
        )
        batch_op.add_column(
            sa.Column("memory_access", sa.String(length=16), server_default="owner", nullable=False)
        )
        batch_op.add_column(
            sa.Column("candidates", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("choice_mode", sa.String(length=8), server_default="writer", nullable=False)
        )
        batch_op.add_column(
            sa.Column("choice_seconds", sa.Integer(), server_default="600", nullable=False)
        )
        batch_op.add_column(
            sa.Column("banned_phrases", sa.Text(), server_default="", nullable=False)
        )
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chapter_title", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("flag", sa.String(length=32), nullable=True))
    with op.batch_alter_table("generation_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("candidates", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("choose_by", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("context", sa.Text(), nullable=True))
        batch_op.create_index("ix_generation_jobs_choose_by", ["choose_by"])


def downgrade():
    with op.batch_alter_table("generation_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_generation_jobs_choose_by")
        for column in ("context", "choose_by", "candidates"):
            batch_op.drop_column(column)
    with op.batch_alter_table("turns", schema=None) as batch_op:
        for column in ("flag", "edited_at", "chapter_title"):
            batch_op.drop_column(column)
    with op.batch_alter_table("stories", schema=None) as batch_op:
        for column in (
            "banned_phrases",
            "choice_seconds",
            "choice_mode",
            "candidates",
            "memory_access",
            "note_depth",
            "authors_note",
            "memory",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_candidate_votes_story_id", table_name="candidate_votes")
    op.drop_table("candidate_votes")
    op.drop_index("ix_candidates_story_id", table_name="candidates")
    op.drop_index("ix_candidates_job_id", table_name="candidates")
    op.drop_table("candidates")
    op.drop_index("ix_lore_entries_story_id", table_name="lore_entries")
    op.drop_table("lore_entries")
