"""The parts of a post page kept between renders, with the page cache on or off: the "Previous
post" / "Next post" links, kept until the post list changes (a publication, a retitled or
removed post, a scheduled post come due); the thread, kept until the post, its comments or the
site change; the post itself (which post an address names, its own markup), kept until the post,
the post list or the site change; the site settings, kept until the site changes; the links
every page has."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import delete, select, update

import pytest
from flask import g

from blogapp.extensions import db
from blogapp.models import (Category, Comment, CommentStatus, Post, SiteSetting, Tag, User, post_categories,
                            save_site_settings, utcnow)
from blogapp.moderation import apply_action
from blogapp.posts import remove_post, save_post
from blogapp.templating import post_path
from helpers import add_comment, make_post, wait_for


def links(client, path) -> dict[str, tuple[str, str]]:
    html = client.get(path).get_data(as_text=True)
    return {rel: (href, title) for href, rel, title in re.findall(
        r'<a class="nav-(?:previous|next)" href="([^"]+)" rel="(prev|next)"><span class="nav-label">[^<]+</span> ([^<]*)</a>',
        html)}


def edit(post_id: int, **changes) -> Post:
    post = db.session.get(Post, post_id)
    fields = dict(title=post.title, body=post.body, publish=True, published_at=post.published_at)
    saved = save_post(post, **{**fields, **changes})
    db.session.commit()
    return saved


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": True}, {"PAGE_CACHE": False}], ids=["cache-on", "cache-off"])
def test_neighbour_links_follow_the_post_list(app, client, ctx):
    a_id, a_path = make_post(title="Alpha", days_ago=3)
    b_id, b_path = make_post(title="Beta", days_ago=2)
    c_id, c_path = make_post(title="Gamma", days_ago=1)
    assert links(client, b_path) == {"prev": (a_path, "Alpha"), "next": (c_path, "Gamma")}
    assert links(client, a_path) == {"next": (b_path, "Beta")}
    assert links(client, c_path) == {"prev": (b_path, "Beta")}

    edit(c_id, title="Gamma & Co")  # a retitled neighbour: the link says so (escaped)
    assert links(client, b_path)["next"] == (c_path, "Gamma &amp; Co")

    d_id, d_path = make_post(title="Delta", days_ago=1.5)  # published between Beta and Gamma
    assert links(client, b_path)["next"] == (d_path, "Delta")
    assert links(client, c_path)["prev"] == (d_path, "Delta")

    remove_post(db.session.get(Post, d_id))
    db.session.commit()
    assert links(client, b_path)["next"] == (c_path, "Gamma &amp; Co")

    edit(a_id, publish=False)  # back to a draft: Beta has no previous post
    assert links(client, b_path) == {"next": (c_path, "Gamma &amp; Co")}


def test_a_scheduled_post_becomes_a_neighbour_when_its_time_comes(app, client, ctx):
    _, a_path = make_post(title="Alpha", days_ago=2)
    e_id, _ = make_post(title="Epsilon", days_ago=1)
    e_path = post_path(edit(e_id, published_at=utcnow() + timedelta(seconds=1)))  # due in a second
    assert links(client, a_path) == {}
    assert wait_for(lambda: links(client, a_path) == {"next": (e_path, "Epsilon")}, timeout=5, interval=0.1)


CACHE_ON_AND_OFF = pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": True}, {"PAGE_CACHE": False}],
                                           ids=["cache-on", "cache-off"])


def settings(values: dict) -> None:
    save_site_settings(values)
    db.session.commit()
    g.pop("site_settings", None)  # (the test's app context, which the client's requests share, read them once)


def thread_of(client, path) -> str:
    html = client.get(path).get_data(as_text=True)
    return html[html.index('<section id="comments"'):html.index("</section>")] if '<section id="comments"' in html else ""


@CACHE_ON_AND_OFF
def test_the_thread_follows_its_comments_the_post_and_the_site(app, client, ctx):
    post_id, path = make_post(title="Talked about", days_ago=2)
    first = add_comment(post_id, "First words")
    assert "First words" in thread_of(client, path) and ">One Comment<" in thread_of(client, path)
    held = add_comment(post_id, "Not yet", status=CommentStatus.PENDING)
    assert "Not yet" not in thread_of(client, path)
    apply_action(db.session.get(Comment, held), "approve")
    db.session.commit()
    assert "Not yet" in thread_of(client, path) and ">2 Comments<" in thread_of(client, path)
    db.session.get(Comment, first).content_html = "<p>Second thoughts</p>"  # an edit of an approved comment
    db.session.commit()
    assert "Second thoughts" in thread_of(client, path) and "First words" not in thread_of(client, path)
    assert 'class="comment-reply-link"' in thread_of(client, path)
    edit(post_id, comments_open=False)  # the post's switch: no reply links
    assert 'class="comment-reply-link"' not in thread_of(client, path)
    edit(post_id, comments_open=True)
    settings({"CLOSE_COMMENTS_AFTER_DAYS": 1})  # the site's auto-close age: two days old, closed
    assert 'class="comment-reply-link"' not in thread_of(client, path)
    settings({"CLOSE_COMMENTS_AFTER_DAYS": 0})
    assert 'class="comment-reply-link"' in thread_of(client, path) and "Not yet" in thread_of(client, path)
    db.session.execute(update(Comment).where(Comment.id == held).values(status="spam"))  # a bulk statement
    db.session.commit()
    assert "Not yet" not in thread_of(client, path) and 'class="comment-reply-link"' in thread_of(client, path)


@CACHE_ON_AND_OFF
def test_a_held_comment_is_shown_to_its_author_alone(app, client, ctx):
    post_id, path = make_post(title="Moderated", days_ago=1)
    add_comment(post_id, "Already here")
    assert "Already here" in thread_of(client, path)  # the thread kept for everyone
    response = client.post(f"/posts/{post_id}/comments", data={
        "content": "Mine, held", "author_name": "Me", "author_email": "me@example.org"})
    assert response.status_code == 303
    assert "Mine, held" in thread_of(client, path) and "Already here" in thread_of(client, path)
    assert "Mine, held" not in thread_of(app.test_client(), path)  # another reader


@CACHE_ON_AND_OFF
def test_a_thread_closes_when_the_post_reaches_the_sites_comment_age(app, client, ctx):
    """Nothing changes in the database when a post grows old enough to close: the kept thread
    (its reply links) must follow the clock too."""
    settings({"CLOSE_COMMENTS_AFTER_DAYS": 2})
    post_id, path = make_post(title="Nearly old", days_ago=2 - 1.5 / 86400)  # two days old in 1.5 s
    add_comment(post_id, "Just in time")
    assert 'class="comment-reply-link"' in thread_of(client, path)
    open_page = client.get(path)
    etag, last_modified = open_page.headers["ETag"], open_page.headers["Last-Modified"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304  # (still open)
    assert wait_for(lambda: 'class="comment-reply-link"' not in thread_of(client, path), timeout=5, interval=0.2)
    closed = client.get(path)
    assert "Comments are closed." in closed.get_data(as_text=True) and closed.headers["ETag"] != etag
    # A reader holding the open page is given the closed one, whichever validator it sends.
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 200
    assert client.get(path, headers={"If-Modified-Since": last_modified}).status_code == 200
    assert client.get(path, headers={"If-None-Match": closed.headers["ETag"]}).status_code == 304


def entry_of(client, path) -> str:
    """The post's own markup on its page (title, byline, body, terms), with the page's head."""
    html = client.get(path).get_data(as_text=True)
    return html[:html.index('<section id="comments"')]


def rename(model, old: str, new: str) -> None:
    db.session.scalar(select(model).where(model.name == old)).name = new
    db.session.commit()


@CACHE_ON_AND_OFF
def test_the_post_follows_its_own_changes_its_terms_and_the_site(app, client, ctx):
    """The post's own part of its page is kept between views: each kind of change reaches it."""
    author = User(username="writer", display_name="First Name")
    author.set_password("x" * 12)
    db.session.add(author)
    db.session.commit()
    post_id, path = make_post(title="Kept", body="Original words.", author=author, categories=["Cats"], tags=["Tabby"])
    page = entry_of(client, path)
    assert ">Kept</h1>" in page and "Original words." in page and ">First Name</a>" in page
    assert '<meta name="description" content="Original words.">' in page
    assert ">Cats</a>" in page and ">Tabby</a>" in page

    edit(post_id, body="Second words.", categories=["Cats"], tags=["Tabby"])  # the post alone
    page = entry_of(client, path)
    assert "Second words." in page and "Original words." not in page
    assert '<meta name="description" content="Second words.">' in page

    rename(Category, "Cats", "Felines")  # the site: a term's name
    rename(Tag, "Tabby", "Striped")
    page = entry_of(client, path)
    assert ">Felines</a>" in page and ">Striped</a>" in page and ">Cats</a>" not in page
    author.display_name = "Second Name"  # the site: the author's name
    db.session.commit()
    assert ">Second Name</a>" in entry_of(client, path)

    db.session.execute(delete(post_categories).where(post_categories.c.post_id == post_id))  # the post list alone
    db.session.commit()
    assert ">Felines</a>" not in entry_of(client, path) and ">Striped</a>" in entry_of(client, path)

    db.session.execute(update(Post).where(Post.id == post_id).values(body_html="<p>By statement.</p>"))  # the site
    db.session.commit()
    assert "By statement." in entry_of(client, path)

    edit(post_id, comments_open=False, pings_open=False)  # the post's switches
    page = client.get(path).get_data(as_text=True)
    assert "Comments are closed." in page and 'rel="trackback"' not in page


