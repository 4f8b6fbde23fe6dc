"""Fixtures: an app on a real database (a SQLite file, or PostgreSQL when TEST_DATABASE_URL is
set), a test client, a CLI runner, a live server on 127.0.0.1, and helpers to log in and count SQL.
"""
from __future__ import annotations

import functools
import os
import re
import secrets
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, event, text
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from blogapp import create_app
from blogapp.extensions import db
from blogapp.models import User
from blogapp.templating import site_request_context

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
SITE_URL = "http://blog.test"


@pytest.fixture(scope="session")
def pg_schema():
    """A schema of our own on the PostgreSQL server, dropped at the end of the run."""
    if not TEST_DATABASE_URL:
        yield None
        return
    schema = f"blogapp_test_{secrets.token_hex(4)}"
    engine = create_engine(TEST_DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def database_config(tmp_path, pg_schema) -> dict:
    if pg_schema:
        return {
            "SQLALCHEMY_DATABASE_URI": TEST_DATABASE_URL,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={pg_schema}"}, "pool_pre_ping": True},
        }
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'blog.sqlite'}"}


@pytest.fixture
def config_overrides():
    """Tests override settings by parametrising or overriding this fixture."""
    return {}


@pytest.fixture
def app(tmp_path, pg_schema, config_overrides):
    instance = tmp_path / "instance"
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-" + secrets.token_hex(8),
        "SITE_URL": SITE_URL,
        "RATELIMIT_ENABLED": False,
        **database_config(tmp_path, pg_schema),
        **config_overrides,
    }
    app = create_app(config, instance_path=str(instance))
    with app.app_context():
        db.create_all()
    yield app
    app.extensions["linkback_receiver"].shutdown()
    app.extensions["jobs"].shutdown()
    with app.app_context():
        db.session.remove()
        empty_database(pg_schema)
        db.engine.dispose()


def empty_database(pg_schema) -> None:
    """Leave the database as the next test expects it: empty.

    On PostgreSQL the tables stay in our schema and are truncated (much cheaper than DDL per
    test); a SQLite file is per test anyway, so its tables are simply dropped.
    """
    if pg_schema:
        tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    else:
        db.drop_all()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    """An app and request context at SITE_URL, for tests that use models and url_for directly."""
    with app.app_context(), site_request_context(app):
        yield


def csrf_token(client, url: str) -> str:
    page = client.get(url)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True))
    assert match, f"no CSRF token on {url}"
    return match.group(1)


@functools.cache
def password_hash(username: str, password: str) -> str:
    """Hashing is slow on purpose; tests hash each user's password once per run."""
    return generate_password_hash(password)


class Auth:
    def __init__(self, app, client):
        self.app, self.client = app, client

    def create(self, username="admin", password="correct horse"):
        with self.app.app_context():
            user = User(username=username, display_name=username.title(), password_hash=password_hash(username, password))
            db.session.add(user)
            db.session.commit()

    def login(self, username="admin", password="correct horse"):
        token = csrf_token(self.client, "/admin/login")
        return self.client.post("/admin/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def auth(app, client):
    return Auth(app, client)


@pytest.fixture
def admin_client(auth, client):
    """A client logged in as an admin."""
    auth.create()
    response = auth.login()
    assert response.status_code == 302
    return client


@contextmanager
def count_queries(app):
    """Count the SQL statements run inside the block: ``with count_queries(app) as q: ...; q[0]``."""
    counter = [0]
    with app.app_context():
        engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("PRAGMA", "SAVEPOINT", "RELEASE")):
            counter[0] += 1

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        # A short poll interval makes shutdown, at every test's end, quick.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on 127.0.0.1 at a free port."""
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def source_site():
    """A fake remote website on 127.0.0.1 (see tests/sites.py)."""
    from sites import SourceSite
    site = SourceSite()
    yield site
    site.close()


@pytest.fixture
def second_site():
    """Another fake remote website, at another port."""
    from sites import SourceSite
    site = SourceSite()
    yield site
    site.close()
