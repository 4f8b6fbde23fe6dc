"""The Pingback 1.0 receiver, end to end: a live server over real HTTP, called with the standard
library's ``xmlrpc.client.ServerProxy``, verifying source pages served by real HTTP servers on
127.0.0.1 (``tests/sites.py``). Assertions are on the database rows, the fault codes, what the
source servers received, and the HTML of the post page.

The ``fence`` fixture (autouse) stands between every test and the network: connections to
loopback go through, any other address is recorded and refused before a packet is sent;
``socket.getaddrinfo`` answers only ``localhost``, a few test names (all 127.0.0.1) and numeric
hosts, so no DNS query ever leaves the machine. After each test, nothing non-loopback may have
been attempted and ``blog.test`` (our SITE_URL: targets are matched, never fetched) may never
have been looked up.
"""
from __future__ import annotations

import http.client
import re
import secrets
import threading
import time
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import event, select, update

from blogapp import jobs
from blogapp.config import DEFAULTS
from blogapp.extensions import db
from blogapp.linkback.receive import BudgetSpent, CpuBudget
from blogapp.models import BlockedDomain, Comment, CommentKind, JobRecord, LinkbackLog, Post, save_site_settings
from conftest import TEST_REDIS_URL, count_queries
from helpers import add_comment, make_post, wait_for
from netfence import Net

SITE = "http://blog.test"
MB = 1_000_000

BASE = {
    "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"],  # the source sites live on loopback
    "LINKBACK_MODERATION": "approve",
    "LINKBACK_VERIFY_BUDGET": 5.0,
    "LINKBACK_FETCH_TIMEOUT": 4.0,
    # Tests send a few pings in a row and read their verdicts at once; on a loaded machine a
    # verification's CPU can pass the default burst (0.15 s) by the third. The budget's pacing has
    # tests of its own, which set its burst themselves.
    "LINKBACK_VERIFY_BURST": 1.0,
}


def cfg(**settings) -> dict:
    return {**BASE, **settings}


@pytest.fixture
def config_overrides(request):
    settings = dict(BASE)
    if "rate_limits" in request.fixturenames:
        settings.update(request.getfixturevalue("rate_limits"))
    return settings


@pytest.fixture
def rate_limits(request):
    """Rate-limit settings (``indirect`` parameter), counted in memory or, with TEST_REDIS_URL, in Redis."""
    settings = dict(request.param)
    if settings.pop("storage") == "memory":
        yield settings
        return
    if not TEST_REDIS_URL:
        pytest.skip("TEST_REDIS_URL is not set: the Redis-backed linkback limits are not tested")
    import redis

    # The linkback limits are counted by limits' storage directly, under its own key prefix.
    prefix = "blogapp-test-" + secrets.token_hex(4)
    # Jobs stay in the process (a queued verification runs without an RQ worker).
    yield {**settings, "REDIS_URL": TEST_REDIS_URL, "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": prefix},
           "JOBS_BACKEND": "thread"}
    with redis.Redis.from_url(TEST_REDIS_URL) as server:
        keys = server.keys(prefix + ":*")
        assert keys, "the limits were not counted in Redis"
        server.delete(*keys)


# --------------------------------------------------------------------------- the network fence

# Names the fence resolves, all to loopback; every other name does not resolve.
NAMES = {"localhost": "127.0.0.1", "other.test": "127.0.0.1", "www.spam.test": "127.0.0.1"}


@pytest.fixture(autouse=True)
def fence(monkeypatch):
    """The shared network fence (tests/netfence.py): non-loopback connections refused, names from NAMES."""
    net = Net()
    net.names.update({name: [address] for name, address in NAMES.items()})
    net.install(monkeypatch)
    yield net
    assert net.non_loopback() == [], f"connections attempted past loopback: {net.non_loopback()}"
    assert not [n for n in net.lookups if "blog.test" in n.lower()], "our own site was looked up"


# --------------------------------------------------------------------------- helpers


class _Transport(xmlrpc.client.Transport):
    """The standard transport, with a timeout so that a hang fails the test instead of blocking it."""

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = 30
        return connection


def proxy(server, path="/xmlrpc") -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(server.url + path, transport=_Transport())


def ping(server, source, target, path="/xmlrpc"):
    with proxy(server, path) as p:
        return p.pingback.ping(source, target)


def fault(server, source, target, path="/xmlrpc") -> xmlrpc.client.Fault:
    with pytest.raises(xmlrpc.client.Fault) as info:
        ping(server, source, target, path)
    return info.value


