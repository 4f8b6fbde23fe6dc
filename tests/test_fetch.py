"""The guarded fetcher (blogapp.linkback.fetch) against real HTTP servers on 127.0.0.1.

No test here ever reaches past loopback. The ``net`` fixture (autouse) stands between every test
and the network: every connection attempt (``socket.socket.connect``/``connect_ex`` and
``socket.create_connection``) is recorded, loopback ones go through, any other address is
refused with ``OSError("blocked by test")`` before a packet is sent, unless a test routes that
address to one of its SourceSites on 127.0.0.1 (a pretend public host). ``socket.getaddrinfo``
is replaced by a fake resolver: names a test declares, ``localhost``, numeric hosts; any other
name does not resolve, so no DNS query leaves the machine either.
"""
from __future__ import annotations

import gzip
import re
import socket
import time
import tracemalloc
import zlib
from collections import Counter

import pytest

from blogapp.linkback.fetch import FetchError, FetchPolicy, GuardedFetcher
from netfence import Net

PUBLIC_IP = "93.184.216.34"  # a public address; never contacted: refused or routed to 127.0.0.1
OTHER_PUBLIC_IP = "93.184.216.35"
MB = 1_000_000


# --------------------------------------------------------------------------- the network fence


@pytest.fixture(autouse=True)
def net(monkeypatch):
    fence = Net()
    fence.install(monkeypatch)
    return fence


def local(**settings) -> GuardedFetcher:
    """A fetcher that may fetch from 127.0.0.0/8 (where the SourceSites are), any port."""
    settings.setdefault("deadline", 5.0)
    return GuardedFetcher(FetchPolicy.from_settings(allowlist=["127.0.0.0/8"], **settings))


def guarded(**settings) -> GuardedFetcher:
    """The production guard: no allowlist."""
    return GuardedFetcher(FetchPolicy(**settings))


def refused(fetcher: GuardedFetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetcher.fetch(url)
    assert info.value.refused, info.value.message
    return info.value


def failed(fetcher: GuardedFetcher, url: str, **kwargs) -> FetchError:
    """Not fetched, but not because the guard said no."""
    with pytest.raises(FetchError) as info:
        fetcher.fetch(url, **kwargs)
    assert not info.value.refused, info.value.message
    return info.value


def test_the_fence_itself(net):
    """The fence refuses non-loopback connections before sending, by every route."""
    with pytest.raises(OSError, match="blocked by test"):
        socket.create_connection(("10.0.0.1", 80), timeout=1)
    with socket.socket() as sock, pytest.raises(OSError, match="blocked by test"):
        sock.connect((PUBLIC_IP, 80))
    with socket.socket() as sock, pytest.raises(OSError, match="blocked by test"):
        sock.connect_ex(("169.254.169.254", 80))
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 80)
    assert net.attempts == [("10.0.0.1", 80), (PUBLIC_IP, 80), ("169.254.169.254", 80)]


# --------------------------------------------------------------------------- fetching pages


def test_fetches_an_html_page(source_site, net):
    url = source_site.page("/post?id=7", "<html><body><p>Café</p></body></html>",
                           content_type="text/html; charset=ISO-8859-1", encoding="iso-8859-1",
                           headers={"X-Pingback": "http://them.test/xmlrpc", "Link": "<http://x.test/>; rel=webmention"})
    result = local().fetch(url)
    assert result.status == 200
    assert result.url == url
    assert result.redirects == []
    assert result.body == "<html><body><p>Café</p></body></html>".encode("iso-8859-1")
    assert result.truncated is False
    assert result.content_type == "text/html"
    assert result.charset == "ISO-8859-1"
    assert result.headers["x-pingback"] == "http://them.test/xmlrpc"  # header names lower-cased
    assert result.headers["link"] == "<http://x.test/>; rel=webmention"
    assert [(r.method, r.path) for r in source_site.requests] == [("GET", "/post?id=7")]
    assert net.attempts == [("127.0.0.1", source_site.port)]


