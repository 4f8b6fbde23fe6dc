"""One line for a failure of the services the blog needs: the database and Redis.

``explain(exc, app)`` says what went wrong and what to do, in one line ending with the original
error's own first line; None for any other exception (a bug, whose traceback is the useful thing).
The CLI's commands and ``flask check`` use it, so a missing database reads the same in both.
"""
from __future__ import annotations

import re
import sqlite3

from flask import Flask
from sqlalchemy import inspect
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

INIT_DB = "run `flask --app blogapp init-db`"


def summary(exc: BaseException) -> str:
    """The original error's first line (a DBAPI error's own, not SQLAlchemy's SQL dump), trimmed."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    text = re.sub(r"\s+", " ", lines[0]) if lines else type(original).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _database_place(url) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _schema_state(app: Flask) -> str:
    """"empty" when the database has none of the blog's tables, else "partial"."""
    from .extensions import db

    try:
        with db.engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
    except Exception:
        return "partial"  # cannot tell: both lines say to run init-db
    return "partial" if present & set(db.metadata.tables) else "empty"


def explain_database(exc: BaseException, url, app: Flask | None = None) -> str | None:
    """One line for a database failure, or None if ``exc`` is not one."""
    if isinstance(exc, (ArgumentError, NoSuchModuleError)):
        return f"SQLALCHEMY_DATABASE_URI cannot be read: {summary(exc)}"
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    if not _is_dbapi_error(original) or _is_bad_data(original):
        return None
    text = str(original)
    said = summary(exc)
    if url.get_backend_name() == "postgresql":
        place = _database_place(url)
        if match := re.search(r'database "([^"]+)" does not exist', text):
            return (f'the database "{match[1]}" does not exist on the PostgreSQL server at {place}: create it '
                    f"(createdb -O {url.username or 'USER'} {match[1]}) or correct SQLALCHEMY_DATABASE_URI ({said})")
        if match := re.search(r'role "([^"]+)" does not exist', text):
            return (f'the role "{match[1]}" does not exist on the PostgreSQL server at {place}: create it '
                    f"(createuser {match[1]}) or correct the user in SQLALCHEMY_DATABASE_URI ({said})")
        if match := re.search(r'password authentication failed for user "([^"]+)"', text):
            return (f'the PostgreSQL server at {place} refused the password of role "{match[1]}": correct '
                    f"SQLALCHEMY_DATABASE_URI ({said})")
        if "no pg_hba.conf entry" in text:
            return (f"the PostgreSQL server at {place} does not let this user in from here (pg_hba.conf): "
                    f"allow it there or correct SQLALCHEMY_DATABASE_URI ({said})")
        if text.startswith("connection failed") or re.search(
                r"Connection refused|timeout expired|could not translate host name|No route to host|"
                r"Name or service not known|server closed the connection", text):
            return (f"cannot connect to the PostgreSQL server at {place}: is it running, and is "
                    f"SQLALCHEMY_DATABASE_URI right? ({said})")
        sqlstate = getattr(original, "sqlstate", None)
        if sqlstate == "42P01":  # undefined table
            return _missing_tables(app, said)
        if sqlstate == "42703":  # undefined column
            return f"the database is not up to date: {INIT_DB} ({said})"
    elif url.get_backend_name() == "sqlite":
        path = url.database or ":memory:"
        if text.startswith("no such table"):
            return _missing_tables(app, said)
        if text.startswith("no such column") or "has no column named" in text:
            return f"the database is not up to date: {INIT_DB} ({said})"
        if "unable to open database file" in text:
            return (f"cannot open the SQLite database {path}: does its folder exist, and may this user write "
                    f"there? ({said})")
        if "file is not a database" in text:
            return f"{path} is not a SQLite database: correct SQLALCHEMY_DATABASE_URI ({said})"
        if "readonly database" in text:
            return f"the SQLite database {path} is read-only for this user ({said})"
        if "database is locked" in text:
            return f"the SQLite database {path} is locked by another process: try again ({said})"
    return f"the database failed: {said}"


def _missing_tables(app: Flask | None, said: str) -> str:
    if app is not None and _schema_state(app) == "empty":
        return f"the database has no tables yet: {INIT_DB} ({said})"
    return f"the database is not up to date: {INIT_DB} ({said})"


def _is_dbapi_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(exc, psycopg.Error)


def _is_bad_data(exc: BaseException) -> bool:
    """A constraint or a value the database refused: what the code sent was wrong, not the
    database's state, so its traceback is what helps."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError)):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(exc, (psycopg.IntegrityError, psycopg.DataError))


def explain_redis(exc: BaseException, redis_url: str | None) -> str | None:
    """One line for Redis out of reach, or None if ``exc`` is not that."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    except ImportError:
        return None
    if not isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return None
    from .settings_check import masked

    return f"cannot reach Redis at {masked(redis_url or '?')}: is it running, and is REDIS_URL right? ({summary(exc)})"


def explain(exc: BaseException, app: Flask) -> str | None:
    """One line for a failure of the database or Redis; None for anything else."""
    from .extensions import db

    url = db.engine.url  # Flask-SQLAlchemy's, with a relative SQLite path made absolute
    return explain_database(exc, url, app) or explain_redis(exc, app.config.get("REDIS_URL"))