def send(server, method, path, body=None, headers=None, *, chunked=False):
    """A raw request to the live server: (status, headers, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def raw_call(server, body: bytes, path="/xmlrpc", headers=None, **kw):
    """POST ``body``; returns the decoded answer, or the Fault. Never an HTTP error."""
    status, head, data = send(server, "POST", path, body, {"Content-Type": "text/xml", **(headers or {})}, **kw)
    assert status == 200, (status, data[:300])
    assert head["Content-Type"].startswith("text/xml")
    try:
        return xmlrpc.client.loads(data)[0][0]
    except xmlrpc.client.Fault as f:
        return f


def linking_page(href, *, title="A page that links", before="Some words before the link", text="our post",
                 after="and some words after it.", head="") -> str:
    title_tag = f"<title>{title}</title>" if title is not None else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'>{title_tag}{head}</head><body><article>"
            f"<p>{before} <a href=\"{href}\">{text}</a> {after}</p></article></body></html>")


def rows() -> list[Comment]:
    """Every comment row, as the database has it now (a fresh transaction: no stale snapshot)."""
    db.session.rollback()
    return db.session.scalars(select(Comment).order_by(Comment.id)).all()


def logs() -> list[LinkbackLog]:
    db.session.rollback()
    return db.session.scalars(select(LinkbackLog).order_by(LinkbackLog.id)).all()


def post_page(server, path) -> BeautifulSoup:
    status, _, body = send(server, "GET", path)
    assert status == 200
    return BeautifulSoup(body.decode("utf-8"), "lxml")


def shown_linkbacks(server, path) -> list[dict]:
    """The linkbacks the post page shows, as readers see them."""
    found = []
    for li in post_page(server, path).select("li.linkback"):
        author = li.select_one(".p-author a.p-name")
        excerpt = li.select_one(".linkback-excerpt")
        found.append({"label": li.select_one(".linkback-label").get_text(), "name": author.get_text(),
                      "href": author["href"], "excerpt": excerpt.get_text() if excerpt else ""})
    return found


def paths(site) -> list[str]:
    return [r.path for r in site.requests]


@pytest.fixture
def post(app, ctx):
    """A published post open to pings: (id, path, permalink)."""
    post_id, path = make_post(title="Target post", days_ago=3)
    return post_id, path, SITE + path


# --------------------------------------------------------------------------- success


def test_success_stores_the_pingback_and_the_post_page_shows_it(live_server, source_site, post):
    post_id, path, target = post
    title = "  Tom &amp; Jerry &#8211;\n\t on   <b>pingbacks</b>  "  # markup in <title> is text to HTML
    source = source_site.page("/article", linking_page(target, title=title))

    result = ping(live_server, source, target)

    assert isinstance(result, str) and "registered" in result
    [row] = rows()
    assert (row.post_id, row.kind, row.status) == (post_id, "pingback", "approved")
    assert row.author_name == "Tom & Jerry – on <b>pingbacks</b>"
    assert row.author_url == row.source_url == source
    assert row.content == "[…] Some words before the link our post and some words after it. […]"
    assert row.ip == "127.0.0.1"
    # The source saw one GET, saying who we are and for whom we fetch.
    [request] = source_site.requests
    assert (request.method, request.path) == ("GET", "/article")
    assert "verifying pingback from 127.0.0.1" in request.headers["User-Agent"]
    assert request.headers["User-Agent"].startswith("blogapp/")
    assert request.headers["X-Pingback-Forwarded-For"] == "127.0.0.1"
    # Readers see it, with the title linked to the source.
    assert shown_linkbacks(live_server, path) == [{
        "label": "Pingback:", "name": "Tom & Jerry – on <b>pingbacks</b>", "href": source,
        "excerpt": "[…] Some words before the link our post and some words after it. […]",
    }]
    [entry] = logs()
    assert (entry.outcome, entry.fault_code, entry.comment_id, entry.post_id) == ("accepted", None, row.id, post_id)
    assert (entry.source_url, entry.target_url, entry.client_ip) == (source, target, "127.0.0.1")
    assert entry.finished_at is not None


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_MODERATION="hold")], ids=["hold"])
def test_hold_keeps_every_pingback_pending_and_hidden(live_server, source_site, post):
    post_id, path, target = post
    source = source_site.page("/a", linking_page(target, title="Held page"))
    assert "registered" in ping(live_server, source, target)
    [row] = rows()
    assert (row.status, row.author_name) == ("pending", "Held page")
    assert shown_linkbacks(live_server, path) == []
    assert "Held page" not in post_page(live_server, path).get_text()
    with proxy(live_server) as p:
        assert p.pingback.extensions.getPingbacks(target) == []


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_MODERATION="hold-new-sources")], ids=["hold-new-sources"])
def test_hold_new_sources_trusts_domains_already_approved(live_server, source_site, post):
    post_id, path, target = post
    first = source_site.page("/first", linking_page(target, title="First from this domain"))
    ping(live_server, first, target)
    [row] = rows()
    assert row.status == "pending"  # a domain never approved before
    assert shown_linkbacks(live_server, path) == []

    db.session.execute(update(Comment).where(Comment.id == row.id).values(status="approved"))  # the admin approves
    db.session.commit()
    second = source_site.page("/second", linking_page(target, title="Second from this domain"))
    ping(live_server, second, target)
    # Another domain (other.test resolves to the same loopback server) is still new: held.
    third = f"http://other.test:{source_site.port}/third"
    source_site.page("/third", linking_page(target, title="From a new domain"))
    ping(live_server, third, target)

    statuses = {r.source_url: r.status for r in rows()}
    assert statuses == {first: "approved", second: "approved", third: "pending"}
    assert [(s["name"], s["href"]) for s in shown_linkbacks(live_server, path)] == [
        ("First from this domain", first), ("Second from this domain", second)]
    assert source_site.requests[-1].headers["Host"] == f"other.test:{source_site.port}"


# --------------------------------------------------------------------------- fault 0


def test_source_equal_to_target_is_fault_0(live_server, source_site, post, fence):
    post_id, path, target = post
    spellings = [target, "https://BLOG.test" + path.rstrip("/") + "#comments", "http://blog.test:80" + path]
    for source in spellings:
        f = fault(live_server, source, target)
        assert f.faultCode == 0 and "same" in f.faultString
    # With a different spelling on the target side too.
    assert fault(live_server, target, SITE + path.rstrip("/")).faultCode == 0
    assert rows() == [] and logs() == []
    assert source_site.requests == [] and set(fence.lookups) <= {"127.0.0.1"}  # nothing fetched or looked up


# --------------------------------------------------------------------------- fault 16


def _source_404(site, target):
    return site.page("/gone", linking_page(target), status=404)


def _source_500(site, target):
    return site.page("/broken", linking_page(target), status=500)


def _source_not_html(site, target):
    return site.page("/feed.txt", linking_page(target), content_type="text/plain")


def _source_json(site, target):
    return site.page("/data.json", '{"link": "%s"}' % target, content_type="application/json")


@pytest.mark.parametrize("make_source", [_source_404, _source_500, _source_not_html, _source_json])
def test_source_that_cannot_be_had_is_fault_16(live_server, source_site, post, make_source):
    post_id, path, target = post
    source = make_source(source_site, target)
    f = fault(live_server, source, target)
    assert f.faultCode == 16
    assert len(source_site.requests) == 1  # it was tried, once
    assert rows() == []
    [entry] = logs()
    assert (entry.outcome, entry.fault_code, entry.source_url) == ("refused", 16, source)


def test_unresolvable_source_is_fault_16(live_server, post, fence):
    post_id, path, target = post
    f = fault(live_server, "http://no-such-host.invalid/post", target)
    assert f.faultCode == 16 and "resolve" in f.faultString
    assert "no-such-host.invalid" in fence.lookups
    assert rows() == []


@pytest.mark.parametrize("source", ["ftp://127.0.0.1/page", "javascript:alert(1)", "not a url", ""])
def test_source_that_is_not_an_http_url_is_fault_16(live_server, post, source):
    assert fault(live_server, source, post[2]).faultCode == 16
    assert rows() == [] and logs() == []


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_FETCH_ALLOWLIST=[])], ids=["no-allowlist"])
def test_source_refused_by_the_guard_is_fault_16_and_never_fetched(live_server, source_site, post):
    post_id, path, target = post
    source = source_site.page("/a", linking_page(target))
    f = fault(live_server, source, target)
    assert f.faultCode == 16 and "loopback" in f.faultString
    assert source_site.requests == []  # nothing was fetched
    assert rows() == []


# --------------------------------------------------------------------------- fault 17


def _no_link(target, other):
    return "<html><head><title>T</title></head><body><p>Nothing to see.</p></body></html>"


def _url_as_text(target, other):
    return f"<html><body><p>I read {target} today.</p></body></html>"


def _link_in_comment(target, other):
    return f"<html><body><!-- <a href=\"{target}\">our post</a> --><p>Hidden.</p></body></html>"


def _link_to_another_post(target, other):
    return linking_page(other)


def _link_element_only(target, other):
    return f"<html><head><link rel='bookmark' href='{target}'></head><body><img src='{target}'></body></html>"


def _link_in_script(target, other):
    return f"<html><body><script>document.write('<a href=\"{target}\">x</a>')</script></body></html>"


@pytest.mark.parametrize("body", [_no_link, _url_as_text, _link_in_comment, _link_to_another_post,
                                  _link_element_only, _link_in_script])
def test_source_without_a_link_to_the_target_is_fault_17(live_server, source_site, post, body):
    post_id, path, target = post
    _, other_path = make_post(title="Another post", days_ago=2)
    source = source_site.page("/a", body(target, SITE + other_path))
    f = fault(live_server, source, target)
    assert f.faultCode == 17
    assert paths(source_site) == ["/a"]
    assert rows() == []
    [entry] = logs()
    assert (entry.outcome, entry.fault_code) == ("refused", 17)


# --------------------------------------------------------------------------- faults 32 and 33: local refusals


@pytest.mark.parametrize("target_path", ["/2026/01/01/no-such-post/", "/no/route/knows/this/", "/2026/13/45/x/y/z"])
def test_target_path_without_a_post_is_fault_32(live_server, source_site, post, target_path):
    target = SITE + target_path
    source = source_site.page("/a", linking_page(target))
    assert fault(live_server, source, target).faultCode == 32
    assert source_site.requests == []
    assert rows() == [] and logs() == []


def _other_site(app):
    return "http://example.com/2026/01/01/target-post/"


def _home_page(app):
    return SITE + "/"


def _category_page(app):
    make_post(title="Filed", categories=["News"])
    return SITE + "/category/news/"


def _tag_page(app):
    return SITE + "/tag/anything/"


def _feed(app):
    return SITE + "/feed/"


def _draft(app):
    return SITE + make_post(title="A draft", publish=False)[1]


def _scheduled(app):
    return SITE + make_post(title="Tomorrow", days_ago=-2)[1]


def _pings_closed(app):
    return SITE + make_post(title="No pings", pings_open=False, comments_open=True)[1]


def _auto_closed_by_age(app):
    save_site_settings({"CLOSE_COMMENTS_AFTER_DAYS": 10})
    db.session.commit()
    return SITE + make_post(title="Old post", days_ago=30)[1]


@pytest.mark.parametrize("make_target", [_other_site, _home_page, _category_page, _tag_page, _feed, _draft,
                                         _scheduled, _pings_closed, _auto_closed_by_age])
def test_target_that_cannot_take_pings_is_fault_33(app, ctx, live_server, source_site, make_target):
    target = make_target(app)
    source = source_site.page("/a", linking_page(target))
    f = fault(live_server, source, target)
    assert f.faultCode == 33, f.faultString
    assert source_site.requests == []  # refused before any fetch
    assert rows() == [] and logs() == []


def test_comments_closed_but_pings_open_succeeds(app, ctx, live_server, source_site):
    _, path = make_post(title="Quiet post", comments_open=False, pings_open=True)
    target = SITE + path
    source = source_site.page("/a", linking_page(target, title="Still pinging"))
    assert "registered" in ping(live_server, source, target)
    assert [(r.kind, r.status) for r in rows()] == [("pingback", "approved")]
    page = post_page(live_server, path)
    assert "Comments are closed." in page.get_text()
    assert [s["name"] for s in shown_linkbacks(live_server, path)] == ["Still pinging"]


def test_age_limit_leaves_recent_posts_open(app, ctx, live_server, source_site):
    save_site_settings({"CLOSE_COMMENTS_AFTER_DAYS": 10})
    db.session.commit()
    _, path = make_post(title="Recent", days_ago=2)
    source = source_site.page("/a", linking_page(SITE + path))
    assert "registered" in ping(live_server, source, SITE + path)


# --------------------------------------------------------------------------- fault 48


@pytest.mark.parametrize("first, second", [
    ("http://{h}/a", "http://{h}/a"),
    ("http://{h}/a", "https://{h}/a"),
    ("http://{h}/a/", "http://{h}/a"),
    ("http://{h}/a", "http://{h}/a/"),
    ("http://{h}/a", "HTTP://{h}/a#comment-3"),
], ids=["same", "https", "slash-dropped", "slash-added", "case-and-fragment"])
def test_same_source_twice_is_fault_48(live_server, source_site, post, first, second):
    post_id, path, target = post
    host = f"127.0.0.1:{source_site.port}"
    source_site.page("/a", linking_page(target))
    source_site.page("/a/", linking_page(target))
    assert "registered" in ping(live_server, first.format(h=host), target)
    f = fault(live_server, second.format(h=host), target)
    assert f.faultCode == 48
    assert len(source_site.requests) == 1  # the second was refused before any fetch
    [row] = rows()
    assert row.source_url == first.format(h=host)
    assert len(logs()) == 1


def test_one_source_may_ping_two_posts(live_server, source_site, post):
    post_id, path, target = post
    _, other_path = make_post(title="Second target", days_ago=2)
    source = source_site.page("/a", linking_page(target) + linking_page(SITE + other_path))
    ping(live_server, source, target)
    ping(live_server, source, SITE + other_path)
    assert len(rows()) == 2


# --------------------------------------------------------------------------- fault 49


@pytest.mark.parametrize("blocked, source_host", [
    ("127.0.0.1", "127.0.0.1"),
    ("spam.test", "www.spam.test"),  # a parent domain blocks its subdomains
    ("www.spam.test", "WWW.Spam.Test"),
])
def test_blocked_domain_is_fault_49_before_any_fetch(live_server, source_site, post, blocked, source_host):
    post_id, path, target = post
    db.session.add(BlockedDomain(domain=blocked))
    db.session.commit()
    source_site.page("/a", linking_page(target))
    f = fault(live_server, f"http://{source_host}:{source_site.port}/a", target)
    assert f.faultCode == 49 and blocked in f.faultString
    assert source_site.requests == []
    assert rows() == [] and logs() == []


def test_a_blocked_domain_does_not_block_its_lookalikes(live_server, source_site, post):
    db.session.add(BlockedDomain(domain="her.test"))  # a suffix of "other.test", but not a parent domain
    db.session.commit()
    source_site.page("/a", linking_page(post[2]))
    assert "registered" in ping(live_server, f"http://other.test:{source_site.port}/a", post[2])


def verdicts() -> list[tuple[str, str]]:
    """(source, status) of every stored linkback, in order."""
    return [(r.source_url, r.status) for r in rows()]


@pytest.mark.parametrize("rate_limits", [
    {"storage": storage, "RATELIMIT_ENABLED": True, "LINKBACK_RATE_LIMIT": "2 per minute",
     "LINKBACK_SOURCE_RATE_LIMIT": "100 per minute"} for storage in ("memory", "redis")
], ids=["memory", "redis"], indirect=True)
def test_past_the_per_ip_rate_a_pingback_is_queued_and_verified_later(rate_limits, app, live_server, source_site,
                                                                      post):
    """The rates pace verification; they do not turn an honest sender away (WordPress never
    retries a fault other than 48, so a 49 would lose the pingback for good)."""
    post_id, path, target = post
    for name in ("/1", "/2", "/3"):
        source_site.page(name, linking_page(target))
    assert "registered" in ping(live_server, source_site.url + "/1", target)
    assert "registered" in ping(live_server, f"http://other.test:{source_site.port}/2", target)  # same sender
    assert "verification continues" in ping(live_server, source_site.url + "/3", target)
    [entry] = [e for e in logs() if e.source_url.endswith("/3")]
    assert entry.message == "queued for verification"
    assert jobs.wait_idle(10, app)
    assert sorted(verdicts()) == sorted([(source_site.url + "/1", "approved"),
                                         (f"http://other.test:{source_site.port}/2", "approved"),
                                         (source_site.url + "/3", "approved")])
    assert [(e.outcome, e.message) for e in logs()][-1] == ("accepted", "stored as approved")


@pytest.mark.parametrize("rate_limits", [
    {"storage": storage, "RATELIMIT_ENABLED": True, "LINKBACK_RATE_LIMIT": "100 per minute",
     "LINKBACK_SOURCE_RATE_LIMIT": "1 per minute", "LINKBACK_PENDING_PER_HOST": 2}
    for storage in ("memory", "redis")
], ids=["memory", "redis"], indirect=True)
def test_the_pending_cap_per_source_host_is_fault_49(rate_limits, app, live_server, source_site, post):
    """Past its rate, a host's pingbacks wait in the queue, up to its cap of pending verifications;
    past that, fault 49 at once, before any fetch. Another host has a cap of its own."""
    post_id, path, target = post
    assert "registered" in ping(live_server, source_site.page("/1", linking_page(target)), target)
    # Two slow pages: the queue's one job thread is busy with the first while the second waits.
    slow = [source_site.slow(f"/slow-{n}", body=linking_page(target).encode(), chunk_delay=0.3, chunks=4)
            for n in (1, 2)]
    for source in slow:
        assert "verification continues" in ping(live_server, source, target)
    f = fault(live_server, source_site.page("/3", linking_page(target)), target)
    assert f.faultCode == 49 and "127.0.0.1 are waiting" in f.faultString
    assert "/3" not in paths(source_site)
    assert "registered" in ping(  # within its own rate
        live_server, source_site.page("/4", linking_page(target)).replace("127.0.0.1", "other.test"), target)
    assert jobs.wait_idle(15, app)
    assert sorted(s for s, status in verdicts() if status == "approved") == sorted(
        [source_site.url + "/1", *slow, f"http://other.test:{source_site.port}/4"])
    # The waiting ones are verified now: the host has room again (past its rate: queued).
    assert "verification continues" in ping(live_server, source_site.url + "/3", target)
    assert jobs.wait_idle(10, app)
    assert (source_site.url + "/3", "approved") in verdicts()


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_MAX_IN_FLIGHT=1, LINKBACK_VERIFY_BUDGET=0.3,
                                                  LINKBACK_FETCH_TIMEOUT=1.5)], ids=["one-in-flight"])
def test_past_the_in_flight_cap_a_pingback_is_queued_at_once(app, live_server, source_site, post):
    post_id, path, target = post
    slow = source_site.slow("/slow", chunk_delay=0.1, chunks=100)
    other = source_site.page("/other", linking_page(target))
    assert "verification continues" in ping(live_server, slow, target)

    started = time.monotonic()
    assert "verification continues" in ping(live_server, other, target)
    assert time.monotonic() - started < 1.0  # answered at once: the sender does not wait for a slot
    # The slow one ends at its 1.5 s deadline (fault 16, logged); the queued one is verified by its job.
    assert jobs.wait_idle(10, app)
    assert wait_for(lambda: sorted((e.source_url, e.outcome, e.fault_code) for e in logs()) == sorted(
        [(slow, "refused", 16), (other, "accepted", None)]), timeout=5)
    assert verdicts() == [(other, "approved")]


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_MAX_IN_FLIGHT=1, LINKBACK_VERIFY_BUDGET=0.3,
                                                  LINKBACK_FETCH_TIMEOUT=1.0, LINKBACK_PENDING_TOTAL=1)],
                         ids=["one-in-flight"])
def test_past_a_full_cap_a_pingback_costs_no_query(app, live_server, source_site, post):
    """A flood that finds the queue full is refused at once; once a cap was found full, the next
    refusals ask the database nothing."""
    post_id, path, target = post
    slow = source_site.slow("/slow", chunk_delay=0.1, chunks=100)
    assert "verification continues" in ping(live_server, slow, target)  # in flight: the one pending
    f = fault(live_server, source_site.url_for("/first"), target)
    assert f.faultCode == 49 and "waiting to be verified" in f.faultString
    with count_queries(app) as queries:
        for n in range(5):
            assert fault(live_server, source_site.url_for(f"/flood-{n}"), target).faultCode == 49
    assert queries[0] == 0
    assert paths(source_site) == ["/slow"]
    assert [e.source_url for e in logs()] == [slow]  # nothing written for the refused ones


@contextmanager
def views_run(app):
    """The requests Flask itself saw (its ``request_started`` signal), as a list."""
    from flask import request_started

    seen = []

    def started(sender, **extra):
        seen.append(1)

    request_started.connect(started, app)
    try:
        yield seen
    finally:
        request_started.disconnect(started, app)


@pytest.mark.parametrize("config_overrides, expected", [
    (cfg(LINKBACK_PENDING_PER_IP=1), (49, "Too many linkbacks are waiting to be verified; try again later.")),
    (cfg(LINKBACK_PENDING_PER_IP=1, PINGBACK_MASK_FAULTS=True), (0, "")),
], ids=["faults", "masked"])
def test_a_flood_past_a_full_cap_is_refused_before_the_framework_runs(app, live_server, source_site, post,
                                                                      expected):
    """While no verification could start now (the CPU budget is spent) and a cap this sender
    counts against was found full a moment ago, its pings are answered in front of Flask, with
    the fault the view gives. Anything else still reaches the view, body and all."""
    post_id, path, target = post
    receiver = app.extensions["linkback_receiver"]
    clock = [0.0]
    receiver.cpu = CpuBudget(0.05, burst=0.0, clock=lambda: clock[0])
    receiver.cpu.spend(1.0)  # spent: what arrives now can only wait in the queue
    first = source_site.page("/first", linking_page(target))
    assert "verification continues" in ping(live_server, first, target)  # the client's one waiting
    code = 0 if expected[0] == 0 else 49
    assert fault(live_server, source_site.url_for("/second"), target).faultCode == code  # the view finds it full
    with views_run(app) as seen:
        refusals = [fault(live_server, source_site.url_for(f"/flood-{n}"), target) for n in range(3)]
        assert seen == []
    assert {(f.faultCode, f.faultString) for f in refusals} == {expected}
    assert paths(source_site) == [] and [e.source_url for e in logs()] == [first]
    with views_run(app) as seen:
        # Not a ping: the view answers it (the body it reads is the one that was sent).
        with proxy(live_server) as p:
            assert p.pingback.extensions.getPingbacks(target) == []
        assert raw_call(live_server, b"<methodCall><methodName>pingback.ping</methodName>").faultCode == -32700
        # The budget has room again: the ping goes to the view, which verifies it now.
        clock[0] = 3600.0
        later = source_site.page("/later", linking_page(target))
        assert "registered" in ping(live_server, later, target)
        assert len(seen) == 3
    assert verdicts() == [(first, "verifying"), (later, "approved")]


def test_what_a_ping_found_of_its_target_holds_only_while_the_post_is_unchanged(app, ctx, live_server, source_site):
    """The target's lookup is kept per process for the pings that follow, and dropped as soon as
    the post, the post list or the site's settings change: each change below is seen by the
    very next ping (the post was found, and kept, by the ping before it)."""
    post_id, path = make_post(title="Often pinged", days_ago=3)
    target = SITE + path
    sources = iter(source_site.page(f"/s{n}", linking_page(target)) for n in range(20))

    def pinged() -> int | str:
        try:
            return ping(live_server, next(sources), target)
        except xmlrpc.client.Fault as f:
            return f.faultCode

    def change(**values):
        db.session.execute(update(Post).where(Post.id == post_id).values(**values))
        db.session.commit()

    def change_post(**values):  # through the ORM, as the editor saves
        post = db.session.get(Post, post_id)
        for name, value in values.items():
            setattr(post, name, value)
        db.session.commit()

    assert "registered" in pinged()
    change_post(pings_open=False)
    assert pinged() == 33
    change_post(pings_open=True)
    assert "registered" in pinged()
    change_post(status="draft")
    assert pinged() == 33
    change_post(status="published")
    assert "registered" in pinged()
    change(slug="renamed")  # a statement, not the ORM: a coarser part moves, still seen
    assert pinged() == 32
    change(slug=path.rstrip("/").rsplit("/", 1)[1])
    assert "registered" in pinged()
    save_site_settings({"CLOSE_COMMENTS_AFTER_DAYS": 2})
    db.session.commit()
    assert pinged() == 33
    save_site_settings({"CLOSE_COMMENTS_AFTER_DAYS": 0})
    db.session.commit()
    assert "registered" in pinged()
    db.session.delete(db.session.get(Post, post_id))
    db.session.commit()
    assert pinged() in (32, 33)


def test_a_target_kept_for_later_pings_closes_at_its_age_with_nothing_written(app, ctx, live_server, source_site):
    """Closing by age writes nothing: a target kept for later pings stops taking them when the
    post reaches the age, as the lookup itself would say."""
    save_site_settings({"CLOSE_COMMENTS_AFTER_DAYS": 10})
    db.session.commit()
    _, path = make_post(title="Nearly closed", days_ago=10 - 1.5 / 86400)  # 1.5 s left
    target = SITE + path
    assert "registered" in ping(live_server, source_site.page("/before", linking_page(target)), target)
    time.sleep(2.0)
    assert fault(live_server, source_site.page("/after", linking_page(target)), target).faultCode == 33


@pytest.mark.parametrize("config_overrides", [cfg(RATELIMIT_ENABLED=True)], ids=["default-limits"])
def test_a_hundred_honest_pingbacks_from_one_host_are_all_kept(app, live_server, source_site, post):
    """Issue 11: with the default limits (rates, CPU budget, caps), 100 pingbacks from one host,
    one after another, each from a page that really links, are all accepted and all recorded."""
    defaults = DEFAULTS
    for name in ("LINKBACK_RATE_LIMIT", "LINKBACK_SOURCE_RATE_LIMIT", "LINKBACK_VERIFY_CPU",
                 "LINKBACK_PENDING_PER_HOST", "LINKBACK_PENDING_PER_IP", "LINKBACK_PENDING_TOTAL"):
        assert app.config[name] == defaults[name], name
    post_id, path, target = post
    sources = [source_site.page(f"/post-{n}", linking_page(target, title=f"Post {n}")) for n in range(100)]
    answers = [ping(live_server, source, target) for source in sources]
    assert all("registered" in a or "verification continues" in a for a in answers)
    queued = sum("verification continues" in a for a in answers)
    assert queued >= 50  # the host's rate (10 a minute) was passed: most waited in the queue
    # All taken in; now the queue may drain at a whole core's budget rather than a twentieth (how
    # fast it drains at the default rate is the budget's own test, not this one's).
    app.extensions["linkback_receiver"].cpu.share = 1.0
    assert wait_for(lambda: len([r for r in rows() if r.status == "approved"]) == 100, timeout=120, interval=0.2)
    assert sorted(r.source_url for r in rows()) == sorted(sources)
    assert all(e.outcome == "accepted" for e in logs()) and len(logs()) == 100


def test_the_cpu_budget_drains_at_its_share_of_a_core():
    now = [0.0]
    budget = CpuBudget(0.1, burst=0.25, clock=lambda: now[0])
    assert not budget.exhausted()
    budget.spend(0.3)  # a few big pages at once: past the burst
    assert budget.exhausted()
    now[0] = 0.4  # 0.04 s of CPU drained in 0.4 s: 0.26 owed, still past it
    assert budget.exhausted()
    now[0] = 0.6  # 0.24 owed
    assert not budget.exhausted()
    now[0] = 100.0  # it never drains below nothing: a quiet hour earns no flood
    budget.spend(0.3)
    assert budget.exhausted()
    off = CpuBudget(0)
    off.spend(1000.0)
    assert not off.exhausted()


def test_verifications_under_way_count_against_the_budget_at_what_recent_ones_cost():
    """A crowd arriving at once cannot all start before the first has paid: each verification
    under way counts at the running estimate of what one costs, and is replaced by its real cost
    when it ends."""
    now = [0.0]
    budget = CpuBudget(0.05, burst=0.08, clock=lambda: now[0], estimate=0.05)
    assert budget.begin()  # nothing owed
    assert budget.begin()  # 0.05 owed (one under way): within the burst
    assert not budget.begin() and budget.exhausted()  # 0.10 owed
    with pytest.raises(BudgetSpent):
        with budget.turn():
            pytest.fail("a turn past the budget must not run")
    budget.end(0.2)  # a big page: 0.2 paid, the estimate moves a fifth of the way to it
    assert budget.estimate == pytest.approx(0.08)
    assert budget.seconds_until_room() == pytest.approx((0.2 + 0.08 - 0.08) / 0.05)
    budget.end(0.01)
    assert budget.running == 0 and budget.estimate == pytest.approx(0.066)
    now[0] = 2.59  # 0.21 owed, drained at 0.05 a second: 0.0805 left
    assert budget.exhausted()
    now[0] = 2.61
    assert not budget.exhausted()
    with budget.turn():
        assert budget.running == 1
    assert budget.running == 0


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_MAX_IN_FLIGHT=1, LINKBACK_VERIFY_BUDGET=0.3,
                                                  LINKBACK_FETCH_TIMEOUT=1.5, LINKBACK_VERIFY_CPU=0.001,
                                                  LINKBACK_VERIFY_BURST=0.0, LINKBACK_PENDING_PER_IP=5)],
                         ids=["cap-5"])
def test_a_crowd_of_pingbacks_sent_together_fills_the_cap_exactly(app, live_server, source_site, post):
    """Linkbacks are admitted one at a time per process: forty pings sent at once, while one is
    in flight, leave exactly the cap waiting; the others are refused with fault 49, nothing
    written and nothing fetched for them."""
    post_id, path, target = post
    slow = source_site.slow("/slow", chunk_delay=0.1, chunks=100)
    assert "verification continues" in ping(live_server, slow, target)  # in flight: 1 of the 5 waiting
    crowd = [source_site.page(f"/crowd-{n}", linking_page(target)) for n in range(40)]

    def answer(source):
        try:
            return ping(live_server, source, target)
        except xmlrpc.client.Fault as f:
            return f.faultCode

    with ThreadPoolExecutor(len(crowd)) as pool:
        answers = list(pool.map(answer, crowd))
    accepted = [s for s, a in zip(crowd, answers) if isinstance(a, str)]
    assert all("verification continues" in a for a in answers if isinstance(a, str))
    assert len(accepted) == 4 and answers.count(49) == 36
    assert sorted(e.source_url for e in logs()) == sorted([slow, *accepted])
    assert not any(p.startswith("/crowd-") for p in paths(source_site))  # queued, not yet fetched


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_VERIFY_BUDGET=0.3)], ids=["wait-0.3s"])
def test_a_pingback_waiting_too_long_for_its_turn_is_told_to_try_later(app, live_server, source_site, post):
    """Pingbacks are taken one at a time per process; should that turn not come within the time
    a sender waits (a stalled database), fault 49 at once: the request threads do not pile up."""
    post_id, path, target = post
    receiver = app.extensions["linkback_receiver"]
    source = source_site.page("/patient", linking_page(target))
    with receiver._admitting:  # (as if another linkback's checks were stuck)
        started = time.monotonic()
        f = fault(live_server, source, target)
        assert time.monotonic() - started < 2.0
    assert f.faultCode == 49 and "too busy" in f.faultString.lower()
    assert logs() == [] and paths(source_site) == []
    assert "registered" in ping(live_server, source, target)  # its turn comes at once now


def test_past_the_cpu_budget_a_pingback_is_verified_when_the_budget_allows(app, live_server, source_site, post):
    """Fast sources free their slots at once, so the in-flight cap alone does not bound the CPU
    a stream of them takes: the budget does. Past it, a pingback is queued, and its job waits
    for the budget. Here the budget's clock stands still, so what the first verification really
    cost (its thread's CPU time) is never paid back until the clock moves."""
    post_id, path, target = post
    receiver = app.extensions["linkback_receiver"]
    assert receiver.cpu.share == app.config["LINKBACK_VERIFY_CPU"] > 0  # on by default
    now = [0.0]
    receiver.cpu = CpuBudget(0.1, burst=0.0, clock=lambda: now[0])
    first = source_site.page("/first", linking_page(target))
    second = source_site.page("/second", linking_page(target))
    assert "registered" in ping(live_server, first, target)
    assert "verification continues" in ping(live_server, second, target)
    time.sleep(1.5)  # the queued job is due, but its lane waits for the budget
    assert paths(source_site) == ["/first"]  # the second source was not fetched
    assert verdicts() == [(first, "approved"), (second, "verifying")]
    [job] = db.session.scalars(select(JobRecord).where(JobRecord.name == "linkback.verify",
                                                       JobRecord.status != "succeeded")).all()
    assert (job.status, job.attempts) == ("queued", 0)  # not even taken: waiting costs no write
    now[0] = 60.0  # a minute later the debt is paid: the job verifies it
    assert wait_for(lambda: verdicts() == [(first, "approved"), (second, "approved")], timeout=10)
    assert paths(source_site) == ["/first", "/second"]


# --------------------------------------------------------------------------- fault 50


@contextmanager
def read_only_database(app):
    """Every new database connection refuses writes (reads still work)."""
    with app.app_context():
        engine = db.engine

    def refuse_writes(dbapi_connection, record):
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("SET default_transaction_read_only = on")
            dbapi_connection.commit()
        cursor.close()

    db.session.close()
    event.listen(engine, "connect", refuse_writes)
    engine.dispose()
    try:
        yield
    finally:
        db.session.close()
        event.remove(engine, "connect", refuse_writes)
        engine.dispose()


def test_storage_error_is_fault_50(app, live_server, source_site, post):
    post_id, path, target = post
    source = source_site.page("/a", linking_page(target))
    with read_only_database(app):
        f = fault(live_server, source, target)
        assert f.faultCode == 50, f.faultString
    assert source_site.requests == []  # the claim failed before anything was fetched
    assert rows() == []
    # Writable again, the same ping goes through: nothing was left half-done.
    assert "registered" in ping(live_server, source, target)


# --------------------------------------------------------------------------- target matching


def _encoded(path):
    *head, slug, _ = path.split("/")
    return "/".join(head) + "/" + "".join(f"%{ord(c):02X}" for c in slug) + "/"


def _wrong_date(path):
    return re.sub(r"^/\d{4}/\d{2}/\d{2}/", "/2001/02/03/", path)


TARGET_SPELLINGS = {
    "https": lambda p: "https://blog.test" + p,
    "no-trailing-slash": lambda p: SITE + p.rstrip("/"),
    "query-and-fragment": lambda p: SITE + p + "?utm_source=feed&x=1#comments",
    "percent-encoded-slug": lambda p: SITE + _encoded(p),
    "wrong-date": lambda p: SITE + _wrong_date(p),
    "host-case-and-port": lambda p: "HTTP://Blog.TEST:80" + p,
}


@pytest.mark.parametrize("spelling", TARGET_SPELLINGS)
def test_target_spellings_resolve_to_the_post(live_server, source_site, post, spelling):
    post_id, path, permalink = post
    target = TARGET_SPELLINGS[spelling](path)
    assert target != permalink
    # The source links to the target exactly as it pings it.
    source = source_site.page("/a", linking_page(target))
    assert "registered" in ping(live_server, source, target)
    [row] = rows()
    assert (row.post_id, row.status) == (post_id, "approved")


@pytest.mark.parametrize("spelling", ["https", "no-trailing-slash", "wrong-date"])
def test_a_link_to_the_permalink_verifies_any_spelling_of_the_target(live_server, source_site, post, spelling):
    post_id, path, permalink = post
    source = source_site.page("/a", linking_page(permalink))
    assert "registered" in ping(live_server, source, TARGET_SPELLINGS[spelling](path))
    assert [r.post_id for r in rows()] == [post_id]


@pytest.mark.parametrize("config_overrides, expected", [
    (cfg(SITE_WWW_EQUIVALENT=False), 33),
    (cfg(SITE_WWW_EQUIVALENT=True), None),
], ids=["www-distinct", "www-equivalent"])
def test_www_variant_only_when_equivalent(live_server, source_site, post, expected):
    post_id, path, _ = post
    target = "http://www.blog.test" + path
    source = source_site.page("/a", linking_page(target))
    if expected is None:
        assert "registered" in ping(live_server, source, target)
        assert [r.post_id for r in rows()] == [post_id]
    else:
        assert fault(live_server, source, target).faultCode == expected
        assert source_site.requests == [] and rows() == []


@pytest.mark.parametrize("config_overrides, expected", [
    (cfg(SITE_ALIASES=["http://old-blog.test/", "https://blog.example"]), None),
    (cfg(), 33),
], ids=["alias", "no-alias"])
def test_site_aliases_let_an_old_domain_work(live_server, source_site, post, expected):
    post_id, path, _ = post
    target = "http://old-blog.test" + path
    source = source_site.page("/a", linking_page(target))
    if expected is None:
        assert "registered" in ping(live_server, source, target)
        assert [r.post_id for r in rows()] == [post_id]
    else:
        assert fault(live_server, source, target).faultCode == expected
        assert source_site.requests == []


# --------------------------------------------------------------------------- verification details


def test_relative_link_resolved_against_base_href(live_server, source_site, post):
    post_id, path, target = post
    relative = path.lstrip("/")
    with_base = source_site.page("/based", linking_page(relative, head="<base href='http://blog.test/'>"))
    without_base = source_site.page("/unbased", linking_page(relative))
    assert fault(live_server, without_base, target).faultCode == 17  # relative to the source site: not ours
    assert "registered" in ping(live_server, with_base, target)
    assert [r.source_url for r in rows()] == [with_base]


def test_redirected_source_is_read_at_its_final_url(live_server, source_site, post):
    post_id, path, target = post
    source_site.page("/landing", linking_page(target, title="Landed"))
    source = source_site.redirect("/old", "/landing", status=301)
    assert "registered" in ping(live_server, source, target)
    assert paths(source_site) == ["/old", "/landing"]
    [row] = rows()
    assert (row.source_url, row.author_name) == (source, "Landed")  # stored under the URL that pinged


def test_title_falls_back_to_the_final_host_after_a_redirect(live_server, source_site, post):
    post_id, path, target = post
    source_site.page("/landing", linking_page(target, title=None))
    source = source_site.redirect("/hop", f"http://localhost:{source_site.port}/landing")
    ping(live_server, source, target)
    [row] = rows()
    assert row.author_name == "localhost"  # the page's own host, not the one that redirected
    assert row.source_url == source


def test_area_href_counts(live_server, source_site, post):
    post_id, path, target = post
    body = (f"<html><head><title>Image map</title></head><body><img usemap='#m' src='x.png'>"
            f"<map name='m'><area shape='rect' coords='0,0,9,9' href='{target}' alt='The target post'></map></body></html>")
    source = source_site.page("/map", body)
    assert "registered" in ping(live_server, source, target)
    [row] = rows()
    assert row.author_name == "Image map"
    assert "The target post" in row.content


JAPANESE_TITLE = "日本語のブログ記事"


def _shift_jis_header(target):
    body = (f"<html><head><title>{JAPANESE_TITLE}</title></head><body>"
            f"<p>この記事を読みました <a href='{target}'>リンク</a> とても良い。</p></body></html>")
    return body.encode("shift_jis"), "text/html; charset=Shift_JIS"


def _shift_jis_meta(target):
    body = (f"<html><head><meta charset=\"shift_jis\"><title>{JAPANESE_TITLE}</title></head><body>"
            f"<p>この記事を読みました <a href='{target}'>リンク</a> とても良い。</p></body></html>")
    return body.encode("shift_jis"), "text/html"


@pytest.mark.parametrize("make_body", [_shift_jis_header, _shift_jis_meta], ids=["charset-header", "meta-charset"])
def test_shift_jis_page(live_server, source_site, post, make_body):
    post_id, path, target = post
    body, content_type = make_body(target)
    source = source_site.page("/jp", body, content_type=content_type)
    ping(live_server, source, target)
    [row] = rows()
    assert row.author_name == JAPANESE_TITLE
    assert row.content == "[…] この記事を読みました リンク とても良い。 […]"
    assert [s["name"] for s in shown_linkbacks(live_server, path)] == [JAPANESE_TITLE]


def test_windows_1252_title(live_server, source_site, post):
    post_id, path, target = post
    body = linking_page(target, title="café – naïve", before="Un résumé", after="déjà vu.").replace(
        "<meta charset='utf-8'>", "")
    source = source_site.page("/fr", body.encode("cp1252"), content_type="text/html; charset=windows-1252")
    ping(live_server, source, target)
    [row] = rows()
    assert row.author_name == "café – naïve"
    assert row.content == "[…] Un résumé our post déjà vu. […]"


def test_script_title_is_stored_as_text_and_shown_escaped(live_server, source_site, post):
    post_id, path, target = post
    title = "&lt;script&gt;alert(1)&lt;/script&gt;"
    source = source_site.page("/x", linking_page(target, title=title, text="<img src=x onerror=alert(2)>look"))
    ping(live_server, source, target)
    [row] = rows()
    assert row.author_name == "<script>alert(1)</script>"
    status, _, html = send(live_server, "GET", path)
    html = html.decode()
    assert "<script>alert(1)" not in html and "onerror" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert [s["name"] for s in shown_linkbacks(live_server, path)] == ["<script>alert(1)</script>"]


def test_no_title_falls_back_to_the_h_entry_name_then_to_the_host(live_server, source_site, post):
    post_id, path, target = post
    h_entry = (f"<html><body><article class='h-entry'><h1 class='p-name'>  The entry\n name </h1>"
               f"<p>See <a href='{target}'>this</a>.</p></article></body></html>")
    bare = f"<html><body><p>See <a href='{target}'>this</a>.</p></body></html>"
    empty_title = f"<html><head><title>   </title></head><body><a href='{target}'>this</a></body></html>"
    ping(live_server, source_site.page("/entry", h_entry), target)
    ping(live_server, source_site.page("/bare", bare), target)
    ping(live_server, source_site.page("/empty", empty_title), target)
    assert [r.author_name for r in rows()] == ["The entry name", "127.0.0.1", "127.0.0.1"]


def test_excerpt_near_multibyte_text_is_whole_characters_about_100_each_side(live_server, source_site, post):
    post_id, path, target = post
    before = "日本語の文章です。" * 30  # no spaces: cut at exactly 100 characters
    after = "😀 ça été très naïf, " * 20  # spaces: cut at a word boundary
    source = source_site.page("/long", linking_page(target, before=before, text="リンク", after=after))
    ping(live_server, source, target)
    [row] = rows()
    assert "\ufffd" not in row.content
    assert row.content.startswith("[…] " + before[-100:] + " リンク ")
    tail = row.content[len("[…] " + before[-100:] + " リンク "):-len(" […]")]
    assert row.content.endswith(" […]")
    assert 80 <= len(tail) <= 100
    assert after.startswith(tail) and after[len(tail)] == " "  # whole words only


def test_excerpt_long_latin_text_is_cut_at_words(live_server, source_site, post):
    post_id, path, target = post
    before = " ".join(f"word{i}" for i in range(60))
    after = " ".join(f"after{i}" for i in range(60))
    ping(live_server, source_site.page("/w", linking_page(target, before=before, after=after)), target)
    [row] = rows()
    head, tail = row.content[len("[…] "):-len(" […]")].split(" our post ")
    assert before.endswith(" " + head) and 80 <= len(head) <= 100
    assert after.startswith(tail + " ") and 80 <= len(tail) <= 100


def test_a_second_link_close_by_does_not_break_the_excerpt(live_server, source_site, post):
    post_id, path, target = post
    body = (f"<html><head><title>Two links</title></head><body><p>I liked <a href='http://example.com/'>another "
            f"post</a> and <a href='{target}'>this one</a>, <a href='http://example.org/'>and a third</a> too.</p>"
            f"</body></html>")
    ping(live_server, source_site.page("/two", body), target)
    [row] = rows()
    assert row.content == "[…] I liked another post and this one, and a third too. […]"


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_FETCH_TIMEOUT=0.8, LINKBACK_VERIFY_BUDGET=5.0)],
                         ids=["deadline-0.8s"])
