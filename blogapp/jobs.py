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

A running job holds a lease (``lease_owner``, ``lease_expires_at``) that a thread of its process
renews every third of ``JOBS_LEASE_SECONDS``. A process that dies (``kill -9``, a crash, a
reboot) stops renewing; every ``JOBS_SWEEP_SECONDS`` each running back end (the web process's job
thread, the RQ worker, and the web processes with RQ) looks for expired leases and runs those jobs
again, with no admin action, so a restarted process or a new worker finishes them within a lease
and a sweep (40 s with the defaults). Tasks are therefore written to be idempotent. A job whose
process died on its last attempt fails, and its task's ``on_give_up`` hook ends what it held.

A task may also raise ``Postpone(seconds)``: not now (a budget is spent), try again later, and
this run does not count as an attempt.

``prepare()`` adds a job's record to the caller's own transaction, so the job is durable exactly
when the caller's writes are (a linkback's claim and the job that verifies it); ``submit()`` then
hands it to the back end, or ``run_here()`` runs it in the calling thread under a lease.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import requests
from flask import Flask, current_app, has_app_context
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .linkback.fetch import transient_status
from .models import ACTIVE_JOB_STATUSES, JobRecord, JobStatus, utcnow
from .templating import site_request_context

log = logging.getLogger(__name__)

TASKS: dict[str, Callable] = {}
GIVE_UP: dict[str, Callable] = {}
# Lanes: what strangers can queue in bulk (the verification of their linkbacks) runs in a lane of
# its own, behind the site's own jobs (sending, importing), so a flood never delays those by more
# than the one verification running.
MAIN, LINKBACKS = "main", "linkbacks"
LANES: dict[str, str] = {}
BACKENDS = ("auto", "thread", "rq")
_PENDING = (JobStatus.QUEUED.value, JobStatus.RETRYING.value)
_ACTIVE = tuple(s.value for s in ACTIVE_JOB_STATUSES)


# ---------------------------------------------------------------- tasks and failures


def task(name: str, *, on_give_up: Callable | None = None, lane: str = MAIN) -> Callable[[Callable], Callable]:
    """Register ``fn(*args, **kwargs)`` as the task ``name``; the function is returned unchanged.

    ``lane``: ``MAIN``, or ``LINKBACKS`` for work that strangers can queue in bulk (taken only when
    no job of the main lane is due).

    ``on_give_up(*args, **kwargs)``, if given, is called (in an app context, its writes committed)
    when the job's process died during its last attempt: the task never ended, so the hook ends
    what it held (a claim, a "verifying" status).
    """

    def register(fn: Callable) -> Callable:
        existing = TASKS.get(name)
        if existing is not None and (existing.__module__, existing.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"task {name!r} is already registered to {existing.__module__}.{existing.__qualname__}")
        if lane not in (MAIN, LINKBACKS):
            raise ValueError(f"a task's lane is {MAIN!r} or {LINKBACKS!r}, not {lane!r}")
        TASKS[name] = fn
        LANES[name] = lane
        if on_give_up is not None:
            GIVE_UP[name] = on_give_up
        return fn

    return register


def lane_of(name: str) -> str:
    return LANES.get(name, MAIN)


class Postpone(Exception):
    """Raised by a task: not now, run me again in ``delay`` seconds; this run is not an attempt."""

    def __init__(self, delay: float, reason: str = "postponed"):
        super().__init__(reason)
        self.delay = max(0.0, float(delay))


class TransientJobError(Exception):
    """A failure worth trying again later.

    With ``status`` (the HTTP status the task got), only 5xx and 429 are transient; any other
    status fails the job at once.
    """

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message or (f"HTTP {status}" if status is not None else "transient failure"))
        self.status = status


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientJobError):
        return exc.status is None or transient_status(exc.status)
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return transient_status(exc.response.status_code)
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
    app.extensions["job_leases"] = Leases(app)
    app.extensions["job_pace"] = {}


def pace(app: Flask, lane: str, seconds_to_wait: Callable[[], float]) -> None:
    """Pace a lane: its next job waits until ``seconds_to_wait()`` is 0 (a CPU budget). The job
    thread just takes nothing from the lane meanwhile, and an RQ worker waits before the job:
    no write, no claim, while the budget refills."""
    app.extensions["job_pace"][lane] = seconds_to_wait


