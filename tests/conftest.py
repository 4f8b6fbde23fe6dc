"""Fixtures: an app on a real database (a SQLite file, or PostgreSQL when TEST_DATABASE_URL is
set), a test client, a CLI runner, a live server on 127.0.0.1, and helpers to log in and count SQL.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import socket
import threading
from contextlib import contextmanager

import jinja2
from flask import request, request_finished
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy import util as sqlalchemy_util
from sqlalchemy.engine import Dialect, Engine
from werkzeug.routing import Rule
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from blogapp import create_app, jobs
from blogapp.extensions import db
from blogapp.jobs import Leases, Sweeper
from blogapp.models import User
from blogapp.pagecache import VersionListener
from blogapp.templating import site_request_context

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
SITE_URL = "http://blog.test"


_real_getaddrinfo = socket.getaddrinfo


# The suite runs in several processes at once (pytest-xdist: addopts in pyproject.toml). Each has
# its own PostgreSQL schema (pg_schema), its own temporary folders and SQLite files, free ports
# from the system, and its own Redis queue names and key prefixes (the tests make them random).
# What the machine has only one of stays on one worker, its tests one after another: the
# WordPress peer on 127.0.0.1:8090 (one site, whose posts and comments its tests read back), and
# Chromium (a browser per module, heavy on a small machine).
SERIAL_GROUPS = {
    "test_wordpress_interop.py": "wordpress-peer",
    "test_wxr_wordpress.py": "wordpress-peer",
    "test_browser.py": "chromium",
    "test_admin_tools.py": "chromium",
}


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups above: each other test goes to whichever worker is free.

    (xdist's own groups, ``xdist_group`` marks, are lost under pytest 9.2: xdist 3.8 writes the
    group into ``item._nodeid``, which pytest no longer reads. The scheduler's grouping is the
    same, here by file.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SerialGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SERIAL_GROUPS.get(nodeid.split("::", 1)[0].rsplit("/", 1)[-1], nodeid)

    return SerialGroups(config, log)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]").split("%")[0])
        return True
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_name_lookups(monkeypatch):
    """The network rule, enforced: tests resolve no name but localhost (a real lookup would ask a
    resolver off the loopback). Addresses pass; a test that needs a host name maps it itself."""

    def loopback_only(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name.lower() == "localhost" or _is_address(name):
            return _real_getaddrinfo(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no name but localhost, not {name!r}")

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


@pytest.fixture(autouse=True)
def apps_stop_their_jobs(monkeypatch):
    """Every app a test builds (the fixture's, or its own create_app calls) has its job back end
    stopped at the test's end: a job thread or sweeper left running would take up the next
    tests' jobs in the shared PostgreSQL schema, with its own settings."""
    built = []
    real_init = jobs.init_app

    def init_and_remember(app):
        real_init(app)
        built.append(app)

    monkeypatch.setattr(jobs, "init_app", init_and_remember)
    yield
    for app in built:
        jobs.shutdown(app, timeout=5)


def _share_url_builders() -> None:
    """Every app a test builds compiles each of its ~50 routes' URL builders, two small Python
    functions generated from the rule and ``compile()``d: that was four fifths of ``create_app``
    (~20 ms a test). The generated function depends only on the rule's parsed parts, its defaults
    and whether it appends unknown arguments, and reaches the rule's converters and map through
    its ``self`` at call time, so the same function, bound to each new rule as Werkzeug binds it,
    builds exactly the URLs a fresh compile would.
    """
    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "shared", False):
        return  # a Werkzeug without it builds as it likes
    builders: dict = {}

    def shared_builder(rule, append_unknown=True):
        defaults = rule.defaults or {}
        key = (rule.rule, append_unknown, tuple(rule._trace),
               tuple((name, rule._converters[name].to_url(value) if name in rule._converters else None)
                     for name, value in defaults.items()))
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = compile_builder(rule, append_unknown)
        return builder

    shared_builder.shared = True
    Rule._compile_builder = shared_builder


_share_url_builders()


