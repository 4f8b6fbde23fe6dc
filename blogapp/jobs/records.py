"""A job's ``JobRecord`` and how an attempt's end changes it: postponed (not an attempt), failed for
now (``retrying``, due after a backoff) or for good (``failed``). Each change is written only by
the attempt that still holds the record's lease, and says what to schedule next (``Retry``)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select

from ..extensions import db
from ..models import ACTIVE_JOB_STATUSES, JobRecord, JobStatus, utcnow
from .tasks import MAIN, JobFailed, Postpone, lane_of

log = logging.getLogger(__name__)

PENDING = (JobStatus.QUEUED.value, JobStatus.RETRYING.value)  # waiting for an attempt
ACTIVE = tuple(s.value for s in ACTIVE_JOB_STATUSES)  # not finished


class Retry(NamedTuple):
    attempt: int  # the number of the next attempt
    delay: float  # seconds until it is due
    postponed: bool = False  # asked for by the task (Postpone), not a failure
    lane: str = MAIN
    due: datetime | None = None  # the record's next_attempt_at, for a postponed job's RQ id


def active_with_key(key: str) -> JobRecord | None:
    """The unfinished job with this key, if any."""
    return db.session.scalar(select(JobRecord).where(JobRecord.key == key, JobRecord.status.in_(ACTIVE)))


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): base, 2*base, 4*base, ... <= cap."""
    return max(0.0, min(float(cap), float(base) * 2.0 ** min(max(attempt, 1) - 1, 64)))


def describe(exc: BaseException) -> str:
    """An exception as stored in ``last_error`` (bounded)."""
    return f"{type(exc).__name__}: {exc}"[:4000]


def held_record(record_id: int, owner: str) -> JobRecord | None:
    """The record, if the lease ``owner`` still holds it; None if another process took it over."""
    record = db.session.get(JobRecord, record_id)
    if record is None or record.lease_owner != owner:
        log.warning("job %s lost its lease while running; its outcome is left to the new run", record_id)
        return None
    return record


def record_postponement(record_id: int, owner: str, postpone: Postpone) -> Retry | None:
    record = held_record(record_id, owner)
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


def record_failure(record_id: int, owner: str, exc: BaseException, *, transient: bool, config) -> Retry | None:
    """A transient failure with attempts left is retried after ``backoff_delay``; any other fails the job."""
    record = held_record(record_id, owner)
    if record is None:
        return None
    record.last_error = describe(exc)
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
    if isinstance(exc, JobFailed):  # an outcome the task recorded, not a bug: no traceback
        log.warning("job %s (%s) failed after %s attempt(s): %s", record_id, name, attempts, exc)
    else:
        log.error("job %s (%s) failed after %s attempt(s)", record_id, name, attempts, exc_info=exc)
    return None
