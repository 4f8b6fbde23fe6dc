"""Health checks for load balancers and supervisors.

``/healthz``: the process answers (nothing else is asked, so a database outage never makes a
supervisor restart healthy processes). ``/readyz``: it can serve: the database answers, its schema
is this code's, and Redis answers when ``REDIS_URL`` is set; 200 with each check, else 503 naming
what failed.

Cheap enough to poll every few seconds: the app's own connection pool and one Redis client per
app (no engine or client made per call), the code's migration heads read once per process, and a
schema found current believed for ``SCHEMA_RECHECK`` seconds (meanwhile the database is only
pinged). Each check has a deadline, and callers arriving while a check runs wait for that same
run, so a hung database or Redis (a firewall dropping packets) holds one thread per check at most
and every answer comes within ``CHECK_TIMEOUT``. Answers are never cached, set no cookie and are
exempt from rate limits.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import column, inspect, select, table

from .extensions import db, limiter

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)
limiter.exempt(bp)  # default and application-wide limits too: a load balancer polls from one address

CHECK_TIMEOUT = 2.0  # seconds a check may take; a slower one has failed (load balancers wait ~5 s)
SCHEMA_RECHECK = 5.0  # seconds a schema found current is believed without reading its version again

OK = "ok"
NOT_CHECKED = "not checked: the database is unreachable"


@bp.get("/healthz")
def healthz():
    return _uncached(jsonify(status="ok"), 200)


@bp.get("/readyz")
def readyz():
    checks, failed = current_app.extensions["readiness"].run()
    if failed:
        return _uncached(jsonify(status="unavailable", failed=failed, checks=checks), 503)
    return _uncached(jsonify(status="ok", checks=checks), 200)


def _uncached(response, status: int):
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"  # nor may a proxy in front answer for us
    return response


def init_app(app: Flask) -> None:
    app.extensions["readiness"] = Readiness(app)
    app.register_blueprint(bp)


class CheckFailed(Exception):
    """A check's answer for the caller (``str``), and what the log gets (``detail``)."""

    def __init__(self, answer: str, detail: str = ""):
        super().__init__(answer)
        self.detail = detail or answer


class Readiness:
    """The readiness checks of one app, and what they keep between calls."""

    def __init__(self, app: Flask):
        self.app = app
        self.flights = {"database": SingleFlight("database"), "redis": SingleFlight("redis")}
        self.schema_current_until = 0.0  # time.monotonic() until which the schema is believed current
        self.redis_client = None
        self.lock = threading.Lock()
        self.failures_logged: dict[str, str] = {}

    def run(self) -> tuple[dict[str, str], list[str]]:
        """Every check's answer ("ok" or what is wrong), and the names of those that failed."""
        with self.app.app_context():
            engine = db.engine
        deadline = time.monotonic() + CHECK_TIMEOUT
        started = {"database": self.flights["database"].start(lambda: self._database(engine))}
        if self.app.config["REDIS_URL"]:
            started["redis"] = self.flights["redis"].start(self._redis)

        checks: dict[str, str] = {}
        problems: dict[str, str] = {}  # name -> what the log says
        for name, flight in started.items():
            try:
                passed, answer = flight.wait(deadline)
            except CheckFailed as failure:
                checks[name], problems[name] = str(failure), failure.detail
                if name == "database":
                    checks["migrations"] = NOT_CHECKED
                continue
            if name == "database":
                checks["database"], checks["migrations"] = OK, answer
                if not passed:
                    problems["migrations"] = answer
            else:
                checks[name] = answer
        failed = [name for name in checks if name in problems]
        self._log_changes({name: problems[name] for name in failed})
        return checks, failed

    def _database(self, engine) -> tuple[bool, str]:
        """On the check's thread: ping the database, or read its schema's version when that is not
        believed current. Returns the migrations' verdict; raises CheckFailed if unreachable."""
        try:
            connection = engine.connect()
        except Exception as exc:
            raise CheckFailed("unreachable", describe(exc)) from None
        with connection:
            if time.monotonic() < self.schema_current_until:
                try:
                    connection.exec_driver_sql("SELECT 1")
                except Exception as exc:
                    raise CheckFailed("unreachable", describe(exc)) from None
                return True, OK
            try:
                migrate = self.app.extensions["migrate"]
                history = migration_history(migrate.directory)
                revisions = schema_revisions(connection, migrate.configure_args.get("version_table", "alembic_version"),
                                             migrate.configure_args.get("version_table_schema"))
            except Exception as exc:
                return False, f"cannot compare the schema's version with the code's: {describe(exc)}"
        passed, answer = history.compare(revisions)
        if passed:
            self.schema_current_until = time.monotonic() + SCHEMA_RECHECK
        return passed, answer

    def _redis(self) -> tuple[bool, str]:
        if self.redis_client is None:
            from redis import Redis

            self.redis_client = Redis.from_url(self.app.config["REDIS_URL"], socket_connect_timeout=CHECK_TIMEOUT,
                                               socket_timeout=CHECK_TIMEOUT)
        try:
            self.redis_client.ping()
        except Exception as exc:
            raise CheckFailed("unreachable", describe(exc)) from None
        return True, OK

    def _log_changes(self, failures: dict[str, str]) -> None:
        """A warning when what fails changes, a line when all is well again: not one per poll."""
        with self.lock:
            if failures == self.failures_logged:
                return
            self.failures_logged = failures
        if failures:
            log.warning("not ready: %s", "; ".join(f"{name}: {detail}" for name, detail in failures.items()))
        else:
            log.info("ready again")


