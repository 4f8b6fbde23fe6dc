"""``flask --app blogapp backup FILE`` and ``restore FILE``: the database, copied while the blog
serves, and brought back.

SQLite: SQLite's online backup API, both ways. A backup is one read transaction (consistent while
others write; in WAL mode it holds no writer up), written beside FILE and renamed onto it when
whole; a restore is one write transaction into the live database, which its other connections
see at their next transaction.

PostgreSQL: ``pg_dump -Fc`` (one snapshot) and ``pg_restore --clean --if-exists`` in a single
transaction (all of the backup, or nothing changed). The connection comes from
SQLALCHEMY_DATABASE_URI; the password goes in PGPASSWORD, never on a command line.

After a restore every cached page is made stale, the versions the page cache knows moved past
any it has kept (see ``make_cached_pages_stale``).
"""
from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import inspect, select, update
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from . import pagecache
from .extensions import db
from .models import ContentVersion

PG_CLIENT_PACKAGE = "postgresql-client"  # Debian's, for pg_dump and pg_restore


def init_app(app: Flask) -> None:
    @app.cli.command("backup")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    def backup_command(file: Path):
        """Copy the database to FILE, consistently, while the blog serves.

        SQLite: a SQLite file. PostgreSQL: a pg_dump archive (custom format)."""
        engine = db.engine
        backend = _backend(engine)
        if backend == "sqlite":
            backup_sqlite(engine, file)
        else:
            backup_postgresql(engine.url, file)
        click.echo(f"Backed up {_shown(engine.url)} to {file} ({file.stat().st_size:,} bytes)")

    @app.cli.command("restore")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def restore_command(file: Path, yes: bool):
        """Replace the database's contents with the backup FILE (made by the backup command)."""
        engine = db.engine
        backend = _backend(engine)
        if not file.is_file():
            raise click.ClickException(f"no backup at {file}")
        if not yes:
            click.confirm(f"Replace everything in {_shown(engine.url)} with {file}?", abort=True)
        version_before = content_version(engine)
        db.session.remove()  # no transaction of ours may hold a lock the restore waits for
        if backend == "sqlite":
            restore_sqlite(engine, file)
        else:
            restore_postgresql(engine.url, file)
        make_cached_pages_stale(version_before)
        click.echo(f"Restored {file} into {_shown(engine.url)}")


def _backend(engine: Engine) -> str:
    backend = engine.url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise click.ClickException(f"backups of {backend} databases are not supported (SQLite and PostgreSQL are)")
    return backend


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------- SQLite


def _sqlite_path(engine: Engine) -> Path:
    path = engine.url.database
    if not path or path == ":memory:" or engine.url.query.get("mode") == "memory":
        raise click.ClickException("the database is in memory: there is no file to back up or restore")
    return Path(path)


def _is_same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _partial_beside(target: Path) -> Path:
    """Where a backup is written until whole: beside ``target``, renamed onto it at the end."""
    if not target.parent.is_dir():
        raise click.ClickException(f"cannot write {target}: no directory {target.parent}")
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")


def backup_sqlite(engine: Engine, target: Path) -> None:
    live = _sqlite_path(engine)
    if _is_same_file(live, target):
        raise click.ClickException(f"{target} is the database itself")
    partial = _partial_beside(target)
    try:
        with closing(sqlite3.connect(partial)) as copy:
            with engine.connect() as connection:
                # One step (pages=-1): a single read transaction, so the copy is one moment's state.
                connection.connection.driver_connection.backup(copy)
            # The copy stands alone: one file, no -wal beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
        os.replace(partial, target)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    except (sqlite3.Error, SQLAlchemyError) as exc:
        raise click.ClickException(f"backup failed: {first_line(exc)}") from None
    finally:
        partial.unlink(missing_ok=True)


def restore_sqlite(engine: Engine, source: Path) -> None:
    if _is_same_file(_sqlite_path(engine), source):
        raise click.ClickException(f"{source} is the database itself")
    try:
        # Read-only: a mistyped name must not become a new, empty database that wipes the blog.
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as backup:
            tables = {name for (name,) in backup.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "post" not in tables:
                raise click.ClickException(f"{source} is not a backup of a blog (it has no post table)")
            with engine.connect() as connection:
                backup.backup(connection.connection.driver_connection)
    except (sqlite3.Error, SQLAlchemyError) as exc:
        raise click.ClickException(f"cannot restore {source}: {first_line(exc)}") from None


# ---------------------------------------------------------------- PostgreSQL


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """The connection string pg_dump and pg_restore get (no password in it), and their environment
    (with PGPASSWORD when the URL has a password). The URL's query options are libpq's, as psycopg
    passes them on."""
    options = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    for name, value in url.query.items():
        options[name] = value[-1] if isinstance(value, tuple) else value
    conninfo = " ".join(f"{name}={_conninfo_value(str(value))}" for name, value in options.items()
                        if value not in (None, ""))
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return conninfo, env


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _run_pg_tool(tool: str, args: list[str], env: dict[str, str]) -> None:
    binary = shutil.which(tool)
    if binary is None:
        raise click.ClickException(f"{tool} not found: install PostgreSQL's client programs"
                                   f" (Debian: apt install {PG_CLIENT_PACKAGE})")
    try:
        done = subprocess.run([binary, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except OSError as exc:
        raise click.ClickException(f"cannot run {binary}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        said = "; ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
        raise click.ClickException(f"{tool} failed (exit {done.returncode}): {said[:500] or 'no message'}")


def backup_postgresql(url: URL, target: Path) -> None:
    conninfo, env = libpq_target(url)
    partial = _partial_beside(target)
    try:
        _run_pg_tool("pg_dump", ["--format=custom", "--no-password", f"--file={partial}", f"--dbname={conninfo}"], env)
        os.replace(partial, target)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def restore_postgresql(url: URL, source: Path) -> None:
    conninfo, env = libpq_target(url)
    # --no-owner: the tables become the configured user's, whoever owned them where the dump was made.
    _run_pg_tool("pg_restore", ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--no-password",
                                f"--dbname={conninfo}", str(source)], env)


# ---------------------------------------------------------------- the page cache


def content_version(engine: Engine) -> int | None:
    """The page cache's counter in the live database (None: it has none yet)."""
    try:
        if not inspect(engine).has_table(ContentVersion.__tablename__):
            return None
        with engine.connect() as connection:
            return connection.scalar(select(ContentVersion.version).where(ContentVersion.id == 1))
    except SQLAlchemyError as exc:  # unreachable: nothing is restored
        raise click.ClickException(f"cannot read the database: {first_line(exc)}") from None


def make_cached_pages_stale(version_before: int | None) -> None:
    """The restored counter is older than pages cached since the backup was made: were it left so,
    later changes would count up to those pages' versions again and make them look current. So the
    counter moves past where it was before the restore, and the ``site`` part (on every page) to
    the next number: every cached page, in every process, is stale (PostgreSQL: by NOTIFY)."""
    if not inspect(db.engine).has_table(ContentVersion.__tablename__):
        return  # a backup from before the page cache: `init-db` makes its tables
    if version_before is not None:
        db.session.execute(update(ContentVersion).where(ContentVersion.id == 1, ContentVersion.version < version_before)
                           .values(version=version_before))
    pagecache.bump(db.session)
    db.session.commit()
