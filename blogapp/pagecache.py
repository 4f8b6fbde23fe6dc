"""Readers' pages, cached whole, and answered 304 when the reader already has them.

One number, ``ContentVersion.version``, changes whenever something readers can see changes: a
post, a visible comment, a category or tag, a site setting, a tombstone, an author's name. It is
bumped in the same transaction as the change (SQLAlchemy session events below), so every
process, whatever cache it has, sees the new number on its next request (on PostgreSQL, a
reader without cookies once the notification has arrived, see below). A scheduled post going
live changes nothing in the database, so the version check also bumps when one has come due.
On PostgreSQL the bump also sends a NOTIFY, and each process keeps the number in memory
(``VersionListener``) rather than asking for it on every cached view.

Pages decorated with ``@cached_page``, requested by an anonymous reader with nothing of their
own to see (no held comment, no flash message, not logged in):

- carry ``ETag: W/"<version>-<release>"`` and ``Last-Modified``; a matching ``If-None-Match``
  (or ``If-Modified-Since``) is answered ``304 Not Modified`` before anything is rendered;
- are kept (Flask-Caching: a per-process SimpleCache, or Redis when ``REDIS_URL`` is set) under
  the version and the URL, for ``PAGE_CACHE_TIMEOUT`` seconds at most. ``PAGE_CACHE=false``
  keeps only the conditional GETs.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from datetime import UTC, datetime
from functools import wraps
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from flask import Flask, Response, current_app, has_request_context, request, session
from flask_caching import Cache
from flask_login import current_user
from werkzeug.http import http_date, parse_date, parse_etags
from sqlalchemy import create_engine, event, insert, inspect, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from .extensions import db
from .models import Category, Comment, CommentStatus, ContentVersion, Page, Post, PostStatus, SiteSetting, Tag, Tombstone, User, utcnow

log = logging.getLogger(__name__)

cache = Cache()

# What readers see. Comments count only when approved (before or after the change): claims,
# held and spam comments do not make pages stale.
_SEEN = (Post, Page, Category, Tag, SiteSetting, Tombstone, User)
_SEEN_TABLES = {"post", "page", "comment", "category", "tag", "post_categories", "post_tags", "site_setting", "tombstone", "user"}
# Headers of a cached page worth keeping; the rest is recomputed per request.
_KEPT_HEADERS = ("Content-Type", "Link", "X-Pingback")
# Session keys that make a page someone's own: held comments, flash messages, a logged-in user.
_PERSONAL = ("held_comments", "_flashes", "_user_id")


def page_key(etag: str, environ) -> str:
    """The cache key of a page: the version and release (``etag``), and the URL as requested."""
    return f"{etag}:{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"[:500]


class CachedPages:
    """WSGI middleware: a cached page asked for by a reader with no cookie of ours is sent from here.

    No Flask request, session, login or rate-limit machinery runs for it: the content version
    (one query; none on PostgreSQL while the listener has it), one cache lookup. Anything else (a miss, a cookie, a due scheduled post)
    goes on to the app, where ``cached_page`` decides exactly as before.
    """

    def __init__(self, app: Flask, wsgi_app):
        self.app, self.next = app, wsgi_app
        self.cookies = (app.config["SESSION_COOKIE_NAME"] + "=", app.config.get("REMEMBER_COOKIE_NAME", "remember_token") + "=")
        self._backend = None

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if (method not in ("GET", "HEAD") or not self.app.config["PAGE_CACHE"] or "HTTP_AUTHORIZATION" in environ
                or any(name in environ.get("HTTP_COOKIE", "") for name in self.cookies)):
            return self.next(environ, start_response)
        try:
            if self._backend is None:
                with self.app.app_context():
                    self._backend = cache.cache
            row = fresh_version_row(self.app)
            environ["blogapp.version_row"] = row  # the app, if it is asked after all, need not read it again
            if row is None or (row.due is not None and row.due <= utcnow()):
                return self.next(environ, start_response)  # the app creates the row, or bumps the version
            etag = _etag(self.app, row.version)
            hit = self._backend.get(page_key(etag, environ))
        except Exception:  # the cache or the database is unwell: the app answers, and says why
            log.exception("cached page lookup failed")
            return self.next(environ, start_response)
        if hit is None:
            return self.next(environ, start_response)
        body, status, kept = hit
        headers = [*kept, *_validator_headers(etag, row.changed_at)]
        if _not_modified(environ, etag, row.changed_at):
            start_response("304 Not Modified", [h for h in headers if h[0] != "Content-Type"])
            return []
        start_response(f"{status} OK", [*headers, ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]


def init_app(app: Flask) -> None:
    redis_url = app.config["REDIS_URL"]
    cache.init_app(app, config={
        "CACHE_TYPE": "RedisCache" if redis_url else "SimpleCache",
        "CACHE_REDIS_URL": redis_url,
        "CACHE_DEFAULT_TIMEOUT": int(app.config["PAGE_CACHE_TIMEOUT"]),
        "CACHE_THRESHOLD": 2000,
        # Blogs sharing a Redis keep their own pages.
        "CACHE_KEY_PREFIX": "blogapp-page:" + hashlib.sha256(app.config["SITE_URL"].encode()).hexdigest()[:12] + ":",
    })
    app.extensions["page_release"] = _release_tag(app)
    app.wsgi_app = CachedPages(app, app.wsgi_app)


def _release_tag(app: Flask) -> str:
    """Changes when the code, templates or static files do: a new release never answers 304 with old HTML."""
    digest = hashlib.sha256()
    roots = [Path(app.root_path), Path(app.root_path) / app.template_folder, Path(app.static_folder)]
    for root in roots:  # (joining an absolute folder to root_path gives the folder itself)
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".html", ".css", ".js") and path.is_file():
                stat = path.stat()
                digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:8]


# ---------------------------------------------------------------- the version


def by_content_version(name: str, compute):
    """``compute()``'s value, computed once per content version (and release) in the cache.

    For fragments every reader shares (the sidebar, counts); the value must pickle (plain data).
    """
    version = (request.environ.get("blogapp.content_version") if has_request_context() else None) or current_version()[0]
    key = f"fragment:{version}:{current_app.extensions['page_release']}:{name}"
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value)
    return value


# Run on every cached page view, so written once as plain SQL and run as such (exec_driver_sql:
# compiling a statement and processing its result types cost more than the query itself): the
# version, and the first scheduled post that came due since.
_VERSION_SQL = (
    "SELECT v.version, v.changed_at, (SELECT min(p.published_at) FROM post p"
    f" WHERE p.status = '{PostStatus.PUBLISHED.value}' AND p.published_at > v.changed_at) AS due"
    " FROM content_version v WHERE v.id = 1"
)


class VersionRow(NamedTuple):
    version: int
    changed_at: datetime
    due: datetime | None  # the first scheduled post that went live since changed_at


def _as_datetime(value) -> datetime | None:
    # SQLite gives back the text SQLAlchemy stored ("2026-11-27 23:48:50.123456"); PostgreSQL a datetime.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _version_row(connection) -> VersionRow | None:
    row = connection.exec_driver_sql(_VERSION_SQL).first()
    return None if row is None else VersionRow(int(row[0]), _as_datetime(row[1]), _as_datetime(row[2]))


_CREATING = threading.Lock()


def _version_engine(app: Flask):
    """The engine the version is read on (and, on PostgreSQL, the listener that keeps it)."""
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
            listener = VersionListener(engine)
        app.extensions["page_version_listener"] = listener

        def _dispose(_):  # they live as long as the app's engine
            if listener is not None:
                listener.stop()
            engine.dispose()

        event.listen(main, "engine_disposed", _dispose)
        app.extensions["page_version_engine"] = engine
    return engine


def read_version(app: Flask):
    """The version row, read on a connection kept for this alone: autocommit, no ping and no reset
    when it goes back to its pool, so one round trip to the database (three through the app's pool,
    which pings each connection it hands out and rolls back each one it gets back)."""
    engine = _version_engine(app)
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                return _version_row(conn)
        except DBAPIError as exc:  # unpinged, a connection the server dropped fails once: then a new one
            if attempt == 2 or not exc.connection_invalidated:
                raise


_LISTENERS: "weakref.WeakSet[VersionListener]" = weakref.WeakSet()

# PostgreSQL: every transaction that bumps the version also notifies this channel (delivered at
# commit), so each process can keep the version in memory instead of asking on every view.
CHANNEL = "blogapp_content_version"


class VersionListener:
    """The version row, kept current in this process by PostgreSQL's LISTEN/NOTIFY.

    A thread of its own holds a listening connection (taken from the engine's pool and closed,
    never given back, when done) and re-reads the row when told of a change, or at least every
    ``RECHECK_EVERY`` seconds, so that a notification lost for any reason costs a second, not
    more. Until it has a fresh row (starting, the server gone, stopped), ``row()`` gives None and
    callers ask the database as before. Only the cookieless fast path trusts it: there a change
    made by another process is seen as soon as its notification arrives (milliseconds), and one
    made by this process at once (``changed_here``).

    LISTEN needs a real session: behind a pooler in transaction mode (PgBouncer) notifications
    do not arrive, and pages lag by up to ``RECHECK_EVERY``; turn ``PAGE_CACHE_LISTEN`` off there.
    """

    THREAD_NAME = "blogapp-version-listener"
    FRESH_FOR = 5.0  # seconds a row read by the thread is trusted without a newer one
    RECHECK_EVERY = 1.0  # seconds between reads when no notification comes
    WAKE_EVERY = 0.25  # seconds between looks at whether it was stopped

    def __init__(self, engine):
        self.engine = engine
        self.thread: threading.Thread | None = None
        self.backend_pid = None  # the listening connection's server process
        self._stopped = threading.Event()
        self._reset()
        _LISTENERS.add(self)

    def _reset(self) -> None:
        """A fresh state: at creation, and in a child after a fork (threads and locks do not carry over)."""
        self.thread = None
        self._row, self._read_at = None, 0.0
        self._starting = threading.Lock()
        self._publishing = threading.Lock()
        self._changes_here = 0  # commits in this process that bumped the version

    def changed_here(self) -> None:
        """This process committed a change: stop trusting the row until the thread has read a newer one.

        The notification would tell the thread too, but only after the writer's next request may
        already have looked; this way a process always sees its own changes at once."""
        with self._publishing:
            self._changes_here += 1
            self._read_at = 0.0

    def row(self) -> VersionRow | None:
        if self.thread is None:
            self._start()
            return None
        if self._stopped.is_set() or time.monotonic() - self._read_at > self.FRESH_FOR:
            return None
        return self._row

    def stop(self) -> None:
        self._stopped.set()
        self._read_at = 0.0  # trusted no more, from now

    def _start(self) -> None:
        with self._starting:
            if self.thread is not None or self._stopped.is_set():
                return
            self.thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)
            self.thread.start()

    def _run(self) -> None:
        delay = 0.5
        while not self._stopped.is_set():
            listening = None
            try:
                listening = self.engine.raw_connection()
                connection = listening.driver_connection
                with connection.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANNEL}")  # before the first read: no change slips between
                self.backend_pid = connection.info.backend_pid
                self._listen(connection)
            except Exception:  # the server restarted, the network hiccuped: readers ask the database meanwhile
                self._read_at = 0.0
                if not self._stopped.is_set():
                    log.warning("content version listener failed; retrying in %.1f s", delay, exc_info=True)
                    self._stopped.wait(delay)
                    delay = min(delay * 2, 30.0)
            finally:
                if listening is not None:
                    listening.invalidate()  # closed, never pooled: it may be listening still
                    listening.close()

    def _listen(self, connection) -> None:
        read_at, seen = 0.0, None
        while not self._stopped.is_set():
            if seen != self._changes_here or time.monotonic() - read_at >= self.RECHECK_EVERY:
                changes = self._changes_here
                with connection.cursor() as cursor:
                    cursor.execute(_VERSION_SQL)
                    row = cursor.fetchone()
                read_at = time.monotonic()
                with self._publishing:
                    if changes == self._changes_here:  # else a commit here may have come after that read
                        self._row = None if row is None else VersionRow(
                            int(row[0]), _as_datetime(row[1]), _as_datetime(row[2]))
                        self._read_at, seen = read_at, changes
            for _ in connection.notifies(timeout=self.WAKE_EVERY, stop_after=1):
                read_at = 0.0  # told of a change: read at once


def _listeners_after_fork() -> None:
    for listener in list(_LISTENERS):
        listener._reset()
        listener.engine.dispose(close=False)  # the parent's connections stay the parent's


os.register_at_fork(after_in_child=_listeners_after_fork)


def fresh_version_row(app: Flask) -> VersionRow | None:
    """The version row for the cookieless fast path: from the listener when it has one, else read."""
    _version_engine(app)
    listener = app.extensions["page_version_listener"]
    return (listener and listener.row()) or read_version(app)


def current_version() -> tuple[int, datetime]:
    """The content version and when it last changed (one query; a second only when it moves)."""
    environ = request.environ if has_request_context() else {}
    row = environ.pop("blogapp.version_row", None) or read_version(current_app._get_current_object())
    if row is None:
        _create_row()
        return current_version()
    version, changed_at, next_due = row
    if next_due is not None and next_due <= utcnow():
        # A scheduled post has gone live since the last change. Only if nobody has bumped for it
        # since this row was read (the listener's row may be a moment old): once is enough.
        bump(db.session, unless_changed_since=next_due)
        db.session.commit()
        return current_version()  # read afresh: the row in the environ was used up
    if has_request_context():
        request.environ["blogapp.content_version"] = version  # read once per request
    return version, changed_at


def _create_row() -> None:
    try:
        db.session.execute(insert(ContentVersion).values(id=1, version=1, changed_at=utcnow()))
        _notify(db.session, db.session.connection())
        db.session.commit()
    except IntegrityError:  # another request made it just now
        db.session.rollback()


def bump(session: Session, *, unless_changed_since: datetime | None = None) -> None:
    connection = session.connection()
    stmt = update(ContentVersion).where(ContentVersion.id == 1)
    if unless_changed_since is not None:
        stmt = stmt.where(ContentVersion.changed_at < unless_changed_since)
    connection.execute(stmt.values(version=ContentVersion.version + 1, changed_at=utcnow()))
    _notify(session, connection)


def _notify(session: Session, connection) -> None:
    """Tell every process's listener, at commit, that the version row changed (PostgreSQL)."""
    if connection.dialect.name == "postgresql":  # repeats in one transaction are merged into one
        connection.exec_driver_sql(f"NOTIFY {CHANNEL}")
        session.info["version_bumped"] = True  # and this process's own listeners, at once


