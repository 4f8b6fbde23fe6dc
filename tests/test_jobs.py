"""Background jobs (blogapp/jobs/) on both back ends: the in-process thread, and RQ on Redis.

Tests marked with ``both`` run on each back end; the RQ ones are skipped unless TEST_REDIS_URL
is set. On RQ a real worker (RQ's SimpleWorker with its scheduler, through ``jobs``' own worker
class) runs in this process in burst mode, on a queue of its own, and the test's Redis keys are
deleted afterwards.
"""
from __future__ import annotations

import json
import logging
import secrets
import signal
import threading
import time
from contextlib import contextmanager
from datetime import UTC, timedelta

import pytest
import requests
from flask import url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from blogapp import create_app, jobs
from blogapp.jobs import attempt as job_attempt
from blogapp.extensions import db
from blogapp.models import JobRecord, SiteSetting, utcnow
from conftest import SITE_URL, TEST_REDIS_URL, database_config

BASE = 0.1  # JOBS_BACKOFF_BASE in these tests: retries wait 0.1 s, then 0.2 s, ...
NEEDS_REDIS = pytest.mark.skipif(not TEST_REDIS_URL, reason="the RQ back end needs Redis: set TEST_REDIS_URL")
both = pytest.mark.parametrize("backend_name", ["thread", pytest.param("rq", marks=NEEDS_REDIS)], indirect=True)
rq_only = pytest.mark.parametrize("backend_name", [pytest.param("rq", marks=NEEDS_REDIS)], indirect=True)

# ------------------------------------------------------------------ the tasks these tests run

CALLS: dict[str, list[float]] = {}  # token -> time.monotonic() of each call
GATES: dict[str, threading.Event] = {}


def _called(token: str) -> int:
    CALLS.setdefault(token, []).append(time.monotonic())
    return len(CALLS[token])


@jobs.task("test.add")
def add(a, b, *, scale=1):
    db.session.add(SiteSetting(key=f"job-sum-{a}-{b}", value=json.dumps((a + b) * scale)))
    return {"sum": (a + b) * scale}


@jobs.task("test.link")
def link():
    return url_for("blog.index", _external=True)


@jobs.task("test.flaky")
def flaky(token, failures):
    """Fails ``failures`` times, in the ways a network call fails, then succeeds."""
    errors = [jobs.TransientJobError("upstream said 503", status=503), requests.Timeout("read timed out"),
              requests.ConnectionError("connection refused"), jobs.TransientJobError("rate limited", status=429)]
    n = _called(token)
    if n <= failures:
        raise errors[(n - 1) % len(errors)]
    return n


@jobs.task("test.always-transient")
def always_transient(token):
    _called(token)
    raise jobs.TransientJobError(f"still down ({len(CALLS[token])})")


@jobs.task("test.permanent")
def permanent(token, exc="value"):
    _called(token)
    if exc == "404":
        raise jobs.TransientJobError("not found", status=404)
    if exc == "exit":
        raise SystemExit("task called exit")
    raise ValueError(f"bad input for {token}")


@jobs.task("test.gated")
def gated(token):
    """Runs until the test opens its gate (thread back end only)."""
    _called(token)
    assert GATES[token].wait(10), "the gate was never opened"
    return "through"


@jobs.task("test.noop")
def noop(token):
    return _called(token)


GAVE_UP: list[tuple] = []
ORDER: list[str] = []


@jobs.task("test.stranger", lane=jobs.LINKBACKS)
def stranger(token, n):
    """A job strangers can queue in bulk (the verification of their linkbacks)."""
    ORDER.append(f"{token}-stranger-{n}")


@jobs.task("test.own")
def own(token):
    """One of the site's own jobs (a send, an import)."""
    ORDER.append(f"{token}-own")


@jobs.task("test.held", on_give_up=lambda token: GAVE_UP.append(("held", token)))
def held(token):
    """What a dead process was running; when run again it just counts."""
    return _called(token)


@jobs.task("test.slow")
def slow(token, seconds):
    """Runs longer than its lease: the lease must be renewed, not taken over."""
    _called(token)
    time.sleep(seconds)
    return "slept"


