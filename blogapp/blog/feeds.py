"""Atom feeds: the blog's posts, and each post's comments.

Every text put in a feed goes through ``xml_text``: a title, a name or a comment may hold a
character XML 1.0 cannot (a control character such as U+000B, typed or pasted into a form), and
one such character would make the whole feed fail to build.
"""
from __future__ import annotations

import re
from datetime import UTC

from feedgen.feed import FeedGenerator
from flask import Response, abort, current_app, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..pagecache import cached_page, depends_on, post_scope, thread_scope
from ..models import Comment, CommentKind, CommentStatus, Post, utcnow
from ..templating import absolute_url, permalink, post_path, site_settings
from ..text import html_to_text, render_comment
from . import bp
from .routes import load_post

ATOM = "application/atom+xml; charset=utf-8"
# Characters XML 1.0 cannot hold, even escaped (the WXR export drops the same ones).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value: str | None, fallback: str = "") -> str:
    """``value`` without the characters XML cannot hold; ``fallback`` if nothing is left (a
    feed's and an entry's title, and an author's name, may not be empty)."""
    return NOT_XML.sub("", value or "") or fallback


def _utc(value):
    return value.replace(tzinfo=UTC)


def _new_feed(feed_id: str, title: str, self_url: str, alternate: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(title)
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.link(href=alternate, rel="alternate", type="text/html")
    fg.generator("blogapp")
    return fg


@bp.route("/feed/")
@cached_page
def posts_feed():
    settings = site_settings()
    posts = db.session.scalars(
        select(Post)
        .where(Post.visible())
        .options(joinedload(Post.author), selectinload(Post.categories), selectinload(Post.tags))
        .order_by(Post.published_at.desc(), Post.id.desc())
        .limit(current_app.config["FEED_SIZE"])
    ).all()
    depends_on(*map(post_scope, (p.id for p in posts)))
    home = absolute_url(url_for("blog.index"))
    title = xml_text(settings["SITE_TITLE"], home)
    fg = _new_feed(home, title, absolute_url(url_for("blog.posts_feed")), home)
    fg.subtitle(xml_text(settings["SITE_DESCRIPTION"], title))
    fg.updated(_utc(max((p.updated_at for p in posts), default=None) or utcnow()))
    # feedgen prepends entries, so add the oldest first to list the newest first.
    for post in reversed(posts):
        entry = fg.add_entry()
        entry.id(permalink(post))
        entry.title(xml_text(post.title, permalink(post)))
        entry.link(href=permalink(post), rel="alternate", type="text/html")
        entry.published(_utc(post.published_at))
        entry.updated(_utc(max(post.updated_at, post.published_at)))
        entry.author(name=xml_text(post.author.name, title) if post.author else title)
        entry.summary(xml_text(post.excerpt or html_to_text(post.body_html)[:300] or post.title, permalink(post)))
        entry.content(xml_text(post.body_html), type="html")
        for term in [*post.categories, *post.tags]:
            name = xml_text(term.name, term.slug)
            entry.category(term=name, label=name)
    return Response(fg.atom_str(pretty=True), content_type=ATOM)


@bp.route("/<int:year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug>/feed/")
@cached_page
def comments_feed(year: int, month: int, day: int, slug: str):
    post = load_post(slug)
    if post is None or not post.is_published:
        abort(404)
    depends_on(post_scope(post.id), thread_scope(post.id))
    comments = db.session.scalars(
        select(Comment)
        .where(Comment.post_id == post.id, Comment.status == CommentStatus.APPROVED.value)
        .order_by(Comment.created_at, Comment.id)
    ).all()
    self_url = absolute_url(url_for("blog.comments_feed", year=year, month=month, day=day, slug=slug))
    fg = _new_feed(self_url, f"Comments on: {xml_text(post.title, permalink(post))}", self_url, permalink(post))
    fg.updated(_utc(max((c.updated_at for c in comments), default=post.updated_at)))
    for comment in comments:
        entry = fg.add_entry(order="append")
        url = absolute_url(post_path(post)) + f"#comment-{comment.id}"
        entry.id(url)
        entry.link(href=url, rel="alternate", type="text/html")
        name = xml_text(comment.author_name, "Anonymous")
        if comment.kind == CommentKind.COMMENT:
            entry.title(f"By: {name}")
            body = comment.content_html or render_comment(comment.content)
        else:
            entry.title(f"{comment.kind.capitalize()}: {name}")
            body = None
        entry.author(name=name, uri=xml_text(comment.author_url) or None)
        entry.published(_utc(comment.created_at))
        entry.updated(_utc(comment.updated_at))
        if body is None:
            entry.content(xml_text(comment.content), type="text")
        else:
            entry.content(xml_text(body), type="html")
    return Response(fg.atom_str(pretty=True), content_type=ATOM)
