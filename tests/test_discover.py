"""Linkback endpoint discovery (blogapp.linkback.discover) against real HTTP pages on 127.0.0.1.

The 23 webmention.rocks discovery tests are served as SourceSite pages shaped like the originals
(the same Link headers, <link> tags in <head>, and post bodies with their decoys); then pingback
and trackback autodiscovery, the preference between the three, non-HTML targets and failures.
"""
from __future__ import annotations

import logging
import secrets

import pytest

from blogapp.linkback.discover import (
    Endpoint,
    discover,
    find_pingback,
    find_trackback,
    find_webmention,
    parse_link_header,
)
from blogapp.linkback.fetch import FetchError, FetchPolicy, FetchResult, GuardedFetcher
from sites import wordpress_rdf

MB = 1_000_000


def local(**settings) -> GuardedFetcher:
    """A fetcher that may fetch from 127.0.0.0/8, where the SourceSites are."""
    settings.setdefault("deadline", 5.0)
    return GuardedFetcher(FetchPolicy.from_settings(allowlist=["127.0.0.0/8"], **settings))


def html(head: str = "", body: str = "") -> str:
    return f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>A post</title>{head}</head><body>{body}</body></html>"


def result(url: str = "http://blog.example/post", *, headers: dict | None = None, body: str = "",
           content_type: str = "text/html; charset=utf-8", redirects: list[str] | None = None) -> FetchResult:
    """A fetched page, built by hand, for the finders alone."""
    head = {"content-type": content_type, **{k.lower(): v for k, v in (headers or {}).items()}}
    return FetchResult(url=url, status=200, headers=head, body=body.encode("utf-8"), redirects=redirects or [])


# --------------------------------------------------------------------------- webmention.rocks


def rocks_page(num: int, base: str, *, head: str = "", body: str = "") -> str:
    """A discovery test page laid out as webmention.rocks lays it out: stylesheet and script
    links in <head> before the test's own tag, the post in an h-entry with links of its own."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <title>Webmention Rocks!</title>
  <link href="/assets/semantic.min.css" rel="stylesheet">
  <link href="/assets/style.css" rel="stylesheet">
  <script src="/assets/jquery-1.11.3.min.js"></script>
  {head}
</head>
<body>
<div class="post-container h-entry">
  <div class="left p-author h-card"><a href="/"><img src="/assets/icon.png" class="u-photo" alt="Webmention Rocks!"></a></div>
  <h1 class="p-name"><a href="/test/{num}">Discovery Test #{num}</a></h1>
  <div class="e-content">{body}</div>
  <div class="meta"><a href="/test/{num}" class="u-url">Published: <time class="dt-published">Saturday April 9, 2016</time></a></div>
</div>
<p>Responses are stored for 48 hours and may be deleted after that time.</p>
</body>
</html>
""".replace("{base}", base)