def _pace_wait(app: Flask, lane: str) -> float:
    fn = app.extensions.get("job_pace", {}).get(lane)
    try:
        return max(0.0, float(fn())) if fn is not None else 0.0
    except Exception:  # a broken pace must not stop the queue
        log.exception("pacing the %s lane failed", lane)
        return 0.0


def backend(app: Flask | None = None) -> ThreadBackend | RQBackend:
    app = app or current_app
    try:
        return app.extensions["jobs"]
    except KeyError:
        raise RuntimeError("blogapp.jobs.init_app(app) was not called") from None


def start(app: Flask | None = None) -> None:
    """Start this process's part of the back end now: the job thread (thread), or the sweeper that
    runs again the jobs of dead processes (rq). Called on the first request, by ``flask worker``
    and by gunicorn's worker init; later calls do nothing."""
    backend(app).start()


def enqueue(name: str, *args, key: str | None = None, delay: float = 0.0, **kwargs) -> JobRecord:
    """Record a job for the task ``name`` and hand it to the back end; needs an app context.

    Commits the current session first, so the job sees what the caller wrote. Arguments must
    be JSON-serialisable. With ``key``, an unfinished job with the same key is returned instead
    of a new one (``key`` is never passed to the task). ``delay`` seconds from now the job is
    due (``key`` and ``delay`` are never passed to the task). If the back end refuses the job
    (Redis down), the record is returned failed.
    """
    backend()
    db.session.commit()
    if key is not None and (existing := active_with_key(key)) is not None:
        return existing
    record = prepare(name, *args, key=key, delay=delay, **kwargs)
    try:
        db.session.commit()
    except IntegrityError:  # another process enqueued the same key just now
        db.session.rollback()
        existing = active_with_key(key) if key is not None else None
        if existing is None:
            raise
        return existing
    submit(record)
    return record


def prepare(name: str, *args, key: str | None = None, delay: float = 0.0, run_here: bool = False,
            **kwargs) -> JobRecord:
    """Add a job's record to the current session, uncommitted: it becomes durable with the
    caller's own writes, in the same commit. After that commit, ``submit(record)`` queues it, or,
    with ``run_here``, ``run_here(record)`` runs it in the calling thread (the record is created
    running, under a lease of this process, so no other process takes it while it lives)."""
    if name not in TASKS:
        raise KeyError(f"no task named {name!r}")
    if key is not None and not 0 < len(key) <= 255:
        raise ValueError("a job key has 1 to 255 characters")
    payload = json.dumps({"args": list(args), "kwargs": kwargs})
    delay = max(0.0, float(delay))
    if run_here:
        leases = _leases()
        owner = leases.new_owner()
        record = JobRecord(name=name, key=key, args=payload, status=JobStatus.RUNNING.value, attempts=1,
                           lease_owner=owner, lease_expires_at=leases.expiry())
        leases.hold(owner)  # renewed from now: the caller commits it in a moment
    else:
        record = JobRecord(name=name, key=key, args=payload, status=JobStatus.QUEUED.value,
                           next_attempt_at=utcnow() + timedelta(seconds=delay))
    db.session.add(record)
    return record


def submit(record: JobRecord) -> None:
    """Hand a committed, queued record to the back end; if it refuses (Redis down), the record fails."""
    delay = max(0.0, (record.next_attempt_at - utcnow()).total_seconds()) if record.next_attempt_at else 0.0
    record_id, name = record.id, record.name
    try:
        backend().submit(record_id, attempt=1, delay=delay, lane=lane_of(name))
    except Exception as exc:
        log.exception("job %s (%s) could not be queued", record_id, name)
        record = db.session.get(JobRecord, record_id)
        record.status = JobStatus.FAILED.value
        record.last_error = f"could not be queued: {_describe(exc)}"
        record.finished_at = utcnow()
        db.session.commit()


def run_here(record: JobRecord):
    """Run a committed record made by ``prepare(..., run_here=True)`` in this thread (needs an app
    context) and return what the task returned (None if it failed). A retry or a postponement it
    asks for goes to the back end like any other."""
    record_id, owner = record.id, record.lease_owner
    retry, result = _execute(record_id, owner, here=True)
    if retry is not None:
        backend().submit(record_id, retry.attempt, retry.delay, fresh=retry.postponed, lane=retry.lane, due=retry.due)
    return result


