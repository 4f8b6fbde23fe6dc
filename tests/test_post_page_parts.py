"""The parts of a post page kept between renders, with the page cache on or off: the "Previous
post" / "Next post" links, kept until the post list changes (a publication, a retitled or
removed post, a scheduled post come due); the thread, kept until the post, its comments or the
site change."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

import pytest
from flask import g

from blogapp.extensions import db
from blogapp.models import Comment, CommentStatus, Post, save_site_settings, utcnow
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
