"""``flask worker`` on the RQ back end: ``AppWorker`` (RQ's SimpleWorker in the app's context, its
scheduler a thread of the same process, see ``rq_scheduler``) and ``work()``, the loop around it
that outlives Redis. When Redis goes away the worker's round ends, without a traceback; the loop
waits for Redis (1, 2, 4 ... 30 s between tries, one line each) and, when Redis answers, hands
it the jobs that waited for it and starts a new round. SIGINT and SIGTERM stop it at any point
(while a job runs: after the job, as RQ does; a second signal: at once)."""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError, RedisError, TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested

from .redis_outage import RedisUnavailable, one_line
from .rq_scheduler import SchedulerThread

if TYPE_CHECKING:
    from .rq_backend import RQBackend

log = logging.getLogger(__name__)

RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # seconds between tries to reach Redis: doubled each time, capped
# The defaults of JOBS_SCHEDULER_INTERVAL (how often the scheduler moves due jobs, and renews or
# asks for its locks) and JOBS_SCHEDULER_LOCK_SECONDS (how long a lock outlives its last renewal).
SCHEDULER_INTERVAL, SCHEDULER_LOCK_SECONDS = 1.0, 30.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class RedisAway(StopRequested):
    """Raised where RQ's work loop talks to Redis and cannot reach it: RQ ends its loop as on a
    stop request (not with "unhandled exception" and a traceback, nor by retrying on its own)."""


def _away(exc: BaseException) -> RedisAway:
    away = RedisAway(one_line(exc))
    away.__cause__ = exc
    return away


class AppQueue(Queue):
    """RQ's queue, whose blocking wait for a job ends the worker's round when Redis goes away."""

    @classmethod
    def dequeue_any(cls, *args, **kwargs):
        try:
            return super().dequeue_any(*args, **kwargs)
        except UNREACHABLE as exc:
            raise _away(exc) from exc


