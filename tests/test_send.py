"""Sending linkbacks (blogapp.linkback.send) and GuardedFetcher.post, against real HTTP servers on 127.0.0.1.

The remote blogs and their endpoints are SourceSites (tests/sites.py): the target page is a real
page, the Webmention endpoint, the XML-RPC pingback server (the stdlib's own ``xmlrpc.client``
marshalling, inside a SourceSite handler) and the trackback URL are real handlers, and every test
reads what they received off the wire.

No test here reaches past loopback. The ``net`` fence (autouse, as in tests/test_fetch.py) records
every connection attempt, lets loopback ones through and refuses any other address before a
packet is sent, unless a test routes a pretend public address to one of its SourceSites. DNS is a
fake resolver: names a test declares, ``localhost``, numeric hosts; nothing else resolves.
"""
from __future__ import annotations

import gzip
import time
import xmlrpc.client
from urllib.parse import parse_qs

import pytest

from blogapp.linkback.fetch import FetchError, FetchPolicy, GuardedFetcher
from netfence import Net
from sites import wordpress_rdf
from blogapp.linkback.send import Announcement, SendResult, Sender, is_bare_home_page, outbound_links

PUBLIC_IP = "93.184.216.34"  # a public address; never contacted: refused or routed to 127.0.0.1
MB = 1_000_000
SOURCE = "http://blog.test/2026/01/02/hello-world/"  # our post: never fetched by the sender
FORM = "application/x-www-form-urlencoded"


# --------------------------------------------------------------------------- the network fence
# Copied from tests/test_fetch.py (importing a test module from another one is fragile).


@pytest.fixture(autouse=True)
def net(monkeypatch):
    fence = Net()
    fence.install(monkeypatch)
    yield fence
    assert fence.non_loopback() == [a for a in fence.attempts if a in fence.routes], \
        f"connected past loopback: {fence.attempts}"


@pytest.fixture
def site(source_site):
    """A remote blog on 127.0.0.1; its handlers must not have raised (conftest checks)."""
    return source_site


@pytest.fixture
def other_site(second_site):
    return second_site


# --------------------------------------------------------------------------- helpers


def local(**settings) -> GuardedFetcher:
    """A fetcher that may fetch from 127.0.0.0/8 (where the SourceSites are), any port."""
    settings.setdefault("deadline", 5.0)
    return GuardedFetcher(FetchPolicy.from_settings(allowlist=["127.0.0.0/8"], **settings))


def guarded(**settings) -> GuardedFetcher:
    """The production guard: no allowlist."""
    return GuardedFetcher(FetchPolicy(**settings))


def html(head: str = "", body: str = "<p>A post.</p>") -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Theirs</title>{head}</head><body>{body}</body></html>"


def note(target: str, **kw) -> Announcement:
    return Announcement(source=kw.pop("source", SOURCE), target=target, **kw)


def send(target: str, fetcher: GuardedFetcher | None = None, **kw) -> SendResult:
    protocols = kw.pop("protocols", None)
    sender = Sender(fetcher or local())
    outcome = sender.send(note(target, **kw)) if protocols is None else sender.send(note(target, **kw), protocols=protocols)
    assert isinstance(outcome, SendResult)
    assert outcome.message, "every outcome says something"
    assert len(outcome.message) <= 500, len(outcome.message)
    assert outcome.ok is (outcome.outcome == "sent")
    return outcome


def answer(status: int, body: str | bytes = b"", content_type: str = "text/plain; charset=utf-8", **headers):
    """A handler that records nothing itself (the site records requests) and answers this."""
    head = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return lambda request: (status, head, body)


