"""The RQ back end (``JOBS_BACKEND = "rq"``): each attempt is an RQ job on Redis calling
``run_rq_job(record_id, attempt=n)``, run by ``flask worker`` (``rq_worker``: RQ's SimpleWorker in
the app's context, its scheduler a thread, through Redis outages); the linkbacks lane is a second
queue, served only when the main one is empty. A sweeper in every process with this back end
hands Redis the waiting jobs it does not hold (``take_up_waiting``): those Redis refused while it
was away, and any other overdue one."""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app, has_app_context
from sqlalchemy import or_, select

from ..extensions import db
from ..models import JobRecord, utcnow
from . import current
from .attempt import run_in_app
from .pacing import pace_wait
from .records import ACTIVE, PENDING
from .redis_outage import RedisOutage, redis_place
from .sweep import Sweeper
from .tasks import LINKBACKS, MAIN, lane_of

log = logging.getLogger(__name__)
LOST_IDS_SHOWN = 20  # record ids named in the one line about jobs found lost
LIVE_RQ_STATES = ("queued", "scheduled", "deferred", "started")  # an RQ job in these will run, or runs


class RQBackend:
    """Each attempt is an RQ job calling ``run_rq_job(record_id, attempt=n)``; ``flask worker`` runs them.

    The linkbacks lane is a second queue (``<JOBS_QUEUE>-linkbacks``), which the worker serves
    only when the main one is empty."""

    name = "rq"

    def __init__(self, app: Flask):
        try:
            from redis import Redis
            from redis.backoff import NoBackoff
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.retry import Retry
            from rq import Queue
        except ImportError as exc:
            raise RuntimeError(f"the rq job back end needs redis and rq: pip install 'blogapp[redis]' ({exc})") from exc
        self.app = app
        self.where = redis_place(app.config["REDIS_URL"])
        # Request threads queue jobs through this connection: a Redis away or hung costs them about
        # this long, once (then the outage is known and they skip Redis until the sweeper finds it
        # back), where redis-py's default (no timeout) waits for ever on a hung one. One immediate
        # retry on a connection error: a pooled connection that a restarted Redis closed.
        self.redis_timeout = float(app.config.get("JOBS_REDIS_TIMEOUT", 1.0))
        self.connection = Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=self.redis_timeout, socket_timeout=self.redis_timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))
        self.queue = Queue(app.config["JOBS_QUEUE"], connection=self.connection)
        self.queues = {MAIN: self.queue,
                       LINKBACKS: Queue(f"{app.config['JOBS_QUEUE']}-{LINKBACKS}", connection=self.connection)}
        self.outage = RedisOutage(self.where)
        self._sweeper = Sweeper(app, also=self.take_up_waiting)

    def start(self) -> None:
        self._sweeper.start()

    def job_id(self, record_id: int, attempt: int, lane: str = MAIN) -> str:
        return f"{re.sub(r'[^A-Za-z0-9_-]', '_', self.queues[lane].name)}-{record_id}-{attempt}"

    def take_up_waiting(self) -> list[int]:
        """The sweeper's part on RQ: hand Redis the jobs that wait for it (``take_up_lost``), or,
        while it is away, find out whether it is back. Returns the ids of the jobs handed over.

        The outage is said once when it begins (here, or wherever a call to Redis failed) and once
        when it ends, with the number of waiting jobs handed over then."""
        from redis.exceptions import RedisError

        waiting = self.outage.take_waiting()
        # Only an outage known before the ping can be said over: one that a request thread found
        # while this sweep ran is not disproved by a sweep that never asked Redis.
        was_away = self.outage.away
        try:
            if was_away:
                self.connection.ping()
            handed = self.take_up_lost(waiting)
        except BaseException as exc:
            self.outage.wait_again(waiting)  # a submit that went through is not repeated: its RQ job exists
            if not isinstance(exc, RedisError):
                raise
            self.outage.began(exc)
            return []
        if was_away:
            self.outage.ended(len(handed))
        return handed

    def take_up_lost(self, waiting: set[int] = frozenset()) -> list[int]:
        """Queue again the waiting jobs that Redis does not hold: ``waiting`` (ids this process
        could not queue, Redis being away) and any job overdue by two sweeps (a process died
        between recording a job and queueing it, or Redis lost its data). A job whose RQ job
        exists is left alone (a busy worker is not a lost job). Returns the ids queued; raises
        Redis's error if it is away."""
        grace = 2 * float(self.app.config["JOBS_SWEEP_SECONDS"])
        overdue = or_(JobRecord.next_attempt_at.is_(None),
                      JobRecord.next_attempt_at <= utcnow() - timedelta(seconds=grace))
        with self.app.app_context():
            rows = db.session.execute(
                select(JobRecord.id, JobRecord.attempts, JobRecord.name, JobRecord.next_attempt_at).where(
                    JobRecord.status.in_(PENDING), or_(overdue, JobRecord.id.in_(waiting)) if waiting else overdue)
            ).all()
        queued, lost = [], []
        for record_id, attempts, name, due in rows:
            lane, attempt = lane_of(name), attempts + 1
            candidates = [self.job_id(record_id, attempt, lane)]
            if due is not None:
                candidates.append(self._postponed_id(record_id, attempt, lane, due))
            if self._held_in_redis(candidates):
                continue
            delay = max(0.0, (due - utcnow()).total_seconds()) if due is not None else 0.0
            self._enqueue(record_id, attempt, delay, lane=lane)  # Redis's error, if any, goes to the caller
            queued.append(record_id)
            if record_id not in waiting:
                lost.append(record_id)
        if lost:  # not a line per job: after Redis lost its data, they may be many
            shown = ", ".join(map(str, lost[:LOST_IDS_SHOWN])) + (", ..." if len(lost) > LOST_IDS_SHOWN else "")
            log.warning("%d job(s) were waiting with nothing in Redis to run them; queued again: %s", len(lost), shown)
        return queued

    def _held_in_redis(self, job_ids: list[str]) -> bool:
        """Whether one of these RQ jobs is still to run, or runs now (a busy worker is not a lost
        job). One left failed or finished does not count (its id is used again); one a worker left
        started when Redis went away counts until RQ's cleanup of abandoned jobs fails it."""
        from rq.job import Job

        return any(job is not None and job.get_status(refresh=False) in LIVE_RQ_STATES
                   for job in Job.fetch_many(job_ids, connection=self.connection))

    def _postponed_id(self, record_id: int, attempt: int, lane: str, due: datetime) -> str:
        # The attempt's own id is taken by the RQ job that postponed itself, still running as it
        # schedules this one; the due time (from the record) makes the new id known to the sweep.
        return f"{self.job_id(record_id, attempt, lane)}-at{int(due.replace(tzinfo=UTC).timestamp())}"

    def submit(self, record_id: int, attempt: int, delay: float = 0.0, fresh: bool = False, lane: str = MAIN,
               due: datetime | None = None) -> bool:
        """Queue an attempt in Redis. False if Redis is away: the record waits in the database as it
        is (queued or retrying) and this process's sweeper hands it over when Redis is back (any
        process's, two sweeps after it is due, should this one end first).

        ``fresh``: the attempt's number is already taken by the RQ job running now (a task that
        postponed itself), so this one gets an id of its own, from its record's ``due`` time."""
        from redis.exceptions import RedisError

        if not self.outage.away:  # while it is away, no thread waits on it
            try:
                self._enqueue(record_id, attempt, delay, fresh=fresh, lane=lane, due=due)
                return True
            except RedisError as exc:
                self.outage.began(exc)
        self.outage.wait(record_id)
        return False

    def _enqueue(self, record_id: int, attempt: int, delay: float = 0.0, fresh: bool = False, lane: str = MAIN,
                 due: datetime | None = None) -> None:
        queue = self.queues[lane]
        if fresh:
            job_id = self._postponed_id(record_id, attempt, lane, due or utcnow() + timedelta(seconds=delay))
        else:
            job_id = self.job_id(record_id, attempt, lane)
        options = {
            "args": (record_id,),
            "kwargs": {"attempt": attempt},  # an RQ job of an attempt made already claims nothing
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
        """An RQ worker for this app's queues, the main one first (see ``rq_worker.AppWorker``)."""
        from .rq_worker import app_worker

        return app_worker(self, name)

    def work(self, name: str | None = None, burst: bool = False) -> None:
        """``flask worker``: work until stopped, through Redis outages (see ``rq_worker.work``)."""
        from .rq_worker import work

        work(self, name=name, burst=burst)

    def wait_idle(self, timeout: float) -> bool:
        """Poll the database: the jobs run in another process."""
        deadline = time.monotonic() + timeout
        while True:
            with self.app.app_context():
                active = db.session.scalar(select(JobRecord.id).where(JobRecord.status.in_(ACTIVE)).limit(1))
            if active is None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def shutdown(self, timeout: float = 10.0) -> None:
        self._sweeper.stop(timeout)
        self.connection.close()


RQ_PACE_MAX = 60.0  # seconds an RQ worker waits for a paced lane before running the job anyway


def run_rq_job(record_id: int, attempt: int | None = None) -> str:
    """What RQ runs: one attempt of a job in the worker's app, and the retry scheduled if due.
    ``attempt``: the number this RQ job was queued for (None from before it was passed): if the
    record has moved on (a copy of an RQ job run already), it claims nothing."""
    app = current_app._get_current_object() if has_app_context() else _default_app()
    rq_backend = current.backend(app)
    if not isinstance(rq_backend, RQBackend):
        raise RuntimeError("an RQ job reached an app whose JOBS_BACKEND is not rq")
    with app.app_context():
        name = db.session.scalar(select(JobRecord.name).where(JobRecord.id == record_id))
    if name is not None and (wait := pace_wait(app, lane_of(name))) > 0:
        time.sleep(min(wait, RQ_PACE_MAX))  # longer: the task postpones itself
    retry = run_in_app(app, record_id, attempt)
    if retry is None:
        return "done"
    if not rq_backend.submit(record_id, retry.attempt, retry.delay, fresh=retry.postponed, lane=retry.lane,
                             due=retry.due):
        return f"retry {retry.attempt} waits for Redis"
    return f"retry {retry.attempt} in {retry.delay:.2f}s"


_default = None
_default_lock = threading.Lock()


def _default_app() -> Flask:
    """The app of a plain ``rq worker`` process, built once from the instance config and environment."""
    global _default
    with _default_lock:
        if _default is None:
            from .. import create_app  # here, not at the top: blogapp imports this package

            _default = create_app()
        return _default
