"""/healthz and /readyz: what they check, what they answer when something is down or hung, and
that polling them is cheap, uncached, cookieless and never rate limited."""
from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from blogapp import health
from blogapp.jobs import wiring
from conftest import TEST_DATABASE_URL, TEST_REDIS_URL, count_queries
from ops_helpers import Apps, code_revisions, flask_command, free_port, own_postgresql_database, record_revision

NEEDS_POSTGRESQL = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL")


@pytest.fixture
def apps(tmp_path):
    built = Apps(tmp_path)
    yield built
    built.close()


@pytest.fixture
def ready_app(apps, tmp_path):
    """An app on a SQLite file of its own, its schema recorded at the code's newest migration."""
    def build(**config):
        app = apps(f"sqlite:///{tmp_path / 'ready.sqlite'}", create_tables=True, **config)
        record_revision(app, code_revisions(app)[0])
        return app
    return build


@pytest.fixture
def schema_always_read(monkeypatch):
    monkeypatch.setattr(health, "SCHEMA_RECHECK", 0.0)


@pytest.fixture
def no_job_back_end(monkeypatch):
    """For apps whose database is down: the first request would start the job thread, which dies
    on that database (not what these tests look at)."""
    monkeypatch.setattr(wiring, "start", lambda app=None: None)


def test_healthz_answers_without_asking_the_database(app, client, apps, tmp_path, no_job_back_end):
    with count_queries(app) as queries:
        answer = client.get("/healthz")
    assert (answer.status_code, answer.json) == (200, {"status": "ok"})
    assert queries[0] == 0
    down = apps(f"sqlite:///{tmp_path / 'no such folder' / 'blog.sqlite'}")
    assert down.test_client().get("/healthz").json == {"status": "ok"}


def test_readyz_is_ready_on_a_database_made_by_init_db(apps, tmp_path):
    uri = f"sqlite:///{tmp_path / 'blog.sqlite'}"
    made = flask_command(tmp_path, {"SQLALCHEMY_DATABASE_URI": uri}, "init-db")
    assert made.returncode == 0, made.stderr
    answer = apps(uri).test_client().get("/readyz")
    assert (answer.status_code, answer.json) == (200, {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}})


@NEEDS_POSTGRESQL
def test_readyz_is_ready_on_a_postgresql_database_made_by_init_db(apps, tmp_path):
    with own_postgresql_database("blogapp_readyz") as uri:
        made = flask_command(tmp_path, {"SQLALCHEMY_DATABASE_URI": uri}, "init-db")
        assert made.returncode == 0, made.stderr
        app = apps(uri)
        answer = app.test_client().get("/readyz")
        assert (answer.status_code, answer.json) == (200, {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}})
        apps.close()


def test_readyz_compares_the_schema_with_the_code(ready_app, schema_always_read):
    app = ready_app()
    client = app.test_client()
    head, previous = code_revisions(app)

    record_revision(app, previous)
    behind = client.get("/readyz")
    assert behind.status_code == 503
    assert behind.json["failed"] == ["migrations"] and behind.json["checks"]["database"] == "ok"
    assert behind.json["checks"]["migrations"].startswith(f"behind: the database is at {previous}, the code at {head}")

    record_revision(app, None)
    empty = client.get("/readyz")
    assert (empty.status_code, empty.json["checks"]["migrations"]) == (503, "no schema: run flask --app blogapp init-db")

    # Migrated by a newer release whose processes are not all reloaded yet: the old ones still serve.
    record_revision(app, "ffffffffffff")
    ahead = client.get("/readyz")
    assert ahead.status_code == 200
    assert "ffffffffffff, newer than this code" in ahead.json["checks"]["migrations"]

    record_revision(app, head)
    assert client.get("/readyz").json == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_readyz_believes_a_current_schema_for_a_few_seconds(ready_app, monkeypatch):
    monkeypatch.setattr(health, "SCHEMA_RECHECK", 2.0)
    app = ready_app()
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    record_revision(app, code_revisions(app)[1])  # an older schema: seen once the belief runs out
    with statements_run() as statements:
        assert client.get("/readyz").status_code == 200
    assert statements == ["SELECT 1"]  # the ping alone
    time.sleep(2.1)
    with statements_run() as statements:
        assert client.get("/readyz").status_code == 503
    assert any("alembic_version" in statement for statement in statements)


