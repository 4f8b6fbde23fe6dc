"""Importing a real WordPress export, compared post by post and comment by comment with what
WordPress itself recorded.

Two sources of truth, never blogapp's own reader:

- the fixture ``tests/fixtures/wordpress/wxr-export.xml`` (WordPress 6.1.9's own export, see
  PROVENANCE.md) with ``wxr-export.comments.jsonl`` (what the peer's ``list_comments.sh`` shows
  for each post, spam included: WordPress's export leaves spam out) and
  ``wxr-export.classic-paragraphs.html``: the page WordPress rendered for "Classic paragraphs
  f38504" of that same export (fetched unchanged from the peer on 2026-12-03 at 08:03 UTC, after
  the export; its thread has one held pingback more, which WordPress does not show);
- the live peer on 127.0.0.1:8090 (``tests/wordpress_site.py`` builds a site there, exports it
  and lists its comments); that test skips with the reason when the peer does not answer, and
  fails instead under ``CI=true``.

The files are read here with ElementTree and JSON. The importer runs through the CLI
(``import-wxr FILE --json``) behind the network fence of ``tests/netfence.py`` in strict mode:
it must not connect anywhere, loopback included, nor look a name up.
"""
from __future__ import annotations

import html
import json
import os
import re
import time
import xml.etree.ElementTree as ET
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from bs4 import BeautifulSoup
from sqlalchemy import func, select

import wordpress_site
from blogapp.extensions import db
from blogapp.models import Comment, JobRecord, LinkbackAttempt, OutboundLink, Page, Post, User
from blogapp.templating import post_path, site_request_context
from helpers import unavailable
from conftest import SITE_URL
from netfence import Net

# Whatever the input, the app never answers 500.
pytestmark = pytest.mark.usefixtures("no_server_errors")

FIXTURES = Path(__file__).parent / "fixtures" / "wordpress"
FIXTURE_XML = FIXTURES / "wxr-export.xml"
FIXTURE_JSONL = FIXTURES / "wxr-export.comments.jsonl"
FIXTURE_CLASSIC_PAGE = FIXTURES / "wxr-export.classic-paragraphs.html"

WP_PORT = int(os.environ.get("WP_PEER_PORT", "8090"))
WP_URL = f"http://127.0.0.1:{WP_PORT}"
PEER_DIR = Path(os.environ.get("WP_PEER_DIR_SCRIPTS")
                or Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "wordpress")

# WordPress's comment_approved -> our status (spam is never exported, so never imported).
STATUS = {"1": "approved", "0": "pending", "trash": "trash"}


@pytest.fixture
def config_overrides():
    # The pingback test: a fetch, were one made, could really reach the (routed) source on loopback.
    return {"LINKBACK_FETCH_ALLOWLIST": ["127.0.0.0/8"], "LINKBACK_MODERATION": "approve",
            "LINKBACK_VERIFY_BUDGET": 5.0, "LINKBACK_FETCH_TIMEOUT": 4.0}


# --------------------------------------------------------------------------- reading WordPress's files


def wp_date(value: str) -> datetime | None:
    """A WordPress GMT date as naive UTC; ``0000-00-00 00:00:00`` (never published) is None."""
    value = (value or "").strip()
    if not value or value.startswith("0000"):
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")


def parse_wxr(data: bytes) -> list[dict]:
    """The items of a WXR file, as plain dicts (ElementTree, independent of blogapp's reader)."""
    wp = "{%s}" % re.search(rb'xmlns:wp="([^"]+)"', data).group(1).decode()
    content = "{http://purl.org/rss/1.0/modules/content/}encoded"
    root = ET.fromstring(data)

    def text(element, tag: str) -> str:
        return element.findtext(tag) or ""

    items = []
    for it in root.iter("item"):
        meta: dict[str, list[str]] = {}
        for m in it.findall(wp + "postmeta"):
            meta.setdefault(text(m, wp + "meta_key"), []).append(text(m, wp + "meta_value"))
        comments = [{
            "comment_id": int(text(c, wp + "comment_id")),
            "author": text(c, wp + "comment_author"),
            "author_email": text(c, wp + "comment_author_email"),
            "author_url": text(c, wp + "comment_author_url"),
            "author_ip": text(c, wp + "comment_author_IP"),
            "date_gmt": text(c, wp + "comment_date_gmt"),
            "approved": text(c, wp + "comment_approved"),
            "type": text(c, wp + "comment_type") or "comment",
            "parent": int(text(c, wp + "comment_parent") or 0),
            "user_id": int(text(c, wp + "comment_user_id") or 0),
            "content": text(c, wp + "comment_content"),
        } for c in it.findall(wp + "comment")]
        items.append({
            "id": int(text(it, wp + "post_id")),
            "type": text(it, wp + "post_type"),
            "status": text(it, wp + "status"),
            "title": text(it, "title"),
            "link": text(it, "link"),
            "slug": text(it, wp + "post_name"),
            "date_gmt": wp_date(text(it, wp + "post_date_gmt")),
            "comment_status": text(it, wp + "comment_status"),
            "ping_status": text(it, wp + "ping_status"),
            "content": text(it, content),
            "terms": [(c.get("domain"), c.get("nicename"), c.text or "") for c in it.findall("category")],
            "meta": meta,
            "comments": comments,
        })
    return items