def wait_idle(timeout: float = 10.0, app: Flask | None = None) -> bool:
    """Wait until no job is queued, retrying or running; False if ``timeout`` passed first."""
    return backend(app).wait_idle(timeout)


def shutdown(app: Flask | None = None, timeout: float = 10.0) -> None:
    """Stop taking jobs; the one running is finished, waiting ones stay queued in the database."""
    app = app or current_app
    backend(app).shutdown(timeout)
    app.extensions["job_leases"].stop()


def active_with_key(key: str) -> JobRecord | None:
    """The unfinished job with this key, if any."""
    return db.session.scalar(select(JobRecord).where(JobRecord.key == key, JobRecord.status.in_(_ACTIVE)))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:4000]


# ---------------------------------------------------------------- leases


class Leases:
    """The leases this process holds on running jobs, all renewed by one thread."""

    THREAD_NAME = "blogapp-job-leases"

    def __init__(self, app: Flask):
        self.app = app
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def seconds(self) -> float:
        return float(self.app.config["JOBS_LEASE_SECONDS"])

    def expiry(self) -> datetime:
        return utcnow() + timedelta(seconds=self.seconds)

    @staticmethod
    def new_owner() -> str:
        """Unique per attempt; says which process holds it (host and pid), for whoever reads the table."""
        return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(6)}"

    def hold(self, owner: str) -> None:
        with self._lock:
            self._held.add(owner)
            forked = self._pid != os.getpid()  # a thread does not survive a fork: start one here
            if self._thread is None or forked or not self._thread.is_alive():
                self._pid = os.getpid()
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._renew, args=(self._stop,), name=self.THREAD_NAME,
                                                daemon=True)
                self._thread.start()

    def release(self, owner: str) -> None:
        with self._lock:
            self._held.discard(owner)

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(self.seconds / 3):
            with self._lock:
                owners = list(self._held)
            if not owners:
                continue
            try:
                with self.app.app_context():
                    db.session.execute(
                        update(JobRecord)
                        .where(JobRecord.lease_owner.in_(owners), JobRecord.status == JobStatus.RUNNING.value)
                        .values(lease_expires_at=self.expiry())
                    )
                    db.session.commit()
            except Exception:  # the database is away for a moment: the next round tries again
                log.warning("could not renew the leases of running jobs", exc_info=True)

    def stop(self) -> None:
        self._stop.set()


def _leases(app: Flask | None = None) -> Leases:
    return (app or current_app).extensions["job_leases"]


def sweep(app: Flask) -> list[int]:
    """Run again the jobs whose process died: running, with a lease left to expire. Returns their ids.

    Each is taken back in one conditional UPDATE (running, same owner, lease still expired), so
    of several processes sweeping at once one wins, and a lease renewed meanwhile is left alone.
    A job past its last attempt fails instead; its task's ``on_give_up`` hook first ends what it
    held (hooks are idempotent: should this process die between the two, the next sweep does both).
    """
    config = app.config
    lease = float(config["JOBS_LEASE_SECONDS"])
    max_attempts = int(config["JOBS_MAX_ATTEMPTS"])
    revived: list[tuple[int, int, str]] = []
    with app.app_context():
        now = utcnow()
        lapsed = or_(JobRecord.lease_expires_at < now,
                     # running before leases existed (an older release): by its last change
                     and_(JobRecord.lease_expires_at.is_(None), JobRecord.updated_at < now - timedelta(seconds=lease)))
        expired = db.session.execute(
            select(JobRecord.id, JobRecord.lease_owner, JobRecord.attempts, JobRecord.name, JobRecord.args).where(
                JobRecord.status == JobStatus.RUNNING.value, lapsed)
        ).all()
        for record_id, owner, attempts, name, args in expired:
            final = attempts >= max_attempts
            values = {"lease_owner": None, "lease_expires_at": None,
                      "last_error": "the process running it stopped (its lease expired)"}
            if final:
                values.update(status=JobStatus.FAILED.value, finished_at=now)
                _give_up(app, name, args)
            else:
                values.update(status=JobStatus.RETRYING.value, next_attempt_at=now)
            same_owner = JobRecord.lease_owner == owner if owner is not None else JobRecord.lease_owner.is_(None)
            won = db.session.execute(
                update(JobRecord)
                .where(JobRecord.id == record_id, JobRecord.status == JobStatus.RUNNING.value, same_owner, lapsed)
                .values(**values)
            ).rowcount
            db.session.commit()
            if not won:
                continue
            if final:
                log.error("job %s (%s): the process running its last attempt stopped; it failed", record_id, name)
            else:
                log.warning("job %s (%s): the process running it stopped; it runs again", record_id, name)
                revived.append((record_id, attempts + 1, lane_of(name)))
    for record_id, attempt, lane in revived:
        try:
            backend(app).submit(record_id, attempt, 0.0, lane=lane)
        except Exception:  # Redis away: the record waits, retrying, for a later sweep's pass over waiting jobs
            log.exception("job %s could not be queued again", record_id)
    return [record_id for record_id, _, _ in revived]


