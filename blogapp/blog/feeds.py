"""Atom feeds: the blog's posts, and each post's comments."""
from __future__ import annotations

from datetime import UTC

from feedgen.feed import FeedGenerator
from flask import Response, abort, current_app, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..pagecache import cached_page
from ..models import Comment, CommentKind, CommentStatus, Post, utcnow
from ..templating import absolute_url, permalink, post_path, site_settings
from ..text import html_to_text, render_comment
from . import bp
from .routes import load_post

ATOM = "application/atom+xml; charset=utf-8"


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
    home = absolute_url(url_for("blog.index"))
    fg = _new_feed(home, settings["SITE_TITLE"], absolute_url(url_for("blog.posts_feed")), home)
    fg.subtitle(settings["SITE_DESCRIPTION"] or settings["SITE_TITLE"])
    fg.updated(_utc(max((p.updated_at for p in posts), default=None) or utcnow()))
    # feedgen prepends entries, so add the oldest first to list the newest first.
    for post in reversed(posts):
        entry = fg.add_entry()
        entry.id(permalink(post))
        entry.title(post.title)
        entry.link(href=permalink(post), rel="alternate", type="text/html")
        entry.published(_utc(post.published_at))
        entry.updated(_utc(max(post.updated_at, post.published_at)))
        entry.author(name=post.author.name if post.author else settings["SITE_TITLE"])
        entry.summary(post.excerpt or html_to_text(post.body_html)[:300] or post.title)
        entry.content(post.body_html, type="html")
        for cat in post.categories:
            entry.category(term=cat.name, label=cat.name)
        for tag in post.tags:
            entry.category(term=tag.name, label=tag.name)
    return Response(fg.atom_str(pretty=True), content_type=ATOM)


@bp.route("/<int:year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug>/feed/")
@cached_page
def comments_feed(year: int, month: int, day: int, slug: str):
    post = load_post(slug)
    if post is None or not post.is_published:
        abort(404)
    comments = db.session.scalars(
        select(Comment)
        .where(Comment.post_id == post.id, Comment.status == CommentStatus.APPROVED.value)
        .order_by(Comment.created_at, Comment.id)
    ).all()
    self_url = absolute_url(url_for("blog.comments_feed", year=year, month=month, day=day, slug=slug))
    fg = _new_feed(self_url, f"Comments on: {post.title}", self_url, permalink(post))
    fg.updated(_utc(max((c.updated_at for c in comments), default=post.updated_at)))
    for comment in comments:
        entry = fg.add_entry(order="append")
        url = absolute_url(post_path(post)) + f"#comment-{comment.id}"
        entry.id(url)
        entry.link(href=url, rel="alternate", type="text/html")
        name = comment.author_name or "Anonymous"
        if comment.kind == CommentKind.COMMENT:
            entry.title(f"By: {name}")
            body = comment.content_html or render_comment(comment.content)
        else:
            entry.title(f"{comment.kind.capitalize()}: {name}")
            body = None
        entry.author(name=name, uri=comment.author_url or None)
        entry.published(_utc(comment.created_at))
        entry.updated(_utc(comment.updated_at))
        if body is None:
            entry.content(comment.content, type="text")
        else:
            entry.content(body, type="html")
    return Response(fg.atom_str(pretty=True), content_type=ATOM)
