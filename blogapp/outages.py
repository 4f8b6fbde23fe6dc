"""A service this process depends on (Redis, the database) going away and coming back: said in
one line each way, not one traceback per request.

``Outage`` remembers whether the service was last seen down; ``down()`` logs a warning the first
time (then at most once a minute while it lasts) and says whether to try the service again yet,
``up()`` logs once that it is back. Callers decide what to do meanwhile: skip the page cache,
count rate limits in memory, answer 503.
"""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import DBAPIError

REMIND_SECONDS = 60.0  # while an outage lasts, its warning is repeated this often, not per request


class Outage:
    def __init__(self, what: str, logger: logging.Logger, *, retry_seconds: float = 5.0, clock=time.monotonic):
        self.what, self.log, self.retry_seconds, self.clock = what, logger, retry_seconds, clock
        self._since: float | None = None  # when it was found down (None: up, as far as we know)
        self._said = 0.0
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @property
    def is_down(self) -> bool:
        return self._since is not None

    def should_try(self) -> bool:
        """Up, or down long enough that it is worth asking again (one caller at a time then)."""
        if self._since is None:
            return True
        with self._lock:
            now = self.clock()
            if now < self._retry_at:
                return False
            self._retry_at = now + self.retry_seconds  # the others wait for this attempt's verdict
            return True

    def down(self, error: BaseException, meanwhile: str) -> None:
        """The service failed a call: one warning, saying what happens meanwhile."""
        with self._lock:
            now = self.clock()
            first = self._since is None
            if first:
                self._since = now
            self._retry_at = now + self.retry_seconds
            if not first and now - self._said < REMIND_SECONDS:
                return
            self._said = now
        state = "is unreachable" if first else f"is still unreachable after {now - self._since:.0f} s"
        self.log.warning("%s %s (%s); %s", self.what, state, one_line(error), meanwhile)

    def up(self) -> None:
        """A call succeeded: if the service was down, say once that it is back."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            lasted = self.clock() - self._since
            self._since = None
        self.log.warning("%s is back after %.0f s", self.what, lasted)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def database_unreachable(error: BaseException) -> bool:
    """Whether a database error says the database cannot be reached (or is too busy to answer),
    as opposed to a mistake in what was asked. SQLAlchemy's wrapped errors and a driver's own
    (PEP 249 names them alike: a raw connection's errors come unwrapped) are both understood."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    kinds = {kind.__name__ for kind in type(driver_error).__mro__} | {kind.__name__ for kind in type(error).__mro__}
    # SQLite says "no such table" with the same class: a database never set up, not one gone away.
    return bool(kinds & {"OperationalError", "InterfaceError"}) and not any(
        mistake in str(driver_error) for mistake in ("no such table", "no such column", "syntax error"))