class SingleFlight:
    """One run of a check at a time, on a daemon thread of its own: a caller arriving while it runs
    waits for the same run, until its own deadline or the run's (started + CHECK_TIMEOUT),
    whichever is first; a run past its deadline fails every caller at once until it ends."""

    def __init__(self, name: str):
        self.name = name
        self.lock = threading.Lock()
        self.current: Flight | None = None

    def start(self, check: Callable[[], tuple[bool, str]]) -> Flight:
        with self.lock:
            if self.current is None or self.current.done.is_set():
                self.current = Flight(self.name, check)
            return self.current


class Flight:
    def __init__(self, name: str, check: Callable[[], tuple[bool, str]]):
        self.started = time.monotonic()
        self.done = threading.Event()
        self.answer: tuple[bool, str] | None = None
        self.error: BaseException | None = None
        self.check = check
        threading.Thread(target=self._run, name=f"blogapp-readyz-{name}", daemon=True).start()

    def _run(self) -> None:
        try:
            self.answer = self.check()
        except BaseException as exc:  # handed to the callers, who answer with it
            self.error = exc
        finally:
            self.done.set()

    def wait(self, deadline: float) -> tuple[bool, str]:
        until = min(deadline, self.started + CHECK_TIMEOUT)
        if not self.done.wait(max(0.0, until - time.monotonic())):
            raise CheckFailed(f"timed out after {CHECK_TIMEOUT:g} s")
        if isinstance(self.error, CheckFailed):
            raise self.error
        if self.error is not None:
            raise CheckFailed("failed", describe(self.error))
        return self.answer


class MigrationHistory:
    """The code's migrations: their heads, and every revision they know."""

    def __init__(self, directory: str):
        script = ScriptDirectory(directory)
        self.heads = frozenset(script.get_heads())
        self.known = frozenset(revision.revision for revision in script.walk_revisions())

    def compare(self, revisions) -> tuple[bool, str]:
        """The database's revisions against the code's heads: passed, and the answer. A database
        newer than the code passes: an upgrade is under way (migrated, the old processes serve
        until they are reloaded)."""
        found = frozenset(revisions)
        if found == self.heads:
            return True, OK
        if not found:
            return False, "no schema: run flask --app blogapp init-db"
        if not found & self.known:
            return True, f"ok: the database is at {', '.join(sorted(found))}, newer than this code (reload it)"
        return False, (f"behind: the database is at {', '.join(sorted(found))}, the code at"
                       f" {', '.join(sorted(self.heads))}: run flask --app blogapp init-db")


def schema_revisions(connection, version_table: str, schema: str | None) -> tuple[str, ...]:
    """The revisions Alembic recorded in the database (none: no schema yet). Read here, not by
    Alembic's MigrationContext, which logs two lines each time it is made."""
    if not inspect(connection).has_table(version_table, schema=schema):
        return ()
    versions = table(version_table, column("version_num"), schema=schema)
    return tuple(connection.execute(select(versions.c.version_num)).scalars())


_histories: dict[str, MigrationHistory] = {}
_histories_lock = threading.Lock()


def migration_history(directory: str) -> MigrationHistory:
    """Read once per process (the files import each migration module)."""
    with _histories_lock:
        history = _histories.get(directory)
        if history is None:
            history = _histories[directory] = MigrationHistory(directory)
        return history


def describe(exc: BaseException) -> str:
    """An exception in one line, for the log: its type and its message's first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