def form(request) -> dict[str, list[str]]:
    return parse_qs(request.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


def posts(site, path: str | None = None):
    return [r for r in site.requests if r.method == "POST" and (path is None or r.path == path)]


def wm_target(site, endpoint: str, how: str = "header", path: str = "/post") -> str:
    """A target page on ``site`` advertising the Webmention ``endpoint``."""
    if how == "header":
        return site.page(path, html(), headers={"Link": f"<{endpoint}>; rel=webmention"})
    if how == "link":
        return site.page(path, html(head=f'<link rel="webmention" href="{endpoint}">'))
    return site.page(path, html(body=f'<p>Send <a rel="webmention" href="{endpoint}">mentions</a>.</p>'))


class PingbackServer:
    """An XML-RPC server in a SourceSite handler: the stdlib parses the call and marshals the answer.

    ``reply(method, params)`` returns a value (the result), an ``xmlrpc.client.Fault``, or a raw
    ``(status, headers, body)`` triple.
    """

    def __init__(self, site, reply=lambda method, params: "Pingback registered. Thanks!", path="/xmlrpc.php"):
        self.calls: list[tuple[str, tuple]] = []
        self.reply = reply
        self.url = site.handler(path, self)

    def __call__(self, request):
        params, method = xmlrpc.client.loads(request.body)
        self.calls.append((method, params))
        result = self.reply(method, params)
        if isinstance(result, tuple) and len(result) == 3 and isinstance(result[0], int):
            return result
        if isinstance(result, xmlrpc.client.Fault):
            body = xmlrpc.client.dumps(result)
        else:
            body = xmlrpc.client.dumps((result,), methodresponse=True)
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, body


TB_OK = '<?xml version="1.0" encoding="utf-8"?><response><error>0</error></response>'
TB_SORRY = '<?xml version="1.0" encoding="utf-8"?><response><error>1</error><message>Sorry</message></response>'

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
"""


def xmlrpc_bomb() -> str:
    return BILLION_LAUGHS + ("<methodResponse><params><param><value><string>&lol9;</string></value>"
                             "</param></params></methodResponse>")


def xmlrpc_small_entity() -> str:
    """Harmless on its own: a parser that expands entities would read "EXPANDED" and call it a success."""
    return ('<?xml version="1.0"?>\n<!DOCTYPE methodResponse [<!ENTITY e "EXPANDED">]>\n'
            "<methodResponse><params><param><value><string>&e;</string></value></param></params></methodResponse>")


def xmlrpc_xxe() -> str:
    return XXE + ("<methodResponse><params><param><value><string>&xxe;</string></value>"
                  "</param></params></methodResponse>")


# =========================================================================== outbound_links


def test_outbound_links_a_and_area_in_order_each_once_without_fragments():
    page = """<p>First <a href="http://one.example/post">one</a>, then
    <a href="https://two.example/x?y=1&amp;z=2#comments">two</a>,
    <map><area href="http://map.example/region" shape="rect"></map>
    <a href="http://one.example/post#again">one again</a>
    <a href="https://two.example/x?y=1&z=2">two again</a>
    <a href="http://three.example/">three</a></p>"""
    assert outbound_links(page, "http://blog.test/2026/01/02/post/") == [
        "http://one.example/post",
        "https://two.example/x?y=1&z=2",
        "http://map.example/region",
        "http://three.example/",
    ]


def test_outbound_links_resolves_relative_hrefs_against_the_base():
    page = ('<a href="/about">a</a><a href="sibling/">b</a><a href="../up">c</a>'
            '<a href="?page=2">d</a><a href="//cdn.example/img">e</a><a href="  http://spaced.example/  ">f</a>')
    assert outbound_links(page, "https://blog.test/2026/01/post/") == [
        "https://blog.test/about",
        "https://blog.test/2026/01/post/sibling/",
        "https://blog.test/2026/01/up",
        "https://blog.test/2026/01/post/?page=2",
        "https://cdn.example/img",
        "http://spaced.example/",
    ]


def test_outbound_links_skips_what_is_not_an_http_page():
    page = """<a href="mailto:me@example.com">mail</a><a href="javascript:alert(1)">js</a>
    <a href="ftp://files.example/x">ftp</a><a href="#top">frag</a><a href="">empty</a><a>no href</a>
    <a href="tel:+123">tel</a><a href="data:text/html,hi">data</a>
    <a href="http://[oops/">bad ipv6</a>
    <link rel="stylesheet" href="http://css.example/s.css"><img src="http://img.example/i.png">
    <!-- <a href="http://commented.example/">not a link</a> -->
    <a href="http://kept.example/">kept</a>"""
    assert outbound_links(page, "http://blog.test/post/") == ["http://kept.example/"]


def test_outbound_links_one_page_however_spelled():
    page = ('<a href="http://x.example/a">1</a><a href="HTTP://X.EXAMPLE/a">2</a>'
            '<a href="http://x.example:80/a">3</a><a href="http://x.example/a#frag">4</a>'
            '<a href="http://x.example/A">other path</a><a href="http://x.example:8080/a">other port</a>')
    assert outbound_links(page, "http://blog.test/") == [
        "http://x.example/a", "http://x.example/A", "http://x.example:8080/a"]


def test_outbound_links_of_nothing():
    assert outbound_links("", "http://blog.test/") == []
    assert outbound_links(None, "http://blog.test/") == []
    assert outbound_links("<p>plain text, http://not-a-link.example/</p>", "http://blog.test/") == []


@pytest.mark.parametrize("url, bare", [
    ("http://x/", True),
    ("http://x", True),
    ("https://x.example:8443/", True),
    ("http://x/#top", True),
    ("http://x/?p=1", False),
    ("http://x/a", False),
    ("http://x/a/", False),
    ("http://x/index.html", False),
])
def test_is_bare_home_page(url, bare):
    assert is_bare_home_page(url) is bare


# =========================================================================== GuardedFetcher.post


def test_post_sends_the_body_and_headers_and_returns_any_status(site, net):
    site.handler("/api", answer(404, '{"error": "no such post"}', "application/json"))
    result = local(user_agent="blogapp-test/1").post(site.url + "/api?x=1", b"a=1&b=%C3%A9", content_type=FORM,
                                                     accept="application/json", headers={"X-Extra": "yes"})
    assert (result.status, result.content_type, result.body) == (404, "application/json", b'{"error": "no such post"}')
    assert result.url == site.url + "/api?x=1" and result.redirects == [] and not result.truncated
    [request] = site.requests
    assert (request.method, request.path, request.body) == ("POST", "/api?x=1", b"a=1&b=%C3%A9")
    assert request.headers["Content-Type"] == FORM
    assert request.headers["Content-Length"] == str(len(b"a=1&b=%C3%A9"))
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == "blogapp-test/1"
    assert request.headers["X-Extra"] == "yes"
    assert net.attempts == [("127.0.0.1", site.port)]


@pytest.mark.parametrize("status", [307, 308])
def test_post_follows_307_and_308_with_the_same_body(site, other_site, status):
    site.redirect("/a", "b", status=status)  # relative
    site.redirect("/b", other_site.url + "/c", status=status)  # another host
    other_site.handler("/c", answer(202, "queued"))
    result = local().post(site.url + "/a", b"source=s&target=t", content_type=FORM)
    assert (result.status, result.body, result.url) == (202, b"queued", other_site.url + "/c")
    assert result.redirects == [site.url + "/a", site.url + "/b"]
    hops = posts(site) + posts(other_site)
    assert [r.path for r in hops] == ["/a", "/b", "/c"]
    assert all(r.body == b"source=s&target=t" and r.headers["Content-Type"] == FORM for r in hops)
    assert site.requests == posts(site)  # no GET anywhere


@pytest.mark.parametrize("status", [301, 302, 303])
def test_post_returns_other_redirects_as_they_are(site, status):
    site.redirect("/a", "/b", status=status)
    site.handler("/b", answer(200, "should not be reached"))
    result = local().post(site.url + "/a", b"x=1", content_type=FORM)
    assert result.status == status
    assert result.headers["location"] == "/b"
    assert [(r.method, r.path) for r in site.requests] == [("POST", "/a")]


def test_post_redirect_limit(site):
    site.redirect("/loop", "/loop", status=307)
    with pytest.raises(FetchError, match="redirect"):
        local(max_redirects=3).post(site.url + "/loop", b"x=1", content_type=FORM)
    assert len(posts(site)) == 4


def test_post_redirect_into_private_space_is_refused_before_connecting(site, net):
    site.redirect("/wm", "http://169.254.169.254/latest/meta-data/", status=307)
    with pytest.raises(FetchError) as info:
        local().post(site.url + "/wm", b"x=1", content_type=FORM)
    assert info.value.refused
    assert net.attempts == [("127.0.0.1", site.port)]


def test_post_to_loopback_without_the_allowlist_sends_nothing(site, net):
    site.handler("/wm", answer(202))
    with pytest.raises(FetchError) as info:
        guarded().post(site.url + "/wm", b"x=1", content_type=FORM)
    assert info.value.refused and not info.value.transient
    assert "loopback" in info.value.message
    assert site.requests == [] and net.attempts == []


def test_post_answer_is_cut_at_max_bytes(site):
    site.huge("/wm", 50 * MB, content_type="application/octet-stream")
    started = time.monotonic()
    result = local(max_bytes=100_000).post(site.url + "/wm", b"x=1", content_type=FORM)
    assert time.monotonic() - started < 3
    assert (result.status, len(result.body), result.truncated) == (200, 100_000, True)
    request = site.requests[-1]
    assert request.done.wait(2) and request.disconnected
    assert request.bytes_sent < 10 * MB


def test_post_answer_is_decompressed(site):
    site.handler("/wm", lambda r: (400, {"Content-Type": "text/plain", "Content-Encoding": "gzip"},
                                   gzip.compress(b"bad source")))
    result = local().post(site.url + "/wm", b"x=1", content_type=FORM)
    assert (result.status, result.body) == (400, b"bad source")


def test_post_that_is_never_answered_ends_at_the_deadline(site):
    site.slow("/wm", body=b"", chunk_delay=30, chunks=1, content_type="text/plain")
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        local(deadline=0.5).post(site.url + "/wm", b"x=1", content_type=FORM)
    assert time.monotonic() - started < 2
    assert info.value.transient and not info.value.refused


# =========================================================================== Webmention


@pytest.mark.parametrize("how", ["header", "link", "a"])
def test_webmention_sent_with_exactly_source_and_target(site, net, how):
    site.handler("/webmention", answer(201, "", Location="/webmention/status/42"))
    target = wm_target(site, "/webmention", how)
    outcome = send(target)
    assert (outcome.outcome, outcome.protocol, outcome.endpoint, outcome.code) == (
        "sent", "webmention", site.url + "/webmention", 201)
    assert site.url + "/webmention/status/42" in outcome.message
    assert not outcome.transient and outcome.ok
    assert [(r.method, r.path) for r in site.requests] == [("GET", "/post"), ("POST", "/webmention")]
    request = site.requests[1]
    assert request.headers["Content-Type"] == FORM
    assert form(request) == {"source": [SOURCE], "target": [target]}
    assert net.attempts == [("127.0.0.1", site.port)] * 2


def test_webmention_endpoint_on_another_host_with_a_query(site, other_site):
    other_site.handler("/hook", answer(202, "Accepted"))
    target = wm_target(site, other_site.url + "/hook?token=abc&amp;v=2", "link")
    outcome = send(target)
    assert (outcome.outcome, outcome.code, outcome.endpoint) == ("sent", 202, other_site.url + "/hook?token=abc&v=2")
    [request] = posts(other_site)
    assert request.path == "/hook?token=abc&v=2"
    assert form(request) == {"source": [SOURCE], "target": [target]}
    assert posts(site) == []


def test_webmention_form_encodes_non_ascii_urls(site):
    site.handler("/wm", answer(202))
    target = wm_target(site, "/wm", path="/caf%C3%A9/post")
    source = "http://blog.test/2026/01/02/na\u00efve/?a=1&b=2"
    outcome = send(target, source=source)
    assert outcome.outcome == "sent"
    assert form(posts(site)[0]) == {"source": [source], "target": [target]}


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_webmention_any_2xx_is_sent(site, status):
    site.handler("/wm", answer(status))
    outcome = send(wm_target(site, "/wm"))
    assert (outcome.outcome, outcome.code, outcome.transient) == ("sent", status, False)
    assert str(status) in outcome.message
    assert "Status:" not in outcome.message  # no Location, no status page named


def test_webmention_400_says_why(site):
    site.handler("/wm", answer(400, "Source does not link to target"))
    outcome = send(wm_target(site, "/wm"))
    assert (outcome.outcome, outcome.protocol, outcome.code, outcome.transient) == ("failed", "webmention", 400, False)
    assert "Source does not link to target" in outcome.message
    assert "400" in outcome.message


def test_webmention_html_error_page_is_read_as_text(site):
    site.handler("/wm", answer(400, "<html><head><style>p{color:red}</style></head><body><h1>Bad request</h1>"
                                    "<p>Target is not a valid post</p></body></html>", "text/html; charset=utf-8"))
    outcome = send(wm_target(site, "/wm"))
    assert outcome.outcome == "failed" and outcome.code == 400
    assert "Target is not a valid post" in outcome.message
    assert "<h1>" not in outcome.message and "<p>" not in outcome.message


def test_webmention_error_without_a_body(site):
    site.handler("/wm", answer(403))
    outcome = send(wm_target(site, "/wm"))
    assert (outcome.outcome, outcome.code, outcome.transient) == ("failed", 403, False)
    assert outcome.message.strip() == "HTTP 403"


@pytest.mark.parametrize("status, transient", [(404, False), (410, False), (422, False),
                                               (429, True), (500, True), (502, True), (503, True)])
def test_webmention_error_statuses_and_whether_to_retry(site, status, transient):
    site.handler("/wm", answer(status, "nope"))
    outcome = send(wm_target(site, "/wm"))
    assert (outcome.outcome, outcome.code, outcome.transient) == ("failed", status, transient)


@pytest.mark.parametrize("status", [307, 308])
def test_webmention_endpoint_redirect_307_308_is_followed_with_the_same_post(site, status):
    site.redirect("/wm", "/wm/v2", status=status)
    site.handler("/wm/v2", answer(201, "", Location="status/7"))
    outcome = send(wm_target(site, "/wm"))
    assert (outcome.outcome, outcome.code, outcome.endpoint) == ("sent", 201, site.url + "/wm")
    assert site.url + "/wm/status/7" in outcome.message  # resolved against the URL that answered
    first, second = posts(site)
    assert (first.path, second.path) == ("/wm", "/wm/v2")
    assert first.body == second.body and form(second) == {"source": [SOURCE], "target": [site.url + "/post"]}
    assert second.headers["Content-Type"] == FORM


@pytest.mark.parametrize("status", [301, 302, 303])
def test_webmention_endpoint_redirect_302_is_not_followed(site, status):
    site.redirect("/wm", "/wm/v2", status=status)
    site.handler("/wm/v2", answer(202))
    outcome = send(wm_target(site, "/wm"))
    assert (outcome.outcome, outcome.code, outcome.transient) == ("failed", status, False)
    assert [(r.method, r.path) for r in site.requests] == [("GET", "/post"), ("POST", "/wm")]


def test_webmention_endpoint_redirect_loop(site):
    site.redirect("/wm", "/wm", status=307)
    outcome = send(wm_target(site, "/wm"))
    assert outcome.outcome == "failed" and "redirect" in outcome.message
    assert len(posts(site)) == 6  # max_redirects (5) + 1


def test_webmention_endpoint_that_never_answers_is_transient(site):
    site.slow("/wm", body=b"", chunk_delay=30, chunks=1, content_type="text/plain")
    target = wm_target(site, "/wm")
    started = time.monotonic()
    outcome = send(target, local(deadline=0.5))
    assert time.monotonic() - started < 2
    assert (outcome.outcome, outcome.protocol, outcome.transient) == ("failed", "webmention", True)


def test_webmention_endpoint_that_is_down_is_transient(site, other_site):
    endpoint = other_site.url + "/wm"
    other_site.close()  # nothing listens there any more
    outcome = send(wm_target(site, endpoint))
    assert (outcome.outcome, outcome.endpoint, outcome.transient) == ("failed", endpoint, True)


def test_webmention_huge_answer_is_cut_and_does_not_hang(site):
    site.huge("/wm", 50 * MB, content_type="text/plain")
    started = time.monotonic()
    outcome = send(wm_target(site, "/wm"), local(max_bytes=100_000))
    assert time.monotonic() - started < 3
    assert (outcome.outcome, outcome.code) == ("sent", 200)
    request = posts(site)[0]
    assert request.done.wait(2) and request.disconnected and request.bytes_sent < 10 * MB


def test_webmention_from_the_link_header_of_a_non_html_target(site):
    site.handler("/wm", answer(202))
    target = site.page("/photo.jpg", b"\xff\xd8\xff\xe0 jpeg", content_type="image/jpeg",
                       headers={"Link": "</wm>; rel=webmention"})
    outcome = send(target)
    assert (outcome.outcome, outcome.endpoint) == ("sent", site.url + "/wm")
    assert form(posts(site)[0])["target"] == [target]


# =========================================================================== pingback


@pytest.mark.parametrize("how", ["header", "link"])
def test_pingback_sent_through_xml_rpc(site, how):
    server = PingbackServer(site)
    if how == "header":
        target = site.page("/post", html(), headers={"X-Pingback": server.url})
    else:
        target = site.page("/post", html(head=f'<link rel="pingback" href="{server.url}">'))
    outcome = send(target)
    assert (outcome.outcome, outcome.protocol, outcome.endpoint, outcome.transient) == (
        "sent", "pingback", server.url, False)
    assert "Pingback registered. Thanks!" in outcome.message
    assert server.calls == [("pingback.ping", (SOURCE, target))]
    [request] = posts(site)
    assert request.path == "/xmlrpc.php"
    assert request.headers["Content-Type"].startswith("text/xml")
    assert [(r.method, r.path) for r in site.requests] == [("GET", "/post"), ("POST", "/xmlrpc.php")]


def test_pingback_fault_17_fails_with_its_text(site):
    server = PingbackServer(site, lambda m, p: xmlrpc.client.Fault(17, "The source URL does not contain a link to the target URL"))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert (outcome.outcome, outcome.protocol, outcome.code, outcome.transient) == ("failed", "pingback", 17, False)
    assert "The source URL does not contain a link to the target URL" in outcome.message
    assert len(server.calls) == 1


def test_pingback_fault_48_already_registered_counts_as_sent(site):
    server = PingbackServer(site, lambda m, p: xmlrpc.client.Fault(48, "The pingback has already been registered."))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert (outcome.outcome, outcome.code, outcome.transient) == ("sent", 48, False)
    assert "already been registered" in outcome.message


@pytest.mark.parametrize("status, transient", [(503, True), (500, True), (429, True), (404, False), (403, False)])
def test_pingback_http_error(site, status, transient):
    server = PingbackServer(site, lambda m, p: (status, {"Content-Type": "text/plain"}, "Service down for maintenance"))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert (outcome.outcome, outcome.protocol, outcome.code, outcome.transient) == ("failed", "pingback", status, transient)
    assert str(status) in outcome.message


@pytest.mark.parametrize("body, content_type", [
    ("XML-RPC server accepts POST requests only.", "text/plain"),
    ("<html><body><h1>Hello</h1></body></html>", "text/html"),  # well-formed, yet not XML-RPC
    ("<methodResponse><params><param><value><string>unclosed", "text/xml"),
    ("", "text/xml"),
])
def test_pingback_answer_that_is_not_xml_rpc(site, body, content_type):
    server = PingbackServer(site, lambda m, p: (200, {"Content-Type": content_type}, body))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert (outcome.outcome, outcome.protocol, outcome.transient) == ("failed", "pingback", False)
    assert "not a valid XML-RPC response" in outcome.message


@pytest.mark.parametrize("evil", [xmlrpc_bomb, xmlrpc_xxe, xmlrpc_small_entity], ids=["billion-laughs", "xxe", "entity"])
def test_pingback_answer_with_entities_is_refused_unexpanded(site, evil):
    server = PingbackServer(site, lambda m, p: (200, {"Content-Type": "text/xml"}, evil()))
    started = time.monotonic()
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert time.monotonic() - started < 2
    assert (outcome.outcome, outcome.protocol, outcome.transient) == ("failed", "pingback", False)
    assert "lollol" not in outcome.message and "root:" not in outcome.message and "EXPANDED" not in outcome.message


MALFORMED_XML_RPC = {
    "fault-without-value": "<methodResponse><fault></fault></methodResponse>",
    "struct-member-without-name": ("<methodResponse><params><param><value><struct><member><value><string>x</string>"
                                   "</value></member></struct></value></param></params></methodResponse>"),
    "bigdecimal-not-a-number": ("<methodResponse><params><param><value><bigdecimal>abc</bigdecimal></value>"
                                "</param></params></methodResponse>"),
}


@pytest.mark.parametrize("body", MALFORMED_XML_RPC.values(), ids=MALFORMED_XML_RPC.keys())
def test_pingback_malformed_xml_rpc_answer_is_an_outcome_not_an_exception(site, body):
    server = PingbackServer(site, lambda m, p: (200, {"Content-Type": "text/xml"}, "<?xml version='1.0'?>" + body))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert (outcome.outcome, outcome.protocol) == ("failed", "pingback")
    assert "not a valid XML-RPC response" in outcome.message


def test_pingback_answer_without_a_value_is_not_success(site):
    empty = "<?xml version='1.0'?><methodResponse><params></params></methodResponse>"
    server = PingbackServer(site, lambda m, p: (200, {"Content-Type": "text/xml"}, empty))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert outcome.outcome == "failed" and "no value" in outcome.message


def test_whitespace_before_the_xml_declaration_is_tolerated(site):
    """PHP sites often print a newline before ``<?xml``; WordPress's client trims it, so do we."""
    answer = "\n\n  " + xmlrpc.client.dumps(("Registered.",), methodresponse=True)
    server = PingbackServer(site, lambda m, p: (200, {"Content-Type": "text/xml"}, answer))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert (outcome.outcome, outcome.message) == ("sent", "Registered.")
    site.handler("/tb", lambda request: (200, {"Content-Type": "text/xml"},
                                         '\n <?xml version="1.0" encoding="utf-8"?><response><error>0</error></response>'))
    outcome = send(site.page("/tb-post", f'<html><body><link rel="trackback" href="{site.url}/tb"></body></html>'))
    assert (outcome.outcome, outcome.protocol) == ("sent", "trackback")


def test_pingback_huge_answer_is_cut_and_refused(site):
    site.huge("/xmlrpc", 50 * MB, prefix=b"<?xml version='1.0'?><methodResponse><params><param><value><string>",
              content_type="text/xml")
    target = site.page("/post", html(), headers={"X-Pingback": site.url + "/xmlrpc"})
    started = time.monotonic()
    outcome = send(target, local(max_bytes=100_000))
    assert time.monotonic() - started < 3
    assert (outcome.outcome, outcome.protocol) == ("failed", "pingback")
    request = posts(site)[0]
    assert request.done.wait(2) and request.disconnected and request.bytes_sent < 10 * MB


def test_pingback_answer_over_max_bytes_is_not_trusted_even_if_its_start_parses(site):
    valid = xmlrpc.client.dumps(("Registered",), methodresponse=True).encode()
    server = PingbackServer(site, lambda m, p: (200, {"Content-Type": "text/xml"}, valid + b" " * 200_000))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}), local(max_bytes=100_000))
    assert (outcome.outcome, outcome.protocol) == ("failed", "pingback")
    assert "larger" in outcome.message
    # the same answer within the cap is a success: the size is what made the difference
    assert send(site.url + "/post").outcome == "sent"


