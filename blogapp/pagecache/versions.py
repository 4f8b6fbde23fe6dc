"""The versions of what readers see, in the database: read in one query, bumped in the writer's
own transaction.

``content_version`` (one row) is a counter; every change draws the next number from it and gives
it to each part it touched (``cache_scope``, one row per part). Its row lock orders concurrent
writers, so versions are committed in increasing order: whoever has seen counter N has seen every
part's change up to N. On PostgreSQL a bump also sends a NOTIFY (``listener.py``).
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import NamedTuple

from flask import Flask
from sqlalchemy import create_engine, event, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import CacheScope, ContentVersion, PostStatus, utcnow
from .scopes import EVERY_PAGE, POSTS, SITE

CHANNEL = "blogapp_content_version"
NEVER = (0, datetime(1970, 1, 1))  # the version of a part never changed


class Versions(NamedTuple):
    """What one read found: the counter, the asked-for parts, and a scheduled post come due."""

    version: int  # the counter
    changed_at: datetime  # when anything last changed
    scopes: dict[str, tuple[int, datetime]]  # name -> (version, changed_at); absent: never changed
    due: datetime | None  # the first published post dated after ``posts`` last changed
    complete: bool = False  # ``scopes`` holds every part there is (the listener's), not only those asked for

    def of(self, name: str) -> tuple[int, datetime]:
        return self.scopes.get(name, NEVER)

    def due_now(self) -> bool:
        """A scheduled post has gone live since the post list last changed: ``posts`` must move."""
        return self.due is not None and self.due <= utcnow()


def as_datetime(value) -> datetime | None:
    # SQLite gives back the text SQLAlchemy stored ("2026-11-27 23:48:50.123456"); PostgreSQL a datetime.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# Run on every cached page view, so written as plain SQL and run as such (compiling a statement
# and processing its result types cost more than the query itself). The first scheduled post
# dated after the post list last changed is asked for too: going live changes no row.
_DUE_SQL = (
    "SELECT '~due', 0, min(p.published_at) FROM post p"
    f" WHERE p.status = '{PostStatus.PUBLISHED.value}' AND p.published_at >"
    f" coalesce((SELECT s.changed_at FROM cache_scope s WHERE s.name = '{POSTS}'),"
    " (SELECT v.changed_at FROM content_version v WHERE v.id = 1))"
)
_COUNTER_SQL = "SELECT '', version, changed_at FROM content_version WHERE id = 1"


def versions_sql(mark: str, count: int) -> str:
    """One query: the counter, ``count`` parts (``mark`` is the driver's placeholder), the due post."""
    parts = f" UNION ALL SELECT name, version, changed_at FROM cache_scope WHERE name IN ({', '.join([mark] * count)})"
    return _COUNTER_SQL + (parts if count else "") + " UNION ALL " + _DUE_SQL


def changed_since_sql(mark: str) -> str:
    """One query: the counter, every part changed after a version, the due post (the listener's)."""
    return (_COUNTER_SQL + f" UNION ALL SELECT name, version, changed_at FROM cache_scope WHERE version > {mark}"
            + " UNION ALL " + _DUE_SQL)


def parse_rows(rows) -> Versions | None:
    counter, scopes, due = None, {}, None
    for name, version, changed_at in rows:
        if name == "":
            counter = (int(version), as_datetime(changed_at))
        elif name == "~due":
            due = as_datetime(changed_at)
        else:
            scopes[name] = (int(version), as_datetime(changed_at))
    return None if counter is None else Versions(counter[0], counter[1], scopes, due)


def placeholder(dialect) -> str:
    return "?" if dialect.paramstyle == "qmark" else "%s"


_CREATING = threading.Lock()


def reader_engine(app: Flask):
    """The engine versions are read on: autocommit, no ping and no reset when a connection goes
    back to its pool, so a read is one round trip (three through the app's pool, which pings each
    connection it hands out and rolls back each one it gets back)."""
    engine = app.extensions.get("page_version_engine")
    if engine is not None:
        return engine
    with _CREATING:  # once per app, whichever of the first requests gets here first
        engine = app.extensions.get("page_version_engine")
        if engine is not None:
            return engine
        with app.app_context():
            main = db.engine
        options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        engine = create_engine(main.url, connect_args=options.get("connect_args", {}), isolation_level="AUTOCOMMIT",
                               pool_pre_ping=False, pool_reset_on_return=None)
        listener = None
        if engine.dialect.name == "postgresql" and app.config["PAGE_CACHE_LISTEN"]:
            from .listener import VersionListener
            listener = VersionListener(engine)
        app.extensions["page_version_listener"] = listener

        def _dispose(_):  # they live as long as the app's engine
            if listener is not None:
                listener.stop()
            engine.dispose()

        event.listen(main, "engine_disposed", _dispose)
        app.extensions["page_version_engine"] = engine
    return engine


def read(app: Flask, names) -> Versions | None:
    """The counter and the parts ``names``, read on the reader engine; None if no counter row yet."""
    names = tuple(names)
    engine = reader_engine(app)
    sql = versions_sql(placeholder(engine.dialect), len(names))
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                found = parse_rows(conn.exec_driver_sql(sql, names))
            if found is not None:
                found.scopes.update({name: NEVER for name in names if name not in found.scopes})
            return found
        except DBAPIError as exc:  # unpinged, a connection the server dropped fails once: then a new one
            if attempt == 2 or not exc.connection_invalidated:
                raise


def create_rows(connection) -> None:
    """The counter's row and the parts every page shows (a database made without migrations)."""
    now = utcnow()
    try:
        with connection.begin_nested():
            connection.execute(insert(ContentVersion).values(id=1, version=1, changed_at=now))
            connection.execute(insert(CacheScope), [{"name": name, "version": 1, "changed_at": now} for name in EVERY_PAGE])
    except IntegrityError:  # another request made them just now
        pass


def bump(session: Session, names=(SITE,)) -> None:
    """Move the parts ``names`` to the counter's next number, in ``session``'s transaction.

    The default, ``site``, makes every page stale (bulk imports, anything without finer knowledge).
    """
    names = sorted(set(names))
    if not names:
        return
    connection = session.connection()
    now = utcnow()
    # The counter first: its row lock makes a second writer wait until this one commits.
    stmt = update(ContentVersion).where(ContentVersion.id == 1).values(version=ContentVersion.version + 1, changed_at=now)
    version = connection.execute(stmt.returning(ContentVersion.version)).scalar()
    if version is None:
        create_rows(connection)
        version = connection.execute(stmt.returning(ContentVersion.version)).scalar()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(CacheScope).values([{"name": name, "version": version, "changed_at": now} for name in names])
    connection.execute(upsert.on_conflict_do_update(
        index_elements=[CacheScope.name],
        set_={"version": upsert.excluded.version, "changed_at": upsert.excluded.changed_at}))
    if connection.dialect.name == "postgresql":  # delivered at commit; repeats in one transaction merge
        connection.exec_driver_sql(f"NOTIFY {CHANNEL}")
        session.info["version_bumped"] = True  # and this process's own listeners, at once (tracking.py)


def bump_posts_if_due(session: Session, due: datetime) -> None:
    """A scheduled post has gone live: move ``posts``, unless someone has since ``due`` (once is enough)."""
    changed_at = session.scalar(select(CacheScope.changed_at).where(CacheScope.name == POSTS))
    if changed_at is None or changed_at < due:
        bump(session, [POSTS])