def _give_up(app: Flask, name: str, args: str) -> None:
    hook = GIVE_UP.get(name)
    if hook is None:
        return
    try:
        payload = json.loads(args)
        with app.app_context(), site_request_context(app):
            hook(*payload.get("args", []), **payload.get("kwargs", {}))
            db.session.commit()
    except Exception:
        log.exception("ending what the job %s held failed", name)


# ---------------------------------------------------------------- one attempt, any back end


class Retry(NamedTuple):
    attempt: int  # the number of the next attempt
    delay: float  # seconds until it is due
    postponed: bool = False  # asked for by the task (Postpone), not a failure
    lane: str = MAIN
    due: datetime | None = None  # the record's next_attempt_at, for a postponed job's RQ id


class Attempt(NamedTuple):
    number: int  # 1 for the first run
    last: bool  # no retry follows a transient failure of this one
    here: bool = False  # run by run_here in the thread that made it (someone is waiting), not by a back end


_current = threading.local()


def current_attempt() -> Attempt | None:
    """Inside a task: which attempt this is, so a task can tell a final failure from one that will be retried."""
    return getattr(_current, "attempt", None)


def run_job(record_id: int) -> Retry | None:
    """Run one attempt of a job, in an app context. Returns the retry to schedule, if any.

    The task's own database writes are committed together with the outcome.
    """
    leases = _leases()
    owner = leases.new_owner()
    claimed = db.session.execute(
        update(JobRecord)
        .where(JobRecord.id == record_id, JobRecord.status.in_(_PENDING))
        .values(status=JobStatus.RUNNING.value, attempts=JobRecord.attempts + 1, next_attempt_at=None,
                updated_at=utcnow(), lease_owner=owner, lease_expires_at=leases.expiry())
    ).rowcount
    db.session.commit()
    if not claimed:  # finished, running elsewhere, or deleted
        log.debug("job %s is not waiting to run; skipped", record_id)
        return None
    leases.hold(owner)
    return _execute(record_id, owner)[0]


def _execute(record_id: int, owner: str, here: bool = False) -> tuple[Retry | None, object]:
    """The attempt itself, under the lease ``owner``; the outcome is written only while we hold it.
    Returns the retry to schedule, if any, and what the task returned."""
    config = current_app.config
    leases = _leases()
    try:
        record = db.session.get(JobRecord, record_id)
        name = record.name
        try:
            fn = TASKS.get(name)
            if fn is None:
                raise LookupError(f"no task named {name!r} in this process")
            payload = json.loads(record.args)
            _current.attempt = Attempt(record.attempts, record.attempts >= int(config["JOBS_MAX_ATTEMPTS"]), here)
            try:
                result = fn(*payload.get("args", []), **payload.get("kwargs", {}))
            finally:
                _current.attempt = None
            done = db.session.execute(
                update(JobRecord)
                .where(JobRecord.id == record_id, JobRecord.lease_owner == owner)
                .values(status=JobStatus.SUCCEEDED.value, finished_at=utcnow(), lease_owner=None,
                        lease_expires_at=None, result=None if result is None else json.dumps(result, default=str))
            ).rowcount
            if not done:  # our lease expired and another process runs the job: its outcome stands
                db.session.rollback()
                log.warning("job %s (%s) lost its lease while running; its outcome is left to the new run",
                            record_id, name)
                return None, None
            db.session.commit()
            return None, result
        except Postpone as postpone:
            db.session.rollback()
            return _postpone(record_id, owner, postpone), None
        except Exception as exc:
            db.session.rollback()
            return _record_failure(record_id, owner, exc, transient=is_transient(exc), config=config), None
        except BaseException as exc:  # SystemExit from a task: the job fails, the worker goes on
            db.session.rollback()
            _record_failure(record_id, owner, exc, transient=False, config=config)
            raise
    finally:
        leases.release(owner)