@jobs.task("test.postponing")
def postponing(token, times):
    """Not now, ``times`` times (a budget is spent), then done."""
    if len(CALLS.setdefault(f"{token}-postponed", [])) < times:
        CALLS[f"{token}-postponed"].append(time.monotonic())
        raise jobs.Postpone(BASE, "budget spent")
    return _called(token)


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def backend_name(request):
    return getattr(request, "param", "thread")


@pytest.fixture
def queue_name():
    return f"blogapp-test-{secrets.token_hex(6)}"


@pytest.fixture
def config_overrides(backend_name, queue_name):
    config = {"JOBS_BACKEND": backend_name, "JOBS_BACKOFF_BASE": BASE, "JOBS_BACKOFF_MAX": 300, "JOBS_MAX_ATTEMPTS": 3}
    if backend_name == "rq":
        config |= {"REDIS_URL": TEST_REDIS_URL, "JOBS_QUEUE": queue_name}
    return config


@pytest.fixture
def token():
    token = secrets.token_hex(6)
    GATES[token] = threading.Event()
    yield token
    GATES.pop(token).set()
    CALLS.pop(token, None)


@pytest.fixture
def redis_cleanup(backend_name, queue_name):
    """Deletes every key this test's queue and workers made (in this process or others), and checks that none is left.

    Most hold the queue's name (the workers are named after it too). A scheduler's hash is named
    by a random id and says its queue inside; a killed worker's scheduler never deletes it."""
    if backend_name != "rq":
        yield
        return
    import redis

    conn = redis.Redis.from_url(TEST_REDIS_URL)
    clean_groups_existed = conn.exists("rq:clean_groups")

    def schedulers() -> list[bytes]:
        return [key for key in conn.scan_iter(match="rq:scheduler:*", count=1000)
                if conn.type(key) == b"hash" and queue_name.encode() in (conn.hget(key, "queues") or b"")]

    try:
        yield
    finally:
        for key in [*conn.scan_iter(match=f"*{queue_name}*", count=1000), *schedulers()]:
            conn.delete(key)
        for members_of in ("rq:queues", "rq:workers"):
            for member in conn.smembers(members_of):
                if queue_name.encode() in member:
                    conn.srem(members_of, member)
        if not clean_groups_existed:  # set by a worker's maintenance run
            conn.delete("rq:clean_groups")
        left = [*conn.scan_iter(match=f"*{queue_name}*"), *schedulers()]
        conn.close()
        assert not left, f"Redis keys left behind: {left}"


