"""The TrackBack 1.2 receiver at ``<permalink>trackback/``, against real source pages on 127.0.0.1.

Every answer is parsed with both ElementTree and lxml: a message that is not XML-escaped fails here.
Refusals decided locally (no such post, draft, closed, duplicate, no url) must not fetch the url:
``source_site.requests`` gets nothing new from them.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import xmlrpc.client
from urllib.parse import quote_from_bytes, urlencode, urlsplit

import lxml.etree
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from blogapp import jobs
from blogapp.extensions import db
from blogapp.models import Comment, CommentStatus
from helpers import make_post

SITE_URL = "http://blog.test"
FORM = "application/x-www-form-urlencoded"
BASE = {
    "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"],  # our source sites live on 127.0.0.1
    "LINKBACK_MODERATION": "approve",
    "LINKBACK_VERIFY_BUDGET": 10.0,  # always wait for the exact answer: no "verification continues"
}
# (No CPU budget either: these tests send trackbacks back to back and read them at once; the
# budget's pacing is tests/test_pingback.py's subject.)
NO_VERIFY = {**BASE, "TRACKBACK_VERIFY": False, "LINKBACK_VERIFY_CPU": 0}


@pytest.fixture
def config_overrides():
    return dict(BASE)


# ------------------------------------------------------------------ helpers

def answer(response) -> tuple[str, str | None]:
    """(error, message) of a TrackBack response, which must be HTTP 200 text/xml and well-formed XML."""
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    data = response.get_data()
    root = ET.fromstring(data)
    lxml.etree.fromstring(data)  # stricter about characters XML does not allow
    assert root.tag == "response"
    error = root.findtext("error")
    message = root.findtext("message")
    if error == "1":
        assert message and message.strip(), "an error needs a message people can read"
    else:
        assert error == "0" and root.find("message") is None
    return error, message


def post_form(client, path, fields=None, *, body: bytes | None = None, content_type: str = FORM):
    """POST to ``path``'s trackback URL: ``fields`` form-encoded as UTF-8, or the raw ``body``."""
    data = body if body is not None else urlencode(fields or {}).encode("ascii")
    return client.post(path + "trackback/", data=data, content_type=content_type)


def encoded(**fields: bytes | str) -> bytes:
    """A form body from already-encoded bytes (so any charset can be sent)."""
    parts = []
    for name, value in fields.items():
        raw = value.encode("ascii") if isinstance(value, str) else value
        parts.append(f"{name}={quote_from_bytes(raw, safe='')}")
    return "&".join(parts).encode("ascii")


def linking_page(site, path: str, target: str, *, text: str = "a fine post") -> str:
    return site.page(path, f"<!doctype html><html><head><title>The linking page</title></head><body>"
                           f"<article><p>I liked <a href=\"{target}\">{text}</a> very much.</p></article>"
                           f"</body></html>")


def comments_on(post_id: int) -> list[Comment]:
    db.session.rollback()  # a fresh look at what the receiver's thread committed
    return list(db.session.scalars(select(Comment).where(Comment.post_id == post_id).order_by(Comment.id)))


@pytest.fixture
def post(ctx):
    """A published post open to pings: (id, path, permalink)."""
    post_id, path = make_post(title="Want a thriving practice?")
    return post_id, path, SITE_URL + path


# ------------------------------------------------------------------ success

def test_trackback_is_verified_stored_and_shown(client, post, source_site):
    post_id, path, link = post
    url = linking_page(source_site, "/their-post/", link)
    response = post_form(client, path, {"url": url, "title": "Their post", "excerpt": "I liked a fine post very much.",
                                        "blog_name": "Their Blog"})
    assert answer(response) == ("0", None)
    [stored] = comments_on(post_id)
    assert stored.kind == "trackback"
    assert stored.status == CommentStatus.APPROVED
    assert stored.author_name == "Their Blog"
    assert stored.source_url == url
    assert "Their post" in stored.content and "I liked a fine post very much." in stored.content
    # The source was fetched once, by us, to verify the link.
    [fetch] = source_site.requests
    assert fetch.method == "GET" and fetch.path == "/their-post/"
    assert fetch.headers["User-Agent"].startswith("blogapp/")

    page = BeautifulSoup(client.get(path).get_data(as_text=True), "lxml")
    item = page.select_one(f"#comment-{stored.id}")
    assert item is not None and "trackback" in item["class"]
    assert item.select_one(".p-author a").get_text() == "Their Blog"
    assert item.select_one(".p-author a")["href"] == url
    assert "I liked a fine post very much." in item.get_text()


