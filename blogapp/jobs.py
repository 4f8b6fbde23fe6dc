"""Background jobs: one small interface, two back ends.

    from blogapp import jobs

    @jobs.task("send-pingbacks")
    def send_pingbacks(post_id):            # runs in an app context at SITE_URL: db and url_for work
        ...

    record = jobs.enqueue("send-pingbacks", post.id, key=f"pingbacks:{post.id}")

Every job is a ``JobRecord`` row: ``queued`` -> ``running`` -> ``succeeded`` | ``failed``, with
``retrying`` between attempts. A task asks to be tried again by raising ``TransientJobError``
(a ``requests`` timeout or connection error, or an HTTP 5xx or 429, counts too); any other
exception fails the job at once. Retry *n* waits ``JOBS_BACKOFF_BASE * 2**(n-1)`` seconds, at
most ``JOBS_BACKOFF_MAX``; after ``JOBS_MAX_ATTEMPTS`` runs a transient failure is final.
``key`` makes a job idempotent: while a job with that key is unfinished, enqueueing the key
again returns that job's record.

Back ends (``JOBS_BACKEND``; "auto" is "rq" when ``REDIS_URL`` is set, else "thread"):

- ``thread``: one daemon thread per app runs due jobs from a heap ordered by due time; retries
  wait in the heap. Nothing else to run. Jobs still waiting when the process ends stay
  ``queued``/``retrying`` in the database and are taken up when a later worker thread starts
  (on that process's first enqueue).
- ``rq``: each attempt is an RQ job on queue ``JOBS_QUEUE`` in Redis, run by
  ``flask --app blogapp worker`` (an RQ worker with its scheduler, which enqueues the delayed
  retries). Jobs survive restarts of the web and worker processes.

Before each attempt the record is claimed in one UPDATE (queued|retrying -> running), so an
attempt runs once even when two workers see the same job.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import requests
from flask import Flask, current_app, has_app_context
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import ACTIVE_JOB_STATUSES, JobRecord, JobStatus, utcnow
from .templating import site_request_context

log = logging.getLogger(__name__)

TASKS: dict[str, Callable] = {}
BACKENDS = ("auto", "thread", "rq")
_PENDING = (JobStatus.QUEUED.value, JobStatus.RETRYING.value)
_ACTIVE = tuple(s.value for s in ACTIVE_JOB_STATUSES)


# ---------------------------------------------------------------- tasks and failures


def task(name: str) -> Callable[[Callable], Callable]:
    """Register ``fn(*args, **kwargs)`` as the task ``name``; the function is returned unchanged."""

    def register(fn: Callable) -> Callable:
        existing = TASKS.get(name)
        if existing is not None and (existing.__module__, existing.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"task {name!r} is already registered to {existing.__module__}.{existing.__qualname__}")
        TASKS[name] = fn
        return fn

    return register


class TransientJobError(Exception):
    """A failure worth trying again later.

    With ``status`` (the HTTP status the task got), only 5xx and 429 are transient; any other
    status fails the job at once.
    """

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message or (f"HTTP {status}" if status is not None else "transient failure"))
        self.status = status


def _retryable_status(status: int | None) -> bool:
    return status is not None and (status == 429 or 500 <= status <= 599)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientJobError):
        return exc.status is None or _retryable_status(exc.status)
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return _retryable_status(exc.response.status_code)
    return False


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): base, 2*base, 4*base, ... <= cap."""
    return max(0.0, min(float(cap), float(base) * 2.0 ** min(max(attempt, 1) - 1, 64)))


# ---------------------------------------------------------------- the interface


def init_app(app: Flask) -> None:
    choice = str(app.config["JOBS_BACKEND"]).lower()
    if choice not in BACKENDS:
        raise ValueError(f"JOBS_BACKEND must be one of {', '.join(BACKENDS)}, not {choice!r}")
    if choice == "auto":
        choice = "rq" if app.config["REDIS_URL"] else "thread"
    if choice == "rq":
        if not app.config["REDIS_URL"]:
            raise ValueError("JOBS_BACKEND is 'rq' but REDIS_URL is not set")
        app.extensions["jobs"] = RQBackend(app)
    else:
        app.extensions["jobs"] = ThreadBackend(app)