# Each case: the Link headers the page sends, its tag in <head>, its post body, and the endpoint
# (a path under the site) a sender must find. "{base}" is the site's root URL with its slash;
# every decoy points at .../webmention/error.
ROCKS = {
    1: dict(name="HTTP Link header, unquoted rel, relative URL",
            headers={"Link": "</test/1/webmention>; rel=webmention"}),
    2: dict(name="HTTP Link header, unquoted rel, absolute URL",
            headers={"Link": "<{base}test/2/webmention>; rel=webmention"}),
    3: dict(name="HTML <link> tag, relative URL",
            head='<link rel="webmention" href="/test/3/webmention">'),
    4: dict(name="HTML <link> tag, absolute URL",
            head='<link href="{base}test/4/webmention" rel="webmention">'),
    5: dict(name="HTML <a> tag, relative URL",
            body='This post advertises its <a rel="webmention" href="/test/5/webmention">Webmention endpoint</a> '
                 'with an HTML <code>&lt;a&gt;</code> tag in the body.'),
    6: dict(name="HTML <a> tag, absolute URL",
            body='This post advertises its <a href="{base}test/6/webmention" rel="webmention">Webmention endpoint</a> '
                 'with an HTML <code>&lt;a&gt;</code> tag in the body.'),
    7: dict(name="HTTP Link header with strange casing",
            headers={"LinK": "<{base}test/7/webmention>; rel=webmention"}),
    8: dict(name="HTTP Link header, quoted rel",
            headers={"Link": '<{base}test/8/webmention>; rel="webmention"'}),
    9: dict(name="Multiple rel values on a <link> tag",
            head='<link rel="webmention somethingelse" href="{base}test/9/webmention">'),
    10: dict(name="Multiple rel values on a Link header",
             headers={"Link": '<{base}test/10/webmention>; rel="webmention somethingelse"'}),
    11: dict(name="Multiple Webmention endpoints advertised: Link, <link>, <a>",
             headers={"Link": '</test/11/webmention>; rel="webmention"'},
             head='<link rel="webmention" href="/test/11/webmention/error">',
             body='This post advertises its endpoint in the HTTP Link header, an HTML &lt;link&gt; tag, and an '
                  '<a href="/test/11/webmention/error" rel="webmention">&lt;a&gt; tag</a>.'),
    12: dict(name="Checking for exact match of rel=webmention",
             head='<link rel="not-webmention" href="/test/12/webmention/error">',
             body='There is also a <a href="/test/12/webmention" rel="webmention">correct endpoint</a> defined.'),
    13: dict(name="False endpoint inside an HTML comment",
             body='This post contains an HTML comment <!-- <a href="/test/13/webmention/error" rel="webmention"></a> --> '
                  'that contains a rel=webmention element. There is also a '
                  '<a href="/test/13/webmention" rel="webmention">correct endpoint</a> defined.'),
    14: dict(name="False endpoint in escaped HTML",
             body='This post contains sample code with escaped HTML. '
                  '<code>&lt;a href="/test/14/webmention/error" rel="webmention"&gt;&lt;/a&gt;</code> There is also a '
                  '<a href="/test/14/webmention" rel="webmention">correct endpoint</a> defined.'),
    15: dict(name="Webmention href is an empty string",
             head='<link rel="webmention" href="">', endpoint="/test/15"),
    16: dict(name="Multiple Webmention endpoints advertised: <a>, <link>",
             body='This post advertises its endpoint in an HTML <a href="/test/16/webmention" rel="webmention">&lt;a&gt; tag</a>, '
                  'followed by a later definition in a &lt;link&gt; tag. <link rel="webmention" href="/test/16/webmention/error">'),
    17: dict(name="Multiple Webmention endpoints advertised: <link>, <a>",
             body='This post advertises its endpoint in an HTML &lt;link&gt; tag <link rel="webmention" href="/test/17/webmention"> '
                  'followed by a later definition in an <a href="/test/17/webmention/error" rel="webmention">&lt;a&gt; tag</a>.'),
    # Two Link header lines: header names are case-insensitive, so "Link" and "link" are the same
    # header sent twice (a dict cannot hold one name twice).
    18: dict(name="Multiple HTTP Link headers",
             headers={"Link": '<{base}test/18/webmention/error>; rel="other"',
                      "link": '<{base}test/18/webmention>; rel="webmention"'}),
    19: dict(name="Single HTTP Link header with multiple values",
             headers={"Link": '<{base}test/19/webmention/error>; rel="other", <{base}test/19/webmention>; rel="webmention"'}),
    20: dict(name="Link tag with no href attribute",
             body='This post has a &lt;link&gt; tag <link rel="webmention"> which has no href attribute. Send the webmention to '
                  '<a href="/test/20/webmention" rel="webmention">this endpoint</a> instead.'),
    21: dict(name="Webmention endpoint has query string parameters",
             head='<link rel="webmention" href="/test/21/webmention?query=yes">', endpoint="/test/21/webmention?query=yes"),
    22: dict(name="Webmention endpoint is relative to the path",
             head='<link rel="webmention" href="22/webmention">'),
}


@pytest.mark.parametrize("num", sorted(ROCKS), ids=lambda num: f"rocks-{num}")
def test_webmention_rocks_discovery(source_site, num):
    case = ROCKS[num]
    base = source_site.url + "/"
    headers = {name: value.replace("{base}", base) for name, value in case.get("headers", {}).items()}
    url = source_site.page(f"/test/{num}", rocks_page(num, base, head=case.get("head", ""), body=case.get("body", "")),
                           headers=headers)
    expected = source_site.url + case.get("endpoint", f"/test/{num}/webmention")

    assert discover(local(), url) == Endpoint("webmention", expected), case["name"]
    assert [(r.method, r.path) for r in source_site.requests] == [("GET", f"/test/{num}")]  # one fetch