@pytest.mark.parametrize("config_overrides", [{**BASE, "RATELIMIT_ENABLED": True,
                                               "LINKBACK_SOURCE_RATE_LIMIT": "1 per minute"}])
def test_past_the_rate_a_trackback_is_taken_and_verified_later(app, client, post, source_site):
    """Success (error 0) past the source host's rate: the trackback waits in the job queue and
    its job verifies and stores it, with the title, excerpt and blog name it was sent with."""
    post_id, path, link = post
    first = linking_page(source_site, "/first/", link)
    later = linking_page(source_site, "/later/", link)
    assert answer(post_form(client, path, {"url": first, "blog_name": "First"})) == ("0", None)
    assert answer(post_form(client, path, {"url": later, "title": "Later post", "excerpt": "Queued words.",
                                           "blog_name": "Later Blog"})) == ("0", None)
    assert jobs.wait_idle(10, app)
    stored = comments_on(post_id)
    assert [(c.source_url, c.status, c.author_name) for c in stored] == [
        (first, "approved", "First"), (later, "approved", "Later Blog")]
    assert stored[1].content == "Later post\n\nQueued words."
    assert [r.path for r in source_site.requests] == ["/first/", "/later/"]


def test_author_is_the_title_without_a_blog_name(client, post, source_site):
    post_id, path, link = post
    url = linking_page(source_site, "/p", link)
    assert answer(post_form(client, path, {"url": url, "title": "Only a title"})) == ("0", None)
    [stored] = comments_on(post_id)
    assert stored.author_name == "Only a title"
    assert stored.content == "Only a title"


def test_hold_moderation_keeps_it_off_the_page(app, client, post, source_site):
    app.config["LINKBACK_MODERATION"] = "hold"
    post_id, path, link = post
    url = linking_page(source_site, "/p", link)
    assert answer(post_form(client, path, {"url": url, "title": "Held back", "blog_name": "Held Blog"})) == ("0", None)
    [stored] = comments_on(post_id)
    assert stored.status == CommentStatus.PENDING
    assert "Held Blog" not in client.get(path).get_data(as_text=True)


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_without_verification_nothing_is_fetched(client, post, source_site):
    post_id, path, _ = post
    url = source_site.url_for("/never-fetched")
    assert answer(post_form(client, path, {"url": url, "title": "T", "excerpt": "E", "blog_name": "B"})) == ("0", None)
    [stored] = comments_on(post_id)
    assert (stored.kind, stored.author_name, stored.source_url) == ("trackback", "B", url)
    assert stored.content == "T\n\nE"
    assert source_site.requests == []


# ------------------------------------------------------------------ charsets

JAPANESE = {"title": "日本語のタイトル", "excerpt": "トラックバックの抜粋です。", "blog_name": "東京ブログ"}


def _japanese_body(charset: str, case: str, *, field: str | None = None) -> bytes:
    body = encoded(url=f"http://127.0.0.1:9/{case}", **{k: v.encode(charset) for k, v in JAPANESE.items()})
    return body + (f"&charset={field}".encode("ascii") if field else b"")


def _stored_fields(post_id) -> tuple[str, str]:
    [stored] = comments_on(post_id)
    return stored.author_name, stored.content


def _by_source(post_id) -> dict[str, tuple[str, str]]:
    return {c.source_url.rsplit("/", 1)[1]: (c.author_name, c.content) for c in comments_on(post_id)}


# Each case is one trackback from its own url, so one post takes them all (one app: fast).
JAPANESE_CASES = [
    ("content-type", FORM + "; charset=Shift_JIS", _japanese_body("shift_jis", "content-type")),
    ("content-type-quoted", FORM + '; charset="shift_jis"', _japanese_body("shift_jis", "content-type-quoted")),
    ("wordpress-field", FORM, _japanese_body("shift_jis", "wordpress-field", field="Shift_JIS")),
    ("wordpress-field-euc-jp", FORM, _japanese_body("euc_jp", "wordpress-field-euc-jp", field="EUC-JP")),
    ("wordpress-field-list", FORM, _japanese_body("euc_jp", "wordpress-field-list", field="EUC-JP,%20UTF-8")),
    ("content-type-wins", FORM + "; charset=EUC-JP", _japanese_body("euc_jp", "content-type-wins", field="Shift_JIS")),
    ("detected-utf-8", FORM, _japanese_body("utf-8", "detected-utf-8")),
    ("detected-shift-jis", FORM, _japanese_body("shift_jis", "detected-shift-jis")),
]


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_declared_and_detected_charsets(client, post):
    post_id, path, _ = post
    for case, content_type, body in JAPANESE_CASES:
        assert answer(post_form(client, path, body=body, content_type=content_type)) == ("0", None), case
    expected = ("東京ブログ", "日本語のタイトル\n\nトラックバックの抜粋です。")
    assert _by_source(post_id) == {case: expected for case, _, _ in JAPANESE_CASES}