def test_pingback_fault_text_is_capped(site):
    server = PingbackServer(site, lambda m, p: xmlrpc.client.Fault(0, "why " * 5000))
    outcome = send(site.page("/post", html(), headers={"X-Pingback": server.url}))
    assert outcome.outcome == "failed" and outcome.code == 0
    assert outcome.message.startswith("Fault 0: why why")


def test_pingback_server_that_never_answers_is_transient(site):
    site.slow("/xmlrpc", body=b"", chunk_delay=30, chunks=1, content_type="text/xml")
    target = site.page("/post", html(), headers={"X-Pingback": site.url + "/xmlrpc"})
    started = time.monotonic()
    outcome = send(target, local(deadline=0.5))
    assert time.monotonic() - started < 2
    assert (outcome.outcome, outcome.protocol, outcome.transient) == ("failed", "pingback", True)


# =========================================================================== trackback


TITLE = "Caf\u00e9 \u2014 na\u00efve \u65e5\u672c"


@pytest.mark.parametrize("how", ["rdf", "link"])
def test_trackback_sent_with_its_form(site, how):
    site.handler("/post/trackback/", answer(200, TB_OK, "text/xml; charset=utf-8"))
    permalink = site.url + "/post/"
    if how == "rdf":
        site.page("/post/", html(body="<article>Theirs</article>" + wordpress_rdf(permalink, permalink + "trackback/")))
    else:
        site.page("/post/", html(head='<link rel="trackback" href="trackback/">'))
    outcome = send(permalink, title=TITLE, excerpt="An excerpt & <more>", blog_name="A SMART PRACTICE")
    assert (outcome.outcome, outcome.protocol, outcome.endpoint, outcome.code) == (
        "sent", "trackback", permalink + "trackback/", 200)
    [request] = posts(site)
    assert request.path == "/post/trackback/"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert form(request) == {"title": [TITLE], "url": [SOURCE], "excerpt": ["An excerpt & <more>"],
                             "blog_name": ["A SMART PRACTICE"]}
    assert b"Caf%C3%A9" in request.body  # UTF-8 percent-encoded


