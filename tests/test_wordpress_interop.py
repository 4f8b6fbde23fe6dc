"""Interop with a real WordPress 6.1 (Debian's package) on 127.0.0.1:8090, in both directions.

The peer lives beside the repository in ``shared/peers/wordpress`` (``WP_PEER_DIR_SCRIPTS``
overrides that); ``.ci/run`` starts it with its ``up.sh``. Every test skips with a reason when
the scripts are missing, when we are not root (the scripts insist on it) or when WordPress
does not answer; under ``CI=true`` it fails instead. Our blog is served on a real port whose SITE_URL is exactly its own address,
because WordPress pings the URL it sees in a post and fetches our pages back.

Titles carry a random tag so reruns against the same WordPress never collide.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import threading
import time
import uuid
import xmlrpc.client
from pathlib import Path

import pytest
import requests
from bs4 import BeautifulSoup
from sqlalchemy import select
from werkzeug.serving import make_server

from blogapp import create_app, jobs, outbound
from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, OutboundLink, Post
from blogapp.posts import save_post
from blogapp.templating import post_path, site_request_context
from conftest import database_config, empty_database
from helpers import make_post, unavailable

WP_URL = f"http://127.0.0.1:{os.environ.get('WP_PEER_PORT', '8090')}"
WP_XMLRPC = f"{WP_URL}/xmlrpc.php"
WP_LOG_DIR = Path(os.environ.get("WP_PEER_DIR", "/tmp/wp-peer")) / "logs"
PEER_DIR = Path(os.environ.get("WP_PEER_DIR_SCRIPTS") or Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "wordpress")
OUR_SITE_TITLE = "A SMART PRACTICE"  # blogapp's default SITE_TITLE: our pages are "<post title> | A SMART PRACTICE"
SCRIPT_TIMEOUT = 60
POLL_SECONDS = 15


def http_session() -> requests.Session:
    """Loopback only: never let a proxy setting from the environment take these requests elsewhere."""
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture(scope="module")
def wordpress():
    """The peer's scripts directory, once WordPress is known to answer; else the test skips (fails under CI=true)."""
    if not (PEER_DIR / "publish_post.sh").is_file():
        unavailable(f"WordPress peer scripts not found at {PEER_DIR} (set WP_PEER_DIR_SCRIPTS)")
    if os.geteuid() != 0:
        unavailable("the WordPress peer scripts must run as root")
    try:
        with http_session() as session:
            session.get(WP_URL + "/", timeout=2, allow_redirects=False).close()
    except requests.RequestException as exc:
        unavailable(f"WordPress does not answer at {WP_URL}/ ({type(exc).__name__}); start it with {PEER_DIR}/up.sh")
    return PEER_DIR


def peer(script: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    result = subprocess.run(["bash", str(PEER_DIR / script), *args], capture_output=True, text=True,
                            timeout=SCRIPT_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{script} {args!r} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def publish(title: str, body: str, *options: str) -> dict:
    """Publish a WordPress post and have it send its pings now; its ``--json`` description."""
    return json.loads(peer("publish_post.sh", "--json", *options, title, body))


def wp_comments(post: str | int) -> list[dict]:
    return [json.loads(line) for line in peer("list_comments.sh", str(post)).splitlines() if line.strip()]


def unique_title(what: str) -> str:
    return f"Interop {what} {uuid.uuid4().hex[:10]}"


class LogTail:
    """The lines a WordPress log gains from now on (JSON lines; the log may not exist yet)."""

    def __init__(self, name: str):
        self.path = WP_LOG_DIR / name
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.start)
            lines = fh.read().decode("utf-8", "replace").splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Blog:
    """Our app, served over real HTTP at its own SITE_URL."""

    def __init__(self, app, url: str):
        self.app, self.url = app, url

    def post(self, title: str, body: str = "Some *text* for the interop test.") -> tuple[int, str]:
        """A published post: (id, permalink)."""
        with self.app.app_context(), site_request_context(self.app):
            post_id, path = make_post(title=title, body=body)
        return post_id, self.url + path

    def linkbacks(self, post_id: int) -> list[dict]:
        with self.app.app_context():
            rows = db.session.scalars(
                select(Comment).where(Comment.post_id == post_id, Comment.kind != CommentKind.COMMENT.value)
                .order_by(Comment.id)
            ).all()
            return [{"kind": c.kind, "status": c.status, "author_name": c.author_name, "author_url": c.author_url,
                     "source_url": c.source_url, "content": c.content, "user_agent": c.user_agent} for c in rows]

    def settled_linkbacks(self, post_id: int, count: int = 1, seconds: float = POLL_SECONDS) -> list[dict]:
        """Poll until the post has at least ``count`` linkbacks and none is still being verified."""
        deadline = time.monotonic() + seconds
        while True:
            rows = self.linkbacks(post_id)
            if len(rows) >= count and all(r["status"] != CommentStatus.VERIFYING.value for r in rows):
                return rows
            if time.monotonic() > deadline:
                return rows
            time.sleep(0.05)  # one query: a short interval costs little, and the test goes on sooner


@pytest.fixture
def blog(wordpress, tmp_path, pg_schema):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-" + secrets.token_hex(8),
        "SITE_URL": url,
        "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"],
        "LINKBACK_MODERATION": "approve",
        "RATELIMIT_ENABLED": False,
        **database_config(tmp_path, pg_schema),
    }, instance_path=str(tmp_path / "instance"))
    with app.app_context():
        db.create_all()
    server = make_server("127.0.0.1", port, app, threaded=True)
    # A short poll interval makes shutdown, at every test's end, quick (it waits for the next poll;
    # serve_forever's default is half a second).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield Blog(app, url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        app.extensions["linkback_receiver"].shutdown()
        app.extensions["jobs"].shutdown()
        with app.app_context():
            db.session.remove()
            # Emptied, not dropped: the app fixture's way (on PostgreSQL the next test then finds
            # the tables; dropped, each of these tests and the next test after it made them again).
            empty_database(pg_schema)
            db.engine.dispose()


