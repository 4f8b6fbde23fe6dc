"""Interop with real WordPress 6.1.9 traffic, replayed from ``tests/fixtures/wordpress/``.

The requests are sent as WordPress sent them, header for header, over a raw socket to our live
server on 127.0.0.1; only what must point at this test's servers is substituted (the Host and
Referer headers, the source and target URLs, and so Content-Length). The WordPress pages are served
by a SourceSite with the headers WordPress sent them with.
"""
from __future__ import annotations

import http.client
import io
import socket
import xml.etree.ElementTree as ET
import xmlrpc.client
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import select

from blogapp.extensions import db
from blogapp.linkback.verify import read_page
from blogapp.models import Comment
from helpers import make_post

FIXTURES = Path(__file__).parent / "fixtures" / "wordpress"
SITE_URL = "http://blog.test"
# Addresses as captured: WordPress on 127.0.0.1:8090 pinging a receiver on 127.0.0.1:8092.
WP_SOURCE = "http://127.0.0.1:8090/2026/11/27/a-reply-to-a-fellow-therapist/"
WP_TARGET = "http://127.0.0.1:8092/2026/11/27/want-a-thriving-practice/"
WP_SEASONS_TARGET = "http://blog.example/2026/11/27/want-a-thriving-practice-do-good-work/"


@pytest.fixture
def config_overrides():
    return {
        "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"],
        "LINKBACK_MODERATION": "approve",
        "LINKBACK_VERIFY_BUDGET": 10.0,
    }


# ------------------------------------------------------------------ reading and replaying fixtures

class Message:
    """A captured HTTP message: start line, headers in order (repeats kept), body bytes."""

    def __init__(self, start: str, headers: list[tuple[str, str]], body: bytes):
        self.start, self.headers, self.body = start, headers, body

    @classmethod
    def load(cls, name: str) -> Message:
        raw = (FIXTURES / name).read_bytes()
        head, _, body = raw.partition(b"\r\n\r\n")
        start, *lines = head.decode("latin-1").split("\r\n")
        headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]
        return cls(start, headers, body)

    def header(self, name: str) -> str:
        [value] = [v for n, v in self.headers if n.lower() == name.lower()]
        return value

    def replace_header(self, name: str, value: str) -> None:
        assert any(n.lower() == name.lower() for n, _ in self.headers), name
        self.headers = [(n, value if n.lower() == name.lower() else v) for n, v in self.headers]

    def replace_in_body(self, old: str, new: str) -> None:
        assert self.body.count(old.encode()) == 1, f"{old!r} is not once in the fixture body"
        self.body = self.body.replace(old.encode(), new.encode())

    def to_bytes(self) -> bytes:
        headers = [(n, str(len(self.body)) if n.lower() == "content-length" else v) for n, v in self.headers]
        head = "\r\n".join([self.start, *(f"{n}: {v}" for n, v in headers)])
        return head.encode("latin-1") + b"\r\n\r\n" + self.body


class _Socket:
    """What http.client.HTTPResponse needs of a socket, over bytes already read."""

    def __init__(self, data: bytes):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