def test_trackback_refusal_says_why(site):
    site.handler("/tb", answer(200, TB_SORRY, "text/xml"))
    outcome = send(site.page("/post", html(head='<link rel="trackback" href="/tb">')))
    assert (outcome.outcome, outcome.protocol, outcome.code, outcome.transient) == ("failed", "trackback", 200, False)
    assert "Sorry" in outcome.message


def test_trackback_refusal_without_a_message(site):
    site.handler("/tb", answer(200, "<response><error>1</error></response>", "text/xml"))
    outcome = send(site.page("/post", html(head='<link rel="trackback" href="/tb">')))
    assert outcome.outcome == "failed"


@pytest.mark.parametrize("body", [
    "<html><body>Thanks!</body>",  # not well-formed
    "OK",
    "",
    BILLION_LAUGHS + "<response><error>0</error><message>&lol9;</message></response>",
    XXE + "<response><error>0</error><message>&xxe;</message></response>",
    '<!DOCTYPE response [<!ENTITY ok "0">]><response><error>&ok;</error></response>',  # expanded, it would pass
])
def test_trackback_answer_that_is_not_trackback_xml(site, body):
    site.handler("/tb", answer(200, body, "text/xml"))
    started = time.monotonic()
    outcome = send(site.page("/post", html(head='<link rel="trackback" href="/tb">')))
    assert time.monotonic() - started < 2
    assert (outcome.outcome, outcome.protocol) == ("failed", "trackback")
    assert "lollol" not in outcome.message and "root:" not in outcome.message