def fixture_rows() -> dict[int, list[dict]]:
    """``wxr-export.comments.jsonl`` by WordPress post id."""
    rows: dict[int, list[dict]] = {}
    for line in FIXTURE_JSONL.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows.setdefault(row["post_id"], []).append(row)
    return rows


QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2033": '"', "\u00a0": " "})


def norm(value: str) -> str:
    """Text as a reader sees it: tags dropped, entities decoded, quotes straight (WordPress curls
    them when it shows a page, which is presentation), whitespace collapsed."""
    value = html.unescape(re.sub(r"<[^>]*>", " ", value or "")).translate(QUOTES)
    return " ".join(value.split())


# --------------------------------------------------------------------------- reading ours


def imported_post(item: dict) -> Post:
    """Our post for a WordPress post item: by its slug, else (a draft has none) by its title."""
    if item["slug"]:
        post = db.session.scalar(select(Post).where(Post.slug == item["slug"]))
    else:
        post = db.session.scalar(select(Post).where(Post.title == html.unescape(item["title"])))
    assert post is not None, f"WordPress {item['type']} {item['id']} ({item['title']!r}) was not imported"
    return post


def our_path(app, post: Post) -> str:
    with site_request_context(app):
        return post_path(post)


def comment_rows(post_id: int) -> list[dict]:
    return [dict(row._mapping) for row in db.session.execute(
        select(Comment.id, Comment.parent_id, Comment.kind, Comment.status, Comment.author_name,
               Comment.author_email, Comment.author_url, Comment.ip, Comment.created_at, Comment.source_url,
               Comment.content, Comment.user_id).where(Comment.post_id == post_id).order_by(Comment.id))]