def send(server, message: Message) -> tuple[http.client.HTTPResponse, bytes]:
    """Send ``message`` to ``server`` byte for byte; read the whole answer (WordPress sends Connection: close)."""
    port = urlsplit(server.url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(message.to_bytes())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = http.client.HTTPResponse(_Socket(b"".join(chunks)), method=message.start.split()[0])
    response.begin()
    return response, response.read()


def captured_response(name: str) -> tuple[dict[str, str], bytes]:
    message = Message.load(name)
    assert message.start.startswith("HTTP/1.1 200")
    return {n.lower(): v for n, v in message.headers}, message.body


def serve_wordpress_page(site, name: str, path: str, links: dict[str, str]) -> str:
    """Serve ``name``.html at ``path`` with its captured headers, its links rewritten by ``links``."""
    html = (FIXTURES / f"{name}.html").read_text("utf-8")
    for old, new in links.items():
        assert html.count(old) == 1, f"{old!r} is not once in {name}.html"
        html = html.replace(old, new)
    captured = Message.load(f"{name}.headers.txt")
    headers: dict[str, str] = {}
    for header, value in captured.headers:
        if header.lower() in ("host", "date", "connection", "content-type", "content-length"):
            continue
        headers[header] = f"{headers[header]}, {value}" if header in headers else value  # repeated Link headers
    return site.page(path, html, content_type=captured.header("Content-Type"), headers=headers)


def skeleton(xml: bytes) -> list[str]:
    """Every element's path, in document order: the shape of an XML document without its text."""
    paths = []

    def walk(element, prefix):
        path = f"{prefix}/{element.tag}"
        paths.append(path)
        for child in element:
            walk(child, path)

    walk(ET.fromstring(xml), "")
    return paths


def linkbacks(post_id: int) -> list[Comment]:
    db.session.rollback()  # a fresh look at what the server's threads committed
    return list(db.session.scalars(select(Comment).where(Comment.post_id == post_id).order_by(Comment.id)))


@pytest.fixture
def thriving(ctx):
    """Our post WordPress links to: (id, path, permalink)."""
    post_id, path = make_post(title="Want a thriving practice?")
    assert path.endswith("/want-a-thriving-practice/")
    return post_id, path, SITE_URL + path


def pingback_request(live_server, source: str, target: str) -> Message:
    message = Message.load("pingback-request.http")
    assert message.start == "POST /xmlrpc HTTP/1.1"
    assert message.header("Content-Type") == "text/xml"
    assert message.header("User-Agent") == "The Incutio XML-RPC PHP Library -- WordPress/6.1.9"
    netloc = urlsplit(live_server.url).netloc
    message.replace_header("Host", netloc)
    message.replace_header("Referer", f"{live_server.url}/xmlrpc")
    message.replace_in_body(WP_SOURCE, source)
    message.replace_in_body(WP_TARGET, target)
    return message


# ------------------------------------------------------------------ pingback

def test_wordpress_pingback_is_registered_then_a_duplicate(live_server, thriving, source_site):
    post_id, _, link = thriving
    source = serve_wordpress_page(source_site, "a-reply-to-a-fellow-therapist", urlsplit(WP_SOURCE).path,
                                  {WP_TARGET: link})
    message = pingback_request(live_server, source, link)

    response, body = send(live_server, message)
    assert response.status == 200
    assert response.getheader("Content-Type").split(";")[0] == "text/xml"
    (result,), method = xmlrpc.client.loads(body)
    assert method is None and isinstance(result, str) and "registered" in result
    # The same shape as WordPress's own success answer: one string parameter.
    wp_headers, wp_body = captured_response("response-success.http")
    (wp_result,), _ = xmlrpc.client.loads(wp_body)
    assert isinstance(wp_result, str) and wp_headers["content-type"].startswith("text/xml")

    [stored] = linkbacks(post_id)
    assert stored.kind == "pingback" and stored.status == "approved"
    assert stored.source_url == source
    assert stored.author_name == "A reply to a fellow therapist \u2013 A SMART PRACTICE"  # &#8211; decoded
    assert "My colleague wrote a lovely piece on doing good work" in stored.content
    assert "\u2014 caf\u00e9 conversations about it continue." in stored.content  # &#8212; caf&eacute;
    assert "&#" not in stored.content and "&eacute;" not in stored.content
    [fetch] = source_site.requests
    assert fetch.path == urlsplit(WP_SOURCE).path

    # WordPress pings again (a re-save of its post): fault 48, like WordPress's own, and no fetch.
    response, body = send(live_server, pingback_request(live_server, source, link))
    assert response.status == 200
    with pytest.raises(xmlrpc.client.Fault) as ours:
        xmlrpc.client.loads(body)
    wp_headers, wp_body = captured_response("response-fault-48.http")
    with pytest.raises(xmlrpc.client.Fault) as theirs:
        xmlrpc.client.loads(wp_body)
    assert ours.value.faultCode == theirs.value.faultCode == 48
    assert ours.value.faultString  # ours says why, in our words
    assert skeleton(body) == skeleton(wp_body)
    assert response.getheader("Content-Type").split(";")[0] == wp_headers["content-type"].split(";")[0]
    assert len(source_site.requests) == 1
    assert len(linkbacks(post_id)) == 1


@pytest.mark.parametrize("config_overrides", [{"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_VERIFY_BUDGET": 10.0,
                                               "PINGBACK_MASK_FAULTS": True}])
def test_masked_fault_looks_like_wordpress(live_server, thriving, source_site):
    """With PINGBACK_MASK_FAULTS, a source without our link gets WordPress's bare fault 0."""
    post_id, _, link = thriving
    source = serve_wordpress_page(source_site, "a-reply-to-a-fellow-therapist", urlsplit(WP_SOURCE).path, {})
    response, body = send(live_server, pingback_request(live_server, source, link))
    _, wp_body = captured_response("response-fault-masked.http")
    faults = []
    for xml in (body, wp_body):
        with pytest.raises(xmlrpc.client.Fault) as fault:
            xmlrpc.client.loads(xml)
        faults.append((fault.value.faultCode, fault.value.faultString))
    assert faults == [(0, ""), (0, "")]
    assert skeleton(body) == skeleton(wp_body)
    assert linkbacks(post_id) == []


# ------------------------------------------------------------------ trackback

def test_wordpress_trackback_entities_are_decoded(live_server, thriving, source_site):
    post_id, path, link = thriving
    message = Message.load("trackback-request.http")
    assert message.header("Content-Type") == "application/x-www-form-urlencoded"  # no charset
    source = serve_wordpress_page(source_site, "a-reply-to-a-fellow-therapist", urlsplit(WP_SOURCE).path,
                                  {WP_TARGET: link})
    message.start = f"POST {path}trackback/ HTTP/1.1"
    message.replace_header("Host", urlsplit(live_server.url).netloc)
    message.replace_header("Referer", f"{live_server.url}{path}trackback/")
    message.replace_in_body(quote(WP_SOURCE, safe=""), quote(source, safe=""))

    response, body = send(live_server, message)
    assert response.status == 200
    assert response.getheader("Content-Type").split(";")[0] == "text/xml"
    root = ET.fromstring(body)
    assert (root.tag, root.findtext("error"), root.find("message")) == ("response", "0", None)

    [stored] = linkbacks(post_id)
    assert (stored.kind, stored.source_url, stored.author_name) == ("trackback", source, "A SMART PRACTICE")
    assert stored.content == ("A reply to a fellow therapist\n\nMy colleague wrote a lovely piece on doing good work "
                              "\u2014 caf\u00e9 conversations about it continue.")
    [fetch] = source_site.requests  # verified against the page it names
    assert fetch.path == urlsplit(WP_SOURCE).path


# ------------------------------------------------------------------ reading a WordPress page

def test_verifier_reads_a_wordpress_post_page(client, ctx, source_site):
    post_id, path = make_post(title="Want a thriving practice? Do good work")
    link = SITE_URL + path
    source = serve_wordpress_page(source_site, "seasons-of-practice", "/2026/11/27/seasons-of-practice/",
                                  {WP_SEASONS_TARGET: link})
    reply = client.post("/xmlrpc", data=xmlrpc.client.dumps((source, link), "pingback.ping"), content_type="text/xml")
    (result,), _ = xmlrpc.client.loads(reply.get_data())
    assert "registered" in result
    [stored] = linkbacks(post_id)
    assert stored.author_name == "Seasons of Practice \u2013 A SMART PRACTICE"
    assert "doing good work as the root of a thriving practice" in stored.content
    assert "Last spring I wrote about" in stored.content
    [fetch] = source_site.requests
    assert fetch.headers["X-Pingback-Forwarded-For"] == "127.0.0.1"


def test_wordpress_page_read_directly():
    """The reader alone, on the captured bytes and charset: title and excerpt, link as captured."""
    body = (FIXTURES / "seasons-of-practice.html").read_bytes()
    reading = read_page(body, "UTF-8", "http://127.0.0.1:8090/2026/11/27/seasons-of-practice/",
                        lambda url: url == WP_SEASONS_TARGET)
    assert reading.title == "Seasons of Practice \u2013 A SMART PRACTICE"
    assert reading.link_text == "doing good work as the root of a thriving practice"
    assert reading.excerpt.startswith("[…] ") and reading.excerpt.endswith(" […]")
    assert ("Last spring I wrote about doing good work as the root of a thriving practice, and this season"
            in reading.excerpt)


def test_wordpress_page_linking_elsewhere_is_refused(client, thriving, source_site):
    """As captured, the page links to blog.example, not to us: fault 17, nothing stored."""
    post_id, _, link = thriving
    source = serve_wordpress_page(source_site, "seasons-of-practice", "/2026/11/27/seasons-of-practice/", {})
    reply = client.post("/xmlrpc", data=xmlrpc.client.dumps((source, link), "pingback.ping"), content_type="text/xml")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(reply.get_data())
    assert fault.value.faultCode == 17
    assert linkbacks(post_id) == []


# ------------------------------------------------------------------ discovery

def test_wordpress_discovery_head_request(live_server, thriving):
    _, path, link = thriving
    message = Message.load("discovery-head-request.http")
    assert message.start == f"HEAD {urlsplit(WP_TARGET).path} HTTP/1.1"
    message.start = f"HEAD {path} HTTP/1.1"  # exactly our permalink's path
    message.replace_header("Host", urlsplit(live_server.url).netloc)
    message.replace_header("Referer", live_server.url + path)
    response, body = send(live_server, message)
    assert response.status == 200  # no redirect: WordPress does not follow one
    assert response.getheader("Location") is None
    assert body == b""
    assert response.getheader("X-Pingback") in (SITE_URL + "/xmlrpc", SITE_URL + "/xmlrpc.php")  # absolute
    # The advertised server is ours and answers there.
    assert send(live_server, Message(f"GET {urlsplit(response.getheader('X-Pingback')).path} HTTP/1.1",
                                     [("Host", urlsplit(live_server.url).netloc), ("Connection", "close")],
                                     b""))[0].status == 200