@pytest.mark.parametrize("status, transient", [(500, True), (503, True), (404, False)])
def test_trackback_http_error(site, status, transient):
    site.handler("/tb", answer(status, "down"))
    outcome = send(site.page("/post", html(head='<link rel="trackback" href="/tb">')))
    assert (outcome.outcome, outcome.code, outcome.transient) == ("failed", status, transient)


def test_trackback_long_refusal_is_capped(site):
    site.handler("/tb", answer(200, f"<response><error>1</error><message>{'no ' * 5000}</message></response>", "text/xml"))
    outcome = send(site.page("/post", html(head='<link rel="trackback" href="/tb">')))
    assert outcome.outcome == "failed" and "no no" in outcome.message


# =========================================================================== preference and protocols


def test_webmention_is_preferred_no_xml_rpc_request_is_made(site):
    server = PingbackServer(site)
    site.handler("/wm", answer(202))
    site.handler("/tb", answer(200, TB_OK, "text/xml"))
    target = site.page("/post", html(head=f'<link rel="pingback" href="{server.url}"><link rel="trackback" href="/tb">'),
                       headers={"Link": "</wm>; rel=webmention", "X-Pingback": server.url})
    outcome = send(target)
    assert (outcome.outcome, outcome.protocol) == ("sent", "webmention")
    assert [(r.method, r.path) for r in site.requests] == [("GET", "/post"), ("POST", "/wm")]
    assert server.calls == []


