"""Odd values thrown at every form and protocol endpoint, with Hypothesis (issue 11, part 3).

Each property sends one generated request and checks three things, example by example:

- no 500 (the test client re-raises what a view raised; ``no_server_errors`` watches the rest);
- nothing logged at ERROR or with a traceback (a pingback's verification runs in a thread,
  whose log records count too);
- a refused input (a 4xx, an XML-RPC fault, TrackBack error 1, a form shown again) leaves the
  database exactly as it was; an accepted one answers 2xx/3xx, and what it stored is what was
  sent, or its documented sanitised form, and renders (the post page, its feed, the admin lists).

The one record a refusal may leave is the admin's log of a verification that ran and failed
(``linkback_log`` rows whose outcome is "refused", and the finished job that verified it): a
refusal after fetching the source is a finding worth keeping, not a change of content.

Odd values are NUL, lone surrogates (only bytes can carry them: sent percent-encoded as raw
UTF-8-like bytes such as ``%ED%A0%80``), bidi and zero-width marks, control characters, huge
and negative numbers, strings one over each field's limit, bodies in latin-1 or raw invalid
UTF-8, odd XML encodings and TrackBack charsets, empty and whitespace-only values.

The examples are derandomized (the same ones on every run and in CI) and no example database is
written. Linkback sources are ``http://127.0.0.1:<port>/`` only: a closed port, or the
``source_site`` fixture; no other host is ever named. ``PROPERTY_SCALE=10`` (by hand, not in CI)
runs ten times the examples, drawn afresh each run. At the end of the file, plain example tests
pin each bug the properties found.
"""
from __future__ import annotations

import html
import io
import json
import logging
import os
import re
import tempfile
import xml.etree.ElementTree as ET
import xmlrpc.client
from base64 import b64encode
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote_from_bytes, urlsplit
from xml.sax.saxutils import escape

import nh3
import pytest
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import select
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from blogapp.extensions import db
from blogapp.linkback.verify import NOT_XML, cap, squash
from blogapp.models import (
    ACTIVE_JOB_STATUSES,
    BlockedDomain,
    Comment,
    CommentStatus,
    JobRecord,
    LinkbackLog,
    Page,
    Post,
    SiteSetting,
    User,
)
from blogapp.pages import save_page
from blogapp.posts import split_terms
from blogapp.templating import post_path, site_request_context
from blogapp.text import render_comment, slugify
from blogapp.validation import MAX_ID, parse_id
from conftest import SITE_URL, csrf_token
from helpers import add_comment, database, make_post, wait_for

pytestmark = [
    pytest.mark.usefixtures("no_server_errors"),
    # A failing example with a 500,000-character body is reported whole: Hypothesis warns that it is long.
    pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"),
]

FORM = "application/x-www-form-urlencoded"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens on the loopback, a fetch fails at once
ACTIVE = {s.value for s in ACTIVE_JOB_STATUSES}
VERIFY_TASKS = {"linkback.verify", "webmention.verify"}


# No example database (database=None below), and Hypothesis's other caches (the Unicode tables, the
# constants it collects from the code) outside the repository too.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "blogapp-hypothesis")

# A deeper search, by hand: PROPERTY_SCALE=10 runs ten times the examples, drawn afresh each run.
SCALE = float(os.environ.get("PROPERTY_SCALE", "1"))


def examples(n: int):
    """Hypothesis settings for a property on function-scoped fixtures (each example snapshots the
    database itself): ``n`` examples, the same ones on every run, no example database written."""
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=SCALE == 1, database=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


@pytest.fixture
def config_overrides():
    """Comments published at once (so they show in the feed), pings verified over the loopback only
    and not held back by the CPU share, nothing sent out, a failed job not tried again."""
    return {"COMMENT_MODERATION": "approve", "LINKBACK_MODERATION": "approve", "LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"],
            "LINKBACK_VERIFY_CPU": 0, "LINKBACK_VERIFY_BUDGET": 10.0, "SEND_LINKBACKS": False, "SELF_PINGS": False,
            "JOBS_MAX_ATTEMPTS": 1}


# =========================================================================== odd values

# Single characters (or short sequences) that have broken forms somewhere.
ODD_CHARS = [
    "\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85", "\u00a0", "\u00ad",
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\u2028", "\u2029",
    "\u3000", "\ufeff", "\ufffd", "\ufffe", "\uffff", "\U0010ffff", "\U0001f600", "e\u0301", "\u0130", "\u00df",
    "\ufb01", "\u0663", "\uff11", "\u00b2", "<b>", "</textarea>", "&amp;", "&#0;", "&#xD800;", "'", '"', "%", "%00",
    "%ED%A0%80", "\\", "/", "?", "#", "&", "=", "+", ";", ",", "\r\n", "\r", "\t", "..", "]]>",
]
# Byte sequences no UTF-8 decoder takes: lone surrogates (CESU), a lone continuation byte, an
# overlong "/", beyond U+10FFFF, latin-1's "é", a cut-off sequence, a BOM of UTF-16.
BAD_BYTES = [b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80", b"\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
             b"caf\xe9", b"\xc3", b"\xff\xfe", b"\xfe\xff"]
WHITESPACE = ["", " ", " \t\r\n ", "\u3000\u00a0\u2028\x85", "\u200b", "\u200e\u200f", "\ufeff"]
NUMBERS = ["0", "-1", "1", "01", "+1", "-0", " 1 ", "1.0", "1e3", "0x1F", "1_0", "\u0663", "\uff11", "\u00b2",
           "99999999999999999999", str(2**31 - 1), str(2**31), str(2**32), str(2**63 - 1), str(2**63), str(-2**63),
           "9" * 400, "", " ", "abc", "NaN", "inf", "\u200b1", "1\x00"]

_pieces = st.one_of(st.sampled_from(ODD_CHARS), st.characters(codec="utf-8"))


def odd_string(min_size: int = 0, max_size: int = 12):
    """Text made of odd characters and sequences, and any other character."""
    return st.lists(_pieces, min_size=min_size, max_size=max_size).map("".join)


short_text = odd_string()


def _long(unit: str, n: int) -> str:
    return (unit * n)[:n]


def odd_text(limit: int, *, raw: bool = True):
    """Odd values for a text field of at most ``limit`` characters: empty and invisible ones,
    generated text full of odd characters, strings at and over the limit, and (``raw``) bytes no
    UTF-8 decoder takes, as ``bytes``."""
    units = st.sampled_from(["a", "\u00e9", "\U0001f600", "\u200b", "e\u0301", " a", "\x0b"])
    parts = [
        st.sampled_from(WHITESPACE),
        odd_string(1, 24),
        # At the limit, one over, and well over (but under the 1 MB request cap, which has its own tests).
        st.builds(_long, units, st.sampled_from([limit, limit + 1, 2 * limit + 7] if limit < 100_000 else [limit, limit + 1])),
    ]
    if raw:
        parts.append(st.builds(lambda a, bad, b: a.encode("utf-8") + bad + b.encode("utf-8"),
                               short_text, st.sampled_from(BAD_BYTES), short_text))
    return st.one_of(*parts)


def mostly(usual, odd):
    """``usual`` (a value or a strategy) two times in three, else ``odd``: a form whose every field
    is odd at once is refused for the first one, and the later ones would never be reached."""
    usual = usual if isinstance(usual, st.SearchStrategy) else st.just(usual)
    return st.integers(0, 2).flatmap(lambda n: odd if n == 0 else usual)


def field(valid, limit: int, *, raw: bool = True):
    """A field's value: mostly a valid one, else an odd one."""
    return mostly(valid, odd_text(limit, raw=raw))


numbers = st.one_of(st.sampled_from(NUMBERS), st.integers(-(2**70), 2**70).map(str))


def encoded(value: str | bytes, charset: str = "utf-8") -> bytes:
    return value if isinstance(value, bytes) else value.encode(charset, "replace")


# How a form body is written: percent-encoded UTF-8 (what browsers send), percent-encoded
# latin-1, or raw bytes (UTF-8 or latin-1) without any escaping at all.
BODY_STYLES = ["utf-8", "utf-8", "utf-8", "latin-1", "raw", "raw-latin-1"]


def form_body(pairs: list[tuple[str, str | bytes]], style: str = "utf-8") -> bytes:
    charset = "latin-1" if style.endswith("latin-1") else "utf-8"
    if style.startswith("raw"):
        return b"&".join(encoded(k, charset) + b"=" + encoded(v, charset) for k, v in pairs)
    return "&".join(quote_from_bytes(encoded(k, charset), safe="") + "=" + quote_from_bytes(encoded(v, charset), safe="")
                    for k, v in pairs).encode("ascii")


def as_read(body: bytes, content_type: str = FORM):
    """The form as the app reads it: Werkzeug's own parser, given the very body that was sent."""
    return Request(EnvironBuilder(method="POST", data=body, content_type=content_type).get_environ()).form


def route_id(value: str | bytes) -> int | None:
    """The id an ``<int:...>`` route reads from ``value`` as a path segment, if it matches at all."""
    value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return int(value) if re.fullmatch(r"\d+", value) else None


def path_part(value: str | bytes) -> str:
    """A value as one percent-encoded path segment or query value."""
    return quote_from_bytes(encoded(value), safe="")


# =========================================================================== one example's watch


def snapshot() -> dict[str, list]:
    """``database()``, but each job as what it is and how it ended (id, name, key, arguments, status,
    result): the job thread's own bookkeeping (a lease, released in a commit of its own after the
    job ended) may land during the next example, and is none of that example's doing."""
    tables = database()
    tables["job_record"] = sorted(map(repr, db.session.execute(select(
        JobRecord.id, JobRecord.name, JobRecord.key, JobRecord.args, JobRecord.status, JobRecord.result)).all()))
    return tables