def backend(app: Flask | None = None) -> ThreadBackend | RQBackend:
    app = app or current_app
    try:
        return app.extensions["jobs"]
    except KeyError:
        raise RuntimeError("blogapp.jobs.init_app(app) was not called") from None


def enqueue(name: str, *args, key: str | None = None, delay: float = 0.0, **kwargs) -> JobRecord:
    """Record a job for the task ``name`` and hand it to the back end; needs an app context.

    Commits the current session first, so the job sees what the caller wrote. Arguments must
    be JSON-serialisable. With ``key``, an unfinished job with the same key is returned instead
    of a new one (``key`` is never passed to the task). ``delay`` seconds from now the job is
    due (``key`` and ``delay`` are never passed to the task). If the back end refuses the job
    (Redis down), the record is returned failed.
    """
    if name not in TASKS:
        raise KeyError(f"no task named {name!r}")
    if key is not None and not 0 < len(key) <= 255:
        raise ValueError("a job key has 1 to 255 characters")
    payload = json.dumps({"args": list(args), "kwargs": kwargs})
    runner = backend()
    db.session.commit()
    if key is not None and (existing := _active_with_key(key)) is not None:
        return existing
    delay = max(0.0, float(delay))
    record = JobRecord(name=name, key=key, args=payload, status=JobStatus.QUEUED.value,
                       next_attempt_at=utcnow() + timedelta(seconds=delay))
    db.session.add(record)
    try:
        db.session.commit()
    except IntegrityError:  # another process enqueued the same key just now
        db.session.rollback()
        existing = _active_with_key(key) if key is not None else None
        if existing is None:
            raise
        return existing
    try:
        runner.submit(record.id, attempt=1, delay=delay)
    except Exception as exc:
        log.exception("job %s (%s) could not be queued", record.id, name)
        record.status = JobStatus.FAILED.value
        record.last_error = f"could not be queued: {_describe(exc)}"
        record.finished_at = utcnow()
        db.session.commit()
    return record


def wait_idle(timeout: float = 10.0, app: Flask | None = None) -> bool:
    """Wait until no job is queued, retrying or running; False if ``timeout`` passed first."""
    return backend(app).wait_idle(timeout)


def shutdown(app: Flask | None = None, timeout: float = 10.0) -> None:
    """Stop taking jobs; the one running is finished, waiting ones stay queued in the database."""
    backend(app).shutdown(timeout)


def _active_with_key(key: str) -> JobRecord | None:
    return db.session.scalar(select(JobRecord).where(JobRecord.key == key, JobRecord.status.in_(_ACTIVE)))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:4000]


# ---------------------------------------------------------------- one attempt, any back end


class Retry(NamedTuple):
    attempt: int  # the number of the next attempt
    delay: float  # seconds until it is due


class Attempt(NamedTuple):
    number: int  # 1 for the first run
    last: bool  # no retry follows a transient failure of this one


_current = threading.local()


def current_attempt() -> Attempt | None:
    """Inside a task: which attempt this is, so a task can tell a final failure from one that will be retried."""
    return getattr(_current, "attempt", None)


def run_job(record_id: int) -> Retry | None:
    """Run one attempt of a job, in an app context. Returns the retry to schedule, if any.

    The task's own database writes are committed together with the outcome.
    """
    config = current_app.config
    claimed = db.session.execute(
        update(JobRecord)
        .where(JobRecord.id == record_id, JobRecord.status.in_(_PENDING))
        .values(status=JobStatus.RUNNING.value, attempts=JobRecord.attempts + 1, next_attempt_at=None,
                updated_at=utcnow())
    ).rowcount
    db.session.commit()
    if not claimed:  # finished, running elsewhere, or deleted
        log.debug("job %s is not waiting to run; skipped", record_id)
        return None
    record = db.session.get(JobRecord, record_id)
    name = record.name
    try:
        fn = TASKS.get(name)
        if fn is None:
            raise LookupError(f"no task named {name!r} in this process")
        payload = json.loads(record.args)
        _current.attempt = Attempt(record.attempts, record.attempts >= int(config["JOBS_MAX_ATTEMPTS"]))
        try:
            result = fn(*payload.get("args", []), **payload.get("kwargs", {}))
        finally:
            _current.attempt = None
        record = db.session.get(JobRecord, record_id)
        record.status = JobStatus.SUCCEEDED.value
        record.result = None if result is None else json.dumps(result, default=str)
        record.finished_at = utcnow()
        db.session.commit()
        return None
    except Exception as exc:
        db.session.rollback()
        return _record_failure(record_id, exc, transient=is_transient(exc), config=config)
    except BaseException as exc:  # SystemExit from a task: the job fails, the worker goes on
        db.session.rollback()
        _record_failure(record_id, exc, transient=False, config=config)
        raise