def _held(record_id: int, owner: str) -> JobRecord | None:
    record = db.session.get(JobRecord, record_id)
    if record is None or record.lease_owner != owner:
        log.warning("job %s lost its lease while running; its outcome is left to the new run", record_id)
        return None
    return record


def _postpone(record_id: int, owner: str, postpone: Postpone) -> Retry | None:
    record = _held(record_id, owner)
    if record is None:
        return None
    record.attempts -= 1  # not an attempt: the task did not try
    record.status = (JobStatus.RETRYING if record.attempts else JobStatus.QUEUED).value
    record.next_attempt_at = utcnow() + timedelta(seconds=postpone.delay)
    record.lease_owner = record.lease_expires_at = None
    attempt, due, lane = record.attempts + 1, record.next_attempt_at, lane_of(record.name)
    db.session.commit()
    log.debug("job %s postponed %.2fs: %s", record_id, postpone.delay, postpone)
    return Retry(attempt, postpone.delay, postponed=True, lane=lane, due=due)


def _record_failure(record_id: int, owner: str, exc: BaseException, *, transient: bool, config) -> Retry | None:
    record = _held(record_id, owner)
    if record is None:
        return None
    record.last_error = _describe(exc)
    record.lease_owner = record.lease_expires_at = None
    if transient and record.attempts < int(config["JOBS_MAX_ATTEMPTS"]):
        delay = backoff_delay(record.attempts, config["JOBS_BACKOFF_BASE"], config["JOBS_BACKOFF_MAX"])
        record.status = JobStatus.RETRYING.value
        record.next_attempt_at = utcnow() + timedelta(seconds=delay)
        attempt = record.attempts + 1
        db.session.commit()
        log.warning("job %s (%s) attempt %s failed, retry in %.2fs: %s", record_id, record.name, attempt - 1, delay, exc)
        return Retry(attempt, delay, lane=lane_of(record.name))
    record.status = JobStatus.FAILED.value
    record.finished_at = utcnow()
    attempts, name = record.attempts, record.name
    db.session.commit()
    log.error("job %s (%s) failed after %s attempt(s)", record_id, name, attempts, exc_info=exc)
    return None


def _run_in_app(app: Flask, record_id: int) -> Retry | None:
    with app.app_context(), site_request_context(app):
        return run_job(record_id)


class StartOnFirstRequest:
    """WSGI: start the process's job back end when the first request comes in (``flask run``,
    gunicorn, any server), so a restarted web process takes up what a dead one left."""

    def __init__(self, app: Flask, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app
        self.started = False

    def __call__(self, environ, start_response):
        if not self.started:
            self.started = True
            try:
                start(self.app)
            except Exception:
                log.exception("the job back end could not be started")
        return self.wsgi_app(environ, start_response)


class Sweeper:
    """A thread calling ``sweep(app)`` every ``JOBS_SWEEP_SECONDS`` (and ``also()`` after it)."""

    THREAD_NAME = "blogapp-job-sweeper"

    def __init__(self, app: Flask, also: Callable[[], None] | None = None, at_start: bool = True):
        self.app, self.also, self.at_start = app, also, at_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name=self.THREAD_NAME, daemon=True)
                self._thread.start()

    def once(self) -> None:
        try:
            sweep(self.app)
            if self.also is not None:
                self.also()
        except Exception:
            log.warning("sweeping for the jobs of stopped processes failed", exc_info=True)

    def _loop(self) -> None:
        if self.at_start:
            self.once()
        while not self._stop.wait(float(self.app.config["JOBS_SWEEP_SECONDS"])):
            self.once()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:  # not between a thread's creation and its start
            self._stop.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


# ---------------------------------------------------------------- back end 1: a thread


