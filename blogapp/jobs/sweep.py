"""The sweep: jobs whose process died (running, their lease expired) are run again, or, past their
last attempt, failed after their task's ``on_give_up`` hook. ``Sweeper``: a thread sweeping every
``JOBS_SWEEP_SECONDS``, in every live back end."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import and_, or_, select, update

from ..extensions import db
from ..models import JobRecord, JobStatus, utcnow
from ..outages import database_unreachable, one_line
from ..templating import site_request_context
from . import current
from .tasks import GIVE_UP, lane_of

log = logging.getLogger(__name__)


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
                     # running with no lease: a row from before migration 7c4e2a91d5b3 (every
                     # claim writes one), lapsed a lease's length after its last change
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
                give_up(app, name, args)
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
        # Redis away: the record waits, retrying, and goes to Redis when it is back (RQBackend.submit).
        current.backend(app).submit(record_id, attempt, 0.0, lane=lane)
    return [record_id for record_id, _, _ in revived]


def give_up(app: Flask, name: str, args: str) -> None:
    """Call the task's ``on_give_up`` hook with the job's arguments, its writes committed; errors are logged."""
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
        except Exception as exc:
            # The database away: one line a round (a traceback for anything else).
            log.warning("sweeping for the jobs of stopped processes failed: %s", one_line(exc),
                        exc_info=not database_unreachable(exc))
            return
        try:
            self._housekeeping()
        except Exception as exc:
            log.warning("emptying the Trash failed: %s", one_line(exc), exc_info=not database_unreachable(exc))

    HOUSEKEEPING_EVERY = 3600.0  # seconds between two emptyings of the Trash by this process
    _housekept_at: float | None = None

    def _housekeeping(self) -> None:
        """What WordPress's daily cron does that we do too: empty the Trash of old posts (hourly)."""
        now = time.monotonic()
        if self._housekept_at is not None and now - self._housekept_at < self.HOUSEKEEPING_EVERY:
            return
        self._housekept_at = now
        from ..posts import empty_trash

        with self.app.app_context(), site_request_context(self.app):
            deleted = empty_trash(int(self.app.config["EMPTY_TRASH_DAYS"]))
        if deleted:
            log.info("emptied the Trash: %d post(s) older than %s days deleted for good", deleted,
                     self.app.config["EMPTY_TRASH_DAYS"])

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
