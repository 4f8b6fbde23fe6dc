"""Reader listings paged by cursor: "Older posts" and "Newer posts" seek, /page/N/ alone uses OFFSET.

Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set (the conftest fixtures).
"""
from __future__ import annotations

import copy
import re
from contextlib import contextmanager
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from blogapp.blog.listing import cursor_of, parse_cursor
from blogapp.extensions import db
from blogapp.models import Post, save_site_settings, utcnow
from blogapp.posts import remove_post, save_post
from conftest import SITE_URL, count_queries
from helpers import restore_rows, table_rows

PER_PAGE = 5
# 23 posts in March 2025, three to a publication time (ties broken by id, across page edges);
# times on the second, and with microseconds, so both cursor spellings are walked.
BASE = datetime(2025, 3, 10, 8, 0, 0)
LISTED = 23
LISTINGS = ["/", "/category/deep-dive/", "/tag/walk/", "/2025/", "/2025/03/"]


@pytest.fixture(scope="session")
def seeded():
    """The posts below, made once per process (by the app, as below); each test's database gets a
    copy of the rows (helpers.restore_rows), the same ids included. (Per process, not per module:
    a worker that runs this module's tests between others' would make them again each time.)"""
    return {}


@pytest.fixture
def posts(app, ctx, seeded):
    """The titles readers should see, newest first, per listing; and the posts' ids by title."""
    if seeded:
        restore_rows(seeded["rows"])
        return copy.deepcopy(seeded["titles"])
    save_site_settings({"POSTS_PER_PAGE": PER_PAGE})
    db.session.commit()
    made = []  # (published_at, id, title)

    def add(title, when, *, listed=True, publish=True):
        post = save_post(None, title=title, body="Words.", publish=publish, published_at=when,
                         categories=["Deep Dive"] if listed else [], tags=["walk"] if listed else [])
        db.session.commit()
        if publish and when <= utcnow():
            made.append((when, post.id, title, listed))
        return post.id

    for i in range(LISTED):
        group = i // 3
        add(f"Listed {i:02d}", BASE + timedelta(hours=group, microseconds=group * 1001 if group % 2 else 0))
    for i in range(3):  # elsewhere: not in the category, the tag, nor the 2025 archives
        add(f"Other {i}", datetime(2024, 12, 1 + i, 12, 0), listed=False)
    add("A draft", BASE, publish=False)
    add("A scheduled post", utcnow() + timedelta(days=3))
    newest_first = sorted(made, key=lambda m: (m[0], m[1]), reverse=True)
    every = [title for _, _, title, _ in newest_first]
    listed = [title for _, _, title, is_listed in newest_first if is_listed]
    titles = {url: every if url == "/" else listed for url in LISTINGS}
    seeded.update(rows=table_rows(), titles=titles)
    return titles


