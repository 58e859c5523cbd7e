"""story rooms: visibility, who writes, invitations, turn deadlines and skips, forks, tags

Revision ID: f3b8d2a61c47
Revises: e1a4c7b9d203
Create Date: 2026-12-02 15:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "f3b8d2a61c47"
down_revision = "e1a4c7b9d203"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index("ix_invitations_story_id", "invitations", ["story_id"])
    op.create_table(
        "story_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("story_id", "name"),
    )
    op.create_index("ix_story_tags_name", "story_tags", ["name"])
    op.create_table(
        "turn_skips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("next_user_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["next_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_turn_skips_story_id", "turn_skips", ["story_id"])
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("visibility", sa.String(length=16), server_default="public", nullable=False)
        )
        batch_op.add_column(sa.Column("share_token", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("write_access", sa.String(length=16), server_default="anyone", nullable=False)
        )
        batch_op.add_column(sa.Column("turn_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("turn_due_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("skip_limit", sa.Integer(), server_default="3", nullable=False)
        )
        batch_op.add_column(
            sa.Column("skip_action", sa.String(length=8), server_default="move", nullable=False)
        )
        batch_op.add_column(sa.Column("forked_from_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("forked_from_position", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_stories_share_token", ["share_token"])
        batch_op.create_index("ix_stories_turn_due_at", ["turn_due_at"])
        batch_op.create_index("ix_stories_forked_from_id", ["forked_from_id"])
        batch_op.create_foreign_key(
            "fk_stories_forked_from_id", "stories", ["forked_from_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seat", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("skips", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("invitation_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_participants_invitation_id",
            "invitations",
            ["invitation_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_constraint("fk_participants_invitation_id", type_="foreignkey")
        batch_op.drop_column("invitation_id")
        batch_op.drop_column("skips")
        batch_op.drop_column("seat")
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_constraint("fk_stories_forked_from_id", type_="foreignkey")
        batch_op.drop_index("ix_stories_forked_from_id")
        batch_op.drop_index("ix_stories_turn_due_at")
        batch_op.drop_constraint("uq_stories_share_token", type_="unique")
        for column in (
            "forked_from_position",
            "forked_from_id",
            "skip_action",
            "skip_limit",
            "turn_due_at",
            "turn_seconds",
            "write_access",
            "share_token",
            "visibility",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_turn_skips_story_id", table_name="turn_skips")
    op.drop_table("turn_skips")
    op.drop_index("ix_story_tags_name", table_name="story_tags")
    op.drop_table("story_tags")
    op.drop_index("ix_invitations_story_id", table_name="invitations")
    op.drop_table("invitations")