def test_slow_source_ends_as_fault_16_at_the_deadline(live_server, source_site, post):
    post_id, path, target = post
    # A chunk every 0.1 s: never idle long enough for a read timeout, only the deadline ends it.
    source = source_site.slow("/slow", body=linking_page(target).encode()[:-20], chunk_delay=0.1, chunks=100)
    started = time.monotonic()
    f = fault(live_server, source, target)
    elapsed = time.monotonic() - started
    assert f.faultCode == 16 and "longer than 0.8 s" in f.faultString
    assert 0.7 < elapsed < 2.8
    assert rows() == []
    assert [(e.outcome, e.fault_code) for e in logs()] == [("refused", 16)]


def test_huge_page_with_the_link_early_succeeds_reading_only_the_limit(live_server, source_site, post):
    post_id, path, target = post
    prefix = linking_page(target, title="Huge").encode()[:-len("</body></html>")]
    source = source_site.huge("/huge", 50 * MB, prefix=prefix)
    started = time.monotonic()
    assert "registered" in ping(live_server, source, target)
    assert time.monotonic() - started < 5
    [row] = rows()
    assert row.author_name == "Huge"
    [request] = source_site.requests
    assert request.done.wait(3)
    # We read LINKBACK_FETCH_MAX_BYTES (1 MB) and hung up; socket buffers took a few MB more, not 50.
    assert request.disconnected and request.bytes_sent < 10 * MB


