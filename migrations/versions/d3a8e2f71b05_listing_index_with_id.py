"""listing index: (status, published_at, id), so a cursor page's seek and order use one index

Revision ID: d3a8e2f71b05
Revises: c97f95c636d5
Create Date: 2026-11-28 00:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd3a8e2f71b05'
down_revision = 'c97f95c636d5'
branch_labels = None
depends_on = None


def upgrade():
    # The new one first, then the old one (on PostgreSQL both in one transaction).
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.create_index('ix_post_status_published_at_id', ['status', 'published_at', 'id'], unique=False)
        batch_op.drop_index('ix_post_status_published_at')


def downgrade():
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.create_index('ix_post_status_published_at', ['status', 'published_at'], unique=False)
        batch_op.drop_index('ix_post_status_published_at_id')