class Watch:
    """One example: the database before it, and the log records it adds.

    ``start()`` before the request; ``unchanged()`` after a refusal; ``clean()`` always. The test
    itself runs in no app context: each request gets its own, as in production (inside one, Flask
    would share its ``g``, the logged-in user and the site settings read, between requests).
    """

    def __init__(self, app, caplog):
        self.app, self.caplog = app, caplog
        caplog.set_level(logging.INFO)

    def start(self) -> Watch:
        with self.app.app_context():
            self.before = snapshot()
        self.mark = len(self.caplog.records)
        return self

    def clean(self) -> None:
        """Nothing logged as an error, and no traceback, since ``start()``."""
        bad = [r for r in self.caplog.records[self.mark:] if r.levelno >= logging.ERROR or r.exc_info]
        assert not bad, [(r.name, r.getMessage(), r.exc_text) for r in bad]

    def unchanged(self, *, verification_log: bool = False) -> None:
        """The database as it was. With ``verification_log``: but for the record of a verification
        that ran and refused (new ``linkback_log`` rows, refused, and their finished jobs)."""
        with self.app.app_context():
            after = snapshot()
        if not verification_log:
            assert after == self.before, self.changes(after)
            return
        for table in after:
            if table not in ("linkback_log", "job_record"):
                assert after[table] == self.before[table], table
            else:
                assert set(self.before[table]) <= set(after[table]), table
        new_logs = self.new(LinkbackLog)
        assert all(row.outcome == "refused" for row in new_logs), [(r.outcome, r.message) for r in new_logs]
        new_jobs = self.new(JobRecord)
        assert all(job.name in VERIFY_TASKS and job.status not in ACTIVE for job in new_jobs), \
            [(j.name, j.status) for j in new_jobs]

    def changes(self, after: dict) -> dict:
        """What differs from before, table by table: (rows gone, rows new), for a failure's message."""
        return {table: (sorted(set(self.before[table]) - set(rows)), sorted(set(rows) - set(self.before[table])))
                for table, rows in after.items() if rows != self.before[table]}

    def new(self, model) -> list:
        """Rows of ``model`` added since ``start()`` (by id), detached, their columns loaded."""
        before_ids = {int(re.match(r"\((\d+),", row).group(1)) for row in self.before[model.__tablename__]}
        with self.app.app_context():
            rows = db.session.scalars(select(model).where(model.id.notin_(before_ids)).order_by(model.id)).all()
            db.session.expunge_all()
        return rows


@pytest.fixture
def watch(app, caplog):
    return Watch(app, caplog)


def fetch(app, model, ident: int | None):
    """The row of ``model`` with id ``ident``, detached with its columns loaded; None if there is
    none (or ``ident`` is no id a column holds)."""
    if ident is None or not 0 < ident <= MAX_ID:
        return None
    with app.app_context():
        found = db.session.get(model, ident)
        db.session.expunge_all()
        return found


def settle(app, timeout: float = 30.0) -> None:
    """Wait until no job waits or runs, as the database has it: what an example started (a
    verification, an import) ends within it, and the next example starts from a still database."""
    def idle() -> bool:
        with app.app_context():
            return db.session.scalar(select(JobRecord.id).where(JobRecord.status.in_(ACTIVE)).limit(1)) is None

    assert wait_for(idle, timeout), f"a job still waits or runs after {timeout} s"


def admin_token(client) -> str:
    """The logged-in admin's CSRF token, read from a page once per client (the session keeps it)."""
    if not hasattr(client, "csrf"):
        client.csrf = csrf_token(client, "/admin/")
    return client.csrf


def well_formed_xml(data: bytes) -> ET.Element:
    return ET.fromstring(data)


@pytest.fixture
def post(app):
    """A published post open to comments and pings, with one approved and one held comment:
    (id, path, permalink, approved comment id, held comment id)."""
    with app.app_context(), site_request_context(app):
        post_id, path = make_post(title="Target post", days_ago=3)
        approved = add_comment(post_id, "An approved comment")
        held = add_comment(post_id, "A held comment", status=CommentStatus.PENDING)
    return post_id, path, SITE_URL + path, approved, held


# =========================================================================== the comment form

EMAILS = st.sampled_from(["ann@example.org", "a@b", "ann@exa\u200bmple.org", "ann@[127.0.0.1]", "\u202eann@example.org",
                          "ann@\u4f8b\u3048.jp", "ann@@example.org", " ann@example.org ", "ann@example.org\n", "@",
                          "ann@example.org\x00", "\u0430nn@example.org", "x" * 64 + "@example.org", "x" * 65 + "@example.org"])
URLS = st.sampled_from(["", "https://ann.example/", "javascript:alert(1)", "http://127.0.0.1:99999/", "http://[::1/",
                        "https://ex\u200bample.org/", "http://", " https://ann.example/ ", "HTTPS://ANN.EXAMPLE",
                        "https://ann.example/\u202e", "ftp://ann.example/", "https://ann.example/" + "p" * 1990,
                        "https://ann.example/" + "p" * 1985, "https://\u2100.example/"])
APPROVED, HELD = "<the approved comment>", "<the held comment>"