@pytest.mark.parametrize("content_type, kind, charset", [
    ("text/html", "text/html", None),
    ('text/html; charset="UTF-8"', "text/html", "UTF-8"),
    ("TEXT/HTML;CHARSET=Shift_JIS", "text/html", "Shift_JIS"),
    ("text/html; q=1; charset='koi8-r'", "text/html", "koi8-r"),
    ("application/xhtml+xml; charset=utf-8", "application/xhtml+xml", "utf-8"),
    ("text/html; charset=", "text/html", None),
])
def test_html_types_and_charsets(source_site, content_type, kind, charset):
    result = local().fetch(source_site.page("/p", "<html></html>", content_type=content_type))
    assert (result.content_type, result.charset) == (kind, charset)


def test_user_agent_and_extra_headers_reach_the_server(source_site):
    url = source_site.page("/p", "<html></html>")
    fetcher = local(user_agent="blogapp/1.0 (+http://blog.test/)")
    fetcher.fetch(url, headers={"X-Linkback-Check": "yes", "Referer": "http://blog.test/post"})
    request = source_site.requests[-1]
    assert request.method == "GET"
    assert request.body == b""
    assert request.headers["User-Agent"] == "blogapp/1.0 (+http://blog.test/)"
    assert request.headers["x-linkback-check"] == "yes"
    assert request.headers["Referer"] == "http://blog.test/post"
    assert request.headers["Host"] == f"127.0.0.1:{source_site.port}"
    assert "text/html" in request.headers["Accept"]
    assert "Proxy-Authorization" not in request.headers and "Cookie" not in request.headers


def test_caller_headers_override_the_defaults(source_site):
    url = source_site.page("/p", "<html></html>")
    local().fetch(url, headers={"User-Agent": "special"})
    assert source_site.requests[-1].headers["User-Agent"] == "special"


def test_follows_redirects_relative_and_absolute(source_site):
    site = source_site
    site.redirect("/a/start", site.url + "/a/one", status=301)  # absolute
    site.redirect("/a/one", "two")  # relative to /a/
    site.redirect("/a/two", "../b/three?x=1", status=303)
    site.redirect("/b/three", f"//127.0.0.1:{site.port}/b/four", status=307)  # scheme-relative
    site.redirect("/b/four", "/final#frag", status=308)  # absolute path
    final = site.page("/final", "<html>done</html>")
    result = local().fetch(site.url + "/a/start")
    assert result.url.split("#")[0] == final
    assert result.body == b"<html>done</html>"
    assert result.redirects == [site.url + p for p in ("/a/start", "/a/one", "/a/two", "/b/three?x=1", "/b/four")]
    assert [r.path for r in site.requests] == ["/a/start", "/a/one", "/a/two", "/b/three?x=1", "/b/four", "/final"]


def test_follows_a_redirect_to_another_host(source_site, second_site, net):
    target = second_site.page("/there", "<html>there</html>")
    result = local().fetch(source_site.redirect("/here", target))
    assert result.url == target and result.body == b"<html>there</html>"
    assert second_site.requests[0].headers["Host"] == f"127.0.0.1:{second_site.port}"
    assert net.attempts == [("127.0.0.1", source_site.port), ("127.0.0.1", second_site.port)]


def test_redirect_limit(source_site):
    site = source_site
    for n in range(6):
        site.redirect(f"/r{n}", f"/r{n + 1}")
    site.page("/r6", "<html>end</html>")
    fetcher = local(max_redirects=3)
    assert fetcher.fetch(site.url + "/r3").body == b"<html>end</html>"  # exactly 3 redirects
    site.requests.clear()
    error = failed(fetcher, site.url + "/r2")  # 4 redirects
    assert "redirect" in error.message
    assert [r.path for r in site.requests] == ["/r2", "/r3", "/r4", "/r5"]  # the 4th is not followed