def test_webmention_rocks_23_redirect_then_relative_endpoint(source_site):
    """The target redirects (relative Location) to a one-time URL; that page names a relative
    endpoint in its Link header and an <a>. It resolves against the final URL, and each URL
    answers once only (a second request gets 410), so the page must be fetched exactly once."""
    first_key, endpoint_key = secrets.token_urlsafe(15), secrets.token_urlsafe(15)
    source_site.redirect("/test/23/page", f"page/{first_key}")
    used: list[str] = []

    def one_time_page(request):
        if used:
            return 410, {"Content-Type": "text/plain"}, "Code expired\n"
        used.append(request.path)
        body = ('<div class="h-entry"><h2 class="p-name">Discovery Test #23</h2>'
                '<p><a href="/test/23/page" class="u-url">permalink</a></p>'
                f'<p><a rel="webmention" href="webmention-endpoint/{endpoint_key}">webmention endpoint</a></p></div>')
        return 200, {"Content-Type": "text/html; charset=utf-8",
                     "Link": f"<webmention-endpoint/{endpoint_key}>; rel=webmention"}, body

    source_site.handler(f"/test/23/page/{first_key}", one_time_page)

    found = discover(local(), source_site.url + "/test/23/page")

    assert found == Endpoint("webmention", f"{source_site.url}/test/23/page/webmention-endpoint/{endpoint_key}")
    assert [r.path for r in source_site.requests] == ["/test/23/page", f"/test/23/page/{first_key}"]


# --------------------------------------------------------------------------- more Webmention


def test_relative_html_endpoint_resolves_against_the_host_redirected_to(source_site, second_site):
    final = second_site.page("/blog/post", html(head='<link rel="webmention" href="hooks/wm">'))
    start = source_site.redirect("/old/post", final, status=301)
    assert discover(local(), start) == Endpoint("webmention", second_site.url + "/blog/hooks/wm")


def test_a_base_element_is_not_used_for_the_endpoint(source_site):
    """The spec resolves the endpoint "relative to the target URL"; <base> is not consulted."""
    url = source_site.page("/posts/1", html(head='<base href="http://cdn.example/static/">'
                                                 '<link rel="webmention" href="wm">'))
    assert discover(local(), url) == Endpoint("webmention", source_site.url + "/posts/wm")


def test_link_header_wins_over_an_earlier_html_endpoint(source_site):
    url = source_site.page("/p", html(head='<link rel="webmention" href="/from-html">',
                                      body='<a rel="webmention" href="/from-a">x</a>'),
                           headers={"Link": "</from-header>; rel=webmention"})
    assert discover(local(), url) == Endpoint("webmention", source_site.url + "/from-header")


def test_link_header_without_webmention_falls_back_to_the_html(source_site):
    url = source_site.page("/p", html(head='<link rel="webmention" href="/from-html">'),
                           headers={"Link": '</feed>; rel="alternate", </wm>; rel="not-webmention"'})
    assert discover(local(), url) == Endpoint("webmention", source_site.url + "/from-html")


def test_link_header_parsing():
    value = ('<http://a.example/x,y>; title="a, b; <c>"; rel="other", '
             '<http://a.example/wm?q=1>; REL = "Other WebMention"; rel=ignored,<rel-only>;rel=webmention')
    assert parse_link_header(value) == [
        ("http://a.example/x,y", {"title": "a, b; <c>", "rel": "other"}),
        ("http://a.example/wm?q=1", {"rel": "Other WebMention"}),
        ("rel-only", {"rel": "webmention"}),
    ]
    assert parse_link_header('<a>; title="say \\"hi\\""; rel=x') == [("a", {"title": 'say "hi"', "rel": "x"})]
    assert parse_link_header("") == parse_link_header("nonsense") == parse_link_header("<unclosed") == []
    assert find_webmention(result(headers={"Link": value})) == "http://a.example/wm?q=1"


