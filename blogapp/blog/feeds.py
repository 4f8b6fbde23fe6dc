"""Feeds: the blog's posts (Atom at /feed/, RSS 2.0 at /feed/rss2/), each post's comments, and
the latest comments of the whole site (/comments/feed/).

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
from sqlalchemy.orm import contains_eager, joinedload, selectinload

from ..extensions import db
from ..pagecache import ANY_THREAD, cached_page, depends_on, post_scope, thread_scope
from ..models import Comment, CommentKind, CommentStatus, Post, utcnow
from ..templating import absolute_url, permalink, post_path, site_settings
from ..text import excerpt, render_comment
from . import bp
from .routes import load_post

ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
# Characters XML 1.0 cannot hold, even escaped (the WXR export drops the same ones).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
SUMMARY_LIMIT = 300  # characters of a post's text that make its summary when it has no excerpt


def xml_text(value: str | None, fallback: str = "") -> str:
    """``value`` without the characters XML cannot hold; ``fallback`` if nothing is left (a
    feed's and an entry's title, and an author's name, may not be empty)."""
    return NOT_XML.sub("", value or "") or fallback


@bp.app_template_filter("summary")
def summary(post: Post, limit: int = SUMMARY_LIMIT) -> str:
    """A post's summary as plain text, as feeds and listings show it: its hand-written excerpt,
    else the start of its text (list items and paragraphs kept apart)."""
    return post.excerpt or excerpt(post.body_html, limit)


def _utc(value):
    return value.replace(tzinfo=UTC)


def _new_feed(feed_id: str, title: str, self_url: str, alternate: str, self_type: str = ATOM) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)  # RSS names an author by email only; dc:creator by name
    fg.id(feed_id)
    fg.title(title)
    fg.link(href=self_url, rel="self", type=self_type.split(";")[0])
    fg.link(href=alternate, rel="alternate", type="text/html")
    fg.generator("blogapp")
    return fg


def _posts_feed(self_url: str, self_type: str) -> FeedGenerator:
    """The FEED_SIZE newest public posts, newest first, for either format."""
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
    fg = _new_feed(home, title, self_url, home, self_type)
    fg.subtitle(xml_text(settings["SITE_DESCRIPTION"], title))
    fg.updated(_utc(max((p.updated_at for p in posts), default=None) or utcnow()))
    for post in posts:
        link = permalink(post)
        entry = fg.add_entry(order="append")
        entry.guid(link, permalink=True)  # (the Atom id too)
        entry.title(xml_text(post.title, link))
        entry.link(href=link, rel="alternate", type="text/html")
        entry.published(_utc(post.published_at))
        entry.updated(_utc(max(post.updated_at, post.published_at)))
        author = xml_text(post.author.name, title) if post.author else title
        entry.author(name=author)
        entry.dc.dc_creator(author)
        entry.summary(xml_text(summary(post) or post.title, link))
        entry.content(xml_text(post.body_html), type="html")
        for term in [*post.categories, *post.tags]:
            name = xml_text(term.name, term.slug)
            entry.category(term=name, label=name)
    return fg


@bp.route("/feed/")
@cached_page
def posts_feed():
    fg = _posts_feed(absolute_url(url_for("blog.posts_feed")), ATOM)
    return Response(fg.atom_str(pretty=True), content_type=ATOM)


@bp.route("/feed/rss2/")
@cached_page
def posts_rss():
    """The same posts as RSS 2.0 (WordPress's /feed/ is RSS; ours there is Atom)."""
    fg = _posts_feed(absolute_url(url_for("blog.posts_rss")), RSS)
    return Response(fg.rss_str(pretty=True), content_type=RSS)


def _add_comment_entry(fg: FeedGenerator, comment: Comment, post: Post, title: str) -> None:
    url = absolute_url(post_path(post)) + f"#comment-{comment.id}"
    entry = fg.add_entry(order="append")
    entry.id(url)
    entry.link(href=url, rel="alternate", type="text/html")
    entry.title(title)
    entry.author(name=_comment_author(comment), uri=xml_text(comment.author_url) or None)
    entry.published(_utc(comment.created_at))
    entry.updated(_utc(comment.updated_at))
    if comment.kind == CommentKind.COMMENT:
        entry.content(xml_text(comment.content_html or render_comment(comment.content)), type="html")
    else:  # a linkback's excerpt, plain text
        entry.content(xml_text(comment.content), type="text")


def _comment_author(comment: Comment) -> str:
    return xml_text(comment.author_name, "Anonymous")


def _kind_label(comment: Comment) -> str:
    return "By" if comment.kind == CommentKind.COMMENT else comment.kind.capitalize()


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
        _add_comment_entry(fg, comment, post, f"{_kind_label(comment)}: {_comment_author(comment)}")
    return Response(fg.atom_str(pretty=True), content_type=ATOM)


@bp.route("/comments/feed/")
@cached_page
def site_comments_feed():
    """The FEED_SIZE latest approved comments and linkbacks on public posts, newest first: any
    post's thread may bring the next entry, so it depends on every thread (one part)."""
    settings = site_settings()
    depends_on(ANY_THREAD)  # which posts are public: the post list, which every page shows
    comments = db.session.scalars(
        select(Comment)
        .join(Comment.post)
        .where(Post.visible(), Comment.status == CommentStatus.APPROVED.value)
        .options(contains_eager(Comment.post))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(current_app.config["FEED_SIZE"])
    ).all()
    home = absolute_url(url_for("blog.index"))
    self_url = absolute_url(url_for("blog.site_comments_feed"))
    fg = _new_feed(self_url, f"Comments for {xml_text(settings['SITE_TITLE'], home)}", self_url, home)
    fg.updated(_utc(max((c.updated_at for c in comments), default=None) or utcnow()))
    for comment in comments:
        label = "Comment" if comment.kind == CommentKind.COMMENT else comment.kind.capitalize()
        post_title = xml_text(comment.post.title, permalink(comment.post))
        _add_comment_entry(fg, comment, comment.post, f"{label} on {post_title} by {_comment_author(comment)}")
    return Response(fg.atom_str(pretty=True), content_type=ATOM)
