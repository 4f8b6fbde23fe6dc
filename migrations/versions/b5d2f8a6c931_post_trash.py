"""post trashed_at: WordPress's Trash for posts (blogapp.posts.trash_post)

Revision ID: b5d2f8a6c931
Revises: a9c3e1d7f214
Create Date: 2026-12-05 00:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5d2f8a6c931'
down_revision = 'a9c3e1d7f214'
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not a batch: on SQLite a batch would copy the post table, and dropping the
# old one would drop the search triggers it carries (f14a5e7c2b90). SQLite 3.35+ drops a column.
def upgrade():
    op.add_column('post', sa.Column('trashed_at', sa.DateTime(), nullable=True))


def downgrade():
    op.drop_column('post', 'trashed_at')