def test_redirect_loop_ends(source_site):
    source_site.redirect("/loop", "/loop")
    error = failed(local(), source_site.url + "/loop")
    assert "redirect" in error.message
    assert len(source_site.requests) == 6  # max_redirects (5) + 1


@pytest.mark.parametrize("status", [400, 403, 404, 410, 500, 502, 503])
def test_http_errors(source_site, status):
    url = source_site.page("/p", "<html>error page</html>", status=status)
    assert str(status) in failed(local(), url).message


def test_unknown_path_is_404(source_site):
    assert "404" in failed(local(), source_site.url + "/nowhere").message


@pytest.mark.parametrize("content_type", ["image/png", "application/json", None, "text/plain",
                                          "application/octet-stream", "text/html-sandboxed", "text/xml"])
def test_only_html_is_fetched(source_site, content_type):
    url = source_site.page("/p", b"\x89PNG....", content_type=content_type)
    error = failed(local(), url)
    assert "not HTML" in error.message


def test_a_big_non_html_body_is_not_downloaded(source_site):
    url = source_site.huge("/movie.mp4", 50 * MB, content_type="video/mp4")
    started = time.monotonic()
    failed(local(), url)
    assert time.monotonic() - started < 2
    request = source_site.requests[-1]
    assert request.done.wait(2) and request.disconnected
    assert request.bytes_sent < 10 * MB


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "close-delimited"])
def test_huge_body_is_truncated_at_max_bytes(source_site, content_length):
    url = source_site.huge("/huge", 50 * MB, content_length=content_length)
    started = time.monotonic()
    result = local(max_bytes=MB, deadline=10).fetch(url)
    elapsed = time.monotonic() - started
    assert len(result.body) == MB
    assert result.truncated is True
    assert result.body.startswith(b"<html><body><p>huge")
    assert elapsed < 3, elapsed
    request = source_site.requests[-1]
    assert request.done.wait(2), "the server is still sending"
    assert request.disconnected  # we hung up; it did not send all 50 MB
    assert request.bytes_sent < 10 * MB  # ~1 MB read, plus what the socket buffers held


@pytest.mark.parametrize("size, truncated", [(999, False), (1000, False), (1001, True)])
def test_max_bytes_boundary(source_site, size, truncated):
    body = b"<html>" + b"x" * (size - 6)
    result = local(max_bytes=1000).fetch(source_site.page("/p", body))
    assert result.body == body[:1000]
    assert result.truncated is truncated


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate"])
def test_compressed_pages_are_decoded(source_site, encoding):
    html = b"<html><body>" + b"<p>hello</p>" * 1000 + b"</body></html>"
    data = gzip.compress(html) if "gzip" in encoding else zlib.compress(html)
    url = source_site.page("/p", data, headers={"Content-Encoding": encoding})
    result = local().fetch(url)
    assert result.body == html and not result.truncated
    assert "gzip" in source_site.requests[-1].headers["Accept-Encoding"]


def test_compressed_page_over_max_bytes_is_truncated(source_site):
    html = b"<html>" + b"<p>hello</p>" * 1000
    url = source_site.page("/p", gzip.compress(html), headers={"Content-Encoding": "gzip"})
    result = local(max_bytes=5000).fetch(url)
    assert result.body == html[:5000] and result.truncated


def test_gzip_bomb_is_cut_at_max_bytes(source_site):
    url = source_site.gzip_bomb("/bomb", 100 * MB)
    fetcher = local(max_bytes=MB, deadline=10)
    tracemalloc.start()
    try:
        started = time.monotonic()
        result = fetcher.fetch(url)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.body) == MB
    assert result.truncated is True
    assert result.body.startswith(b"<html><body>   ")
    assert peak < 8 * MB, f"held {peak / MB:.1f} MB while inflating a 100 MB bomb"
    assert elapsed < 3


