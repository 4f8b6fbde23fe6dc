"""Making jobs: ``enqueue()`` (record, commit, hand to the back end), or ``prepare()`` in the
caller's own commit, then ``submit()`` to the back end or ``run_here()`` in the calling thread."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from ..extensions import db
from ..models import JobRecord, JobStatus, utcnow
from . import current
from .attempt import execute
from .records import active_with_key, describe
from .tasks import TASKS, lane_of

log = logging.getLogger(__name__)
_INSERT = insert(JobRecord.__table__)  # built once; the values are bound per job


def enqueue(name: str, *args, key: str | None = None, delay: float = 0.0, **kwargs) -> JobRecord:
    """Record a job for the task ``name`` and hand it to the back end; needs an app context.

    Commits the current session first, so the job sees what the caller wrote. Arguments must
    be JSON-serialisable. With ``key``, an unfinished job with the same key is returned instead
    of a new one (``key`` is never passed to the task). ``delay`` seconds from now the job is
    due (``key`` and ``delay`` are never passed to the task). With Redis away the record is
    returned queued: it goes to Redis when Redis is back (see ``submit``).
    """
    current.backend()  # no app wired for jobs: fail before committing anything
    db.session.commit()
    if key is not None and (existing := active_with_key(key)) is not None:
        return existing
    try:
        record = prepare(name, *args, key=key, delay=delay, **kwargs)
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
    """Write a job's record in the current session's transaction, uncommitted: it becomes durable
    with the caller's own writes, in the same commit (raises ``IntegrityError`` for a key already
    active). After that commit, ``submit(record)`` queues it, or, with ``run_here``,
    ``run_here(record)`` runs it in the calling thread (the record is created running, under a
    lease of this process, so no other process takes it while it lives)."""
    if name not in TASKS:
        raise KeyError(f"no task named {name!r}")
    if key is not None and not 0 < len(key) <= 255:
        raise ValueError("a job key has 1 to 255 characters")
    now = utcnow()
    values = dict(name=name, key=key, args=json.dumps({"args": list(args), "kwargs": kwargs}), attempts=0,
                  status=JobStatus.QUEUED.value, next_attempt_at=now + timedelta(seconds=max(0.0, float(delay))),
                  lease_owner=None, lease_expires_at=None, last_error=None, result=None, finished_at=None,
                  created_at=now, updated_at=now)
    if run_here:
        leases = current.leases()
        owner = leases.new_owner()
        values.update(status=JobStatus.RUNNING.value, attempts=1, next_attempt_at=None, lease_owner=owner,
                      lease_expires_at=leases.expiry())
        leases.hold(owner)  # renewed from now: the caller commits it in a moment
    # One INSERT of every column (a linkback's claim writes a job per ping), then the record as
    # the session would have loaded it: what the caller changes before committing is written too.
    values["id"] = db.session.execute(_INSERT, values).inserted_primary_key[0]
    record = JobRecord(**values)
    make_transient_to_detached(record)
    db.session.add(record)
    return record


def submit(record: JobRecord) -> None:
    """Hand a committed, queued record to the back end. With Redis away the record stays queued and
    the back end hands it over when Redis is back (``RQBackend.submit``); any other refusal (a bug,
    not an outage) fails it."""
    delay = max(0.0, (record.next_attempt_at - utcnow()).total_seconds()) if record.next_attempt_at else 0.0
    record_id, name = record.id, record.name
    try:
        current.backend().submit(record_id, attempt=1, delay=delay, lane=lane_of(name))
    except Exception as exc:
        log.error("job %s (%s) could not be queued: %s", record_id, name, describe(exc))
        record = db.session.get(JobRecord, record_id)
        record.status = JobStatus.FAILED.value
        record.last_error = f"could not be queued: {describe(exc)}"
        record.finished_at = utcnow()
        db.session.commit()


def run_here(record: JobRecord):
    """Run a committed record made by ``prepare(..., run_here=True)`` in this thread (needs an app
    context) and return what the task returned (None if it failed). A retry or a postponement it
    asks for goes to the back end like any other."""
    record_id, owner = record.id, record.lease_owner
    retry, result = execute(record_id, owner, here=True)
    if retry is not None:
        current.backend().submit(record_id, retry.attempt, retry.delay, fresh=retry.postponed, lane=retry.lane,
                                 due=retry.due)
    return result
