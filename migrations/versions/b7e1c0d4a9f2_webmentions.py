"""webmentions: response type and author photo on comments, a status token on linkback log rows

Revision ID: b7e1c0d4a9f2
Revises: a366d358c39d
Create Date: 2026-11-27 19:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e1c0d4a9f2'
down_revision = 'a366d358c39d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('response_type', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('author_photo', sa.String(length=2000), nullable=True))

    with op.batch_alter_table('linkback_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_linkback_log_token'), ['token'], unique=True)


def downgrade():
    with op.batch_alter_table('linkback_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_linkback_log_token'))
        batch_op.drop_column('token')

    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('author_photo')
        batch_op.drop_column('response_type')