WESTERN = ["café", "Café crème brûlée", "“Smart” quotes – and a dash", "Grüße aus Köln, schöne Straße"]


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_windows_1252_without_any_charset_is_read_as_such(client, post):
    post_id, path, _ = post
    for i, title in enumerate(WESTERN):
        body = encoded(url=f"http://127.0.0.1:9/{i}", title=title.encode("windows-1252"), blog_name=b"Blog")
        assert answer(post_form(client, path, body=body)) == ("0", None), title
    assert _by_source(post_id) == {str(i): ("Blog", title) for i, title in enumerate(WESTERN)}


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_raw_unencoded_bytes_in_the_body(client, post):
    """Some senders do not percent-encode: the bytes still reach the decoder as they are."""
    post_id, path, _ = post
    body = b"url=http://127.0.0.1:9/raw&title=" + "Grüße aus Köln".encode("utf-8") + b"&blog_name=Raw"
    assert answer(post_form(client, path, body=body)) == ("0", None)
    assert _stored_fields(post_id) == ("Raw", "Grüße aus Köln")


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_unknown_charset_is_an_error_not_a_crash(client, post):
    post_id, path, _ = post
    cases = [
        ("content-type", FORM + "; charset=x-nonsense", ""),
        ("field", FORM, "&charset=x-nonsense"),
        ("not-a-text-codec", FORM, "&charset=base64"),
        ("not-a-text-codec-in-header", FORM + "; charset=rot13", ""),
        ("nul-in-name", FORM, "&charset=utf-8%00"),
    ]
    for case, content_type, extra in cases:
        body = encoded(url="http://127.0.0.1:9/x", title="t") + extra.encode("ascii")
        error, message = answer(post_form(client, path, body=body, content_type=content_type))
        assert error == "1" and "charset" in message.lower(), case
    assert comments_on(post_id) == []


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_bytes_invalid_in_the_declared_charset(client, post):
    post_id, path, _ = post
    cases = [
        ("utf-8", FORM + "; charset=utf-8", b"\xff\xfe broken"),
        ("ascii", FORM + "; charset=us-ascii", "café".encode("latin-1")),
        ("idna raises a plain UnicodeError", FORM + "; charset=idna", b"xn--zz"),
    ]
    for case, content_type, value in cases:
        body = encoded(url="http://127.0.0.1:9/x", title=value)
        error, message = answer(post_form(client, path, body=body, content_type=content_type))
        assert error == "1" and "not valid" in message, case
    assert comments_on(post_id) == []


# ------------------------------------------------------------------ text, not markup

@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_entities_are_decoded_and_tags_dropped(client, post):
    post_id, path, _ = post
    fields = {"url": "http://127.0.0.1:9/e", "title": "Caf&eacute; &#8212; <em>notes</em> &amp; more",
              "excerpt": "<p>Some <b>bold</b>\n\n text &#8230;</p>", "blog_name": "&lt;Blog&gt; &#8211; Name"}
    assert answer(post_form(client, path, fields)) == ("0", None)
    author, content = _stored_fields(post_id)
    assert author == "<Blog> – Name"
    assert content == "Café — notes & more\n\nSome bold text …"


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_script_is_stored_as_text_and_shown_escaped(client, post):
    post_id, path, _ = post
    fields = {"url": "http://127.0.0.1:9/s", "title": "<script>alert('raw')</script>Harmless",
              "excerpt": "&lt;script&gt;alert(1)&lt;/script&gt; and <script>alert(2)</script>", "blog_name": "X"}
    assert answer(post_form(client, path, fields)) == ("0", None)
    _, content = _stored_fields(post_id)
    assert content == "Harmless\n\n<script>alert(1)</script> and"
    html = client.get(path).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "alert(1)</script>" not in html and "alert(2)" not in html and "alert('raw')" not in html


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_control_characters_do_not_break_the_comments_feed(client, post):
    """A character XML cannot carry (``&#1;``, a raw 0x01) must not reach the Atom feed of the post."""
    post_id, path, _ = post
    body = encoded(url="http://127.0.0.1:9/c", title=b"Bell\x07 and &#1; here", excerpt=b"x\x01y", blog_name=b"B\x0bl")
    assert answer(post_form(client, path, body=body)) == ("0", None)
    author, content = _stored_fields(post_id)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", author + content)
    feed = client.get(path + "feed/")
    assert feed.status_code == 200
    lxml.etree.fromstring(feed.get_data())


