"""Small builders for test data, through the same code paths the app uses."""
from __future__ import annotations

import functools
import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, utcnow
from blogapp.posts import save_post
from blogapp.templating import post_path
from blogapp.text import render_comment


def make_post(title="A post", body="Some *text*.", days_ago=1, publish=True, **kw):
    """A committed post; returns (id, path). Needs an app and request context."""
    post = save_post(None, title=title, body=body, publish=publish,
                     published_at=(utcnow() - timedelta(days=days_ago)) if publish else None, **kw)
    db.session.commit()
    return post.id, post_path(post)


def add_comment(post_id, text="Hello", *, name="Visitor", status=CommentStatus.APPROVED, kind=CommentKind.COMMENT,
                parent_id=None, minutes=0, source_url=None, email="visitor@example.org"):
    comment = Comment(
        post_id=post_id, parent_id=parent_id, kind=kind.value, status=status.value, author_name=name,
        author_email=email, content=text, content_html=render_comment(text) if kind == CommentKind.COMMENT else "",
        source_url=source_url, source_key=source_url, author_url=source_url or "",
        created_at=utcnow() - timedelta(days=1) + timedelta(minutes=minutes),
    )
    db.session.add(comment)
    db.session.commit()
    return comment.id


def database() -> dict[str, list]:
    """Every row of every table, as the database has it now: but the page cache's versions, whose
    rows the first rendered page creates (a write of content changes them too)."""
    db.session.rollback()
    conn = db.session.connection()  # the session's own transaction, without the ORM's layer (the
    # property tests read the whole database after every example: it was a sixth of their time)
    if conn.dialect.name == "postgresql":
        return _every_table_at_once(conn)
    return {table.name: sorted(map(repr, conn.execute(statement).all())) for table, statement in _select_every_table()}


@functools.cache
def _select_every_table():
    return tuple((table, table.select()) for table in db.metadata.sorted_tables
                 if table.name not in ("content_version", "cache_scope"))


def _every_table_at_once(conn) -> dict[str, list]:
    """``database()`` on PostgreSQL: the same SELECTs, sent together in one round trip (psycopg
    returns a result per statement) instead of one per table, and the same rows. The property
    tests read the database twice per example: one round trip per table was a fifth of their
    time on PostgreSQL."""
    tables, sql = _every_table_sql(conn.dialect)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql)
        found = {}
        for name in tables:
            found[name] = sorted(map(repr, cursor.fetchall()))
            cursor.nextset()
        return found
    finally:
        cursor.close()


_SQL_BY_DIALECT: dict = {}


def _every_table_sql(dialect) -> tuple[list[str], str]:
    key = (type(dialect), dialect.server_version_info)
    if key not in _SQL_BY_DIALECT:
        names = [table.name for table, _ in _select_every_table()]
        sql = "; ".join(str(statement.compile(dialect=dialect)) for _, statement in _select_every_table())
        _SQL_BY_DIALECT[key] = (names, sql)
    return _SQL_BY_DIALECT[key]


def table_rows() -> dict[str, list[dict]]:
    """Every row of every table, as the database has it now, as ``restore_rows`` puts them back."""
    with db.engine.connect() as conn:
        return {table.name: [dict(row._mapping) for row in conn.execute(table.select())]
                for table in db.metadata.sorted_tables}


def restore_rows(saved: dict[str, list[dict]]) -> None:
    """Put ``table_rows()`` back into an empty database: the same rows, ids included, parents
    first, and on PostgreSQL each id sequence moved past them, so the next row made gets the id
    it would have had. (For tests that share one data set: made once, by the app, and copied into
    each test's database, instead of made again for each.) On a connection of its own, not the
    session: the rows go back as they were, the content version included, and nothing is bumped."""
    with db.engine.begin() as conn:
        for table in db.metadata.sorted_tables:
            if saved.get(table.name):
                conn.execute(table.insert(), saved[table.name])
        if conn.dialect.name == "postgresql":
            for table in db.metadata.sorted_tables:
                for column in table.primary_key.columns:
                    sequence = conn.scalar(select(func.pg_get_serial_sequence(table.name, column.name)))
                    if sequence:
                        last = conn.scalar(select(func.max(column)))
                        conn.execute(text("SELECT setval(:sequence, :value, :called)"),
                                     {"sequence": sequence, "value": last or 1, "called": last is not None})


def wait_for(condition, timeout=10.0, interval=0.01):
    """``condition()``'s first truthy value within ``timeout`` seconds, else its last (falsy) one."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


def unavailable(reason: str):
    """A peer or browser a test needs is missing: skip with the reason; under ``CI=true``, where
    ``.ci/run`` provides them, fail instead, so CI never passes by skipping."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run provides it, so this test must run)")
    pytest.skip(reason)