@contextmanager
def signals_kept():
    """RQ's worker installs SIGINT/SIGTERM handlers; pytest keeps its own."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


class Jobs:
    """Drive whichever back end the app has: run what is due, and read records fresh."""

    def __init__(self, app, backend_name, queue_name):
        self.app, self.backend_name, self.worker_name = app, backend_name, f"{queue_name}-worker"

    def step(self) -> None:
        """RQ: one burst of a real worker (its scheduler first moves due retries onto the queue)."""
        with signals_kept():
            jobs.backend(self.app).worker(name=self.worker_name).work(
                burst=True, with_scheduler=True, logging_level="WARNING")

    def drain(self, timeout: float = 15.0) -> None:
        """Until nothing is queued, retrying or running."""
        if self.backend_name == "thread":
            assert jobs.wait_idle(timeout, self.app), "jobs still waiting after the timeout"
            return
        deadline = time.monotonic() + timeout
        while not jobs.wait_idle(0, self.app):
            assert time.monotonic() < deadline, "jobs still waiting after the timeout"
            self.step()
            time.sleep(0.02)

    def record(self, record_id: int) -> JobRecord:
        with self.app.app_context():
            record = db.session.get(JobRecord, record_id)
            db.session.expunge(record)
            return record


@pytest.fixture
def run(app, backend_name, queue_name, redis_cleanup):
    return Jobs(app, backend_name, queue_name)


def enqueue(app, name, *args, **kwargs) -> int:
    with app.app_context():
        return jobs.enqueue(name, *args, **kwargs).id


# ------------------------------------------------------------------ pure parts


def test_backoff_doubles_from_the_base_up_to_the_cap():
    assert [jobs.backoff_delay(n, 2.0, 300) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert jobs.backoff_delay(5000, 2.0, 300) == 300  # no overflow on absurd counts


@pytest.mark.parametrize(("exc", "transient"), [
    (jobs.TransientJobError("later"), True),
    (jobs.TransientJobError(status=503), True),
    (jobs.TransientJobError(status=500), True),
    (jobs.TransientJobError(status=429), True),
    (jobs.TransientJobError(status=404), False),
    (jobs.TransientJobError(status=400), False),
    (requests.Timeout(), True),
    (requests.ConnectTimeout(), True),
    (requests.ConnectionError(), True),
    (ValueError("bad"), False),
    (KeyError("x"), False),
])
def test_which_failures_are_transient(exc, transient):
    assert jobs.is_transient(exc) is transient


def test_http_errors_from_raise_for_status_are_transient_only_for_5xx_and_429():
    def http_error(status):
        response = requests.Response()
        response.status_code = status
        return requests.HTTPError(response=response)

    assert [jobs.is_transient(http_error(s)) for s in (502, 429, 404, 410)] == [True, True, False, False]


def test_backend_choice(tmp_path):
    def backend_of(**config):
        app = create_app({"TESTING": True, "SECRET_KEY": "k", "SITE_URL": SITE_URL,
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'b.sqlite'}", **config},
                         instance_path=str(tmp_path / "i"))
        return jobs.backend(app).name

    assert backend_of() == "thread"
    assert backend_of(REDIS_URL="redis://127.0.0.1:1/0") == "rq"  # connects only when used
    assert backend_of(REDIS_URL="redis://127.0.0.1:1/0", JOBS_BACKEND="thread") == "thread"
    # Refused when the app is made: by jobs.init_app, or by a check of the settings before it.
    with pytest.raises(Exception, match="REDIS_URL"):
        backend_of(JOBS_BACKEND="rq")
    with pytest.raises(Exception, match="JOBS_BACKEND"):
        backend_of(JOBS_BACKEND="celery")


def test_enqueue_refuses_unknown_tasks_and_unserialisable_arguments(app, ctx):
    with pytest.raises(KeyError, match="no task named 'test.missing'"):
        jobs.enqueue("test.missing")
    with pytest.raises(TypeError):
        jobs.enqueue("test.noop", object())
    with pytest.raises(ValueError, match="1 to 255"):
        jobs.enqueue("test.noop", "t", key="k" * 256)
    assert db.session.scalar(select(func.count(JobRecord.id))) == 0


# ------------------------------------------------------------------ both back ends


@both
def test_a_job_runs_and_its_record_holds_the_result(app, run):
    before = utcnow()
    record_id = enqueue(app, "test.add", 2, 3, scale=10)
    link_id = enqueue(app, "test.link")
    run.drain()
    record = run.record(record_id)
    assert (record.status, record.attempts, record.last_error) == ("succeeded", 1, None)
    assert json.loads(record.result) == {"sum": 50}
    assert json.loads(record.args) == {"args": [2, 3], "kwargs": {"scale": 10}}
    assert before <= record.created_at <= record.finished_at <= utcnow()
    assert record.next_attempt_at is None
    with app.app_context():  # what the task wrote was committed with its outcome
        assert db.session.get(SiteSetting, "job-sum-2-3").value == "50"
    assert json.loads(run.record(link_id).result) == SITE_URL + "/"  # url_for works in a task


@both
def test_transient_failures_are_retried_with_exponential_backoff(app, run, token, backend_name):
    record_id = enqueue(app, "test.flaky", token, 2)
    if backend_name == "rq":
        # Step the real worker attempt by attempt, and read the backoff off the record itself.
        waits, deadline = [], time.monotonic() + 15
        for attempt in (1, 2):
            while len(CALLS.get(token, [])) < attempt:
                assert time.monotonic() < deadline, f"attempt {attempt} never ran"
                run.step()
                time.sleep(0.02)
            record = run.record(record_id)
            assert (record.status, record.attempts) == ("retrying", attempt)
            waits.append((record.next_attempt_at - record.updated_at).total_seconds())
            scheduled = jobs.backend(app).queue.scheduled_job_registry.get_scheduled_time(
                jobs.backend(app).job_id(record_id, attempt + 1))
            assert scheduled >= record.next_attempt_at.replace(tzinfo=UTC)  # never early
        assert waits == pytest.approx([BASE, 2 * BASE], abs=0.02)
    run.drain()
    record = run.record(record_id)
    assert (record.status, record.attempts, json.loads(record.result)) == ("succeeded", 3, 3)
    assert record.last_error == "Timeout: read timed out"  # the second failure's
    first, second, third = CALLS[token]
    # Each retry waited at least its backoff (base, then twice the base), and not much more.
    slack = 0.5 if backend_name == "thread" else 2.5  # RQ's scheduler works in whole seconds
    assert BASE <= second - first < BASE + slack
    assert 2 * BASE <= third - second < 2 * BASE + slack


@both
def test_a_permanent_error_fails_the_job_at_once(app, run, token):
    value_error = enqueue(app, "test.permanent", token)
    not_found = enqueue(app, "test.permanent", token, exc="404")
    run.drain()
    record = run.record(value_error)
    assert (record.status, record.attempts) == ("failed", 1)
    assert record.last_error == f"ValueError: bad input for {token}"
    assert record.finished_at is not None and record.next_attempt_at is None and record.result is None
    record = run.record(not_found)
    assert (record.status, record.attempts, record.last_error) == ("failed", 1, "TransientJobError: not found")
    assert len(CALLS[token]) == 2


@both
def test_the_job_fails_when_its_attempts_are_used_up(app, run, token):
    record_id = enqueue(app, "test.always-transient", token)
    run.drain()
    record = run.record(record_id)
    assert (record.status, record.attempts) == ("failed", 3)
    assert record.last_error == "TransientJobError: still down (3)"
    assert len(CALLS[token]) == 3 and record.finished_at is not None and record.next_attempt_at is None


@both
def test_a_key_makes_enqueueing_idempotent_while_the_job_is_unfinished(app, run, token, backend_name):
    # Thread: the job is held running at a gate. RQ: no worker runs yet, so it stays queued.
    first = enqueue(app, "test.gated" if backend_name == "thread" else "test.noop", token, key=f"k-{token}")
    if backend_name == "thread":
        deadline = time.monotonic() + 5
        while run.record(first).status != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert enqueue(app, "test.noop", token, key=f"k-{token}") == first
    other_key = enqueue(app, "test.noop", token, key=f"other-{token}")
    assert other_key != first
    if backend_name == "rq":
        assert jobs.backend(app).queue.count == 2  # one RQ job per record, none for the repeat
    GATES[token].set()
    run.drain()
    assert run.record(first).status == "succeeded" and len(CALLS[token]) == 2
    again = enqueue(app, "test.noop", token, key=f"k-{token}")  # finished: the key is free again
    assert again not in (first, other_key)
    run.drain()
    with app.app_context():
        assert db.session.scalar(select(func.count(JobRecord.id)).where(JobRecord.key == f"k-{token}")) == 2


@both
def test_concurrent_enqueues_of_one_key_make_one_job(app, run, token, backend_name):
    name = "test.gated" if backend_name == "thread" else "test.noop"
    barrier, ids, errors = threading.Barrier(6), [], []

    def enqueue_one():
        try:
            barrier.wait(5)
            ids.append(enqueue(app, name, token, key=f"k-{token}"))
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=enqueue_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    GATES[token].set()
    assert not errors and len(set(ids)) == 1 and len(ids) == 6
    run.drain()
    assert len(CALLS[token]) == 1


def test_the_database_allows_one_unfinished_job_per_key(app, ctx):
    db.session.add_all([JobRecord(name="test.noop", key="same", status="succeeded"),
                        JobRecord(name="test.noop", key="same", status="failed"),
                        JobRecord(name="test.noop", key="same", status="queued")])
    db.session.commit()
    for status in ("queued", "running", "retrying"):
        db.session.add(JobRecord(name="test.noop", key="same", status=status))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


# ------------------------------------------------------------------ leases: a dead process's job runs again


def dead_process_job(app, name, *args, attempts=1, expired=True) -> int:
    """A job as a process left it when it was killed in the middle: running, its lease no longer
    renewed (expired a moment ago) or still current (its process might be alive)."""
    with app.app_context():
        record = JobRecord(name=name, args=json.dumps({"args": list(args), "kwargs": {}}), status="running",
                           attempts=attempts, lease_owner="host:4242:deadbeef",
                           lease_expires_at=utcnow() + timedelta(seconds=-1 if expired else 60))
        db.session.add(record)
        db.session.commit()
        return record.id


def start(app, run, backend_name):
    """What a restarted web process (thread) or a new worker (RQ) does first."""
    if backend_name == "thread":
        jobs.start(app)
        run.drain()
    else:
        assert jobs.sweep(app)
        run.step()  # one burst of a worker (not drain: the job still leased stays running)


@both
def test_a_job_whose_process_died_runs_again_with_no_one_asking(app, run, token, backend_name):
    record_id = dead_process_job(app, "test.held", token)
    current = dead_process_job(app, "test.held", token + "-alive", expired=False)
    start(app, run, backend_name)
    record = run.record(record_id)
    assert (record.status, record.attempts, record.lease_owner) == ("succeeded", 2, None)
    assert record.last_error == "the process running it stopped (its lease expired)"
    assert len(CALLS[token]) == 1
    # A lease still current belongs to a process that may be alive: left alone.
    assert (run.record(current).status, CALLS.get(token + "-alive")) == ("running", None)


@both
def test_a_job_whose_process_died_on_its_last_attempt_fails_and_lets_go(app, run, token, backend_name):
    record_id = dead_process_job(app, "test.held", token, attempts=3)  # JOBS_MAX_ATTEMPTS is 3 here
    if backend_name == "thread":
        jobs.start(app)
        run.drain()
    else:
        assert jobs.sweep(app) == []
    record = run.record(record_id)
    assert (record.status, record.attempts) == ("failed", 3) and record.finished_at is not None
    assert token not in CALLS  # never run a fourth time
    assert ("held", token) in GAVE_UP  # the task's hook ended what it held


def test_sweeping_processes_take_a_dead_job_once(app, run, token):
    record_id = dead_process_job(app, "test.held", token)
    barrier, taken = threading.Barrier(4), []

    def sweep():
        barrier.wait(5)
        taken.append(jobs.sweep(app))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(taken) == [[], [], [], [record_id]]
    run.drain()
    assert len(CALLS[token]) == 1 and run.record(record_id).attempts == 2


@pytest.mark.parametrize("config_overrides", [{"JOBS_BACKEND": "thread", "JOBS_LEASE_SECONDS": 0.3,
                                               "JOBS_SWEEP_SECONDS": 0.05}])
def test_a_running_job_keeps_its_lease_while_it_runs_longer_than_it(app, run, token):
    record_id = enqueue(app, "test.slow", token, 1.2)  # four leases long, swept every 0.05 s
    deadline = time.monotonic() + 5
    while run.record(record_id).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    renewed = set()
    while run.record(record_id).status == "running":
        renewed.add(run.record(record_id).lease_expires_at)
        assert not jobs.sweep(app)  # never taken from a live process
        time.sleep(0.05)
    record = run.record(record_id)
    assert (record.status, record.attempts, record.lease_owner, record.lease_expires_at) == ("succeeded", 1, None, None)
    assert len(CALLS[token]) == 1
    assert len(renewed) >= 3  # renewed every third of the lease


@both
def test_a_postponed_job_runs_later_and_it_does_not_count_as_an_attempt(app, run, token):
    record_id = enqueue(app, "test.postponing", token, 2)
    run.drain()
    record = run.record(record_id)
    assert (record.status, record.attempts, json.loads(record.result)) == ("succeeded", 1, 1)
    first, second = CALLS[f"{token}-postponed"]
    assert second - first >= BASE and CALLS[token][0] - second >= BASE


@both
def test_the_site_own_jobs_go_before_a_queue_of_strangers_linkbacks(app, run, token, backend_name):
    """A flood of linkbacks waiting for verification never delays a send or an import by more
    than the one verification running."""
    if backend_name == "thread":  # hold the job thread while the queue fills
        enqueue(app, "test.gated", token)
        wait_for_running = time.monotonic() + 5
        while not CALLS.get(token):
            assert time.monotonic() < wait_for_running
            time.sleep(0.01)
    for n in range(3):
        enqueue(app, "test.stranger", token, n)
    enqueue(app, "test.own", token)
    GATES[token].set()
    run.drain()
    mine = [entry for entry in ORDER if entry.startswith(token)]
    assert mine == [f"{token}-own", *(f"{token}-stranger-{n}" for n in range(3))]


# ------------------------------------------------------------------ the in-process back end


def test_the_worker_thread_outlives_failing_tasks(app, run, token, monkeypatch):
    failing = [enqueue(app, "test.permanent", token), enqueue(app, "test.permanent", token, exc="exit")]
    run.drain()
    assert [run.record(i).status for i in failing] == ["failed", "failed"]
    assert run.record(failing[1]).last_error == "SystemExit: task called exit"
    # Even a failure outside any task (here: the database step itself) leaves the thread running.
    real_run_job = job_attempt.run_job
    broken = []

    def run_job_once_broken(record_id, **kwargs):
        if not broken:
            broken.append(record_id)
            raise RuntimeError("database went away")
        return real_run_job(record_id, **kwargs)

    # Patched where the back ends look it up (attempt.run_in_app), not on the package.
    monkeypatch.setattr(job_attempt, "run_job", run_job_once_broken)
    lost = enqueue(app, "test.noop", token)
    later = enqueue(app, "test.add", 4, 5)
    run.drain()
    assert broken == [lost] and run.record(lost).status == "queued"
    assert run.record(later).status == "succeeded"
    assert jobs.backend(app).is_alive()


def test_jobs_left_waiting_by_an_earlier_process_are_taken_up(app, run, token):
    with app.app_context():
        left = [JobRecord(name="test.noop", args=json.dumps({"args": [token], "kwargs": {}}), status="queued"),
                JobRecord(name="test.noop", args=json.dumps({"args": [token], "kwargs": {}}), status="retrying",
                          attempts=1, next_attempt_at=utcnow() - timedelta(seconds=5))]
        db.session.add_all(left)
        db.session.commit()
        left_ids = [r.id for r in left]
    new = enqueue(app, "test.noop", token)
    run.drain()
    assert [run.record(i).status for i in [*left_ids, new]] == ["succeeded"] * 3
    assert run.record(left_ids[1]).attempts == 2
    assert len(CALLS[token]) == 3  # each once, though a left-over one is queued twice


def test_wait_idle_and_shutdown(app, run, token):
    assert jobs.wait_idle(0.1, app)  # nothing ever queued
    held = enqueue(app, "test.gated", token)
    assert not jobs.wait_idle(0.2, app)
    GATES[token].set()
    run.drain()
    assert run.record(held).status == "succeeded"
    jobs.shutdown(app)
    assert not jobs.backend(app).is_alive()
    after = enqueue(app, "test.noop", token)
    time.sleep(0.1)
    assert run.record(after).status == "queued"  # kept for a later process
    assert len(CALLS[token]) == 1  # the gated job only


def test_worker_command_without_redis_has_nothing_to_run(runner):
    result = runner.invoke(args=["worker"])
    assert result.exit_code == 0, result.output
    assert "nothing to run" in result.output


# ------------------------------------------------------------------ RQ only


@rq_only
def test_a_job_queued_while_no_worker_runs_is_done_by_a_worker_started_later(app, run, token, tmp_path, pg_schema,
                                                                         config_overrides, queue_name):
    record_id = enqueue(app, "test.add", 20, 22)
    assert jobs.backend(app).queue.count == 1  # it is in Redis
    jobs.shutdown(app)  # the web process goes away
    assert run.record(record_id).status == "queued"

    # A new process's app, and its `flask worker` command.
    worker_app = create_app({"TESTING": True, "SECRET_KEY": "other", "SITE_URL": SITE_URL,
                             **database_config(tmp_path, pg_schema), **config_overrides},
                            instance_path=str(tmp_path / "worker-instance"))
    try:
        with signals_kept():
            result = worker_app.test_cli_runner().invoke(args=["worker", "--burst", "--name", f"{queue_name}-cli"])
        assert result.exit_code == 0, result.output
        assert f"Working on RQ queue '{queue_name}'" in result.output
    finally:
        jobs.shutdown(worker_app)
        with worker_app.app_context():
            db.engine.dispose()
    record = run.record(record_id)
    assert (record.status, record.attempts, json.loads(record.result)) == ("succeeded", 1, {"sum": 42})


@rq_only
def test_an_rq_job_that_is_already_done_is_not_run_again(app, run, token):
    record_id = enqueue(app, "test.noop", token)
    run.drain()
    # The same attempt delivered again (a worker lost after running it): the claim refuses it.
    jobs.backend(app).submit(record_id, attempt=1)
    run.step()
    assert len(CALLS[token]) == 1 and run.record(record_id).attempts == 1


@rq_only
def test_a_job_redis_refuses_stays_queued_and_goes_to_redis_once_it_is_back(app, ctx, run, token, monkeypatch, caplog):
    """Redis away (its calls fail): jobs are recorded and kept queued, asked of Redis once, said
    once; the sweeper finds Redis back, hands them over and says so once. (With a real Redis
    killed and restarted: tests/test_redis_outage.py.)"""
    import redis

    rq_backend = jobs.backend(app)
    real_enqueue, real_ping = rq_backend.queue.enqueue, rq_backend.connection.ping
    away, asked = [True], []

    def enqueue(*args, **kwargs):
        asked.append(args)
        if away[0]:
            raise redis.ConnectionError("Redis is down")
        return real_enqueue(*args, **kwargs)

    def ping():
        if away[0]:
            raise redis.ConnectionError("Redis is down")
        return real_ping()

    monkeypatch.setattr(rq_backend.queue, "enqueue", enqueue)
    monkeypatch.setattr(rq_backend.connection, "ping", ping)
    caplog.set_level(logging.INFO, logger="blogapp.jobs")
    made = [jobs.enqueue("test.noop", token).id for _ in range(3)]
    assert [(r.status, r.last_error) for r in map(run.record, made)] == [("queued", None)] * 3
    assert len(asked) == 1  # once Redis is known to be away, requests do not ask it
    assert rq_backend.take_up_waiting() == []  # still away: they keep waiting
    away[0] = False
    assert sorted(rq_backend.take_up_waiting()) == made
    assert rq_backend.take_up_waiting() == []  # handed over once
    run.drain()
    assert [run.record(i).status for i in made] == ["succeeded"] * 3 and len(CALLS[token]) == 3
    said = [r.getMessage() for r in caplog.records if r.name == "blogapp.jobs.redis_outage"]
    where = rq_backend.where
    assert said == [f"Redis at {where} cannot be reached (Redis is down): jobs wait in the database until it answers",
                    f"Redis at {where} is back after 0 s: 3 waiting job(s) handed to it"], said


@rq_only
def test_a_copy_of_an_rq_job_whose_attempt_was_made_claims_nothing(app, run, token):
    """Two RQ jobs for one attempt (one queued again, under an id of its own, while the first was on
    its way): the first runs it; the copy, run while the record waits for its next attempt, does
    not run that one early, and no attempt ever runs twice at once."""
    app.config["JOBS_BACKOFF_BASE"] = 60  # the retry stays in RQ's scheduled registry meanwhile
    record_id = enqueue(app, "test.flaky", token, 1)
    rq_backend = jobs.backend(app)
    rq_backend.submit(record_id, attempt=1, fresh=True, due=utcnow())  # the copy
    assert rq_backend.queue.count == 2
    run.step()
    record = run.record(record_id)
    assert (record.status, record.attempts) == ("retrying", 1) and len(CALLS[token]) == 1
    assert rq_backend.queue.count == 0  # the copy was run too, and claimed nothing
    rq_backend.submit(record_id, attempt=2)  # the retry, due now after all
    run.drain()
    record = run.record(record_id)
    assert (record.status, record.attempts) == ("succeeded", 2) and len(CALLS[token]) == 2