def explain(*logs: LogTail) -> str:
    """What WordPress logged meanwhile, for assertion messages."""
    return "\n".join(json.dumps(e)[:600] for log in logs for e in log.entries())


def linkback_lines(page_html: str, kind: str) -> list[str]:
    soup = BeautifulSoup(page_html, "lxml")
    return [" ".join(li.select_one(".linkback-line").get_text().split()) for li in soup.select(f"li.linkback.{kind}")]


# ---------------------------------------------------------------- WordPress -> us


def test_wordpress_pingback_to_us(blog):
    post_id, target = blog.post(unique_title("target"))
    title = unique_title("pingback source")
    http_log, incoming = LogTail("http.log"), LogTail("incoming.log")
    wp = publish(title, f'<p>Before the link. I am writing about <a href="{target}">a post on blogapp</a>. After the link.</p>')

    rows = blog.settled_linkbacks(post_id)
    assert len(rows) == 1, f"{rows}\n{explain(http_log, incoming)}"
    row = rows[0]
    assert row["kind"] == CommentKind.PINGBACK.value
    assert row["status"] == CommentStatus.APPROVED.value
    assert row["source_url"] == wp["permalink"]
    # WordPress's <title> is "TITLE &#8211; WP Interop Peer": we keep the title, entities decoded.
    assert title in row["author_name"] and "&#8211;" not in row["author_name"]
    assert "writing about" in row["content"]
    assert "WordPress/6.1" in row["user_agent"] or "Incutio" in row["user_agent"]

    # WordPress counted the ping as a success.
    assert target in wp["pinged"], wp

    # Our page shows it.
    with http_session() as session:
        page = session.get(target, timeout=5)
    assert page.status_code == 200
    lines = linkback_lines(page.text, "pingback")
    assert len(lines) == 1 and lines[0].startswith(f"Pingback: {row['author_name']}"), lines

    # Discovery: WordPress's HEAD to our permalink got 200 with our X-Pingback (http.log records each request).
    heads = [e for e in http_log.entries() if e.get("method") == "HEAD" and e.get("url") == target]
    assert heads, f"no HEAD to {target} in http.log:\n{explain(http_log)}"
    assert heads[0].get("status") == 200, heads[0]
    assert heads[0].get("x_pingback") == page.headers["X-Pingback"], heads[0]
    assert page.headers["X-Pingback"] in (f"{blog.url}/xmlrpc", f"{blog.url}/xmlrpc.php")
    calls = [e for e in http_log.entries() if e.get("method") == "POST" and e.get("url") == page.headers["X-Pingback"]]
    assert len(calls) == 1 and calls[0].get("status") == 200, calls
    assert "<fault>" not in calls[0].get("resp_body", ""), calls[0]