def test_huge_page_with_the_link_past_the_limit_is_fault_17(live_server, source_site, post):
    post_id, path, target = post
    filler = b"<p>" + b"filler " * 140 + b"</p>\n"
    prefix = b"<html><head><title>Late</title></head><body>" + filler * (1_100_000 // len(filler) + 1)
    assert len(prefix) > MB
    prefix += f"<p><a href='{target}'>too late</a></p>".encode()
    source = source_site.huge("/huge", 50 * MB, prefix=prefix)
    assert fault(live_server, source, target).faultCode == 17
    assert rows() == []
    assert source_site.requests[0].done.wait(3)
    assert source_site.requests[0].bytes_sent < 10 * MB


@pytest.mark.parametrize("location", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/",
                                      "http://[::ffff:10.0.0.1]/", "http://0x0a000001/"])
def test_redirect_to_an_internal_address_is_fault_16_and_never_connected(live_server, source_site, post, fence,
                                                                           location):
    post_id, path, target = post
    source = source_site.redirect("/r", location)
    f = fault(live_server, source, target)
    assert f.faultCode == 16
    assert paths(source_site) == ["/r"]
    assert fence.non_loopback() == []  # refused by the guard, not by our fence: no attempt was made
    assert rows() == []


# --------------------------------------------------------------------------- the verification budget


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_VERIFY_BUDGET=0.5, LINKBACK_FETCH_TIMEOUT=5.0)],
                         ids=["budget-0.5s"])