class AppWorker(SimpleWorker):
    """RQ's SimpleWorker running every job inside the app's context, with ``SchedulerThread``.

    Jobs run in the worker process itself (no fork per job), so the app and its connection pool
    are built once and never shared across a fork. ``redis_lost`` says why a round ended, if
    Redis went away; ``stop_requested`` is set by SIGINT or SIGTERM, even before RQ's own
    handlers are installed."""

    queue_class = AppQueue

    def __init__(self, *args, app: Flask, stop_requested: threading.Event | None = None,
                 scheduler_connection: Redis | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app
        self.stop_requested = stop_requested or threading.Event()
        self.redis_lost: BaseException | None = None
        self._scheduler_connection = scheduler_connection or self.connection
        self._scheduler: SchedulerThread | None = None
        self._scheduling = self._burst = self._round_over = False

    def work(self, burst: bool = False, *args, with_scheduler: bool = False, **kwargs) -> bool:
        """RQ's work loop; ``with_scheduler`` runs ours (a thread), never RQ's child process."""
        self._burst, self._scheduling = burst, with_scheduler
        return super().work(burst, *args, with_scheduler=False, **kwargs)

    def _reaching_redis(self, call: Callable, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except RedisAway as away:
            self.redis_lost = away.__cause__ or away
            raise
        except UNREACHABLE as exc:
            self.redis_lost = exc
            raise _away(exc) from exc

    def bootstrap(self, *args, **kwargs) -> None:
        # Outside RQ's loop: a RedisAway here leaves work() at once, with no teardown.
        try:
            self._reaching_redis(super().bootstrap, *args, **kwargs)
            if self._scheduling:
                config = self.app.config
                self._scheduler = SchedulerThread(
                    self.queues, self._scheduler_connection,
                    interval=float(config.get("JOBS_SCHEDULER_INTERVAL", SCHEDULER_INTERVAL)),
                    lock_seconds=float(config.get("JOBS_SCHEDULER_LOCK_SECONDS", SCHEDULER_LOCK_SECONDS)))
                if self._burst:
                    self._reaching_redis(self._scheduler.run_once)
                else:
                    self._scheduler.start()
        except RedisAway:
            self._round_over = True
            self._stop_listening()
            raise

    def check_for_suspension(self, burst: bool) -> None:
        if self.stop_requested.is_set():  # a signal came before RQ's handlers were installed
            raise StopRequested()
        self._reaching_redis(super().check_for_suspension, burst)

    def run_maintenance_tasks(self) -> None:
        self._reaching_redis(super().run_maintenance_tasks)

    def dequeue_job_and_maintain_ttl(self, *args, **kwargs):
        return self._reaching_redis(super().dequeue_job_and_maintain_ttl, *args, **kwargs)

    def heartbeat(self, *args, **kwargs) -> None:
        self._reaching_redis(super().heartbeat, *args, **kwargs)

    def execute_job(self, job, queue):
        with self.app.app_context():
            return self._reaching_redis(super().execute_job, job, queue)

    def request_stop(self, signum, frame) -> None:
        self.stop_requested.set()
        if not self._round_over:  # after it, RQ's handler (still installed a moment) must raise nothing
            super().request_stop(signum, frame)

    def _pubsub_exception_handler(self, exc, pubsub, pubsub_thread) -> None:
        if isinstance(exc, RedisConnectionError):
            time.sleep(1.0)  # quietly: the work loop says Redis is away; redis-py subscribes again
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def teardown(self) -> None:
        self._round_over = True
        if self._scheduler is not None:
            self._scheduler.stop()
        if self.redis_lost is None:
            try:
                super().teardown()
                return
            except UNREACHABLE:
                pass  # gone just now: what Redis keeps of this worker expires by itself
        self._stop_listening()

    def _stop_listening(self) -> None:
        """Stop the thread listening for RQ's commands, without telling Redis."""
        if self.pubsub_thread is not None:
            self.pubsub_thread.stop()
            self.pubsub_thread = None

    def let_go(self) -> None:
        """After a round Redis ended: mark this worker dead in Redis, now that it is back (its name
        may be used again), and close its connections."""
        try:
            self.register_death()
        except RedisError:
            pass
        self.connection.close()
        self._scheduler_connection.close()


def app_worker(backend: RQBackend, name: str | None = None, stop_requested: threading.Event | None = None) -> AppWorker:
    """An ``AppWorker`` for the backend's queues, the main one first, on connections of its own.

    RQ sets its worker connection's read timeout past its longest blocking wait; the scheduler
    thread's calls are short, so its connection keeps the back end's short timeouts."""
    app = backend.app
    url, timeout = app.config["REDIS_URL"], backend.redis_timeout
    connection = Redis.from_url(url, socket_connect_timeout=timeout)
    queues = [AppQueue(queue.name, connection=connection) for queue in backend.queues.values()]
    return AppWorker(queues, connection=connection, name=name, app=app, stop_requested=stop_requested,
                     scheduler_connection=Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout))


def work(backend: RQBackend, *, name: str | None = None, burst: bool = False) -> None:
    """Run a worker until SIGINT or SIGTERM (``burst``: until the queues are empty), through any
    number of Redis outages. A burst that cannot reach Redis raises ``RedisUnavailable``."""
    stop = threading.Event()
    with _stopped_by_signals(stop) as listen_again:
        while True:
            worker, lost = None, None
            try:
                worker = app_worker(backend, name, stop)  # reaches Redis already
                worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
                lost = worker.redis_lost
            except RedisAway as away:
                lost = away.__cause__ or away
            except UNREACHABLE as exc:
                lost = exc
            listen_again()  # RQ's handlers, left by the round, belong to a worker that is done
            if lost is None or stop.is_set():
                return
            if burst:
                raise RedisUnavailable(f"Redis at {backend.where} cannot be reached ({one_line(lost)})")
            backend.outage.began(lost)
            if not _wait_for_redis(backend, lost, stop):
                return
            if worker is not None:
                worker.let_go()
            try:
                backend.take_up_waiting()  # says Redis is back, with what waited for it
            except Exception:  # the database, say: the sweeper tries again, the worker works meanwhile
                log.warning("the jobs that waited for Redis could not be handed to it yet", exc_info=True)


def _wait_for_redis(backend: RQBackend, lost: BaseException, stop: threading.Event) -> bool:
    """Try Redis with backoff, one line per try; False if stopped first."""
    delay, error = RETRY_FIRST, lost
    while True:
        log.warning("The worker waits for Redis at %s (%s): next try in %g s", backend.where, one_line(error), delay)
        if stop.wait(delay):
            return False
        try:
            backend.connection.ping()
            return True
        except UNREACHABLE as exc:
            error = exc
        delay = min(delay * 2, RETRY_MAX)


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[Callable[[], None]]:
    """SIGINT and SIGTERM set ``stop`` (RQ installs its own handlers while a round runs; the
    yielded function puts ours back after it). The handlers found are restored at the end."""
    signals = (signal.SIGINT, signal.SIGTERM)
    before = {sig: signal.getsignal(sig) for sig in signals}

    def listen() -> None:
        for sig in signals:
            signal.signal(sig, lambda signum, frame: stop.set())

    if threading.current_thread() is not threading.main_thread():
        yield lambda: None  # signals reach the main thread only: whoever runs us there handles them
        return
    listen()
    try:
        yield listen
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
