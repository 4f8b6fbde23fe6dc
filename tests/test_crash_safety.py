"""Crash safety of background jobs, with real processes: ``kill -9`` in the middle of each kind of
job, a restart, and the job finished, once.

Real processes, because what is tested is what a dead process leaves behind (a running JobRecord
whose lease nobody renews, a claim still "verifying", a fetch cut off halfway) and what a new
process does about it on its own: no request to it, no admin action, no sender sending again. An
imitation inside the test process would keep the threads, connections and memory that a killed
process loses.

The servers are a real gunicorn (``gunicorn.conf.py``, one worker) and, on RQ, real
``flask --app blogapp worker`` processes, each started in a session of its own so that one
``killpg(SIGKILL)`` takes its children too (gunicorn's worker, RQ's scheduler). They are configured
only through ``BLOGAPP_*`` variables, on the test's own database, which this process seeds and
reads but never runs a job on. Leases are short (2 s) and sweeps frequent (0.5 s), so a dead job is
taken up within seconds. The remote sites are tests/sites.py's fake sites on 127.0.0.1; the page a
job fetches hangs on its first request until the process fetching it has been killed.

RQ tests are skipped unless TEST_REDIS_URL is set; each uses a queue of its own and deletes the
Redis keys it made.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy import select

from blogapp import jobs, outbound
from blogapp.config import DEFAULTS
from blogapp.extensions import db
from blogapp.models import Comment, JobRecord, LinkbackAttempt, LinkbackLog, OutboundLink
from conftest import SITE_URL, TEST_REDIS_URL
from helpers import make_post
from test_jobs import redis_cleanup  # noqa: F401  (a fixture: the Redis keys of this test's queue)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the interpreter running the tests: its gunicorn and flask
LEASE, SWEEP = 2, 0.5  # JOBS_LEASE_SECONDS and JOBS_SWEEP_SECONDS of the servers
DONE_TIMEOUT = 30.0  # a dead job is done within a lease, a sweep and a start; this is generous
LEASE_EXPIRED = "the process running it stopped (its lease expired)"

NEEDS_REDIS = pytest.mark.skipif(not TEST_REDIS_URL, reason="the RQ back end needs Redis: set TEST_REDIS_URL")
both = pytest.mark.parametrize("backend_name", ["thread", pytest.param("rq", marks=NEEDS_REDIS)], indirect=True)


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def backend_name(request):
    return getattr(request, "param", "thread")


@pytest.fixture
def queue_name():
    return f"blogapp-crash-{secrets.token_hex(6)}"


@pytest.fixture
def config_overrides(backend_name, queue_name):
    """The test process's own app: on RQ it only puts jobs into Redis (the workers run them); on
    the thread back end it never starts its job thread (it submits nothing)."""
    config = {"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve",
              "JOBS_BACKEND": backend_name}
    if backend_name == "rq":
        config |= {"REDIS_URL": TEST_REDIS_URL, "JOBS_QUEUE": queue_name}
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc: a killed gunicorn's worker
    is reparented, so waiting for the master alone does not say it is gone."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            pids.append(int(entry))
    return pids


class Server:
    """One started process (and its children), its log, and how to kill it."""

    def __init__(self, kind: str, argv: list[str], env: dict, log: Path, url: str | None = None):
        self.kind, self.log, self.url = kind, log, url
        self.tracebacks_expected = False  # set by a test that makes it log an exception on purpose
        self.killed = False
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.pgid = self.proc.pid  # a new session: the leader's pid is the group's id

    def members(self) -> list[int]:
        return group_members(self.pgid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL to the whole group, and wait until none of it is left alive. Once only: after
        that the group's id is free, and may be another process's."""
        if self.killed:
            return
        self.killed = True
        if self.proc.returncode is None or self.members():  # (a leader reaped already frees its pid)
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:  # all exited on their own, just now
                pass
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while group_members(self.pgid):
            assert time.monotonic() < deadline, f"{self.kind} {self.pgid}: processes left after SIGKILL"
            time.sleep(0.01)


