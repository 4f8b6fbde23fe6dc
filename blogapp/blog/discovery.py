"""What the site tells search engines and sharing cards about itself: ``/sitemap.xml`` (the
sitemaps.org protocol), ``/robots.txt``, and the OpenGraph / Twitter card values of a post page.

The sitemap lists what readers can reach: the home page, the published pages, the public posts,
and the year, month, category and tag archives that hold public posts, each with ``<lastmod>``
from the last change of what it shows. Drafts, private posts and scheduled posts are never in it.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, url_for
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import load_only

from ..extensions import db
from ..models import Category, Page, Post, Tag, post_categories, post_tags
from ..pagecache import ANY_POST, POSTS, SITE, cached_page, depends_on, fragment, post_scope
from ..templating import absolute_url, local_time, post_path, site_zone
from . import bp
from .feeds import summary

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
XML = "application/xml; charset=utf-8"
SHARING_LIMIT = 200  # characters of a post's text in its sharing card's description


def _lastmod(value: datetime) -> str:
    """A W3C datetime (the sitemap protocol's), in UTC, to the second."""
    return value.replace(tzinfo=UTC, microsecond=0).isoformat()


def _changed(post: Post) -> datetime:
    """When readers last saw the post change: an edit, or (scheduled) its going live."""
    return max(post.updated_at, post.published_at)


def _latest(found: dict, key, when: datetime) -> None:
    if key not in found or found[key] < when:
        found[key] = when


def _term_lastmods(table, column, posts: dict[int, datetime]) -> dict[int, datetime]:
    """term id -> the last change of its public posts."""
    found: dict[int, datetime] = {}
    for post_id, term_id in db.session.execute(select(table.c.post_id, column)):
        if post_id in posts:
            _latest(found, term_id, posts[post_id])
    return found


def _category_lastmods(posts: dict[int, datetime]) -> dict[str, datetime]:
    """slug -> lastmod of each category archive: its posts and its subcategories' (as it lists them)."""
    own = _term_lastmods(post_categories, post_categories.c.category_id, posts)
    rows = db.session.execute(select(Category.id, Category.parent_id, Category.slug)).all()
    parents = {cid: parent for cid, parent, _ in rows}
    by_id: dict[int, datetime] = {}
    for cid, when in own.items():
        seen = set()
        while cid is not None and cid not in seen:  # (a cycle in imported data ends here)
            seen.add(cid)
            _latest(by_id, cid, when)
            cid = parents.get(cid)
    return {slug: by_id[cid] for cid, _, slug in rows if cid in by_id}


def _urls() -> list[tuple[str, datetime | None]]:
    """(absolute URL, lastmod) of everything the sitemap lists (an empty blog's home: no lastmod)."""
    posts = db.session.scalars(
        select(Post)
        .where(Post.visible())
        .options(load_only(Post.slug, Post.status, Post.published_at, Post.created_at, Post.updated_at))
        .order_by(Post.published_at.desc(), Post.id.desc())
    ).all()
    # The sitemap shows each post's lastmod, which any post's edit moves: one part for them all.
    depends_on(ANY_POST)
    changed = {p.id: _changed(p) for p in posts}
    pages = db.session.execute(
        select(Page.slug, Page.updated_at).where(Page.visible()).order_by(Page.menu_order, Page.title, Page.id)
    ).all()

    years: dict[int, datetime] = {}
    months: dict[tuple[int, int], datetime] = {}
    for post in posts:
        local = local_time(post.published_at)  # archives are by the site's zone, as their pages are
        _latest(years, local.year, changed[post.id])
        _latest(months, (local.year, local.month), changed[post.id])
    tags = _term_lastmods(post_tags, post_tags.c.tag_id, changed)
    tag_slugs = dict(db.session.execute(select(Tag.id, Tag.slug)).all()) if tags else {}

    everything = [*changed.values(), *(when for _, when in pages)]
    urls = [(url_for("blog.index"), max(everything, default=None))]
    urls += [(url_for("blog.page", slug=slug), when) for slug, when in pages]
    urls += [(post_path(post), changed[post.id]) for post in posts]
    urls += [(url_for("blog.year_archive", year=year), when) for year, when in sorted(years.items(), reverse=True)]
    urls += [(url_for("blog.month_archive", year=year, month=f"{month:02d}"), when)
             for (year, month), when in sorted(months.items(), reverse=True)]
    urls += [(url_for("blog.category", slug=slug), when) for slug, when in sorted(_category_lastmods(changed).items())]
    urls += [(url_for("blog.tag", slug=tag_slugs[tid]), when)
             for tid, when in sorted(tags.items(), key=lambda item: tag_slugs[item[0]])]
    return [(absolute_url(path), when) for path, when in urls]


@bp.route("/sitemap.xml")
@cached_page
def sitemap():
    """The sitemaps.org ``urlset`` of every address readers can reach (see the module docstring)."""
    urlset = etree.Element(f"{{{SITEMAP_NS}}}urlset", nsmap={None: SITEMAP_NS})
    for loc, when in _urls():
        url = etree.SubElement(urlset, f"{{{SITEMAP_NS}}}url")
        etree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = loc
        if when is not None:
            etree.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = _lastmod(when)
    body = etree.tostring(urlset, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return Response(body, content_type=XML)


@bp.route("/robots.txt")
@cached_page
def robots():
    """Every address may be crawled but the dashboard's; the sitemap's address, absolute."""
    lines = [
        "User-agent: *",
        f"Disallow: {url_for('admin.dashboard')}",
        "",
        f"Sitemap: {absolute_url(url_for('blog.sitemap'))}",
    ]
    return Response("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@bp.app_context_processor
def sharing():
    def post_sharing(post) -> dict:
        """What a post page's OpenGraph and Twitter card tags say of ``post`` beyond its title and
        address: its summary (the excerpt, else the start of its text) and when it last changed.
        Kept until the post changes."""
        name = f"sharing:{post.id}:{site_zone().key}"  # (its times are in the site's zone)
        return fragment(name, (SITE, POSTS, post_scope(post.id)), lambda: _read_sharing(post.id))

    return {"post_sharing": post_sharing}


def _read_sharing(post_id: int) -> dict:
    post = db.session.scalars(
        select(Post).where(Post.id == post_id)
        .options(load_only(Post.excerpt, Post.body_html, Post.published_at, Post.updated_at))
    ).first()
    if post is None:
        return {"description": "", "modified": None}
    modified = local_time(_changed(post) if post.published_at else post.updated_at)
    return {"description": summary(post, SHARING_LIMIT), "modified": modified.isoformat(timespec="seconds")}