def test_pingback_is_preferred_to_trackback(site):
    server = PingbackServer(site)
    site.handler("/tb", answer(200, TB_OK, "text/xml"))
    target = site.page("/post", html(head=f'<link rel="trackback" href="/tb"><link rel="pingback" href="{server.url}">'))
    outcome = send(target)
    assert (outcome.outcome, outcome.protocol) == ("sent", "pingback")
    assert [r.path for r in posts(site)] == ["/xmlrpc.php"]


def test_a_protocol_not_wanted_is_skipped_and_nothing_is_posted(site):
    server = PingbackServer(site)
    target = site.page("/post", html(), headers={"X-Pingback": server.url})
    outcome = send(target, protocols=("webmention",))
    assert (outcome.outcome, outcome.protocol, outcome.endpoint, outcome.code) == ("skipped", "pingback", server.url, None)
    assert not outcome.ok and not outcome.transient
    assert [(r.method, r.path) for r in site.requests] == [("GET", "/post")]
    assert server.calls == []


def test_a_wanted_protocol_is_sent(site):
    server = PingbackServer(site)
    target = site.page("/post", html(), headers={"X-Pingback": server.url})
    assert send(target, protocols=("pingback",)).outcome == "sent"
    assert len(server.calls) == 1


# =========================================================================== the target itself