# Both fire for savepoints too: only the outermost transaction's end counts.
@event.listens_for(Session, "after_commit")
def _tell_listeners_here(session):
    if not session.in_nested_transaction() and session.info.pop("version_bumped", False):
        for listener in list(_LISTENERS):
            listener.changed_here()


@event.listens_for(Session, "after_rollback")
def _forget_bump(session):
    if not session.in_nested_transaction():
        session.info.pop("version_bumped", None)


def _seen_by_readers(obj) -> bool:
    if isinstance(obj, Comment):
        history = inspect(obj).attrs.status.history
        return CommentStatus.APPROVED in chain(history.added, history.unchanged, history.deleted, [obj.status])
    return isinstance(obj, _SEEN)


@event.listens_for(Session, "before_flush")
def _note_changes(session, flush_context, instances):
    if any(_seen_by_readers(obj) for obj in chain(session.new, session.dirty, session.deleted)):
        session.info["content_changed"] = True


@event.listens_for(Session, "after_flush")
def _bump_after_flush(session, flush_context):
    if session.info.pop("content_changed", False):
        bump(session)


@event.listens_for(Session, "do_orm_execute")
def _bump_on_bulk_change(state):
    """``update(...)``/``delete(...)`` statements bypass the flush: bump for the tables readers see."""
    if not (state.is_update or state.is_delete) or state.execution_options.get("unseen_by_readers"):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table.name in _SEEN_TABLES:
        bump(state.session)