def test_corrupt_compressed_body(source_site):
    url = source_site.page("/p", b"this is not gzip at all", headers={"Content-Encoding": "gzip"})
    failed(local(), url)


def test_unsupported_content_encoding(source_site):
    url = source_site.page("/p", b"\x1b\x00\x00", headers={"Content-Encoding": "br"})
    assert "encoding" in failed(local(), url).message


def test_body_shorter_than_content_length(source_site):
    source_site.handler("/p", lambda request: (200, {"Content-Type": "text/html", "Content-Length": "5000"},
                                               b"<html>only this"))
    failed(local(), source_site.url + "/p")


def test_slow_page_is_abandoned_at_the_deadline(source_site):
    # A chunk every 0.1 s keeps the read timeout (5 s) from ever firing: only the deadline can end it.
    # 30 chunks: endless as far as the deadline goes, yet a broken deadline fails in 3 s, not hangs.
    url = source_site.slow("/slow", chunk_delay=0.1, chunks=30)
    started = time.monotonic()
    error = failed(local(deadline=0.6), url)
    elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 0.6 + 1.5, elapsed
    assert "0.6 s" in error.message
    request = source_site.requests[-1]
    assert request.done.wait(1) and request.disconnected


def test_headers_then_silence_is_abandoned_at_the_deadline(source_site):
    """Headers at once, then not one byte of body: not a page with an empty body."""
    url = source_site.slow("/stall", body=b"", chunk_delay=60, chunks=1)
    started = time.monotonic()
    error = failed(local(deadline=0.5), url)
    assert time.monotonic() - started < 0.5 + 1.5
    assert re.search(r"longer than 0.5 s|timed out", error.message), error.message


def test_read_timeout_in_the_body(source_site):
    url = source_site.slow("/stall", body=b"<html><body>", chunk_delay=60, chunks=1)
    started = time.monotonic()
    failed(local(read_timeout=0.3, deadline=5), url)
    assert time.monotonic() - started < 2


@pytest.fixture
def silent_server():
    """Accepts TCP connections (the kernel does) and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    server.close()


def test_server_that_never_answers_ends_at_the_deadline(silent_server):
    started = time.monotonic()
    error = failed(local(deadline=0.6, read_timeout=30), silent_server)
    elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 0.6 + 1.5, elapsed
    # The deadline's timer and the read timeout (capped to the time left) end it together;
    # whichever fires first names the cause.
    assert re.search(r"longer than 0.6 s|timed out", error.message), error.message


def test_proxy_settings_in_the_environment_are_ignored(net, source_site, monkeypatch):
    """A proxy would undo the pinning: requests must not pick one up from the environment."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://10.9.9.9:3128")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    net.names["public.example"] = [PUBLIC_IP]
    net.route((PUBLIC_IP, 80), source_site)
    source_site.page("/post", "<html>direct</html>")
    assert guarded().fetch("http://public.example/post").body == b"<html>direct</html>"
    assert source_site.requests[0].path == "/post"  # origin-form: not a request meant for a proxy
    assert net.attempts == [(PUBLIC_IP, 80)]


# --------------------------------------------------------------------------- the guard: addresses

REFUSED_ADDRESSES = [
    "127.0.0.1", "127.1", "127.255.255.254", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "0",
    "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "0.1.2.3", "192.0.0.1", "192.0.2.1", "198.18.0.1", "224.0.0.1", "239.255.255.250",
    "240.0.0.1", "255.255.255.255",
    "[::1]", "[::]", "[fe80::1]", "[fe80::1%25eth0]", "[fc00::1]", "[fd12::1]", "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]", "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]", "[0:0:0:0:0:ffff:192.168.0.1]",
    "[64:ff9b::a00:1]", "[64:ff9b::7f00:1]", "[64:ff9b::169.254.169.254]", "[ff02::1]", "[ff05::2]",
    "[2001:db8::1]", "[::127.0.0.1]",
]