def import_file(runner, path: Path) -> SimpleNamespace:
    """``import-wxr PATH --json`` behind the strict fence: (summary dict, output, the fence)."""
    net = Net().strict()
    with pytest.MonkeyPatch.context() as mp:
        net.install(mp)
        result = runner.invoke(args=["import-wxr", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    return SimpleNamespace(summary=summary, output=result.output, net=net)


# --------------------------------------------------------------------------- the comparisons


def compare_comments(app, items: list[dict], rows_by_post: dict[int, list[dict]], *,
                     fields: bool = True) -> dict[int, int]:
    """Every non-spam row WordPress lists is here (with the same fields, unless ``fields`` is
    false); nothing else is; no spam. Returns WordPress comment id -> ours."""
    problems: list[str] = []
    mapping: dict[int, int] = {}
    with app.app_context():
        admin_id = db.session.scalar(select(User.id).where(User.username == "admin"))
        for item in items:
            if item["type"] != "post":
                continue
            post = imported_post(item)
            rows = rows_by_post.get(item["id"], [])
            exported = [r for r in rows if r["approved"] != "spam"]
            spam = [r for r in rows if r["approved"] == "spam"]
            # WordPress's export holds exactly the non-spam rows (a check of the sources themselves).
            assert sorted(c["comment_id"] for c in item["comments"]) == sorted(r["comment_id"] for r in exported), \
                f"post {item['id']}: the export and list_comments disagree"
            in_wxr = {c["comment_id"]: c for c in item["comments"]}
            ours = comment_rows(post.id)
            left = list(ours)
            for row in exported:
                # Found by its text, else (a text changed on the way) by its author and date.
                match = next((c for c in left if c["kind"] == row["type"]
                              and norm(c["content"]) == norm(row["content"])), None) \
                    or next((c for c in left if c["author_name"] == html.unescape(row["author"])
                             and c["created_at"] == wp_date(row["date_gmt"])), None)
                if match is None:
                    problems.append(f"post {item['slug'] or item['id']}: WordPress {row['type']} {row['comment_id']} "
                                    f"by {row['author']!r} was not imported")
                    continue
                left.remove(match)
                mapping[row["comment_id"]] = match["id"]
                expected = {
                    "kind": row["type"], "status": STATUS[row["approved"]], "author_name": html.unescape(row["author"]),
                    "author_email": row["author_email"], "author_url": row["author_url"], "ip": row["author_ip"],
                    "created_at": wp_date(row["date_gmt"]), "text": norm(row["content"]),
                    # By a logged-in user there: the file's one author, admin, who is admin here.
                    "by_admin": in_wxr[row["comment_id"]]["user_id"] != 0,
                }
                actual = {
                    "kind": match["kind"], "status": match["status"], "author_name": match["author_name"],
                    "author_email": match["author_email"], "author_url": match["author_url"], "ip": match["ip"],
                    "created_at": match["created_at"], "text": norm(match["content"]),
                    "by_admin": match["user_id"] is not None and match["user_id"] == admin_id,
                }
                if row["type"] in ("pingback", "trackback"):
                    expected["source_url"], actual["source_url"] = row["author_url"], match["source_url"]
                diff = {k: (expected[k], actual[k]) for k in expected if expected[k] != actual[k]}
                if diff and fields:
                    problems.append(f"post {item['slug']}: WordPress comment {row['comment_id']} differs "
                                    f"(field: (WordPress, ours)): {diff}")
            for extra in left:
                problems.append(f"post {item['slug']}: our comment {extra['id']} ({extra['kind']} by "
                                f"{extra['author_name']!r}) is no WordPress row")
            for row in spam:
                if any(c["author_name"] == html.unescape(row["author"]) or norm(c["content"]) == norm(row["content"])
                       for c in ours):
                    problems.append(f"post {item['slug']}: the spam comment {row['comment_id']} is here")
    assert not problems, "\n".join(problems)
    return mapping


def shape(ids, parent_of) -> tuple:
    """A thread as nested tuples: ((id, (replies...)), ...), in id order."""
    ids = sorted(ids, key=str)

    def children(of):
        return tuple((i, children(i)) for i in ids if parent_of.get(i) == of)

    return children(None)


def compare_threads(app, items: list[dict], mapping: dict[int, int]) -> None:
    """Each reply points at the comment WordPress says it answers: the shape of every thread,
    in WordPress's comment ids, is the same here."""
    ours_to_wp = {ours: wp for wp, ours in mapping.items()}
    with app.app_context():
        for item in items:
            if item["type"] != "post" or not item["comments"]:
                continue
            post = imported_post(item)
            wp_parent = {c["comment_id"]: (c["parent"] or None) for c in item["comments"]}
            ours = comment_rows(post.id)
            our_parent = {ours_to_wp.get(c["id"], f"ours-{c['id']}"):
                          (None if c["parent_id"] is None else ours_to_wp.get(c["parent_id"], f"ours-{c['parent_id']}"))
                          for c in ours}
            assert shape(our_parent, our_parent) == shape(wp_parent, wp_parent), \
                f"post {item['slug']}: the thread's shape differs (WordPress ids; replies nested)"


def compare_posts(app, client, items: list[dict]) -> None:
    """Titles, slugs, publication dates, terms, status, discussion switches, addresses."""
    problems: list[str] = []
    with app.app_context():
        for item in items:
            if item["type"] != "post":
                continue
            post = imported_post(item)
            path = our_path(app, post)
            got = {"title": post.title, "categories": sorted((c.slug, c.name) for c in post.categories),
                   "tags": sorted((t.slug, t.name) for t in post.tags), "comments_open": post.comments_open,
                   "pings_open": post.pings_open}
            want = {"title": html.unescape(item["title"]),
                    "categories": sorted((s, html.unescape(n)) for d, s, n in item["terms"] if d == "category"),
                    "tags": sorted((s, html.unescape(n)) for d, s, n in item["terms"] if d == "post_tag"),
                    "comments_open": item["comment_status"] == "open", "pings_open": item["ping_status"] == "open"}
            if item["status"] == "publish":
                got.update(status=post.status, slug=post.slug, published_at=post.published_at, path=path)
                want.update(status="published", slug=item["slug"], published_at=item["date_gmt"],
                            path=urlsplit(item["link"]).path)
            elif item["status"] == "draft":
                got.update(status=post.status, published_at=post.published_at)
                want.update(status="draft", published_at=None)
            diff = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
            if diff:
                problems.append(f"WordPress post {item['id']} ({item['title']!r}) differs "
                                f"(field: (WordPress, ours)): {diff}")
            # Readers: a published post at its permalink, a draft nowhere; WordPress's ?p=ID leads to it.
            page = client.get(path)
            by_id = client.get(f"/?p={item['id']}")
            if item["status"] == "publish":
                if page.status_code != 200 or html.unescape(item["title"]) not in page.get_data(as_text=True):
                    problems.append(f"{path}: {page.status_code}, not the post {item['title']!r}")
                if by_id.status_code != 301 or urlsplit(by_id.headers.get("Location", "")).path != path:
                    problems.append(f"/?p={item['id']}: {by_id.status_code} {by_id.headers.get('Location')}, "
                                    f"not 301 to {path}")
            else:
                if page.status_code != 404:
                    problems.append(f"the draft {item['title']!r} answers {page.status_code} at {path} (not 404)")
                if by_id.status_code != 404:
                    problems.append(f"/?p={item['id']} (a draft) answers {by_id.status_code}")
            # The old slugs WordPress remembers answer 301 to the permalink here.
            for old in item["meta"].get("_wp_old_slug", []):
                old_path = urlsplit(item["link"]).path.replace(f"/{item['slug']}/", f"/{old}/")
                moved = client.get(old_path)
                if moved.status_code != 301 or urlsplit(moved.headers.get("Location", "")).path != path:
                    problems.append(f"old slug {old_path}: {moved.status_code} {moved.headers.get('Location')}, "
                                    f"not 301 to {path}")
    assert not problems, "\n".join(problems)


def compare_pages(app, client, items: list[dict]) -> None:
    """Pages are pages at /<slug>/; the published ones are in the nav, the drafts nowhere."""
    problems: list[str] = []
    home = BeautifulSoup(client.get("/").get_data(as_text=True), "html.parser")
    nav = {a.get_text(strip=True): urlsplit(a["href"]).path for a in home.select("nav.site-nav a")}
    with app.app_context():
        for item in items:
            if item["type"] != "page":
                continue
            title = html.unescape(item["title"])
            page = db.session.scalar(select(Page).where(Page.slug == item["slug"]))
            if page is None:
                problems.append(f"WordPress page {item['id']} ({title!r}) is not a page here")
                continue
            if db.session.scalar(select(Post.id).where(Post.slug == item["slug"])) is not None:
                problems.append(f"WordPress page {title!r} was imported as a post too")
            published = item["status"] == "publish"
            got = (page.title, page.status)
            want = (title, "published" if published else "draft")
            if got != want:
                problems.append(f"page {item['slug']}: (title, status) {got}, WordPress says {want}")
            response = client.get(f"/{item['slug']}/")
            by_id = client.get(f"/?page_id={item['id']}")
            if published:
                if response.status_code != 200 or title not in response.get_data(as_text=True):
                    problems.append(f"/{item['slug']}/ answers {response.status_code}, not the page {title!r}")
                if nav.get(title) != f"/{item['slug']}/":
                    problems.append(f"the published page {title!r} is not in the nav ({nav})")
                if by_id.status_code != 301 or urlsplit(by_id.headers.get("Location", "")).path != f"/{item['slug']}/":
                    problems.append(f"/?page_id={item['id']}: {by_id.status_code} {by_id.headers.get('Location')}")
            else:
                if response.status_code != 404:
                    problems.append(f"the draft page /{item['slug']}/ answers {response.status_code}")
                if title in nav:
                    problems.append(f"the draft page {title!r} is in the nav")
    assert not problems, "\n".join(problems)


def blocks_of(content) -> list[tuple[str, str]]:
    """The top-level elements of a post's content: (tag, text)."""
    return [(el.name, norm(el.get_text(" "))) for el in content.find_all(recursive=False)]


def compare_rendering(wp_html: str, our_html: str, what: str) -> None:
    """Our page shows the post's content in the blocks WordPress shows it in: the same top-level
    elements (paragraphs where WordPress makes paragraphs, a figure for [caption]...), the same text."""
    wp = BeautifulSoup(wp_html, "html.parser").select_one(".entry-content")
    ours = BeautifulSoup(our_html, "html.parser").select_one(".entry-content")
    assert wp is not None and ours is not None
    assert blocks_of(ours) == blocks_of(wp), f"{what}: (tag, text) of each block, ours then WordPress's"
    assert [len(p.find_all("br")) for p in ours.find_all("p")] == [len(p.find_all("br")) for p in wp.find_all("p")], \
        f"{what}: line breaks inside paragraphs"
    for wp_figure, our_figure in zip(wp.find_all("figure"), ours.find_all("figure")):
        assert (our_figure.img is not None) == (wp_figure.img is not None)
        assert norm(our_figure.figcaption.get_text() if our_figure.figcaption else "") == \
            norm(wp_figure.figcaption.get_text() if wp_figure.figcaption else ""), f"{what}: figure caption"
    assert "<!-- wp:" not in our_html, f"{what}: block markup left in the page"


def rendered_thread(page_html: str) -> tuple:
    """The thread readers see, as nested (kind, author, text, replies), from WordPress's markup or
    ours; a comment's text is its blocks (tag, text, line breaks), as WordPress's wpautop made them."""
    soup = BeautifulSoup(page_html, "html.parser")
    top = soup.select_one("ol.comment-list")

    def items(ol) -> tuple:
        out = []
        for li in ol.find_all("li", recursive=False):
            classes = li.get("class", [])
            kind = next((k for k in ("pingback", "trackback", "webmention") if k in classes), "comment")
            if kind == "comment":
                name = li.select_one(".comment-author .fn, .comment-author .p-name")
            else:
                name = li.select_one(".p-name") or li.select_one(".comment-body a.url")
            replies = li.find("ol", class_="children", recursive=False)
            body = li.select_one(".comment-content") if kind == "comment" else None
            text = tuple((el.name, norm(el.get_text(" ")), len(el.find_all("br")))
                         for el in body.find_all(recursive=False)) if body is not None else ()
            out.append((kind, norm(name.get_text()) if name else "", text, items(replies) if replies else ()))
        return tuple(out)

    return items(top) if top is not None else ()


# --------------------------------------------------------------------------- the fixture export


@pytest.fixture
def wxr_items():
    return parse_wxr(FIXTURE_XML.read_bytes())


@pytest.fixture
def imported(app, runner, auth):
    """The fixture export imported into a fresh blog whose admin is ``admin`` (the file's author)."""
    auth.create()
    return import_file(runner, FIXTURE_XML)


def test_the_import_reports_what_the_export_holds_and_connects_nowhere(app, imported, wxr_items):
    counts = {"posts": 0, "pages": 0, "comments": 0, "pingbacks": 0, "trackbacks": 0}
    for item in wxr_items:
        counts[item["type"] + "s"] += 1
        for c in item["comments"]:
            counts[c["type"] + "s"] += 1
    summary = imported.summary
    assert {k: summary[k] for k in counts} == counts == {
        "posts": 8, "pages": 3, "comments": 11, "pingbacks": 2, "trackbacks": 1}
    assert summary["unknown_shortcodes"] == {"myplugin": 1}
    assert summary["skipped"] == 0 and summary["orphans_made_top_level"] == 0 and summary["dry_run"] is False
    assert "[myplugin]" in imported.output.splitlines()[0]
    # Nothing sent, nothing even tried: no connection (loopback included), no name looked up.
    assert imported.net.attempts == []
    assert dict(imported.net.lookups) == {}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LinkbackAttempt)) == 0
        assert db.session.scalar(select(func.count()).select_from(JobRecord)) == 0
        unsent = db.session.scalars(select(OutboundLink).where(OutboundLink.state != "sent")).all()
        assert unsent == []


