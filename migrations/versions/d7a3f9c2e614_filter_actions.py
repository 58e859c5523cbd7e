"""filter rule actions and a story's filter strictness

Revision ID: d7a3f9c2e614
Revises: c5e8a1f40b27
Create Date: 2026-12-06 10:00:00

"""

import os

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d7a3f9c2e614"
down_revision = "c5e8a1f40b27"
branch_labels = None
depends_on = None


def upgrade():
    # The rules keep the behaviour of the retired site-wide FILTER_HUMAN_ACTION setting.
    action = "hold" if os.environ.get("FILTER_HUMAN_ACTION") == "hold" else "reject"
    with op.batch_alter_table("filter_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("action", sa.String(length=16), server_default="reject", nullable=False)
        )
    if action != "reject":
        op.execute(sa.text("UPDATE filter_rules SET action = :action").bindparams(action=action))
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "filter_strictness", sa.String(length=8), server_default="site", nullable=False
            )
        )


def downgrade():
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_column("filter_strictness")
    with op.batch_alter_table("filter_rules", schema=None) as batch_op:
        batch_op.drop_column("action")
