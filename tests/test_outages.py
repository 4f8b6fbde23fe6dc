"""Redis and PostgreSQL going away while the blog serves, with real servers this file starts and
stops: a Redis on a free loopback port, and a PostgreSQL cluster of its own made with Debian's
``initdb`` and ``pg_ctl``. Readers, comments and pingbacks carry on through a Redis outage (the
page cache is skipped, rate limits are counted in the process); while PostgreSQL is down,
readers get a short 503 with ``Retry-After`` and nothing is half-accepted; each outage is one
line in the log, not a traceback per request; and the blog recovers by itself.

Where ``redis-server`` or PostgreSQL's server binaries are missing these tests skip, saying so;
under ``CI=true`` they fail instead (CI's machine has both).
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import xmlrpc.client
from pathlib import Path

import pytest
from sqlalchemy import select

from blogapp import create_app, jobs
from blogapp.extensions import db
from blogapp.linkback.receive import CpuBudget
from blogapp.models import Comment, Post
from blogapp.templating import site_request_context
from conftest import LiveServer
from helpers import add_comment, make_post, wait_for
from netfence import Net

SITE = "http://blog.test"
IN_CI = os.environ.get("CI") == "true"


def unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this machine must have it)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def fence(monkeypatch):
    net = Net()
    net.install(monkeypatch)
    yield net
    assert net.non_loopback() == [], f"connections attempted past loopback: {net.non_loopback()}"


class PrivateRedis:
    """``redis-server`` on a free loopback port, keeping nothing on disk."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            unavailable("redis-server is not installed (Debian package redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: answers(self.port), timeout=10, interval=0.05), "redis-server did not start"

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        assert wait_for(lambda: not answers(self.port), timeout=5, interval=0.05)


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (``initdb``), on a free loopback port, trust auth.
    Run as the ``postgres`` user when the tests run as root (the server refuses root)."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            unavailable("PostgreSQL's server binaries are not installed (Debian package postgresql)")
        self.bin = Path(found[-1]).parent
        self.as_user = []
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                unavailable("running as root without runuser: initdb cannot run")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        # A directory the server's user can reach (pytest's own is root's alone); removed by cleanup().
        self.dir = Path(tempfile.mkdtemp(prefix="blogapp-pg-"))
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool, *args):
        done = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{tool} failed: {done.stdout}\n{done.stderr}"

    def start(self):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        assert not answers(self.port)

    def cleanup(self):
        if answers(self.port):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def blog(database_url: str, tmp_path: Path, **settings):
    app = create_app({
        "TESTING": True, "SECRET_KEY": "outage-test", "SITE_URL": SITE, "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False, "JOBS_BACKEND": "thread", "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"],
        "LINKBACK_MODERATION": "approve", "COMMENT_MODERATION": "approve", **settings,
    }, instance_path=str(tmp_path / "instance"))
    with app.app_context(), site_request_context(app):
        db.create_all()  # (not the migrations: alembic's logging setup would take the log from caplog)
        _, path = make_post(title="Still here", days_ago=2)
    return app, path


def comment(client, post_id: int, text: str):
    return client.post(f"/posts/{post_id}/comments", data={
        "author_name": "Ann Reader", "author_email": "ann@example.org", "author_url": "", "content": text,
        "parent_id": "", "homepage": ""})


def stored(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(Comment).order_by(Comment.id)).all()
        return [(c.kind, c.status, c.content if c.kind == "comment" else c.source_url) for c in rows]


def linking_page(href: str) -> str:
    return f"<html><head><title>A page that links</title></head><body><p>See <a href='{href}'>this</a>.</p></body></html>"


def ping(server, source: str, target: str):
    with xmlrpc.client.ServerProxy(server.url + "/xmlrpc") as proxy:
        return proxy.pingback.ping(source, target)


