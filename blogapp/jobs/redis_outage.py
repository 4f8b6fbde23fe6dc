"""Redis away, as one process of the RQ back end sees it: said once when it goes and once when it
is back; meanwhile no thread of the process waits on it, and the jobs the process could not queue
wait in the database, their records unchanged, for the sweeper to hand them over."""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


def redis_place(url: str) -> str:
    """Where a Redis URL points, for messages: host and port, or a socket's path (never a password)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def one_line(exc: BaseException) -> str:
    """A Redis client error as one short line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class RedisUnavailable(Exception):
    """Redis cannot be reached by ``flask worker --burst``, which does not wait for it."""


class RedisOutage:
    """Whether this process found Redis away, and the jobs it could not queue since."""

    def __init__(self, where: str):
        self.where = where  # redis_place() of its URL
        self._lock = threading.Lock()
        self._since: float | None = None  # time.monotonic() of the outage's first failure
        self._waiting: set[int] = set()

    @property
    def away(self) -> bool:
        return self._since is not None

    def began(self, exc: BaseException) -> None:
        """A call to Redis failed: the first failure of an outage is logged, later ones are not."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("Redis at %s cannot be reached (%s): jobs wait in the database until it answers",
                    self.where, one_line(exc))

    def wait(self, record_id: int) -> None:
        """A job this process could not queue: handed to Redis with the others when it is back."""
        with self._lock:
            self._waiting.add(record_id)

    def take_waiting(self) -> set[int]:
        """The jobs waiting for Redis, no longer kept here: the caller hands them over, or puts
        them back with ``wait_again``."""
        with self._lock:
            waiting, self._waiting = self._waiting, set()
        return waiting

    def wait_again(self, record_ids: set[int]) -> None:
        with self._lock:
            self._waiting |= record_ids

    def ended(self, handed: int) -> None:
        """Redis answered again (and ``handed`` waiting jobs went to it): said once per outage."""
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.info("Redis at %s is back after %.0f s: %d waiting job(s) handed to it",
                     self.where, time.monotonic() - since, handed)