class SharedStatements:
    """SQLAlchemy's cache of compiled statements, shared by every test's engine in this process.

    SQLAlchemy keeps the SQL it compiled per engine, keyed by the engine's dialect object; each
    test's app has a new engine, so every test compiled the same statements again (a quarter of
    the CPU time of tests/test_admin.py). Here the dialect in the key is replaced by what the
    compiled SQL depends on: the dialect's class, its DBAPI's parameter style, the server's
    version and the identifier lengths (the fixture's apps all connect alike: the same driver,
    the same PostgreSQL server). A key of another shape is used as it is. The app fixture's engine
    uses it; the statements of the ORM's flush stay in SQLAlchemy's per-mapper caches.
    """

    def __init__(self, size=5000):
        self.store = sqlalchemy_util.LRUCache(size)

    @staticmethod
    def _key(key):
        if type(key) is tuple and key and isinstance(key[0], Dialect):
            dialect = key[0]
            return (type(dialect), dialect.paramstyle, dialect.server_version_info,
                    dialect.label_length, dialect.max_identifier_length) + key[1:]
        return key

    def get(self, key, default=None):
        return self.store.get(self._key(key), default)

    def __setitem__(self, key, value):
        self.store[self._key(key)] = value

    def __len__(self):
        return len(self.store)

    def clear(self):
        self.store.clear()


SHARED_STATEMENTS = SharedStatements()


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


class SharedBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates, kept in memory for the whole run and shared by every test's app.

    Each test builds a new app, whose new Jinja environment compiled every template it rendered
    again. Jinja's own bytecode cache checks each template's source against a checksum before
    using what it stored, and the key here includes the environment's syntax settings, so what
    is rendered is exactly what a fresh compile would give.
    """

    def __init__(self):
        self.store: dict[str, bytes] = {}

    def get_bucket(self, environment, name, filename, source):
        settings = (environment.block_start_string, environment.block_end_string, environment.variable_start_string,
                    environment.variable_end_string, environment.comment_start_string,
                    environment.comment_end_string, environment.line_statement_prefix,
                    environment.line_comment_prefix, environment.trim_blocks, environment.lstrip_blocks,
                    environment.newline_sequence, environment.keep_trailing_newline, environment.optimized,
                    tuple(sorted(environment.extensions)))
        key = f"{self.get_cache_key(name, filename)}:{hashlib.sha1(repr(settings).encode()).hexdigest()}"
        bucket = jinja2.bccache.Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket):
        data = self.store.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CACHE = SharedBytecodeCache()


@pytest.fixture(scope="session")
def schema_template_dir(tmp_path_factory):
    """Where the SQLite template databases live (see create_tables)."""
    return tmp_path_factory.mktemp("schema-templates")


@pytest.fixture
def app(tmp_path, pg_schema, config_overrides, schema_template_dir):
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
    app.jinja_env.bytecode_cache = TEMPLATE_CACHE
    with app.app_context():
        if db.engine._compiled_cache is not None:  # (None: the app turned SQLAlchemy's cache off)
            db.engine._compiled_cache = SHARED_STATEMENTS
        create_tables(app, pg_schema, schema_template_dir)
    yield app
    app.extensions["linkback_receiver"].shutdown()
    jobs.shutdown(app)
    with app.app_context():
        db.session.remove()
        empty_database(pg_schema)
        db.engine.dispose()


def create_tables(app, pg_schema, template_dir) -> None:
    """Give the test a database with every table of the models, and empty.

    SQLite: ``create_all`` runs once per run, into a template file that each test's database is
    a copy of (the DDL of every table, per test, was a good part of the suite's time).
    PostgreSQL: the tables stay in our schema between tests (emptied at teardown), so one query
    checks they are all there, and ``create_all`` runs only when some are not (the first test,
    or after a test that dropped them, like test_migrations).
    """
    tables = frozenset(db.metadata.tables)
    if pg_schema:
        with db.engine.connect() as conn:
            present = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"),
                                       {"schema": pg_schema}).scalars())
        if not tables <= present:
            db.create_all()
        return
    url = db.engine.url
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:" or os.path.exists(path):
        db.create_all()  # not the fresh per-test file (a test chose its own database): as before
        return
    key = hashlib.sha1(" ".join(sorted(tables)).encode()).hexdigest()[:12]  # new models: a new template
    template = template_dir / f"schema-{key}.sqlite"
    if not template.exists():
        engine = create_engine(f"sqlite:///{template}")
        db.metadata.create_all(engine)
        engine.dispose()  # the last connection closed: the WAL is checkpointed into the file
    for suffix in ("", "-wal"):
        if os.path.exists(f"{template}{suffix}"):
            shutil.copyfile(f"{template}{suffix}", f"{path}{suffix}")


# The statements that empty our PostgreSQL schema, per schema: written once, when the first test's
# teardown has listed the sequences (see empty_database).
EMPTYING_SQL: dict[str, str] = {}


def empty_database(pg_schema) -> None:
    """Leave the database as the next test expects it: empty.

    On PostgreSQL the tables stay in our schema and are emptied with DELETE, children first, and
    their sequences restarted (TRUNCATE of every table, 50-150 ms a test, was a fifth of the run),
    all in one round trip; should that fail (a test dropped or changed tables), TRUNCATE ...
    CASCADE does it, and the statements are written afresh next time. A SQLite file is per test
    and thrown away with its tmp_path, so there is nothing to undo.
    """
    if not pg_schema:
        return
    try:
        with db.engine.begin() as conn:
            sql = EMPTYING_SQL.get(pg_schema)
            if sql is None:
                sequences = conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = :schema"),
                                         {"schema": pg_schema}).scalars().all()
                statements = [f'DELETE FROM "{table.name}"' for table in reversed(db.metadata.sorted_tables)]
                if sequences:
                    statements.append("SELECT " + ", ".join(
                        f"setval('\"{pg_schema}\".\"{name}\"', 1, false)" for name in sorted(sequences)))
                sql = "; ".join(statements)
            conn.exec_driver_sql(sql)  # no parameters: psycopg sends the statements together
        EMPTYING_SQL[pg_schema] = sql
    except Exception:
        EMPTYING_SQL.pop(pg_schema, None)
        tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def no_server_errors(app):
    """Fail the test if the app answered 500 during it, even if the test did not look
    (``pytestmark = pytest.mark.usefixtures("no_server_errors")``)."""
    seen = []

    def record(sender, response, **extra):
        if response.status_code >= 500:
            seen.append((request.method, request.path, response.status_code))

    request_finished.connect(record, app)
    yield
    request_finished.disconnect(record, app)
    assert not seen, f"the app answered {seen}"


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


# scrypt as the app uses it, with a smaller work factor (N=2**10, not werkzeug's 2**15): logging in
# checks the hash for real, but in ~1 ms instead of ~120 ms, and most tests log in. The app's own
# hashing, at full cost, is what test_passwords_are_stored_hashed and test_cli check.
FIXTURE_HASH_METHOD = "scrypt:1024:8:1"


@functools.cache
def password_hash(username: str, password: str) -> str:
    """Hashing is slow on purpose; tests hash each user's password once per run, at a low cost."""
    return generate_password_hash(password, method=FIXTURE_HASH_METHOD)


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
    """Count the SQL statements run inside the block: ``with count_queries(app) as q: ...; q[0]``.

    Every thread's (a live server answers in its own), but the page cache's version listener,
    which on PostgreSQL re-reads the version every second on its own, and the job back end's
    own housekeeping (the job thread's start, the sweeper, lease renewals)."""
    counter = [0]
    engine = Engine  # every engine: the app's, and the page cache's version reader
    background = {VersionListener.THREAD_NAME, "blogapp-jobs", Sweeper.THREAD_NAME, Leases.THREAD_NAME}

    def before(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread().name in background:
            return
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
        # A short poll interval makes shutdown, at every test's end, quick (it waits for the next poll).
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

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
    """A fake remote website on 127.0.0.1 (see tests/sites.py); its handlers must not have raised
    (a test whose fake site broke would test nothing)."""
    from sites import SourceSite
    site = SourceSite()
    yield site
    site.close()
    assert site.errors == [], f"the fake site's handlers raised: {site.errors!r}"


@pytest.fixture
def second_site():
    """Another fake remote website, at another port; its handlers must not have raised."""
    from sites import SourceSite
    site = SourceSite()
    yield site
    site.close()
    assert site.errors == [], f"the fake site's handlers raised: {site.errors!r}"