def lines(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# --------------------------------------------------------------------------- Redis


def test_readers_comments_and_pingbacks_carry_on_while_redis_is_down(tmp_path, source_site, caplog):
    redis = PrivateRedis()
    redis.start()
    app, path = blog(f"sqlite:///{tmp_path / 'blog.sqlite'}", tmp_path, REDIS_URL=redis.url, RATELIMIT_ENABLED=True)
    caplog.set_level(logging.INFO)
    client = app.test_client()
    try:
        assert client.get(path).headers["X-Cache"] == "miss"
        assert client.get(path).headers["X-Cache"] == "hit"  # kept in Redis
        post_id = int(client.get(path).get_data(as_text=True).split('action="/posts/')[1].split("/")[0])
        redis.stop()
        started = time.monotonic()
        for _ in range(10):
            response = client.get(path)
            assert response.status_code == 200 and response.headers["X-Cache"] == "miss"
            assert client.get("/").status_code == 200 and client.get("/feed/").status_code == 200
        assert time.monotonic() - started < 10  # not a timeout's wait per request
        assert comment(client, post_id, "Written while Redis was away.").status_code == 303
        with LiveServer(app) as server:
            source = source_site.page("/linking", linking_page(SITE + path))
            assert "registered" in ping(server, source, SITE + path)
        # One warning for the page cache, however many requests; no traceback.
        assert len(lines(caplog, "page cache's Redis is unreachable")) == 1
        assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]

        redis.start()
        app.extensions["cache"][next(iter(app.extensions["cache"]))].outage.retry_seconds = 0.1
        time.sleep(0.2)
        assert wait_for(lambda: client.get(path).headers["X-Cache"] == "hit", timeout=10, interval=0.1)
        assert len(lines(caplog, "page cache's Redis is back")) == 1
        assert stored(app) == [("comment", "approved", "Written while Redis was away."),
                               ("pingback", "approved", source)]
    finally:
        redis.stop()
        app.extensions["linkback_receiver"].shutdown()


# --------------------------------------------------------------------------- PostgreSQL


def test_readers_get_a_short_503_while_postgresql_is_down_and_the_blog_recovers(tmp_path, source_site, caplog):
    """The blog's first request comes during the outage (its job thread starts then, and its
    first sweep fails); once PostgreSQL is back, everything works again by itself, the queued
    verifications included."""
    pytest.importorskip("psycopg")
    postgres = PrivatePostgres()
    postgres.start()
    app = None
    try:
        app, path = blog(postgres.url, tmp_path)
        caplog.set_level(logging.INFO)
        client = app.test_client()
        with app.app_context():
            post_id = db.session.scalar(select(Post.id))
            add_comment(post_id, "Before the outage.")

        postgres.stop()
        for _ in range(20):
            for address in (path, "/", "/feed/", "/2020/"):
                response = client.get(address)
                assert response.status_code == 503, (address, response.status_code)
                assert response.headers["Retry-After"] == "30"
                assert "unavailable for a moment" in response.get_data(as_text=True)
        refused = comment(client, post_id, "During the outage.")
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        wm = client.post("/webmention", data={"source": source_site.url_for("/x"), "target": SITE + path})
        assert wm.status_code == 503
        with LiveServer(app) as server:
            with pytest.raises(xmlrpc.client.Fault) as fault:
                ping(server, source_site.page("/during", linking_page(SITE + path)), SITE + path)
        assert fault.value.faultCode == 50
        # One line for the outage, not one (or a traceback) per request.
        assert len(lines(caplog, "the database is unreachable")) == 1
        assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]

        postgres.start()
        assert client.get(path).status_code == 200  # by itself: the pool reconnects
        assert len(lines(caplog, "the database is back")) == 1
        assert comment(client, post_id, "After the outage.").status_code == 303
        receiver = app.extensions["linkback_receiver"]
        with LiveServer(app) as server:
            now = source_site.page("/now", linking_page(SITE + path))
            assert "registered" in ping(server, now, SITE + path)
            clock = [0.0]
            receiver.cpu = CpuBudget(0.05, burst=0.0, clock=lambda: clock[0])
            receiver.cpu.spend(1.0)  # no CPU to spare: this one waits for the job thread
            later = source_site.page("/later", linking_page(SITE + path))
            assert "verification continues" in ping(server, later, SITE + path)
            clock[0] = 3600.0
        # The job thread started during the outage, and lives: it verifies the queued one.
        assert wait_for(lambda: ("pingback", "approved", later) in stored(app), timeout=20, interval=0.2)
        assert stored(app) == [("comment", "approved", "Before the outage."),
                               ("comment", "approved", "After the outage."),
                               ("pingback", "approved", now), ("pingback", "approved", later)]
    finally:
        if app is not None:
            app.extensions["linkback_receiver"].shutdown()
            jobs.shutdown(app)
            with app.app_context():
                db.engine.dispose()
        postgres.cleanup()