def test_every_comment_is_here_as_wordpress_lists_it(app, imported, wxr_items):
    rows = fixture_rows()
    assert sum(len(r) for r in rows.values()) == 15
    assert [r["author"] for rs in rows.values() for r in rs if r["approved"] == "spam"] == ["Cheap Pills"]
    mapping = compare_comments(app, wxr_items, rows)
    assert len(mapping) == 14


def test_threads_keep_their_shape(app, imported, wxr_items):
    mapping = compare_comments(app, wxr_items, fixture_rows(), fields=False)
    compare_threads(app, wxr_items, mapping)
    # The build's thread on the classic post, 4 levels deep: 5 <- 6 <- 7 <- 8, and 5 <- 9 (the author).
    with app.app_context():
        parent = {c.id: c.parent_id for c in db.session.scalars(select(Comment))}
    ours_to_wp = {ours: wp for wp, ours in mapping.items()}
    assert {ours_to_wp[c]: ours_to_wp.get(p) for c, p in parent.items() if p} == {6: 5, 7: 6, 8: 7, 9: 5}


def test_posts_match_the_export(app, client, imported, wxr_items):
    compare_posts(app, client, wxr_items)
    with app.app_context():
        draft = db.session.scalar(select(Post).where(Post.title == "Unfinished draft f38504"))
        assert draft.status == "draft" and draft.published_at is None
        classic = db.session.scalar(select(Post).where(Post.slug == "classic-paragraphs-f38504"))
        assert sorted(t.name for t in classic.tags) == ["import f38504", "wxr"]
        assert [c.name for c in classic.categories] == ["Practice f38504"]
    # Not listed anywhere a reader looks.
    assert "Unfinished draft" not in client.get("/").get_data(as_text=True)
    assert "Unfinished draft" not in client.get("/feed/").get_data(as_text=True)


