"""Search, as WordPress readers know it (``/?s=words``), by the database's own full-text engine.

What is searched: a post's title and its text (``Post.search_text``: the rendered body as plain
text, ``searchable_text``; kept by the model on every save, and written by the WordPress import
with its rows). Readers find only what they may read (``Post.visible()``).

- SQLite: ``post_search``, an FTS5 table with external content (the text is stored once, in
  ``post``), kept in step by triggers on ``post``; ``bm25()`` ranks (a title word weighs as much as
  ``TITLE_WEIGHT`` words of text), ``highlight()`` and ``snippet()`` mark the words.
- PostgreSQL: ``post.search_vector``, a tsvector (title weighted A, text B) kept by a trigger,
  under a GIN index; ``plainto_tsquery``, ``ts_rank``, ``ts_headline``.

Every word of the query is required (AND), as in WordPress; among the posts that have them all,
those with the words in their title, or more often in their text, come first. A query is user
input: only its words are kept (``terms``), so quotes, FTS5 operators (``NEAR``, ``OR``, ``*``,
``-``, ``:``, parentheses) and the like are never syntax; they are searched as plain words or
dropped. The engines differ a little at the edges: PostgreSQL drops English stop words ("the",
"and"), SQLite keeps them; both stem English words ("posts" finds "post").

The DDL here is what ``db.create_all()`` runs after creating ``post`` (``blogapp.models``); the
migration f14a5e7c2b90 keeps its own copy, as migrations do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape
from sqlalchemy import DDL, event, inspect, text
from sqlalchemy.orm import Session

from .extensions import db
from .text import html_to_text

# What the engines do to words: English stemming (SQLite's porter, PostgreSQL's english).
TEXT_SEARCH_CONFIG = "english"
SQLITE_TOKENIZER = "porter unicode61 remove_diacritics 2"
TITLE_WEIGHT = 5.0  # SQLite's bm25() column weight of the title against the text (1.0)
MAX_TERMS = 24  # words of a query searched for; the rest are dropped (a 300-character query works)
MAX_TERM_LENGTH = 64
EXCERPT_TOKENS = 36  # words around the matches in an excerpt

# The marks the engines put around matched words, made <mark> once the text is escaped. Private-use
# code points: ``searchable_text`` removes them from the text, so a post cannot forge one.
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKS = re.compile(f"[{_OPEN}{_CLOSE}]")
_WORD = re.compile(r"\w+")

# SQLite: the FTS5 table and its shadow tables (what the index adds to the schema).
SQLITE_INDEX_TABLE = "post_search"
SQLITE_INDEX_TABLES = frozenset(
    {SQLITE_INDEX_TABLE, *(f"{SQLITE_INDEX_TABLE}_{part}" for part in ("data", "idx", "docsize", "config"))})

def not_the_index(name, type_, parent_names) -> bool:
    """Alembic's ``include_name``: the FTS5 table and its shadow tables belong to no model, so
    autogenerate (``flask db migrate``) and the schema checks leave them alone."""
    return not (type_ == "table" and name in SQLITE_INDEX_TABLES)


SQLITE_CREATE = (
    f"CREATE VIRTUAL TABLE {SQLITE_INDEX_TABLE} USING fts5(title, search_text, content='post',"
    f" content_rowid='id', tokenize='{SQLITE_TOKENIZER}')",
    "CREATE TRIGGER post_search_insert AFTER INSERT ON post BEGIN"
    " INSERT INTO post_search (rowid, title, search_text) VALUES (new.id, new.title, new.search_text); END",
    "CREATE TRIGGER post_search_delete AFTER DELETE ON post BEGIN"
    " INSERT INTO post_search (post_search, rowid, title, search_text)"
    " VALUES ('delete', old.id, old.title, old.search_text); END",
    "CREATE TRIGGER post_search_update AFTER UPDATE OF title, search_text ON post BEGIN"
    " INSERT INTO post_search (post_search, rowid, title, search_text)"
    " VALUES ('delete', old.id, old.title, old.search_text);"
    " INSERT INTO post_search (rowid, title, search_text) VALUES (new.id, new.title, new.search_text); END",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS post_search_update",
    "DROP TRIGGER IF EXISTS post_search_delete",
    "DROP TRIGGER IF EXISTS post_search_insert",
    f"DROP TABLE IF EXISTS {SQLITE_INDEX_TABLE}",
)

# PostgreSQL: the column and its GIN index are the model's (Post.search_vector); the trigger fills it.
POSTGRESQL_CREATE = (
    "CREATE OR REPLACE FUNCTION post_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    f" NEW.search_vector := setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', coalesce(NEW.title, '')), 'A')"
    f" || setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', coalesce(NEW.search_text, '')), 'B');"
    " RETURN NEW; END $$",
    "CREATE TRIGGER post_search_vector BEFORE INSERT OR UPDATE OF title, search_text ON post"
    " FOR EACH ROW EXECUTE FUNCTION post_search_vector()",
)
POSTGRESQL_DROP_FUNCTION = "DROP FUNCTION IF EXISTS post_search_vector()"


def attach_index_ddl(table) -> None:
    """Make ``create_all()``/``drop_all()`` of the ``post`` table create and drop its search index."""
    for statement in SQLITE_CREATE:
        event.listen(table, "after_create", DDL(statement).execute_if(dialect="sqlite"))
    for statement in SQLITE_DROP:
        event.listen(table, "before_drop", DDL(statement).execute_if(dialect="sqlite"))
    for statement in POSTGRESQL_CREATE:
        event.listen(table, "after_create", DDL(statement).execute_if(dialect="postgresql"))
    event.listen(table, "after_drop", DDL(POSTGRESQL_DROP_FUNCTION).execute_if(dialect="postgresql"))


def searchable_text(body_html: str | None) -> str:
    """What is searched of a post's body: its rendered HTML as plain text."""
    return _MARKS.sub(" ", html_to_text(body_html or ""))