# ---------------------------------------------------------------- the decorator


def _personal() -> bool:
    return current_user.is_authenticated or any(key in session for key in _PERSONAL)


def _http_date(value: datetime) -> datetime:
    return value.replace(microsecond=0, tzinfo=UTC)


def cached_page(view):
    """Cache and validate an anonymous reader's GET of this view (see the module docstring)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if request.method not in ("GET", "HEAD") or _personal():
            return view(*args, **kwargs)
        version, changed_at = current_version()
        etag = _etag(current_app, version)
        if _not_modified(request.environ, etag, changed_at):
            return _validators(Response(status=304), etag, changed_at)
        use_cache = bool(current_app.config["PAGE_CACHE"])
        key = page_key(etag, request.environ)
        if use_cache:
            hit = cache.get(key)
            if hit is not None:
                body, status, headers = hit
                return _validators(Response(body, status=status, headers=headers), etag, changed_at)
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code != 200 or response.direct_passthrough:
            return response
        if use_cache and not _personal():  # the view did not make it personal (a flash, say)
            headers = [(name, response.headers[name]) for name in _KEPT_HEADERS if name in response.headers]
            cache.set(key, (response.get_data(), response.status_code, headers))
        return _validators(response, etag, changed_at)

    return wrapper


def _etag(app: Flask, version: int) -> str:
    return f"{version}-{app.extensions['page_release']}"


def _validator_headers(etag: str, changed_at: datetime) -> list[tuple[str, str]]:
    """The headers of a cacheable page, for the fast path and the app alike."""
    # Shared caches may keep it, but must ask us each time (a comment can change it any minute).
    return [("ETag", f'W/"{etag}"'), ("Last-Modified", http_date(_http_date(changed_at))),
            ("Cache-Control", "public, no-cache"), ("Vary", "Cookie")]


def _not_modified(environ, etag: str, changed_at: datetime) -> bool:
    """Whether the request's validators (If-None-Match first, else If-Modified-Since) match the page."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match:
        return parse_etags(if_none_match).contains_weak(etag)
    if_modified_since = parse_date(environ.get("HTTP_IF_MODIFIED_SINCE"))
    return if_modified_since is not None and _http_date(changed_at) <= if_modified_since


def _validators(response: Response, etag: str, changed_at: datetime) -> Response:
    for name, value in _validator_headers(etag, changed_at):
        if name == "Vary":
            response.vary.add(value)  # merged with what the app already varies on
        else:
            response.headers[name] = value
    return response