def test_control_characters_in_a_page_title_are_dropped(client, post, source_site):
    """Without a title, the stored one is the source page's: it is cleaned the same way."""
    post_id, path, link = post
    url = source_site.page("/ctl", f"<html><head><title>Page &#1;title\x02 here</title></head>"
                                   f"<body><p><a href='{link}'>link</a></p></body></html>")
    assert answer(post_form(client, path, {"url": url, "blog_name": "B"})) == ("0", None)
    author, content = _stored_fields(post_id)
    assert content == "Page title here"
    assert client.get(path + "feed/").status_code == 200


# ------------------------------------------------------------------ refusals

def test_missing_url(client, post, source_site):
    post_id, path, _ = post
    error, message = answer(post_form(client, path, {"title": "No url", "blog_name": "B", "excerpt": "E"}))
    assert error == "1" and "url" in message
    assert comments_on(post_id) == []
    assert source_site.requests == []


def test_url_must_be_http(client, post, source_site):
    post_id, path, _ = post
    for url in ["ftp://127.0.0.1/file", "javascript:alert(1)", "/relative/path", "http://", "mailto:a@b.test"]:
        error, message = answer(post_form(client, path, {"url": url, "title": "T"}))
        assert error == "1" and "http" in message, url
    assert comments_on(post_id) == []


def test_unknown_post(client, post, source_site):
    _, path, _ = post
    missing = path.replace("want-a-thriving-practice", "no-such-post")
    error, message = answer(post_form(client, missing, {"url": source_site.url_for("/p"), "title": "T"}))
    assert error == "1" and "no post" in message
    assert source_site.requests == []


def test_draft_post(client, ctx, source_site):
    post_id, path = make_post(title="Not yet", publish=False)
    error, message = answer(post_form(client, path, {"url": source_site.url_for("/p"), "title": "T"}))
    assert error == "1" and "no post" in message
    assert comments_on(post_id) == []
    assert source_site.requests == []


def test_pings_closed(client, ctx, source_site):
    post_id, path = make_post(title="Closed to pings", pings_open=False)
    url = linking_page(source_site, "/p", SITE_URL + path)
    error, message = answer(post_form(client, path, {"url": url, "title": "T"}))
    assert error == "1" and "closed" in message
    assert comments_on(post_id) == []
    assert source_site.requests == []


def test_pings_closed_by_age(app, client, ctx, source_site):
    app.config["CLOSE_COMMENTS_AFTER_DAYS"] = 7
    post_id, path = make_post(title="Old post", days_ago=30)
    url = linking_page(source_site, "/p", SITE_URL + path)
    error, message = answer(post_form(client, path, {"url": url, "title": "T"}))
    assert error == "1" and "closed" in message
    assert source_site.requests == []


def test_duplicate_trackback(client, post, source_site):
    """The same url again, also as written differently (fragment, trailing slash, https), is refused unfetched."""
    post_id, path, link = post
    variants = {"same": lambda url: url, "fragment": lambda url: url + "#comments",
                "trailing-slash": lambda url: url + "/", "https": lambda url: url.replace("http:", "https:")}
    for case, again in variants.items():
        url = linking_page(source_site, f"/dup-{case}", link)
        assert answer(post_form(client, path, {"url": url, "title": f"First {case}"})) == ("0", None)
        fetched = len(source_site.requests)
        error, message = answer(post_form(client, path, {"url": again(url), "title": "Second"}))
        assert error == "1" and "already registered" in message, case
        assert len(source_site.requests) == fetched, f"{case}: refused before any fetch"
    assert [c.content for c in comments_on(post_id)] == [f"First {case}" for case in variants]


def test_trackback_after_a_pingback_from_the_same_source(client, post, source_site):
    post_id, path, link = post
    url = linking_page(source_site, "/both", link)
    call = xmlrpc.client.dumps((url, link), "pingback.ping")
    reply = client.post("/xmlrpc", data=call, content_type="text/xml")
    (result,), _ = xmlrpc.client.loads(reply.get_data())
    assert "registered" in result
    assert len(source_site.requests) == 1
    error, message = answer(post_form(client, path, {"url": url, "title": "Same page again"}))
    assert error == "1" and "already registered" in message
    assert len(source_site.requests) == 1
    assert [c.kind for c in comments_on(post_id)] == ["pingback"]


