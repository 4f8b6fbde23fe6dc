"""cache scopes: a version per part of what readers see (the site, the list of posts, each post,
each post's thread), so that a change makes stale only the pages that show it

Revision ID: e5b2c8d14f60
Revises: 7c4e2a91d5b3
Create Date: 2026-12-03 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5b2c8d14f60'
down_revision = '7c4e2a91d5b3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('cache_scope',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cache_scope'))
    )
    with op.batch_alter_table('cache_scope', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cache_scope_version'), ['version'], unique=False)
    # The two parts every page shows, at the counter's present version: pages cached before the
    # upgrade are keyed differently and are never read again.
    op.execute(sa.text(
        "INSERT INTO cache_scope (name, version, changed_at)"
        " SELECT s.name, v.version, v.changed_at FROM content_version v,"
        " (SELECT 'site' AS name UNION ALL SELECT 'posts') s WHERE v.id = 1"))


def downgrade():
    with op.batch_alter_table('cache_scope', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cache_scope_version'))
    op.drop_table('cache_scope')