def test_endpoints_that_are_not_http_urls_are_skipped():
    page = result(headers={"Link": "<mailto:me@example.com>; rel=webmention, <javascript:alert(1)>; rel=webmention"},
                  body=html(body='<a rel="webmention" href="ftp://files.example/">x</a>'
                                 '<a rel="webmention" href="http://[oops/">y</a>'
                                 '<link rel="webmention" href="/good">'))
    assert find_webmention(page) == "http://blog.example/good"


def test_only_link_and_a_elements_count_and_rel_is_case_blind():
    page = result(body=html(body='<b rel="webmention" href="/b">b</b><area rel="webmention" href="/area">'
                                 '<div rel="webmention" href="/div"></div><a REL="Author WEBMENTION" href=" /a ">a</a>'))
    assert find_webmention(page) == "http://blog.example/a"  # also: href whitespace stripped


def test_empty_href_is_the_page_without_its_fragment():
    assert find_webmention(result("http://blog.example/p?x=1#top", body=html('<link rel="webmention" href="">'))) \
        == "http://blog.example/p?x=1"


def test_xhtml_page(source_site):
    body = ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
            '<title>x</title><link rel="webmention" href="/xhtml-wm" /></head><body/></html>')
    url = source_site.page("/x", body, content_type="application/xhtml+xml")
    assert discover(local(), url) == Endpoint("webmention", source_site.url + "/xhtml-wm")


def test_a_page_cut_at_max_bytes_is_still_searched(source_site):
    url = source_site.page("/long", html(head='<link rel="webmention" href="/wm">', body="<p>words</p>" * 2000))
    assert discover(local(max_bytes=2000), url) == Endpoint("webmention", source_site.url + "/wm")


def test_charset_from_the_http_header(source_site):
    page = html(body='<p>caf\u00e9</p><a rel="webmention" href="/caf\u00e9/wm">x</a>')
    url = source_site.page("/latin", page.replace("charset='utf-8'", ""), content_type="text/html; charset=iso-8859-1",
                           encoding="iso-8859-1")
    assert discover(local(), url) == Endpoint("webmention", source_site.url + "/caf\u00e9/wm")


# --------------------------------------------------------------------------- non-HTML targets


@pytest.mark.parametrize("content_type, body", [
    ("image/png", b"\x89PNG\r\n\x1a\n...."),
    ("application/pdf", b"%PDF-1.7 <link rel=\"webmention\" href=\"/no\">"),
    ("text/plain", b'<link rel="webmention" href="/no"> <link rel="pingback" href="/no">'),
    (None, b'<html><link rel="webmention" href="/no"></html>'),
])
def test_non_html_target_has_no_html_endpoints(source_site, content_type, body):
    url = source_site.page("/file", body, content_type=content_type)
    assert discover(local(), url) is None


def test_the_finders_read_no_html_from_a_non_html_response():
    markup = html('<link rel="webmention" href="/wm"><link rel="pingback" href="/rpc"><link rel="trackback" href="/tb">')
    page = result(body=markup, content_type="text/plain")
    assert (find_webmention(page), find_pingback(page), find_trackback(page)) == (None, None, None)
    page = result(body=markup, content_type="application/xhtml+xml")
    assert (find_webmention(page), find_pingback(page), find_trackback(page)) == (
        "http://blog.example/wm", "http://blog.example/rpc", "http://blog.example/tb")


def test_non_html_target_can_name_a_webmention_endpoint_in_a_link_header(source_site):
    url = source_site.page("/photo.png", b"\x89PNG....", content_type="image/png",
                           headers={"Link": "</webmention>; rel=webmention"})
    assert discover(local(), url) == Endpoint("webmention", source_site.url + "/webmention")


def test_non_html_target_can_name_a_pingback_server_in_its_header(source_site):
    url = source_site.page("/paper.pdf", b"%PDF-1.7", content_type="application/pdf",
                           headers={"X-Pingback": "http://blog.example/xmlrpc.php"})
    assert discover(local(), url) == Endpoint("pingback", "http://blog.example/xmlrpc.php")