def test_page_without_a_link_is_refused(client, post, source_site):
    post_id, path, _ = post
    url = source_site.page("/nolink", "<html><body><p>I mention <a href='http://blog.test/'>the blog</a>, "
                                      "and the post's words, but do not link to it.</p></body></html>")
    error, message = answer(post_form(client, path, {"url": url, "title": "T"}))
    assert error == "1" and "does not link" in message
    assert len(source_site.requests) == 1
    assert comments_on(post_id) == []


def test_source_that_cannot_be_fetched(client, post, source_site):
    post_id, path, _ = post
    url = source_site.page("/gone", "not here", status=404)
    error, message = answer(post_form(client, path, {"url": url, "title": "T"}))
    assert error == "1" and "could not be fetched" in message and "404" in message
    assert comments_on(post_id) == []


@pytest.mark.parametrize("config_overrides", [{**BASE, "LINKBACK_BODY_LIMIT": 512}])
def test_body_over_the_limit(client, post, source_site):
    post_id, path, _ = post
    body = encoded(url=source_site.url_for("/p"), title="T", excerpt="x" * 600)
    assert len(body) > 512
    error, message = answer(post_form(client, path, body=body))
    assert error == "1" and "512" in message
    assert source_site.requests == []
    assert comments_on(post_id) == []


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_too_many_fields(client, post):
    post_id, path, _ = post
    body = encoded(url="http://127.0.0.1:9/m", title="T") + b"".join(b"&f%d=1" % i for i in range(30))
    error, message = answer(post_form(client, path, body=body))
    assert error == "1" and "fields" in message
    assert comments_on(post_id) == []


@pytest.mark.parametrize("config_overrides", [NO_VERIFY])
def test_messages_are_xml_escaped(client, post):
    _, path, _ = post
    error, message = answer(post_form(client, path, body=b"url=http://127.0.0.1:9/&charset=%3Cb%3E%26amp;%3C/b%3E"))
    assert error == "1"
    assert "<b>&amp;</b>" in message  # came through the XML as the text it was


# ------------------------------------------------------------------ GET and discovery

def test_get_redirects_to_the_post(client, post):
    _, path, _ = post
    response = client.get(path + "trackback/")
    assert response.status_code == 302
    assert response.headers["Location"] in (path, SITE_URL + path)


def test_get_for_an_unknown_post(client, post):
    _, path, _ = post
    error, message = answer(client.get(path.replace("want-a-thriving-practice", "nothing-here") + "trackback/"))
    assert error == "1" and "no post" in message


RDF = re.compile(r"<!--\s*(<rdf:RDF\b.*?</rdf:RDF>)\s*-->", re.S)
NS = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "dc": "http://purl.org/dc/elements/1.1/",
      "trackback": "http://madskills.com/public/xml/rss/module/trackback/"}


def rdf_description(html: str) -> dict[str, str]:
    """The attributes of the one rdf:Description in the page's HTML comments, namespaces kept."""
    [block] = RDF.findall(html)
    description = ET.fromstring(block).find("rdf:Description", NS)
    assert description is not None
    return dict(description.attrib)


def test_post_page_advertises_the_trackback_url(client, ctx):
    _, path = make_post(title='Say "hi" -- to <everyone> & more')
    link = SITE_URL + path
    html = client.get(path).get_data(as_text=True)
    page = BeautifulSoup(html, "lxml")
    assert page.select_one('link[rel="trackback"]')["href"] == link + "trackback/"
    attrs = rdf_description(html)
    assert attrs[f"{{{NS['rdf']}}}about"] == link
    assert attrs[f"{{{NS['dc']}}}identifier"] == link
    assert attrs[f"{{{NS['trackback']}}}ping"] == link + "trackback/"
    # The RDF sits in one HTML comment: no "--" inside it to end it early, and a parser sees no RDF markup.
    start = html.rindex("<!--", 0, html.index("<rdf:RDF"))
    assert "--" not in html[start + 4:html.index("-->", start)]
    assert page.find("rdf:rdf") is None
    # The trackback URL it names is the one that takes pings.
    assert client.get(urlsplit(attrs[f"{{{NS['trackback']}}}ping"]).path).status_code == 302


def test_rdf_title_is_the_post_title(client, ctx):
    _, path = make_post(title='Say "hi" -- to <everyone> & more')
    attrs = rdf_description(client.get(path).get_data(as_text=True))
    assert attrs[f"{{{NS['dc']}}}title"] == 'Say "hi" -- to <everyone> & more'


def test_closed_post_has_no_trackback_rdf(client, ctx):
    _, path = make_post(title="Quiet post", pings_open=False)
    html = client.get(path).get_data(as_text=True)
    assert "rdf:RDF" not in html and "trackback:ping" not in html
    assert BeautifulSoup(html, "lxml").select_one('link[rel="trackback"]') is None