@CACHE_ON_AND_OFF
def test_the_post_found_by_its_address_follows_slugs_and_removals(app, client, ctx):
    post_id, path = make_post(title="Addressed", slug="addressed")
    assert client.get(path).status_code == 200
    moved = post_path(edit(post_id, slug="moved"))
    assert client.get(path).status_code == 404 and client.get(moved).status_code == 200
    other_id, other_path = make_post(title="Newcomer", slug="addressed")  # the old address, taken again
    assert other_path == path and ">Newcomer</h1>" in entry_of(client, path)
    db.session.execute(update(Post).where(Post.id == other_id).values(slug="by-statement"))  # the site
    db.session.commit()
    assert client.get(path).status_code == 404
    remove_post(db.session.get(Post, post_id))
    db.session.commit()
    assert client.get(moved).status_code == 410


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": False}])  # (a whole page is kept whatever the config)
def test_the_post_follows_the_zone_and_the_sites_address(app, client, ctx):
    post_id, path = make_post(title="Zoned", days_ago=10)
    assert 'datetime="' in entry_of(client, path) and "+13:45" not in entry_of(client, path)
    app.config["TIMEZONE"] = "Pacific/Chatham"
    path = post_path(db.session.get(Post, post_id))
    assert "+13:45" in entry_of(client, path) or "+12:45" in entry_of(client, path)
    app.config["SITE_URL"] = "https://moved.example"
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert f'href="https://moved.example{path}"' in html  # the permalink in the byline
    assert '<link rel="pingback" href="https://moved.example/xmlrpc">' in html
    assert page.headers["X-Pingback"] == "https://moved.example/xmlrpc"
    assert 'href="https://moved.example/feed/"' in html  # the site's feed, in the head


