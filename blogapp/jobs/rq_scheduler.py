"""RQ's scheduler, which moves delayed jobs (our retries) onto their queues when they are due, run
as a thread of ``flask worker`` rather than as RQ's child process.

A child outlives a worker killed with ``kill -9`` and keeps each queue's scheduler lock; and RQ's
worker asks for a lock only when it starts and every ten minutes after. As a thread, the scheduler
dies with its worker; its locks lapse ``JOBS_SCHEDULER_LOCK_SECONDS`` later, and every worker's
scheduler asks for them every ``JOBS_SCHEDULER_INTERVAL``, so a new worker moves due jobs within
about that long. The locks are RQ's own (the same keys), so one scheduler works per queue whatever
the mix of workers."""
from __future__ import annotations

import logging
import math
import threading

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.scheduler import RQScheduler
from rq.scripts import acquire_or_refresh_lock

log = logging.getLogger(__name__)


class LeasedLockScheduler(RQScheduler):
    """RQ's scheduler whose queue locks last ``lock_seconds`` from each renewal (RQ's: 60 s more
    than its interval). Only ``acquire_locks`` differs; the moving of due jobs is RQ's."""

    def __init__(self, queues: list[Queue], connection: Redis, lock_seconds: float):
        super().__init__(queues, connection=connection)
        self.lock_seconds = max(1, math.ceil(lock_seconds))  # Redis's EX counts whole seconds

    def acquire_locks(self, auto_start: bool = False) -> set[str]:
        """Take, or keep, the lock of each queue no other scheduler holds; returns those held."""
        held = {name for name in self._queue_names
                if acquire_or_refresh_lock(self.connection, self.get_locking_key(name), self.name,
                                           self.lock_seconds) != "taken"}
        if held != self._acquired_locks:
            if held - self._acquired_locks:
                log.info("Scheduling the delayed jobs of %s", ", ".join(sorted(held - self._acquired_locks)))
            self._scheduled_job_registries = []  # rebuilt for the queues held now
        self._acquired_locks = held
        return held


class SchedulerThread:
    """A ``LeasedLockScheduler`` moving due jobs every ``interval`` seconds, in a daemon thread."""

    THREAD_NAME = "blogapp-rq-scheduler"

    def __init__(self, queues: list[Queue], connection: Redis, *, interval: float, lock_seconds: float):
        self.scheduler = LeasedLockScheduler(queues, connection, lock_seconds)
        self.interval = float(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def move_due_jobs(self) -> None:
        """One round: the locks taken or renewed, then the due jobs of the queues held moved."""
        if self.scheduler.acquire_locks():
            self.scheduler.enqueue_scheduled_jobs()

    def run_once(self) -> None:
        """For a burst: one round, then the locks let go (the next burst's worker is another)."""
        try:
            self.move_due_jobs()
        finally:
            self.scheduler.release_locks()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.THREAD_NAME, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.move_due_jobs()
            except RedisError:
                pass  # Redis away: the worker's loop says so; the next round tries again
            except Exception:
                log.exception("the scheduler could not move the due jobs")
            if self._stop.wait(self.interval):
                return

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and let go of the locks (with Redis away they lapse by themselves)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        try:
            self.scheduler.release_locks()
        except RedisError:
            pass