def terms(query: str) -> list[str]:
    """The words of a reader's query, the only part of it the engines see."""
    return [word[:MAX_TERM_LENGTH] for word in _WORD.findall(query)[:MAX_TERMS]]


@dataclass(frozen=True)
class Hit:
    post_id: int
    title: Markup  # the title, its matched words in <mark>
    excerpt: Markup  # text around the matches, marked likewise


@dataclass(frozen=True)
class Found:
    total: int
    hits: list[Hit]


def find(words: list[str], *, offset: int, limit: int, now: datetime) -> Found:
    """The posts readers may see that hold every one of ``words``, best first: ``limit`` of them
    from ``offset``, and how many there are in all."""
    if not words:
        return Found(0, [])
    from .models import PostStatus  # (the models import this module for its DDL)

    session = db.session
    params = {"now": now, "published": PostStatus.PUBLISHED.value, "limit": limit, "offset": offset}
    if session.get_bind().dialect.name == "postgresql":
        return _find_postgresql(session, words, params)
    return _find_sqlite(session, words, params)


# Post.visible(), as SQL: published, and out by now.
_VISIBLE = "post.status = :published AND post.published_at <= :now"


def _fts5_query(words: list[str]) -> str:
    # Each word a quoted string: FTS5 reads nothing in it as an operator; side by side they are ANDed.
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _find_sqlite(session: Session, words: list[str], params: dict) -> Found:
    params = {**params, "match": _fts5_query(words), "open": _OPEN, "close": _CLOSE, "tokens": EXCERPT_TOKENS,
              "title_weight": TITLE_WEIGHT}
    where = f"post_search MATCH :match AND {_VISIBLE}"
    total = session.execute(text(
        f"SELECT count(*) FROM post_search JOIN post ON post.id = post_search.rowid WHERE {where}"), params).scalar_one()
    if not total or params["offset"] >= total:
        return Found(total, [])
    rows = session.execute(text(
        "SELECT post.id, highlight(post_search, 0, :open, :close),"
        " snippet(post_search, 1, :open, :close, '…', :tokens)"
        f" FROM post_search JOIN post ON post.id = post_search.rowid WHERE {where}"
        " ORDER BY bm25(post_search, :title_weight, 1.0), post.published_at DESC, post.id DESC"
        " LIMIT :limit OFFSET :offset"), params).all()
    return Found(total, [Hit(pid, marked_html(title), marked_html(excerpt)) for pid, title, excerpt in rows])


def _headline_options(**options) -> str:
    return ", ".join(f'{name}="{value}"' for name, value in options.items())


def _find_postgresql(session: Session, words: list[str], params: dict) -> Found:
    params = {**params, "words": " ".join(words), "config": TEXT_SEARCH_CONFIG,
              "title_options": _headline_options(StartSel=_OPEN, StopSel=_CLOSE, HighlightAll="true"),
              "options": _headline_options(StartSel=_OPEN, StopSel=_CLOSE, MaxWords=EXCERPT_TOKENS,
                                           MinWords=EXCERPT_TOKENS // 2)}
    query = "plainto_tsquery(CAST(:config AS regconfig), :words)"
    where = f"post.search_vector @@ {query} AND {_VISIBLE}"
    total = session.execute(text(f"SELECT count(*) FROM post WHERE {where}"), params).scalar_one()
    if not total or params["offset"] >= total:
        return Found(total, [])
    # The page first (ranks from the index's candidates), then the headlines of its posts only.
    rows = session.execute(text(
        "SELECT page.id, ts_headline(CAST(:config AS regconfig), post.title, q, :title_options),"
        " ts_headline(CAST(:config AS regconfig), post.search_text, q, :options)"
        f" FROM (SELECT post.id, ts_rank(post.search_vector, {query}) AS rank, post.published_at"
        f"       FROM post WHERE {where}"
        "       ORDER BY rank DESC, post.published_at DESC, post.id DESC LIMIT :limit OFFSET :offset) AS page"
        f" JOIN post ON post.id = page.id, {query} AS q"
        " ORDER BY page.rank DESC, page.published_at DESC, page.id DESC"), params).all()
    return Found(total, [Hit(pid, marked_html(title), marked_html(excerpt)) for pid, title, excerpt in rows])


def marked_html(marked: str | None) -> Markup:
    """Text with the engine's marks around matched words, as escaped HTML with ``<mark>``."""
    parts, open_ = [], False
    for piece in re.split(f"([{_OPEN}{_CLOSE}])", marked or ""):
        if piece == _OPEN:
            if not open_:
                parts.append("<mark>")
                open_ = True
        elif piece == _CLOSE:
            if open_:
                parts.append("</mark>")
                open_ = False
        elif piece:
            parts.append(str(escape(piece)))
    if open_:
        parts.append("</mark>")
    return Markup("".join(parts))


def _keep_search_text(mapper, connection, post) -> None:
    """Before a post is written by the ORM: its searchable text follows its body."""
    state = inspect(post)
    if state.pending or state.attrs.body_html.history.has_changes():
        post.search_text = searchable_text(post.body_html)


def search_text_default(context) -> str:
    """A Core INSERT (a bulk one) that leaves ``search_text`` out: made from its ``body_html``."""
    return searchable_text(context.get_current_parameters().get("body_html"))


def attach_model_hooks(post_class) -> None:
    """Keep ``search_text`` current on ORM saves (search pages follow any post's change through the
    page cache's ``any-post`` part)."""
    event.listen(post_class, "before_insert", _keep_search_text)
    event.listen(post_class, "before_update", _keep_search_text)