def test_pages_are_pages_and_the_published_ones_are_in_the_nav(app, client, imported, wxr_items):
    compare_pages(app, client, wxr_items)
    nav = [a.get_text(strip=True) for a in
           BeautifulSoup(client.get("/").get_data(as_text=True), "html.parser").select("nav.site-nav a")]
    assert "Sample Page" in nav and "About f38504" in nav and "Privacy Policy" not in nav


def test_the_classic_post_reads_as_wordpress_shows_it(app, client, imported):
    page = client.get("/2026/12/03/classic-paragraphs-f38504/").get_data(as_text=True)
    compare_rendering(FIXTURE_CLASSIC_PAGE.read_text(), page, "classic post")
    content = BeautifulSoup(page, "html.parser").select_one(".entry-content")
    assert [el.name for el in content.find_all(recursive=False)] == ["p", "p", "figure", "ul", "p"]
    assert content.figure.figcaption.get_text(strip=True) == "A caption text"
    assert "[caption" not in page
    # The thread readers see is WordPress's: the approved pingback, then the 4-level discussion.
    thread = rendered_thread(page)
    assert thread == rendered_thread(FIXTURE_CLASSIC_PAGE.read_text())

    def who(nodes):
        return tuple((kind, author, who(replies)) for kind, author, _, replies in nodes)

    assert who(thread) == (
        ("pingback", "Shortcodes and links f38504 – WP Interop Peer", ()),
        ("comment", "Ada Reader", (
            ("comment", "Bob Visitor", (("comment", "Carol Third", (("comment", "Dan Fourth", ()),)),)),
            ("comment", "admin", ()),
        )),
        ("comment", "Eve Second", ()),
    )
    assert thread[1][2] == (("p", "A first reader comment.", 0), ("p", "It has two paragraphs.", 0))


