"""WXR import: pages, imported items, legacy paths, private posts, HTML bodies, nested categories

Revision ID: 56b38d4d4fc8
Revises: d3a8e2f71b05
Create Date: 2026-12-03 07:47:59.731011

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '56b38d4d4fc8'
down_revision = 'd3a8e2f71b05'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('page',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('slug', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_format', sa.String(length=16), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('menu_order', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("body_format IN ('markdown', 'html')", name=op.f('ck_page_body_format')),
    sa.CheckConstraint("status IN ('draft', 'published')", name=op.f('ck_page_status')),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_page_author_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_page')),
    sa.UniqueConstraint('slug', name=op.f('uq_page_slug'))
    )
    op.create_table('legacy_path',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=True),
    sa.Column('page_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['page_id'], ['page.id'], name=op.f('fk_legacy_path_page_id_page'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], name=op.f('fk_legacy_path_post_id_post'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legacy_path')),
    sa.UniqueConstraint('path', name=op.f('uq_legacy_path_path'))
    )
    with op.batch_alter_table('legacy_path', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legacy_path_page_id'), ['page_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_legacy_path_post_id'), ['post_id'], unique=False)

    op.create_table('imported_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=500), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.BigInteger(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=True),
    sa.Column('page_id', sa.Integer(), nullable=True),
    sa.Column('comment_id', sa.Integer(), nullable=True),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comment.id'], name=op.f('fk_imported_item_comment_id_comment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['page_id'], ['page.id'], name=op.f('fk_imported_item_page_id_page'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], name=op.f('fk_imported_item_post_id_post'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imported_item')),
    sa.UniqueConstraint('site', 'kind', 'source_id', name='uq_imported_item_site_kind_source')
    )
    with op.batch_alter_table('imported_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imported_item_comment_id'), ['comment_id'], unique=False)
        batch_op.create_index('ix_imported_item_kind_source', ['kind', 'source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imported_item_page_id'), ['page_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imported_item_post_id'), ['post_id'], unique=False)

    with op.batch_alter_table('category', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_category_parent_id_category'), 'category', ['parent_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_format', sa.String(length=16), server_default='markdown', nullable=False))
        batch_op.create_check_constraint('body_format', "body_format IN ('markdown', 'html')")
        # Private posts (WordPress's "private"): readable by admins only.
        batch_op.drop_constraint(op.f('ck_post_status'), type_='check')
        batch_op.create_check_constraint('status', "status IN ('draft', 'published', 'private')")


def downgrade():
    op.execute("UPDATE post SET status = 'draft' WHERE status = 'private'")
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_post_status'), type_='check')
        batch_op.create_check_constraint('status', "status IN ('draft', 'published')")
        batch_op.drop_constraint(op.f('ck_post_body_format'), type_='check')
        batch_op.drop_column('body_format')

    with op.batch_alter_table('category', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_category_parent_id_category'), type_='foreignkey')
        batch_op.drop_column('parent_id')

    with op.batch_alter_table('imported_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imported_item_post_id'))
        batch_op.drop_index(batch_op.f('ix_imported_item_page_id'))
        batch_op.drop_index('ix_imported_item_kind_source')
        batch_op.drop_index(batch_op.f('ix_imported_item_comment_id'))

    op.drop_table('imported_item')
    with op.batch_alter_table('legacy_path', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legacy_path_post_id'))
        batch_op.drop_index(batch_op.f('ix_legacy_path_page_id'))

    op.drop_table('legacy_path')
    op.drop_table('page')