def test_verification_past_the_budget_continues_in_the_background(live_server, source_site, post):
    post_id, path, target = post
    early = linking_page(target, title="Slow but linking").encode()[:-len("</body></html>")]
    source = source_site.slow("/slow", body=early, chunk_delay=0.2, chunks=6)  # ~1.2 s in all, well past 0.5 s

    started = time.monotonic()
    result = ping(live_server, source, target)
    assert time.monotonic() - started < 1.5
    assert isinstance(result, str) and "verification continues" in result
    # Not visible, only claimed.
    assert [(r.status, r.source_url) for r in rows()] == [("verifying", source)]
    assert shown_linkbacks(live_server, path) == []
    assert [e.outcome for e in logs()] == ["verifying"]
    # The same ping while verifying: already registered, not fetched again.
    assert fault(live_server, source, target).faultCode == 48
    assert paths(source_site) == ["/slow"]

    assert wait_for(lambda: [r.status for r in rows()] == ["approved"], timeout=10)
    [row] = rows()
    assert row.author_name == "Slow but linking"
    assert [s["name"] for s in shown_linkbacks(live_server, path)] == ["Slow but linking"]
    assert [e.outcome for e in logs()] == ["accepted"]


@pytest.mark.parametrize("config_overrides", [cfg(LINKBACK_VERIFY_BUDGET=0.5, LINKBACK_FETCH_TIMEOUT=5.0)],
                         ids=["budget-0.5s"])