@contextmanager
def statements_run():
    """The SQL every engine runs inside the block, in any thread."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def test_polling_readyz_opens_no_connection_per_call(ready_app, schema_always_read):
    app = ready_app()
    client = app.test_client()
    client.get("/readyz")
    opened = []

    def count(dbapi_connection, record):
        opened.append(dbapi_connection)

    event.listen(Pool, "connect", count)
    try:
        for _ in range(20):
            assert client.get("/readyz").status_code == 200
    finally:
        event.remove(Pool, "connect", count)
    assert opened == []


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_readyz_names_the_database_when_it_is_down(apps, tmp_path, caplog, no_job_back_end, where):
    if where == "sqlite":
        uri = f"sqlite:///{tmp_path / 'no such folder' / 'blog.sqlite'}"
    else:
        uri = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/blog"  # nothing listens there
    app = apps(uri)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="blogapp.health"):
        answers = [client.get("/readyz") for _ in range(3)]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json == {"status": "unavailable", "failed": ["database"],
                               "checks": {"database": "unreachable", "migrations": health.NOT_CHECKED}}
    assert client.get("/healthz").status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "blogapp.health"]
    assert len(warnings) == 1 and warnings[0].startswith("not ready: database: OperationalError")


def test_readyz_names_redis_when_it_is_down(ready_app):
    app = ready_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json == {"status": "unavailable", "failed": ["redis"],
                           "checks": {"database": "ok", "migrations": "ok", "redis": "unreachable"}}


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs Redis: set TEST_REDIS_URL")
def test_readyz_checks_redis_when_it_is_configured(ready_app):
    app = ready_app(REDIS_URL=TEST_REDIS_URL)
    answer = app.test_client().get("/readyz")
    assert (answer.status_code, answer.json["checks"]) == (200, {"database": "ok", "migrations": "ok", "redis": "ok"})


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers: a database behind a dropping firewall,
    or a hung one. Closing it ends every connection, and so the checks waiting on them."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_readyz_answers_by_its_deadline_when_the_database_hangs(apps, monkeypatch, no_job_back_end):
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 1.5)
    silent = SilentServer()
    try:
        client = apps(f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/blog").test_client()
        answers, took = [], []
        for _ in range(3):
            started = time.monotonic()
            answers.append(within(10, lambda: client.get("/readyz")))
            took.append(time.monotonic() - started)
        for answer in answers:
            assert (answer.status_code, answer.json["failed"]) == (503, ["database"])
            assert answer.json["checks"]["database"] == "timed out after 1.5 s"
        assert 1.5 <= took[0] < 5 and max(took[1:]) < 0.75  # later polls do not wait again for the hung check
        hung = [t for t in threading.enumerate() if t.name == "blogapp-readyz-database"]
        assert len(hung) == 1  # one thread waits on the hung database, however often it is polled
    finally:
        silent.close()


def within(seconds, call):
    """``call()`` on another thread, failing the test (not hanging it) if it takes longer."""
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"no answer within {seconds} s"
    return outcome[0]


def test_health_is_exempt_from_rate_limits(ready_app):
    # No page cache: its pages are answered before Flask, and so before any limit.
    app = ready_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://", RATELIMIT_DEFAULT="2 per minute",
                    RATELIMIT_APPLICATION="3 per minute", PAGE_CACHE=False)
    client = app.test_client()
    for _ in range(6):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
    # The limits are in force elsewhere: the test would pass for nothing otherwise.
    assert 429 in [client.get("/feed/").status_code for _ in range(4)]


def test_health_answers_are_never_cached_and_set_no_cookie(ready_app, schema_always_read):
    app = ready_app(PAGE_CACHE=True)
    client = app.test_client()
    first = client.get("/readyz")
    assert first.status_code == 200
    record_revision(app, None)
    second = client.get("/readyz")
    assert second.status_code == 503  # what is true now, not the page kept from before
    for answer in (first, second, client.get("/healthz")):
        assert answer.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in answer.headers and "X-Cache" not in answer.headers
        assert answer.mimetype == "application/json"