@given(
    author_name=field("Ann", 245), author_email=st.one_of(EMAILS, odd_text(254)),
    author_url=st.one_of(URLS, odd_text(2000)), content=field("My comment", 10_000),
    parent_id=st.one_of(st.sampled_from(["", APPROVED, HELD]), numbers, odd_text(20)),
    homepage=st.one_of(st.just(""), st.just(""), odd_text(255)),
    post_id=st.one_of(st.just(None), st.just(None), st.just(None), st.sampled_from(NUMBERS)),
    style=st.sampled_from(BODY_STYLES),
)
@examples(100)
def test_the_comment_form_takes_odd_values_without_a_500_and_stores_what_was_sent(
        client, post, watch, author_name, author_email, author_url, content, parent_id, homepage, post_id, style):
    """A stranger's comment, in any of the body's spellings: refused with the form shown again and
    the text kept, thanked and dropped (the honeypot), or stored as sent (the name, email and
    address trimmed) and shown on the page and in its feed."""
    parent_id = {APPROVED: str(post[3]), HELD: str(post[4])}.get(parent_id, parent_id)
    body = form_body([("author_name", author_name), ("author_email", author_email), ("author_url", author_url),
                      ("content", content), ("parent_id", parent_id), ("homepage", homepage)], style)
    sent = as_read(body)
    watch.start()
    url = f"/posts/{post[0] if post_id is None else path_part(post_id)}/comments"
    response = client.post(url, data=body, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if post_id is not None and route_id(post_id) != post[0]:
        assert response.status_code in (404, 405, 308), response.status_code
        watch.unchanged()
        return
    if response.status_code == 400:
        watch.unchanged()
        page = BeautifulSoup(response.get_data(as_text=True), "lxml")
        assert page.select_one(".form-error"), "a refused comment says why"
        shown = page.select_one("textarea[name=content]").get_text().removeprefix("\n")
        typed = sent.get("content", "").replace("\x00", "")[:10_000]
        assert shown == typed.replace("\r\n", "\n").replace("\r", "\n")  # what was typed, kept (as HTML reads it)
        return
    assert response.status_code == 303, response.status_code
    if sent.get("homepage"):
        watch.unchanged()  # the honeypot: thanked, and nothing kept
        return
    [comment] = watch.new(Comment)
    assert (comment.author_name, comment.author_email, comment.author_url, comment.content) == (
        sent["author_name"].strip(), sent["author_email"].strip(), sent.get("author_url", "").strip(), sent["content"])
    assert comment.content_html == render_comment(sent["content"])
    assert comment.parent_id == (parse_id(sent.get("parent_id", "")) if sent.get("parent_id", "").strip() else None)
    assert comment.parent_id in (None, post[3])
    assert comment.status == CommentStatus.APPROVED and comment.post_id == post[0]
    # What was stored renders: the post page, and the comments feed as well-formed XML.
    assert client.get(post[1]).status_code == 200
    feed = client.get(post[1] + "feed/")
    assert feed.status_code == 200
    well_formed_xml(feed.get_data())


ORIGINS = st.one_of(st.sampled_from([SITE_URL, SITE_URL + "/", SITE_URL + ":80", "http://BLOG.TEST", "https://blog.test",
                                      "null", "", "http://blog.test.evil.example", "http://[::1", "http://blog.test:99999",
                                      "http://\u2100.test", "//blog.test", "blog.test", SITE_URL + "/\x00"]), odd_text(40))


@given(origin=st.one_of(st.none(), ORIGINS), referer=st.one_of(st.none(), ORIGINS),
       token=st.one_of(st.none(), st.just("valid"), odd_text(60)), header_token=st.one_of(st.none(), st.just("valid"), odd_text(60)))
@examples(40)
def test_an_admins_comment_takes_odd_origins_and_tokens(app, admin_client, post, watch, origin, referer, token, header_token):
    """A logged-in admin's comment counts only from our own pages (its token, or our Origin/Referer)."""
    valid = admin_token(admin_client)
    headers = {name: as_header(value) for name, value in (("Origin", origin), ("Referer", referer)) if value is not None}
    if header_token is not None:
        headers["X-CSRFToken"] = valid if header_token == "valid" else as_header(header_token)
    data = comment_form(content="From the admin")
    if token is not None:
        data["csrf_token"] = valid if token == "valid" else token
    watch.start()
    response = admin_client.post(f"/posts/{post[0]}/comments", data=data, headers=headers)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    # The form's token if one is sent (not empty), else the header's; else the Origin, or the Referer if no Origin is sent.
    vouched = (token or header_token) == "valid"
    sender = origin if origin is not None else referer
    if response.status_code == 400:
        assert not vouched and sender not in (SITE_URL, SITE_URL + "/", SITE_URL + ":80", "http://BLOG.TEST")
        watch.unchanged()
        return
    assert vouched or sender not in ("https://blog.test", "null", "", "http://blog.test.evil.example", "http://[::1",
                                     "http://blog.test:99999", "//blog.test", "blog.test", None)
    assert response.status_code == 303
    [comment] = watch.new(Comment)
    assert (comment.content, comment.status, comment.user_id is not None) == ("From the admin", "approved", True)


# =========================================================================== admin: log in


@given(username=field("admin", 80), password=field("correct horse", 100),
       remember=st.one_of(st.just(""), st.just("y"), odd_text(10, raw=False)),
       next_=st.one_of(st.just(None), st.sampled_from(["/admin/posts", "//evil.example/", "/\\evil.example", "http://evil.example/",
                                                        "/\t/evil.example", "/%ED%A0%80", "/admin/?a=\u202e"]), odd_text(50)),
       token=mostly("valid", st.sampled_from(["missing", "odd"])), style=st.sampled_from(BODY_STYLES))
@examples(60)
def test_login_takes_odd_values_and_changes_nothing(app, auth, post, watch, username, password, remember, next_, token, style):
    """Logging in writes nothing, whatever is typed; only the right name and password log in, and
    ``next`` never leads off the site."""
    with app.app_context():
        if db.session.scalar(select(User.id).where(User.username == "admin")) is None:
            auth.create()
    client = app.test_client()  # a new browser each time: one example's login is not the next one's
    pairs = [("username", username), ("password", password), ("remember", remember)]
    if token != "missing":
        pairs.append(("csrf_token", csrf_token(client, "/admin/login") if token == "valid" else "\u202e\x00x"))
    body = form_body(pairs, style)
    sent = as_read(body)
    url = "/admin/login" + ("" if next_ is None else "?next=" + path_part(next_))
    watch.start()
    response = client.post(url, data=body, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    watch.unchanged()  # logging in writes nothing, right or wrong
    if response.status_code == 302:
        assert (sent.get("username", "").strip(), sent.get("password")) == ("admin", "correct horse")
        location = urlsplit(response.headers["Location"])
        assert location.netloc in ("", "localhost") and location.path.startswith("/") and not location.path.startswith("//")
        assert client.get("/admin/").status_code == 200
    else:
        assert response.status_code in (400, 401), response.status_code
        assert client.get("/admin/").status_code == 302  # not logged in


# =========================================================================== admin: posts

POST_TITLE, POST_SLUG = 300, 180
DATES = st.sampled_from(["", "2026-01-02T03:04", "2026-01-02T03:04:05", "1900-01-01T00:00", "9998-12-31T23:59",
                         "1899-12-31T23:59", "9999-01-01T00:00", "0001-01-01T00:00", "2026-02-30T00:00", "2026-13-01T00:00",
                         "\uff12\uff10\uff12\uff16-01-01T00:00", "2026-01-01", "2026-01-01T24:00", "-2026-01-01T00:00",
                         "99999-01-01T00:00", "2026-01-01T00:00Z", "2026-01-01 00:00", " 2026-01-01T00:00 "])
SWITCH = st.sampled_from(["", "y", "false", "0", "\x00", "\u200b", None])
STATUS = mostly(st.sampled_from(["draft", "published", "private"]),
                st.one_of(st.sampled_from(["", "PUBLISHED", "scheduled", "published\x00"]), odd_text(20, raw=False)))


def _typed_date(value: str) -> datetime | None:
    """The date the post form reads from ``value`` (its two formats), if any."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def _switch_sent(sent, name: str) -> bool:
    values = sent.getlist(name)
    return bool(values) and values[0] not in ("", "false")


@given(
    title=field("A title", POST_TITLE), slug=field("", POST_SLUG), body=field("Some *body*", 500_000),
    excerpt=field("", 5000), categories=field("News, Notes", 120), tags=field("one, two", 120), status=STATUS,
    published_at=mostly(DATES, odd_text(20)), switches=st.tuples(SWITCH, SWITCH, SWITCH),
    preview=st.sampled_from([None, None, None, "y"]), which=st.sampled_from(["new", "new", "edit", "odd"]),
    odd_id=numbers, style=st.sampled_from(BODY_STYLES),
)
@examples(80)
def test_the_post_editor_takes_odd_values_and_stores_what_was_sent(
        app, admin_client, post, watch, title, slug, body, excerpt, categories, tags, status, published_at, switches,
        preview, which, odd_id, style):
    """A new post, an edit, or an odd id: the form again (400, 413 over the request cap, or a
    preview, 200) with nothing written, a 404, or a post stored as typed (its title's whitespace
    collapsed, its slug made from it) that its editor, its page, its archives and the feed show."""
    token = admin_token(admin_client)
    pairs = [("title", title), ("slug", slug), ("body", body), ("excerpt", excerpt), ("categories", categories),
             ("tags", tags), ("status", status), ("published_at", published_at), ("csrf_token", token)]
    pairs += [(name, value) for name, value in zip(("comments_open", "pings_open", "send_linkbacks"), switches)
              if value is not None]
    if preview:
        pairs.append(("preview", preview))
    data = form_body(pairs, style)
    sent = as_read(data)
    edited = {"new": None, "edit": post[0]}.get(which, route_id(odd_id))
    url = "/admin/posts/new" if which == "new" else f"/admin/posts/{post[0] if which == 'edit' else path_part(odd_id)}/edit"
    before = fetch(app, Post, edited)
    watch.start()
    response = admin_client.post(url, data=data, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if not sent.get("csrf_token"):  # the token lost in a body that is not UTF-8: refused before the view
        assert response.status_code in (400, 404, 405, 308, 413), response.status_code
        watch.unchanged()
        return
    if which == "odd" and before is None:
        assert response.status_code in (404, 405, 308, 413), response.status_code  # no such post (nor 0); 413: over the cap
        watch.unchanged()
        return
    if response.status_code in (200, 400, 413):  # a preview, the form again with its errors, or over the request cap
        assert response.status_code != 200 or sent.get("preview")
        watch.unchanged()
        return
    assert response.status_code == 302, response.status_code
    post_id = int(re.fullmatch(r"/admin/posts/(\d+)/edit", response.headers["Location"]).group(1))
    if which == "new":
        assert [p.id for p in watch.new(Post)] == [post_id]
    else:
        assert post_id == edited and watch.new(Post) == []
    with app.app_context(), site_request_context(app):
        saved = db.session.get(Post, post_id)
        terms = [("category", c.name, c.slug) for c in saved.categories] + [("tag", t.name, t.slug) for t in saved.tags]
        path = post_path(saved)
        db.session.expunge_all()
    assert saved.title == " ".join(sent["title"].split())
    assert saved.body == sent.get("body", "")
    assert saved.excerpt == sent.get("excerpt", "").strip()
    if before is not None and not sent.get("slug"):
        assert saved.slug == before.slug  # an empty slug keeps the post's address
    else:
        base = slugify(sent.get("slug") or sent["title"]) or "post"
        assert re.fullmatch(re.escape(base) + r"(-\d+)?", saved.slug), (saved.slug, base)
    assert sorted(name for kind, name, _ in terms if kind == "category") == sorted(split_terms(sent.get("categories", "")))
    assert sorted(name for kind, name, _ in terms if kind == "tag") == sorted(split_terms(sent.get("tags", "")))
    assert saved.status == sent["status"]
    typed = _typed_date(sent.get("published_at", ""))
    if typed is not None and (before is None or before.published_at is None or typed != before.published_at.replace(second=0, microsecond=0)):
        assert saved.published_at == typed  # the site's zone is UTC here
    assert (saved.comments_open, saved.pings_open, saved.send_linkbacks) == tuple(
        _switch_sent(sent, name) for name in ("comments_open", "pings_open", "send_linkbacks"))
    # What was stored renders: the editor, the post (to its admin), its archives, the feed.
    assert admin_client.get(f"/admin/posts/{post_id}/edit").status_code == 200
    assert admin_client.get("/admin/posts").status_code == 200
    assert admin_client.get(path).status_code == 200
    for kind, _, slug in terms:
        assert admin_client.get(f"/{kind}/{slug}/").status_code in (200, 404)  # 404: no published post in it
    feed = admin_client.get("/feed/")
    assert feed.status_code == 200
    well_formed_xml(feed.get_data())
    export = admin_client.get("/admin/tools/export")  # the whole blog as a WordPress export
    assert export.status_code == 200
    well_formed_xml(export.get_data())


# =========================================================================== admin: pages


@given(
    title=field("About", 300), slug=field("", 180), body=field("Text", 500_000),
    menu_order=mostly(st.sampled_from(["0", "-5", "1000000"]), st.one_of(numbers, odd_text(12))),
    status=mostly(st.sampled_from(["draft", "published"]), odd_text(12, raw=False)),
    preview=st.sampled_from([None, None, None, "y"]), which=st.sampled_from(["new", "new", "edit", "odd"]),
    odd_id=numbers, style=st.sampled_from(BODY_STYLES),
)
@examples(50)
def test_the_page_editor_takes_odd_values_and_stores_what_was_sent(
        app, admin_client, post, watch, title, slug, body, menu_order, status, preview, which, odd_id, style):
    """Like the post editor, for pages: stored as typed, at an address that is no word of the site's."""
    with app.app_context():
        page_id = db.session.scalar(select(Page.id).order_by(Page.id).limit(1))
    if page_id is None:  # a page to edit, made once (the examples share the app)
        token = admin_token(admin_client)
        response = admin_client.post("/admin/pages/new", data={"title": "Existing", "body": "", "menu_order": "0",
                                                               "status": "published", "csrf_token": token})
        assert response.status_code == 302
        page_id = int(response.headers["Location"].rsplit("/", 2)[-2])
    token = admin_token(admin_client)
    pairs = [("title", title), ("slug", slug), ("body", body), ("menu_order", menu_order), ("status", status),
             ("csrf_token", token)]
    if preview:
        pairs.append(("preview", preview))
    data = form_body(pairs, style)
    sent = as_read(data)
    edited = {"new": None, "edit": page_id}.get(which, route_id(odd_id))
    url = "/admin/pages/new" if which == "new" else f"/admin/pages/{page_id if which == 'edit' else path_part(odd_id)}/edit"
    before = fetch(app, Page, edited)
    watch.start()
    response = admin_client.post(url, data=data, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if not sent.get("csrf_token"):  # the token lost in a body that is not UTF-8: refused before the view
        assert response.status_code in (400, 404, 405, 308, 413), response.status_code
        watch.unchanged()
        return
    if which == "odd" and before is None:
        assert response.status_code in (404, 405, 308, 413), response.status_code
        watch.unchanged()
        return
    if response.status_code in (200, 400, 413):
        assert response.status_code != 200 or sent.get("preview")
        watch.unchanged()
        return
    assert response.status_code == 302, response.status_code
    saved_id = int(re.fullmatch(r"/admin/pages/(\d+)/edit", response.headers["Location"]).group(1))
    assert saved_id == edited if before is not None else [p.id for p in watch.new(Page)] == [saved_id]
    saved = fetch(app, Page, saved_id)
    assert saved.title == " ".join(sent["title"].split())
    assert saved.body == sent.get("body", "")
    menu_order = sent.get("menu_order", "")
    assert saved.menu_order == (int(menu_order) if menu_order.strip() else 0)  # blank: Optional(), so 0
    assert saved.status == sent["status"]
    if before is not None and not sent.get("slug"):
        assert saved.slug == before.slug
    else:
        base = slugify(sent.get("slug") or sent["title"]) or "page"
        # A slug that is a word of the site's own ("feed") or a number gets "-2" too.
        assert re.fullmatch(re.escape(base) + r"(-\d+)?", saved.slug), (saved.slug, base)
    assert admin_client.get(f"/admin/pages/{saved_id}/edit").status_code == 200
    assert admin_client.get("/admin/pages").status_code == 200
    assert admin_client.get(f"/{saved.slug}/").status_code == 200
    assert admin_client.get("/").status_code == 200  # the navigation lists it


# =========================================================================== admin: comments

TRANSITIONS = {  # (status, action) -> status after, as the moderation screen promises
    "approve": {"pending": "approved", "spam": "approved", "trash": "approved"},
    "unapprove": {"approved": "pending"},
    "spam": {"pending": "spam", "approved": "spam", "trash": "spam"},
    "trash": {"pending": "trash", "approved": "trash", "spam": "trash"},
}


@given(
    status=st.sampled_from(["pending", "approved", "spam", "trash"]),
    action=st.one_of(st.sampled_from(["approve", "unapprove", "spam", "trash", "restore", "delete"]), odd_text(20, raw=False)),
    target=st.one_of(st.just(None), st.just(None), numbers),
    bulk=st.booleans(), ids=st.lists(st.one_of(st.just(None), numbers, odd_text(10)), max_size=4),
    next_=st.one_of(st.just(None), st.sampled_from(["/admin/comments?status=spam", "//evil.example/", "javascript:x"]),
                    odd_text(30)),
    token=st.sampled_from(["valid", "valid", "valid", "missing", "odd"]), style=st.sampled_from(BODY_STYLES),
)
@examples(60)
def test_moderation_actions_take_odd_ids_and_actions(app, admin_client, post, watch, status, action, target, bulk, ids, next_,
                                                     token, style):
    """One comment or a ticked list, any action: only the comments named by an id, with an action
    the screen offers, change, as the moderation screen promises; the rest stays as it was."""
    with app.app_context():
        comment_id = add_comment(post[0], "To moderate", status=CommentStatus(status))
        states = {c.id: (c.status, c.previous_status) for c in db.session.scalars(select(Comment))}
    pairs = []
    if token != "missing":
        pairs.append(("csrf_token", admin_token(admin_client) if token == "valid" else "x\u202e"))
    if next_ is not None:
        pairs.append(("next", next_))
    if bulk:
        pairs.append(("action", action))
        pairs += [("ids", str(comment_id) if i is None else i) for i in ids]
        url = "/admin/comments/bulk"
    else:
        url = f"/admin/comments/{comment_id if target is None else path_part(target)}/{path_part(action)}"
    data = form_body(pairs, style)
    sent = as_read(data)
    if bulk:  # the ids the app reads: ASCII digits only (anything else is ignored, not an error)
        acted = {int(i) for i in sent.getlist("ids") if i.isascii() and i.isdigit() and int(i) in states}
    else:
        acted = {i for i in [comment_id if target is None else route_id(target)] if i in states}
    action_sent = sent.get("action", "") if bulk else action
    watch.start()
    response = admin_client.post(url, data=data, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if response.status_code in (400, 404, 405, 308):
        assert response.status_code == 400 or not acted or action_sent not in (*TRANSITIONS, "restore", "delete")
        watch.unchanged()
        return
    assert response.status_code == 302, response.status_code
    location = urlsplit(response.headers["Location"])
    assert location.netloc in ("", "localhost") and not location.path.startswith("//")
    if not acted or action_sent not in (*TRANSITIONS, "restore", "delete"):
        watch.unchanged()
        return
    with app.app_context():
        after = {c.id: c.status for c in db.session.scalars(select(Comment))}
    for i in acted:
        was, previous = states[i]
        if action_sent == "delete":
            assert i not in after
        elif action_sent == "restore" and was in ("spam", "trash"):
            assert after[i] == (previous if previous in ("pending", "approved") else "pending")
        else:
            assert after[i] == TRANSITIONS.get(action_sent, {}).get(was, was)
    assert {i: s for i, s in after.items() if i not in acted} == {i: s for i, (s, _) in states.items()
                                                                  if i not in acted and i in after}
    assert admin_client.get("/admin/comments").status_code == 200


POST_ACTIONS = ["delete", "open-comments", "close-comments", "open-pings", "close-pings"]


@given(
    kind=st.sampled_from(["delete-post", "delete-page", "send-one", "send-all", "posts-bulk"]),
    which=mostly(None, numbers), link=numbers, action=mostly(st.sampled_from(POST_ACTIONS), odd_text(20, raw=False)),
    ids=st.lists(mostly(None, st.one_of(numbers, odd_text(10))), max_size=3),
    token=mostly("valid", st.sampled_from(["missing", "odd"])), style=st.sampled_from(BODY_STYLES),
)
@examples(50)
def test_post_and_page_actions_take_odd_ids(app, admin_client, post, watch, kind, which, link, action, ids, token, style):
    """Delete a post or a page, send a post's linkbacks again, a bulk action on posts: each on a row
    made for the example (``which`` None) or on an odd id, which names a row or is a 404."""
    with app.app_context(), site_request_context(app):
        post_id, _ = make_post(title="Made for one example")
        page_id = save_page(None, title="Made for one example", body="").id
        db.session.commit()
        rows = {"post": {p.id: (p.comments_open, p.pings_open) for p in db.session.scalars(select(Post))},
                "page": set(db.session.scalars(select(Page.id)))}
    pairs = [("csrf_token", admin_token(admin_client) if token == "valid" else "\u202e")] if token != "missing" else []
    target = post_id if which is None else route_id(which)
    segment = str(post_id) if which is None else path_part(which)
    if kind == "delete-post":
        url, acted = f"/admin/posts/{segment}/delete", {target} & set(rows["post"])
    elif kind == "delete-page":
        url, acted = f"/admin/pages/{page_id if which is None else segment}/delete", {
            page_id if which is None else target} & rows["page"]
    elif kind == "send-one":
        url, acted = f"/admin/posts/{segment}/linkbacks/{path_part(link)}/send", set()  # no post here links anywhere
    elif kind == "send-all":
        url, acted = f"/admin/posts/{segment}/linkbacks/send", set()
    else:
        url = "/admin/posts/bulk"
        pairs += [("action", action), ("confirmed", "yes"), *[("ids", str(post_id) if i is None else i) for i in ids]]
    data = form_body(pairs, style)
    sent = as_read(data)
    if kind == "posts-bulk":
        acted = {int(i) for i in sent.getlist("ids") if i.isascii() and i.isdigit() and int(i) in rows["post"]}
        if sent.get("action") not in POST_ACTIONS:
            acted = set()
    watch.start()
    response = admin_client.post(url, data=data, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if response.status_code != 302 or not acted:
        assert response.status_code in (302, 400, 404, 405, 308), response.status_code
        watch.unchanged()
        return
    location = urlsplit(response.headers["Location"])
    assert location.netloc in ("", "localhost") and location.path.startswith("/admin/")
    with app.app_context():
        after = {"post": {p.id: (p.comments_open, p.pings_open) for p in db.session.scalars(select(Post))},
                 "page": set(db.session.scalars(select(Page.id)))}
    if kind == "delete-page":
        assert after["page"] == rows["page"] - acted and after["post"] == rows["post"]
    elif kind == "delete-post" or sent.get("action") == "delete":
        assert set(after["post"]) == set(rows["post"]) - acted
    else:
        column, value = {"comments": 0, "pings": 1}[sent["action"].split("-")[1]], sent["action"].startswith("open")
        assert {i: state[column] for i, state in after["post"].items()} == {
            i: (value if i in acted else state[column]) for i, state in rows["post"].items()}
    assert admin_client.get("/admin/posts").status_code == 200
    assert admin_client.get("/").status_code == 200


@given(
    author_name=field("Visitor", 245), author_email=st.one_of(EMAILS, odd_text(254)), author_url=st.one_of(URLS, odd_text(2000)),
    content=field("Edited", 10_000), status=mostly(st.sampled_from(["pending", "approved", "spam", "trash"]), odd_text(10)),
    reply=st.booleans(), target=st.one_of(st.just(None), st.just(None), numbers), style=st.sampled_from(BODY_STYLES),
)
@examples(60)
def test_comment_edit_and_reply_take_odd_values_and_store_what_was_sent(
        app, admin_client, post, watch, author_name, author_email, author_url, content, status, reply, target, style):
    """An admin's edit of a comment, or reply to it: stored as typed, shown on the post and in its feed."""
    comment_id = post[3] if target is None else route_id(target)
    path = f"/admin/comments/{post[3] if target is None else path_part(target)}/{'reply' if reply else 'edit'}"
    before = fetch(app, Comment, comment_id)
    token = admin_token(admin_client)
    if reply:
        pairs = [("content", content), ("csrf_token", token)]
    else:
        pairs = [("author_name", author_name), ("author_email", author_email), ("author_url", author_url),
                 ("content", content), ("status", status), ("csrf_token", token)]
    data = form_body(pairs, style)
    sent = as_read(data)
    watch.start()
    response = admin_client.post(path, data=data, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if not sent.get("csrf_token"):  # the token lost in a body that is not UTF-8: refused before the view
        assert response.status_code in (400, 404, 405, 308, 413), response.status_code
        watch.unchanged()
        return
    if before is None:
        assert response.status_code in (404, 405, 308), response.status_code
        watch.unchanged()
        return
    if response.status_code == 400:
        watch.unchanged()
        return
    assert response.status_code == 302, response.status_code
    if reply:
        [new] = watch.new(Comment)
        assert (new.content, new.parent_id, new.status) == (sent["content"], comment_id, "approved")
        assert new.content_html == render_comment(sent["content"])
    else:
        comment = fetch(app, Comment, comment_id)
        assert (comment.author_name, comment.author_email, comment.author_url, comment.content, comment.status) == (
            sent["author_name"], sent.get("author_email", "").strip(), sent.get("author_url", "").strip(), sent["content"],
            sent["status"])
        assert comment.content_html == render_comment(sent["content"])
    assert admin_client.get(f"/admin/comments?status={'approved' if reply else sent['status']}").status_code == 200
    assert admin_client.get(post[1]).status_code == 200
    feed = admin_client.get(post[1] + "feed/")
    assert feed.status_code == 200
    well_formed_xml(feed.get_data())


# =========================================================================== admin: settings


@given(
    title=field("My blog", 200), description=field("Words", 300),
    per_page=mostly(st.sampled_from(["10", "1", "100"]), st.one_of(numbers, odd_text(5))),
    moderation=mostly(st.sampled_from(["hold-all", "hold-new", "approve"]), odd_text(10)),
    depth=mostly(st.sampled_from(["5", "1", "10"]), numbers), close_after=mostly(st.sampled_from(["0", "100000"]), numbers),
    style=st.sampled_from(BODY_STYLES),
)
@examples(50)
def test_settings_take_odd_values_and_store_what_was_sent(app, admin_client, post, watch, title, description, per_page,
                                                         moderation, depth, close_after, style):
    """The settings: stored as typed, and every page that shows them renders (the feed too)."""
    token = admin_token(admin_client)
    data = form_body([("SITE_TITLE", title), ("SITE_DESCRIPTION", description), ("POSTS_PER_PAGE", per_page),
                      ("COMMENT_MODERATION", moderation), ("COMMENT_THREAD_DEPTH", depth),
                      ("CLOSE_COMMENTS_AFTER_DAYS", close_after), ("csrf_token", token)], style)
    sent = as_read(data)
    watch.start()
    response = admin_client.post("/admin/settings", data=data, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if response.status_code == 400:
        watch.unchanged()
        return
    assert response.status_code == 302, response.status_code
    with app.app_context():
        stored = {row.key: row.value for row in db.session.scalars(select(SiteSetting))}
    assert json.loads(stored["SITE_TITLE"]) == sent["SITE_TITLE"]
    assert json.loads(stored["SITE_DESCRIPTION"]) == sent.get("SITE_DESCRIPTION", "")
    assert json.loads(stored["POSTS_PER_PAGE"]) == int(sent["POSTS_PER_PAGE"])
    assert json.loads(stored["COMMENT_MODERATION"]) == sent["COMMENT_MODERATION"]
    # Every page that shows the settings renders them.
    for url in ("/", post[1], "/admin/settings", "/page/2/"):
        assert admin_client.get(url).status_code in (200, 404), url
    feed = admin_client.get("/feed/")
    assert feed.status_code == 200
    well_formed_xml(feed.get_data())


# =========================================================================== admin: linkbacks, blocked domains

DOMAINS = st.sampled_from(["spam.example", "SPAM.Example.", "http://spam.example/path", "https://[::1/", "http://[::1]/",
                           "http://spam.example:99999/", "http://\u2100.example/", "b\u00fccher.example", "\u0130.example",
                           "-.example", "a..example", "." * 10, "x" * 64 + ".example", ("a" * 63 + ".") * 4 + "a",
                           "xn--bcher-kva.example", "spam.example\u200b", "\u202espam.example", "*.example", "ftp://x"])


@given(domain=st.one_of(DOMAINS, odd_text(253)), unblock=mostly(None, numbers),
       outcome=st.one_of(st.sampled_from(["", "refused", "accepted", "verifying"]), odd_text(12)),
       page=st.one_of(st.just("1"), numbers), token=st.sampled_from(["valid", "valid", "missing"]),
       style=st.sampled_from(BODY_STYLES))
@examples(60)
def test_blocked_domains_and_the_linkback_log_take_odd_values(app, admin_client, post, watch, domain, unblock, outcome, page,
                                                              token, style):
    """The linkback log's filters, blocking and unblocking: a domain is stored normalised (its host,
    lower case, no final dot), or refused with the reason flashed and nothing stored."""
    watch.start()
    listing = admin_client.get(f"/admin/linkbacks?outcome={path_part(outcome)}&page={path_part(page)}")
    assert listing.status_code in (200, 400), listing.status_code
    pairs = [("domain", domain)]
    if token == "valid":
        pairs.append(("csrf_token", admin_token(admin_client)))
    data = form_body(pairs, style)
    sent = as_read(data)
    if unblock is not None:
        blocked_id = route_id(unblock)
        there = fetch(app, BlockedDomain, blocked_id) is not None
        response = admin_client.post(f"/admin/linkbacks/unblock/{path_part(unblock)}", data=form_body(pairs[1:]),
                                     content_type=FORM)
        watch.clean()
        if there and token == "valid":
            assert response.status_code == 302
            assert fetch(app, BlockedDomain, blocked_id) is None
            return
        assert response.status_code in (400, 404, 405, 308), response.status_code  # no such row, or no token
        watch.unchanged()
        return
    response = admin_client.post("/admin/linkbacks/block", data=data, content_type=FORM)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if not sent.get("csrf_token"):  # none sent, or lost with a body that is not UTF-8
        assert response.status_code == 400
        watch.unchanged()
        return
    assert response.status_code == 302, response.status_code
    new = watch.new(BlockedDomain)
    if not new:
        watch.unchanged()  # refused (the flash says why), or blocked already
        return
    [blocked] = new
    value = sent["domain"].strip().lower().rstrip(".")
    assert blocked.domain in (value, (urlsplit(value).hostname or "").rstrip("."))
    assert len(blocked.domain) <= 253 and all(0 < len(label) <= 63 for label in blocked.domain.split("."))
    assert admin_client.get("/admin/linkbacks").status_code == 200


# =========================================================================== admin: tools (WXR upload)

WXR_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:wp="http://wordpress.org/export/1.2/" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            "<channel><wp:wxr_version>1.2</wp:wxr_version><link>https://old.example</link>"
            "<wp:author><wp:author_login>admin</wp:author_login></wp:author>")


def _wxr_with(title: str, body: str, post_id: str, date: str) -> bytes:
    item = (f"<item><title>{escape(title)}</title><dc:creator>admin</dc:creator><wp:post_id>{escape(post_id)}</wp:post_id>"
            f"<wp:post_date>{escape(date)}</wp:post_date><wp:post_name>{escape(title)}</wp:post_name><wp:status>publish</wp:status>"
            f"<wp:post_type>post</wp:post_type><content:encoded><![CDATA[{body}]]></content:encoded></item>")
    return (WXR_HEAD + item + "</channel></rss>").encode("utf-8", "surrogatepass")


WXR_FILES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"", b"\x00" * 50, b"\xef\xbb\xbf", b"\xff\xfe<\x00r\x00s\x00s\x00", b"<rss>" + b"\xed\xa0\x80" + b"</rss>",
                     b'<?xml version="1.0" encoding="x-bogus"?><rss/>', b'<?xml version="1.0" encoding="utf-7"?><rss/>',
                     b"<rss><channel><item><title>&#xD800;</title></item></channel></rss>", WXR_HEAD.encode() + b"<item>",
                     b"<!DOCTYPE x [<!ENTITY a 'b'>]><rss/>", b"\x1f\x8b\x08\x00" + b"\x00" * 20]),
    st.builds(_wxr_with, short_text, odd_string(0, 40), numbers, st.one_of(DATES, short_text)),
)


@given(content=WXR_FILES, filename=st.one_of(st.just("export.xml"), short_text, st.sampled_from(["", "../../x.xml", "\u202exml.exe"])),
       author=st.one_of(st.just(""), st.just("<admin>"), numbers, short_text), dry_run=st.sampled_from(["y", "y", "", None]))
@examples(25)
def test_the_wxr_upload_takes_odd_bytes_and_the_import_ends_cleanly(app, admin_client, post, watch, content, filename, author,
                                                                   dry_run):
    """Any bytes as a WordPress export: the job ends (it never crashes), says how, leaves no file
    behind, and a dry run writes nothing but its job."""
    with app.app_context():
        admin_id = db.session.scalar(select(User.id).where(User.username == "admin"))
    form = {"default_author": str(admin_id) if author == "<admin>" else author,
            "csrf_token": admin_token(admin_client), "file": (io.BytesIO(content), filename)}
    if dry_run is not None:
        form["dry_run"] = dry_run
    watch.start()
    response = admin_client.post("/admin/tools/import", data=form, content_type="multipart/form-data")
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    if response.status_code == 400:
        watch.clean()
        watch.unchanged()
        return
    assert response.status_code == 303, response.status_code
    job_id = int(re.fullmatch(r"/admin/tools/import/(\d+)", response.headers["Location"]).group(1))
    settle(app)
    watch.clean()
    record = fetch(app, JobRecord, job_id)
    assert record.status == "succeeded", (record.status, record.last_error)  # it ran and said how it ended
    assert admin_client.get(f"/admin/tools/import/{job_id}").status_code == 200
    assert not list((Path(app.instance_path) / "imports").glob("*"))  # the upload and its progress file are gone
    if dry_run:
        before = {k: v for k, v in watch.before.items() if k != "job_record"}
        with app.app_context():
            assert {k: v for k, v in database().items() if k != "job_record"} == before  # a dry run writes nothing else
    assert admin_client.get("/").status_code == 200
    feed = admin_client.get("/feed/")
    assert feed.status_code == 200
    well_formed_xml(feed.get_data())


# =========================================================================== readers' addresses

CURSORS = st.one_of(st.sampled_from([
    "20261101T100000Z-1", "20261101T100000.123456Z-2", "99991231T235959.999999Z-2147483647", "00010101T000000Z-1",
    "20260230T000000Z-1", "20261101T100000Z-2147483648", "20261101T100000Z-0", "20261101T100000.000000Z-1",
    "20261101T100000Z-01", "\uff12\uff10\uff12\uff161101T100000Z-1", "20261101T100000Z-1\n", ""]), odd_text(30))
SLUGS = st.one_of(st.sampled_from(["target-post", "feed", "page", "admin", "xmlrpc", "2026", ".", "..", "%2e%2e"]), odd_text(200))


# Ids as old links and cursors write them: around the int and bigint limits, and not ids at all.
IDS = st.one_of(st.sampled_from([*NUMBERS, "2147483648", str(2**63 - 2), "0001", "1"]), numbers)
READERS_URLS = [
    "/page/{n}/", "/{n}/", "/{n}/page/{d}/", "/2026/{m}/", "/{n}/{m}/", "/2026/{m}/{d}/{s}/", "/2026/01/01/{s}/feed/",
    "/category/{s}/", "/tag/{s}/page/{n}/", "/{s}/", "/?p={id}", "/?page_id={id}", "/?p={id}&page_id={id}",
    "/page/2/?after={cursor}", "/page/{n}/?before={cursor}", "/page/3/?after={cursor}&after={cursor}",
    "/page/2/?after={cursor}&before={cursor}", "/<post>?replytocom={id}", "/<post>feed/?x={q}", "/feed/?page={q}",
    "/webmention/{s}", "/<post>trackback/", "/xmlrpc?{q}", "/category/{s}/page/{n}/?after={cursor}", "/?s={q}",
]


@st.composite
def readers_urls(draw):
    months = st.one_of(st.sampled_from(["01", "12", "13", "00", "1", "001"]), numbers)
    return draw(st.sampled_from(READERS_URLS)).format(
        n=path_part(draw(numbers)), m=path_part(draw(months)), d=path_part(draw(numbers)), s=path_part(draw(SLUGS)),
        id=path_part(draw(IDS)), cursor=path_part(draw(CURSORS)), q=path_part(draw(odd_text(30))))


def as_header(value: str | bytes) -> str:
    """A header value as WSGI hands it over: its bytes (UTF-8, or raw) read as latin-1. (No CR or
    LF: HTTP cannot carry them in a value, and the test client refuses them.)"""
    return encoded(value).decode("latin-1").replace("\r", "").replace("\n", "")


# Conditional and negotiation headers the page cache and the views read, with odd values.
HEADERS = st.dictionaries(
    st.sampled_from(["If-None-Match", "If-Modified-Since", "Accept", "Accept-Language", "Accept-Encoding", "Cookie"]),
    st.one_of(st.sampled_from(['"x"', "*", 'W/"', "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT",
                               "Thu, 01 Jan 1970 00:00:00 GMT", "text/html;q=nan", "application/json;q=2", "session=x",
                               "session=" + "A" * 5000]), odd_text(40)).map(as_header),
    max_size=2)


@given(url=readers_urls(), method=st.sampled_from(["GET", "GET", "GET", "HEAD"]), headers=HEADERS)
@examples(120)
def test_readers_addresses_take_odd_values_and_change_nothing(client, post, watch, url, method, headers):
    """Readers' addresses with odd page numbers, dates, slugs, cursors, old ``?p=`` ids and headers:
    a page, a redirect, or a 4xx; reading writes nothing."""
    url = url.replace("/<post>", post[1])
    watch.start()
    response = client.open(url, method=method, headers=headers)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    assert response.status_code in (200, 301, 302, 304, 308, 400, 404, 405, 410), (url, response.status_code)
    watch.unchanged()


@given(url=st.builds(lambda section, a, b: section.format(a=path_part(a), b=path_part(b)),
                     st.sampled_from(["/admin/posts?page={a}&status={b}", "/admin/comments?status={b}&kind={b}&page={a}",
                                      "/admin/pages?page={a}", "/admin/linkbacks?page={a}&outcome={b}",
                                      "/admin/posts/{a}/edit", "/admin/pages/{a}/edit", "/admin/comments/{a}/edit",
                                      "/admin/comments/{a}/reply", "/admin/tools/import/{a}", "/admin/login?next={b}",
                                      "/admin/posts/{a}/linkbacks/{a}/send", "/admin/posts/{a}/delete"]),
                     numbers, odd_text(40)))
@examples(60)
def test_admin_addresses_take_odd_values_and_change_nothing(admin_client, post, watch, url):
    """The admin's lists and editors with odd page numbers, filters and ids: reading writes nothing."""
    watch.start()
    response = admin_client.get(url)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    assert response.status_code in (200, 302, 308, 400, 404, 405), (url, response.status_code)
    watch.unchanged()


# =========================================================================== Webmention


@st.composite
def odd_tail(draw) -> str:
    """Something odd for a URL's path, query or fragment: percent-encoded, or as it is."""
    odd = draw(st.one_of(short_text, odd_text(30, raw=False)))
    return path_part(odd) if draw(st.booleans()) else odd


def webmention_sources():
    """Mostly a page at the closed port (its path, query or fragment odd), else no usable source."""
    plausible = st.one_of(st.just(f"{CLOSED}/a-page"), odd_tail().map(lambda t: f"{CLOSED}/{t}"),
                          odd_tail().map(lambda t: f"{CLOSED}/?q={t}"), odd_tail().map(lambda t: f"{CLOSED}/#{t}"))
    odd = st.one_of(st.sampled_from([
        "http://127.0.0.1:99999/", "http://127.0.0.1:0/", "http://127.0.0.1:-1/", "http://127.0.0.1:abc/", "http://[::1/",
        "ftp://127.0.0.1/", "javascript:alert(1)", "http:///x", "//127.0.0.1:9/", f"{CLOSED}/" + "a" * 1990,
        f"{CLOSED}/" + "a" * 1985, "<target>", f"{CLOSED}/a\x00b"]), odd_text(2000))
    return mostly(plausible, odd)


def webmention_targets():
    """Mostly the post's permalink (an odd query or fragment added), else no post's address."""
    plausible = st.one_of(st.just("<target>"), odd_tail().map(lambda t: f"<target>?{t}"),
                          odd_tail().map(lambda t: f"<target>#{t}"))
    odd = st.one_of(st.sampled_from([
        f"{SITE_URL}:99999/", "<target>\u200b", f"{SITE_URL}/", f"{SITE_URL}/feed/", "<target>" + "x" * 2000, "",
        f"{CLOSED}/a-page"]), odd_tail().map(lambda t: f"{SITE_URL}/{t}/"), odd_tail().map(lambda t: f"{SITE_URL}/?p={t}"),
        odd_tail().map(lambda t: f"{SITE_URL}/2026/01/01/{t}/"), odd_text(2000))
    return mostly(plausible, odd)


@given(source=webmention_sources(), target=webmention_targets(),
       extra=st.lists(st.tuples(short_text, short_text), max_size=2), style=mostly("utf-8", st.sampled_from(BODY_STYLES)),
       content_type=mostly(FORM, st.sampled_from([FORM + "; charset=latin-1", "multipart/form-data", "text/plain", ""])))
@examples(80)
def test_webmention_takes_odd_values_and_records_only_what_it_accepts(app, client, post, watch, source, target, extra, style,
                                                                       content_type):
    """A Webmention is refused (4xx, plain text, nothing written) or queued (201): its log row holds
    the source and target as sent, its status page answers, and its job ends (refused: nothing
    listens at the source)."""
    def fill(value):
        if isinstance(value, bytes):
            return value
        return value.replace("<target>", post[2])

    pairs = [("source", fill(source)), ("target", fill(target)), *extra]
    body = form_body(pairs, style)
    try:  # the endpoint reads its form itself, first value of each name: an invalid %-escape is U+FFFD
        sent = {}
        for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
            sent.setdefault(name, value)
    except UnicodeDecodeError:
        sent = None  # refused whole
    watch.start()
    response = client.post("/webmention", data=body, content_type=content_type)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    if response.status_code >= 400:
        assert response.status_code in (400, 404, 429), response.status_code
        assert response.mimetype == "text/plain"
        watch.unchanged()
        return
    assert response.status_code == 201 and sent is not None, response.status_code
    [entry] = watch.new(LinkbackLog)
    assert (entry.source_url, entry.target_url) == (sent["source"].strip(), sent["target"].strip())
    status_page = client.get(urlsplit(response.headers["Location"]).path)
    assert status_page.status_code == 200
    settle(app)
    watch.clean()
    entry = fetch(app, LinkbackLog, entry.id)
    assert entry.outcome == "refused"  # nothing listens at the source
    assert client.get(urlsplit(response.headers["Location"]).path, headers={"Accept": "application/json"}).status_code == 200


@given(token=st.one_of(odd_text(100), st.sampled_from(["a" * 64, "a" * 65, "%00", "..", "%2F"])))
@examples(30)
def test_the_webmention_status_page_takes_odd_tokens(client, post, watch, token):
    """No token but a real one finds a Webmention."""
    watch.start()
    response = client.get("/webmention/" + path_part(token))
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    watch.clean()
    assert response.status_code in (404, 308), response.status_code
    watch.unchanged()


# =========================================================================== XML-RPC

FAULTS = {-32700, -32600, -32601, -32602, 0, 16, 17, 32, 33, 48, 49, 50}


@st.composite
def xmlrpc_values(draw, depth=0):
    """One ``<value>``, as XML text: every type XML-RPC has, with odd contents."""
    text = draw(st.one_of(short_text, odd_text(60, raw=False)))
    number = draw(numbers)
    choices = [
        f"<value><string>{escape(text)}</string></value>", f"<value>{escape(text)}</value>",
        f"<value><int>{escape(number)}</int></value>", f"<value><i4>{escape(number)}</i4></value>",
        f"<value><i8>{escape(number)}</i8></value>",
        f"<value><double>{draw(st.sampled_from(['nan', 'inf', '-inf', '1e400', '-0', 'abc', '', '1.5']))}</double></value>",
        f"<value><boolean>{draw(st.sampled_from(['0', '1', '2', 'true', '', '-1']))}</boolean></value>",
        f"<value><base64>{draw(st.sampled_from([b64encode(b'http://x/').decode(), '!!!', '', '====', 'YQ']))}</base64></value>",
        f"<value><dateTime.iso8601>{escape(draw(st.sampled_from(['20260101T00:00:00', 'garbage', '', '99999999T99:99:99'])))}"
        "</dateTime.iso8601></value>",
        "<value><nil/></value>", "<value/>", "<value><string/></value>",
    ]
    if depth < 2:
        children = "".join(draw(st.lists(xmlrpc_values(depth + 1), max_size=2)))
        choices.append(f"<value><array><data>{children}</data></array></value>")
        members = "".join(f"<member><name>{escape(draw(short_text))}</name>{draw(xmlrpc_values(depth + 1))}</member>"
                          for _ in range(draw(st.integers(0, 2))))
        choices.append(f"<value><struct>{members}</struct></value>")
    return draw(st.sampled_from(choices))


def pingback_sources():
    """Mostly the fake site's page that links to the post, or the closed port; else no usable source."""
    plausible = st.one_of(st.just("<site>"), odd_tail().map(lambda t: f"<site>?x={t}"), odd_tail().map(lambda t: f"{CLOSED}/{t}"))
    odd = st.one_of(st.sampled_from(["http://127.0.0.1:99999/", "http://127.0.0.1:abc/", "http://[::1/", "ftp://127.0.0.1/", "",
                                     " ", f"{CLOSED}/" + "a" * 1990, "<target>"]), odd_text(60, raw=False))
    return mostly(plausible, odd)


def pingback_targets():
    """Mostly the post's permalink (an odd query or fragment added), else no post's address."""
    plausible = st.one_of(st.just("<target>"), odd_tail().map(lambda t: f"<target>?{t}"),
                          odd_tail().map(lambda t: f"<target>#{t}"))
    odd = st.one_of(st.sampled_from([f"{SITE_URL}:99999/", f"{SITE_URL}/", "", "\u200b", "<target>" + "x" * 2000, "<site>"]),
                    odd_tail().map(lambda t: f"{SITE_URL}/{t}/"), odd_tail().map(lambda t: f"{SITE_URL}/?p={t}"),
                    odd_text(60, raw=False))
    return mostly(plausible, odd)


ENCODINGS = ["utf-8", "UTF-8", "utf-16", "utf-16-le", "iso-8859-1", "windows-1252", "ascii", "koi8-r", "shift_jis", "euc-jp",
             "utf-32", "x-bogus", "utf-7", "rot13", "", "utf-8\u200b", "cp037", None]


@given(
    method=mostly("pingback.ping", st.sampled_from([
        "pingback.extensions.getPingbacks", "system.listMethods", "system.methodHelp", "system.methodSignature",
        "system.multicall", "", "pingback.ping ", "__init__", "x" * 300])),
    shape=mostly("strings", st.sampled_from(["typed", "raw"])),
    source=pingback_sources(), target=pingback_targets(), params=st.lists(xmlrpc_values(), max_size=3),
    declared=mostly(st.sampled_from([None, "utf-8"]), st.sampled_from(ENCODINGS)),
    written=mostly("utf-8", st.sampled_from(["utf-16", "latin-1", "bad-bytes"])),
)
@examples(100)
def test_xmlrpc_takes_odd_calls_and_answers_a_result_or_a_fault(app, client, post, source_site, watch, method, shape, source,
                                                               target, params, declared, written):
    """Any XML-RPC call (odd method names, types, encodings and bytes) is answered 200 text/xml
    with a result or a fault whose code the Pingback spec or XML-RPC defines; a fault changes
    nothing but the log of a verification that refused; a pingback registered is stored from the
    source as sent and shown."""
    site_page = source_site.page("/links", f'<html><body><p>See <a href="{post[2]}">this</a>.</p></body></html>')

    def fill(value: str) -> str:
        return value.replace("<site>", site_page).replace("<target>", post[2])

    strings = [f"<value><string>{escape(fill(value))}</string></value>" for value in (source, target)]
    if shape == "strings":
        values = {"system.listMethods": [], "system.methodHelp": strings[1:], "system.methodSignature": strings[1:],
                  "pingback.extensions.getPingbacks": strings[1:]}.get(method, strings)
    elif shape == "typed":
        values = [strings[0], *params][:2]
    else:
        values = params
    head = "<?xml version=\"1.0\"?>" if declared is None else f'<?xml version="1.0" encoding="{declared}"?>'
    document = (f"{head}<methodCall><methodName>{escape(method)}</methodName><params>"
                + "".join(f"<param>{v}</param>" for v in values) + "</params></methodCall>")
    if written == "bad-bytes":
        body = document.encode("utf-8").replace(b"<params>", b"<params>\xed\xa0\x80", 1)
    else:
        body = document.encode(written, "replace")
    watch.start()
    response = client.post("/xmlrpc", data=body, content_type="text/xml")
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    settle(app)
    watch.clean()
    assert response.status_code == 200 and response.mimetype == "text/xml"
    try:
        (result,), _ = xmlrpc.client.loads(response.get_data())
    except xmlrpc.client.Fault as fault:
        event(f"fault {fault.faultCode}")
        assert fault.faultCode in FAULTS, (fault.faultCode, fault.faultString)
        watch.unchanged(verification_log=True)
        return
    if method != "pingback.ping":
        watch.unchanged()
        return
    assert isinstance(result, str) and result.startswith("Pingback from ")
    [comment] = watch.new(Comment)
    parsed = xmlrpc.client.loads(body)[0]
    assert comment.source_url == parsed[0].strip() and comment.kind == "pingback" and comment.status == "approved"
    assert client.get(post[1]).status_code == 200
    feed = client.get(post[1] + "feed/")
    assert feed.status_code == 200
    well_formed_xml(feed.get_data())


# =========================================================================== TrackBack

CHARSETS = ["utf-8", "UTF-8", "iso-8859-1", "windows-1252", "shift_jis", "euc-jp", "utf-16", "utf-32", "utf-7",
            "unicode_escape", "raw_unicode_escape", "x-bogus", "base64", "rot13", "idna", "punycode", "ascii", "cp037", "hz",
            "utf-8, iso-8859-1", " utf-8 ", "utf-8\u200b"]


def _sanitised(text: str) -> str:
    """What the TrackBack reader keeps of a field: the text of its HTML, entities decoded, no
    character XML cannot hold, whitespace collapsed."""
    return " ".join(NOT_XML.sub("", html.unescape(nh3.clean(text, tags=set()))).split())


@given(
    url=mostly(st.one_of(st.just(f"{CLOSED}/a-page"), odd_tail().map(lambda t: f"{CLOSED}/{t}")),
               st.one_of(st.sampled_from(["http://127.0.0.1:99999/", "http://127.0.0.1:x/", "http://[::1/", "ftp://127.0.0.1/",
                                          "", " ", f"{CLOSED}/" + "a" * 1990]), odd_text(2000))),
    title=field("A title", 300), excerpt=field("An excerpt", 1000), blog_name=field("A blog", 300),
    declared=mostly(None, st.sampled_from(CHARSETS)), field_charset=mostly(None, st.sampled_from(CHARSETS)),
    written=mostly("utf-8", st.sampled_from(["latin-1", "shift_jis", "utf-16"])), raw=mostly(False, st.just(True)),
    where=mostly("post", st.sampled_from(["wrong-day", "odd-slug", "odd-number"])), odd=st.one_of(numbers, odd_text(40)),
)
@examples(100)
@pytest.mark.parametrize("config_overrides", [{"COMMENT_MODERATION": "approve", "LINKBACK_MODERATION": "approve",
                                               "TRACKBACK_VERIFY": False, "LINKBACK_VERIFY_CPU": 0, "SEND_LINKBACKS": False,
                                               "JOBS_MAX_ATTEMPTS": 1}])
def test_trackback_takes_odd_values_and_records_only_what_it_accepts(app, client, post, watch, url, title, excerpt, blog_name,
                                                                    declared, field_charset, written, raw, where, odd):
    """Any TrackBack body, in any charset: error 1 with a message and nothing written, or error 0
    and a trackback stored as the sanitised fields say (verification off, so none is fetched)."""
    pairs = [("url", url), ("title", title), ("excerpt", excerpt), ("blog_name", blog_name)]
    if field_charset is not None:
        pairs.append(("charset", field_charset))
    charset = "latin-1" if written == "latin-1" else written
    values = [(k, encoded(v, charset)) for k, v in pairs]
    body = (b"&".join(k.encode() + b"=" + v for k, v in values) if raw
            else "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in values).encode("ascii"))
    content_type = FORM if declared is None else f"{FORM}; charset={declared}"
    path = {"post": post[1], "wrong-day": post[1][:9] + ("02" if post[1][9:11] != "02" else "03") + post[1][11:],
            "odd-slug": post[1][:12] + path_part(odd) + "/", "odd-number": f"/{path_part(odd)}/01/01/target-post/"}[where]
    watch.start()
    response = client.post(path + "trackback/", data=body, content_type=content_type)
    event(f"answered {response.status_code}")  # what the examples reached: --hypothesis-show-statistics
    settle(app)
    watch.clean()
    if response.status_code != 200:
        assert response.status_code in (404, 405, 308), response.status_code  # not a trackback address at all
        watch.unchanged()
        return
    answer = BeautifulSoup(response.get_data(), "xml")
    error = answer.find("error").get_text()
    event(f"trackback error {error}")
    if error == "1":
        assert answer.find("message").get_text().strip()
        watch.unchanged(verification_log=True)
        return
    assert error == "0" and where == "post"
    [comment] = watch.new(Comment)
    assert comment.kind == "trackback" and comment.post_id == post[0]
    assert not NOT_XML.search(comment.content + comment.author_name + comment.source_url)
    if (declared, field_charset, written, raw) == (None, None, "utf-8", False) and all(isinstance(v, str) for _, v in pairs):
        # Sent as a browser would (UTF-8, percent-encoded, no charset named): stored as the sanitised fields say.
        sent = {k: _sanitised(v) for k, v in pairs}
        t, e = cap(squash(sent["title"]), 250), cap(squash(sent["excerpt"]), 252)
        assert comment.source_url == sent["url"]
        assert comment.content == "\n\n".join(part for part in (t, e) if part)
        assert comment.author_name == (cap(squash(sent["blog_name"]), 250) or t or sent["url"])
    assert client.get(post[1]).status_code == 200
    feed = client.get(post[1] + "feed/")
    assert feed.status_code == 200
    well_formed_xml(feed.get_data())


# =========================================================================== what the properties found
# Each bug the properties above found, as a plain example that fails without its fix.


def comment_form(**fields) -> dict:
    return {"author_name": "Ann", "author_email": "ann@example.org", "author_url": "", "content": "Hello", "parent_id": "",
            **fields}


def test_a_comment_with_a_control_character_leaves_its_feed_well_formed(client, post, watch):
    """U+000B or U+0001 typed into a comment was stored (as typed), then broke the comments feed
    (lxml refuses them: a 500 on every read of the feed). The feed drops what XML cannot hold."""
    watch.start()
    response = client.post(f"/posts/{post[0]}/comments",
                           data=comment_form(author_name="Ann\x0bLee", content="Line\x01one"))
    assert response.status_code == 303
    [comment] = watch.new(Comment)
    assert (comment.author_name, comment.content) == ("Ann\x0bLee", "Line\x01one")  # stored as sent
    feed = client.get(post[1] + "feed/")
    assert feed.status_code == 200
    ns = {"atom": "http://www.w3.org/2005/Atom"}
    entry = well_formed_xml(feed.get_data()).findall("atom:entry", ns)[-1]
    assert entry.find("atom:title", ns).text == "By: AnnLee"
    assert "Lineone" in entry.find("atom:content", ns).text


def test_a_post_title_and_site_title_with_control_characters_leave_the_feed_well_formed(app, admin_client, post):
    """The same for the posts' feed: the site's title and tagline, a post's title and category."""
    token = csrf_token(admin_client, "/admin/settings")
    assert admin_client.post("/admin/settings", data={
        "SITE_TITLE": "\x01", "SITE_DESCRIPTION": "Words\x1f", "POSTS_PER_PAGE": "10", "COMMENT_MODERATION": "approve",
        "COMMENT_THREAD_DEPTH": "5", "CLOSE_COMMENTS_AFTER_DAYS": "0", "csrf_token": token}).status_code == 302
    token = csrf_token(admin_client, "/admin/posts/new")
    assert admin_client.post("/admin/posts/new", data={
        "title": "Bell\x07", "slug": "", "body": "Text\x08", "excerpt": "", "categories": "Cat\x02", "tags": "",
        "status": "published", "csrf_token": token}).status_code == 302
    feed = admin_client.get("/feed/")
    assert feed.status_code == 200
    ns = {"atom": "http://www.w3.org/2005/Atom"}
    root = well_formed_xml(feed.get_data())
    assert root.find("atom:title", ns).text == SITE_URL + "/"  # nothing left of the title: the home page names it
    assert root.find("atom:subtitle", ns).text == "Words"
    titles = [e.find("atom:title", ns).text for e in root.findall("atom:entry", ns)]
    assert "Bell" in titles
    assert ["Cat"] in [[c.get("term") for c in e.findall("atom:category", ns)] for e in root.findall("atom:entry", ns)]


@pytest.mark.parametrize("source, target, message", [
    ("http://127.0.0.1:99999/a", None, "The source is not an http or https URL."),
    ("http://127.0.0.1:abc/a", None, "The source is not an http or https URL."),
    (f"{CLOSED}/a", "http://127.0.0.1:-1/", "The target is not an http or https URL."),
    (f"{CLOSED}/a", SITE_URL + ":99999/", "The target is not an http or https URL."),
])
def test_webmention_with_a_port_that_is_no_port_is_a_400(client, post, watch, source, target, message):
    """A port out of range or not a number made urlsplit's ``port`` raise deep in source_key: a 500."""
    watch.start()
    response = client.post("/webmention", data={"source": source, "target": target or post[2]})
    assert (response.status_code, response.get_data(as_text=True)) == (400, message + "\n")
    watch.clean()
    watch.unchanged()


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/a", "http://127.0.0.1:x/a", "http://127.0.0.1:-1/a"])
def test_trackback_from_a_port_that_is_no_port_is_error_1(client, post, watch, url):
    """Before: a 500 (urlsplit's ``port`` raising in source_key)."""
    watch.start()
    response = client.post(post[1] + "trackback/", data={"url": url, "title": "T"})
    answer = BeautifulSoup(response.get_data(), "xml")
    assert (answer.find("error").get_text(), answer.find("message").get_text()) == (
        "1", "The source URI is not an http or https URL.")
    watch.clean()
    watch.unchanged()


def test_pingback_from_a_port_that_is_no_port_is_fault_16_and_logs_no_traceback(client, post, watch):
    """Before: fault -32603 (internal error), with the ValueError's traceback in the log."""
    watch.start()
    body = xmlrpc.client.dumps(("http://127.0.0.1:99999/a", post[2]), "pingback.ping")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(client.post("/xmlrpc", data=body, content_type="text/xml").get_data())
    assert (fault.value.faultCode, fault.value.faultString) == (16, "The source URI is not an http or https URL.")
    watch.clean()
    watch.unchanged()


def trackback_in(client, post, charset: str, where: str, title: str):
    """A trackback whose title is ``title`` (percent-encoded bytes), its charset named in the
    Content-Type or in the ``charset`` field: the (error, message) of the answer."""
    body = f"url=http%3A%2F%2F127.0.0.1%3A9%2Fa&title={title}"
    content_type = FORM
    if where == "field":
        body += f"&charset={charset}"
    else:
        content_type += f"; charset={charset}"
    answer = BeautifulSoup(client.post(post[1] + "trackback/", data=body, content_type=content_type).get_data(), "xml")
    return answer.find("error").get_text(), answer.find("message").get_text()


@pytest.mark.parametrize("title", ["%2B2AA-", "%2B3%2F8-", "a%2B2D0-"])  # U+D800, U+DFFF, U+D83D (a pair's first half)
@pytest.mark.parametrize("where", ["content-type", "field"])
def test_a_utf7_trackback_that_decodes_to_half_a_surrogate_pair_is_error_1(client, post, watch, title, where):
    """Such a value reached nh3 (and would have reached the database), which cannot take it: a 500."""
    watch.start()
    assert trackback_in(client, post, "utf-7", where, title) == ("1", "The request is not valid utf-7 text.")
    watch.clean()
    watch.unchanged()


@pytest.mark.parametrize("charset, title", [
    ("unicode_escape", "%5Cud800"),  # "\ud800", as an escape: half a surrogate pair, a 500
    ("raw_unicode_escape", "%5Cudfff"),
    ("unicode_escape", "%5C%ED"),  # an unknown escape: a DeprecationWarning (an error where warnings are)
])
@pytest.mark.parametrize("where", ["content-type", "field"])
def test_a_trackback_in_an_escape_codec_is_an_unknown_charset(client, post, watch, charset, title, where):
    """Python's escape codecs are text codecs to ``codecs``, but no charset a sender means."""
    watch.start()
    assert trackback_in(client, post, charset, where, title) == ("1", f"Unknown charset {charset!r}.")
    watch.clean()
    watch.unchanged()


@pytest.mark.parametrize("domain", ["http://[::1", "https://[spam.example/", "http://\u2100.example/"])
def test_blocking_a_url_that_urlsplit_refuses_is_the_forms_error(admin_client, post, watch, domain):
    """urlsplit raises ValueError for an unclosed "[" or a host whose NFKC form holds a "/": a 500."""
    watch.start()
    response = admin_client.post("/admin/linkbacks/block", data={
        "domain": domain, "csrf_token": csrf_token(admin_client, "/admin/linkbacks")})
    assert response.status_code == 302
    assert "That does not look like a domain name." in admin_client.get("/admin/linkbacks").get_data(as_text=True)
    watch.clean()
    watch.unchanged()


@pytest.mark.parametrize("kind, form", [
    ("posts", {"title": "Made by id 0", "body": "", "status": "draft"}),
    ("pages", {"title": "Made by id 0", "body": "", "menu_order": "0", "status": "draft"}),
])
def test_editing_post_or_page_0_is_a_404_not_a_new_one(admin_client, post, watch, kind, form):
    """``/admin/posts/0/edit`` read the id 0 as "no id": a POST there made a new post."""
    token = csrf_token(admin_client, f"/admin/{kind}/new")
    watch.start()
    assert admin_client.get(f"/admin/{kind}/0/edit").status_code == 404
    assert admin_client.post(f"/admin/{kind}/0/edit", data={**form, "csrf_token": token}).status_code == 404
    watch.clean()
    watch.unchanged()


@pytest.mark.parametrize("field, spaces", [("author_url", 2001), ("author_email", 255)])
def test_an_edited_comments_url_or_email_of_spaces_is_stored_empty(app, admin_client, post, watch, field, spaces):
    """Optional() let a value of spaces alone pass without its Length check: 2,001 of them went to a
    2,000-character column (PostgreSQL: a 500; SQLite: stored). Stripped, as the comment form does."""
    url = f"/admin/comments/{post[3]}/edit"
    data = {"author_name": "Visitor", "author_email": "v@example.org", "author_url": "https://v.example/",
            "content": "Edited", "status": "approved", "csrf_token": csrf_token(admin_client, url), field: " " * spaces}
    watch.start()
    assert admin_client.post(url, data=data).status_code == 302
    watch.clean()
    assert getattr(fetch(app, Comment, post[3]), field) == ""


@pytest.mark.parametrize("form, field", [
    ("pages", "menu_order"), ("settings", "POSTS_PER_PAGE"), ("settings", "COMMENT_THREAD_DEPTH"),
    ("settings", "CLOSE_COMMENTS_AFTER_DAYS"),
])
def test_a_400_digit_number_is_the_forms_error(admin_client, post, watch, form, field):
    """WTForms' NumberRange asks math.isnan of the number, and an int past 10**308 is no float:
    OverflowError, a 500. Now a number of more than 20 characters is not a valid integer."""
    url = "/admin/pages/new" if form == "pages" else "/admin/settings"
    data = ({"title": "About", "slug": "", "body": "", "menu_order": "0", "status": "draft"} if form == "pages" else
            {"SITE_TITLE": "My blog", "SITE_DESCRIPTION": "", "POSTS_PER_PAGE": "10", "COMMENT_MODERATION": "approve",
             "COMMENT_THREAD_DEPTH": "5", "CLOSE_COMMENTS_AFTER_DAYS": "0"})
    data[field] = "9" * 400
    watch.start()
    response = admin_client.post(url, data={**data, "csrf_token": csrf_token(admin_client, url)})
    assert response.status_code == 400
    page = BeautifulSoup(response.get_data(as_text=True), "lxml")
    assert "Not a valid integer value." in page.get_text()
    watch.clean()
    watch.unchanged()


@pytest.mark.parametrize("query", ["p=2147483648", "p=9223372036854775806", "p=2147483648&page_id=1"])
def test_an_old_post_id_past_the_integer_column_is_a_404(client, post, watch, query):
    """``/?p=ID`` on a blog that imported nothing looks our own post up by id: one past 2**31 - 1
    made PostgreSQL fail the query ("integer out of range"), a 500."""
    watch.start()
    assert client.get("/?" + query).status_code == 404
    watch.clean()
    watch.unchanged()


def test_a_pingback_to_an_old_post_id_past_the_integer_column_is_fault_33(client, post, watch):
    """The same lookup, for a pingback's target: the home page, which takes no pings."""
    watch.start()
    body = xmlrpc.client.dumps((f"{CLOSED}/a", SITE_URL + "/?p=2147483648"), "pingback.ping")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(client.post("/xmlrpc", data=body, content_type="text/xml").get_data())
    assert (fault.value.faultCode, fault.value.faultString) == (33, "The target is not a post; only posts take linkbacks.")
    watch.clean()
    watch.unchanged()


@pytest.mark.parametrize("target", [SITE_URL + "/%00/", SITE_URL + "/2026/11/30/a%00b/"])
def test_webmention_to_an_address_of_ours_with_a_percent_encoded_nul_is_a_400(client, post, watch, target):
    """Our targets are looked up by their decoded path, and PostgreSQL cannot compare text holding
    a NUL: "/%00/" was a 500 there (the old-address lookup), as "%00" in a slug was."""
    watch.start()
    response = client.post("/webmention", data={"source": f"{CLOSED}/a", "target": target})
    assert (response.status_code, response.get_data(as_text=True)) == (400, "The target contains a NUL character (%00).\n")
    watch.clean()
    watch.unchanged()


def test_pingback_to_an_address_of_ours_with_a_percent_encoded_nul_is_invalid_params(client, post, watch):
    """Before, on PostgreSQL: fault -32603 and the DataError's traceback in the log."""
    watch.start()
    body = xmlrpc.client.dumps((f"{CLOSED}/a", SITE_URL + "/%00/"), "pingback.ping")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(client.post("/xmlrpc", data=body, content_type="text/xml").get_data())
    assert (fault.value.faultCode, fault.value.faultString) == (-32602, "The target URI contains a NUL character (%00).")
    watch.clean()
    watch.unchanged()


def test_a_trackback_url_with_a_percent_encoded_nul_is_error_1(client, post, watch):
    watch.start()
    response = client.post(post[1] + "trackback/", data={"url": f"{CLOSED}/a%00b", "title": "T"})
    answer = BeautifulSoup(response.get_data(), "xml")
    assert (answer.find("error").get_text(), answer.find("message").get_text()) == (
        "1", "The source URI contains a NUL character (%00).")
    watch.clean()
    watch.unchanged(verification_log=True)
