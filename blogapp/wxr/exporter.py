"""The whole blog as a WordPress export (WXR 1.2), streamed: what WordPress's importer reads.

Posts, pages, categories (with parents), tags, authors, and every comment and linkback with its
thread, status and type. What WXR has no field for (a post's Markdown source, its "do not send"
switch, a Webmention's response type) goes in post and comment meta under ``_blogapp_`` keys,
which WordPress keeps and ignores and our importer reads back: importing our own export into an
empty blog gives the same blog.
"""
from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

from flask import current_app
from sqlalchemy import func, select

from ..extensions import db
from ..models import (
    BodyFormat,
    Category,
    Comment,
    CommentKind,
    CommentStatus,
    Page,
    PageStatus,
    Post,
    PostStatus,
    Tag,
    User,
    post_categories,
    post_tags,
    utcnow,
)
from ..templating import absolute_url, local_time, permalink
from .importer import (
    META_AUTHOR_PHOTO,
    META_COMMENT_SOURCE,
    META_HTML,
    META_MARKDOWN,
    META_RESPONSE_TYPE,
    META_SEND_LINKBACKS,
    META_TRASH_STATUS,
)

CHUNK = 500
# Characters XML 1.0 cannot hold, even in CDATA.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
WP_STATUS = {PostStatus.DRAFT: "draft", PostStatus.PUBLISHED: "publish", PostStatus.PRIVATE: "private"}
WP_APPROVED = {CommentStatus.APPROVED: "1", CommentStatus.PENDING: "0", CommentStatus.SPAM: "spam",
               CommentStatus.TRASH: "trash"}


def text_cdata(value) -> str:
    """Plain text (a title, a name) where WordPress keeps HTML: escaped, so "<" stays a character."""
    return cdata(html.escape(str(value or ""), quote=False))


def cdata(value) -> str:
    text = _NOT_XML.sub("", str(value or ""))
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def esc(value) -> str:
    text = _NOT_XML.sub("", str(value or ""))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _wp_date(when: datetime | None) -> str:
    # Not strftime: it writes the year 1 as "1", where WordPress's format wants four digits.
    if when is None:
        return "0000-00-00 00:00:00"
    return f"{when.year:04d}-{when.month:02d}-{when.day:02d} {when.hour:02d}:{when.minute:02d}:{when.second:02d}"


def _local(when: datetime | None) -> str:
    return _wp_date(local_time(when).replace(tzinfo=None)) if when else "0000-00-00 00:00:00"


def _rfc822(when: datetime | None) -> str:
    return format_datetime(when.replace(tzinfo=UTC)) if when else ""


def _meta(key: str, value) -> str:
    return f"\t\t<wp:postmeta>\n\t\t\t<wp:meta_key>{cdata(key)}</wp:meta_key>\n\t\t\t<wp:meta_value>{cdata(value)}</wp:meta_value>\n\t\t</wp:postmeta>\n"


def _comment_meta(key: str, value) -> str:
    return f"\t\t\t<wp:commentmeta>\n\t\t\t\t<wp:meta_key>{cdata(key)}</wp:meta_key>\n\t\t\t\t<wp:meta_value>{cdata(value)}</wp:meta_value>\n\t\t\t</wp:commentmeta>\n"