def test_late_failure_answers_success_then_leaves_no_row(live_server, source_site, post):
    post_id, path, target = post
    source = source_site.slow("/slow", body=b"<html><head><title>No link</title></head><body>", chunk_delay=0.2,
                              chunks=6)  # ~1.2 s in all, well past the 0.5 s budget
    assert "verification continues" in ping(live_server, source, target)
    assert [r.status for r in rows()] == ["verifying"]
    assert wait_for(lambda: [(e.outcome, e.fault_code) for e in logs()] == [("refused", 17)], timeout=10)
    assert rows() == []
    assert shown_linkbacks(live_server, path) == []
    # The slot is free again: a later ping with a link is taken.
    source_site.page("/good", linking_page(target))
    assert "registered" in ping(live_server, source_site.url + "/good", target)


# --------------------------------------------------------------------------- concurrency


def test_twenty_simultaneous_identical_pingbacks_make_one_row(live_server, source_site, post):
    post_id, path, target = post
    source = source_site.page("/a", linking_page(target))
    barrier = threading.Barrier(20)
    results, lock = [], threading.Lock()

    def send():
        barrier.wait(5)
        try:
            outcome = ping(live_server, source, target)
        except xmlrpc.client.Fault as f:
            outcome = f.faultCode
        except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
            outcome = repr(exc)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    successes = [r for r in results if isinstance(r, str) and "registered" in r]
    faults = sorted(r for r in results if isinstance(r, int))
    assert len(results) == 20
    assert len(successes) == 1, results
    assert set(faults) <= {48, 49}, results
    assert faults.count(48) + faults.count(49) == 19, f"48: {faults.count(48)}, 49: {faults.count(49)}"
    assert len(rows()) == 1
    assert len(source_site.requests) == 1


