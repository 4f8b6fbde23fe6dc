"""blogapp to blogapp: a post published on one running blog pings another running blog.

Three blogs run at once, each a real app on its own database, served over HTTP on 127.0.0.1 at
the address that is its SITE_URL: the writer; a reader that takes Webmentions (the default); and
a reader with Webmention turned off, which advertises only its pingback server. The writer's
post links to a post on each reader; the first hears by Webmention, the second by pingback, and
each verifies by fetching the writer's page. Then the update and delete flows end to end.
"""
from __future__ import annotations

import secrets
import socket
import threading
import time

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import create_engine, select, text
from werkzeug.serving import make_server

from blogapp import create_app, jobs, outbound
from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, OutboundLink, Post
from blogapp.posts import remove_post, save_post
from blogapp.templating import post_path, site_request_context
from conftest import TEST_DATABASE_URL, database_config
from helpers import make_post


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningBlog:
    def __init__(self, app, url, server, thread, schema):
        self.app, self.url, self.server, self.thread, self.schema = app, url, server, thread, schema

    def context(self):
        class Both:
            def __enter__(inner):
                inner.app_ctx = self.app.app_context()
                inner.app_ctx.push()
                inner.req = site_request_context(self.app)
                inner.req.__enter__()

            def __exit__(inner, *exc):
                inner.req.__exit__(*exc)
                inner.app_ctx.pop()

        return Both()

    def linkbacks(self, post_id: int) -> list[Comment]:
        with self.app.app_context():
            rows = db.session.scalars(select(Comment).where(Comment.post_id == post_id, Comment.kind != "comment")).all()
            db.session.expunge_all()
            return rows

    def wait_for(self, condition, seconds: float = 15.0):
        deadline = time.monotonic() + seconds
        while True:
            jobs.wait_idle(2, app=self.app)
            value = condition()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)


@pytest.fixture
def blogs(tmp_path, pg_schema):
    made: list[RunningBlog] = []

    def start(name: str, **settings) -> RunningBlog:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        schema = None
        if pg_schema:  # each blog its own schema, dropped at the end
            schema = f"{pg_schema}_{name}"
            engine = create_engine(TEST_DATABASE_URL)
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            engine.dispose()
        (tmp_path / name).mkdir()
        app = create_app({
            "TESTING": True, "SECRET_KEY": "test-" + secrets.token_hex(8), "SITE_URL": url,
            "SITE_TITLE": f"Blog {name}", "RATELIMIT_ENABLED": False,
            "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve",
            **database_config(tmp_path / name, schema), **settings,
        }, instance_path=str(tmp_path / name / "instance"))
        with app.app_context():
            db.create_all()
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        blog = RunningBlog(app, url, server, thread, schema)
        made.append(blog)
        return blog

    yield start
    for blog in made:
        blog.server.shutdown()
        blog.server.server_close()
        blog.thread.join(5)
        blog.app.extensions["linkback_receiver"].shutdown()
        blog.app.extensions["jobs"].shutdown()
        with blog.app.app_context():
            db.session.remove()
            db.engine.dispose()
        if blog.schema:
            engine = create_engine(TEST_DATABASE_URL)
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{blog.schema}" CASCADE'))
            engine.dispose()


def test_a_post_on_one_blogapp_pings_two_others_by_webmention_and_by_pingback(blogs):
    writer = blogs("writer")
    modern = blogs("modern")  # takes Webmentions
    classic = blogs("classic", WEBMENTION_ENABLED=False)  # pingbacks only

    with modern.context():
        modern_id, modern_path = make_post(title="A post on the modern blog")
    with classic.context():
        classic_id, classic_path = make_post(title="A post on the classic blog")
    modern_url, classic_url = modern.url + modern_path, classic.url + classic_path

    with writer.context():
        post = save_post(None, title="Reading two blogs", publish=True, body=(
            f"First, [the modern post]({modern_url}) says so.\n\n"
            f"Second, [the classic post]({classic_url}) agrees."))
        db.session.commit()
        source = writer.url + post_path(post)
        writer_post_id = post.id
        outbound.dispatch()
        assert jobs.wait_idle(30, app=writer.app)
        rows = {r.target_url: r for r in db.session.scalars(select(OutboundLink).where(OutboundLink.post_id == post.id))}
        assert (rows[modern_url].state, rows[modern_url].protocol) == ("sent", "webmention"), rows[modern_url].message
        assert rows[modern_url].code == 201 and "/webmention/" in rows[modern_url].message  # its status page
        assert (rows[classic_url].state, rows[classic_url].protocol) == ("sent", "pingback"), rows[classic_url].message

    # The modern blog verified the Webmention in its own job, and shows it.
    mentions = modern.wait_for(lambda: [c for c in modern.linkbacks(modern_id) if c.status == "approved"])
    assert [(c.kind, c.source_url) for c in mentions] == [(CommentKind.WEBMENTION.value, source)]
    # The classic blog verified the pingback while answering it.
    pings = classic.linkbacks(classic_id)
    assert [(c.kind, c.status, c.source_url) for c in pings] == [(CommentKind.PINGBACK.value, "approved", source)]
    assert pings[0].author_name == "Reading two blogs | Blog writer"
    assert "the classic post agrees" in pings[0].content

    # Both show up on the readers' pages.
    modern_page = BeautifulSoup(modern.app.test_client().get(modern_path).get_data(as_text=True), "lxml")
    assert modern_page.select_one(f'li.webmention a[href="{source}"]')
    classic_page = BeautifulSoup(classic.app.test_client().get(classic_path).get_data(as_text=True), "lxml")
    line = classic_page.select_one("li.pingback .linkback-line").get_text(" ", strip=True)
    assert line.startswith("Pingback: Reading two blogs | Blog writer")

    # An update that drops the link to the modern blog: the Webmention is sent again, the
    # modern blog finds no link any more and removes the mention; the pingback is not re-sent.
    classic_log_before = len(classic.linkbacks(classic_id))
    with writer.context():
        post = db.session.get(Post, writer_post_id)
        save_post(post, title="Reading two blogs", publish=True, body=f"Only [the classic post]({classic_url}) now.")
        db.session.commit()
        outbound.dispatch()
        assert jobs.wait_idle(30, app=writer.app)
        rows = {r.target_url: r for r in db.session.scalars(select(OutboundLink).where(OutboundLink.post_id == writer_post_id))}
        assert rows[modern_url].linked is False and rows[modern_url].attempts == 2
        assert rows[classic_url].attempts == 1
    assert modern.wait_for(lambda: not modern.linkbacks(modern_id))
    assert len(classic.linkbacks(classic_id)) == classic_log_before


def test_deleting_a_post_removes_its_webmention_on_the_other_blogapp(blogs):
    writer, reader = blogs("writer"), blogs("reader")
    with reader.context():
        target_id, target_path = make_post(title="Target")
    with writer.context():
        post = save_post(None, title="Soon gone", publish=True, body=f"[target]({reader.url}{target_path})")
        db.session.commit()
        outbound.dispatch()
        assert jobs.wait_idle(30, app=writer.app)
        post_id = post.id
    assert reader.wait_for(lambda: [c for c in reader.linkbacks(target_id) if c.status == "approved"])
    with writer.context():
        remove_post(db.session.get(Post, post_id))
        db.session.commit()
        outbound.dispatch()
        assert jobs.wait_idle(30, app=writer.app)
    # Our page answers 410 now; the reader's verification job sees it and drops the mention.
    assert reader.wait_for(lambda: not reader.linkbacks(target_id))