class WxrExporter:
    """``for chunk in WxrExporter().chunks(): out.write(chunk)`` (str chunks, UTF-8 when written).

    Needs an app and a request context at ``SITE_URL`` (permalinks). Reads the database in chunks
    of posts, so memory does not grow with the blog.
    """

    def __init__(self):
        self.site = current_app.config["SITE_URL"].rstrip("/")
        self.users = {u.id: u for u in db.session.scalars(select(User))}
        # Pages get ids after the posts' (WordPress's ids are shared by posts and pages).
        self.page_offset = db.session.scalar(select(func.max(Post.id))) or 0
        self.counts = {"posts": 0, "pages": 0, "comments": 0, "pingbacks": 0, "trackbacks": 0, "webmentions": 0}

    def chunks(self) -> Iterator[str]:
        yield from self._head()
        yield from self._posts()
        yield from self._pages()
        yield "</channel>\n</rss>\n"

    # ------------------------------------------------------------------ channel

    def _head(self) -> Iterator[str]:
        from ..templating import site_settings

        settings = site_settings()
        yield ('<?xml version="1.0" encoding="UTF-8" ?>\n'
               "<!-- A WordPress eXtended RSS file: an export of a blogapp blog, for WordPress's importer "
               "(Tools > Import > WordPress) or blogapp's import-wxr. -->\n"
               f'<!-- generator="blogapp" created="{utcnow():%Y-%m-%d %H:%M}" -->\n'
               '<rss version="2.0"\n'
               '\txmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"\n'
               '\txmlns:content="http://purl.org/rss/1.0/modules/content/"\n'
               '\txmlns:wfw="http://wellformedweb.org/CommentAPI/"\n'
               '\txmlns:dc="http://purl.org/dc/elements/1.1/"\n'
               '\txmlns:wp="http://wordpress.org/export/1.2/"\n>\n\n<channel>\n')
        yield (f"\t<title>{esc(settings['SITE_TITLE'])}</title>\n\t<link>{esc(self.site)}</link>\n"
               f"\t<description>{esc(settings['SITE_DESCRIPTION'])}</description>\n"
               f"\t<pubDate>{_rfc822(utcnow())}</pubDate>\n\t<language>en-US</language>\n"
               "\t<wp:wxr_version>1.2</wp:wxr_version>\n"
               f"\t<wp:base_site_url>{esc(self.site)}</wp:base_site_url>\n"
               f"\t<wp:base_blog_url>{esc(self.site)}</wp:base_blog_url>\n\n")
        for user in self.users.values():
            yield (f"\t<wp:author><wp:author_id>{user.id}</wp:author_id><wp:author_login>{cdata(user.username)}</wp:author_login>"
                   f"<wp:author_email>{cdata('')}</wp:author_email><wp:author_display_name>{text_cdata(user.name)}</wp:author_display_name>"
                   f"<wp:author_first_name>{cdata('')}</wp:author_first_name><wp:author_last_name>{cdata('')}</wp:author_last_name></wp:author>\n")
        categories = db.session.scalars(select(Category).order_by(Category.id)).all()
        slug_of = {c.id: c.slug for c in categories}
        # Parents before children, as WordPress's importer wants them.
        for cat in _parents_first(categories):
            yield (f"\t<wp:category>\n\t\t<wp:term_id>{cat.id}</wp:term_id>\n"
                   f"\t\t<wp:category_nicename>{cdata(cat.slug)}</wp:category_nicename>\n"
                   f"\t\t<wp:category_parent>{cdata(slug_of.get(cat.parent_id, ''))}</wp:category_parent>\n"
                   f"\t\t<wp:cat_name>{text_cdata(cat.name)}</wp:cat_name>\n\t</wp:category>\n")
        for tag in db.session.scalars(select(Tag).order_by(Tag.id)):
            yield (f"\t<wp:tag>\n\t\t<wp:term_id>{tag.id}</wp:term_id>\n\t\t<wp:tag_slug>{cdata(tag.slug)}</wp:tag_slug>\n"
                   f"\t\t<wp:tag_name>{text_cdata(tag.name)}</wp:tag_name>\n\t</wp:tag>\n")
        yield "\n\t<generator>blogapp</generator>\n\n"

    # ------------------------------------------------------------------ posts

    def _posts(self) -> Iterator[str]:
        last = 0
        while True:
            posts = db.session.scalars(select(Post).where(Post.id > last).order_by(Post.id).limit(CHUNK)).all()
            if not posts:
                return
            ids = [p.id for p in posts]
            terms = self._terms(ids)
            comments = defaultdict(list)
            for row in db.session.execute(
                select(Comment).where(Comment.post_id.in_(ids), Comment.status != CommentStatus.VERIFYING.value)
                .order_by(Comment.id)
            ).scalars():
                comments[row.post_id].append(row)
            for post in posts:
                yield self._post_item(post, terms.get(post.id, []), comments.get(post.id, []))
                self.counts["posts"] += 1
            last = ids[-1]
            db.session.expunge_all()  # what was written is not needed again

    def _terms(self, ids: list[int]) -> dict[int, list[str]]:
        out = defaultdict(list)
        for post_id, slug, name in db.session.execute(
            select(post_categories.c.post_id, Category.slug, Category.name)
            .join(Category, Category.id == post_categories.c.category_id)
            .where(post_categories.c.post_id.in_(ids)).order_by(Category.name)
        ):
            out[post_id].append(f'\t\t<category domain="category" nicename="{esc(slug)}">{text_cdata(name)}</category>\n')
        for post_id, slug, name in db.session.execute(
            select(post_tags.c.post_id, Tag.slug, Tag.name)
            .join(Tag, Tag.id == post_tags.c.tag_id)
            .where(post_tags.c.post_id.in_(ids)).order_by(Tag.name)
        ):
            out[post_id].append(f'\t\t<category domain="post_tag" nicename="{esc(slug)}">{text_cdata(name)}</category>\n')
        return out

    def _post_item(self, post: Post, terms: list[str], comments: list[Comment]) -> str:
        if post.trashed_at is not None:
            status = "trash"  # WordPress's own word for a post in its Trash
        elif post.status == PostStatus.PUBLISHED and post.is_scheduled:
            status = "future"
        else:
            status = WP_STATUS.get(PostStatus(post.status), "draft")
        date = post.published_at or post.created_at
        link = permalink(post) if post.status != PostStatus.DRAFT else f"{self.site}/?p={post.id}"
        author = self.users.get(post.author_id)
        meta = ""
        if post.body_format == BodyFormat.MARKDOWN:
            meta += _meta(META_MARKDOWN, post.body)
        else:
            meta += _meta(META_HTML, "1")
        if not post.send_linkbacks:
            meta += _meta(META_SEND_LINKBACKS, "0")
        out = [
            "\t<item>\n",
            f"\t\t<title>{text_cdata(post.title)}</title>\n",
            f"\t\t<link>{esc(link)}</link>\n",
            f"\t\t<pubDate>{_rfc822(post.published_at) if post.published_at else ''}</pubDate>\n",
            f"\t\t<dc:creator>{cdata(author.username if author else '')}</dc:creator>\n",
            f'\t\t<guid isPermaLink="false">{esc(self.site)}/?p={post.id}</guid>\n',
            "\t\t<description></description>\n",
            f"\t\t<content:encoded>{cdata(post.body_html if post.body_format == BodyFormat.MARKDOWN else post.body)}</content:encoded>\n",
            f"\t\t<excerpt:encoded>{cdata(html.escape(post.excerpt or '', quote=False))}</excerpt:encoded>\n",
            f"\t\t<wp:post_id>{post.id}</wp:post_id>\n",
            f"\t\t<wp:post_date>{cdata(_local(date))}</wp:post_date>\n",
            f"\t\t<wp:post_date_gmt>{cdata(_wp_date(post.published_at))}</wp:post_date_gmt>\n",
            f"\t\t<wp:post_modified>{cdata(_local(post.updated_at))}</wp:post_modified>\n",
            f"\t\t<wp:post_modified_gmt>{cdata(_wp_date(post.updated_at))}</wp:post_modified_gmt>\n",
            f"\t\t<wp:comment_status>{cdata('open' if post.comments_open else 'closed')}</wp:comment_status>\n",
            f"\t\t<wp:ping_status>{cdata('open' if post.pings_open else 'closed')}</wp:ping_status>\n",
            f"\t\t<wp:post_name>{cdata(post.slug)}</wp:post_name>\n",
            f"\t\t<wp:status>{cdata(status)}</wp:status>\n",
            "\t\t<wp:post_parent>0</wp:post_parent>\n\t\t<wp:menu_order>0</wp:menu_order>\n",
            f"\t\t<wp:post_type>{cdata('post')}</wp:post_type>\n",
            f"\t\t<wp:post_password>{cdata('')}</wp:post_password>\n\t\t<wp:is_sticky>0</wp:is_sticky>\n",
            *terms,
            meta,
        ]
        out += [self._comment(c) for c in comments]
        out.append("\t</item>\n")
        return "".join(out)

    def _comment(self, c: Comment) -> str:
        kind = c.kind
        self.counts[{"comment": "comments", "pingback": "pingbacks", "trackback": "trackbacks"}.get(kind, "webmentions")] += 1
        meta = ""
        if kind == CommentKind.COMMENT:
            content = c.content_html or c.content
            meta += _comment_meta(META_COMMENT_SOURCE, c.content)
        else:
            content = html.escape(c.content or "", quote=False)  # WordPress keeps linkback excerpts as HTML
        if kind == CommentKind.WEBMENTION:
            meta += _comment_meta("webmention_source_url", c.source_url or "")
            if c.response_type:
                meta += _comment_meta(META_RESPONSE_TYPE, c.response_type)
            if c.author_photo:
                meta += _comment_meta(META_AUTHOR_PHOTO, c.author_photo)
        if c.status in (CommentStatus.SPAM, CommentStatus.TRASH) and c.previous_status:
            meta += _comment_meta(META_TRASH_STATUS, WP_APPROVED.get(CommentStatus(c.previous_status), "0"))
        author_url = c.author_url or (c.source_url if kind in (CommentKind.PINGBACK, CommentKind.TRACKBACK) else "")
        return (
            "\t\t<wp:comment>\n"
            f"\t\t\t<wp:comment_id>{c.id}</wp:comment_id>\n"
            f"\t\t\t<wp:comment_author>{text_cdata(c.author_name)}</wp:comment_author>\n"
            f"\t\t\t<wp:comment_author_email>{cdata(c.author_email)}</wp:comment_author_email>\n"
            f"\t\t\t<wp:comment_author_url>{esc(author_url)}</wp:comment_author_url>\n"
            f"\t\t\t<wp:comment_author_IP>{cdata(c.ip)}</wp:comment_author_IP>\n"
            f"\t\t\t<wp:comment_date>{cdata(_local(c.created_at))}</wp:comment_date>\n"
            f"\t\t\t<wp:comment_date_gmt>{cdata(_wp_date(c.created_at))}</wp:comment_date_gmt>\n"
            f"\t\t\t<wp:comment_content>{cdata(content)}</wp:comment_content>\n"
            f"\t\t\t<wp:comment_approved>{cdata(WP_APPROVED.get(CommentStatus(c.status), '0'))}</wp:comment_approved>\n"
            f"\t\t\t<wp:comment_type>{cdata(kind)}</wp:comment_type>\n"
            f"\t\t\t<wp:comment_parent>{c.parent_id or 0}</wp:comment_parent>\n"
            f"\t\t\t<wp:comment_user_id>{c.user_id or 0}</wp:comment_user_id>\n"
            f"{meta}\t\t</wp:comment>\n"
        )

    # ------------------------------------------------------------------ pages

    def _pages(self) -> Iterator[str]:
        for page in db.session.scalars(select(Page).order_by(Page.id)):
            author = self.users.get(page.author_id)
            url = absolute_url(f"/{page.slug}/")
            meta = _meta(META_MARKDOWN, page.body) if page.body_format == BodyFormat.MARKDOWN else _meta(META_HTML, "1")
            date = page.published_at or page.created_at
            self.counts["pages"] += 1
            yield "".join([
                "\t<item>\n",
                f"\t\t<title>{text_cdata(page.title)}</title>\n",
                f"\t\t<link>{esc(url)}</link>\n",
                f"\t\t<pubDate>{_rfc822(date)}</pubDate>\n",
                f"\t\t<dc:creator>{cdata(author.username if author else '')}</dc:creator>\n",
                f'\t\t<guid isPermaLink="false">{esc(url)}</guid>\n',
                "\t\t<description></description>\n",
                f"\t\t<content:encoded>{cdata(page.body_html if page.body_format == BodyFormat.MARKDOWN else page.body)}</content:encoded>\n",
                f"\t\t<excerpt:encoded>{cdata('')}</excerpt:encoded>\n",
                f"\t\t<wp:post_id>{self.page_offset + page.id}</wp:post_id>\n",
                f"\t\t<wp:post_date>{cdata(_local(date))}</wp:post_date>\n",
                f"\t\t<wp:post_date_gmt>{cdata(_wp_date(page.published_at))}</wp:post_date_gmt>\n",
                f"\t\t<wp:post_modified>{cdata(_local(page.updated_at))}</wp:post_modified>\n",
                f"\t\t<wp:post_modified_gmt>{cdata(_wp_date(page.updated_at))}</wp:post_modified_gmt>\n",
                f"\t\t<wp:comment_status>{cdata('closed')}</wp:comment_status>\n",
                f"\t\t<wp:ping_status>{cdata('closed')}</wp:ping_status>\n",
                f"\t\t<wp:post_name>{cdata(page.slug)}</wp:post_name>\n",
                f"\t\t<wp:status>{cdata('publish' if page.status == PageStatus.PUBLISHED else 'draft')}</wp:status>\n",
                f"\t\t<wp:post_parent>0</wp:post_parent>\n\t\t<wp:menu_order>{page.menu_order}</wp:menu_order>\n",
                f"\t\t<wp:post_type>{cdata('page')}</wp:post_type>\n",
                f"\t\t<wp:post_password>{cdata('')}</wp:post_password>\n\t\t<wp:is_sticky>0</wp:is_sticky>\n",
                meta,
                "\t</item>\n",
            ])


def _parents_first(categories: list[Category]) -> list[Category]:
    by_id = {c.id: c for c in categories}
    done: set[int] = set()
    out: list[Category] = []

    def visit(cat: Category, trail: set[int]) -> None:
        if cat.id in done or cat.id in trail:
            return
        parent = by_id.get(cat.parent_id)
        if parent is not None:
            visit(parent, trail | {cat.id})
        done.add(cat.id)
        out.append(cat)

    for cat in categories:
        visit(cat, set())
    return out