def test_wordpress_post_linking_two_of_our_posts(blog):
    first_id, first = blog.post(unique_title("first target"))
    second_id, second = blog.post(unique_title("second target"))
    title = unique_title("two links")
    http_log = LogTail("http.log")
    wp = publish(title, f'<p>One: <a href="{first}">the first post</a>.</p>\n<p>Two: <a href="{second}">the second post</a>.</p>')

    for post_id, link_text in ((first_id, "the first post"), (second_id, "the second post")):
        rows = blog.settled_linkbacks(post_id)
        assert len(rows) == 1, f"post {post_id}: {rows}\n{explain(http_log)}"
        assert rows[0]["kind"] == CommentKind.PINGBACK.value
        assert rows[0]["status"] == CommentStatus.APPROVED.value
        assert rows[0]["source_url"] == wp["permalink"]
        assert title in rows[0]["author_name"]
        assert link_text in rows[0]["content"]
    # Both pingback.ping calls succeeded on the wire...
    calls = [e for e in http_log.entries() if e.get("method") == "POST" and e.get("url", "").startswith(f"{blog.url}/xmlrpc")]
    assert len(calls) == 2, explain(http_log)
    assert all(c.get("status") == 200 and "<fault>" not in c.get("resp_body", "") for c in calls), calls
    # ...but WordPress 6.1's add_ping() rebuilds "pinged" from the WP_Post object pingback() loaded
    # before the loop, so each success overwrites the previous one and only the last target is kept
    # (a WordPress bug).
    assert wp["pinged"] and set(wp["pinged"]) <= {first, second}, wp
    # What editing the post does: ping the "forgotten" target again. We answer 48 (already
    # registered), which WordPress counts as a success, and nothing is stored twice.
    again = LogTail("http.log")
    wp = json.loads(peer("wp.sh", "reping", str(wp["id"])))
    retries = [e for e in again.entries() if e.get("method") == "POST" and e.get("url", "").startswith(f"{blog.url}/xmlrpc")]
    assert all("<int>48</int>" in c.get("resp_body", "") for c in retries), retries
    assert sorted(wp["pinged"]) == sorted([first, second]), wp
    assert len(blog.linkbacks(first_id)) == 1 and len(blog.linkbacks(second_id)) == 1


def test_wordpress_trackback_to_us(blog):
    post_id, target = blog.post(unique_title("trackback target"))
    title = unique_title("trackback source")
    blog_name = json.loads(peer("wp.sh", "option", "blogname"))["blogname"]
    # We verify trackbacks: the WordPress post must link to us. With the dots written as entities
    # WordPress's URL extractor (which needs a literal ".") sends no pingback, so only the trackback
    # arrives; an HTML parser still reads the link.
    encoded = target.replace(".", "&#46;")
    http_log, incoming = LogTail("http.log"), LogTail("incoming.log")
    wp = publish(title, f'<p>Some context &#8212; caf&eacute; talk, and <a href="{encoded}">a post on blogapp</a>.</p>',
                 "--trackback", target + "trackback/")

    tb_calls = [e for e in http_log.entries() if e.get("method") == "POST" and e.get("url") == target + "trackback/"]
    assert len(tb_calls) == 1, explain(http_log)
    assert "<error>0</error>" in tb_calls[0].get("resp_body", ""), tb_calls[0]
    assert not [e for e in http_log.entries() if e.get("url", "").startswith(f"{blog.url}/xmlrpc")], "WordPress sent a pingback too"

    rows = blog.settled_linkbacks(post_id)
    assert len(rows) == 1, f"{rows}\n{explain(http_log, incoming)}"
    row = rows[0]
    assert row["kind"] == CommentKind.TRACKBACK.value
    assert row["status"] == CommentStatus.APPROVED.value
    assert row["source_url"] == wp["permalink"]
    assert row["author_name"] == blog_name
    assert row["content"].startswith(title + "\n\n"), row["content"]
    # The excerpt came with entities (&#8212;, &eacute;): stored decoded.
    assert "Some context — café talk, and a post on blogapp." in row["content"], row["content"]
    assert wp["to_ping"] == [] and target + "trackback/" in wp["pinged"], wp

    with http_session() as session:
        page = session.get(target, timeout=5)
    assert linkback_lines(page.text, "trackback")[0].startswith(f"Trackback: {blog_name}")


def test_wordpress_pingback_and_trackback_from_one_post_count_once(blog):
    """WordPress pings first, then sends the trackback: the second is a duplicate of the first."""
    post_id, target = blog.post(unique_title("both target"))
    title = unique_title("both source")
    http_log = LogTail("http.log")
    wp = publish(title, f'<p>See <a href="{target}">this post</a>.</p>', "--trackback", target + "trackback/")

    rows = blog.settled_linkbacks(post_id)
    assert [r["kind"] for r in rows] == [CommentKind.PINGBACK.value], f"{rows}\n{explain(http_log)}"
    assert rows[0]["source_url"] == wp["permalink"]
    tb_calls = [e for e in http_log.entries() if e.get("method") == "POST" and e.get("url") == target + "trackback/"]
    assert len(tb_calls) == 1 and "<error>1</error>" in tb_calls[0].get("resp_body", ""), tb_calls


# ---------------------------------------------------------------- us -> WordPress


