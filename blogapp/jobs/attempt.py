"""One attempt of a job, the same on every back end: claim the record (queued|retrying -> running,
in one UPDATE, under a new lease), run the task in an app context, write its outcome while the
lease is still ours. ``current_attempt()`` tells a task which attempt it is in."""
from __future__ import annotations

import json
import logging
import threading
from typing import NamedTuple

from flask import Flask, current_app
from sqlalchemy import update

from ..extensions import db
from ..models import JobRecord, JobStatus, utcnow
from ..templating import site_request_context
from . import current
from .records import PENDING, Retry, record_failure, record_postponement
from .tasks import TASKS, Postpone, is_transient

log = logging.getLogger(__name__)


class Attempt(NamedTuple):
    number: int  # 1 for the first run
    last: bool  # no retry follows a transient failure of this one
    here: bool = False  # run by run_here in the thread that made it (someone is waiting), not by a back end


_current = threading.local()


def current_attempt() -> Attempt | None:
    """Inside a task: which attempt this is, so a task can tell a final failure from one that will be retried."""
    return getattr(_current, "attempt", None)


def run_in_app(app: Flask, record_id: int, attempt: int | None = None) -> Retry | None:
    """What a back end calls: ``run_job`` in the app's context, at ``SITE_URL`` (so url_for works)."""
    with app.app_context(), site_request_context(app):
        return run_job(record_id, attempt=attempt)


def run_job(record_id: int, attempt: int | None = None) -> Retry | None:
    """Run one attempt of a job, in an app context. Returns the retry to schedule, if any.

    ``attempt``: the attempt the caller was handed (an RQ job is made for one); the record is
    claimed only if that is the one it waits for, so a second copy of an RQ job (queued again by a
    sweep while the first was on its way) never runs a later attempt early.

    The task's own database writes are committed together with the outcome.
    """
    leases = current.leases()
    owner = leases.new_owner()
    waiting = [JobRecord.id == record_id, JobRecord.status.in_(PENDING)]
    if attempt is not None:
        waiting.append(JobRecord.attempts == attempt - 1)
    claimed = db.session.execute(
        update(JobRecord)
        .where(*waiting)
        .values(status=JobStatus.RUNNING.value, attempts=JobRecord.attempts + 1, next_attempt_at=None,
                updated_at=utcnow(), lease_owner=owner, lease_expires_at=leases.expiry())
    ).rowcount
    db.session.commit()
    if not claimed:  # finished, running elsewhere, past this attempt, or deleted
        log.debug("job %s is not waiting to run; skipped", record_id)
        return None
    leases.hold(owner)
    return execute(record_id, owner)[0]


def execute(record_id: int, owner: str, here: bool = False) -> tuple[Retry | None, object]:
    """The attempt itself, under the lease ``owner``; the outcome is written only while we hold it.
    Returns the retry to schedule, if any, and what the task returned."""
    config = current_app.config
    leases = current.leases()
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
            return record_postponement(record_id, owner, postpone), None
        except Exception as exc:
            db.session.rollback()
            return record_failure(record_id, owner, exc, transient=is_transient(exc), config=config), None
        except BaseException as exc:  # SystemExit from a task: the job fails, the worker goes on
            db.session.rollback()
            record_failure(record_id, owner, exc, transient=False, config=config)
            raise
    finally:
        leases.release(owner)