class ThreadBackend:
    """One daemon thread per app, started on the first request or enqueue, taking due jobs from a
    heap per lane (the main lane first); a sweeper beside it takes up what other processes left
    (expired leases, overdue jobs)."""

    name = "thread"

    def __init__(self, app: Flask):
        self.app = app
        # Per lane: (due, by time.monotonic(); sequence; record id).
        self._heaps: dict[str, list[tuple[float, int, int]]] = {MAIN: [], LINKBACKS: []}
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._sweeper = Sweeper(app, also=self._take_up_overdue, at_start=False)  # _work sweeps first

    def start(self) -> None:
        with self._cv:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None and not self._stopping:
            self._busy = True  # until left-over jobs are taken up
            self._thread = threading.Thread(target=self._work, name="blogapp-jobs", daemon=True)
            self._thread.start()

    def submit(self, record_id: int, attempt: int, delay: float = 0.0, fresh: bool = False, lane: str = MAIN,
               due: datetime | None = None) -> None:
        with self._cv:
            if self._stopping:
                log.warning("job %s stays queued: the job thread is shut down", record_id)
                return
            heapq.heappush(self._heaps[lane], (time.monotonic() + delay, next(self._seq), record_id))
            self._start_locked()
            self._cv.notify_all()

    def _take_up_left_over(self) -> None:
        """Queue the jobs an earlier process left waiting; the claim keeps them from running twice."""
        self._take_up(grace=0.0)
        with self._cv:
            self._busy = False
            self._cv.notify_all()

    def _take_up_overdue(self) -> None:
        """Jobs overdue by a sweep's interval are in no live process's heap (their process died), or
        their process is busy: either way, this one may run them."""
        self._take_up(grace=float(self.app.config["JOBS_SWEEP_SECONDS"]))

    def _take_up(self, grace: float) -> None:
        try:
            with self.app.app_context():
                now = utcnow()
                waiting = select(JobRecord.id, JobRecord.next_attempt_at, JobRecord.name).where(
                    JobRecord.status.in_(_PENDING))
                if grace:
                    waiting = waiting.where(or_(JobRecord.next_attempt_at.is_(None),
                                                JobRecord.next_attempt_at <= now - timedelta(seconds=grace)))
                rows = db.session.execute(waiting).all()
        except Exception:
            log.exception("could not look for waiting jobs")
            return
        now, mono = utcnow(), time.monotonic()
        with self._cv:
            queued = {item[2] for heap in self._heaps.values() for item in heap}
            for record_id, due, name in rows:
                if record_id in queued:
                    continue
                wait = max(0.0, (due - now).total_seconds()) if due else 0.0
                heapq.heappush(self._heaps[lane_of(name)], (mono + wait, next(self._seq), record_id))
            self._cv.notify_all()

    def _next_due(self, now: float) -> tuple[str | None, float | None]:
        """The lane to take from now (the main lane first), else when the next job is due."""
        dues = []
        for lane in (MAIN, LINKBACKS):
            heap = self._heaps[lane]
            if not heap:
                continue
            if heap[0][0] > now:
                dues.append(heap[0][0])
            elif (wait := _pace_wait(self.app, lane)) > 0:
                dues.append(now + wait)  # due, but its lane's budget is spent
            else:
                return lane, None
        return None, min(dues) if dues else None

    def _work(self) -> None:
        sweep(self.app)  # a dead process's running jobs first: they go into the heap
        self._take_up_left_over()
        self._sweeper.start()
        while True:
            with self._cv:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    lane, due = self._next_due(now)
                    if lane is not None:
                        break
                    self._cv.wait(due - now if due is not None else None)
                heap = self._heaps[lane]
                _, _, record_id = heapq.heappop(heap)
                if any(item[2] == record_id for item in heap):
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
                        heapq.heappush(self._heaps[retry.lane],
                                       (time.monotonic() + retry.delay, next(self._seq), record_id))
                    self._busy = False
                    self._cv.notify_all()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: not any(self._heaps.values()) and not self._busy, timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
            thread = self._thread
        self._sweeper.stop(timeout)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


# ---------------------------------------------------------------- back end 2: RQ on Redis