@pytest.mark.parametrize("host", REFUSED_ADDRESSES)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_refuses_internal_addresses(net, scheme, host):
    net.strict()
    error = refused(guarded(), f"{scheme}://{host}/admin")
    assert "not fetched" in error.message
    assert net.attempts == []


@pytest.mark.parametrize("host", [h for h in REFUSED_ADDRESSES if h not in
                                  ("127.0.0.1", "127.1", "127.255.255.254", "2130706433", "0x7f000001",
                                   "0177.0.0.1", "0x7f.1")])
def test_an_allowlist_opens_only_its_own_range(net, host):
    net.strict()
    refused(local(), f"http://{host}/")
    assert net.attempts == []


def test_check_url_spells_out_what_it_connects_to(net):
    net.names["public.example"] = [PUBLIC_IP, OTHER_PUBLIC_IP]
    fetcher = guarded()
    assert fetcher.check_url("http://public.example/x") == ("public.example", 80, PUBLIC_IP)
    assert fetcher.check_url("https://PUBLIC.example/x") == ("public.example", 443, PUBLIC_IP)
    assert fetcher.check_url(f"http://{PUBLIC_IP}:8080/") == (PUBLIC_IP, 8080, PUBLIC_IP)
    assert fetcher.check_url("http://[2606:2800:220:1:248:1893:25c8:1946]/")[2] == "2606:2800:220:1:248:1893:25c8:1946"
    assert fetcher.check_url("http://[64:ff9b::5db8:d822]/")[2] == "64:ff9b::5db8:d822"  # NAT64 of a public address
    assert net.attempts == []


# --------------------------------------------------------------------------- the guard: names


@pytest.mark.parametrize("name, addresses", [
    ("evil.example", ["10.0.0.5"]),
    ("mixed.example", [PUBLIC_IP, "192.168.0.1"]),  # one bad answer is enough
    ("mixed-rev.example", ["192.168.0.1", PUBLIC_IP]),
    ("v6only.example", ["::1"]),
    ("mapped.example", ["::ffff:10.0.0.1"]),
    ("metadata.example", ["169.254.169.254"]),
    ("scoped.example", ["fe80::1%lo"]),
    ("localhost", None),  # the test resolver's own answer: 127.0.0.1 and ::1
])
def test_refuses_names_that_resolve_inside(net, name, addresses):
    net.strict()
    if addresses is not None:
        net.names[name] = addresses
    error = refused(guarded(), f"http://{name}/")
    assert name in error.message
    assert net.attempts == []
    assert net.lookups[name] == 1


def test_a_name_that_does_not_resolve(net):
    net.strict()
    error = failed(guarded(), "http://no-such-host.example/")
    assert "does not resolve" in error.message
    assert net.attempts == []


def test_a_name_with_no_addresses(net):
    net.strict()
    net.names["empty.example"] = []
    assert "does not resolve" in failed(guarded(), "http://empty.example/").message


def test_a_public_name_connects_to_the_checked_address(net):
    net.names["public.example"] = [PUBLIC_IP]
    error = failed(guarded(), "http://public.example/post")  # the fence refuses the connection
    assert "cannot connect" in error.message
    assert net.attempts == [(PUBLIC_IP, 80)]
    assert net.lookups["public.example"] == 1  # resolved once: no second lookup to connect


def test_https_goes_to_port_443(net):
    net.names["public.example"] = [PUBLIC_IP]
    failed(guarded(), "https://public.example/post")
    assert net.attempts == [(PUBLIC_IP, 443)]


def test_a_public_name_is_fetched_from_the_checked_address(net, source_site):
    """The pretend public host is routed to a SourceSite: the whole path, still on loopback."""
    net.names["public.example"] = [PUBLIC_IP]
    net.route((PUBLIC_IP, 80), source_site)
    source_site.page("/post", "<html>public</html>")
    result = guarded().fetch("http://public.example/post")
    assert result.url == "http://public.example/post"
    assert result.body == b"<html>public</html>"
    assert source_site.requests[0].headers["Host"] == "public.example"  # the name, not the address
    assert net.attempts == [(PUBLIC_IP, 80)]
    assert net.lookups["public.example"] == 1