def test_our_trackback_to_wordpress(blog):
    title = unique_title("our trackback")
    _, ours = blog.post(title, body="We discuss a WordPress post here.")
    wp = publish(unique_title("wp trackback target"), "<p>A WordPress post that takes trackbacks.</p>", "--no-pings")
    with http_session() as session:
        answer = session.post(wp["trackback_url"], timeout=10, data={
            "url": ours, "title": title, "excerpt": "An excerpt of our post — with a dash.", "blog_name": OUR_SITE_TITLE,
        })
    assert answer.status_code == 200, answer.text
    assert "<error>0</error>" in answer.text, answer.text

    found = [c for c in wp_comments(wp["id"]) if c["type"] == "trackback"]
    assert len(found) == 1, found
    assert found[0]["author_url"] == ours
    assert found[0]["author"] == OUR_SITE_TITLE
    assert title in found[0]["content"] and "An excerpt of our post" in found[0]["content"]


def test_our_post_as_pingback_source_to_wordpress(blog):
    wp = publish(unique_title("wp pingback target"), "<p>A WordPress post that takes pingbacks.</p>", "--no-pings")
    title = unique_title("our pingback source")
    _, ours = blog.post(title, body=f"Context before the link: [a WordPress post]({wp['permalink']}) and after it.")
    http_log, incoming = LogTail("http.log"), LogTail("incoming.log")

    # WordPress fetches our permalink without following redirects: it must answer 200 as it is.
    with http_session() as session:
        page = session.get(ours, timeout=5, allow_redirects=False)
    assert page.status_code == 200
    assert f"<title>{title} | {OUR_SITE_TITLE}</title>" in page.text

    server = xmlrpc.client.ServerProxy(WP_XMLRPC)
    try:
        result = server.pingback.ping(ours, wp["permalink"])
    except xmlrpc.client.Fault as fault:
        pytest.fail(f"WordPress answered {fault}:\n{explain(http_log, incoming)}")
    finally:
        server("close")()
    assert "registered" in result, result

    fetches = [e for e in http_log.entries() if e.get("method") == "GET" and e.get("url") == ours]
    assert fetches and fetches[0].get("status") == 200, explain(http_log)

    found = [c for c in wp_comments(wp["id"]) if c["type"] == "pingback"]
    assert len(found) == 1, found
    assert found[0]["author_url"] == ours
    assert found[0]["author"] == f"{title} | {OUR_SITE_TITLE}"
    assert "a WordPress post" in found[0]["content"], found[0]

    # A second identical ping is WordPress's fault 48, the one code it does not mask.
    server = xmlrpc.client.ServerProxy(WP_XMLRPC)
    try:
        with pytest.raises(xmlrpc.client.Fault) as again:
            server.pingback.ping(ours, wp["permalink"])
    finally:
        server("close")()
    assert again.value.faultCode == 48


def test_publishing_on_blogapp_pings_wordpress(blog):
    """Our own sender, end to end: publish, discover WordPress's X-Pingback, pingback.ping, verified there."""
    wp = publish(unique_title("wp target of our sender"), "<p>A WordPress post we will link to.</p>", "--no-pings")
    title = unique_title("our published post")
    http_log, incoming = LogTail("http.log"), LogTail("incoming.log")
    with blog.app.app_context(), site_request_context(blog.app):
        post = save_post(None, title=title, publish=True,
                         body=f"Before the link, [a WordPress post]({wp['permalink']}), after the link.")
        db.session.commit()
        ours = blog.url + post_path(post)
        outbound.dispatch()
        assert jobs.wait_idle(30, app=blog.app)
        row = db.session.scalar(select(OutboundLink).where(OutboundLink.post_id == post.id))
        state = (row.state, row.protocol, row.endpoint, row.message)
    assert state[:3] == ("sent", "pingback", WP_XMLRPC), f"{state}\n{explain(http_log, incoming)}"

    # WordPress fetched our permalink exactly as we sent it, and it answered 200 (no redirect).
    fetches = [e for e in http_log.entries() if e.get("method") == "GET" and e.get("url") == ours]
    assert fetches and fetches[0].get("status") == 200, explain(http_log)
    found = [c for c in wp_comments(wp["id"]) if c["type"] == "pingback"]
    assert len(found) == 1, f"{found}\n{explain(http_log, incoming)}"
    assert found[0]["author_url"] == ours
    assert found[0]["author"] == f"{title} | {OUR_SITE_TITLE}"
    assert "a WordPress post" in found[0]["content"], found[0]

    # An update does not ping WordPress again (a registered pingback stays registered).
    with blog.app.app_context(), site_request_context(blog.app):
        post = db.session.get(Post, post.id)
        save_post(post, title=title, publish=True, body=post.body + "\n\nAn added paragraph.")
        db.session.commit()
        outbound.dispatch()
        assert jobs.wait_idle(30, app=blog.app)
        row = db.session.scalar(select(OutboundLink).where(OutboundLink.post_id == post.id))
        assert row.attempts == 1
    assert len([c for c in wp_comments(wp["id"]) if c["type"] == "pingback"]) == 1
