"""Atom feeds of posts and of each post's comments, read back with a real XML parser."""
from __future__ import annotations

from lxml import etree

from blogapp.models import CommentKind, CommentStatus
from helpers import add_comment, make_post

ATOM = {"a": "http://www.w3.org/2005/Atom"}


def parse(response):
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/atom+xml")
    return etree.fromstring(response.data)


def test_posts_feed(app, client, ctx):
    make_post(title="Older", body="old **body**", days_ago=5, categories=["Client Care"])
    _, path = make_post(title="Newer", days_ago=1, tags=["growth"])
    make_post(title="Draft", publish=False)
    feed = parse(client.get("/feed/"))
    assert feed.findtext("a:title", namespaces=ATOM) == "A SMART PRACTICE"
    assert feed.find("a:link[@rel='self']", ATOM).get("href") == "http://blog.test/feed/"
    entries = feed.findall("a:entry", ATOM)
    assert [e.findtext("a:title", namespaces=ATOM) for e in entries] == ["Newer", "Older"]
    newest = entries[0]
    assert newest.findtext("a:id", namespaces=ATOM) == "http://blog.test" + path
    # Atom: a link without rel is the alternate.
    assert newest.xpath("a:link[not(@rel) or @rel='alternate']/@href", namespaces=ATOM) == ["http://blog.test" + path]
    assert [c.get("term") for c in newest.findall("a:category", ATOM)] == ["growth"]
    assert "<strong>body</strong>" in entries[1].findtext("a:content", namespaces=ATOM)


def test_comments_feed_lists_only_approved(app, client, ctx):
    post_id, path = make_post(title="Discussed")
    add_comment(post_id, "First words", name="Bea")
    add_comment(post_id, "excerpt text", kind=CommentKind.PINGBACK, name="Their page",
                source_url="http://other.test/x", minutes=1)
    add_comment(post_id, "held back", status=CommentStatus.PENDING, minutes=2)
    feed = parse(client.get(path + "feed/"))
    titles = [e.findtext("a:title", namespaces=ATOM) for e in feed.findall("a:entry", ATOM)]
    assert titles == ["By: Bea", "Pingback: Their page"]
    assert "held back" not in client.get(path + "feed/").get_data(as_text=True)
    # The post page advertises it.
    assert f'href="http://blog.test{path}feed/"' in client.get(path).get_data(as_text=True)


def test_comments_feed_of_missing_post_is_404(client):
    assert client.get("/2026/01/01/nothing/feed/").status_code == 404