def test_dns_rebinding_cannot_move_the_connection(net):
    """Public at check time, loopback a moment later: the connection goes where we checked."""
    net.names["rebind.example"] = lambda nth: [PUBLIC_IP] if nth == 1 else ["127.0.0.1"]
    failed(guarded(), "http://rebind.example/")
    assert net.attempts == [(PUBLIC_IP, 80)]
    assert net.lookups["rebind.example"] == 1


def test_dns_rebinding_across_a_redirect(net, source_site):
    """Each hop is resolved once and checked; the second answer (loopback) is refused."""
    net.names["rebind.example"] = lambda nth: [PUBLIC_IP] if nth == 1 else ["127.0.0.1"]
    net.route((PUBLIC_IP, 80), source_site)
    source_site.redirect("/", "http://rebind.example/admin")
    source_site.page("/admin", "<html>secret</html>")
    error = refused(guarded(), "http://rebind.example/")
    assert "loopback" in error.message
    assert net.attempts == [(PUBLIC_IP, 80)]
    assert net.lookups["rebind.example"] == 2  # once per hop
    assert [r.path for r in source_site.requests] == ["/"]


def test_each_hop_connects_to_its_own_checked_address(net, source_site, second_site):
    net.names.update({"one.example": [PUBLIC_IP], "two.example": [OTHER_PUBLIC_IP]})
    net.route((PUBLIC_IP, 80), source_site)
    net.route((OTHER_PUBLIC_IP, 80), second_site)
    source_site.redirect("/", "http://two.example/landing")
    second_site.page("/landing", "<html>two</html>")
    result = guarded().fetch("http://one.example/")
    assert result.url == "http://two.example/landing" and result.body == b"<html>two</html>"
    assert second_site.requests[0].headers["Host"] == "two.example"
    assert net.attempts == [(PUBLIC_IP, 80), (OTHER_PUBLIC_IP, 80)]
    assert net.lookups == Counter({"one.example": 1, "two.example": 1})


@pytest.mark.parametrize("location", [
    "http://10.0.0.1/admin",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://0x7f.1:6379/",
    "http://localhost/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
])
def test_redirect_from_a_public_page_into_refused_space(net, source_site, location):
    net.names["public.example"] = [PUBLIC_IP]
    net.route((PUBLIC_IP, 80), source_site)
    source_site.redirect("/", location)
    refused(guarded(), "http://public.example/")
    assert net.attempts == [(PUBLIC_IP, 80)]


@pytest.mark.parametrize("location", ["http://10.0.0.1/admin", "http://169.254.169.254/latest/meta-data/",
                                      "http://[fd00::1]/", "http://192.168.1.1:8080/"])
def test_redirect_from_an_allowlisted_site_into_refused_space(net, source_site, location):
    url = source_site.redirect("/go", location)
    refused(local(), url)
    assert net.attempts == [("127.0.0.1", source_site.port)]  # and nothing else
    assert len(source_site.requests) == 1


# --------------------------------------------------------------------------- the guard: ports


@pytest.mark.parametrize("port", [22, 25, 6379, 11211, 5432, 8000, 9200])
def test_unusual_ports_are_refused_before_connecting(net, port):
    net.strict()
    net.names["public.example"] = [PUBLIC_IP]
    error = refused(guarded(), f"http://public.example:{port}/")
    assert str(port) in error.message
    assert net.attempts == []


def test_port_8080_passes_the_guard(net):
    net.names["public.example"] = [PUBLIC_IP]
    failed(guarded(), "http://public.example:8080/")  # refused by the fence, not the guard
    assert net.attempts == [(PUBLIC_IP, 8080)]


