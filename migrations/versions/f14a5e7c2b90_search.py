"""search: post.search_text (the body as plain text) indexed by the database's full-text engine:
an FTS5 table kept by triggers on SQLite, a tsvector column kept by a trigger under a GIN index on
PostgreSQL (blogapp.search); existing posts are indexed

Revision ID: f14a5e7c2b90
Revises: e5b2c8d14f60
Create Date: 2026-12-04 23:50:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = 'f14a5e7c2b90'
down_revision = 'e5b2c8d14f60'
branch_labels = None
depends_on = None

# The DDL as blogapp.search has it at this revision (a migration keeps its own copy).
SQLITE_CREATE = (
    "CREATE VIRTUAL TABLE post_search USING fts5(title, search_text, content='post',"
    " content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER post_search_insert AFTER INSERT ON post BEGIN"
    " INSERT INTO post_search (rowid, title, search_text) VALUES (new.id, new.title, new.search_text); END",
    "CREATE TRIGGER post_search_delete AFTER DELETE ON post BEGIN"
    " INSERT INTO post_search (post_search, rowid, title, search_text)"
    " VALUES ('delete', old.id, old.title, old.search_text); END",
    "CREATE TRIGGER post_search_update AFTER UPDATE OF title, search_text ON post BEGIN"
    " INSERT INTO post_search (post_search, rowid, title, search_text)"
    " VALUES ('delete', old.id, old.title, old.search_text);"
    " INSERT INTO post_search (rowid, title, search_text) VALUES (new.id, new.title, new.search_text); END",
    "INSERT INTO post_search (post_search) VALUES ('rebuild')",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS post_search_update",
    "DROP TRIGGER IF EXISTS post_search_delete",
    "DROP TRIGGER IF EXISTS post_search_insert",
    "DROP TABLE IF EXISTS post_search",
)
POSTGRESQL_CREATE = (
    "CREATE OR REPLACE FUNCTION post_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " NEW.search_vector := setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')"
    " || setweight(to_tsvector('english', coalesce(NEW.search_text, '')), 'B');"
    " RETURN NEW; END $$",
    "CREATE TRIGGER post_search_vector BEFORE INSERT OR UPDATE OF title, search_text ON post"
    " FOR EACH ROW EXECUTE FUNCTION post_search_vector()",
)
POSTGRESQL_DROP = (
    "DROP TRIGGER IF EXISTS post_search_vector ON post",
    "DROP FUNCTION IF EXISTS post_search_vector()",
)


def _fill_search_text(bind):
    """Every post's search_text from its rendered body (on PostgreSQL the trigger fills the vector)."""
    from blogapp.search import searchable_text

    post = sa.table('post', sa.column('id', sa.Integer), sa.column('body_html', sa.Text),
                    sa.column('search_text', sa.Text))
    last = 0
    while True:
        rows = bind.execute(sa.select(post.c.id, post.c.body_html).where(post.c.id > last)
                            .order_by(post.c.id).limit(500)).all()
        if not rows:
            return
        bind.execute(post.update().where(post.c.id == sa.bindparam('post_id'))
                     .values(search_text=sa.bindparam('text')),
                     [{'post_id': pid, 'text': searchable_text(html)} for pid, html in rows])
        last = rows[-1][0]


def upgrade():
    bind = op.get_bind()
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('search_vector', postgresql.TSVECTOR().with_variant(sa.Text(), 'sqlite'),
                                      nullable=True))
        batch_op.create_index('ix_post_search_vector', ['search_vector'], unique=False, postgresql_using='gin')
    if bind.dialect.name == 'postgresql':
        for statement in POSTGRESQL_CREATE:
            op.execute(statement)
        _fill_search_text(bind)  # (each UPDATE fires the trigger: the vectors are filled too)
    else:
        _fill_search_text(bind)  # (before the triggers: the FTS table is built from it once, by 'rebuild')
        for statement in SQLITE_CREATE:
            op.execute(statement)


def downgrade():
    bind = op.get_bind()
    for statement in POSTGRESQL_DROP if bind.dialect.name == 'postgresql' else SQLITE_DROP:
        op.execute(statement)
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_index('ix_post_search_vector', postgresql_using='gin')
        batch_op.drop_column('search_vector')
        batch_op.drop_column('search_text')
