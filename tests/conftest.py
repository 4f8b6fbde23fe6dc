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
import sys
import threading
from contextlib import contextmanager
from pathlib import Path


def _keep_bytecode() -> None:
    """Keep compiled bytecode between runs, in a cache of its own (never beside the sources).

    With PYTHONDONTWRITEBYTECODE set (this machine's environment sets it), every process of a run
    compiled the app from source, and pytest rewrote every test module again: ~4 s of CPU at each
    xdist worker's start, and some of each gunicorn and ``flask worker`` the crash tests start.
    The files go to .pytest_cache/pycache (Python's ``pycache_prefix``); the environment is set
    too, so that the workers and the servers the tests start use the same cache. A prefix the
    caller chose is kept."""
    if not (sys.dont_write_bytecode or os.environ.get("PYTHONDONTWRITEBYTECODE")):
        return
    prefix = sys.pycache_prefix or str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "pycache")
    sys.dont_write_bytecode = False
    sys.pycache_prefix = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = prefix


_keep_bytecode()  # before the app's modules are imported, below

import jinja2
from flask import request, request_finished, session
from flask_login import login_user
from flask_wtf.csrf import generate_csrf
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy import util as sqlalchemy_util
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.pool import Pool
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


# How long each test took in the last runs (setup, call and teardown), per database, in pytest's
# cache (.pytest_cache): the scheduler below starts the longest first.
DURATIONS_KEY = "blogapp/durations-" + ("postgresql" if TEST_DATABASE_URL else "sqlite")
UNKNOWN_DURATION = 0.1  # seconds: a test not timed yet (about a typical one)
LONG_UNIT = 0.5  # seconds: work that starts first, longest first (see pytest_xdist_make_scheduler)
_durations_now: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Time each test (in the controller: xdist hands it every worker's reports)."""
    _durations_now[report.nodeid] = _durations_now.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    """Keep this run's durations for the next run's order: averaged with what was kept, so one slow
    run on a busy machine does not reorder everything."""
    config = session.config
    if hasattr(config, "workerinput") or getattr(config, "cache", None) is None or not _durations_now:
        return
    kept = config.cache.get(DURATIONS_KEY, {})
    for nodeid, seconds in _durations_now.items():
        kept[nodeid] = round((kept[nodeid] + seconds) / 2 if nodeid in kept else seconds, 3)
    config.cache.set(DURATIONS_KEY, kept)


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: a worker per core, and one more. Many tests wait more than they compute (a
    deadline, a browser, the WordPress peer, a gunicorn starting), so one worker more than cores
    keeps the cores busy meanwhile. PYTEST_XDIST_AUTO_NUM_WORKERS still decides if set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return (os.cpu_count() or 1) + 1


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups above, the longest work first: each other test goes
    to whichever worker is free.

    (xdist's own groups, ``xdist_group`` marks, are lost under pytest 9.2: xdist 3.8 writes the
    group into ``item._nodeid``, which pytest no longer reads. The scheduler's grouping is the
    same, here by file.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    durations = config.cache.get(DURATIONS_KEY, {}) if getattr(config, "cache", None) is not None else {}

    class SerialGroups(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return SERIAL_GROUPS.get(nodeid.split("::", 1)[0].rsplit("/", 1)[-1], nodeid)

        def _assign_work_unit(self, node) -> None:
            # The first time, the queue holds all the work: the long units first, longest first (by
            # what they took last time), so that the run does not end waiting for one long test
            # begun late; the rest after them in xdist's order (by file, as collected), each
            # shorter than LONG_UNIT, so the workers end within about that of each other.
            if not self.ordered:
                self.ordered = True
                expected = {scope: sum(durations.get(nodeid, UNKNOWN_DURATION) for nodeid in unit)
                            for scope, unit in self.workqueue.items()}
                long_first = sorted((scope for scope in self.workqueue if expected[scope] >= LONG_UNIT),
                                    key=lambda scope: -expected[scope])
                for scope in reversed(long_first):
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

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


def _quick_rq_worker_teardown() -> None:
    """An RQ worker listens for commands on a pub/sub thread that waits up to 60 s per read (RQ's
    ``sleep_time=60``); at the end of each burst a test runs in this process (tests/test_jobs.py's
    ``step``, ``flask worker --burst``) RQ waits for that thread: up to a second with redis-py 7,
    until it ends with redis-py 8 (a minute: three RQ tests ran past their deadlines so). Here
    those threads wait 0.05 s per read instead: the same commands are heard, and a worker's
    teardown is quick. (The servers tests/test_crash_safety.py starts are killed, not stopped.)"""
    try:
        from redis.client import PubSub
    except ImportError:
        return
    run_in_thread = PubSub.run_in_thread
    if getattr(run_in_thread, "quick", False):
        return

    def polling_briefly(self, sleep_time=0.0, *args, **kwargs):
        return run_in_thread(self, min(sleep_time, 0.05), *args, **kwargs)

    polling_briefly.quick = True
    PubSub.run_in_thread = polling_briefly


_quick_rq_worker_teardown()


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


class ReusedConnections:
    """PostgreSQL connections kept from one engine to the next, as a session pooler keeps them.

    Each test's app makes new engines (the app's, the page cache's reader), and each engine
    connected anew: a server process started and its caches filled, ~5 ms of the server's CPU
    per connection, two or three per test. Here a connection an engine closes is reset and kept
    instead (``DISCARD ALL``, as PgBouncer resets a session: no transaction, LISTEN, prepared
    statement, setting or temporary table is left; psycopg sees the DISCARD and forgets its
    prepared statements too), and the next engine that connects with the same parameters gets
    it. The engines still do all they do with a new connection (the dialect's first-connect
    queries, the connect events). A connection SQLAlchemy invalidated (broken, or the page
    cache's listening one, never pooled by design) is closed for real, as is one whose reset
    fails. The rest are closed when the session ends.
    """

    KEEP = 8  # idle connections kept per set of connection parameters

    def __init__(self):
        self.idle: dict[tuple, list] = {}
        self.lock = threading.Lock()
        self.connection_class = None
        self.stopped = False  # at the session's end: what is closed then is closed for real

    def _class(self):
        if self.connection_class is None:
            import psycopg

            reused = self

            class ReusableConnection(psycopg.Connection):
                reusable = True  # False once SQLAlchemy invalidated it

                def close(self) -> None:
                    if not (self.reusable and reused.give_back(self)):
                        super().close()

            self.connection_class = ReusableConnection
        return self.connection_class

    @staticmethod
    def _key(dialect, cargs, cparams) -> tuple:
        # Not the adapters map (``context``, one per engine): it is the same for every engine of
        # the suite, but for the dialect options that change it, which are in the key.
        params = tuple(sorted((k, repr(v)) for k, v in cparams.items() if k != "context"))
        return (tuple(cargs), params, dialect._json_serializer, dialect._json_deserializer,
                dialect._native_inet_types)

    def connect(self, dialect, conn_rec, cargs, cparams):
        """SQLAlchemy's ``do_connect`` event: a kept connection, else a new one (of our class)."""
        if dialect.name != "postgresql" or dialect.driver != "psycopg":
            return None
        key = self._key(dialect, cargs, cparams)
        with self.lock:
            idle = self.idle.get(key)
            connection = idle.pop() if idle else None
        if connection is None:
            connection = self._class().connect(*cargs, **cparams)
            connection.reuse_key = key
        return connection

    def give_back(self, connection) -> bool:
        """Reset ``connection`` and keep it; False if it cannot be (then it is closed)."""
        from psycopg.pq import TransactionStatus
        from sqlalchemy.dialects.postgresql.psycopg import _log_notices

        if connection.closed or connection.broken:
            return False
        try:
            if connection.info.transaction_status != TransactionStatus.IDLE:
                connection.rollback()
            connection.autocommit = True
            connection.execute("DISCARD ALL")
            # The server has no prepared statement now; psycopg forgets its own list on seeing
            # DISCARD ALL only while that list is not empty, and could later take a statement for
            # prepared that the server no longer has ("prepared statement _pg3_1 does not exist").
            # So it is told here, every time (its private cache: this is the tests' pooler only).
            prepared = getattr(connection, "_prepared", None)
            if prepared is not None:
                prepared.clear()
                prepared._to_flush.clear()  # (no DEALLOCATE ALL to send: the DISCARD did it)
            connection.autocommit, connection.isolation_level = False, None
            connection.read_only = connection.deferrable = None
            while _log_notices in connection._notice_handlers:  # the dialect adds it on each connect
                connection.remove_notice_handler(_log_notices)
        except Exception:
            return False
        with self.lock:
            idle = self.idle.setdefault(connection.reuse_key, [])
            if self.stopped or len(idle) >= self.KEEP:
                return False
            idle.append(connection)
        return True

    def stop(self) -> None:
        """Close the kept connections; from now on, connections are closed when closed."""
        with self.lock:
            self.stopped = True
            kept = [connection for idle in self.idle.values() for connection in idle]
            self.idle.clear()
        for connection in kept:
            connection.reusable = False
            connection.close()


REUSED_CONNECTIONS = ReusedConnections()
if TEST_DATABASE_URL:
    event.listen(Engine, "do_connect", REUSED_CONNECTIONS.connect)

    @event.listens_for(Pool, "invalidate")
    @event.listens_for(Pool, "soft_invalidate")
    def _not_reused(dbapi_connection, connection_record, exception=None):
        if hasattr(dbapi_connection, "reusable"):
            dbapi_connection.reusable = False


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
        REUSED_CONNECTIONS.stop()
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

    def create(self, username="admin", password="correct horse") -> int:
        with self.app.app_context():
            user = User(username=username, display_name=username.title(), password_hash=password_hash(username, password))
            db.session.add(user)
            db.session.commit()
            return user.id

    def login(self, username="admin", password="correct horse"):
        token = csrf_token(self.client, "/admin/login")
        return self.client.post("/admin/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def auth(app, client):
    return Auth(app, client)


def log_in_directly(app, client, user_id: int) -> None:
    """Give ``client`` the session that logging in through the form gives it: Flask-Login's own
    ``login_user`` (the user's id, a fresh login, the identifier of the client's address and
    browser) and the CSRF token the form's page made, written into the client's session cookie.
    Two requests fewer per test (a page render and a form post, ~15 ms); the form itself is what
    tests/test_admin.py's login tests use."""
    with client.session_transaction() as cookie_session:
        # A request like the client's own (its address and User-Agent), as the login form's POST.
        with app.test_request_context(environ_base=client.environ_base):
            assert login_user(db.session.get(User, user_id))
            generate_csrf()
            cookie_session.update(session)


@pytest.fixture
def admin_client(app, auth, client):
    """A client logged in as an admin (see log_in_directly)."""
    log_in_directly(app, client, auth.create())
    # What the login's first request did too: start the job back end (StartOnFirstRequest), which
    # takes up the jobs left waiting (none) before the test goes on. Rows a test then writes by
    # hand (a queued job) are not taken up by a start on its own first request.
    jobs.start(app)
    assert jobs.wait_idle(10, app)
    return client


@contextmanager
def count_queries(app, *, versions: bool = True):
    """Count the SQL statements run inside the block: ``with count_queries(app) as q: ...; q[0]``.

    Every thread's (a live server answers in its own), but the page cache's version listener,
    which on PostgreSQL re-reads the version every second on its own, and the job back end's
    own housekeeping (the job thread's start, the sweeper, lease renewals). ``versions=False``:
    not the page versions' read either, which on PostgreSQL a request makes or not by whether
    the listener's copy is fresh at that moment (a test of how queries grow with rows)."""
    counter = [0]
    engine = Engine  # every engine: the app's, and the page cache's version reader
    background = {VersionListener.THREAD_NAME, "blogapp-jobs", Sweeper.THREAD_NAME, Leases.THREAD_NAME}

    def before(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread().name in background:
            return
        if not versions and ("cache_scope" in statement or "content_version" in statement):
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
