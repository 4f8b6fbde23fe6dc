"""PostgreSQL: every process keeps the versions in memory, told of changes by LISTEN/NOTIFY, so a
cached page view asks the database nothing."""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref

from ..outages import Outage, database_unreachable
from .versions import CHANNEL, Versions, changed_since_sql, parse_rows

log = logging.getLogger(__name__)

_LISTENERS: "weakref.WeakSet[VersionListener]" = weakref.WeakSet()


class VersionListener:
    """The versions of every part of the site, kept current in this process.

    A thread of its own holds a listening connection (taken from the engine's pool and closed,
    never given back, when done). Told of a change, or at least every ``RECHECK_EVERY`` seconds
    (a lost notification costs a second, not more), it reads the parts changed since the highest
    version it has. Until it has a fresh read (starting, the server gone, stopped), ``row()``
    gives None and callers ask the database. A change made by another process is seen as soon as
    its notification arrives (milliseconds), one made by this process at once (``changed_here``).

    LISTEN needs a real session: behind a pooler in transaction mode (PgBouncer) notifications
    do not arrive, and pages lag by up to ``RECHECK_EVERY``; turn ``PAGE_CACHE_LISTEN`` off there.
    """

    THREAD_NAME = "blogapp-version-listener"
    FRESH_FOR = 5.0  # seconds a read by the thread is trusted without a newer one
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
        self._changes_here = 0  # commits in this process that bumped a version
        self._outage = Outage("the page versions' listener connection", log)

    def changed_here(self) -> None:
        """This process committed a change: stop trusting the versions until the thread has read newer ones.

        The notification would tell the thread too, but only after the writer's next request may
        already have looked; this way a process always sees its own changes at once."""
        with self._publishing:
            self._changes_here += 1
            self._read_at = 0.0

    def row(self) -> Versions | None:
        """Every part's version (``scopes`` holds them all), or None when not known to be fresh."""
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
                self._outage.up()
                delay = 0.5
                self._listen(connection)
            except Exception as exc:  # the server restarted, the network hiccuped: readers ask the database meanwhile
                self._read_at = 0.0
                if not self._stopped.is_set():
                    if database_unreachable(exc):  # one line an outage, not a traceback a retry
                        self._outage.down(exc, "pages ask the database for versions meanwhile")
                    else:
                        log.warning("content version listener failed; retrying in %.1f s", delay, exc_info=True)
                    self._stopped.wait(delay)
                    delay = min(delay * 2, 30.0)
            finally:
                if listening is not None:
                    listening.invalidate()  # closed, never pooled: it may be listening still
                    listening.close()

    def _listen(self, connection) -> None:
        read_at, seen = 0.0, None
        known: dict = {}  # every part's version read so far on this connection
        newest = -1  # the highest part version in ``known``: the next read asks only for newer ones
        sql = changed_since_sql("%s")
        while not self._stopped.is_set():
            if seen != self._changes_here or time.monotonic() - read_at >= self.RECHECK_EVERY:
                changes = self._changes_here
                with connection.cursor() as cursor:
                    cursor.execute(sql, (newest,))
                    found = parse_rows(cursor.fetchall())
                read_at = time.monotonic()
                if found is not None and found.scopes:
                    known = {**known, **found.scopes}  # a new dict: readers may hold the old one
                    newest = max(newest, *(version for version, _ in found.scopes.values()))
                with self._publishing:
                    if changes == self._changes_here:  # else a commit here may have come after that read
                        self._row = None if found is None else found._replace(scopes=known, complete=True)
                        self._read_at, seen = read_at, changes
            for _ in connection.notifies(timeout=self.WAKE_EVERY, stop_after=1):
                read_at = 0.0  # told of a change: read at once


def _listeners_after_fork() -> None:
    for listener in list(_LISTENERS):
        listener._reset()
        listener.engine.dispose(close=False)  # the parent's connections stay the parent's


os.register_at_fork(after_in_child=_listeners_after_fork)


def tell_listeners_here() -> None:
    for listener in list(_LISTENERS):
        listener.changed_here()
