"""Sending linkbacks from our posts: publish, update, unpublish, delete, self-pings, the switches,
the admin's list with "send again", retries, and ``flask send-pings``.

The linked pages and their endpoints are real HTTP servers on 127.0.0.1 (tests/sites.py) that
record what they receive; the pingback endpoint is the standard library's XML-RPC dispatcher.
"""
from __future__ import annotations

import re
import threading
from datetime import timedelta
from urllib.parse import parse_qs
from xmlrpc.server import SimpleXMLRPCDispatcher

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from blogapp import jobs
from blogapp import edge
from blogapp.extensions import db
from blogapp.models import Comment, CommentStatus, JobRecord, LinkbackAttempt, OutboundLink, Post, utcnow
from blogapp.posts import remove_post, save_post
from blogapp import outbound
from conftest import TEST_REDIS_URL, csrf_token
from test_jobs import signals_kept

SITE = "http://blog.test"


@pytest.fixture
def config_overrides():
    # The remote sites are on loopback, which the guard refuses unless allowlisted.
    return {"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "JOBS_BACKOFF_BASE": 0.05, "JOBS_BACKOFF_MAX": 0.2}


class Remote:
    """A remote blog on a SourceSite: pages that advertise an endpoint, and the endpoints, recording."""

    def __init__(self, site):
        self.site = site
        self.webmentions: list[dict] = []
        self.pings: list[tuple] = []
        self.trackbacks: list[dict] = []
        self.webmention_answers: list[int] = []  # statuses to answer, in turn; then 202
        self._lock = threading.Lock()
        dispatcher = SimpleXMLRPCDispatcher(allow_none=False, encoding="utf-8")

        def ping(source, target):
            self.pings.append((source, target))
            return f"Pingback from {source} to {target} registered."

        dispatcher.register_function(ping, "pingback.ping")
        site.handler("/xmlrpc", lambda request: (200, {"Content-Type": "text/xml"},
                                                 dispatcher._marshaled_dispatch(request.body)))
        site.handler("/webmention", self._webmention)
        site.handler("/trackback", self._trackback)

    def _webmention(self, request):
        with self._lock:
            self.webmentions.append({k: v[0] for k, v in parse_qs(request.body.decode()).items()})
            status = self.webmention_answers.pop(0) if self.webmention_answers else 202
        return status, {"Content-Type": "text/plain"}, "ok" if status < 400 else "try later"

    def _trackback(self, request):
        self.trackbacks.append({k: v[0] for k, v in parse_qs(request.body.decode("utf-8")).items()})
        return 200, {"Content-Type": "text/xml"}, '<?xml version="1.0" encoding="utf-8"?><response><error>0</error></response>'

    def webmention_page(self, path):
        return self.site.page(path, "<html><body><p>A page.</p></body></html>",
                              headers={"Link": f'<{self.site.url}/webmention>; rel="webmention"'})

    def pingback_page(self, path):
        return self.site.page(path, "<html><body><p>A page.</p></body></html>",
                              headers={"X-Pingback": f"{self.site.url}/xmlrpc"})

    def trackback_page(self, path):
        return self.site.page(path, f'<html><body><p>A page.</p><link rel="trackback" href="{self.site.url}/trackback"></body></html>')

    def plain_page(self, path):
        return self.site.page(path, "<html><body><p>No endpoints here.</p></body></html>")


@pytest.fixture
def remote(source_site):
    return Remote(source_site)


def publish(title, body, **kw):
    post = save_post(None, title=title, body=body, publish=True,
                     published_at=kw.pop("published_at", utcnow() - timedelta(minutes=5)), **kw)
    db.session.commit()
    outbound.dispatch()
    return post


def settle(app):
    assert jobs.wait_idle(10, app=app), "the send jobs did not finish"
    db.session.expire_all()


def rows_of(post) -> dict[str, OutboundLink]:
    return {row.target_url: row for row in db.session.scalars(select(OutboundLink).where(OutboundLink.post_id == post.id))}


# ---------------------------------------------------------------- publishing


def test_publishing_sends_by_the_protocol_each_page_offers(app, ctx, remote):
    wm, pb, tb, plain = (remote.webmention_page("/wm"), remote.pingback_page("/pb"),
                         remote.trackback_page("/tb"), remote.plain_page("/plain"))
    post = publish("Links everywhere", f"See [one]({wm}), [two]({pb}), [three]({tb}) and [four]({plain}).")
    settle(app)
    source = f"{SITE}{post_url_path(post)}"
    assert remote.webmentions == [{"source": source, "target": wm}]
    assert remote.pings == [(source, pb)]
    assert len(remote.trackbacks) == 1
    trackback = remote.trackbacks[0]
    assert trackback["url"] == source and trackback["title"] == "Links everywhere"
    assert trackback["blog_name"] == app.config["SITE_TITLE"] and "See one, two" in trackback["excerpt"]
    rows = rows_of(post)
    assert {url: (row.state, row.protocol) for url, row in rows.items()} == {
        wm: ("sent", "webmention"), pb: ("sent", "pingback"), tb: ("sent", "trackback"), plain: ("no-endpoint", None),
    }
    assert rows[wm].endpoint == f"{remote.site.url}/webmention" and rows[wm].code == 202
    assert "registered" in rows[pb].message
    attempts = db.session.scalars(select(LinkbackAttempt)).all()
    assert len(attempts) == 4 and {a.outcome for a in attempts} == {"sent", "no-endpoint"}


def post_url_path(post):
    from blogapp.templating import post_path
    return post_path(post)


def test_home_page_links_are_skipped_and_never_fetched(app, ctx, remote):
    home = remote.site.url + "/"
    page = remote.webmention_page("/article")
    post = publish("Home", f"[Their site]({home}), [bare]({remote.site.url}) and [an article]({page}).")
    settle(app)
    assert [r.path for r in remote.site.requests if r.method == "GET"] == ["/article"]
    rows = rows_of(post)
    assert rows[home].state == "skipped" and "home page" in rows[home].message
    assert rows[page].state == "sent"


def test_the_do_not_send_switch_sends_nothing(app, ctx, remote):
    page = remote.webmention_page("/wm")
    publish("Quiet", f"[A link]({page})", send_linkbacks=False)
    settle(app)
    assert remote.site.requests == []
    assert db.session.scalars(select(OutboundLink)).all() == []


def test_drafts_send_nothing_until_published(app, ctx, remote):
    page = remote.webmention_page("/wm")
    post = save_post(None, title="Draft", body=f"[A link]({page})", publish=False)
    db.session.commit()
    outbound.dispatch()
    settle(app)
    assert remote.webmentions == []
    post = save_post(post, title="Draft", body=f"[A link]({page})", publish=True)
    db.session.commit()
    outbound.dispatch()
    settle(app)
    assert len(remote.webmentions) == 1


def test_a_scheduled_post_sends_when_it_goes_live(app, ctx, remote):
    page = remote.webmention_page("/wm")
    post = publish("Later", f"[A link]({page})", published_at=utcnow() + timedelta(seconds=1.5))
    assert jobs.wait_idle(0.5, app=app) is False  # the job waits for the publication time
    assert remote.webmentions == []
    settle(app)
    assert len(remote.webmentions) == 1
    assert rows_of(post)[page].state == "sent"


# ---------------------------------------------------------------- updating


def test_an_update_resends_webmentions_including_removed_links_but_not_pingbacks(app, ctx, remote):
    keep, drop, pb = remote.webmention_page("/keep"), remote.webmention_page("/drop"), remote.pingback_page("/pb")
    post = publish("Update me", f"[keep]({keep}) [drop]({drop}) [ping]({pb})")
    settle(app)
    assert len(remote.webmentions) == 2 and len(remote.pings) == 1
    save_post(post, title="Update me", body=f"[keep]({keep}) [ping]({pb}), and new words.", publish=True)
    db.session.commit()
    outbound.dispatch()
    settle(app)
    later = remote.webmentions[2:]
    assert sorted(w["target"] for w in later) == sorted([keep, drop])  # the removed link hears too
    assert len(remote.pings) == 1  # a registered pingback is not sent again
    rows = rows_of(post)
    assert rows[drop].linked is False and rows[drop].state == "sent"
    # A save that changes neither title nor text sends nothing.
    save_post(post, title="Update me", body=f"[keep]({keep}) [ping]({pb}), and new words.", publish=True, tags=["x"])
    db.session.commit()
    outbound.dispatch()
    settle(app)
    assert len(remote.webmentions) == 4


def test_unpublishing_and_deleting_tell_webmention_receivers(app, ctx, remote, client):
    page = remote.webmention_page("/wm")
    post = publish("Going away", f"[link]({page})")
    path = post_url_path(post)
    settle(app)
    save_post(post, title="Going away", body=f"[link]({page})", publish=False)
    db.session.commit()
    outbound.dispatch()
    settle(app)
    assert len(remote.webmentions) == 2 and remote.webmentions[1]["source"] == SITE + path
    assert client.get(path).status_code == 410  # what the receiver finds when it checks
    post = save_post(post, title="Going away", body=f"[link]({page})", publish=True)
    db.session.commit()
    outbound.dispatch()
    settle(app)
    assert len(remote.webmentions) == 3  # published again: sent again
    remove_post(db.session.get(Post, post.id))
    db.session.commit()
    outbound.dispatch()
    settle(app)
    assert len(remote.webmentions) == 4
    assert db.session.scalars(select(OutboundLink)).all() == []  # the deleted post's rows are done


# ---------------------------------------------------------------- retries


def test_a_transient_failure_is_retried_with_backoff(app, ctx, remote):
    page = remote.webmention_page("/wm")
    remote.webmention_answers[:] = [503, 429]
    post = publish("Retry", f"[link]({page})")
    settle(app)
    assert len(remote.webmentions) == 3
    row = rows_of(post)[page]
    assert row.state == "sent" and row.attempts == 3
    assert [a.code for a in reversed(row.attempt_log)] == [503, 429, 202]


def test_a_permanent_failure_is_not_retried(app, ctx, remote):
    page = remote.webmention_page("/wm")
    remote.webmention_answers[:] = [400]
    post = publish("Refused", f"[link]({page})")
    settle(app)
    assert len(remote.webmentions) == 1
    row = rows_of(post)[page]
    assert (row.state, row.code) == ("failed", 400) and "try later" in row.message
    job = db.session.scalar(select(JobRecord))
    assert (job.status, job.attempts, job.last_error) == ("failed", 1, "JobFailed: HTTP 400: try later")


def test_a_send_failing_on_every_attempt_is_failed_and_shown_so(app, ctx, remote, admin_client):
    """Not a job that "succeeded" with the result "failed: ...": the job failed, the row failed,
    and the editor's table says failed."""
    page = remote.webmention_page("/wm")
    remote.webmention_answers[:] = [503] * 10
    post = publish("Down", f"[link]({page})")
    settle(app)
    attempts = app.config["JOBS_MAX_ATTEMPTS"]
    assert len(remote.webmentions) == attempts
    row = rows_of(post)[page]
    assert (row.state, row.code, row.attempts, row.message) == ("failed", 503, attempts, "HTTP 503: try later")
    job = db.session.scalar(select(JobRecord))
    assert (job.status, job.attempts, job.result) == ("failed", attempts, None)
    assert job.last_error == "JobFailed: HTTP 503: try later"
    editor = BeautifulSoup(admin_client.get(f"/admin/posts/{post.id}/edit").get_data(as_text=True), "lxml")
    shown = editor.select_one(f"#linkbacks #outbound-{row.id}")
    assert "state-failed" in shown["class"]
    assert shown.select_one(".state").get_text() == "failed" and shown.select_one(".code").get_text() == "(503)"
    assert shown.select_one(".message").get_text() == "HTTP 503: try later"
    assert f"{attempts} attempts" in shown.get_text()


# ---------------------------------------------------------------- self-pings


def test_a_link_to_our_own_post_becomes_an_approved_pingback_without_http(app, ctx, client):
    target = publish("The earlier post", "Something worth linking to.")
    target_url = SITE + post_url_path(target)
    source = publish("The later post", f"As I wrote in [the earlier post]({target_url}), it matters.")
    settle(app)
    ping = db.session.scalar(select(Comment).where(Comment.post_id == target.id))
    assert ping.kind == "pingback" and ping.status == CommentStatus.APPROVED
    assert ping.author_name == f"The later post | {app.config['SITE_TITLE']}"
    assert ping.source_url == SITE + post_url_path(source)
    assert "As I wrote in the earlier post, it matters." in ping.content
    assert edge.foreign_hosts(app) == []  # our page was asked for on our own host, not "localhost"
    page = BeautifulSoup(client.get(post_url_path(target)).get_data(as_text=True), "lxml")
    assert page.select_one("li.pingback .linkback-line").get_text(" ", strip=True).startswith(
        f"Pingback: The later post | {app.config['SITE_TITLE']}")
    assert rows_of(source)[target_url].protocol == "self"
    # Removing the link removes the pingback.
    save_post(db.session.get(Post, source.id), title="The later post", body="No link any more.", publish=True)
    db.session.commit()
    assert db.session.scalar(select(Comment).where(Comment.post_id == target.id)) is None


@pytest.mark.parametrize("config_overrides", [{"SELF_PINGS": False}])
def test_self_pings_can_be_turned_off(app, ctx):
    target = publish("Earlier", "Text.")
    source = publish("Later", f"[earlier]({SITE}{post_url_path(target)})")
    settle(app)
    assert db.session.scalar(select(Comment)) is None
    assert rows_of(source)[SITE + post_url_path(target)].state == "skipped"


def test_a_self_ping_to_a_post_with_pings_closed_is_refused(app, ctx):
    target = publish("Closed", "Text.", pings_open=False)
    source = publish("Later", f"[closed]({SITE}{post_url_path(target)})")
    settle(app)
    assert db.session.scalar(select(Comment)) is None
    row = rows_of(source)[SITE + post_url_path(target)]
    assert row.state == "failed" and "closed" in row.message.lower()


def test_a_link_to_one_of_our_pages_that_is_not_a_post_is_skipped(app, ctx):
    target = publish("A real post", "Text.")
    source = publish("Links home", f"[the feed]({SITE}/feed/), [an archive]({SITE}/2026/) and "
                                   f"[a post]({SITE}{post_url_path(target)})")
    settle(app)
    rows = rows_of(source)
    assert rows[f"{SITE}/feed/"].state == "skipped" and "not a post" in rows[f"{SITE}/feed/"].message
    assert rows[f"{SITE}/2026/"].state == "skipped"
    assert rows[SITE + post_url_path(target)].state == "sent"
    assert db.session.scalar(select(Comment).where(Comment.post_id == target.id)).kind == "pingback"


# ---------------------------------------------------------------- the admin


def test_the_admin_post_page_lists_the_attempts_and_sends_again(app, ctx, remote, admin_client):
    wm, pb = remote.webmention_page("/wm"), remote.pingback_page("/pb")
    post = publish("Admin view", f"[wm]({wm}) [pb]({pb})")
    settle(app)
    page = BeautifulSoup(admin_client.get(f"/admin/posts/{post.id}/edit").get_data(as_text=True), "lxml")
    rows = {row.select_one("td a").get_text(): row for row in page.select("#linkbacks tr.outbound-link")}
    assert set(rows) == {wm, pb}
    assert rows[wm].select_one(".state").get_text() == "sent" and "webmention" in rows[wm].get_text()
    assert "pingback" in rows[pb].get_text()
    # "Send again" on the pingback row sends it again, although it succeeded.
    form = rows[pb].select_one("form")
    token = csrf_token(admin_client, f"/admin/posts/{post.id}/edit")
    response = admin_client.post(form["action"], data={"csrf_token": token})
    assert response.status_code == 302
    settle(app)
    assert len(remote.pings) == 2
    row = rows_of(post)[pb]
    assert row.attempts == 2 and len(row.attempt_log) == 2
    page = admin_client.get(f"/admin/posts/{post.id}/edit").get_data(as_text=True)
    assert "2 attempts" in page
    # Without a CSRF token: 400, nothing sent.
    assert admin_client.post(form["action"]).status_code == 400


def test_the_admin_form_sets_the_do_not_send_switch(app, ctx, remote, admin_client):
    wm = remote.webmention_page("/wm")
    token = csrf_token(admin_client, "/admin/posts/new")
    form = {"title": "Via the form", "slug": "", "body": f"[wm]({wm})", "categories": "", "tags": "",
            "status": "published", "published_at": "", "comments_open": "y", "pings_open": "y", "save": "1",
            "csrf_token": token}
    assert admin_client.post("/admin/posts/new", data=form).status_code == 302  # unchecked: do not send
    settle(app)
    assert remote.webmentions == []
    post = db.session.scalar(select(Post).where(Post.title == "Via the form"))
    assert post.send_linkbacks is False
    edit = admin_client.get(f"/admin/posts/{post.id}/edit").get_data(as_text=True)
    assert "Sending linkbacks is off for this post." in edit
    form.update(send_linkbacks="y", csrf_token=csrf_token(admin_client, f"/admin/posts/{post.id}/edit"))
    assert admin_client.post(f"/admin/posts/{post.id}/edit", data=form).status_code == 302
    settle(app)
    assert len(remote.webmentions) == 1


# ---------------------------------------------------------------- the CLI


def test_send_pings_sends_pending_linkbacks_with_progress(app, ctx, remote, runner):
    wm, pb = remote.webmention_page("/wm"), remote.pingback_page("/pb")
    post = save_post(None, title="From the CLI", body=f"[wm]({wm}) [pb]({pb})", publish=True,
                     published_at=utcnow() - timedelta(minutes=1))
    db.session.commit()  # planned, not dispatched
    slug = post.slug
    result = runner.invoke(args=["send-pings", slug])
    assert result.exit_code == 0, result.output
    assert "Sending linkbacks" in result.output
    assert re.search(r"sent\s+webmention\s+" + re.escape(wm), result.output)
    assert re.search(r"sent\s+pingback\s+" + re.escape(pb), result.output)
    assert result.output.strip().endswith("2 of 2 sent.")
    assert len(remote.webmentions) == 1 and len(remote.pings) == 1
    again = runner.invoke(args=["send-pings", slug])
    assert again.exit_code == 0 and "Nothing to send." in again.output
    assert runner.invoke(args=["send-pings", "no-such-post"]).exit_code != 0


def test_send_pings_finds_links_of_posts_never_planned(app, ctx, remote, runner):
    wm = remote.webmention_page("/wm")
    post = save_post(None, title="Old post", body=f"[wm]({wm})", publish=True, published_at=utcnow() - timedelta(days=3))
    db.session.commit()
    db.session.query(OutboundLink).delete()  # as if written before sending existed
    db.session.commit()
    result = runner.invoke(args=["send-pings"])
    assert result.exit_code == 0, result.output
    assert "1 of 1 sent." in result.output and len(remote.webmentions) == 1
    assert rows_of(post)[wm].state == "sent"


def test_create_post_sends_before_printing_the_permalink(app, ctx, remote, runner):
    wm = remote.webmention_page("/wm")
    result = runner.invoke(args=["create-post", "--title", "CLI post", "--body", f"[wm]({wm})"])
    assert result.exit_code == 0, result.output
    assert len(remote.webmentions) == 1
    assert result.output.strip().splitlines()[-1].startswith(SITE + "/")
    quiet = runner.invoke(args=["create-post", "--title", "Quiet CLI post", "--body", f"[wm]({wm})", "--no-send"])
    assert quiet.exit_code == 0 and len(remote.webmentions) == 1


# ---------------------------------------------------------------- on Redis (RQ)

RQ_QUEUE = "blogapp-test-outbound-" + __import__("secrets").token_hex(4)


@pytest.mark.skipif(not TEST_REDIS_URL, reason="the RQ back end needs Redis: set TEST_REDIS_URL")
@pytest.mark.parametrize("config_overrides", [{
    "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "JOBS_BACKEND": "rq", "REDIS_URL": TEST_REDIS_URL, "JOBS_QUEUE": RQ_QUEUE,
}])
def test_with_rq_the_cli_queues_and_the_worker_sends(app, ctx, remote, runner):
    import redis

    wm = remote.webmention_page("/wm")
    try:
        result = runner.invoke(args=["create-post", "--title", "Queued", "--body", f"[wm]({wm})"])
        assert result.exit_code == 0, result.output
        assert "Linkbacks queued for the worker." in result.output
        assert remote.webmentions == []  # nothing sent by the CLI process itself
        with signals_kept():  # RQ's worker installs its own SIGINT/SIGTERM handlers
            worker = runner.invoke(args=["worker", "--burst", "--name", f"{RQ_QUEUE}-worker"])
        assert worker.exit_code == 0, worker.output
        assert len(remote.webmentions) == 1
        db.session.expire_all()
        assert db.session.scalar(select(OutboundLink)).state == "sent"
    finally:
        conn = redis.Redis.from_url(TEST_REDIS_URL)
        for key in conn.scan_iter(match=f"*{RQ_QUEUE}*", count=1000):
            conn.delete(key)
        for members_of in ("rq:queues", "rq:workers"):
            for member in conn.smembers(members_of):
                if RQ_QUEUE.encode() in member:
                    conn.srem(members_of, member)
        conn.close()


def test_a_send_whose_process_died_on_its_last_attempt_ends_failed_not_pending(app, ctx, remote):
    """Its job can run no more: the row says so (the editor offers "Send again") rather than
    showing "pending" for ever; nothing is sent by the sweep."""
    page = remote.webmention_page("/wm")
    post = save_post(None, title="Cut short", body=f"See [this]({page}).", publish=True,
                     published_at=utcnow() - timedelta(minutes=5))
    db.session.commit()
    [row] = rows_of(post).values()
    assert row.state == "pending"
    # The job as a killed process left it: running its last attempt, the lease no longer renewed.
    record = jobs.prepare(outbound.TASK, row.id, row.generation)
    record.status, record.attempts = "running", app.config["JOBS_MAX_ATTEMPTS"]
    record.lease_owner, record.lease_expires_at = "gone:1:cafe", utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert jobs.sweep(app) == []
    db.session.expire_all()
    assert (db.session.get(type(record), record.id).status, row.state, row.message) == (
        "failed", "failed", "Not sent: the process sending it stopped, on every attempt.")
    assert remote.webmentions == [] and remote.site.requests == []
