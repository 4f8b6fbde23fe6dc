"""Redis going away under the RQ back end, with a real Redis: a ``redis-server`` of the test's own on
a free loopback port (no persistence), killed, paused (SIGSTOP: a Redis that accepts connections
and never answers) and started again within the test.

- The web side (this process's app, its sweeper running): jobs made while Redis is away stay
  queued in the database and go to Redis when it is back, one warning and one line said; a hung
  Redis costs a request about ``JOBS_REDIS_TIMEOUT``, once.
- ``flask worker`` (a real process): Redis away at its start or while it runs, it waits with a
  line per try and works again by itself; SIGTERM and SIGINT still stop it at once.
- Its scheduler dies with it: after ``kill -9`` of the worker nothing of it is left, and a new
  worker runs a due retry within seconds (``JOBS_SCHEDULER_LOCK_SECONDS`` is 2 here).

Skipped where redis-server is not installed.
"""
from __future__ import annotations

import ctypes
import logging
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from urllib.parse import parse_qs

import pytest
import redis
from sqlalchemy import select

from blogapp import jobs, outbound
from blogapp.extensions import db
from blogapp.jobs import rq_worker
from blogapp.models import JobRecord, OutboundLink
from helpers import make_post
from test_crash_safety import Servers, free_port, group_members
from test_jobs import CALLS, signals_kept, token  # noqa: F401  (token: a fixture)

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (apt install redis-server)")

SWEEP = 0.2  # JOBS_SWEEP_SECONDS here: a waiting job goes to Redis within this of its return
REDIS_TIMEOUT = 0.3  # JOBS_REDIS_TIMEOUT here
LOCK, SCHEDULER_INTERVAL = 2, 0.2  # JOBS_SCHEDULER_LOCK_SECONDS and JOBS_SCHEDULER_INTERVAL of the workers


def _dies_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process ends, even killed (no server left behind)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


class RedisServer:
    """A redis-server on a free port of 127.0.0.1, without persistence: ``stop()`` then ``start()``
    is a restart that lost everything; ``pause()`` leaves it accepting connections, answering none."""

    def __init__(self, workdir):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.workdir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            preexec_fn=_dies_with_parent)
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.proc.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server never answered"
                time.sleep(0.02)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.proc is not None:
        server.resume()  # a paused one must hear the kill
    server.stop()


@pytest.fixture
def queue_name():
    return f"blogapp-outage-{secrets.token_hex(6)}"


@pytest.fixture
def config_overrides(redis_server, queue_name):
    return {"JOBS_BACKEND": "rq", "REDIS_URL": redis_server.url, "JOBS_QUEUE": queue_name,
            "JOBS_SWEEP_SECONDS": SWEEP, "JOBS_REDIS_TIMEOUT": REDIS_TIMEOUT,
            "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve"}


@pytest.fixture
def servers(app, tmp_path, queue_name, redis_server):
    """``flask worker`` processes on the test's database and Redis; killed at the end. None may have
    printed a traceback."""
    started = Servers(app, tmp_path, "rq", queue_name, redis_url=redis_server.url)
    try:
        yield started
    finally:
        started.close()
    for server in started.started:
        assert "Traceback" not in server.output(), f"{server.kind} {server.pgid} printed one:\n{server.output()}"


def records(app) -> list[tuple]:
    """(status, attempts, last_error) of every job, read fresh."""
    with app.app_context():
        found = db.session.scalars(select(JobRecord).order_by(JobRecord.id))
        return [(r.status, r.attempts, r.last_error) for r in found]


