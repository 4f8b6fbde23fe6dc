"""comment notify_replies: the commenter asked to be mailed replies (blogapp/notify/)

Revision ID: a9c3e1d7f214
Revises: f14a5e7c2b90
Create Date: 2026-12-04 23:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a9c3e1d7f214'
down_revision = 'f14a5e7c2b90'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_replies', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('notify_replies')