class Servers:
    """Starts gunicorn and RQ workers on the test's database, configured by environment only."""

    def __init__(self, app, tmp_path: Path, backend_name: str, queue_name: str, redis_url: str | None = TEST_REDIS_URL):
        self.app, self.tmp_path, self.backend_name, self.queue_name = app, tmp_path, backend_name, queue_name
        self.redis_url = redis_url
        self.started: list[Server] = []

    def env(self, extra: dict | None = None) -> dict:
        """The environment of a server: this test's settings, as BLOGAPP_* variables only."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BLOGAPP_", "FLASK_", "GUNICORN_")) and k != "WEB_CONCURRENCY"}
        config = self.app.config
        settings = {
            "SITE_URL": SITE_URL,
            "SECRET_KEY": config["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": config["SQLALCHEMY_DATABASE_URI"],
            "SQLALCHEMY_ENGINE_OPTIONS": config["SQLALCHEMY_ENGINE_OPTIONS"],
            "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"],
            "LINKBACK_MODERATION": "approve",
            "LINKBACK_VERIFY_BUDGET": 0.5,  # a source slower than this: "verification continues"
            "JOBS_BACKEND": self.backend_name,
            "JOBS_LEASE_SECONDS": LEASE,
            "JOBS_SWEEP_SECONDS": SWEEP,
            # As in the test app: no limiter counters (on RQ they would be Redis keys of all tests).
            "RATELIMIT_ENABLED": False,
        }
        if self.backend_name == "rq":
            settings |= {"REDIS_URL": self.redis_url, "JOBS_QUEUE": self.queue_name}
        settings |= extra or {}
        # Flask's from_prefixed_env reads each value as JSON (a string that is not JSON stays a string).
        env.update({f"BLOGAPP_{name}": value if isinstance(value, str) else json.dumps(value)
                    for name, value in settings.items()})
        env["BLOGAPP_INSTANCE_PATH"] = str(self.tmp_path / "server-instance")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _log(self, kind: str) -> Path:
        return self.tmp_path / f"{kind}-{len(self.started) + 1}.log"

    def gunicorn(self, *, wait_ready: bool = True, extra: dict | None = None) -> Server:
        """gunicorn with one worker, as in production (gunicorn.conf.py). ``wait_ready`` polls a
        plain-text 404 (no template: on RQ a rendered page would leave fragments in Redis)."""
        port = free_port()
        # No control socket: it would be one path in $HOME for every gunicorn, left behind by kill -9.
        argv = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                "--no-control-socket"]
        server = Server("gunicorn", argv, self.env(extra), self._log("gunicorn"), url=f"http://127.0.0.1:{port}")
        self.started.append(server)
        if wait_ready:
            deadline = time.monotonic() + 30
            while True:
                assert server.proc.poll() is None, f"gunicorn exited:\n{server.tail()}"
                try:
                    if requests.get(server.url + "/webmention/ready", timeout=1).status_code == 404:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, f"gunicorn never answered:\n{server.tail()}"
                time.sleep(0.05)
        return server

    def worker(self, extra: dict | None = None) -> Server:
        """``flask --app blogapp worker``; its name holds the queue's, so its keys are cleaned up."""
        name = f"{self.queue_name}-w{len(self.started) + 1}"
        argv = [str(BIN / "flask"), "--app", "blogapp", "worker", "--name", name]
        server = Server("worker", argv, self.env(extra), self._log("worker"))
        self.started.append(server)
        return server

    def close(self) -> None:
        for server in self.started:
            server.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {s.kind} {s.pgid} ({s.log.name})\n{s.tail()}" for s in self.started)


@pytest.fixture
def servers(app, tmp_path, backend_name, queue_name, redis_cleanup):
    """The processes a test starts; all killed (and waited for) at its end, before the database
    and Redis are cleaned. None may have printed a traceback."""
    started = Servers(app, tmp_path, backend_name, queue_name)
    try:
        yield started
    finally:
        started.close()
    for server in started.started:
        if not server.tracebacks_expected:
            assert "Traceback" not in server.output(), f"{server.kind} {server.pgid} printed one:\n{server.output()}"