# --------------------------------------------------------------------------- the XML-RPC protocol


def test_unknown_method_and_multicall_are_method_not_found(live_server):
    with proxy(live_server) as p:
        with pytest.raises(xmlrpc.client.Fault) as info:
            p.no.such.method()
        assert info.value.faultCode == -32601
        with pytest.raises(xmlrpc.client.Fault) as info:
            p.system.multicall([{"methodName": "system.listMethods", "params": []}])
        assert info.value.faultCode == -32601
    multicall = xmlrpc.client.MultiCall(proxy(live_server))
    multicall.system.listMethods()
    with pytest.raises(xmlrpc.client.Fault) as info:
        list(multicall())
    assert info.value.faultCode == -32601


@pytest.mark.parametrize("params", [(), ("http://a.example/",), ("a", "b", "c"), (1, 2), ("http://a.example/", 2),
                                    (["x"], "y"), ({"a": 1}, "b"), (True, "b"), (xmlrpc.client.Binary(b"x"), "y")])
def test_bad_params_are_invalid_params(live_server, params):
    with proxy(live_server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        p.pingback.ping(*params)
    assert info.value.faultCode == -32602


def test_get_pingbacks_bad_params(live_server):
    with proxy(live_server) as p:
        for params in [(), (1,), ("a", "b")]:
            with pytest.raises(xmlrpc.client.Fault) as info:
                p.pingback.extensions.getPingbacks(*params)
            assert info.value.faultCode == -32602


PING_CALL = ("<?xml version='1.0'?><methodCall><methodName>pingback.ping</methodName><params>"
             "<param><value><string>{a}</string></value></param>"
             "<param><value><string>{b}</string></value></param></params></methodCall>")


@pytest.mark.parametrize("body, code", [
    (b"", -32700),
    (b"this is not xml", -32700),
    (b"<methodCall><methodName>pingback.ping</methodName>", -32700),
    (b"\xff\xfe\x00garbage", -32700),
    (b"<methodCall><methodName>pingback.ping</methodName><params><param><value><base64>!!!</base64></value>"
     b"</param><param><value><dateTime.iso8601>never</dateTime.iso8601></value></param></params></methodCall>",
     -32602),
    (b"<methodResponse><params><param><value><string>x</string></value></param></params></methodResponse>", -32600),
    (b"<methodCall><methodName>pingback.ping</methodName><params><param><value><nil/></value></param>"
     b"<param><value><nil/></value></param></params></methodCall>", -32602),
    (b"<methodCall><methodName>pingback.ping</methodName><params><param><value><i4>99999999999999999999</i4>"
     b"</value></param><param><value>x</value></param></params></methodCall>", -32602),
    (b"<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName><params>"
     + b"<param><value><array><data>" * 1000 + b"</data></array></value></param>" * 1000
     + b"</params></methodCall>", -32602),
])
def test_malformed_calls_get_xmlrpc_faults_never_http_500(live_server, body, code):
    answer = raw_call(live_server, body)
    assert isinstance(answer, xmlrpc.client.Fault), answer
    assert answer.faultCode == code, answer.faultString


def _billion_laughs() -> bytes:
    entities = '<!ENTITY lol0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    return (f"<?xml version='1.0'?><!DOCTYPE methodCall [{entities}]>"
            + PING_CALL.format(a="&lol9;", b="x").replace("<?xml version='1.0'?>", "")).encode()


def _external_entity() -> bytes:
    return ("<?xml version='1.0'?><!DOCTYPE methodCall [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
            + PING_CALL.format(a="http://a.example/&xxe;", b="&xxe;").replace("<?xml version='1.0'?>", "")).encode()