def read(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    page = BeautifulSoup(response.get_data(as_text=True), "lxml")
    older, newer = page.select_one("a.older"), page.select_one("a.newer")
    page_of = page.select_one(".page-of")
    return {
        "titles": [a.get_text() for a in page.select(".h-feed h2.entry-title a")],
        "older": older["href"] if older else None,
        "newer": newer["href"] if newer else None,
        "page_of": page_of.get_text() if page_of else None,
        "canonical": [link["href"] for link in page.select("link[rel=canonical]")],
    }


def walk_older(client, start):
    """Every page from ``start`` by its "Older posts" links: [(url, page)]."""
    url, seen = start, []
    while url:
        page = read(client, url)
        seen.append((url, page))
        url = page["older"]
        assert len(seen) <= 20, "the Older links go round in circles"
    return seen


# ------------------------------------------------------------------ the cursor itself

def test_cursor_spells_a_place_one_way_and_reads_it_back():
    on_the_second = Post(id=1234, published_at=datetime(2026, 11, 1, 10, 0, 0))
    with_micros = Post(id=7, published_at=datetime(2026, 11, 1, 10, 0, 0, 120))
    assert cursor_of(on_the_second) == "20261101T100000Z-1234"
    assert cursor_of(with_micros) == "20261101T100000.000120Z-7"
    assert parse_cursor("20261101T100000Z-1234") == (datetime(2026, 11, 1, 10, 0), 1234)
    assert parse_cursor("20261101T100000.000120Z-7") == (datetime(2026, 11, 1, 10, 0, 0, 120), 7)
    assert parse_cursor("00010101T000000Z-1") == (datetime(1, 1, 1), 1)
    for wrong in ["", "garbage", "20261101T100000.000000Z-7", "20261101T100000Z-07", "20261101T100000Z-0",
                  "20261101T100000Z-2147483648", "20261101T100000Z-99999999999999999999", "20261301T100000Z-1",
                  "20260230T100000Z-1", "20261101T250000Z-1", "00000101T000000Z-1", "20261101T100000-1",
                  "20261101T100000Z-1\n", " 20261101T100000Z-1", "20261101t100000z-1", "2026-11-01T10:00:00Z-1",
                  "20261101T100000.12Z-1", "20261101T100000Z--1", "20261101T100000Z-1.5",
                  "٢٠٢٦١١٠١T١٠٠٠٠٠Z-١"]:
        assert parse_cursor(wrong) is None, wrong


# ------------------------------------------------------------------ walking a listing

@pytest.mark.parametrize("start", LISTINGS)
def test_older_links_visit_every_post_once_in_order(client, posts, start):
    pages = walk_older(client, start)
    expected = posts[start]
    assert [title for _, page in pages for title in page["titles"]] == expected
    count = -(-len(expected) // PER_PAGE)
    assert len(pages) == count
    base = start.rstrip("/")
    for number, (url, page) in enumerate(pages, start=1):
        assert page["titles"] == expected[(number - 1) * PER_PAGE:number * PER_PAGE]
        assert page["page_of"] == f"Page {number} of {count}"
        if number > 1:
            assert urlsplit(url).path == f"{base}/page/{number}/"
            assert list(parse_qs(urlsplit(url).query)) == ["after"]


@pytest.mark.parametrize("start", LISTINGS)
def test_newer_links_walk_back_through_the_same_pages(client, posts, start):
    forward = walk_older(client, start)
    url, back = forward[-1][1]["newer"], []
    while url:
        page = read(client, url)
        back.append((url, page))
        url = page["newer"]
        assert len(back) <= 20
    assert [page["titles"] for _, page in reversed(back)] == [page["titles"] for _, page in forward[:-1]]
    assert [page["page_of"] for _, page in reversed(back)] == [page["page_of"] for _, page in forward[:-1]]
    assert back[-1][0] == start  # page 1 is the listing's own address, with no cursor
    assert all(list(parse_qs(urlsplit(url).query)) == ["before"] for url, _ in back[:-1])


@pytest.mark.parametrize("start", ["/", "/tag/walk/"])
def test_a_cursor_page_shows_what_the_numbered_page_shows(client, posts, start):
    for number, (url, page) in enumerate(walk_older(client, start), start=1):
        numbered = read(client, urlsplit(url).path)
        assert numbered["titles"] == page["titles"] and numbered["page_of"] == page["page_of"]
        # Its links carry cursors too: a reader who came by a direct link pages on by seeking.
        assert numbered["older"] == page["older"]


def test_a_deep_numbered_link_still_works(client, posts):
    page = read(client, "/page/4/")
    assert page["titles"] == posts["/"][15:20]
    assert page["older"].startswith("/page/5/?after=") and page["newer"].startswith("/page/3/?before=")
    assert read(client, page["older"])["titles"] == posts["/"][20:25]
    assert read(client, page["newer"])["titles"] == posts["/"][10:15]
    assert read(client, "/page/2/")["newer"] == "/"


@pytest.mark.parametrize("start", ["/", "/category/deep-dive/"])
def test_a_post_published_meanwhile_is_not_shown_twice(client, ctx, posts, start):
    first = read(client, start)
    save_post(None, title="Fresh news", body="New.", publish=True, published_at=utcnow() - timedelta(minutes=1),
              categories=["Deep Dive"], tags=["walk"])
    db.session.commit()
    second = read(client, first["older"])  # the link on the page the reader has
    assert second["titles"] == posts[start][PER_PAGE:2 * PER_PAGE]
    assert not set(first["titles"]) & set(second["titles"])
    # What the cursor saves the reader from: by number, page 2 now repeats page 1's last post.
    assert read(client, urlsplit(first["older"]).path)["titles"][0] == first["titles"][-1]
    # And back: the newest page, with the new post.
    assert read(client, second["newer"])["titles"][0] == "Fresh news"


def test_posts_removed_meanwhile_leave_no_hole_and_no_impossible_page_number(client, ctx, posts):
    pages = walk_older(client, "/")
    before_last = pages[-2][1]  # page 5 of 6, as the reader has it
    for title in posts["/"][:PER_PAGE * 2]:
        remove_post(db.session.scalar(select(Post).where(Post.title == title)))
    db.session.commit()
    last = read(client, before_last["older"])
    assert last["titles"] == posts["/"][PER_PAGE * 5:]
    assert last["page_of"] == "Page 6 of 6"  # the count now says 4 pages; the reader is on the 6th
    assert last["older"] is None


def test_a_cursor_past_the_end_is_404(client, posts):
    oldest = db.session.scalar(select(Post).where(Post.title == posts["/"][-1]))
    assert client.get(f"/page/7/?after={cursor_of(oldest)}").status_code == 404
    newest = db.session.scalar(select(Post).where(Post.title == posts["/"][0]))
    assert client.get(f"/page/2/?before={cursor_of(newest)}").status_code == 404


@pytest.mark.parametrize("path", ["/page/0/", "/page/0/?after=20250310T090000Z-3", "/tag/walk/page/0/",
                                  "/2025/page/0/"])
def test_page_zero_is_404(client, posts, path):
    # (A negative OFFSET is an error on PostgreSQL: this was a 500 there.)
    assert client.get(path).status_code == 404


def test_page_one_ignores_a_cursor(client, posts):
    page = read(client, "/?after=20250310T090000Z-3")
    assert page["titles"] == posts["/"][:PER_PAGE]
    assert page["canonical"] == [f"{SITE_URL}/"]


MALFORMED = [
    "after=", "before=", "after=garbage", "after=20251301T000000Z-1", "after=20250230T000000Z-1",
    "after=20250310T090000.000000Z-4", "after=20250310T090000Z-04", "after=20250310T090000Z-0",
    "after=20250310T090000Z-2147483648", "after=20250310T090000Z-99999999999999999999999999",
    "after=99999999999999999999T999999Z-1", "after=00000101T000000Z-1", "after=20250310T090000Z--4",
    "after=20250310T090000Z-4%0A", "after=%FF%FE", "after=%D9%A2%D9%A0", "after[]=1",
    "after=20250310T090000Z-4&before=20250310T090000Z-4", "after=20250310T090000Z-4&after=20250310T090000Z-4",
    "after=" + "9" * 5000, "before=-1", "after=1.5e300", "after=NaN", "after=[1,2]", "after={}",
]


# (A NUL, "after=%00", is refused as a bad request like anywhere in an address: tests/test_input_safety.py.)
@pytest.mark.parametrize("query", MALFORMED)
def test_a_malformed_cursor_pages_by_number(client, posts, query):
    page = read(client, f"/page/3/?{query}")
    assert page["titles"] == posts["/"][10:15]
    assert page["canonical"] == [f"{SITE_URL}/page/3/"]


# A cursor page lists the posts past its cursor (older after it, newer before it); none: 404. The
# fixture's posts start at 2025-03-10 08:00 (and three in 2024), so past the cursor of 09:00 there are
# posts both ways; before the year 1 and after 9999 there are none.
@pytest.mark.parametrize("query, status", [
    ("after=00010101T000000Z-1", 404), ("before=00010101T000000Z-1", 200),
    ("after=99991231T235959.999999Z-2147483647", 200), ("before=99991231T235959.999999Z-2147483647", 404),
    ("after=20250310T090000Z-1", 200), ("before=20250310T090000Z-2147483647", 200),
])
def test_an_extreme_but_wellformed_cursor_is_answered(client, posts, query, status):
    for url in (f"/page/3/?{query}", f"/page/2147483647/?{query}", f"/2025/03/page/2/?{query}"):
        assert client.get(url).status_code == status, url


def test_a_cursor_page_names_the_numbered_page_canonical(client, posts):
    pages = walk_older(client, "/category/deep-dive/")
    assert pages[0][1]["canonical"] == [f"{SITE_URL}/category/deep-dive/"]
    assert pages[2][1]["canonical"] == [f"{SITE_URL}/category/deep-dive/page/3/"]
    back = read(client, pages[3][1]["newer"])
    assert back["canonical"] == [f"{SITE_URL}/category/deep-dive/page/3/"]
    assert read(client, "/page/1/")["canonical"] == [f"{SITE_URL}/"]


# ------------------------------------------------------------------ what it costs

@contextmanager
def statements():
    """The SQL statements run inside the block, with their parameters, as sent to the database."""
    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def rows_skipped(statement: str, parameters) -> int:
    """The OFFSET a statement asks for. SQLite's dialect spells every LIMIT "LIMIT ? OFFSET ?"
    (0 when there is none); PostgreSQL's writes OFFSET only when there is one."""
    match = re.search(r"\bOFFSET (\?|%\((\w+)\)s)", statement)
    if match is None:
        return 0
    return int(parameters[-1] if match.group(1) == "?" else parameters[match.group(2)])


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": False}])  # what rendering costs, not a cache hit
def test_a_cursor_page_costs_what_page_one_costs(app, client, posts):
    pages = walk_older(client, "/")
    urls = ["/", pages[4][0], pages[-1][1]["newer"], "/page/5/"]
    costs = {}
    for url in urls:
        client.get(url)  # the count and the sidebar are kept per content version: as on a busy blog
        with count_queries(app) as queries:
            assert client.get(url).status_code == 200
        costs[url] = queries[0]
    assert len(set(costs.values())) == 1, costs


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": False}])
def test_a_cursor_page_seeks_and_skips_no_rows(app, client, posts):
    pages = walk_older(client, "/tag/walk/")
    for url in [pages[3][0], pages[-1][1]["newer"]]:
        with statements() as seen:
            assert client.get(url).status_code == 200
        listing = [(s, p) for s, p in seen if "FROM post" in s and "ORDER BY post.published_at" in s]
        assert len(listing) == 1, (url, seen)
        statement, parameters = listing[0]
        assert "LIMIT" in statement and re.search(r"post\.published_at [<>]=", statement)
        assert [rows_skipped(s, p) for s, p in seen] == [0] * len(seen), url
    with statements() as seen:  # what the numbered page does, and the capture sees
        assert client.get("/tag/walk/page/4/").status_code == 200
    assert max(rows_skipped(s, p) for s, p in seen) == 3 * PER_PAGE