class RQBackend:
    """Each attempt is an RQ job calling ``run_rq_job(record_id)``; ``flask worker`` runs them.

    The linkbacks lane is a second queue (``<JOBS_QUEUE>-linkbacks``), which the worker serves
    only when the main one is empty."""

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
        self.queues = {MAIN: self.queue,
                       LINKBACKS: Queue(f"{app.config['JOBS_QUEUE']}-{LINKBACKS}", connection=self.connection)}
        self._sweeper = Sweeper(app, also=self.take_up_lost)

    def start(self) -> None:
        self._sweeper.start()

    def job_id(self, record_id: int, attempt: int, lane: str = MAIN) -> str:
        return f"{re.sub(r'[^A-Za-z0-9_-]', '_', self.queues[lane].name)}-{record_id}-{attempt}"

    def take_up_lost(self) -> list[int]:
        """Queue again the waiting jobs that Redis does not hold: a process died between recording a
        job and queueing it, Redis refused it, or Redis lost its data. Only jobs overdue by two
        sweeps are looked at, and one whose RQ job exists is left alone (a busy worker is not a
        lost job). Returns their ids."""
        from rq.job import Job

        grace = 2 * float(self.app.config["JOBS_SWEEP_SECONDS"])
        with self.app.app_context():
            overdue = db.session.execute(
                select(JobRecord.id, JobRecord.attempts, JobRecord.name, JobRecord.next_attempt_at).where(
                    JobRecord.status.in_(_PENDING),
                    or_(JobRecord.next_attempt_at.is_(None),
                        JobRecord.next_attempt_at <= utcnow() - timedelta(seconds=grace)))
            ).all()
        lost = []
        for record_id, attempts, name, due in overdue:
            lane, attempt = lane_of(name), attempts + 1
            candidates = [self.job_id(record_id, attempt, lane)]
            if due is not None:
                candidates.append(self._postponed_id(record_id, attempt, lane, due))
            if any(Job.exists(job_id, connection=self.connection) for job_id in candidates):
                continue
            log.warning("job %s (%s) was waiting with nothing in Redis to run it; queued again", record_id, name)
            self.submit(record_id, attempt, 0.0, lane=lane)
            lost.append(record_id)
        return lost

    def _postponed_id(self, record_id: int, attempt: int, lane: str, due: datetime) -> str:
        # The attempt's own id is taken by the RQ job that postponed itself, still running as it
        # schedules this one; the due time (from the record) makes the new id known to the sweep.
        return f"{self.job_id(record_id, attempt, lane)}-at{int(due.replace(tzinfo=UTC).timestamp())}"

    def submit(self, record_id: int, attempt: int, delay: float = 0.0, fresh: bool = False, lane: str = MAIN,
               due: datetime | None = None) -> None:
        """``fresh``: the attempt's number is already taken by the RQ job running now (a task that
        postponed itself), so this one gets an id of its own, from its record's ``due`` time."""
        queue = self.queues[lane]
        if fresh:
            job_id = self._postponed_id(record_id, attempt, lane, due or utcnow() + timedelta(seconds=delay))
        else:
            job_id = self.job_id(record_id, attempt, lane)
        options = {
            "args": (record_id,),
            "job_id": job_id,
            "description": f"blogapp job {record_id}, attempt {attempt}",
            "result_ttl": 0,  # the outcome is in the JobRecord
        }
        if delay <= 0:
            queue.enqueue(run_rq_job, **options)
        else:
            # RQ's scheduler counts whole seconds: round up so that a retry never runs early.
            when = datetime.fromtimestamp(math.ceil(time.time() + delay), UTC)
            queue.enqueue_at(when, run_rq_job, **options)

    def worker(self, name: str | None = None):
        """An RQ worker for this app's queues, the main one first (see ``AppWorker``)."""
        return _app_worker_class()([self.queues[MAIN], self.queues[LINKBACKS]], connection=self.connection,
                                   name=name, app=self.app)

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
        self._sweeper.stop(timeout)
        self.connection.close()


RQ_PACE_MAX = 60.0  # seconds an RQ worker waits for a paced lane before running the job anyway


def run_rq_job(record_id: int) -> str:
    """What RQ runs: one attempt of a job in the worker's app, and the retry scheduled if due."""
    app = current_app._get_current_object() if has_app_context() else _default_app()
    rq_backend = backend(app)
    if not isinstance(rq_backend, RQBackend):
        raise RuntimeError("an RQ job reached an app whose JOBS_BACKEND is not rq")
    with app.app_context():
        name = db.session.scalar(select(JobRecord.name).where(JobRecord.id == record_id))
    if name is not None and (wait := _pace_wait(app, lane_of(name))) > 0:
        time.sleep(min(wait, RQ_PACE_MAX))  # longer: the task postpones itself
    retry = _run_in_app(app, record_id)
    if retry is None:
        return "done"
    try:
        rq_backend.submit(record_id, retry.attempt, retry.delay, fresh=retry.postponed, lane=retry.lane, due=retry.due)
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
