"""The RQ back end (``JOBS_BACKEND = "rq"``): each attempt is an RQ job on Redis calling
``run_rq_job(record_id)``, run by ``flask worker`` (``AppWorker``: RQ's SimpleWorker in the app's
context, with RQ's scheduler for delayed retries); the linkbacks lane is a second queue, served
only when the main one is empty. A sweeper in every process with this back end also queues again
the waiting jobs Redis does not hold (``take_up_lost``)."""
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
from ..models import JobRecord, JobStatus, utcnow
from . import current
from .attempt import run_in_app
from .pacing import pace_wait
from .records import ACTIVE, PENDING, describe
from .sweep import Sweeper
from .tasks import LINKBACKS, MAIN, lane_of

log = logging.getLogger(__name__)


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
                    JobRecord.status.in_(PENDING),
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


def run_rq_job(record_id: int) -> str:
    """What RQ runs: one attempt of a job in the worker's app, and the retry scheduled if due."""
    app = current_app._get_current_object() if has_app_context() else _default_app()
    rq_backend = current.backend(app)
    if not isinstance(rq_backend, RQBackend):
        raise RuntimeError("an RQ job reached an app whose JOBS_BACKEND is not rq")
    with app.app_context():
        name = db.session.scalar(select(JobRecord.name).where(JobRecord.id == record_id))
    if name is not None and (wait := pace_wait(app, lane_of(name))) > 0:
        time.sleep(min(wait, RQ_PACE_MAX))  # longer: the task postpones itself
    retry = run_in_app(app, record_id)
    if retry is None:
        return "done"
    try:
        rq_backend.submit(record_id, retry.attempt, retry.delay, fresh=retry.postponed, lane=retry.lane, due=retry.due)
    except Exception as exc:
        with app.app_context():
            record = db.session.get(JobRecord, record_id)
            record.status = JobStatus.FAILED.value
            record.last_error = f"the retry could not be scheduled: {describe(exc)}"
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
            from .. import create_app  # here, not at the top: blogapp imports this package

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
