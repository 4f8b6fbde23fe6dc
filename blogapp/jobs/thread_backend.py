"""The thread back end (``JOBS_BACKEND = "thread"``): one daemon thread per app runs due jobs from
a heap per lane (the main lane first, a paced lane skipped while its budget is spent); retries
wait in the heaps. A sweeper beside it takes up what other processes left."""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import or_, select

from ..extensions import db
from ..models import JobRecord, utcnow
from ..outages import database_unreachable, one_line
from .attempt import run_in_app
from .pacing import pace_wait
from .records import PENDING
from .sweep import Sweeper, sweep
from .tasks import LINKBACKS, MAIN, lane_of

log = logging.getLogger(__name__)
PACE_RECHECK_SECONDS = 0.5


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
               due: datetime | None = None) -> bool:
        """Queue an attempt in this process's heap; False once shut down (the record stays waiting
        in the database, for a later process)."""
        with self._cv:
            if self._stopping:
                log.warning("job %s stays queued: the job thread is shut down", record_id)
                return False
            heapq.heappush(self._heaps[lane], (time.monotonic() + delay, next(self._seq), record_id))
            self._start_locked()
            self._cv.notify_all()
            return True

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
                    JobRecord.status.in_(PENDING))
                if grace:
                    waiting = waiting.where(or_(JobRecord.next_attempt_at.is_(None),
                                                JobRecord.next_attempt_at <= now - timedelta(seconds=grace)))
                rows = db.session.execute(waiting).all()
        except Exception as exc:
            if database_unreachable(exc):  # said in one line: the next sweep asks again
                log.warning("jobs: could not look for waiting jobs (%s)", one_line(exc))
            else:
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
            elif (wait := pace_wait(self.app, lane)) > 0:
                # Due, but its lane's budget is spent: look again by then, or sooner (room can come
                # early: verifications under way counted at an estimate may cost less).
                dues.append(now + min(wait, PACE_RECHECK_SECONDS))
            else:
                return lane, None
        return None, min(dues) if dues else None

    def _work(self) -> None:
        try:
            sweep(self.app)  # a dead process's running jobs first: they go into the heap
        except Exception as exc:  # the database away at start: the sweeper's rounds take it up later
            log.warning("jobs: the first sweep failed (%s); the periodic sweep will try again", one_line(exc))
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
                retry = run_in_app(self.app, record_id)
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
