"""job finish reason

Revision ID: b7c4d2e91f30
Revises: 96e13e9a2d15
Create Date: 2026-12-02 01:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7c4d2e91f30'
down_revision = '96e13e9a2d15'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('finish_reason', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.drop_column('finish_reason')