def _record_failure(record_id: int, exc: BaseException, *, transient: bool, config) -> Retry | None:
    record = db.session.get(JobRecord, record_id)
    record.last_error = _describe(exc)
    if transient and record.attempts < int(config["JOBS_MAX_ATTEMPTS"]):
        delay = backoff_delay(record.attempts, config["JOBS_BACKOFF_BASE"], config["JOBS_BACKOFF_MAX"])
        record.status = JobStatus.RETRYING.value
        record.next_attempt_at = utcnow() + timedelta(seconds=delay)
        attempt = record.attempts + 1
        db.session.commit()
        log.warning("job %s (%s) attempt %s failed, retry in %.2fs: %s", record_id, record.name, attempt - 1, delay, exc)
        return Retry(attempt, delay)
    record.status = JobStatus.FAILED.value
    record.finished_at = utcnow()
    attempts, name = record.attempts, record.name
    db.session.commit()
    log.error("job %s (%s) failed after %s attempt(s)", record_id, name, attempts, exc_info=exc)
    return None


def _run_in_app(app: Flask, record_id: int) -> Retry | None:
    with app.app_context(), site_request_context(app):
        return run_job(record_id)


# ---------------------------------------------------------------- back end 1: a thread


class ThreadBackend:
    """One daemon thread per app, started on the first enqueue, taking due jobs from a heap."""

    name = "thread"

    def __init__(self, app: Flask):
        self.app = app
        self._heap: list[tuple[float, int, int]] = []  # (due, by time.monotonic(); sequence; record id)
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def submit(self, record_id: int, attempt: int, delay: float = 0.0) -> None:
        with self._cv:
            if self._stopping:
                log.warning("job %s stays queued: the job thread is shut down", record_id)
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), record_id))
            if self._thread is None:
                self._busy = True  # until left-over jobs are taken up
                self._thread = threading.Thread(target=self._work, name="blogapp-jobs", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def _take_up_left_over(self) -> None:
        """Queue the jobs an earlier process left waiting; the claim keeps them from running twice."""
        try:
            with self.app.app_context():
                rows = db.session.execute(
                    select(JobRecord.id, JobRecord.next_attempt_at).where(JobRecord.status.in_(_PENDING))
                ).all()
        except Exception:
            log.exception("could not look for waiting jobs")
            rows = []
        now, mono = utcnow(), time.monotonic()
        with self._cv:
            for record_id, due in rows:
                wait = max(0.0, (due - now).total_seconds()) if due else 0.0
                heapq.heappush(self._heap, (mono + wait, next(self._seq), record_id))
            self._busy = False
            self._cv.notify_all()

    def _work(self) -> None:
        self._take_up_left_over()
        while True:
            with self._cv:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cv.wait(self._heap[0][0] - now if self._heap else None)
                _, _, record_id = heapq.heappop(self._heap)
                if any(item[2] == record_id for item in self._heap):
                    continue  # queued twice (taken up as left over, too): one entry is enough
                self._busy = True
            retry = None
            try:
                retry = _run_in_app(self.app, record_id)
            except BaseException:  # the worker outlives any job
                log.exception("job %s could not be run", record_id)
            finally:
                with self._cv:
                    if retry is not None:
                        heapq.heappush(self._heap, (time.monotonic() + retry.delay, next(self._seq), record_id))
                    self._busy = False
                    self._cv.notify_all()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: not self._heap and not self._busy, timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


# ---------------------------------------------------------------- back end 2: RQ on Redis


class RQBackend:
    """Each attempt is an RQ job calling ``run_rq_job(record_id)``; ``flask worker`` runs them."""

    name = "rq"

    def __init__(self, app: Flask):
        try:
            from redis import Redis
            from rq import Queue
        except ImportError as exc:
            raise RuntimeError(f"the rq job back end needs redis and rq: pip install 'blogapp[redis]' ({exc})") from exc
        self.app = app
        self.connection = Redis.from_url(app.config["REDIS_URL"])
        self.queue = Queue(app.config["JOBS_QUEUE"], connection=self.connection)

    def job_id(self, record_id: int, attempt: int) -> str:
        return f"{re.sub(r'[^A-Za-z0-9_-]', '_', self.queue.name)}-{record_id}-{attempt}"

    def submit(self, record_id: int, attempt: int, delay: float = 0.0) -> None:
        options = {
            "args": (record_id,),
            "job_id": self.job_id(record_id, attempt),
            "description": f"blogapp job {record_id}, attempt {attempt}",
            "result_ttl": 0,  # the outcome is in the JobRecord
        }
        if delay <= 0:
            self.queue.enqueue(run_rq_job, **options)
        else:
            # RQ's scheduler counts whole seconds: round up so that a retry never runs early.
            when = datetime.fromtimestamp(math.ceil(time.time() + delay), UTC)
            self.queue.enqueue_at(when, run_rq_job, **options)

    def worker(self, name: str | None = None):
        """An RQ worker for this app's queue (see ``AppWorker``)."""
        return _app_worker_class()([self.queue], connection=self.connection, name=name, app=self.app)

    def wait_idle(self, timeout: float) -> bool:
        """Poll the database: the jobs run in another process."""
        deadline = time.monotonic() + timeout
        while True:
            with self.app.app_context():
                active = db.session.scalar(select(JobRecord.id).where(JobRecord.status.in_(_ACTIVE)).limit(1))
            if active is None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def shutdown(self, timeout: float = 10.0) -> None:
        self.connection.close()


def run_rq_job(record_id: int) -> str:
    """What RQ runs: one attempt of a job in the worker's app, and the retry scheduled if due."""
    app = current_app._get_current_object() if has_app_context() else _default_app()
    rq_backend = backend(app)
    if not isinstance(rq_backend, RQBackend):
        raise RuntimeError("an RQ job reached an app whose JOBS_BACKEND is not rq")
    retry = _run_in_app(app, record_id)
    if retry is None:
        return "done"
    try:
        rq_backend.submit(record_id, retry.attempt, retry.delay)
    except Exception as exc:
        with app.app_context():
            record = db.session.get(JobRecord, record_id)
            record.status = JobStatus.FAILED.value
            record.last_error = f"the retry could not be scheduled: {_describe(exc)}"
            record.finished_at = utcnow()
            db.session.commit()
        raise
    return f"retry {retry.attempt} in {retry.delay:.2f}s"


_default = None
_default_lock = threading.Lock()


def _default_app() -> Flask:
    """The app of a plain ``rq worker`` process, built once from the instance config and environment."""
    global _default
    with _default_lock:
        if _default is None:
            from . import create_app

            _default = create_app()
        return _default


_worker_class = None


def _app_worker_class():
    """``AppWorker``: RQ's SimpleWorker running every job inside the app's context.

    Jobs run in the worker process itself (no fork per job), so the app and its connection
    pool are built once and never shared across a fork.
    """
    global _worker_class
    if _worker_class is None:
        from rq import SimpleWorker

        class AppWorker(SimpleWorker):
            def __init__(self, *args, app: Flask, **kwargs):
                super().__init__(*args, **kwargs)
                self.app = app

            def execute_job(self, job, queue):
                with self.app.app_context():
                    return super().execute_job(job, queue)

        _worker_class = AppWorker
    return _worker_class