def test_allowed_ports_come_from_the_settings(net):
    net.names["public.example"] = [PUBLIC_IP]
    fetcher = GuardedFetcher(FetchPolicy.from_settings(allowed_ports=["8000"]))
    refused(fetcher, "http://public.example/")
    assert net.attempts == []
    failed(fetcher, "http://public.example:8000/")
    assert net.attempts == [(PUBLIC_IP, 8000)]


def test_allowlisted_addresses_may_use_any_port(net, source_site, second_site):
    assert source_site.port not in (80, 443, 8080)
    for site in (source_site, second_site):
        assert local().fetch(site.page("/p", "<html></html>")).status == 200
    assert net.attempts == [("127.0.0.1", source_site.port), ("127.0.0.1", second_site.port)]


def test_allowlist_entries_are_parsed(net):
    policy = FetchPolicy.from_settings(allowlist=["127.0.0.1", "10.1.0.0/16", "fd00::/8"])
    assert [str(n) for n in policy.allowlist] == ["127.0.0.1/32", "10.1.0.0/16", "fd00::/8"]
    net.strict()
    fetcher = GuardedFetcher(policy)
    assert fetcher.check_url("http://10.1.2.3:9999/") == ("10.1.2.3", 9999, "10.1.2.3")
    refused(fetcher, "http://10.2.0.1/")
    refused(fetcher, "http://127.0.0.2/")


# --------------------------------------------------------------------------- the guard: URL forms


@pytest.mark.parametrize("url", [
    "ftp://public.example/file",
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "gopher://public.example:70/",
    "javascript:alert(1)",
    "data:text/html,<p>hi</p>",
    "mailto:someone@public.example",
    "http://user:pass@public.example/",
    "http://user@public.example/",
    "http://:@public.example/",
    "http://",
    "http:///path",
    "https://",
    "not a url",
    "",
    "//public.example/",
    "public.example/path",
    "http://public.example:99999/",
    "http://public.example:port/",
    "http://[::1/",
])
def test_refuses_other_schemes_and_forms(net, url):
    net.strict()
    net.names["public.example"] = [PUBLIC_IP]
    refused(guarded(), url)
    assert net.attempts == []
    assert not net.lookups  # refused before any DNS question


# --------------------------------------------------------------------------- the fake site itself


def test_source_site_closes_fast_in_the_middle_of_streaming():
    from sites import SourceSite

    site = SourceSite()
    site.slow("/slow", chunk_delay=0.3, chunks=1000)
    site.huge("/huge", 500 * MB)
    clients = []
    try:
        for path in ("/slow", "/huge"):  # the huge one is never read: the server blocks sending
            sock = socket.create_connection(("127.0.0.1", site.port), timeout=5)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(12).startswith(b"HTTP/1.1 200")
            clients.append(sock)
        clients.append(socket.create_connection(("127.0.0.1", site.port), timeout=5))  # idle
        time.sleep(0.2)
        started = time.monotonic()
        site.close()
        assert time.monotonic() - started < 0.5
        assert [r.path for r in site.requests] == ["/slow", "/huge"]
        assert all(r.done.is_set() for r in site.requests)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", site.port), timeout=1).close()
    finally:
        site.close()
        for sock in clients:
            sock.close()


def test_source_site_records_requests(source_site):
    import requests

    source_site.handler("/echo", lambda request: (201, {"X-Seen": request.headers["x-thing"]}, request.body.upper()))
    response = requests.post(source_site.url + "/echo?q=1", data=b"payload", headers={"X-Thing": "yes"}, timeout=5)
    assert (response.status_code, response.headers["X-Seen"], response.content) == (201, "yes", b"PAYLOAD")
    request = source_site.requests[-1]
    assert (request.method, request.path, request.query, request.body) == ("POST", "/echo?q=1", "q=1", b"payload")
    assert requests.get(source_site.url + "/missing", timeout=5).status_code == 404
    assert source_site.errors == []
