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

- ``thread``: one daemon thread per app runs due jobs from a heap per lane ordered by due time;
  retries wait in the heaps. Nothing else to run. Jobs still waiting when the process ends stay
  ``queued``/``retrying`` in the database and are taken up when a later process's job thread
  starts (on its first request or enqueue).
- ``rq``: each attempt is an RQ job on queue ``JOBS_QUEUE`` in Redis, run by
  ``flask --app blogapp worker`` (an RQ worker with its scheduler, a thread of the same process,
  which enqueues the delayed retries). Jobs survive restarts of the web and worker processes,
  and Redis outages: a job Redis cannot take stays queued in the database (its record), and the
  process's sweeper hands it over when Redis is back; ``flask worker`` waits for Redis and goes on.

Before each attempt the record is claimed in one UPDATE (queued|retrying -> running; on RQ, only
for the attempt its RQ job was made for), so an attempt runs once even when two workers see the
same job, or two copies of one RQ job.

A running job holds a lease (``lease_owner``, ``lease_expires_at``) that a thread of its process
renews every third of ``JOBS_LEASE_SECONDS``. A process that dies (``kill -9``, a crash, a
reboot) stops renewing; every ``JOBS_SWEEP_SECONDS`` each running back end (the web process's job
thread, the RQ worker, and the web processes with RQ) looks for expired leases and runs those jobs
again, with no admin action, so a restarted process or a new worker finishes them within a lease
and a sweep (40 s with the defaults). Tasks are therefore written to be idempotent. A job whose
process died on its last attempt fails, and its task's ``on_give_up`` hook ends what it held.

A task that failed and recorded how itself (a linkback refused on every attempt) raises
``JobFailed(message)``: the job fails at once, its own writes kept.

A task may also raise ``Postpone(seconds)``: not now (a budget is spent), try again later, and
this run does not count as an attempt.

``prepare()`` adds a job's record to the caller's own transaction, so the job is durable exactly
when the caller's writes are (a linkback's claim and the job that verifies it); ``submit()`` then
hands it to the back end, or ``run_here()`` runs it in the calling thread under a lease.

The modules, each importing only those listed before it:

- ``tasks``: ``@task``, lanes, ``Postpone``, ``TransientJobError``, ``is_transient``
- ``leases``: ``Leases``, the renewal thread
- ``current``: the app's back end and leases, as ``init_app`` installed them
- ``pacing``: ``pace()``, a lane's budget
- ``records``: a record's state changes at an attempt's end (retry with backoff, postponement, failure)
- ``attempt``: one attempt on any back end (claim, run, outcome), ``current_attempt()``
- ``queueing``: ``enqueue``, ``prepare``, ``submit``, ``run_here``
- ``sweep``: ``sweep()``, ``Sweeper``
- ``redis_outage``: ``RedisOutage`` (Redis away, as a process sees it), ``RedisUnavailable``
- ``rq_scheduler``, ``rq_worker``: ``flask worker``'s scheduler thread and its loop through outages
  (they import RQ: loaded by ``RQBackend`` only when a worker is made)
- ``thread_backend``, ``rq_backend``: the two back ends
- ``wiring``: ``init_app``, ``start``, ``wait_idle``, ``shutdown``, ``StartOnFirstRequest``

This module re-exports the public names, so callers write ``jobs.enqueue``, ``jobs.task``, ...
"""
from __future__ import annotations

from .attempt import Attempt, current_attempt, run_job
from .current import backend
from .leases import Leases
from .pacing import pace
from .queueing import enqueue, prepare, run_here, submit
from .records import Retry, active_with_key, backoff_delay
from .redis_outage import RedisOutage, RedisUnavailable
# run_rq_job here too: RQ finds an attempt's function by its dotted name, and Redis may hold
# attempts queued as "blogapp.jobs.run_rq_job".
from .rq_backend import RQ_PACE_MAX, RQBackend, run_rq_job
from .sweep import Sweeper, sweep
from .tasks import (LANES, LINKBACKS, MAIN, TASKS, JobFailed, Postpone, TransientJobError, is_transient, lane_of,
                    task)
from .thread_backend import ThreadBackend
from .wiring import BACKENDS, StartOnFirstRequest, init_app, shutdown, start, wait_idle

__all__ = [
    "Attempt", "BACKENDS", "JobFailed", "LANES", "LINKBACKS", "MAIN", "Leases", "Postpone", "RQBackend",
    "RQ_PACE_MAX", "RedisOutage", "RedisUnavailable", "Retry", "StartOnFirstRequest", "Sweeper", "TASKS",
    "ThreadBackend", "TransientJobError",
    "active_with_key", "backend", "backoff_delay", "current_attempt", "enqueue", "init_app", "is_transient",
    "lane_of", "pace", "prepare", "run_here", "run_job", "run_rq_job", "shutdown", "start", "submit", "sweep",
    "task", "wait_idle",
]