def _parameter_entity() -> bytes:
    return ("<?xml version='1.0'?><!DOCTYPE methodCall [<!ENTITY % remote SYSTEM \"http://10.0.0.1/evil.dtd\">"
            "%remote;]>" + PING_CALL.format(a="x", b="y").replace("<?xml version='1.0'?>", "")).encode()


@pytest.mark.parametrize("make_body", [_billion_laughs, _external_entity, _parameter_entity])
def test_entity_attacks_are_parse_errors_fast(live_server, fence, make_body):
    started = time.monotonic()
    status, _, data = send(live_server, "POST", "/xmlrpc", make_body(), {"Content-Type": "text/xml"})
    assert time.monotonic() - started < 1.0
    assert status == 200
    assert b"root:" not in data and b"/bin/" not in data and b"lollol" not in data
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(data)
    assert info.value.faultCode == -32700


def test_body_over_the_limit_is_refused_without_parsing(live_server):
    call = b"<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName><params></params></methodCall>"
    # Whitespace after the root element is well-formed: parsed, this would be answered.
    assert isinstance(raw_call(live_server, call + b" " * 60_000), list)
    for kw in ({}, {"chunked": True}):
        answer = raw_call(live_server, call + b" " * 70_000, **kw)
        assert isinstance(answer, xmlrpc.client.Fault) and answer.faultCode == -32600, (kw, answer)


def test_compressed_requests_are_refused(live_server):
    import gzip
    call = b"<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName><params></params></methodCall>"
    answer = raw_call(live_server, gzip.compress(call), headers={"Content-Encoding": "gzip"})
    assert isinstance(answer, xmlrpc.client.Fault) and answer.faultCode == -32600


@pytest.mark.parametrize("path", ["/xmlrpc", "/xmlrpc.php"])
def test_get_shows_a_human_readable_page(live_server, path):
    status, headers, body = send(live_server, "GET", path)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = BeautifulSoup(body, "lxml")
    assert page.h1.get_text() == "XML-RPC server"
    assert "POST" in page.get_text() and "pingback" in page.get_text()


def test_xmlrpc_php_works_like_xmlrpc(live_server, source_site, post):
    post_id, path, target = post
    source = source_site.page("/a", linking_page(target))
    assert "registered" in ping(live_server, source, target, path="/xmlrpc.php")
    assert fault(live_server, source, target, path="/xmlrpc.php").faultCode == 48
    with proxy(live_server, "/xmlrpc.php") as p:
        assert p.pingback.extensions.getPingbacks(target) == [source]


def test_introspection(live_server):
    with proxy(live_server) as p:
        methods = p.system.listMethods()
        assert {"pingback.ping", "pingback.extensions.getPingbacks"} <= set(methods)
        assert "system.multicall" not in methods
        assert "sourceURI" in p.system.methodHelp("pingback.ping")
        assert p.system.methodHelp("pingback.extensions.getPingbacks")
        assert p.system.methodSignature("pingback.ping") == [["string", "string", "string"]]
        assert p.system.methodSignature("pingback.extensions.getPingbacks") == [["array", "string"]]
        assert p.system.methodSignature("no.such") == "signatures not supported"


# --------------------------------------------------------------------------- masked faults


def _mask_16(site, target):
    return site.page("/gone", linking_page(target), status=404)


def _mask_17(site, target):
    return site.page("/nolink", "<html><body>nothing</body></html>")


def _mask_32(site, target):
    return site.page("/a", linking_page(SITE + "/2026/01/01/no-such-post/")), SITE + "/2026/01/01/no-such-post/"


def _mask_33(site, target):
    return site.page("/a", linking_page(SITE + "/")), SITE + "/"


def _mask_49(site, target):
    db.session.add(BlockedDomain(domain="127.0.0.1"))
    db.session.commit()
    return site.page("/a", linking_page(target))


@pytest.mark.parametrize("config_overrides", [cfg(PINGBACK_MASK_FAULTS=True)], ids=["masked"])
@pytest.mark.parametrize("scenario", [_mask_16, _mask_17, _mask_32, _mask_33, _mask_49],
                         ids=["16", "17", "32", "33", "49"])
def test_masked_faults_are_a_bare_0(live_server, source_site, post, scenario):
    target = post[2]
    made = scenario(source_site, target)
    source, target = made if isinstance(made, tuple) else (made, target)
    f = fault(live_server, source, target)
    assert (f.faultCode, f.faultString) == (0, "")


@pytest.mark.parametrize("config_overrides", [cfg(PINGBACK_MASK_FAULTS=True)], ids=["masked"])
def test_masked_faults_keep_48(live_server, source_site, post):
    target = post[2]
    source = source_site.page("/a", linking_page(target))
    ping(live_server, source, target)
    f = fault(live_server, source, target)
    assert f.faultCode == 48 and f.faultString


# --------------------------------------------------------------------------- getPingbacks


def test_get_pingbacks_lists_approved_pingback_sources(live_server, source_site, post):
    post_id, path, target = post
    first = source_site.page("/1", linking_page(target))
    second = source_site.page("/2", linking_page(target))
    third = source_site.page("/3", linking_page(target))
    for source in (first, second, third):
        ping(live_server, source, target)
    # (Past the CPU budget's burst, a ping is verified in the background: the list is of verified ones.)
    assert wait_for(lambda: sorted(r.status for r in rows()) == ["approved"] * 3)
    db.session.execute(update(Comment).where(Comment.source_url == second).values(status="spam"))
    add_comment(post_id, "A trackback", kind=CommentKind.TRACKBACK, source_url="http://tb.example/x")
    add_comment(post_id, "A comment")
    with proxy(live_server) as p:
        assert p.pingback.extensions.getPingbacks(target) == [first, third]
        assert p.pingback.extensions.getPingbacks(SITE + path.rstrip("/") + "?x=1") == [first, third]
        _, empty_path = make_post(title="Nobody pinged")
        assert p.pingback.extensions.getPingbacks(SITE + empty_path) == []


@pytest.mark.parametrize("url, code", [
    (SITE + "/", 33), ("http://example.com/2026/01/01/target-post/", 33), (SITE + "/category/x/", 33),
    (SITE + "/2026/01/01/no-such-post/", 32), (SITE + "/no/route/", 32),
])
def test_get_pingbacks_of_a_non_post(live_server, post, url, code):
    with proxy(live_server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        p.pingback.extensions.getPingbacks(url)
    assert info.value.faultCode == code


def test_get_pingbacks_of_a_draft_is_33(app, ctx, live_server):
    _, path = make_post(title="Unpublished", publish=False)
    with proxy(live_server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        p.pingback.extensions.getPingbacks(SITE + path)
    assert info.value.faultCode == 33


# --------------------------------------------------------------------------- discovery


def test_post_pages_advertise_the_pingback_endpoint(live_server, post):
    post_id, path, target = post
    for method in ("GET", "HEAD"):
        status, headers, body = send(live_server, method, path)
        assert status == 200
        assert headers["X-Pingback"] == "http://blog.test/xmlrpc"
    status, _, body = send(live_server, "GET", path)
    links = BeautifulSoup(body, "lxml").select('link[rel="pingback"]')
    assert [link["href"] for link in links] == ["http://blog.test/xmlrpc"]


# --------------------------------------------------------------------------- the log


def test_linkback_log_records_accepted_and_refused_verifications(live_server, source_site, post):
    post_id, path, target = post
    good = source_site.page("/good", linking_page(target))
    bad = source_site.page("/bad", "<html><body>no link</body></html>")
    gone = source_site.page("/gone", "", status=410)
    ping(live_server, good, target)
    fault(live_server, bad, target)
    fault(live_server, gone, target)
    fault(live_server, good, target)  # 48: refused before verification, nothing to log
    fault(live_server, good, SITE + "/2026/01/01/no-such-post/")  # 32: likewise
    entries = [(e.source_url, e.outcome, e.fault_code, e.post_id, e.protocol) for e in logs()]
    assert entries == [
        (good, "accepted", None, post_id, "pingback"),
        (bad, "refused", 17, post_id, "pingback"),
        (gone, "refused", 16, post_id, "pingback"),
    ]
    accepted, refused, failed = logs()
    [row] = rows()
    assert accepted.comment_id == row.id
    assert "410" in failed.message and "link" in refused.message
    assert all(e.finished_at is not None and e.finished_at >= e.created_at for e in logs())
