"""post excerpt: a hand-written summary (WordPress's excerpt), shown in listings and feeds

Revision ID: 18835c230381
Revises: 56b38d4d4fc8
Create Date: 2026-12-03 08:44:02.984911

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '18835c230381'
down_revision = '56b38d4d4fc8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('excerpt', sa.Text(), server_default='', nullable=False))



def downgrade():
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('excerpt')