def test_a_page_with_no_endpoint(site):
    target = site.page("/post", html(head='<link rel="stylesheet" href="/s.css">',
                                     body='<a href="/webmention">webmention</a> X-Pingback'))
    outcome = send(target)
    assert (outcome.outcome, outcome.protocol, outcome.endpoint, outcome.code) == ("no-endpoint", None, None, None)
    assert not outcome.transient
    assert [(r.method, r.path) for r in site.requests] == [("GET", "/post")]


@pytest.mark.parametrize("status, transient", [(404, False), (410, False), (403, False),
                                               (500, True), (503, True), (429, True)])
def test_a_target_that_answers_an_error(site, status, transient):
    target = site.page("/post", html(head='<link rel="webmention" href="/wm">'), status=status,
                       headers={"Link": "</wm>; rel=webmention"})
    site.handler("/wm", answer(202))
    outcome = send(target)
    assert (outcome.outcome, outcome.protocol, outcome.code, outcome.transient) == ("failed", None, status, transient)
    assert str(status) in outcome.message
    assert posts(site) == []


def test_a_target_that_times_out_is_transient(site):
    target = site.slow("/post", chunk_delay=0.3, chunks=20)
    started = time.monotonic()
    outcome = send(target, local(deadline=0.5))
    assert time.monotonic() - started < 2
    assert (outcome.outcome, outcome.code, outcome.transient) == ("failed", None, True)
    assert posts(site) == []


def test_a_target_the_guard_refuses_is_never_contacted(site, net):
    target = wm_target(site, "/wm")
    outcome = send(target, guarded())
    assert (outcome.outcome, outcome.transient) == ("failed", False)
    assert "loopback" in outcome.message
    assert site.requests == [] and net.attempts == []


@pytest.mark.parametrize("target", ["not a url", "ftp://files.example/post", "http://nowhere.invalid/post"])
def test_a_bad_target_url_fails_without_raising(net, target):
    outcome = send(target)
    assert outcome.outcome == "failed"
    assert net.attempts == []


# =========================================================================== SSRF: endpoints we must not reach