def test_fetch_html_only_false_returns_headers_without_reading_the_body(source_site):
    url = source_site.huge("/movie.mp4", 50 * MB, content_type="video/mp4")
    with pytest.raises(FetchError, match="not HTML"):
        local().fetch(url)  # the default is unchanged
    page = local().fetch(url, html_only=False)
    assert (page.status, page.content_type, page.body) == (200, "video/mp4", b"")
    assert page.headers["content-length"] == str(50 * MB)
    request = source_site.requests[-1]
    assert request.done.wait(2) and request.bytes_sent < 10 * MB
    assert discover(local(), url) is None


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("status", [404, 410, 500])
def test_a_target_that_answers_an_error_has_no_endpoint(source_site, caplog, status):
    url = source_site.page("/gone", html(head='<link rel="webmention" href="/wm">'), status=status,
                           headers={"Link": "</wm>; rel=webmention", "X-Pingback": "http://x.example/xmlrpc"})
    with caplog.at_level(logging.INFO, logger="blogapp.linkback.discover"):
        assert discover(local(), url) is None
    assert f"HTTP {status}" in caplog.text and url in caplog.text


def test_a_target_the_guard_refuses_has_no_endpoint_and_is_never_contacted(source_site, caplog):
    url = source_site.page("/p", html(head='<link rel="webmention" href="/wm">'))
    with caplog.at_level(logging.INFO, logger="blogapp.linkback.discover"):
        assert discover(GuardedFetcher(FetchPolicy()), url) is None  # the production guard: no loopback
    assert source_site.requests == []
    assert "loopback" in caplog.text


@pytest.mark.parametrize("target", ["not a url", "ftp://files.example/post", "http://user:pw@127.0.0.1/"])
def test_a_bad_target_url_has_no_endpoint(target):
    assert discover(local(), target) is None


def test_a_target_that_does_not_answer_has_no_endpoint(source_site):
    url = source_site.url + "/p"
    source_site.close()  # nothing listens on that port any more
    assert discover(local(), url) is None


# --------------------------------------------------------------------------- pingback


def test_pingback_from_the_x_pingback_header(source_site):
    url = source_site.page("/p", html(), headers={"X-Pingback": "http://blog.example/xmlrpc.php"})
    assert discover(local(), url) == Endpoint("pingback", "http://blog.example/xmlrpc.php")


def test_pingback_from_a_link_element_with_entities_decoded(source_site):
    url = source_site.page("/p", html(head='<!-- <link rel="pingback" href="http://wrong.example/"> -->'
                                           '<link rel="pingback" href="http://blog.example/rpc.php?a=1&amp;b=&lt;2&gt;">'))
    assert discover(local(), url) == Endpoint("pingback", "http://blog.example/rpc.php?a=1&b=<2>")


def test_x_pingback_header_overrides_the_link_element(source_site):
    url = source_site.page("/p", html(head='<link rel="pingback" href="http://blog.example/from-link">'),
                           headers={"X-Pingback": "http://blog.example/from-header"})
    assert discover(local(), url) == Endpoint("pingback", "http://blog.example/from-header")


def test_the_first_of_two_x_pingback_headers_wins(source_site):
    url = source_site.page("/p", html(), headers={"X-Pingback": "http://one.example/rpc",
                                                  "x-pingback": "http://two.example/rpc"})
    assert discover(local(), url) == Endpoint("pingback", "http://one.example/rpc")


def test_relative_pingback_urls_resolve_against_the_final_url(source_site):
    final = source_site.page("/2024/post/", html(head='<link rel="pingback" href="../xmlrpc.php">'))
    start = source_site.redirect("/?p=7", final)
    assert discover(local(), start) == Endpoint("pingback", source_site.url + "/2024/xmlrpc.php")
    header = source_site.page("/h/post", html(), headers={"X-Pingback": "/xmlrpc.php"})
    assert discover(local(), header) == Endpoint("pingback", source_site.url + "/xmlrpc.php")


def test_pingback_is_only_a_link_element():
    page = result(body=html(body='<a rel="pingback" href="/a-rpc">x</a>'))
    assert find_pingback(page) is None
    assert find_pingback(result(body=html('<link rel="Pingback" href="/rpc">'))) == "http://blog.example/rpc"


# --------------------------------------------------------------------------- trackback


def test_trackback_from_wordpress_rdf_in_a_comment(source_site):
    permalink = source_site.url + "/2024/05/hello/"
    source_site.page("/2024/05/hello/", html(body="<article>Hello</article>" + wordpress_rdf(
        permalink, permalink + "trackback/?a=1&amp;b=2")))
    assert discover(local(), permalink) == Endpoint("trackback", permalink + "trackback/?a=1&b=2")