def test_the_block_editor_post_loses_its_block_comments(app, client, imported):
    page = client.get("/2026/12/03/block-editor-post-f38504/").get_data(as_text=True)
    assert "<!-- wp:" not in page and "<!-- /wp:" not in page
    content = BeautifulSoup(page, "html.parser").select_one(".entry-content")
    assert [el.name for el in content.find_all(recursive=False)] == ["p", "h2", "p", "ul", "figure"]
    with app.app_context():
        post = db.session.scalar(select(Post).where(Post.slug == "block-editor-post-f38504"))
        assert "wp:" not in post.body_html


def test_an_unknown_shortcode_stays_as_text(client, imported):
    page = client.get("/2026/12/03/shortcodes-and-links-f38504/").get_data(as_text=True)
    paragraphs = [norm(p.get_text()) for p in BeautifulSoup(page, "html.parser").select(".entry-content p")]
    assert '[myplugin foo="bar"]' in paragraphs  # as WordPress shows it (it curls the quotes)
    assert imported.summary["unknown_shortcodes"] == {"myplugin": 1}


def test_the_post_with_comments_closed_stays_closed(app, client, imported):
    page = client.get("/2026/12/03/comments-closed-f38504/")
    assert page.status_code == 200
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    assert soup.select_one("p.no-comments").get_text(strip=True) == "Comments are closed."
    assert soup.select_one("form.comment-form") is None
    with app.app_context():
        post = db.session.scalar(select(Post).where(Post.slug == "comments-closed-f38504"))
        assert (post.comments_open, post.pings_open) == (False, False)
    # An open one, for contrast.
    assert BeautifulSoup(client.get("/2026/12/03/renamed-post-f38504-new-slug/").get_data(as_text=True),
                         "html.parser").select_one("form.comment-form") is not None


def test_old_addresses_answer_301(client, imported):
    moved = client.get("/2026/12/03/renamed-post-f38504/")
    assert moved.status_code == 301
    assert urlsplit(moved.headers["Location"]).path == "/2026/12/03/renamed-post-f38504-new-slug/"
    assert client.get(moved.headers["Location"]).status_code == 200
    for wp_id, path in [(1, "/2026/12/03/hello-world/"), (4, "/2026/12/03/classic-paragraphs-f38504/"),
                        (8, "/2026/12/03/renamed-post-f38504-new-slug/")]:
        response = client.get(f"/?p={wp_id}")
        assert response.status_code == 301 and urlsplit(response.headers["Location"]).path == path
    assert client.get("/?p=13").status_code == 404  # the draft
    assert urlsplit(client.get("/?page_id=15").headers["Location"]).path == "/about-f38504/"


def test_wordpress_ids_of_pages_never_lead_to_another_post(client, imported, wxr_items):
    """What WordPress itself answers (the peer, asked for this export's ids): ``/?p=2`` (the Sample
    Page) 301 to /sample-page/, ``/?p=15`` (About) 301 to /about-f38504/, ``/?p=3`` (a draft page) 404.
    Our own post ids 2 and 3 exist here too: they must not answer for WordPress's."""
    problems = []
    for item in wxr_items:
        if item["type"] != "page":
            continue
        response = client.get(f"/?p={item['id']}")
        got = (response.status_code, urlsplit(response.headers.get("Location", "")).path)
        want = (301, f"/{item['slug']}/") if item["status"] == "publish" else (404, "")
        if got != want:
            problems.append(f"/?p={item['id']} (WordPress's page {item['title']!r}): {got}, WordPress: {want}")
    assert not problems, "\n".join(problems)


