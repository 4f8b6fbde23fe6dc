"""Creating and changing pages (About, Contact), shared by the admin pages and imports.

A page lives at ``/<slug>/``, beside the site's own top-level addresses, so its slug must never
be one of them: a slug asked for that is taken, by another page or by the site, gets a number.
"""
from __future__ import annotations

from flask import current_app, has_app_context
from sqlalchemy import select

from .extensions import db
from .models import BodyFormat, Page, PageStatus, utcnow
from .text import render_post, slugify

# The first parts of our own addresses, today's and those planned. The app's URL map is asked
# too (``reserved_page_slug``), so a route added later is never shadowed; this list also keeps
# addresses the site does not serve yet (robots.txt, sitemap.xml) and WordPress's own (wp-admin,
# wp-login.php), which old links and bots ask for, free of pages. Numbers are years.
RESERVED_SLUGS = frozenset({
    "page", "category", "tag", "feed", "admin", "static", "xmlrpc", "xmlrpc.php", "webmention", "posts",
    "healthz", "readyz", "sitemap.xml", "robots.txt", "wp-admin", "wp-login.php",
})


class PageError(ValueError):
    """A page could not be saved as asked; the message says why, for people."""


def _route_prefixes() -> set[str]:
    """The static first parts of the app's routes: ``feed`` of ``/feed/``, ``admin`` of ``/admin/...``."""
    if not has_app_context():
        return set()
    prefixes = set()
    for rule in current_app.url_map.iter_rules():
        first = rule.rule.lstrip("/").split("/", 1)[0]
        if first and "<" not in first:
            prefixes.add(first)
    return prefixes


def reserved_page_slug(slug: str) -> bool:
    """Whether ``/<slug>/`` is the site's own (a route, a year archive), so no page may have it."""
    return slug.isdigit() or slug in RESERVED_SLUGS or slug in _route_prefixes()


def unique_page_slug(wanted: str, page_id: int | None = None) -> str:
    """``wanted`` as a slug no other page has and no address of the site uses, numbered if need be."""
    base = slugify(wanted) or "page"
    reserved = RESERVED_SLUGS | _route_prefixes()
    slug, n = base, 2
    while True:
        if not (slug.isdigit() or slug in reserved):
            other = db.session.scalar(select(Page.id).where(Page.slug == slug))
            if other is None or other == page_id:
                return slug
        slug, n = f"{base}-{n}", n + 1


def save_page(
    page: Page | None,
    *,
    title: str,
    body: str,
    slug: str = "",
    body_format: str | None = None,
    publish: bool = True,
    menu_order: int = 0,
    author=None,
) -> Page:
    """Create (``page`` None) or update a page; the caller commits.

    An empty ``slug`` keeps the page's slug (a new page's comes from its title). ``body_format``
    None keeps the page's format (Markdown for a new page). A page published for the first time
    gets its date; it keeps it after.
    """
    title = " ".join((title or "").split())
    if not title:
        raise PageError("A page needs a title.")
    # No autoflush: the half-built page must not be written while its slug is looked up.
    with db.session.no_autoflush:
        if page is None:
            page = Page(author=author, created_at=utcnow())
            db.session.add(page)
        if slug or not page.slug:
            page.slug = unique_page_slug(slug or title, page.id)
        page.title = title
        if body_format is not None or page.body_format is None:
            page.body_format = body_format or BodyFormat.MARKDOWN.value
        page.body = body or ""
        page.body_html = render_post(page.body, page.body_format)
        page.menu_order = int(menu_order or 0)
        if publish:
            page.status = PageStatus.PUBLISHED.value
            page.published_at = page.published_at or utcnow()
        else:
            page.status = PageStatus.DRAFT.value
    db.session.flush()
    return page


def remove_page(page: Page) -> None:
    """Delete a page (what an import recorded of it goes with it). The caller commits."""
    db.session.delete(page)