def test_trackback_rdf_for_the_right_post_on_a_page_of_many(source_site):
    base = source_site.url
    posts = "".join(f"<article>Post {n}</article>" + wordpress_rdf(f"{base}/post/{n}", f"{base}/tb/{n}")
                    for n in (1, 2, 3))
    source_site.page("/post/2", html(body=posts))
    assert discover(local(), base + "/post/2") == Endpoint("trackback", base + "/tb/2")


def test_trackback_rdf_matched_by_rdf_about_and_after_a_redirect(source_site):
    base = source_site.url
    rdf = ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
           'xmlns:trackback="http://madskills.com/public/xml/rss/module/trackback/">'
           f'<rdf:Description rdf:about="{base}/new-home/" trackback:ping="../tb.cgi?id=9"/></rdf:RDF>')
    source_site.page("/new-home/", html(body=f"<!--{rdf}-->"))
    start = source_site.redirect("/old-home", "/new-home/")
    assert discover(local(), start) == Endpoint("trackback", base + "/tb.cgi?id=9")  # relative ping resolved


def test_trackback_rdf_for_another_url_does_not_count(source_site):
    base = source_site.url
    source_site.page("/a", html(body=wordpress_rdf(base + "/b", base + "/tb/b")))
    assert discover(local(), base + "/a") is None
    source_site.page("/c", html(head='<link rel="trackback" href="/tb/c-link">',
                                body=wordpress_rdf(base + "/b", base + "/tb/b")))
    assert discover(local(), base + "/c") == Endpoint("trackback", base + "/tb/c-link")


def test_escaped_trackback_rdf_does_not_count():
    rdf = wordpress_rdf("http://blog.example/post", "http://blog.example/tb")
    escaped = rdf.replace("<", "&lt;").replace(">", "&gt;")
    assert find_trackback(result(body=html(body=f"<pre>{escaped}</pre>"))) is None


def test_trackback_from_a_link_element(source_site):
    url = source_site.page("/p", html(head='<link rel="trackback" href="tb/7">'))
    assert discover(local(), url) == Endpoint("trackback", source_site.url + "/tb/7")


def test_trackback_rdf_comes_before_the_link_element():
    page = result(body=html(head='<link rel="trackback" href="/from-link">',
                            body=wordpress_rdf("http://blog.example/post", "http://blog.example/from-rdf")))
    assert find_trackback(page) == "http://blog.example/from-rdf"


# --------------------------------------------------------------------------- preference


def test_webmention_is_preferred_to_pingback_and_trackback(source_site):
    base = source_site.url
    url = source_site.page("/p", html(head='<link rel="pingback" href="/rpc"><link rel="trackback" href="/tb">',
                                      body=wordpress_rdf(base + "/p", base + "/tb-rdf") + '<a rel="webmention" href="/wm">w</a>'),
                           headers={"X-Pingback": base + "/rpc-header"})
    assert discover(local(), url) == Endpoint("webmention", base + "/wm")


def test_pingback_is_preferred_to_trackback(source_site):
    base = source_site.url
    url = source_site.page("/p", html(head='<link rel="trackback" href="/tb"><link rel="pingback" href="/rpc">',
                                      body=wordpress_rdf(base + "/p", base + "/tb-rdf")))
    assert discover(local(), url) == Endpoint("pingback", base + "/rpc")


def test_trackback_when_nothing_else_is_offered(source_site):
    base = source_site.url
    url = source_site.page("/p", html(head='<link rel="alternate" href="/feed">',
                                      body=wordpress_rdf(base + "/p", base + "/tb")))
    assert discover(local(), url) == Endpoint("trackback", base + "/tb")


def test_a_page_offering_nothing(source_site):
    url = source_site.page("/p", html(head='<link rel="stylesheet" href="/s.css"><link rel="webmention-not" href="/x">',
                                      body='<a href="/wm" rel="nofollow">webmention</a><p>rel="pingback" X-Pingback</p>'),
                           headers={"Link": '</x>; rel="preload"'})
    assert discover(local(), url) is None
    page = local().fetch(url)
    assert (find_webmention(page), find_pingback(page), find_trackback(page)) == (None, None, None)