def test_send_pings_has_nothing_to_send_for_imported_posts(app, runner, imported, wxr_items, monkeypatch):
    # The old site told the pages its posts link to; every one of those links is recorded as told.
    linked = {}
    for item in wxr_items:
        if item["type"] == "post" and item["status"] == "publish":
            linked[item["slug"]] = set(re.findall(r'<a\s[^>]*href="([^"]+)"', item["content"]))
    with app.app_context():
        recorded = {}
        for link in db.session.scalars(select(OutboundLink)):
            recorded.setdefault(db.session.get(Post, link.post_id).slug, set()).add(link.target_url)
            assert (link.state, link.sent_protocol) == ("sent", "imported")
    assert recorded == {slug: urls for slug, urls in linked.items() if urls}
    net = Net().strict()
    net.install(monkeypatch)
    result = runner.invoke(args=["send-pings"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Nothing to send."
    assert net.attempts == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LinkbackAttempt)) == 0


def test_a_pingback_again_from_an_imported_source_is_a_duplicate(app, client, imported, live_server, source_site,
                                                                 monkeypatch):
    """The imported pingbacks keep their source: the same source pinging that post again gets
    fault 48 at once, before anything is fetched. The source's host (127.0.0.1:8090) is routed to a
    test site serving a page that does link to the post, so a fetch made too early would show."""
    target = SITE_URL + "/2026/12/03/classic-paragraphs-f38504/"
    sources = {"approved": "/2026/12/03/shortcodes-and-links-f38504/", "held": "/2026/12/03/block-editor-post-f38504/",
               "new": "/2026/12/03/a-third-page/"}
    for path in sources.values():
        source_site.page(path, f'<html><head><title>A page</title></head><body><p>See <a href="{target}">'
                               f'the classic post</a>.</p></body></html>')
    net = Net()
    net.route(("127.0.0.1", WP_PORT), source_site)
    net.install(monkeypatch)

    class Transport(xmlrpc.client.Transport):
        def make_connection(self, host):
            connection = super().make_connection(host)
            connection.timeout = 30
            return connection

    def ping(source_path):
        with xmlrpc.client.ServerProxy(live_server.url + "/xmlrpc", transport=Transport()) as proxy:
            return proxy.pingback.ping(WP_URL + source_path, target)

    for which in ("approved", "held"):
        with pytest.raises(xmlrpc.client.Fault) as info:
            ping(sources[which])
        assert info.value.faultCode == 48, f"the {which} pingback's source: {info.value}"
    assert source_site.requests == [], "a source was fetched before the duplicate was refused"
    assert ("127.0.0.1", WP_PORT) not in net.attempts
    with app.app_context():
        post_id = db.session.scalar(select(Post.id).where(Post.slug == "classic-paragraphs-f38504"))
        urls = [c.source_url for c in db.session.scalars(select(Comment).where(Comment.post_id == post_id,
                                                                                Comment.kind == "pingback"))]
    assert sorted(urls) == sorted(WP_URL + sources[w] for w in ("approved", "held"))
    # A trackback from the imported trackback's page is a duplicate as well, refused unfetched.
    tb_target = "/2026/12/03/shortcodes-and-links-f38504/trackback/"
    answer = client.post(tb_target, data=urlencode({"url": WP_URL + sources["held"], "title": "Again",
                                                     "excerpt": "Once more.", "blog_name": "WP Interop Peer"}),
                         content_type="application/x-www-form-urlencoded")
    root = ET.fromstring(answer.get_data())
    assert (answer.status_code, root.findtext("error")) == (200, "1")
    assert "already" in root.findtext("message")
    assert source_site.requests == []
    # The control: a source not imported is fetched (through the route) and registered.
    assert isinstance(ping(sources["new"]), str)  # a success string, not a fault
    assert [r.path for r in source_site.requests] == [sources["new"]]
    assert net.non_loopback() == []


# --------------------------------------------------------------------------- the live peer


def http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment
    return session


def require_peer() -> Path:
    """The peer's scripts, once WordPress answers; else skip with the reason (fail under CI=true)."""
    reason = None
    if not (PEER_DIR / "wp.sh").is_file():
        reason = f"WordPress peer scripts not found at {PEER_DIR} (set WP_PEER_DIR_SCRIPTS)"
    elif os.geteuid() != 0:
        reason = "the WordPress peer scripts must run as root"
    else:
        try:
            with http_session() as session:
                session.get(WP_URL + "/", timeout=3, allow_redirects=False).close()
        except requests.RequestException as exc:
            reason = f"WordPress does not answer at {WP_URL}/ ({type(exc).__name__}); start it with {PEER_DIR}/up.sh"
    if reason:
        unavailable(reason)
    return PEER_DIR


