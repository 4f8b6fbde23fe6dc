"""What WordPress readers and their tools expect besides the pages: the sitemap, robots.txt,
sharing cards, the RSS feed, the site's comments feed, the home page's heading, plain-text
excerpts. XML is read back with a real parser, HTML with BeautifulSoup."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bs4 import BeautifulSoup
from defusedxml import ElementTree as SafeET
from lxml import etree

from blogapp.extensions import db
from blogapp.models import Comment, CommentKind, CommentStatus, Post, utcnow
from blogapp.moderation import apply_action
from blogapp.pages import save_page
from blogapp.posts import remove_post, save_post
from blogapp.templating import post_path
from blogapp.text import excerpt, html_to_text
from helpers import add_comment, make_post

SITE = "http://blog.test"
SM = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
ATOM = {"a": "http://www.w3.org/2005/Atom"}


def odd_title(post_id: int, title: str) -> None:
    """Give a post a title ``save_post`` would tidy (an import or an old row may hold anything)."""
    db.session.get(Post, post_id).title = title
    db.session.commit()


def parse_xml(response, content_type: str):
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == content_type
    SafeET.fromstring(response.data)  # no DTD, no entities: what a careful reader accepts
    return etree.fromstring(response.data)


def sitemap(client) -> dict[str, str | None]:
    """loc -> lastmod of every URL in the sitemap."""
    root = parse_xml(client.get("/sitemap.xml"), "application/xml")
    assert root.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}urlset"
    urls = root.findall("s:url", SM)
    found = {u.findtext("s:loc", namespaces=SM): u.findtext("s:lastmod", namespaces=SM) for u in urls}
    assert len(found) == len(urls)  # no address twice
    return found


def page_soup(response) -> BeautifulSoup:
    assert response.status_code == 200
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


# --- sitemap.xml -------------------------------------------------------------------------------


def test_sitemap_lists_public_posts_pages_and_archives_only(app, client, ctx):
    public_id, public = make_post(title="Public", days_ago=40, categories=["Client Care"], tags=["growth"])
    _, draft = make_post(title="Draft", publish=False, slug="a-draft")
    _, private = make_post(title="Secret", private=True, slug="a-secret")
    future = save_post(None, title="Later", body="x", publish=True, published_at=utcnow() + timedelta(days=3))
    db.session.commit()
    gone_id, gone = make_post(title="Deleted", days_ago=2)
    remove_post(db.session.get(Post, gone_id))
    db.session.commit()
    save_page(None, title="About", body="About us")
    save_page(None, title="Unfinished", body="Not yet", publish=False)
    db.session.commit()

    urls = sitemap(client)
    post = db.session.get(Post, public_id)
    year, month = post.published_at.year, post.published_at.month  # (the tests' zone is UTC)
    expected = {SITE + "/", SITE + public, SITE + "/about/", f"{SITE}/{year}/", f"{SITE}/{year}/{month:02d}/",
                SITE + "/category/client-care/", SITE + "/tag/growth/"}
    assert set(urls) == expected
    for absent in (draft, private, gone, future.slug, "unfinished"):
        assert not any(absent in loc for loc in urls), absent
    # Every <lastmod> is a W3C datetime; a post's is its last change.
    for loc, lastmod in urls.items():
        assert datetime.fromisoformat(lastmod).tzinfo is not None, loc
    changed = max(post.updated_at, post.published_at).replace(tzinfo=UTC, microsecond=0)
    assert datetime.fromisoformat(urls[SITE + public]) == changed
    assert datetime.fromisoformat(urls[f"{SITE}/{year}/{month:02d}/"]) == changed


def test_sitemap_stays_well_formed_with_odd_characters(app, client, ctx):
    # Titles never reach the sitemap, but slugs do, and an imported one may hold "&" (a path keeps it as it is).
    post_id, _ = make_post(title="Odd", days_ago=2)
    post = db.session.get(Post, post_id)
    post.slug = "odd-&-slug"
    odd_title(post_id, 'Odd \x0b <&>" title')
    urls = sitemap(client)  # parsed: "&" was written as "&amp;"
    assert SITE + post_path(db.session.get(Post, post_id)) in urls
    assert any(loc.endswith("/odd-&-slug/") for loc in urls)


def test_sitemap_is_cached_and_made_stale_by_publishing_editing_and_pages(app, client, ctx):
    assert app.config["PAGE_CACHE"]
    make_post(title="First", days_ago=3)
    sitemap(client)
    assert client.get("/sitemap.xml").headers["X-Cache"] == "hit"

    draft = save_post(None, title="Soon out", body="words", publish=False)
    db.session.commit()
    assert not any(draft.slug in loc for loc in sitemap(client))
    assert client.get("/sitemap.xml").headers["X-Cache"] == "hit"

    save_post(draft, title="Soon out", body="words", publish=True, published_at=utcnow() - timedelta(days=2))
    db.session.commit()
    published = SITE + post_path(draft)
    assert published in sitemap(client)  # published: listed at once

    db.session.get(Post, draft.id).updated_at = utcnow() - timedelta(days=1)  # (an older last change)
    db.session.commit()
    before = sitemap(client)[published]
    assert client.get("/sitemap.xml").headers["X-Cache"] == "hit"
    save_post(db.session.get(Post, draft.id), title="Soon out", body="new words", publish=True)  # an edit
    db.session.commit()
    edited = db.session.get(Post, draft.id).updated_at.replace(tzinfo=UTC, microsecond=0)
    after = sitemap(client)[published]
    assert after != before and datetime.fromisoformat(after) == edited  # the edit alone moved its lastmod

    save_post(db.session.get(Post, draft.id), title="Soon out", body="new words", publish=False)  # unpublished
    db.session.commit()
    assert published not in sitemap(client)

    save_page(None, title="Contact", body="Write to us")
    db.session.commit()
    assert SITE + "/contact/" in sitemap(client)


# --- robots.txt --------------------------------------------------------------------------------


def test_robots_txt_allows_all_but_admin_and_names_the_sitemap(client):
    answer = client.get("/robots.txt")
    assert answer.status_code == 200 and answer.headers["Content-Type"].split(";")[0] == "text/plain"
    lines = answer.get_data(as_text=True).splitlines()
    assert "User-agent: *" in lines
    disallowed = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("disallow:")]
    assert disallowed == ["/admin/"]
    assert [line for line in lines if line.startswith("Sitemap:")] == ["Sitemap: http://blog.test/sitemap.xml"]


# --- sharing cards -----------------------------------------------------------------------------


def meta(soup: BeautifulSoup) -> dict[str, str]:
    found = {}
    for tag in soup.head.find_all("meta"):
        key = tag.get("property") or tag.get("name")
        if key:
            assert key not in found, f"{key} twice"
            found[key] = tag.get("content")
    return found


def test_post_page_has_opengraph_and_twitter_tags_escaped(app, client, ctx):
    title = 'Quotes "here" & <b>there</b>'
    post_id, path = make_post(title=title, body="<ul><li>one</li><li>two</li></ul><p>A closing <em>line</em>.</p>",
                              body_format="html")
    answer = client.get(path)
    html = answer.get_data(as_text=True)
    assert "<b>there</b>" not in html.split("</head>")[0]  # escaped, not markup
    tags = meta(page_soup(answer))
    assert tags["og:type"] == "article"
    assert tags["og:title"] == title and tags["twitter:title"] == title
    assert tags["og:url"] == SITE + path
    assert tags["og:site_name"] == "A SMART PRACTICE"
    assert tags["og:description"] == "one two A closing line." == tags["twitter:description"]
    assert tags["description"] == "one two A closing line."  # the page's own description too
    assert tags["twitter:card"] == "summary"
    published = db.session.get(Post, post_id).published_at.replace(tzinfo=UTC, microsecond=0)
    assert datetime.fromisoformat(tags["article:published_time"]) == published


def test_sharing_description_is_the_excerpt_and_follows_edits(app, client, ctx):
    post_id, path = make_post(title="Summarised", body="The body.", excerpt="Hand-written <summary>")
    assert meta(page_soup(client.get(path)))["og:description"] == "Hand-written <summary>"
    save_post(db.session.get(Post, post_id), title="Summarised", body="The body.", excerpt="", publish=True)
    db.session.commit()
    assert meta(page_soup(client.get(path)))["og:description"] == "The body."


# --- RSS ---------------------------------------------------------------------------------------


def test_rss_items_are_the_atom_entries(app, client, ctx):
    make_post(title="Older", body="<ol><li>one</li><li>two</li></ol>", body_format="html", days_ago=5,
              categories=["Client Care"])
    odd_id, _ = make_post(title="Odd", body="body text", days_ago=2, tags=["growth"])
    odd_title(odd_id, 'Odd \x0b <&>" title')
    make_post(title="Hidden draft", publish=False)
    make_post(title="Hidden private", private=True)
    save_post(None, title="Hidden future", body="x", publish=True, published_at=utcnow() + timedelta(days=1))
    db.session.commit()

    atom = parse_xml(client.get("/feed/"), "application/atom+xml")
    rss = parse_xml(client.get("/feed/rss2/"), "application/rss+xml")
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    channel = rss.find("channel")
    assert channel.findtext("link") == SITE + "/"
    assert channel.find("{http://www.w3.org/2005/Atom}link[@rel='self']").get("href") == SITE + "/feed/rss2/"

    entries = [(e.findtext("a:title", namespaces=ATOM), e.findtext("a:id", namespaces=ATOM),
                e.findtext("a:summary", namespaces=ATOM)) for e in atom.findall("a:entry", ATOM)]
    items = [(i.findtext("title"), i.findtext("guid"), i.findtext("description")) for i in channel.findall("item")]
    assert items == entries
    assert [title for title, _, _ in items] == ['Odd  <&>" title', "Older"]  # U+000B dropped
    assert items[1][2] == "one two"  # list items kept apart in the summary
    for item in channel.findall("item"):
        assert item.findtext("link") == item.findtext("guid")
        assert item.findtext("pubDate")
        assert item.findtext("{http://purl.org/dc/elements/1.1/}creator")


def test_pages_advertise_the_rss_and_comments_feeds(app, client, ctx):
    _, path = make_post(title="Advertised")
    for url in ("/", path):
        links = {(link.get("type"), link.get("href")) for link in page_soup(client.get(url)).head.find_all("link", rel="alternate")}
        assert ("application/atom+xml", SITE + "/feed/") in links
        assert ("application/rss+xml", SITE + "/feed/rss2/") in links
        assert ("application/atom+xml", SITE + "/comments/feed/") in links


# --- the site's comments feed ------------------------------------------------------------------


def comment_entries(client):
    feed = parse_xml(client.get("/comments/feed/"), "application/atom+xml")
    return [e.findtext("a:title", namespaces=ATOM) for e in feed.findall("a:entry", ATOM)]


def test_comments_feed_has_only_approved_comments_on_public_posts(app, client, ctx):
    a_id, a = make_post(title="Alpha", days_ago=3)
    b_id, _ = make_post(title="B", days_ago=2)
    odd_title(b_id, 'B <&>" \x0b')
    draft_id, _ = make_post(title="Draft post", publish=False)
    private_id, _ = make_post(title="Private post", private=True)
    add_comment(a_id, "first", name="Ann", minutes=1)
    add_comment(b_id, "second", name="Bob \x0b", minutes=2)
    add_comment(a_id, "their words", name="Their page", kind=CommentKind.PINGBACK, source_url="http://other.test/p",
                minutes=3)
    for status in (CommentStatus.PENDING, CommentStatus.SPAM, CommentStatus.TRASH):
        add_comment(a_id, f"not {status}", name=f"N {status}", status=status, minutes=4)
    add_comment(draft_id, "on a draft", name="D", minutes=5)
    add_comment(private_id, "on a private post", name="P", minutes=6)

    titles = comment_entries(client)
    assert titles == ["Pingback on Alpha by Their page", 'Comment on B <&>"  by Bob ', "Comment on Alpha by Ann"]
    body = client.get("/comments/feed/").get_data(as_text=True)
    for hidden in ("not pending", "not spam", "not trash", "on a draft", "on a private post"):
        assert hidden not in body
    feed = etree.fromstring(client.get("/comments/feed/").data)
    first = feed.find("a:entry", ATOM)
    assert first.find("a:link", ATOM).get("href").startswith(SITE + a + "#comment-")


def test_comments_feed_keeps_the_newest_feed_size(app, client, ctx):
    app.config["FEED_SIZE"] = 3
    post_id, _ = make_post(title="Busy")
    for n in range(5):
        add_comment(post_id, f"c{n}", name=f"N{n}", minutes=n)
    assert comment_entries(client) == [f"Comment on Busy by N{n}" for n in (4, 3, 2)]


def test_comments_feed_is_cached_and_made_stale_by_any_comment(app, client, ctx):
    assert app.config["PAGE_CACHE"]
    a_id, _ = make_post(title="Alpha", days_ago=3)
    b_id, _ = make_post(title="Beta", days_ago=2)
    add_comment(a_id, "hello", name="Ann")
    assert comment_entries(client) == ["Comment on Alpha by Ann"]
    assert client.get("/comments/feed/").headers["X-Cache"] == "hit"

    held = add_comment(b_id, "wait", name="Held", status=CommentStatus.PENDING, minutes=5)
    assert client.get("/comments/feed/").headers["X-Cache"] == "hit"  # nothing readers see

    apply_action(db.session.get(Comment, held), "approve")  # on another post than the one shown
    db.session.commit()
    assert comment_entries(client) == ["Comment on Beta by Held", "Comment on Alpha by Ann"]

    apply_action(db.session.get(Comment, held), "spam")
    db.session.commit()
    assert comment_entries(client) == ["Comment on Alpha by Ann"]

    save_post(db.session.get(Post, a_id), title="Alpha", body="x", private=True)  # its post goes private
    db.session.commit()
    assert comment_entries(client) == []


# --- headings and excerpts ---------------------------------------------------------------------


def test_home_has_one_h1_with_the_site_title_and_archives_keep_theirs(app, client, ctx):
    make_post(title="Listed", categories=["News"])
    for url in ("/", "/page/1/"):
        headings = page_soup(client.get(url)).find_all("h1")
        assert [h.get_text(strip=True) for h in headings] == ["A SMART PRACTICE"], url
    headings = page_soup(client.get("/category/news/")).find_all("h1")
    assert [h.get_text(strip=True) for h in headings] == ["Category: News"]


def test_excerpts_keep_list_items_and_blocks_apart(app, client, ctx):
    assert html_to_text("<ul><li>one</li><li>two</li></ul><p>three</p>four<br>five") == "one two three four five"
    assert html_to_text("<p>a<em>b</em>c</p>") == "abc"  # inline markup joins, as it reads
    assert excerpt("<p>alpha beta gamma</p>", 12) == "alpha beta…"
    make_post(title="Listy", body="<ul><li>one</li><li>two</li></ul><ol><li>three</li><li>four</li></ol>", body_format="html")
    summary = page_soup(client.get("/")).select_one(".entry-excerpt").get_text(" ", strip=True)
    assert summary == "one two three four"