PRIVATE_ENDPOINTS = [
    "http://10.0.0.5/webmention",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:1/",
    "http://[::ffff:10.0.0.5]/",
    "http://192.168.1.1:8080/xmlrpc.php",
    "http://internal.example/hook",  # a name that resolves inside
    "http://localhost:1/",  # 127.0.0.1 is allowlisted here, but ::1 is not: refused
]


@pytest.mark.parametrize("endpoint", PRIVATE_ENDPOINTS)
@pytest.mark.parametrize("protocol", ["webmention", "pingback", "trackback"])
def test_an_endpoint_at_a_private_address_is_refused_without_connecting(site, net, protocol, endpoint):
    net.names["internal.example"] = ["10.0.0.5"]
    if protocol == "webmention":
        target = wm_target(site, endpoint)
    elif protocol == "pingback":
        target = site.page("/post", html(), headers={"X-Pingback": endpoint})
    else:
        target = site.page("/post", html(head=f'<link rel="trackback" href="{endpoint}">'))
    outcome = send(target)
    assert (outcome.outcome, outcome.protocol, outcome.endpoint, outcome.transient) == ("failed", protocol, endpoint, False)
    assert "not fetched" in outcome.message
    assert net.attempts == [("127.0.0.1", site.port)]  # the target page, and nothing else
    assert [(r.method, r.path) for r in site.requests] == [("GET", "/post")]


@pytest.mark.parametrize("protocol", ["webmention", "pingback", "trackback"])
def test_production_guard_refuses_an_endpoint_on_loopback(site, net, protocol):
    """The target is a pretend public host (routed to the SourceSite); its endpoint says 127.0.0.1."""
    net.names["public.example"] = [PUBLIC_IP]
    net.route((PUBLIC_IP, 80), site)
    endpoint = site.url + "/endpoint"  # really listening: only the guard stands in the way
    site.handler("/endpoint", answer(202))
    if protocol == "webmention":
        site.page("/post", html(), headers={"Link": f"<{endpoint}>; rel=webmention"})
    elif protocol == "pingback":
        site.page("/post", html(), headers={"X-Pingback": endpoint})
    else:
        site.page("/post", html(head=f'<link rel="trackback" href="{endpoint}">'))
    outcome = send("http://public.example/post", guarded())
    assert (outcome.outcome, outcome.protocol, outcome.endpoint) == ("failed", protocol, endpoint)
    assert "loopback" in outcome.message
    assert net.attempts == [(PUBLIC_IP, 80)]
    assert [(r.method, r.path) for r in site.requests] == [("GET", "/post")]


def test_production_guard_sends_to_a_public_endpoint(site, net):
    """The same path with a public endpoint goes through: the refusal above is the guard's doing."""
    net.names["public.example"] = [PUBLIC_IP]
    net.route((PUBLIC_IP, 80), site)
    site.handler("/endpoint", answer(202))
    site.page("/post", html(), headers={"Link": "<http://public.example/endpoint>; rel=webmention"})
    outcome = send("http://public.example/post", guarded())
    assert (outcome.outcome, outcome.code) == ("sent", 202)
    assert posts(site)[0].headers["Host"] == "public.example"
    assert net.attempts == [(PUBLIC_IP, 80)] * 2


def test_webmention_endpoint_redirecting_into_private_space_is_refused(site, net):
    site.redirect("/wm", "http://10.0.0.5/internal", status=307)
    outcome = send(wm_target(site, "/wm"))
    assert (outcome.outcome, outcome.transient) == ("failed", False)
    assert "not fetched" in outcome.message
    assert net.attempts == [("127.0.0.1", site.port)] * 2


def test_pingback_server_redirecting_into_private_space_is_refused(site, net):
    site.redirect("/xmlrpc", "http://[fd00::1]/xmlrpc", status=308)
    outcome = send(site.page("/post", html(), headers={"X-Pingback": site.url + "/xmlrpc"}))
    assert (outcome.outcome, outcome.protocol) == ("failed", "pingback")
    assert net.attempts == [("127.0.0.1", site.port)] * 2


# =========================================================================== messages stay short


def test_messages_are_short_whatever_the_answer(site):
    long_location = "/status/" + "x" * 3000
    site.handler("/wm-ok", answer(201, "", Location=long_location))
    site.handler("/wm-bad", answer(400, "bad " * 50_000))
    site.handler("/tb", answer(200, f"<response><error>1</error><message>{'m' * 10_000}</message></response>", "text/xml"))
    server = PingbackServer(site, lambda m, p: "ok " * 10_000)
    pages = {
        "/a": dict(headers={"Link": "</wm-ok>; rel=webmention"}),
        "/b": dict(headers={"Link": "</wm-bad>; rel=webmention"}),
        "/c": dict(headers={"X-Pingback": server.url}),
        "/d": dict(head='<link rel="trackback" href="/tb">'),
    }
    outcomes = []
    for path, spec in pages.items():
        target = site.page(path, html(head=spec.get("head", "")), headers=spec.get("headers"))
        outcomes.append(send(target))  # send() checks len(message) <= 500
    assert [o.outcome for o in outcomes] == ["sent", "failed", "sent", "failed"]
    assert all(len(o.message) <= 500 for o in outcomes)
    assert outcomes[0].message.endswith("…") and outcomes[1].message.endswith("…")