def snapshot(peer_dir: Path, wp_ids: list[int]) -> tuple[bytes, dict[int, list[dict]]]:
    """The export and each post's comments as of the same moment: listed before and after the
    export, again until both agree (other builds on the shared peer may ping these posts)."""
    def listed() -> dict[int, list[dict]]:
        with ThreadPoolExecutor(max_workers=4) as pool:  # one PHP process per post: side by side
            return dict(zip(wp_ids, pool.map(lambda i: wordpress_site.list_comments(peer_dir, i), wp_ids)))

    for _ in range(5):
        before = listed()
        xml = wordpress_site.export_site(peer_dir)
        after = listed()
        if before == after:
            return xml, after
        time.sleep(1)
    pytest.fail("the peer's comments kept changing during the export")


def test_a_site_built_on_wordpress_imports_post_by_post(app, client, runner, auth, tmp_path):
    peer_dir = require_peer()
    started = time.monotonic()
    site = wordpress_site.build_site(peer_dir)
    built = time.monotonic()
    posts = site["posts"]
    wp_ids = sorted(info["id"] for info in posts.values())
    xml, rows = snapshot(peer_dir, wp_ids)
    exported = time.monotonic()
    export = tmp_path / "export.xml"
    export.write_bytes(xml)
    auth.create()
    result = import_file(runner, export)
    imported_at = time.monotonic()
    assert result.net.attempts == [] and dict(result.net.lookups) == {}
    assert result.summary["unknown_shortcodes"].get("myplugin", 0) == xml.count(b"[myplugin")

    items = [item for item in parse_wxr(xml) if item["id"] in wp_ids]
    assert sorted(item["id"] for item in items) == wp_ids
    by_key = {key: next(i for i in items if i["id"] == info["id"]) for key, info in posts.items()}
    assert by_key["draft"]["status"] == "draft" and by_key["about"]["type"] == "page"
    # The spam comment is in list_comments, not in the export, and not here.
    assert any(r["approved"] == "spam" for r in rows[posts["shortcodes"]["id"]])

    mapping = compare_comments(app, items, rows)
    compare_threads(app, items, mapping)
    c = site["comments"]
    with app.app_context():
        parent = {row.id: row.parent_id for row in db.session.execute(select(Comment.id, Comment.parent_id)
                                                                       .where(Comment.id.in_(list(mapping.values()))))}
    assert {k: parent[mapping[c[k]]] for k in ("reply", "reply2", "reply3", "author_reply", "top")} == {
        "reply": mapping[c["top"]], "reply2": mapping[c["reply"]], "reply3": mapping[c["reply2"]],
        "author_reply": mapping[c["top"]], "top": None}
    statuses = {k: STATUS.get(r["approved"]) for k in ("held", "trash", "trashed_via_api", "approved")
                for r in rows[posts["shortcodes"]["id"]] if r["comment_id"] == c[k]}
    assert statuses == {"held": "pending", "trash": "trash", "trashed_via_api": "trash", "approved": "approved"}
    compare_posts(app, client, items)
    compare_pages(app, client, items)

    # Pages as readers see them, next to WordPress's own.
    with http_session() as session:
        for key in ("classic", "blocks"):
            wp_page = session.get(posts[key]["permalink"], timeout=10)
            assert wp_page.status_code == 200
            ours = client.get(urlsplit(posts[key]["permalink"]).path)
            assert ours.status_code == 200
            compare_rendering(wp_page.text, ours.get_data(as_text=True), key)
            if key == "classic":
                assert rendered_thread(ours.get_data(as_text=True)) == rendered_thread(wp_page.text)
                assert len(rendered_thread(wp_page.text)) >= 3
    closed = client.get(urlsplit(posts["closed"]["permalink"]).path).get_data(as_text=True)
    assert "Comments are closed." in closed
    moved = client.get(urlsplit(posts["renamed"]["old_permalink"]).path)
    assert moved.status_code == 301
    assert urlsplit(moved.headers["Location"]).path == urlsplit(posts["renamed"]["permalink"]).path
    page = client.get(urlsplit(posts["shortcodes"]["permalink"]).path).get_data(as_text=True)
    paragraphs = [norm(p.get_text()) for p in BeautifulSoup(page, "html.parser").select(".entry-content p")]
    assert '[myplugin foo="bar"]' in paragraphs

    net = Net().strict()
    with pytest.MonkeyPatch.context() as mp:
        net.install(mp)
        sent = runner.invoke(args=["send-pings"])
    assert sent.exit_code == 0 and sent.output.strip() == "Nothing to send.", sent.output
    assert net.attempts == []
    done = time.monotonic()
    print(f"\nlive WordPress round trip (marker {site['marker']}): {done - started:.1f} s = build "
          f"{built - started:.1f} + export and list {exported - built:.1f} + import {imported_at - exported:.1f} "
          f"+ checks {done - imported_at:.1f}; {len(xml)} bytes, {sum(result.summary[k] for k in ('posts', 'pages'))} "
          f"posts and pages")
