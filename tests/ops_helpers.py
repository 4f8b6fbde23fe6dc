"""Helpers of the operations tests (health checks, logs, backups): apps on databases of their own,
PostgreSQL databases made and dropped per test, the environment of a `flask` or gunicorn process."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from blogapp import create_app, jobs
from blogapp.extensions import db
from conftest import SITE_URL, TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the interpreter running the tests: its flask and gunicorn


class Apps:
    """Apps a test builds on a database it names; each one's pools closed at the test's end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.built = tmp_path, []

    def __call__(self, uri: str, *, create_tables: bool = False, **config):
        app = create_app({"TESTING": True, "SECRET_KEY": "test-" + secrets.token_hex(8), "SITE_URL": SITE_URL,
                          "RATELIMIT_ENABLED": False, "JOBS_BACKEND": "thread", "SQLALCHEMY_DATABASE_URI": uri,
                          **config}, instance_path=str(self.tmp_path / f"instance-{len(self.built)}"))
        self.built.append(app)
        if create_tables:
            with app.app_context():
                db.create_all()
        return app

    def close(self) -> None:
        built, self.built = self.built, []
        for app in built:
            # The job thread first: started by the app's first request, it would otherwise take a
            # new connection after the pool's disposal, left open when the test drops its database.
            jobs.shutdown(app, timeout=5)
            app.extensions["linkback_receiver"].shutdown()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@contextmanager
def own_postgresql_database(prefix: str):
    """A new database on the test server, dropped at the end (its connections too): tests that
    replace a whole database's tables (pg_restore --clean) must not touch the shared one."""
    server = make_url(TEST_DATABASE_URL)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def code_revisions(app) -> tuple[str, str]:
    """The code's newest migration and the one before it."""
    script = ScriptDirectory(app.extensions["migrate"].directory)
    (head,) = script.get_heads()
    return head, script.get_revision(head).down_revision


def record_revision(app, revision: str | None) -> None:
    """What Alembic writes when it migrates (or stamps): the schema's revision; None: no table."""
    with app.app_context(), db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        if revision is not None:
            conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:revision)"), {"revision": revision})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(tmp_path: Path, settings: dict) -> dict:
    """The environment of a `flask` or gunicorn process: these settings, as BLOGAPP_* variables only."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BLOGAPP_", "FLASK_", "GUNICORN_")) and k != "WEB_CONCURRENCY"}
    env.update({f"BLOGAPP_{name}": value if isinstance(value, str) else json.dumps(value)
                for name, value in {"SITE_URL": SITE_URL, "SECRET_KEY": "test-key", "RATELIMIT_ENABLED": False,
                                    "JOBS_BACKEND": "thread", **settings}.items()})
    env["BLOGAPP_INSTANCE_PATH"] = str(tmp_path / "process-instance")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def flask_command(tmp_path: Path, settings: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`flask --app blogapp ARGS` in a process of its own, as an operator runs it."""
    return subprocess.run([str(BIN / "flask"), "--app", "blogapp", *args], cwd=ROOT, env=process_env(tmp_path, settings),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