class Hang:
    """A page of the fake site that, on its first request, hangs until ``release`` (set once the
    process fetching it is killed), then answers; later requests are answered at once."""

    def __init__(self, site, path: str, body: str, headers: dict | None = None):
        self.url = site.url + path
        self.body, self.headers = body, {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
        self.arrived, self.release = threading.Event(), threading.Event()
        self.calls = 0
        self._lock = threading.Lock()
        site.handler(path, self._answer)

    def _answer(self, request):
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.arrived.set()
            self.release.wait(60)
        return 200, self.headers, self.body


@pytest.fixture
def hang(source_site):
    """Makes ``Hang`` pages on the fake site; releases them all before the site closes."""
    made: list[Hang] = []

    def make(path, body, headers=None):
        made.append(Hang(source_site, path, body, headers))
        return made[-1]

    yield make
    for page in made:
        page.release.set()


@pytest.fixture
def post(app, ctx):
    """A published post open to linkbacks: (id, permalink)."""
    post_id, path = make_post(title="Target post", days_ago=3)
    return post_id, SITE_URL + path


# ------------------------------------------------------------------ reading the database


def rows(app, model, *columns) -> list[tuple]:
    """The rows of a table, as tuples of the given columns, read fresh."""
    with app.app_context():
        return [tuple(getattr(row, c) for c in columns) for row in db.session.scalars(select(model).order_by(model.id))]


JOB_COLUMNS = ("id", "name", "status", "attempts", "last_error", "lease_owner", "result")


def only_job(app) -> dict:
    found = rows(app, JobRecord, *JOB_COLUMNS)
    assert len(found) == 1, f"expected one job, found {found}"
    return dict(zip(JOB_COLUMNS, found[0]))


def running_in(app, server: Server, timeout: float = 10.0) -> dict:
    """The one job, once it is running under a lease held by a process of ``server``."""
    deadline = time.monotonic() + timeout
    while True:
        job = only_job(app)
        if job["status"] == "running" and job["lease_owner"]:
            pid = int(job["lease_owner"].split(":")[1])  # host:pid:token
            assert pid in server.members(), f"the job runs in {pid}, not in {server.kind} {server.pgid}"
            return job
        assert time.monotonic() < deadline, f"the job never ran: {job}"
        time.sleep(0.02)


def wait_done(app, servers: Servers, timeout: float = DONE_TIMEOUT) -> dict:
    """The one job, once it has ended (succeeded or failed)."""
    deadline = time.monotonic() + timeout
    while (job := only_job(app))["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"not done after {timeout} s: {job}\n{servers.logs()}"
        time.sleep(0.05)
    return job


def assert_ran_twice_once_done(job: dict, name: str) -> None:
    """The job's end state after one run was killed: the second run did it, and nothing else ran."""
    assert (job["name"], job["status"], job["attempts"]) == (name, "succeeded", 2), job
    assert job["last_error"] == LEASE_EXPIRED, job  # the died run, as the sweep recorded it
    assert job["lease_owner"] is None, job


def linking_page(target: str, title: str = "A page that links") -> str:
    return (f"<!doctype html><html><head><title>{title}</title></head><body>"
            f"<p>I read <a href=\"{target}\">this post</a> and liked it.</p></body></html>")


# ------------------------------------------------------------------ the tests


@both
def test_a_webmention_whose_verifier_is_killed_is_verified_after_the_restart(
        app, servers, hang, source_site, post, backend_name):
    """kill -9 while the job fetches the source: the new process verifies it, the status page
    says verified, and the sender sent once."""
    post_id, target = post
    source = hang("/mention", linking_page(target))
    web = servers.gunicorn()
    victim = servers.worker() if backend_name == "rq" else web  # who runs the job
    answer = requests.post(web.url + "/webmention", data={"source": source.url, "target": target}, timeout=10)
    assert answer.status_code == 201, answer.text
    token = answer.headers["Location"].rsplit("/", 1)[1]
    assert source.arrived.wait(20), f"the source was never fetched\n{servers.logs()}"
    job = running_in(app, victim)
    assert (job["name"], job["attempts"]) == ("webmention.verify", 1)

    victim.kill()
    assert rows(app, LinkbackLog, "outcome") == [("verifying",)]  # left as the dead process had it
    source.release.set()
    if backend_name == "rq":
        servers.worker()  # a new worker (the web process, alive, sweeps too)
    else:
        web = servers.gunicorn(wait_ready=False)  # no request to it: it takes the job up on its own

    job = wait_done(app, servers)
    assert_ran_twice_once_done(job, "webmention.verify")
    assert json.loads(job["result"]) == "verified"
    comments = rows(app, Comment, "id", "post_id", "kind", "status", "source_url", "response_type")
    assert [c[1:] for c in comments] == [(post_id, "webmention", "approved", source.url, "mention")]
    assert rows(app, LinkbackLog, "protocol", "outcome", "comment_id", "message", "token") == [
        ("webmention", "accepted", comments[0][0], "Verified; stored as a mention (approved).", token)]
    assert source.calls == 2  # one fetch per run: the cut-off one and the one that verified
    assert [(r.method, r.path) for r in source_site.requests] == [("GET", "/mention")] * 2
    status = requests.get(web.url + f"/webmention/{token}", headers={"Accept": "application/json"}, timeout=10)
    assert status.json()["status"] == "verified"


@both
def test_a_late_pingback_whose_web_process_is_killed_is_approved_without_a_second_ping(
        app, servers, hang, source_site, post, backend_name):
    """The sender waits LINKBACK_VERIFY_BUDGET, is told "verification continues", and the web
    process is killed while it still fetches the source. The claim is durable: after a restart
    (thread) or by the running worker's sweep (RQ), it ends as an approved pingback."""
    post_id, target = post
    source = hang("/pinging", linking_page(target, title="Pinging page"))
    web = servers.gunicorn()
    if backend_name == "rq":
        servers.worker()  # runs throughout; the pingback is verified in the web process first
    call = xmlrpc.client.dumps((source.url, target), "pingback.ping")
    answer = requests.post(web.url + "/xmlrpc", data=call.encode(), headers={"Content-Type": "text/xml"}, timeout=10)
    (message,), _ = xmlrpc.client.loads(answer.content)
    assert message == (f"Pingback from {source.url} to {target} received; verification continues and it "
                       "appears once verified.")
    assert source.arrived.wait(10), f"the source was never fetched\n{servers.logs()}"
    job = running_in(app, web)
    assert (job["name"], job["attempts"]) == ("linkback.verify", 1)

    web.kill()
    assert rows(app, Comment, "status") == [("verifying",)]
    assert rows(app, LinkbackLog, "outcome") == [("verifying",)]
    source.release.set()
    if backend_name == "thread":
        servers.gunicorn(wait_ready=False)  # no request to it: it takes the claim up on its own

    job = wait_done(app, servers)
    assert_ran_twice_once_done(job, "linkback.verify")
    assert json.loads(job["result"]) == {"status": "approved"}
    comments = rows(app, Comment, "id", "post_id", "kind", "status", "source_url", "author_name", "content")
    assert [c[1:] for c in comments] == [
        (post_id, "pingback", "approved", source.url, "Pinging page", "[…] I read this post and liked it. […]")]
    assert rows(app, LinkbackLog, "protocol", "outcome", "comment_id", "message") == [
        ("pingback", "accepted", comments[0][0], "stored as approved")]
    assert source.calls == 2
    assert [(r.method, r.path) for r in source_site.requests] == [("GET", "/pinging")] * 2


@both
def test_an_outbound_webmention_whose_sender_is_killed_is_sent_exactly_once(
        app, ctx, servers, hang, source_site, backend_name):
    """A post links to a page whose discovery hangs; the process sending is killed. The next
    process discovers again and sends: the remote endpoint receives one Webmention."""
    received = []

    def endpoint(request):
        received.append({k: v[0] for k, v in parse_qs(request.body.decode()).items()})
        return 202, {"Content-Type": "text/plain"}, "queued"

    source_site.handler("/webmention", endpoint)
    article = hang("/article", "<html><body><p>An article.</p></body></html>",
                   headers={"Link": f'<{source_site.url}/webmention>; rel="webmention"'})
    post_id, path = make_post(title="Linking post", body=f"I read [an article]({article.url}).")
    ((row_id, generation, state),) = rows(app, OutboundLink, "id", "generation", "state")
    assert state == "pending"
    # The job is queued as publishing queues it, before any server runs. On the thread back end
    # only its record is written: submitting it here would run it in this process's job thread.
    if backend_name == "rq":
        outbound.dispatch()
    else:
        jobs.prepare(outbound.TASK, row_id, generation, key=f"{outbound.TASK}:{row_id}:{generation}")
        db.session.commit()
    victim = servers.worker() if backend_name == "rq" else servers.gunicorn(wait_ready=False)
    assert article.arrived.wait(20), f"the linked page was never fetched\n{servers.logs()}"
    job = running_in(app, victim)
    assert (job["name"], job["attempts"]) == ("linkback.send", 1)

    victim.kill()
    assert rows(app, OutboundLink, "state", "attempts") == [("pending", 0)]
    assert rows(app, LinkbackAttempt, "id") == [] and received == []
    article.release.set()
    if backend_name == "rq":
        servers.worker()
    else:
        servers.gunicorn(wait_ready=False)

    job = wait_done(app, servers)
    assert_ran_twice_once_done(job, "linkback.send")
    endpoint_url = source_site.url + "/webmention"
    assert rows(app, OutboundLink, "state", "sent_protocol", "endpoint", "code", "attempts", "message") == [
        ("sent", "webmention", endpoint_url, 202, 1, "Accepted (HTTP 202).")]
    assert rows(app, LinkbackAttempt, "link_id", "protocol", "outcome", "code") == [
        (row_id, "webmention", "sent", 202)]
    assert received == [{"source": SITE_URL + path, "target": article.url}]  # exactly one Webmention
    assert [(r.method, r.path) for r in source_site.requests] == [
        ("GET", "/article"), ("GET", "/article"), ("POST", "/webmention")]
    if backend_name == "thread":
        assert not jobs.backend(app).is_alive()  # this process ran nothing


def test_a_claim_whose_last_attempt_is_killed_is_refused_not_left_verifying(app, servers, hang, source_site, post):
    """With JOBS_MAX_ATTEMPTS 1 the killed run was the last: the sweep of the restarted process fails
    the job and its give-up hook releases the claim, logged refused, so it is not left "verifying"
    (counted against the caps on pending verifications, hidden, for ever). The source is not fetched
    again."""
    source = hang("/pinging", linking_page(post[1]))
    settings = {"JOBS_MAX_ATTEMPTS": 1}
    web = servers.gunicorn(extra=settings)
    call = xmlrpc.client.dumps((source.url, post[1]), "pingback.ping")
    answer = requests.post(web.url + "/xmlrpc", data=call.encode(), headers={"Content-Type": "text/xml"}, timeout=10)
    assert "verification continues" in xmlrpc.client.loads(answer.content)[0][0]
    assert source.arrived.wait(10), f"the source was never fetched\n{servers.logs()}"
    running_in(app, web)

    web.kill()
    source.release.set()
    servers.gunicorn(wait_ready=False, extra=settings)

    job = wait_done(app, servers)
    assert (job["name"], job["status"], job["attempts"], job["last_error"]) == (
        "linkback.verify", "failed", 1, LEASE_EXPIRED)
    # The sweep commits the job's failure first, then runs the hook: its writes follow a moment later.
    deadline = time.monotonic() + 5
    while rows(app, LinkbackLog, "outcome") == [("verifying",)]:
        assert time.monotonic() < deadline, f"the claim was never released\n{servers.logs()}"
        time.sleep(0.02)
    assert rows(app, Comment, "id", "status") == []
    assert rows(app, LinkbackLog, "protocol", "outcome", "fault_code", "comment_id", "message") == [
        ("pingback", "refused", 0, None, "The linkback could not be verified: the process verifying it stopped, "
                                         "on every attempt.")]
    assert source.calls == 1


@pytest.mark.parametrize("backend_name", [pytest.param("rq", marks=NEEDS_REDIS)], indirect=True)
def test_a_job_revived_while_redis_is_away_is_run_once_redis_is_back(app, ctx, servers, hang, source_site):
    """The worker sending is killed; the first process to sweep (a web process) cannot reach Redis,
    so the record is revived (retrying) but its RQ job is never made. A new worker, with Redis,
    finds it waiting with nothing in Redis to run it (RQBackend.take_up_lost) and sends it, once."""
    received = []

    def endpoint(request):
        received.append(request.body)
        return 202, {"Content-Type": "text/plain"}, "queued"

    source_site.handler("/webmention", endpoint)
    article = hang("/article", "<html><body><p>An article.</p></body></html>",
                   headers={"Link": f'<{source_site.url}/webmention>; rel="webmention"'})
    make_post(title="Linking post", body=f"I read [an article]({article.url}).")
    outbound.dispatch()
    first = servers.worker()
    assert article.arrived.wait(20), f"the linked page was never fetched\n{servers.logs()}"
    running_in(app, first)
    first.kill()
    article.release.set()

    web = servers.gunicorn(wait_ready=False, extra={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    deadline = time.monotonic() + DONE_TIMEOUT
    while (job := only_job(app))["status"] != "retrying":
        assert time.monotonic() < deadline, f"never revived: {job}\n{servers.logs()}"
        time.sleep(0.05)
    assert job["last_error"] == LEASE_EXPIRED
    while "cannot be reached" not in web.output():  # said once the revived job's submit failed
        assert time.monotonic() < deadline, f"Redis away, never said\n{web.output()}"
        time.sleep(0.05)
    web.kill()
    assert web.output().count("cannot be reached") == 1, web.output()  # said once, with no traceback

    servers.worker()
    job = wait_done(app, servers, timeout=5 * (LEASE + SWEEP))
    assert_ran_twice_once_done(job, "linkback.send")
    assert len(received) == 1


def test_the_defaults_take_up_a_dead_process_job_within_90_seconds_of_a_restart():
    """The promise: a restarted web process (or a new worker) runs a dead process's job within
    90 s. Its lease runs out at most JOBS_LEASE_SECONDS after the last renewal (the renewal comes
    every third of it, so a lease never lapses while its process lives), and a process sweeps when
    it starts and then every JOBS_SWEEP_SECONDS; the few seconds added are for the process to
    start and for the job to be handed over. The tests above show the mechanism with a 2 s lease."""
    lease, sweep = DEFAULTS["JOBS_LEASE_SECONDS"], DEFAULTS["JOBS_SWEEP_SECONDS"]
    startup = 10  # seconds: gunicorn or `flask worker` starting, the first sweep's queries, the hand-over
    assert lease + sweep + startup <= 90