def wait_until(condition, timeout: float, what: str, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(poll)
    return value


def burst(app, queue_name) -> None:
    """One burst of a real worker in this process (the test tasks are registered here)."""
    with signals_kept():
        jobs.backend(app).worker(name=f"{queue_name}-burst").work(burst=True, with_scheduler=True,
                                                                   logging_level="WARNING")


def lines_of(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# ------------------------------------------------------------------ the web side


def test_jobs_made_while_redis_is_down_stay_queued_and_go_to_redis_when_it_is_back(
        app, ctx, redis_server, queue_name, token, caplog):
    caplog.set_level(logging.INFO, logger="blogapp.jobs")
    jobs.start(app)  # the sweeper, as the first request starts it
    redis_server.stop()
    made = []
    for n in range(3):
        started = time.monotonic()
        made.append(jobs.enqueue("test.noop", f"{token}-{n}").id)
        assert time.monotonic() - started < 0.5  # refused at once; then not even asked
    assert records(app) == [("queued", 0, None)] * 3  # nothing accepted is lost
    time.sleep(3 * SWEEP)  # sweeps that find Redis still away say nothing more
    assert len(lines_of(caplog, "cannot be reached")) == 1, caplog.text
    assert lines_of(caplog, "is back after") == []

    redis_server.start()  # empty: nothing of before survived
    queue = jobs.backend(app).queue
    wait_until(lambda: queue.count == 3, 5, "the waiting jobs handed to Redis")
    [back] = lines_of(caplog, "is back after")
    assert back.endswith("3 waiting job(s) handed to it"), back
    burst(app, queue_name)
    assert records(app) == [("succeeded", 1, None)] * 3
    assert all(len(CALLS[f"{token}-{n}"]) == 1 for n in range(3))  # each ran once
    assert lines_of(caplog, "queued again") == []  # not taken for lost jobs: they were known to wait


def test_an_outage_found_during_a_sweep_is_not_said_over_by_that_sweep(app, ctx, redis_server, queue_name, token,
                                                                       caplog, monkeypatch):
    """The interleaving that once said "back after 0 s" while Redis was down: a sweep begins while
    Redis is up (so it does not ping), and a request finds Redis away before the sweep ends. That
    sweep never asked Redis, so the outage stands: the job waits, nothing says Redis is back."""
    caplog.set_level(logging.INFO, logger="blogapp.jobs")
    backend = jobs.backend(app)
    made = []
    real_take_up_lost = backend.take_up_lost

    def a_request_fails_meanwhile(waiting=frozenset()):
        if not made:  # the request's real enqueue, against the Redis just stopped
            redis_server.stop()
            with app.app_context():
                made.append(jobs.enqueue("test.noop", f"{token}-during").id)
        return real_take_up_lost(waiting)

    monkeypatch.setattr(backend, "take_up_lost", a_request_fails_meanwhile)
    assert backend.take_up_waiting() == []
    assert backend.outage.away
    assert len(lines_of(caplog, "cannot be reached")) == 1
    assert lines_of(caplog, "is back after") == []
    assert records(app) == [("queued", 0, None)]

    redis_server.start()  # the next sweep asks Redis, finds it, and hands the job over
    assert backend.take_up_waiting() == made
    [back] = lines_of(caplog, "is back after")
    assert back.endswith("1 waiting job(s) handed to it"), back


def test_a_redis_that_does_not_answer_costs_a_request_its_timeout_once(app, ctx, redis_server, queue_name, token):
    jobs.start(app)
    redis_server.pause()  # connections are accepted, nothing is answered
    took, made = [], []

    def enqueue_one(n):
        with app.app_context():
            started = time.monotonic()
            made.append(jobs.enqueue("test.noop", f"{token}-{n}").id)
            took.append(time.monotonic() - started)

    for n in range(3):
        request = threading.Thread(target=enqueue_one, args=(n,), daemon=True)
        request.start()
        request.join(5)
        assert not request.is_alive(), "a request waited on the hung Redis"
    assert took[0] < 4 * REDIS_TIMEOUT + 0.5, took  # the timeout (and one retry of the connection)
    assert max(took[1:]) < 0.2, took  # known to be away: not asked
    assert records(app) == [("queued", 0, None)] * 3

    redis_server.resume()
    queue = jobs.backend(app).queue
    wait_until(lambda: queue.count == 3, 5, "the waiting jobs handed to Redis")
    burst(app, queue_name)
    assert records(app) == [("succeeded", 1, None)] * 3


# ------------------------------------------------------------------ flask worker


def webmention_target(source_site, answers: list[int] | None = None):
    """A page on the fake site with a Webmention endpoint that answers ``answers`` in turn, then
    202; returns (the page's URL, the Webmentions received)."""
    received, answers = [], list(answers or [])

    def endpoint(request):
        received.append({k: v[0] for k, v in parse_qs(request.body.decode()).items()})
        status = answers.pop(0) if answers else 202
        return status, {"Content-Type": "text/plain"}, "ok" if status < 400 else "try later"

    source_site.handler("/webmention", endpoint)
    page = source_site.page("/article", "<html><body><p>An article.</p></body></html>",
                            headers={"Link": f'<{source_site.url}/webmention>; rel="webmention"'})
    return page, received


def send_to(app, page: str, title: str) -> int:
    """A published post linking to ``page``, its send queued (on this test's Redis); the row's id."""
    make_post(title=title, body=f"I read [an article]({page}).")
    outbound.dispatch()
    with app.app_context():
        return db.session.scalars(select(OutboundLink.id).order_by(OutboundLink.id.desc())).first()


def sent(app, row_id: int) -> bool:
    with app.app_context():
        return db.session.get(OutboundLink, row_id).state == "sent"


def waits_for_redis(worker) -> int:
    return worker.output().count("The worker waits for Redis")


def test_the_worker_waits_for_redis_and_works_again_when_it_is_back(app, ctx, servers, redis_server, source_site):
    page, received = webmention_target(source_site)
    redis_server.stop()
    worker = servers.worker()  # Redis away at its start
    wait_until(lambda: waits_for_redis(worker) >= 2, 20, f"two tries\n{worker.output()}")
    assert worker.proc.poll() is None, worker.output()
    assert "next try in 1 s" in worker.output() and "next try in 2 s" in worker.output()

    redis_server.start()
    wait_until(lambda: "is back" in worker.output(), 10, f"the worker back at work\n{worker.output()}")
    first = send_to(app, page, "First")
    wait_until(lambda: sent(app, first), 15, f"the first send\n{worker.output()}")

    redis_server.stop()  # while it runs: idle, waiting on Redis for a job
    tries = waits_for_redis(worker)
    wait_until(lambda: waits_for_redis(worker) > tries, 10, f"the worker noticing\n{worker.output()}")
    second = send_to(app, page, "Second")  # Redis away: its record waits in the database
    assert records(app)[-1] == ("queued", 0, None)
    redis_server.start()  # empty: the worker's sweep finds the job with nothing in Redis to run it
    wait_until(lambda: sent(app, second), 15, f"the second send\n{worker.output()}")
    assert len(received) == 2  # each sent once
    assert worker.proc.poll() is None

    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(5) == 0, worker.output()
    output = worker.output()
    # A line per try, one line when it went and one when it came back (per outage), nothing more.
    assert output.count("cannot be reached") == 2, output
    assert output.count("is back after") == 2, output


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_worker_waiting_for_redis_stops_at_once_on_a_signal(servers, redis_server, stop_signal):
    redis_server.stop()
    worker = servers.worker()
    wait_until(lambda: waits_for_redis(worker) >= 1, 20, f"a try\n{worker.output()}")
    time.sleep(0.2)  # in its wait now
    worker.proc.send_signal(stop_signal)
    started = time.monotonic()
    assert worker.proc.wait(5) == 0, worker.output()
    assert time.monotonic() - started < 2


def test_a_burst_worker_with_redis_away_says_so_in_one_line(app, runner, redis_server):
    redis_server.stop()
    with signals_kept():
        result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1].startswith(f"Error: Redis at 127.0.0.1:{redis_server.port} cannot be reached")


# ------------------------------------------------------------------ the scheduler dies with its worker


def test_after_kill_9_of_the_worker_a_new_one_runs_the_due_retry_within_seconds(
        app, ctx, servers, redis_server, source_site, queue_name):
    page, received = webmention_target(source_site, answers=[503])
    settings = {"JOBS_SCHEDULER_LOCK_SECONDS": LOCK, "JOBS_SCHEDULER_INTERVAL": SCHEDULER_INTERVAL,
                "JOBS_BACKOFF_BASE": 3.0}  # the retry still waits in RQ's scheduled registry at the kill
    row_id = send_to(app, page, "Retried")
    first = servers.worker(settings)
    wait_until(lambda: records(app)[0][0] == "retrying", 20, f"the first attempt\n{first.output()}")
    lock = f"rq:scheduler-lock:{queue_name}"
    assert 0 < redis_server.client().ttl(lock) <= LOCK  # held by the worker's scheduler, briefly

    os.kill(first.proc.pid, signal.SIGKILL)  # the worker alone, as `kill -9 PID` does
    killed = time.monotonic()
    first.proc.wait(5)
    wait_until(lambda: not group_members(first.pgid), 2, "the worker's processes gone")  # no orphaned scheduler
    first.killed = True

    second = servers.worker(settings)
    wait_until(lambda: records(app)[0][0] == "succeeded", 20, f"the retry\n{second.output()}")
    # The dead scheduler's lock lapsed within LOCK seconds; the new worker's own took it and moved
    # the retry (due 3 s after the first attempt) onto the queue. RQ's own: after a minute.
    assert time.monotonic() - killed < 15
    assert records(app) == [("succeeded", 2, "TransientJobError: HTTP 503: try later")]
    assert sent(app, row_id)
    assert [r["target"] for r in received] == [page, page]


def test_the_defaults_schedule_a_due_job_within_60_seconds_of_a_new_worker():
    """The promise, with the defaults: a dead worker's scheduler lock lapses JOBS_SCHEDULER_LOCK_SECONDS
    after its last renewal, and a live scheduler asks for it every JOBS_SCHEDULER_INTERVAL; the
    seconds added are for the new worker to start."""
    startup = 10
    assert rq_worker.SCHEDULER_LOCK_SECONDS + rq_worker.SCHEDULER_INTERVAL + startup <= 60
    assert rq_worker.RETRY_MAX == 30  # the longest wait between two tries to reach Redis