@pytest.mark.parametrize("config_overrides", [{"PAGE_CACHE": False}])  # (a whole page is kept whatever the config)
def test_the_site_settings_follow_what_admins_save_and_the_config(app, client, ctx):
    _, path = make_post(title="Titled")
    assert f"| {app.config['SITE_TITLE']}</title>" in client.get(path).get_data(as_text=True)
    settings({"SITE_TITLE": "Saved Title"})
    assert "| Saved Title</title>" in client.get(path).get_data(as_text=True)
    db.session.execute(delete(SiteSetting))  # the site, by a statement: the config's default again
    db.session.commit()
    g.pop("site_settings", None)
    assert f"| {app.config['SITE_TITLE']}</title>" in client.get(path).get_data(as_text=True)
    app.config["SITE_TITLE"] = "Configured Title"  # nothing written: the kept settings were read over the old default
    g.pop("site_settings", None)
    assert "| Configured Title</title>" in client.get(path).get_data(as_text=True)


def test_the_links_every_page_has_follow_the_script_root(app, client, ctx):
    assert 'href="/feed/">Feed</a>' in client.get("/").get_data(as_text=True)
    mounted = client.get("/", base_url="http://blog.test/blog/").get_data(as_text=True)
    assert 'href="/blog/feed/">Feed</a>' in mounted and 'href="/blog/" rel="home"' in mounted
    assert 'href="/feed/">Feed</a>' in client.get("/").get_data(as_text=True)


def test_a_post_page_mounted_under_a_script_root_is_served_not_redirected_to_itself(app, client, ctx):
    _, path = make_post(title="Mounted")
    mounted = client.get(path, base_url="http://blog.test/blog/")
    assert mounted.status_code == 200 and "Mounted" in mounted.get_data(as_text=True)
    year, month, day, slug = path.strip("/").split("/")
    moved = client.get(f"/{year}/{month}/{int(day) % 28 + 1:02d}/{slug}/", base_url="http://blog.test/blog/")
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/blog" + path)
